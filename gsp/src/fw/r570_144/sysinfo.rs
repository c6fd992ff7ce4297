//! GspSystemInfo (570.144).
