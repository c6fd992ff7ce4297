//! The PPC protocol: opcodes (the message label), request and reply layouts in message registers,
//! and the two usage records the accounting queries return.
//!
//! | label | request MRs                         | reply MRs (label 0)                        |
//! |-------|-------------------------------------|--------------------------------------------|
//! | 1     | `[pool, size, align]`               | `[handle, offset, device_addr, size, check]` |
//! | 2     | `[handle, offset]`                  | `[]`                                       |
//! | 3     | `[pool]`                            | [`PoolUsage`] as 8 words                   |
//! | 4     | `[client or CALLER]`                | [`ClientUsage`] as 8 words                 |
//! | 5     | `[]`                                | `[]`                                       |
//!
//! A failed request is answered with the [`AllocError`] code as the label and no registers.
//!
//! A grant carries a check word ([`grant_check`]) over its four fields, so a caller notices a
//! reply a faulty server garbled and does not hand the device an address it was not granted.
//! It then abandons the grant (label 5: "take back the grant you just made me"), which names
//! the buffer by the caller's own request order, not by anything in the garbled reply, so the
//! buffer is not lost either.

use crate::{AllocError, ClientId, DmaHandle, PoolId, MAX_ALIGN, PAGE_SIZE};
use pd_core::{MessageInfo, MessageRegisters};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// What a request asks for: the PPC label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Opcode {
    /// Allocate a buffer from a pool.
    Alloc = 1,
    /// Free a buffer by handle (and the offset it was given, as a cross-check).
    Free = 2,
    /// Usage of one pool.
    PoolUsage = 3,
    /// Totals of one client (the caller itself with [`CALLER`]).
    ClientUsage = 4,
    /// Take back the caller's latest grant (its reply arrived garbled).
    Abandon = 5,
}

impl TryFrom<u64> for Opcode {
    type Error = AllocError;

    fn try_from(label: u64) -> Result<Self, AllocError> {
        match label {
            1 => Ok(Self::Alloc),
            2 => Ok(Self::Free),
            3 => Ok(Self::PoolUsage),
            4 => Ok(Self::ClientUsage),
            5 => Ok(Self::Abandon),
            _ => Err(AllocError::BadOpcode),
        }
    }
}

impl Opcode {
    /// How many request registers the opcode takes (exactly; more or fewer is `BadLength`).
    const fn request_words(self) -> usize {
        match self {
            Self::Alloc => 3,
            Self::Free => 2,
            Self::PoolUsage | Self::ClientUsage => 1,
            Self::Abandon => 0,
        }
    }
}

/// In a [`Request::ClientUsage`], the register value that names the caller itself.
pub const CALLER: u64 = u64::MAX;

/// A decoded, range-checked request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Allocate `size` bytes (rounded up to pages) aligned to `align` on the device side.
    Alloc {
        /// The pool to carve from.
        pool: PoolId,
        /// Requested bytes, non-zero.
        size: u64,
        /// Device-address alignment: a power of two from [`PAGE_SIZE`] to [`MAX_ALIGN`].
        align: u64,
    },
    /// Return a buffer.
    Free {
        /// The handle the allocation returned.
        handle: DmaHandle,
        /// The offset the allocation returned (a mismatch is refused).
        offset: u64,
    },
    /// Query one pool.
    PoolUsage {
        /// The pool.
        pool: PoolId,
    },
    /// Query one client's totals; `None` means the caller.
    ClientUsage {
        /// The client, or the caller.
        client: Option<ClientId>,
    },
    /// Take back the caller's latest grant, still live and never freed.
    Abandon,
}

impl Request {
    /// The request's opcode.
    pub const fn opcode(&self) -> Opcode {
        match self {
            Self::Alloc { .. } => Opcode::Alloc,
            Self::Free { .. } => Opcode::Free,
            Self::PoolUsage { .. } => Opcode::PoolUsage,
            Self::ClientUsage { .. } => Opcode::ClientUsage,
            Self::Abandon => Opcode::Abandon,
        }
    }

    /// Write the request into `mrs` and return its message info.
    pub fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo {
        let words: [u64; 3] = match *self {
            Self::Alloc { pool, size, align } => [pool.index().into(), size, align],
            Self::Free { handle, offset } => [handle.raw(), offset, 0],
            Self::PoolUsage { pool } => [pool.index().into(), 0, 0],
            Self::ClientUsage { client } => [client.map_or(CALLER, |c| c.index().into()), 0, 0],
            Self::Abandon => [0; 3],
        };
        let op = self.opcode();
        put_words(mrs, &words);
        MessageInfo::new(op as u64, op.request_words())
    }

    /// Decode and range-check a request a peer sent (every register is untrusted).
    ///
    /// # Errors
    /// [`AllocError::BadOpcode`] for an unknown label, [`AllocError::BadLength`] for the wrong
    /// register count, [`AllocError::NoSuchPool`] / [`AllocError::NoSuchClient`] for an id that
    /// cannot exist, [`AllocError::BadSize`] for a zero size or one that overflows when rounded up
    /// to pages, [`AllocError::BadAlignment`] for an alignment that is not a power of two up to
    /// [`MAX_ALIGN`].
    pub fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, AllocError> {
        let op = Opcode::try_from(msg.label())?;
        if msg.count() != op.request_words() {
            return Err(AllocError::BadLength);
        }
        let pool = || PoolId::try_from(mrs.get(0)).map_err(|_| AllocError::NoSuchPool);
        match op {
            Opcode::Alloc => Ok(Self::Alloc {
                pool: pool()?,
                size: check_size(mrs.get(1))?,
                align: check_align(mrs.get(2))?,
            }),
            Opcode::Free => Ok(Self::Free {
                handle: DmaHandle::from_raw(mrs.get(0)),
                offset: mrs.get(1),
            }),
            Opcode::PoolUsage => Ok(Self::PoolUsage { pool: pool()? }),
            Opcode::ClientUsage => Ok(Self::ClientUsage {
                client: match mrs.get(0) {
                    CALLER => None,
                    id => Some(ClientId::try_from(id).map_err(|_| AllocError::NoSuchClient)?),
                },
            }),
            Opcode::Abandon => Ok(Self::Abandon),
        }
    }
}

/// A size is non-zero and stays representable once rounded up to whole pages.
fn check_size(size: u64) -> Result<u64, AllocError> {
    if size == 0 || size.checked_add(PAGE_SIZE - 1).is_none() {
        return Err(AllocError::BadSize);
    }
    Ok(size)
}

/// 0 means "a page"; anything below a page is satisfied by page alignment.
fn check_align(align: u64) -> Result<u64, AllocError> {
    match align {
        0 => Ok(PAGE_SIZE),
        a if !a.is_power_of_two() || a > MAX_ALIGN => Err(AllocError::BadAlignment),
        a => Ok(a.max(PAGE_SIZE)),
    }
}

/// A granted buffer: what [`Opcode::Alloc`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// Names the buffer in a later free; only the caller that allocated it may use it.
    pub handle: DmaHandle,
    /// Byte offset of the buffer inside its pool (the same in every mapping of the pool).
    pub offset: u64,
    /// The address the device uses to reach the buffer (pool physical base + offset).
    pub device_addr: u64,
    /// The buffer's size: the request rounded up to whole pages.
    pub size: u64,
}

/// A successful reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// To [`Request::Alloc`].
    Allocated(Allocation),
    /// To [`Request::Free`] and [`Request::Abandon`].
    Freed,
    /// To [`Request::PoolUsage`].
    Pool(PoolUsage),
    /// To [`Request::ClientUsage`].
    Client(ClientUsage),
}

/// Reply words of a usage record (both records are 64 bytes).
const USAGE_WORDS: usize = 8;

impl Reply {
    /// Write the reply into `mrs` and return its message info (label 0 = success).
    pub fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo {
        let words: [u64; USAGE_WORDS] = match *self {
            Self::Allocated(a) => [
                a.handle.raw(),
                a.offset,
                a.device_addr,
                a.size,
                grant_check(&a),
                0,
                0,
                0,
            ],
            Self::Freed => [0; USAGE_WORDS],
            Self::Pool(u) => zerocopy::transmute!(u),
            Self::Client(u) => zerocopy::transmute!(u),
        };
        let count = match self {
            Self::Allocated(_) => GRANT_WORDS,
            Self::Freed => 0,
            Self::Pool(_) | Self::Client(_) => USAGE_WORDS,
        };
        put_words(mrs, words.get(..count).unwrap_or(&[]));
        MessageInfo::new(0, count)
    }

    /// Decode the server's reply to a request with opcode `op`.
    ///
    /// # Errors
    /// `Err(Some(e))` when the server refused the request with error `e`; `Err(None)` when the
    /// reply is malformed (unknown error code, wrong register count, a grant whose check word
    /// does not match).
    pub fn decode(
        op: Opcode,
        msg: MessageInfo,
        mrs: &MessageRegisters,
    ) -> Result<Self, Option<AllocError>> {
        if msg.label() != 0 {
            return Err(AllocError::try_from(msg.label()).ok());
        }
        let expected = match op {
            Opcode::Alloc => GRANT_WORDS,
            Opcode::Free | Opcode::Abandon => 0,
            Opcode::PoolUsage | Opcode::ClientUsage => USAGE_WORDS,
        };
        if msg.count() != expected {
            return Err(None);
        }
        let mut words = [0u64; USAGE_WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            *w = mrs.get(i);
        }
        Ok(match op {
            Opcode::Alloc => {
                let a = Allocation {
                    handle: DmaHandle::from_raw(words[0]),
                    offset: words[1],
                    device_addr: words[2],
                    size: words[3],
                };
                if words[4] != grant_check(&a) {
                    return Err(None);
                }
                Self::Allocated(a)
            }
            Opcode::Free | Opcode::Abandon => Self::Freed,
            Opcode::PoolUsage => Self::Pool(zerocopy::transmute!(words)),
            Opcode::ClientUsage => Self::Client(zerocopy::transmute!(words)),
        })
    }
}

/// Reply words of a grant: its four fields and the check word.
const GRANT_WORDS: usize = 5;

/// The check word of a grant: FNV-1a over its four fields' bytes. Not a defence against a
/// malicious server (it could compute it), but any garbling of the registers in between shows.
pub fn grant_check(a: &Allocation) -> u64 {
    [a.handle.raw(), a.offset, a.device_addr, a.size]
        .iter()
        .fold(pd_core::hash::FNV_OFFSET, |h, w| {
            pd_core::hash::fnv1a(h, &w.to_le_bytes())
        })
}

/// The reply to a refused request: the error code as label, no registers.
pub const fn error_reply(e: AllocError) -> MessageInfo {
    MessageInfo::new(e as u64, 0)
}

fn put_words(mrs: &mut MessageRegisters, words: &[u64]) {
    for (i, &w) in words.iter().enumerate() {
        mrs.set(i, w);
    }
}

/// One pool's usage (the reply to [`Opcode::PoolUsage`]; also what the bring-up log prints).
///
/// Layout is ours (no external ABI): 64 bytes, sent as eight message registers.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PoolUsage {
    /// The pool's id.
    pub pool: u8,
    /// The client the pool belongs to (charged for every buffer in it).
    pub owner: u8,
    /// Explicit padding, always 0.
    pub _pad: [u8; 2],
    /// Buffers currently allocated.
    pub live_buffers: u32,
    /// The pool's size in bytes.
    pub size: u64,
    /// Bytes in live buffers.
    pub used: u64,
    /// The largest buffer that could be allocated right now, in bytes.
    pub largest_free: u64,
    /// The device (physical) address of the pool's first byte.
    pub device_base: u64,
    /// Where the owner maps the pool (its CPU address of offset 0).
    pub owner_vaddr: u64,
    /// Buffers ever allocated from the pool.
    pub allocs: u64,
    /// Buffers ever returned (freed or reclaimed); `allocs - releases == live_buffers`.
    pub releases: u64,
}

// Layout pinned (our own wire format, see the module table): eight 64-bit words.
const _: () = assert!(core::mem::size_of::<PoolUsage>() == 64);
const _: () = assert!(core::mem::offset_of!(PoolUsage, pool) == 0);
const _: () = assert!(core::mem::offset_of!(PoolUsage, owner) == 1);
const _: () = assert!(core::mem::offset_of!(PoolUsage, _pad) == 2);
const _: () = assert!(core::mem::offset_of!(PoolUsage, live_buffers) == 4);
const _: () = assert!(core::mem::offset_of!(PoolUsage, size) == 8);
const _: () = assert!(core::mem::offset_of!(PoolUsage, used) == 16);
const _: () = assert!(core::mem::offset_of!(PoolUsage, largest_free) == 24);
const _: () = assert!(core::mem::offset_of!(PoolUsage, device_base) == 32);
const _: () = assert!(core::mem::offset_of!(PoolUsage, owner_vaddr) == 40);
const _: () = assert!(core::mem::offset_of!(PoolUsage, allocs) == 48);
const _: () = assert!(core::mem::offset_of!(PoolUsage, releases) == 56);

/// One client's totals (the reply to [`Opcode::ClientUsage`]).
///
/// A client is *charged* for every buffer in the pools it owns, whoever allocated it (gpu-server
/// allocating GART buffers on a client's behalf charges that client); it *holds* the buffers it
/// allocated itself and alone may free. The fault campaign checks that a restarted client ends
/// with `charged_bytes == 0`, `held_buffers == 0`, and `allocs == frees + reclaimed + live`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ClientUsage {
    /// The client's id.
    pub client: u8,
    /// Explicit padding, always 0.
    pub _pad: [u8; 3],
    /// Live buffers charged to this client.
    pub charged_buffers: u32,
    /// Bytes in live buffers charged to this client.
    pub charged_bytes: u64,
    /// The byte quota.
    pub quota_bytes: u64,
    /// The buffer-count quota.
    pub max_buffers: u32,
    /// Live buffers this client allocated itself (in any pool) and may free.
    pub held_buffers: u32,
    /// Buffers ever charged to this client.
    pub allocs: u64,
    /// Of those, freed by their holder.
    pub frees: u64,
    /// Of those, taken back by a reclaim.
    pub reclaimed: u64,
    /// How many times this client was reclaimed (restarts or retirements seen).
    pub reclaims: u64,
}

// Layout pinned (our own wire format, see the module table): eight 64-bit words.
const _: () = assert!(core::mem::size_of::<ClientUsage>() == 64);
const _: () = assert!(core::mem::offset_of!(ClientUsage, client) == 0);
const _: () = assert!(core::mem::offset_of!(ClientUsage, _pad) == 1);
const _: () = assert!(core::mem::offset_of!(ClientUsage, charged_buffers) == 4);
const _: () = assert!(core::mem::offset_of!(ClientUsage, charged_bytes) == 8);
const _: () = assert!(core::mem::offset_of!(ClientUsage, quota_bytes) == 16);
const _: () = assert!(core::mem::offset_of!(ClientUsage, max_buffers) == 24);
const _: () = assert!(core::mem::offset_of!(ClientUsage, held_buffers) == 28);
const _: () = assert!(core::mem::offset_of!(ClientUsage, allocs) == 32);
const _: () = assert!(core::mem::offset_of!(ClientUsage, frees) == 40);
const _: () = assert!(core::mem::offset_of!(ClientUsage, reclaimed) == 48);
const _: () = assert!(core::mem::offset_of!(ClientUsage, reclaims) == 56);
