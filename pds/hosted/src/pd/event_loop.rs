//! The hosted PD's Microkit event loop: one event at a time, in this order: child faults,
//! coalesced notifications, PPCs (one per channel with a pending call), the timer. While the PD is
//! inside a `ppcall` it is not in this loop, so, as on Microkit, nothing is delivered to it until
//! the call returns.
//!
//! Idle, it spins on its doorbell words for the spin budget, then announces itself on every word
//! ([`WAITING`]) and sleeps in one `futex_waitv` on all of them, until the timer's deadline.

use super::kernel::HostedKernel;
use crate::channel;
use crate::pages::{CALL, FAULT, NOTIFY, WAITING};
use crate::sys::{clock, futex::WaitSet};
use crate::wait;
use pd_core::{Channel, ChannelSet, Child, Handler};
use std::sync::atomic::{AtomicU32, Ordering};

/// A started hosted PD: its kernel and the words it sleeps on.
#[derive(Debug)]
pub struct HostedPd {
    pub(crate) kernel: HostedKernel,
    /// The control page's event word, then each channel's doorbell of our end.
    pub(crate) words: Vec<&'static AtomicU32>,
    pub(crate) waitset: WaitSet,
}

impl HostedPd {
    /// Deliver pending events; whether there were any.
    fn dispatch(&mut self, handler: &mut dyn Handler) -> bool {
        let k = &mut self.kernel;
        let mut any = false;
        if wait::take(&k.control.event) & FAULT != 0
            || k.control.faults_pending.load(Ordering::SeqCst) != 0
        {
            for (id, kind) in crate::fault::take(k.control) {
                if let Ok(child) = Child::try_new(u64::from(id)) {
                    handler.fault(k, child, kind);
                    any = true;
                }
            }
        }
        let mut notified = ChannelSet::EMPTY;
        let mut calls = ChannelSet::EMPTY;
        for (id, end) in k.channels.iter().enumerate() {
            let Some(end) = end else { continue };
            let Some(word) = end.page.doorbell.get(end.ends.own) else {
                continue;
            };
            let bits = wait::take(word);
            // CAST: usize to u64 is lossless; the table has MAX_CHANNELS entries.
            let Ok(ch) = Channel::try_new(id as u64) else {
                continue;
            };
            if bits & NOTIFY != 0 {
                notified = notified.with(ch);
            }
            if bits & CALL != 0 && end.serves {
                calls = calls.with(ch);
            }
        }
        if !notified.is_empty() {
            handler.notified(k, notified);
            any = true;
        }
        for ch in calls.iter() {
            let Some(page) = k
                .channels
                .get(usize::from(ch.index()))
                .and_then(|e| e.as_ref())
                .map(|e| e.page)
            else {
                continue;
            };
            if let Some(call) = channel::take_call(page, &mut k.mrs) {
                let reply = handler.protected(k, ch, call.msg);
                channel::reply(page, call, &k.mrs, reply);
                any = true;
            }
        }
        if k.timeout.is_some_and(|t| clock::now_ns() >= t) {
            k.timeout = None;
            handler.timeout(k);
            any = true;
        }
        any
    }

    /// Spin, then sleep until a word changes or the timer is due.
    fn idle(&mut self) {
        let words = &self.words;
        let pending = || {
            words
                .iter()
                .any(|w| w.load(Ordering::Acquire) & !WAITING != 0)
        };
        let timeout = self.kernel.timeout;
        let due = || timeout.is_some_and(|t| clock::now_ns() >= t);
        if self
            .kernel
            .spin
            .poll(|| (pending() || due()).then_some(()))
            .is_some()
        {
            return;
        }
        // Announce on every word; sleep only if all of them still hold no event.
        let mut asleep = true;
        for w in words {
            let v = match w.compare_exchange(0, WAITING, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => WAITING,
                Err(now) => now,
            };
            if v != WAITING {
                asleep = false;
                break;
            }
        }
        if asleep && !due() {
            self.waitset.wait(words.iter().map(|_| WAITING), timeout);
        }
        for w in words {
            w.fetch_and(!WAITING, Ordering::AcqRel);
        }
    }
}

impl pd_programs::Platform for HostedPd {
    fn kernel(&mut self) -> &mut dyn pd_core::Kernel {
        &mut self.kernel
    }

    fn run(&mut self, handler: &mut dyn Handler) {
        loop {
            if !self.dispatch(handler) {
                self.idle();
            }
        }
    }
}
