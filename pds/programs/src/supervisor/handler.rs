//! The supervisor's event handler: faults in, policy decisions, restarts and stops out, status
//! page and dependents' notifications after every change.

use super::policy::{ChildConfig, Decision, Limits, Policy, Trace};
use crate::status;
use pd_core::shm::{ReadWrite, Region};
use pd_core::trace::TraceRing;
use pd_core::{Channel, Child, FaultKind, Handler, IpcError, Kernel};

/// A supervisor over any set of children (test systems build their own).
#[derive(Debug)]
pub struct Supervisor {
    policy: Policy,
    dependents: &'static [Channel],
    page: Region<ReadWrite>,
    trace: TraceRing<Trace, 32, { Trace::KINDS }>,
}

impl Supervisor {
    /// Take charge of `children` (all running now) and publish a fresh status page.
    pub fn new(
        k: &mut dyn Kernel,
        limits: Limits,
        children: &[ChildConfig],
        dependents: &'static [Channel],
        page: Region<ReadWrite>,
    ) -> Self {
        if let Err(e) = status::reset(&page) {
            log::error!("{}: cannot write the status page: {e:?}", k.pd_name());
        }
        let policy = Policy::new(limits, children, k.now_ns());
        log::info!(
            "{}: supervising {} children; status page published",
            k.pd_name(),
            children.len()
        );
        let s = Self {
            policy,
            dependents,
            page,
            trace: TraceRing::new(),
        };
        s.publish(k);
        s
    }

    /// Write every child's status, then tell the dependents.
    fn publish(&self, k: &mut dyn Kernel) {
        for (child, st) in self.policy.statuses() {
            if let Err(e) = status::write(&self.page, child, &st) {
                log::error!("{}: status page: {e:?}", k.pd_name());
            }
        }
        for &ch in self.dependents {
            // A dependent whose end refuses notifications reads the page when it next runs.
            let _ = k.notify(ch);
        }
    }

    /// Restart every throttled child due by `now` and re-arm the timer for the next one.
    fn restart_due(&mut self, k: &mut dyn Kernel, now: u64) {
        while let Some(child) = self.policy.due(now) {
            log::info!(
                "{}: restarting {child:?} after its minimum run time",
                k.pd_name()
            );
            self.trace.record(Trace::new(child, Decision::Restart));
            let _ = k.restart_child(child);
        }
        if let Some(t) = self.policy.next_deadline() {
            if k.set_timeout(t) == Err(IpcError::Unsupported) {
                self.restart_due(k, u64::MAX); // no timer on this platform: restart now
            }
        }
    }
}

impl Handler for Supervisor {
    fn fault(&mut self, k: &mut dyn Kernel, child: Child, kind: FaultKind) {
        let Some(decision) = self.policy.on_fault(child, kind, k.now_ns()) else {
            log::error!(
                "{}: fault from unknown child {child:?} ({kind})",
                k.pd_name()
            );
            return;
        };
        let (name, child_name) = (k.pd_name(), self.policy.name(child));
        self.trace.record(Trace::new(child, decision));
        match decision {
            Decision::Restart => {
                log::info!("{name}: {child_name} faulted ({kind}); restarting it");
                let _ = k.restart_child(child);
            }
            Decision::RestartAt(_) => {
                log::info!("{name}: {child_name} faulted ({kind}) too soon; restart throttled");
                let now = k.now_ns();
                self.restart_due(k, now);
            }
            Decision::Hold => log::warn!("{name}: {child_name} faulted ({kind}); holding it"),
            Decision::Fail => {
                log::error!("{name}: {child_name} faulted ({kind}) again: restart budget exhausted, marked failed");
                let _ = k.stop_child(child);
            }
        }
        self.publish(k);
    }

    fn timeout(&mut self, k: &mut dyn Kernel) {
        let now = k.now_ns();
        self.restart_due(k, now);
        self.publish(k);
    }
}
