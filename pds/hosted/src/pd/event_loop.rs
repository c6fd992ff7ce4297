//! The hosted PD's Microkit event loop: one event at a time, in this order: child faults,
//! coalesced notifications, PPCs (one per channel with a pending call), the timer. While the PD is
//! inside a `ppcall` it is not in this loop, so, as on Microkit, nothing is delivered to it until
//! the call returns.
//!
//! Idle, it polls its words for the spin budget (reads only), then announces itself on each of
//! them and sleeps in one `futex_waitv` on all of them, until the timer's deadline: the control
//! page's event word, its notification word of every channel, and the slot of every channel it
//! serves.

use super::kernel::HostedKernel;
use crate::channel;
use crate::pages::FAULT;
use crate::sys::{clock, futex::WaitSet};
use crate::wait;
use pd_core::{ChannelSet, Child, Handler};
use std::sync::atomic::{AtomicU32, Ordering};

/// A started hosted PD: its kernel and the words it sleeps on.
#[derive(Debug)]
pub struct HostedPd {
    pub(crate) kernel: HostedKernel,
    /// The control page's event word, then per end its notification word and, for the ends it
    /// serves, its slot's state word (the order `ready` and `idle` rely on).
    pub(crate) words: Vec<&'static AtomicU32>,
    pub(crate) waitset: WaitSet,
    /// An external client slot's endpoint: served instead of the program (`crate::external`).
    pub(crate) external: Option<crate::external::Endpoint>,
}

impl HostedPd {
    /// Deliver pending events.
    fn dispatch(&mut self, handler: &mut dyn Handler) {
        let k = &mut self.kernel;
        // The runtime sets FAULT after posting a report, so the bit alone says when to look.
        if wait::take(&k.control.event) & FAULT != 0 {
            for (id, kind) in crate::fault::take(k.control) {
                if let Ok(child) = Child::try_new(u64::from(id)) {
                    handler.fault(k, child, kind);
                }
            }
        }
        let mut notified = ChannelSet::EMPTY;
        for end in &mut k.ends {
            let count = channel::notifications(end.page, end.ends);
            if count != end.seen {
                end.seen = count;
                notified = notified.with(end.id);
            }
        }
        if !notified.is_empty() {
            handler.notified(k, notified);
        }
        for i in 0..k.ends.len() {
            let Some((page, id)) = k.ends.get(i).filter(|e| e.serves).map(|e| (e.page, e.id))
            else {
                continue;
            };
            if let Some(call) = channel::take_call(page, &mut k.mrs) {
                let reply = handler.protected(k, id, call.msg);
                channel::reply(page, call, &k.mrs, reply);
            }
        }
        if k.timeout.is_some_and(|t| clock::now_ns() >= t) {
            k.timeout = None;
            handler.timeout(k);
        }
    }

    /// Whether any word says there is an event (reads only).
    fn ready(&self) -> bool {
        let k = &self.kernel;
        k.ends.iter().any(|e| {
            (e.serves && channel::has_call(e.page))
                || channel::notifications(e.page, e.ends) != e.seen
        }) || k.control.event.load(Ordering::Acquire) & FAULT != 0
            || k.timeout.is_some_and(|t| clock::now_ns() >= t)
    }

    /// Spin, then sleep until a word changes or the timer is due.
    fn idle(&mut self) {
        if self
            .kernel
            .spins
            .idle
            .poll(|| self.ready().then_some(()))
            .is_some()
        {
            return;
        }
        // Announce on every word (in `words` order); sleep only if none shows an event.
        let k = &self.kernel;
        let mut announced = Vec::with_capacity(self.words.len());
        let mut events = false;
        let mut words = self.words.iter();
        if let Some(w) = words.next() {
            match wait::announce(w, |v| v & FAULT != 0) {
                Some(a) => announced.push((*w, a)),
                None => events = true,
            }
        }
        for e in &k.ends {
            if events {
                break;
            }
            let seen = e.seen;
            if let Some(w) = words.next() {
                match wait::announce(w, |v| v & crate::pages::NOTIFY_COUNT != seen) {
                    Some(a) => announced.push((*w, a)),
                    None => events = true,
                }
            }
            if e.serves && !events {
                if let Some(w) = words.next() {
                    match wait::announce(w, channel::is_called) {
                        Some(a) => announced.push((*w, a)),
                        None => events = true,
                    }
                }
            }
        }
        let timeout = k.timeout;
        if !events && timeout.is_none_or(|t| clock::now_ns() < t) {
            self.waitset
                .wait(announced.iter().map(|&(_, a)| a), timeout);
        }
        for (w, a) in announced {
            wait::withdraw(w, a);
        }
    }
}

impl pd_programs::Platform for HostedPd {
    fn kernel(&mut self) -> &mut dyn pd_core::Kernel {
        &mut self.kernel
    }

    fn run(&mut self, handler: &mut dyn Handler) {
        // The fault campaign's injector in front of the handler, when a plan names this PD.
        #[cfg(feature = "fault-injection")]
        let mut faulty;
        #[cfg(feature = "fault-injection")]
        let handler: &mut dyn Handler = match pd_core::faults::Injector::from_text(
            std::env::var(pd_core::faults::PLAN_ENV).ok().as_deref(),
            &self.kernel.name,
            clock::now_ns(),
        ) {
            Some(inj) => {
                faulty = pd_core::faults::Faulty::new(handler, inj);
                &mut faulty
            }
            None => handler,
        };
        // `init` is done: calls to this PD are timed from now on.
        self.kernel.control.running.store(1, Ordering::Release);
        loop {
            self.dispatch(handler);
            // Returns at once when an event arrived meanwhile (its first check reads the words).
            self.idle();
        }
    }
}
