//! The monolithic platform: every PD of `system.xml` in this one process, on
//! [`pd_direct::Composition`], started from the same program table as the hosted runtime.
//!
//! Start-up follows Microkit, in [`pd_programs::nest`]: each PD's `init` runs once, may call PDs
//! already started, and the next PD starts from inside the previous one's event loop, so the
//! innermost level, with every handler in place, runs this platform's event loop:
//! notifications, timers, workload verdicts. PDs start callees first (highest priority first, the
//! order of Microkit's PPC rule), so an `init` that calls down finds its callees.
//!
//! No fault is contained. A panic aborts the process; a wild access is a SIGSEGV for everyone; a
//! PD that hangs hangs the whole system, and the watchdog thread ([`Config::watchdog_ns`], armed
//! once every PD has started) can only end the process, since nothing can stop one part of it.

use pd_core::Verdict;
use pd_direct::{Composition, Slot};
use pd_programs::nest::{self, Comp, Nest, Step};
use pd_programs::sys::system;
use pd_programs::{Program, Role};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How many PDs the system has (the composition's size).
pub const PDS: usize = system::PDS.len();

/// How the system runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Give up when the workloads have not finished after this long.
    pub timeout_ns: u64,
    /// End the process when no event completes for this long (a hung PD hangs everything).
    pub watchdog_ns: u64,
    /// The fault plan (`pd_core::faults`), when the crate is built with `fault-injection`.
    pub plan: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every workload passed (or the timeout hit with no workload).
    Success,
    /// Why not.
    Failure(String),
}

fn now_ns() -> u64 {
    hosted::sys::clock::now_ns()
}

/// The owner of the start-up nest ([`pd_programs::nest`]), which every level shares.
struct Shared<'p> {
    programs: &'p [Program],
    /// PD indices in start order.
    order: Vec<usize>,
    /// PD indices of the workloads.
    workloads: Vec<usize>,
    config: &'p Config,
    start_ns: u64,
    /// Events completed, for the watchdog thread.
    progress: Arc<AtomicU64>,
    outcome: RefCell<Option<Outcome>>,
}

impl Shared<'_> {
    fn program(&self, pd: usize) -> Option<&Program> {
        let decl = system::PDS.get(pd)?;
        pd_programs::find(self.programs, decl.program_image)
    }
}

impl Nest for Shared<'_> {
    fn step(&self, at: usize) -> Step<'_> {
        let Some(&pd) = self.order.get(at) else {
            return Step::AllStarted;
        };
        match self.program(pd) {
            Some(program) => Step::Start(pd, program),
            None => {
                *self.outcome.borrow_mut() =
                    Some(Outcome::Failure(format!("no program for PD {pd}")));
                Step::Stop
            }
        }
    }

    fn serve(&self, comp: Comp<'_>) {
        let outcome = event_loop(comp, self);
        *self.outcome.borrow_mut() = Some(outcome);
    }

    /// With a fault plan, the PD's handler runs behind its injector.
    #[cfg(feature = "fault-injection")]
    fn wrap(
        &self,
        pd: usize,
        handler: &mut dyn pd_core::Handler,
        go: &mut dyn FnMut(&mut dyn pd_core::Handler),
    ) {
        let name = system::PDS.get(pd).map_or("?", |d| d.name);
        let plan = self.config.plan.as_deref();
        match pd_core::faults::Injector::from_text(plan, name, now_ns()) {
            Some(inj) => go(&mut pd_core::faults::Faulty::new(handler, inj)),
            None => go(handler),
        }
    }

    fn progress(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// The event loop once every PD runs: notifications and timers until the outcome is known.
fn event_loop(mut comp: Comp<'_>, shared: &Shared<'_>) -> Outcome {
    log::info!("mono: all {PDS} PDs started");
    // Start-up may take its time (a GSP boot); from here on, a stall is a hang.
    watchdog(Arc::clone(&shared.progress), shared.config.watchdog_ns);
    loop {
        let did = comp.run_pending(64) + comp.run_timers();
        shared.progress.fetch_add(1, Ordering::Relaxed);
        let verdicts: Vec<(usize, Option<Verdict>)> = shared
            .workloads
            .iter()
            .map(|&i| (i, comp.verdict(i)))
            .collect();
        let name = |i: usize| system::PDS.get(i).map_or("?", |d| d.name);
        if let Some((i, _)) = verdicts.iter().find(|(_, v)| *v == Some(Verdict::Fail)) {
            return Outcome::Failure(format!("workload {} failed", name(*i)));
        }
        if !verdicts.is_empty() && verdicts.iter().all(|(_, v)| *v == Some(Verdict::Pass)) {
            let names: Vec<&str> = verdicts.iter().map(|(i, _)| name(*i)).collect();
            log::info!("mono: all workloads passed ({})", names.join(", "));
            return Outcome::Success;
        }
        let now = now_ns();
        if now.saturating_sub(shared.start_ns) >= shared.config.timeout_ns {
            if verdicts.is_empty() {
                return Outcome::Success;
            }
            let pending: Vec<&str> = verdicts
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(i, _)| name(*i))
                .collect();
            return Outcome::Failure(format!(
                "timeout after {} ms; no verdict from {}",
                shared.config.timeout_ns / 1_000_000,
                pending.join(", ")
            ));
        }
        if did == 0 {
            let wait = comp
                .next_timeout()
                .map_or(1_000_000, |t| t.saturating_sub(now).min(1_000_000));
            std::thread::sleep(Duration::from_nanos(wait));
        }
    }
}

/// End the process when `progress` stands still for `limit_ns`: the monolithic system cannot
/// stop one hung part, so a hang anywhere is the end of everything.
fn watchdog(progress: Arc<AtomicU64>, limit_ns: u64) {
    std::thread::spawn(move || {
        let (mut seen, mut since) = (progress.load(Ordering::Relaxed), now_ns());
        loop {
            std::thread::sleep(Duration::from_nanos((limit_ns / 8).max(1_000_000)));
            let now = progress.load(Ordering::Relaxed);
            if now != seen {
                (seen, since) = (now, now_ns());
            } else if now_ns().saturating_sub(since) >= limit_ns {
                log::error!(
                    "mono: watchdog: no event finished for {} ms: the monolithic system is hung, \
                     and nothing can restart one part of it",
                    limit_ns / 1_000_000
                );
                std::process::exit(1);
            }
        }
    });
}

/// The order PDs start in: highest priority first (callees before callers), then document order.
pub fn start_order() -> Vec<usize> {
    let mut order: Vec<usize> = (0..PDS).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(system::PDS.get(i).map_or(0, |d| d.priority)));
    order
}

/// Run every PD of the compiled-in system with `programs` until the outcome is known. The caller
/// has mapped the regions ([`crate::layout::map`]).
pub fn run(programs: &[Program], config: &Config) -> Outcome {
    let mut workloads = Vec::new();
    for (i, decl) in system::PDS.iter().enumerate() {
        match pd_programs::find(programs, decl.program_image) {
            Some(p) if p.role == Role::Workload => workloads.push(i),
            Some(_) => {}
            None => {
                return Outcome::Failure(format!(
                    "PD {}: no program for image {}",
                    decl.name, decl.program_image
                ))
            }
        }
    }
    let shared = Shared {
        programs,
        order: start_order(),
        workloads,
        config,
        start_ns: now_ns(),
        progress: Arc::new(AtomicU64::new(0)),
        outcome: RefCell::new(None),
    };
    let slots: [Slot<'_>; PDS] = core::array::from_fn(|i| {
        system::PDS
            .get(i)
            .map_or(Slot::vacant("?", 0), |d| Slot::vacant(d.name, d.priority))
    });
    if shared.order.is_empty() {
        return Outcome::Failure("the system has no PDs".into());
    }
    nest::start(Composition::new(slots, system::ROUTES, now_ns), &shared);
    let outcome = shared.outcome.borrow_mut().take();
    outcome
        .unwrap_or_else(|| Outcome::Failure("a PD's program returned before the system ran".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pds_start_callees_first() {
        let names: Vec<&str> = start_order().iter().map(|&i| system::PDS[i].name).collect();
        assert_eq!(names.first(), Some(&"supervisor"));
        let pos = |n: &str| names.iter().position(|&x| x == n).unwrap();
        // Every PPC goes to a strictly higher priority, so every callee starts before its caller.
        for r in system::ROUTES.iter().filter(|r| r.pp) {
            assert!(pos(system::PDS[r.to].name) < pos(system::PDS[r.from].name));
        }
        assert_eq!(names.len(), PDS);
    }
}
