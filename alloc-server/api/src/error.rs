//! The server's error codes (wire) and the client stub's error (wire code, IPC failure or a
//! malformed reply).

use core::fmt;
use pd_core::shm::RegionError;
use pd_core::IpcError;

/// Why alloc-server refused a request. Discriminants start at 1: 0 means success on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum AllocError {
    /// The label is not an opcode.
    BadOpcode = 1,
    /// The request has the wrong number of message registers for its opcode.
    BadLength = 2,
    /// The request came over a channel the server has no client for.
    UnknownCaller = 3,
    /// The pool id names no pool.
    NoSuchPool = 4,
    /// The caller may not use this pool (or see this client's totals): the policy grants it none.
    NotGranted = 5,
    /// The size is zero or larger than the pool.
    BadSize = 6,
    /// The alignment is not a power of two, or is above 2 MiB.
    BadAlignment = 7,
    /// The pool owner's byte quota would be exceeded.
    QuotaBytes = 8,
    /// The pool owner's buffer-count quota would be exceeded.
    QuotaBuffers = 9,
    /// No free contiguous block is large enough (fragmentation or a full pool).
    OutOfMemory = 10,
    /// The server's buffer table is full.
    NoSlots = 11,
    /// The handle was never issued (forged or corrupted).
    BadHandle = 12,
    /// The handle's buffer was freed and its slot reused since, or it is from before a restart.
    StaleHandle = 13,
    /// The buffer was already freed.
    DoubleFree = 14,
    /// The buffer was taken back because its owner (or holder) was restarted or retired.
    Reclaimed = 15,
    /// The buffer belongs to another caller.
    NotOwner = 16,
    /// The handle is right but the offset is not the buffer's.
    OffsetMismatch = 17,
    /// The client id names no client.
    NoSuchClient = 18,
    /// The server found its own state inconsistent and refused the request (a server bug).
    Internal = 19,
    /// An abandon found no grant of the caller's to take back (none made, or already freed).
    NothingToAbandon = 20,
}

impl TryFrom<u64> for AllocError {
    type Error = u64;

    /// The error for a reply label; the label itself when it is no error code.
    fn try_from(code: u64) -> Result<Self, u64> {
        use AllocError::*;
        const ALL: [AllocError; 20] = [
            BadOpcode,
            BadLength,
            UnknownCaller,
            NoSuchPool,
            NotGranted,
            BadSize,
            BadAlignment,
            QuotaBytes,
            QuotaBuffers,
            OutOfMemory,
            NoSlots,
            BadHandle,
            StaleHandle,
            DoubleFree,
            Reclaimed,
            NotOwner,
            OffsetMismatch,
            NoSuchClient,
            Internal,
            NothingToAbandon,
        ];
        ALL.iter().copied().find(|&e| e as u64 == code).ok_or(code)
    }
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::BadOpcode => "unknown opcode",
            Self::BadLength => "wrong register count",
            Self::UnknownCaller => "unknown caller",
            Self::NoSuchPool => "no such pool",
            Self::NotGranted => "pool not granted to caller",
            Self::BadSize => "bad size",
            Self::BadAlignment => "bad alignment",
            Self::QuotaBytes => "byte quota exceeded",
            Self::QuotaBuffers => "buffer quota exceeded",
            Self::OutOfMemory => "no free block large enough",
            Self::NoSlots => "buffer table full",
            Self::BadHandle => "handle never issued",
            Self::StaleHandle => "stale handle",
            Self::DoubleFree => "double free",
            Self::Reclaimed => "buffer was reclaimed",
            Self::NotOwner => "buffer belongs to another caller",
            Self::OffsetMismatch => "offset does not match handle",
            Self::NoSuchClient => "no such client",
            Self::Internal => "server state inconsistent",
            Self::NothingToAbandon => "no grant to abandon",
        };
        f.write_str(s)
    }
}

impl core::error::Error for AllocError {}

/// Why a client-stub call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    /// The server refused the request.
    Server(AllocError),
    /// The call itself failed (e.g. the server faulted during it: every handle is then stale).
    Ipc(IpcError),
    /// The reply did not fit the protocol (unknown code, wrong count, a buffer outside the pool).
    BadReply,
    /// The client's free list is full: as many buffers are outstanding as it can ever queue.
    FreeListFull,
    /// A typed access fell outside the buffer.
    Region(RegionError),
}

impl From<IpcError> for DmaError {
    fn from(e: IpcError) -> Self {
        Self::Ipc(e)
    }
}

impl From<RegionError> for DmaError {
    fn from(e: RegionError) -> Self {
        Self::Region(e)
    }
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Server(e) => write!(f, "alloc-server: {e}"),
            Self::Ipc(e) => write!(f, "ipc: {e}"),
            Self::BadReply => f.write_str("malformed reply from alloc-server"),
            Self::FreeListFull => f.write_str("free list full"),
            Self::Region(e) => write!(f, "{e}"),
        }
    }
}
