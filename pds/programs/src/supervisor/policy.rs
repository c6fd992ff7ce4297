//! The supervisor's restart policy, as plain logic over time stamps (no kernel), after Hubris'
//! jefe: a per-child [`Disposition`] from configuration, a minimum run time that throttles a crash
//! loop (a child that faults sooner than [`Limits::min_run_ns`] after its start is restarted only
//! once that time has passed), and a restart budget ([`Limits::max_restarts`] within
//! [`Limits::window_ns`]) beyond which the child is marked failed and stopped.

use crate::status::{FaultCode, PdState, PdStatus, SLOTS};
use pd_core::{Child, FaultKind};

/// What to do when a child faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Restart it (within the budget).
    Restart,
    /// Leave it stopped, for inspection (a workload, or a PD under debug).
    Hold,
}

/// One supervised child, from configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildConfig {
    /// Its id.
    pub child: Child,
    /// Its name, for log lines.
    pub name: &'static str,
    /// What to do when it faults.
    pub disposition: Disposition,
}

impl ChildConfig {
    /// A child restarted on faults.
    pub const fn restart(child: Child, name: &'static str) -> Self {
        Self {
            child,
            name,
            disposition: Disposition::Restart,
        }
    }

    /// A child held on faults.
    pub const fn hold(child: Child, name: &'static str) -> Self {
        Self {
            child,
            name,
            disposition: Disposition::Hold,
        }
    }
}

/// The budget and the throttle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Restarts allowed within `window_ns` (at most [`HISTORY`]).
    pub max_restarts: usize,
    /// The budget's window.
    pub window_ns: u64,
    /// A child restarts no sooner than this after its previous start.
    pub min_run_ns: u64,
}

impl Default for Limits {
    /// 5 restarts in 10 s; 50 ms minimum run time (jefe's `MIN_RUN_TIME`: a crash loop runs at
    /// 20 Hz at most).
    fn default() -> Self {
        Self {
            max_restarts: 5,
            window_ns: 10_000_000_000,
            min_run_ns: 50_000_000,
        }
    }
}

/// The most restarts a budget can count.
pub const HISTORY: usize = 8;

/// The policy's decision about a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Restart now.
    Restart,
    /// Restart at this time (throttled); [`Policy::due`] returns it then.
    RestartAt(u64),
    /// Hold it (disposition).
    Hold,
    /// Budget exhausted: stop it for good.
    Fail,
}

#[derive(Clone, Copy, Debug)]
struct Record {
    name: &'static str,
    disposition: Disposition,
    started_ns: u64,
    /// Times of recent restarts, oldest overwritten first.
    history: [u64; HISTORY],
    next: usize,
    restart_at: Option<u64>,
    status: PdStatus,
}

/// Per-child policy state, indexed by child id.
#[derive(Debug)]
pub struct Policy {
    limits: Limits,
    children: [Option<Record>; SLOTS],
}

impl Policy {
    /// A policy for `children` (with their dispositions), all started at `now_ns`.
    pub fn new(limits: Limits, children: &[ChildConfig], now_ns: u64) -> Self {
        let mut p = Self {
            limits: Limits {
                max_restarts: limits.max_restarts.min(HISTORY),
                ..limits
            },
            children: [None; SLOTS],
        };
        for c in children {
            if let Some(slot) = p.children.get_mut(usize::from(c.child.index())) {
                *slot = Some(Record {
                    name: c.name,
                    disposition: c.disposition,
                    started_ns: now_ns,
                    history: [0; HISTORY],
                    next: 0,
                    restart_at: None,
                    status: PdStatus {
                        generation: 1,
                        state: PdState::Running as u32,
                        restarts: 0,
                        last_fault: 0,
                    },
                });
            }
        }
        p
    }

    fn record(&mut self, child: Child) -> Option<&mut Record> {
        self.children.get_mut(usize::from(child.index()))?.as_mut()
    }

    /// `child` faulted with `kind` at `now_ns`; `None` for a child the policy does not know.
    pub fn on_fault(&mut self, child: Child, kind: FaultKind, now_ns: u64) -> Option<Decision> {
        let limits = self.limits;
        let r = self.record(child)?;
        r.status.last_fault = FaultCode::from(kind) as u32;
        if r.disposition == Disposition::Hold {
            r.status.state = PdState::Held as u32;
            return Some(Decision::Hold);
        }
        let recent = r
            .history
            .iter()
            .take(r.status.restarts.min(HISTORY as u32) as usize)
            .filter(|&&t| now_ns.saturating_sub(t) < limits.window_ns)
            .count();
        if recent >= limits.max_restarts {
            r.status.state = PdState::Failed as u32;
            return Some(Decision::Fail);
        }
        if let Some(h) = r.history.get_mut(r.next) {
            *h = now_ns;
        }
        r.next = (r.next + 1) % HISTORY;
        r.status.restarts = r.status.restarts.saturating_add(1);
        let earliest = r.started_ns.saturating_add(limits.min_run_ns);
        if now_ns >= earliest {
            Self::started(r, now_ns);
            Some(Decision::Restart)
        } else {
            r.status.state = PdState::Restarting as u32;
            r.restart_at = Some(earliest);
            Some(Decision::RestartAt(earliest))
        }
    }

    fn started(r: &mut Record, now_ns: u64) {
        r.started_ns = now_ns;
        r.restart_at = None;
        r.status.generation = r.status.generation.wrapping_add(1);
        r.status.state = PdState::Running as u32;
    }

    /// The next throttled child whose restart time has come (mark it restarted), if any.
    pub fn due(&mut self, now_ns: u64) -> Option<Child> {
        let (id, r) = self.children.iter_mut().enumerate().find_map(|(id, r)| {
            let r = r.as_mut()?;
            r.restart_at.is_some_and(|t| t <= now_ns).then_some((id, r))
        })?;
        Self::started(r, now_ns);
        // CAST: id < SLOTS, below 64.
        Child::try_new(id as u64).ok()
    }

    /// A known child's name (`?` for an unknown one).
    pub fn name(&self, child: Child) -> &'static str {
        self.children
            .get(usize::from(child.index()))
            .and_then(|r| r.as_ref())
            .map_or("?", |r| r.name)
    }

    /// The earliest pending restart time.
    pub fn next_deadline(&self) -> Option<u64> {
        self.children
            .iter()
            .flatten()
            .filter_map(|r| r.restart_at)
            .min()
    }

    /// Every known child's status, for the status page.
    pub fn statuses(&self) -> impl Iterator<Item = (Child, PdStatus)> + '_ {
        self.children.iter().enumerate().filter_map(|(id, r)| {
            // CAST: id < SLOTS, below 64.
            Some((Child::try_new(id as u64).ok()?, r.as_ref()?.status))
        })
    }
}

/// A recovery decision as the supervisor's trace ring records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The child's id.
    pub child: u8,
    /// What was decided.
    pub decision: Decision,
}

impl Trace {
    /// How many kinds: one per [`Decision`] variant.
    pub const KINDS: usize = 4;

    /// The decision about `child`.
    pub fn new(child: Child, decision: Decision) -> Self {
        Self {
            child: child.index(),
            decision,
        }
    }
}

impl pd_core::trace::TraceEvent for Trace {
    const KINDS: usize = Trace::KINDS;
    fn kind(&self) -> usize {
        match self.decision {
            Decision::Restart => 0,
            Decision::RestartAt(_) => 1,
            Decision::Hold => 2,
            Decision::Fail => 3,
        }
    }
    fn kind_name(kind: usize) -> &'static str {
        ["Restart", "RestartAt", "Hold", "Fail"]
            .get(kind)
            .copied()
            .unwrap_or("?")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const A: Child = Child::new(1);
    const B: Child = Child::new(2);

    fn policy() -> Policy {
        Policy::new(
            Limits::default(),
            &[
                ChildConfig {
                    child: A,
                    name: "a",
                    disposition: Disposition::Restart,
                },
                ChildConfig {
                    child: B,
                    name: "b",
                    disposition: Disposition::Hold,
                },
            ],
            0,
        )
    }

    fn status(p: &Policy, c: Child) -> PdStatus {
        p.statuses().find(|(x, _)| *x == c).unwrap().1
    }

    #[test]
    fn a_fault_after_the_minimum_run_time_restarts_at_once() {
        let mut p = policy();
        assert_eq!(
            p.on_fault(A, FaultKind::Signal(9), 100 * MS),
            Some(Decision::Restart)
        );
        let s = status(&p, A);
        assert_eq!(
            (s.generation, s.restarts, s.state),
            (2, 1, PdState::Running as u32)
        );
        assert_eq!(s.last_fault, FaultCode::Signal as u32);
    }

    #[test]
    fn a_quick_fault_is_throttled_until_the_minimum_run_time() {
        let mut p = policy();
        assert_eq!(
            p.on_fault(A, FaultKind::Abort, 10 * MS),
            Some(Decision::RestartAt(50 * MS))
        );
        assert_eq!(status(&p, A).state, PdState::Restarting as u32);
        assert_eq!(p.next_deadline(), Some(50 * MS));
        assert_eq!(p.due(49 * MS), None);
        assert_eq!(p.due(50 * MS), Some(A));
        assert_eq!(p.due(50 * MS), None);
        assert_eq!((status(&p, A).generation, p.next_deadline()), (2, None));
    }

    #[test]
    fn the_budget_fails_a_crash_loop_and_forgets_old_restarts() {
        let mut p = policy();
        let mut t = 0;
        for _ in 0..5 {
            t += 100 * MS;
            assert_eq!(p.on_fault(A, FaultKind::Abort, t), Some(Decision::Restart));
        }
        t += 100 * MS;
        assert_eq!(p.on_fault(A, FaultKind::Abort, t), Some(Decision::Fail));
        assert_eq!(status(&p, A).state, PdState::Failed as u32);
        // A child that crashes rarely never runs out: restarts age out of the window.
        let mut p = policy();
        for i in 1..20u64 {
            assert_eq!(
                p.on_fault(A, FaultKind::Abort, i * 3_000 * MS),
                Some(Decision::Restart)
            );
        }
    }

    #[test]
    fn held_and_unknown_children() {
        let mut p = policy();
        assert_eq!(p.on_fault(B, FaultKind::Watchdog, 5), Some(Decision::Hold));
        assert_eq!(status(&p, B).state, PdState::Held as u32);
        assert_eq!(p.on_fault(Child::new(9), FaultKind::Abort, 5), None);
        assert_eq!((p.name(A), p.name(Child::new(9))), ("a", "?"));
    }
}
