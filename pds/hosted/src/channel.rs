//! The notify and PPC protocol on a [`ChannelPage`], for the two end PDs and the runtime.
//!
//! Notification: the sender sets [`NOTIFY`] in the receiver's doorbell; bits coalesce until the
//! receiver takes them, as seL4 notification words do.
//!
//! PPC (one slot per channel; only the `pp` end calls, and a PD is in at most one call at a time):
//!
//! ```text
//! caller: write label, count, MRs, called_at; state := seq|CALLED; ring CALL; wait for state != CALLED
//! callee: take CALL; read the slot if state is CALLED; run `protected`; write the reply;
//!         CAS state seq|CALLED -> seq|REPLIED (fails if the call was abandoned: the reply is dropped)
//! runtime: callee died     -> CAS CALLED -> FAULTED     (the caller gets PeerFaulted)
//!          deadline missed -> CAS CALLED -> TIMED_OUT   (the caller gets Timeout)
//!          caller died     -> CAS CALLED -> IDLE         (a late reply is dropped)
//! ```
//!
//! The sequence number makes a reply meant for an abandoned call unable to answer the next one.
//! A call made while the callee is dead (killed, waiting for its parent's decision) stays pending
//! and is served by the restarted instance; a callee stopped for good has its `stopped` flag set,
//! which the caller checks after publishing its call (and the runtime sets before failing pending
//! calls), so no call waits on a PD that will never run again.

use crate::pages::{ChannelPage, CALL, NOTIFY};
use crate::wait::{self, Spin};
use pd_core::{IpcError, MessageInfo, MessageRegisters};
use std::sync::atomic::Ordering;

const PHASE_MASK: u32 = 0b111;
const SEQ_SHIFT: u32 = 3;
const SEQ_MASK: u32 = (crate::pages::WAITING - 1) >> SEQ_SHIFT;

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
    if let Some(word) = page.doorbell.get(ends.peer) {
        wait::ring(word, NOTIFY);
    }
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
    now_ns: u64,
) -> Result<MessageInfo, IpcError> {
    let seq = seq_of(page.state.load(Ordering::Acquire)).wrapping_add(1);
    for (slot, v) in page.mrs.iter().zip(mrs.as_slice()).take(msg.count()) {
        slot.store(*v, Ordering::Relaxed);
    }
    // CAST: count is clamped to 64 by MessageInfo.
    page.count.store(msg.count() as u32, Ordering::Relaxed);
    page.label.store(msg.label(), Ordering::Relaxed);
    page.called_at.store(now_ns, Ordering::Relaxed);
    page.state
        .store(state(seq, Phase::Called), Ordering::SeqCst);
    let doorbell = page.doorbell.get(ends.peer).ok_or(IpcError::BadChannel)?;
    wait::ring(doorbell, CALL);
    let stopped = page.stopped.get(ends.peer).ok_or(IpcError::BadChannel)?;
    if stopped.load(Ordering::SeqCst) != 0 {
        let called = state(seq, Phase::Called);
        if page
            .state
            .compare_exchange(
                called,
                state(seq, Phase::Idle),
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
        {
            return Err(IpcError::PeerFaulted);
        }
    }
    let done = |v: u32| seq_of(v) != seq || Phase::of(v) != Phase::Called;
    let end = wait::wait_word(&page.state, spin, None, done).unwrap_or(0);
    match (seq_of(end) == seq, Phase::of(end)) {
        (true, Phase::Replied) => {
            let reply = MessageInfo::new(
                page.label.load(Ordering::Relaxed),
                // CAST: u32 to usize; MessageInfo clamps it to 64.
                page.count.load(Ordering::Relaxed) as usize,
            );
            for (v, slot) in mrs
                .as_mut_slice()
                .iter_mut()
                .zip(&page.mrs)
                .take(reply.count())
            {
                *v = slot.load(Ordering::Relaxed);
            }
            Ok(reply)
        }
        (true, Phase::TimedOut) => Err(IpcError::Timeout),
        // Faulted, or the runtime reset the slot under us: the callee's state is gone.
        _ => Err(IpcError::PeerFaulted),
    }
}

/// A call taken by the callee: its sequence number and message (registers copied into `mrs`).
#[derive(Debug, Clone, Copy)]
pub struct Incoming {
    seq: u32,
    /// The request's tag.
    pub msg: MessageInfo,
}

/// The pending call, if the slot holds one (after the callee took [`CALL`] from its doorbell).
pub fn take_call(page: &ChannelPage, mrs: &mut MessageRegisters) -> Option<Incoming> {
    let s = page.state.load(Ordering::Acquire);
    if Phase::of(s) != Phase::Called {
        return None;
    }
    let msg = MessageInfo::new(
        page.label.load(Ordering::Relaxed),
        // CAST: u32 to usize; MessageInfo clamps it to 64.
        page.count.load(Ordering::Relaxed) as usize,
    );
    for (v, slot) in mrs
        .as_mut_slice()
        .iter_mut()
        .zip(&page.mrs)
        .take(msg.count())
    {
        *v = slot.load(Ordering::Relaxed);
    }
    Some(Incoming {
        seq: seq_of(s),
        msg,
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
    for (slot, v) in page.mrs.iter().zip(mrs.as_slice()).take(reply.count()) {
        slot.store(*v, Ordering::Relaxed);
    }
    // CAST: count is clamped to 64 by MessageInfo.
    page.count.store(reply.count() as u32, Ordering::Relaxed);
    page.label.store(reply.label(), Ordering::Relaxed);
    finish(page, call.seq, Phase::Replied)
}

/// Move a pending call with sequence `seq` to `phase` and wake its caller; false when the call is
/// no longer pending.
fn finish(page: &ChannelPage, seq: u32, phase: Phase) -> bool {
    let mut cur = page.state.load(Ordering::Acquire);
    loop {
        if seq_of(cur) != seq || Phase::of(cur) != Phase::Called {
            return false;
        }
        let waiting = cur & crate::pages::WAITING;
        match page.state.compare_exchange_weak(
            cur,
            state(seq, phase) | waiting,
            Ordering::SeqCst,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                if waiting != 0 {
                    crate::sys::futex::wake(&page.state);
                }
                return true;
            }
            Err(now) => cur = now,
        }
    }
}

/// Runtime: the pending call's start time, if one is pending.
pub fn pending_since(page: &ChannelPage) -> Option<u64> {
    let s = page.state.load(Ordering::Acquire);
    (Phase::of(s) == Phase::Called).then(|| page.called_at.load(Ordering::Relaxed))
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
        let bell = &p.doorbell[1];
        wait::wait_word(bell, Spin::default(), None, |v| v & CALL != 0);
        assert_eq!(wait::take(bell) & CALL, CALL);
        let mut mrs = MessageRegisters::default();
        let Some(call) = take_call(p, &mut mrs) else {
            return false;
        };
        for i in 0..call.msg.count() {
            mrs.set(i, mrs.get(i) + add);
        }
        reply(
            p,
            call,
            &mrs,
            MessageInfo::new(call.msg.label() + 1, call.msg.count()),
        )
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
            1,
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
                while pending_since(p).is_none() {
                    std::thread::yield_now();
                }
                assert_eq!(pending_since(p), Some(42));
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
                42,
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
            0,
        );
        assert_eq!(r, Err(IpcError::PeerFaulted));
        assert_eq!(pending_since(p), None);
        set_stopped(p, 1, false);
        assert_eq!(p.stopped[1].load(Ordering::SeqCst), 0);
    }

    #[test]
    fn notifications_coalesce() {
        let map = page();
        let p = map.page::<ChannelPage>().unwrap();
        notify(p, Ends::from(1));
        notify(p, Ends::from(1));
        assert_eq!(wait::take(&p.doorbell[0]), NOTIFY);
        assert_eq!(wait::take(&p.doorbell[0]), 0);
        assert_eq!(p.doorbell[1].load(Ordering::SeqCst), 0);
    }
}
