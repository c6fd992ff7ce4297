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
        self.write_page(k);
        for &ch in self.dependents {
            // A dependent whose end refuses notifications reads the page when it next runs.
            let _ = k.notify(ch);
        }
    }

    /// Write every child's status to the page. Done before each restart too: the new instance
    /// reads its own generation from the page in its `init`, which may run before this PD's
    /// handler returns.
    fn write_page(&self, k: &dyn Kernel) {
        for (child, st) in self.policy.statuses() {
            if let Err(e) = status::write(&self.page, child, &st) {
                log::error!("{}: status page: {e:?}", k.pd_name());
            }
        }
    }

    /// Restart `child` (its new generation already in the policy) once the page says so.
    fn restart(&self, k: &mut dyn Kernel, child: Child) {
        self.write_page(k);
        let _ = k.restart_child(child);
    }

    /// Restart every throttled child due by `now` and re-arm the timer for the next one.
    fn restart_due(&mut self, k: &mut dyn Kernel, now: u64) {
        while let Some(child) = self.policy.due(now) {
            log::info!(
                "{}: restarting {child:?} after its minimum run time",
                k.pd_name()
            );
            self.trace.record(Trace::new(child, Decision::Restart));
            self.restart(k, child);
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
                self.restart(k, child);
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

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use pd_core::{MessageInfo, MessageRegisters};
    use std::vec::Vec;

    /// A kernel whose `restart_child` reads the child's generation off the page, as the new
    /// instance's `init` does.
    struct K {
        page: Region<ReadWrite>,
        seen: Vec<u32>,
        mrs: MessageRegisters,
    }

    impl Kernel for K {
        fn pd_name(&self) -> &str {
            "supervisor"
        }
        fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
            Ok(())
        }
        fn ppcall(&mut self, _: Channel, _: MessageInfo) -> Result<MessageInfo, IpcError> {
            Err(IpcError::Unsupported)
        }
        fn mrs(&mut self) -> &mut MessageRegisters {
            &mut self.mrs
        }
        fn now_ns(&self) -> u64 {
            10_000_000_000
        }
        fn restart_child(&mut self, child: Child) -> Result<(), IpcError> {
            let s = status::read(&self.page, child).map_err(|_| IpcError::Unsupported)?;
            self.seen.push(s.generation);
            Ok(())
        }
    }

    #[test]
    fn a_restarted_child_finds_its_new_generation_on_the_page() {
        let page = Region::from_static(std::vec![0u8; status::PAGE_BYTES].leak());
        let mut k = K {
            page: page.alias(),
            seen: Vec::new(),
            mrs: MessageRegisters::default(),
        };
        let child = Child::new(1);
        let mut s = Supervisor::new(
            &mut k,
            Limits::default(),
            &[ChildConfig::restart(child, "gsp")],
            &[],
            page,
        );
        s.fault(&mut k, child, FaultKind::Signal(9));
        assert_eq!(
            k.seen,
            [2],
            "generation 2 is on the page when the restart is asked for"
        );
    }
}
