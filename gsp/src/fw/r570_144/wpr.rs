//! GspFwWprMeta (570.144).
