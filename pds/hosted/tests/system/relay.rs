//! The test systems' service PDs: a checked echo relay, so every channel of a test system
//! carries real request/response traffic end to end.
//!
//! Protocol: a request has label [`ECHO`] and 1..=[`WORDS`] message registers. Before answering,
//! a relay sends the same words to each of its downstream channels and checks every reply against
//! [`mix`]; it then answers label [`OK`] with `mix` of each word. A bad request, a wrong
//! downstream reply, or an unreachable downstream PD (it faulted or was restarted during the call)
//! is answered with an error label instead (`Reply`), so the caller sees a clean error and can
//! retry. A relay may also check the words against a region shared with the caller (drm and each
//! client's ioctl buffer), so shared memory is exercised as well.
//!
//! Restart behaviour: echo is idempotent, so callers retry.

use pd_core::shm::{Access, Region};
use pd_core::{Channel, ChannelSet, Handler, IpcError, Kernel, MessageInfo};

/// The request label.
pub const ECHO: u64 = 1;
/// Success.
pub const OK: u64 = 0;
/// The most words a request carries.
pub const WORDS: usize = 4;

/// An answer's label, other than [`OK`]. Discriminants start at 1 (0 is success).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Reply {
    /// The request was malformed, or its words did not match the shared region.
    BadRequest = 1,
    /// A downstream PD answered wrongly.
    BadDownstream = 2,
    /// A downstream PD faulted, restarted or missed its deadline during the call.
    Unavailable = 3,
}

/// What every hop answers for a word.
pub const fn mix(w: u64) -> u64 {
    w.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15
}

/// Why an echo failed, seen from the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoError {
    /// The call itself failed.
    Ipc(IpcError),
    /// The callee answered with an error label (a [`Reply`] value, or anything unknown).
    Refused(u64),
    /// The callee answered OK with wrong words.
    Wrong,
}

impl core::fmt::Display for EchoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ipc(e) => write!(f, "call failed: {e}"),
            Self::Refused(1) => write!(f, "refused as a bad request"),
            Self::Refused(2) => write!(f, "a PD further down answered wrongly"),
            Self::Refused(3) => write!(f, "a PD further down faulted or restarted during the call"),
            Self::Refused(l) => write!(f, "refused with label {l:#x}"),
            Self::Wrong => write!(f, "wrong answer"),
        }
    }
}

/// Send `words` to `ch` and check the answer (the client stub).
///
/// # Errors
/// An [`EchoError`] saying what went wrong.
pub fn echo(k: &mut dyn Kernel, ch: Channel, words: &[u64]) -> Result<(), EchoError> {
    let n = words.len().min(WORDS);
    for (i, &w) in words.iter().take(n).enumerate() {
        k.mrs().set(i, w);
    }
    let reply = k
        .ppcall(ch, MessageInfo::new(ECHO, n))
        .map_err(EchoError::Ipc)?;
    if reply.label() != OK {
        return Err(EchoError::Refused(reply.label()));
    }
    let mrs = k.mrs();
    let right = reply.count() == n && words.iter().enumerate().all(|(i, &w)| mrs.get(i) == mix(w));
    right.then_some(()).ok_or(EchoError::Wrong)
}

/// The relay handler: `downstream` channels, and regions shared with some callers.
#[derive(Debug)]
pub struct Relay<A: Access, const S: usize> {
    downstream: &'static [Channel],
    shared: [(Channel, Region<A>); S],
}

impl Relay<pd_core::shm::ReadOnly, 0> {
    /// A relay to `downstream` (empty: a leaf that only answers).
    pub fn new(k: &mut dyn Kernel, downstream: &'static [Channel]) -> Self {
        Self::with_shared(k, downstream, [])
    }
}

impl<A: Access, const S: usize> Relay<A, S> {
    /// A relay that also checks requests on each channel against the first words of its region.
    pub fn with_shared(
        k: &mut dyn Kernel,
        downstream: &'static [Channel],
        shared: [(Channel, Region<A>); S],
    ) -> Self {
        log::info!(
            "{}: up (placeholder echo relay: {} downstream, {} shared buffers)",
            k.pd_name(),
            downstream.len(),
            S
        );
        Self { downstream, shared }
    }

    fn serve(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> Result<usize, Reply> {
        let n = msg.count();
        if msg.label() != ECHO || n == 0 || n > WORDS {
            return Err(Reply::BadRequest);
        }
        let mut words = [0u64; WORDS];
        for (i, w) in words.iter_mut().enumerate().take(n) {
            *w = k.mrs().get(i);
        }
        let words = words.get(..n).ok_or(Reply::BadRequest)?;
        if let Some((_, region)) = self.shared.iter().find(|(c, _)| *c == ch) {
            let same = words
                .iter()
                .enumerate()
                .all(|(i, &w)| region.read::<u64>(i * 8) == Ok(w));
            if !same {
                return Err(Reply::BadRequest);
            }
        }
        for &down in self.downstream {
            match echo(k, down, words) {
                Ok(()) => {}
                Err(EchoError::Ipc(_)) => return Err(Reply::Unavailable),
                Err(EchoError::Refused(r)) if r == Reply::Unavailable as u64 => {
                    return Err(Reply::Unavailable)
                }
                Err(e) => {
                    log::warn!("{}: bad answer from {down:?}: {e:?}", k.pd_name());
                    return Err(Reply::BadDownstream);
                }
            }
        }
        for (i, &w) in words.iter().enumerate() {
            k.mrs().set(i, mix(w));
        }
        Ok(n)
    }
}

impl<A: Access, const S: usize> Handler for Relay<A, S> {
    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        match self.serve(k, ch, msg) {
            Ok(n) => MessageInfo::new(OK, n),
            Err(r) => MessageInfo::new(r as u64, 0),
        }
    }

    fn notified(&mut self, k: &mut dyn Kernel, channels: ChannelSet) {
        log::debug!("{}: status change notified on {channels:?}", k.pd_name());
    }
}
