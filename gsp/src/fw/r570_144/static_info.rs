//! GspStaticConfigInfo (570.144).
