//! The server's trace events (Hubris-style ringbuf entries), recorded at every recovery decision:
//! a refused request, a reclaim, a pool scrubbed whole.

use alloc_api::{AllocError, ClientId, PoolId};
use pd_core::trace::TraceEvent;

/// One recovery decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trace {
    /// A request was refused (`caller` is `None` for a channel with no client).
    Refused {
        /// Who asked.
        caller: Option<ClientId>,
        /// The request's label.
        label: u64,
        /// Why it was refused.
        error: AllocError,
    },
    /// A client's buffers were taken back (restart or retirement).
    Reclaimed {
        /// Whose.
        client: ClientId,
        /// How many.
        buffers: u32,
    },
    /// A pool was zeroed whole (server start, owner reclaimed).
    Scrubbed {
        /// Which.
        pool: PoolId,
    },
}

/// How many kinds of [`Trace`] there are.
pub const TRACE_KINDS: usize = 3;

impl TraceEvent for Trace {
    const KINDS: usize = TRACE_KINDS;

    fn kind(&self) -> usize {
        match self {
            Self::Refused { .. } => 0,
            Self::Reclaimed { .. } => 1,
            Self::Scrubbed { .. } => 2,
        }
    }

    fn kind_name(kind: usize) -> &'static str {
        ["Refused", "Reclaimed", "Scrubbed"]
            .get(kind)
            .copied()
            .unwrap_or("?")
    }
}
