//! The notify and PPC protocol on a [`ChannelPage`], for the two end PDs and the runtime. Every
//! wait and wake-up follows `wait`'s protocol (spin, announce, sleep; the writer wakes).
//!
//! Notification: the sender increments the receiver's notification count; the receiver delivers
//! one notification whenever the count differs from the last it saw, so notifications coalesce as
//! seL4 notification words do, and receiving writes nothing shared.
//!
//! PPC (one slot per channel; only the `pp` end calls, and a PD is in at most one call at a time):
//!
//! ```text
//! caller: write label, count, MRs; state := seq|CALLED; wait until state != seq|CALLED
//! callee: sees CALLED; reads the slot; runs `protected`; writes the reply;
//!         CAS state seq|CALLED -> seq|REPLIED (fails if the call was abandoned: reply dropped)
//! runtime: callee died     -> CAS CALLED -> FAULTED     (the caller gets PeerFaulted)
//!          deadline missed -> CAS CALLED -> TIMED_OUT   (the caller gets Timeout)
//!          caller died     -> CAS CALLED -> IDLE         (a late reply is dropped)
//! ```
//!
//! The callee waits on the state word for calls and the caller for replies; as the word is CALLED
//! exactly while the caller may wait and the callee may not, at most one of them sleeps on it.
//! The sequence number makes a reply meant for an abandoned call unable to answer the next one.
//! A call made while the callee is dead (killed, waiting for its parent's decision) stays pending
//! and is served by the restarted instance; a callee stopped for good has its `stopped` flag set,
//! which the caller checks after publishing its call (and the runtime sets before failing pending
//! calls), so no call waits on a PD that will never run again.

use crate::pages::{ChannelPage, NOTIFY_COUNT, WAITING};
use crate::wait::{self, Spin};
use pd_core::{IpcError, MessageInfo, MessageRegisters};
use std::sync::atomic::Ordering;

const PHASE_MASK: u32 = 0b111;
const SEQ_SHIFT: u32 = 3;
const SEQ_MASK: u32 = (WAITING - 1) >> SEQ_SHIFT;

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Phase {
    /// No call (or an abandoned one).
    Idle = 0,
    /// The caller waits for the callee.
    Called = 1,
    /// The callee's reply is in the slot.
    Replied = 2,
    /// The callee died during the call.
    Faulted = 3,
    /// The callee missed the watchdog deadline.
    TimedOut = 4,
}

impl Phase {
    fn of(state: u32) -> Self {
        match state & PHASE_MASK {
            1 => Self::Called,
            2 => Self::Replied,
            3 => Self::Faulted,
            4 => Self::TimedOut,
            _ => Self::Idle,
        }
    }
}

fn seq_of(state: u32) -> u32 {
    (state >> SEQ_SHIFT) & SEQ_MASK
}

fn state(seq: u32, phase: Phase) -> u32 {
    ((seq & SEQ_MASK) << SEQ_SHIFT) | phase as u32
}

/// Which end of the page is whose (ends are indexed as in system.xml).
#[derive(Debug, Clone, Copy)]
pub struct Ends {
    /// This PD's end.
    pub own: usize,
    /// The other PD's end.
    pub peer: usize,
}

impl Ends {
    /// The ends seen from end `own` (0 or 1).
    pub fn from(own: usize) -> Self {
        Self {
            own: own & 1,
            peer: (own & 1) ^ 1,
        }
    }
}

/// Notify the peer.
pub fn notify(page: &ChannelPage, ends: Ends) {
    if let Some(word) = page.notify.get(ends.peer) {
        wait::update(word, |v| Some(v.wrapping_add(1) & NOTIFY_COUNT));
    }
}

/// The notification count of our end (compare with the last one seen).
pub fn notifications(page: &ChannelPage, ends: Ends) -> u32 {
    page.notify
        .get(ends.own)
        .map_or(0, |w| w.load(Ordering::Acquire) & NOTIFY_COUNT)
}

/// Call the peer: send `msg` with the first `msg.count()` registers of `mrs`, wait, and leave the
/// reply registers in `mrs`.
///
/// # Errors
/// [`IpcError::PeerFaulted`] when the callee died during the call or is stopped for good,
/// [`IpcError::Timeout`] when the runtime's watchdog gave up on it.
pub fn call(
    page: &ChannelPage,
    ends: Ends,
    mrs: &mut MessageRegisters,
    msg: MessageInfo,
    spin: Spin,
) -> Result<MessageInfo, IpcError> {
    let seq = seq_of(page.state.load(Ordering::Acquire)).wrapping_add(1);
    write_message(page, mrs, msg);
    let called = state(seq, Phase::Called);
    wait::publish(&page.state, called);
    let stopped = page.stopped.get(ends.peer).ok_or(IpcError::BadChannel)?;
    if stopped.load(Ordering::SeqCst) != 0 {
        let idle = state(seq, Phase::Idle);
        if wait::update(&page.state, |v| (v == called).then_some(idle)).is_some() {
            return Err(IpcError::PeerFaulted);
        }
    }
    let end = wait::wait_word(&page.state, spin, None, |v| v != called).unwrap_or(0);
    match (seq_of(end) == seq, Phase::of(end)) {
        (true, Phase::Replied) => Ok(read_message(page, mrs)),
        (true, Phase::TimedOut) => Err(IpcError::Timeout),
        // Faulted, or the runtime reset the slot under us: the callee's state is gone.
        _ => Err(IpcError::PeerFaulted),
    }
}

/// Put `msg` and its registers from `mrs` into the slot.
fn write_message(page: &ChannelPage, mrs: &MessageRegisters, msg: MessageInfo) {
    for (slot, v) in page.mrs.iter().zip(mrs.as_slice()).take(msg.count()) {
        slot.store(*v, Ordering::Relaxed);
    }
    // CAST: count is clamped to 64 by MessageInfo, so it fits the tag's 7 bits.
    page.tag
        .store(msg.label() << 7 | msg.count() as u64, Ordering::Relaxed);
}

/// The slot's message, with its registers copied into `mrs` (the count is clamped to 64).
fn read_message(page: &ChannelPage, mrs: &mut MessageRegisters) -> MessageInfo {
    let tag = page.tag.load(Ordering::Relaxed);
    // CAST: the low 7 bits; MessageInfo clamps the count to 64.
    let msg = MessageInfo::new(tag >> 7, (tag & 0x7f) as usize);
    for (v, slot) in mrs
        .as_mut_slice()
        .iter_mut()
        .zip(&page.mrs)
        .take(msg.count())
    {
        *v = slot.load(Ordering::Relaxed);
    }
    msg
}

/// Whether the slot holds a pending call (the callee's poll; a read only).
pub fn has_call(page: &ChannelPage) -> bool {
    is_called(page.state.load(Ordering::Acquire))
}

/// Whether a state word value is a pending call.
pub fn is_called(state: u32) -> bool {
    Phase::of(state) == Phase::Called
}

/// A call taken by the callee: its sequence number and message (registers copied into `mrs`).
#[derive(Debug, Clone, Copy)]
pub struct Incoming {
    seq: u32,
    /// The request's tag.
    pub msg: MessageInfo,
}

/// The pending call, if the slot holds one, with its registers copied into `mrs`.
pub fn take_call(page: &ChannelPage, mrs: &mut MessageRegisters) -> Option<Incoming> {
    let s = page.state.load(Ordering::Acquire);
    if Phase::of(s) != Phase::Called {
        return None;
    }
    Some(Incoming {
        seq: seq_of(s),
        msg: read_message(page, mrs),
    })
}

/// Answer `call` with `reply` and the first `reply.count()` registers of `mrs`. Returns whether the
/// caller was still waiting for this call.
pub fn reply(
    page: &ChannelPage,
    call: Incoming,
    mrs: &MessageRegisters,
    reply: MessageInfo,
) -> bool {
    // The caller is blocked until the state changes, so writing the slot first is safe; if the
    // call was abandoned in the meantime the CAS below fails and nobody reads these words.
    write_message(page, mrs, reply);
    finish(page, call.seq, Phase::Replied)
}

/// Move a pending call with sequence `seq` to `phase` and wake its caller; false when the call is
/// no longer pending.
fn finish(page: &ChannelPage, seq: u32, phase: Phase) -> bool {
    let called = state(seq, Phase::Called);
    wait::update(&page.state, |v| (v == called).then_some(state(seq, phase))).is_some()
}

/// Runtime: the pending call, if one is pending, as a value that changes with every call (the
/// watchdog times a call from when it first sees this value).
pub fn pending(page: &ChannelPage) -> Option<u32> {
    let s = page.state.load(Ordering::Acquire) & !WAITING;
    (Phase::of(s) == Phase::Called).then_some(s)
}

/// Runtime: end the pending call, if any, with `phase` (`Faulted`, `TimedOut`, or `Idle` when the
/// caller itself is gone). Returns whether a call was pending.
pub fn end_pending(page: &ChannelPage, phase: Phase) -> bool {
    let seq = seq_of(page.state.load(Ordering::Acquire));
    finish(page, seq, phase)
}

/// Runtime: mark end `end`'s PD as stopped for good (or running again).
pub fn set_stopped(page: &ChannelPage, end: usize, stopped: bool) {
    if let Some(w) = page.stopped.get(end) {
        w.store(u32::from(stopped), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::WAITING;
    use crate::sys::memfd::{Mapping, Memfd, Prot};
    use std::sync::Arc;

    /// A channel page in this process (threads stand in for the two PDs).
    fn page() -> Arc<Mapping> {
        let fd = Memfd::create("test-channel", crate::pages::PAGE).unwrap();
        Arc::new(Mapping::new(fd.fd(), crate::pages::PAGE, Prot::RW, None).unwrap())
    }

    fn serve_one(map: &Mapping, add: u64) -> bool {
        let p = map.page::<ChannelPage>().unwrap();
        wait::wait_word(&p.state, Spin::default(), None, |v| {
            Phase::of(v) == Phase::Called
        });
        assert!(has_call(p));
        let mut mrs = MessageRegisters::default();
        let Some(call) = take_call(p, &mut mrs) else {
            return false;
        };
        for i in 0..call.msg.count() {
            mrs.set(i, mrs.get(i) + add);
        }
        let reply_msg = MessageInfo::new(call.msg.label() + 1, call.msg.count());
        reply(p, call, &mrs, reply_msg)
    }

    #[test]
    fn a_call_copies_registers_both_ways() {
        let map = page();
        let m2 = Arc::clone(&map);
        let callee = std::thread::spawn(move || serve_one(&m2, 100));
        let p = map.page::<ChannelPage>().unwrap();
        let mut mrs = MessageRegisters::default();
        for i in 0..3 {
            mrs.set(i, i as u64);
        }
        mrs.set(3, 77); // not sent: count is 3
        let reply = call(
            p,
            Ends::from(0),
            &mut mrs,
            MessageInfo::new(9, 3),
            Spin::default(),
        )
        .unwrap();
        assert!(callee.join().unwrap());
        assert_eq!((reply.label(), reply.count()), (10, 3));
        assert_eq!(
            [mrs.get(0), mrs.get(1), mrs.get(2), mrs.get(3)],
            [100, 101, 102, 77]
        );
        assert_eq!(p.state.load(Ordering::SeqCst) & WAITING, 0);
    }

    #[test]
    fn a_faulted_or_timed_out_call_ends_with_the_matching_error() {
        for (phase, err) in [
            (Phase::Faulted, IpcError::PeerFaulted),
            (Phase::TimedOut, IpcError::Timeout),
        ] {
            let map = page();
            let m2 = Arc::clone(&map);
            let runtime = std::thread::spawn(move || {
                let p = m2.page::<ChannelPage>().unwrap();
                while pending(p).is_none() {
                    std::thread::yield_now();
                }
                assert_eq!(pending(p), Some(state(1, Phase::Called)));
                assert!(end_pending(p, phase));
            });
            let p = map.page::<ChannelPage>().unwrap();
            let mut mrs = MessageRegisters::default();
            let r = call(
                p,
                Ends::from(0),
                &mut mrs,
                MessageInfo::new(1, 0),
                Spin { ns: 0 },
            );
            runtime.join().unwrap();
            assert_eq!(r, Err(err));
            // A late reply to the ended call is dropped, not delivered to anyone.
            let mut mrs = MessageRegisters::default();
            assert!(take_call(p, &mut mrs).is_none());
        }
    }

    #[test]
    fn a_reply_to_an_abandoned_call_cannot_answer_the_next_one() {
        let map = page();
        let p = map.page::<ChannelPage>().unwrap();
        // Caller A publishes call seq 1 and dies; the callee takes it.
        p.state.store(state(1, Phase::Called), Ordering::SeqCst);
        let mut mrs = MessageRegisters::default();
        let stale = take_call(p, &mut mrs).unwrap();
        // The runtime abandons it, and the restarted caller publishes call seq 2.
        assert!(end_pending(p, Phase::Idle));
        p.state.store(state(2, Phase::Called), Ordering::SeqCst);
        assert!(!reply(p, stale, &mrs, MessageInfo::new(5, 0)));
        assert_eq!(Phase::of(p.state.load(Ordering::SeqCst)), Phase::Called);
    }

    #[test]
    fn calling_a_stopped_peer_fails_at_once() {
        let map = page();
        let p = map.page::<ChannelPage>().unwrap();
        set_stopped(p, 1, true);
        let mut mrs = MessageRegisters::default();
        let r = call(
            p,
            Ends::from(0),
            &mut mrs,
            MessageInfo::new(1, 0),
            Spin::default(),
        );
        assert_eq!(r, Err(IpcError::PeerFaulted));
        assert_eq!(pending(p), None);
        set_stopped(p, 1, false);
        assert_eq!(p.stopped[1].load(Ordering::SeqCst), 0);
    }

    #[test]
    fn notifications_coalesce() {
        let map = page();
        let p = map.page::<ChannelPage>().unwrap();
        let (a, b) = (Ends::from(0), Ends::from(1));
        let seen = notifications(p, a);
        notify(p, b);
        notify(p, b);
        let now = notifications(p, a);
        assert_ne!(now, seen, "end 0 sees new notifications");
        assert_eq!(now, notifications(p, a), "reading consumes nothing shared");
        assert_eq!(notifications(p, b), 0, "end 1 got none");
        p.notify[0].store(NOTIFY_COUNT, Ordering::SeqCst);
        notify(p, b);
        assert_eq!(
            notifications(p, a),
            0,
            "the count wraps without touching WAITING"
        );
    }
}
