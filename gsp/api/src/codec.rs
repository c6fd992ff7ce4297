//! The PPC encoding of [`GspOps`](crate::GspOps): label = [`Op`], arguments in message registers,
//! reply label 0 or a [`GspError`] code. [`serve`] is the callee's side.
//!
//! | op | request registers | reply registers |
//! |---|---|---|
//! | `RmAlloc` | mr0 = client \| parent << 32, mr1 = object \| class << 32, mr2 = flags \| len << 32, mr3.. params | mr0 = NV_STATUS, mr1 = len, mr2.. params |
//! | `RmControl` | mr0 = client \| object << 32, mr1 = cmd \| flags << 32, mr2 = len, mr3.. params | as `RmAlloc` |
//! | `RmFree` | mr0 = client \| parent << 32, mr1 = object | mr0 = NV_STATUS |
//! | `StaticInfo` | — | mr0.. [`StaticInfo`] |
//! | `Health` | — | mr0.. [`Health`] |
//! | `NextEvent` | — | mr0 = 1 if an event follows, mr1.. [`GspEvent`] |
//!
//! Parameters travel inline, little-endian packed into whole registers, at most
//! [`MAX_INLINE_PARAMS`] bytes (the RM alloc/control parameter structs gpu-server uses are well
//! below it; a larger one needs a shared region, which `system.xml` does not declare yet).

use crate::{GspError, GspEvent, GspOps, Health, RmAlloc, RmControl, StaticInfo};
use pd_core::{MessageInfo, MessageRegisters, MSG_REGS};
use zerocopy::{FromBytes, IntoBytes};

/// Operation codes (the PPC label). Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Op {
    /// [`GspOps::rm_alloc`].
    RmAlloc = 1,
    /// [`GspOps::rm_control`].
    RmControl = 2,
    /// [`GspOps::rm_free`].
    RmFree = 3,
    /// [`GspOps::static_info`].
    StaticInfo = 4,
    /// [`GspOps::health`].
    Health = 5,
    /// [`GspOps::next_event`].
    NextEvent = 6,
}

impl Op {
    /// The operation a label names.
    pub fn from_label(label: u64) -> Option<Self> {
        [
            Self::RmAlloc,
            Self::RmControl,
            Self::RmFree,
            Self::StaticInfo,
            Self::Health,
            Self::NextEvent,
        ]
        .into_iter()
        .find(|op| *op as u64 == label)
    }
}

/// First request register holding parameters.
pub(crate) const PARAMS_MR: usize = 3;
/// First reply register holding parameters.
pub(crate) const REPLY_PARAMS_MR: usize = 2;
/// Most parameter bytes one request carries.
pub const MAX_INLINE_PARAMS: usize = (MSG_REGS - PARAMS_MR) * 8;

/// Registers needed for `len` bytes.
pub(crate) const fn words(len: usize) -> usize {
    len.div_ceil(8)
}

/// Pack `bytes` into registers from `first`.
pub(crate) fn put_bytes(mrs: &mut MessageRegisters, first: usize, bytes: &[u8]) {
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        if let Some(dst) = w.get_mut(..chunk.len()) {
            dst.copy_from_slice(chunk);
        }
        mrs.set(first + i, u64::from_le_bytes(w));
    }
}

/// Unpack `out.len()` bytes from registers from `first`.
pub(crate) fn get_bytes(mrs: &MessageRegisters, first: usize, out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let w = mrs.get(first + i).to_le_bytes();
        if let Some(src) = w.get(..chunk.len()) {
            chunk.copy_from_slice(src);
        }
    }
}

/// Pack a value into registers from `first`; returns the register count used up to its end.
pub(crate) fn put_value<T: IntoBytes + zerocopy::Immutable>(
    mrs: &mut MessageRegisters,
    first: usize,
    v: &T,
) -> usize {
    put_bytes(mrs, first, v.as_bytes());
    first + words(core::mem::size_of::<T>())
}

/// Unpack a value from registers from `first`.
pub(crate) fn get_value<T: FromBytes + IntoBytes>(mrs: &MessageRegisters, first: usize) -> T {
    let mut v = T::new_zeroed();
    get_bytes(mrs, first, v.as_mut_bytes());
    v
}

/// Two u32 in one register.
pub(crate) const fn pair(lo: u32, hi: u32) -> u64 {
    (hi as u64) << 32 | lo as u64
}

/// The two u32 of a register.
pub(crate) const fn split(w: u64) -> (u32, u32) {
    // CAST: the two halves of a u64, truncation intended.
    (w as u32, (w >> 32) as u32)
}

/// An error reply.
fn error(mrs: &mut MessageRegisters, e: GspError) -> MessageInfo {
    let status = match e {
        GspError::Rm { status } => status,
        _ => 0,
    };
    mrs.set(0, u64::from(status));
    MessageInfo::new(e.code(), 1)
}

/// Serve one PPC: decode the request in `mrs`, run it on `ops`, leave the reply in `mrs`.
/// Every length is checked against what the caller actually sent (`msg.count()`).
pub fn serve(ops: &mut dyn GspOps, mrs: &mut MessageRegisters, msg: MessageInfo) -> MessageInfo {
    let Some(op) = Op::from_label(msg.label()) else {
        return error(mrs, GspError::BadRequest);
    };
    match op {
        Op::RmAlloc | Op::RmControl => {
            let len = match op {
                Op::RmAlloc => u64::from(split(mrs.get(2)).1),
                _ => mrs.get(2),
            };
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > MAX_INLINE_PARAMS || msg.count() < PARAMS_MR + words(len) {
                return error(mrs, GspError::BadRequest);
            }
            let mut buf = [0u8; MAX_INLINE_PARAMS];
            let Some(params) = buf.get_mut(..len) else {
                return error(mrs, GspError::BadRequest);
            };
            get_bytes(mrs, PARAMS_MR, params);
            let (a, b) = split(mrs.get(0));
            let (c, d) = split(mrs.get(1));
            let result = if op == Op::RmAlloc {
                let flags = split(mrs.get(2)).0;
                let req = RmAlloc {
                    client: a,
                    parent: b,
                    object: c,
                    class: d,
                    flags,
                };
                ops.rm_alloc(&req, params)
            } else {
                let req = RmControl {
                    client: a,
                    object: b,
                    cmd: c,
                    flags: d,
                };
                ops.rm_control(&req, params)
            };
            let label = match result {
                Ok(()) => 0,
                Err(e @ GspError::Rm { .. }) => {
                    let _ = error(mrs, e);
                    e.code()
                }
                Err(e) => return error(mrs, e),
            };
            if label == 0 {
                mrs.set(0, 0);
            }
            mrs.set(1, len as u64);
            put_bytes(mrs, REPLY_PARAMS_MR, params);
            MessageInfo::new(label, REPLY_PARAMS_MR + words(len))
        }
        Op::RmFree => {
            if msg.count() < 2 {
                return error(mrs, GspError::BadRequest);
            }
            let (client, parent) = split(mrs.get(0));
            let (object, _) = split(mrs.get(1));
            match ops.rm_free(client, parent, object) {
                Ok(()) => {
                    mrs.set(0, 0);
                    MessageInfo::new(0, 1)
                }
                Err(e) => error(mrs, e),
            }
        }
        Op::StaticInfo => match ops.static_info() {
            Ok(s) => MessageInfo::new(0, put_value::<StaticInfo>(mrs, 0, &s)),
            Err(e) => error(mrs, e),
        },
        Op::Health => {
            let h = ops.health();
            MessageInfo::new(0, put_value::<Health>(mrs, 0, &h))
        }
        Op::NextEvent => match ops.next_event() {
            Some(ev) => {
                mrs.set(0, 1);
                MessageInfo::new(0, put_value::<GspEvent>(mrs, 1, &ev))
            }
            None => {
                mrs.set(0, 0);
                MessageInfo::new(0, 1)
            }
        },
    }
}
