//! The runtime process: validates `system.xml`, creates the system's memory, starts every PD, then
//! watches: deaths (reported to parents), parents' restart/stop requests, workload verdicts, the
//! PPC watchdog, scheduled `--kill`s, the overall timeout. On the way out it kills and reaps every
//! PD, so no process outlives it (and `PR_SET_PDEATHSIG` covers the runtime itself dying).

mod lifecycle;
pub mod options;
mod world;

pub use options::{Kill, Options, USAGE};
pub use world::{SetupError, State, World};

use crate::pages::{CMD_RESTART, CMD_STOP, VERDICT_FAIL, VERDICT_PASS};
use crate::sys::{self, clock, process};
use lifecycle::Death;
use pd_programs::Program;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every workload passed (or the run time ended with no workloads).
    Success,
    /// Something went wrong: the reason.
    Failure(String),
    /// SIGINT or SIGTERM.
    Interrupted,
}

/// The loop's wake-up period: watchdog and `--kill` resolution.
const TICK_MS: i32 = 10;

/// A running system.
#[derive(Debug)]
pub struct Runtime {
    world: World,
    opts: Options,
    start_ns: u64,
    failed: Vec<String>,
}

impl Runtime {
    /// Start every PD.
    ///
    /// # Errors
    /// The OS error of the first PD that cannot be started (those already started are stopped).
    pub fn start(world: World, opts: Options) -> std::io::Result<Self> {
        let mut rt = Self {
            world,
            opts,
            start_ns: clock::now_ns(),
            failed: Vec::new(),
        };
        for i in 0..rt.world.pds.len() {
            match rt.world.spawn(i) {
                Ok(pid) => {
                    let name = rt.world.pds.get(i).map_or("?", |s| s.name.as_str());
                    log::info!("started {name} (pid {pid})");
                }
                Err(e) => {
                    rt.world.shutdown();
                    return Err(e);
                }
            }
        }
        Ok(rt)
    }

    /// Run until the outcome is known, then stop every PD.
    pub fn run(mut self) -> Outcome {
        let outcome = self.watch();
        let n = self.world.shutdown();
        log::info!("stopped {n} PDs");
        match (&outcome, self.failed.is_empty()) {
            (Outcome::Success, false) => {
                Outcome::Failure(format!("PDs stopped for good: {}", self.failed.join(", ")))
            }
            _ => outcome,
        }
    }

    fn watch(&mut self) -> Outcome {
        let mut kills = self.opts.kills.clone();
        let mut ready = Vec::new();
        loop {
            if sys::fault::interrupted() {
                return Outcome::Interrupted;
            }
            let elapsed = clock::now_ns().saturating_sub(self.start_ns);
            kills.retain(|k| {
                if elapsed < k.at_ns {
                    return true;
                }
                self.send_kill(k);
                false
            });
            let running: Vec<usize> = (0..self.world.pds.len())
                .filter(|&i| self.world.pds.get(i).is_some_and(|s| s.proc.is_some()))
                .collect();
            {
                let mut fds = Vec::new();
                for &i in &running {
                    if let Some(p) = self.world.pds.get(i).and_then(|s| s.proc.as_ref()) {
                        fds.push(p.pidfd.fd());
                    }
                }
                for slot in &self.world.pds {
                    fds.push(slot.doorbell.fd());
                }
                process::poll(&fds, &mut ready, TICK_MS);
            }
            for (n, &i) in running.iter().enumerate() {
                if ready.get(n) == Some(&true) {
                    if let Some(outcome) = self.died(i) {
                        return outcome;
                    }
                }
            }
            for i in 0..self.world.pds.len() {
                if ready.get(running.len() + i) == Some(&true) {
                    self.requests(i);
                }
            }
            self.world.watchdog(clock::now_ns(), self.opts.watchdog_ns);
            if let Some(outcome) = self.finished(elapsed) {
                return outcome;
            }
        }
    }

    fn send_kill(&self, k: &Kill) {
        let slot = self.world.pds.iter().find(|s| s.name == k.pd);
        match slot.and_then(|s| s.pid()) {
            Some(pid) => {
                log::info!(
                    "--kill: sending signal {} to {} (pid {pid})",
                    k.signal,
                    k.pd
                );
                process::kill(pid, k.signal);
            }
            None => log::warn!("--kill: {} is not running", k.pd),
        }
    }

    fn died(&mut self, i: usize) -> Option<Outcome> {
        let kind = self.world.reap(i)?;
        let slot = self.world.pds.get(i)?;
        let (name, workload) = (slot.name.clone(), slot.workload);
        match self.world.on_death(i, kind) {
            Death::Orphaned => Some(Outcome::Failure(format!("{name} died ({kind})"))),
            Death::Reported if workload => {
                Some(Outcome::Failure(format!("workload {name} died ({kind})")))
            }
            Death::Reported => None,
        }
    }

    /// PD `i` rang its doorbell: a verdict, or restart/stop requests for its children.
    fn requests(&mut self, i: usize) {
        let Some(slot) = self.world.pds.get(i) else {
            return;
        };
        slot.doorbell.drain();
        let Some(ctl) = slot.control() else {
            return;
        };
        let verdict = ctl.verdict.load(Ordering::SeqCst);
        let mut commands = Vec::new();
        for (child, pd) in self.world.system.children_of(i) {
            let slot_cmd = pd.id.and_then(|id| ctl.child_cmd.get(usize::from(id)));
            if let Some(cmd) = slot_cmd.map(|c| c.swap(0, Ordering::SeqCst)) {
                commands.push((child, cmd));
            }
        }
        if let Some(slot) = self.world.pds.get_mut(i).filter(|s| s.verdict != verdict) {
            let word = match verdict {
                VERDICT_PASS => "pass",
                VERDICT_FAIL => "FAIL",
                _ => "nothing",
            };
            log::info!("{} reported {word}", slot.name);
            slot.verdict = verdict;
        }
        for (child, cmd) in commands {
            match cmd {
                CMD_RESTART => self.world.restart(child),
                CMD_STOP => {
                    self.world.stop(child);
                    if let Some(s) = self.world.pds.get(child) {
                        self.failed.push(s.name.clone());
                    }
                }
                _ => {}
            }
        }
    }

    /// The outcome, once known.
    fn finished(&self, elapsed: u64) -> Option<Outcome> {
        let workloads: Vec<_> = self.world.pds.iter().filter(|s| s.workload).collect();
        if let Some(failed) = workloads.iter().find(|s| s.verdict == VERDICT_FAIL) {
            return Some(Outcome::Failure(format!("workload {} failed", failed.name)));
        }
        if !workloads.is_empty() && workloads.iter().all(|s| s.verdict == VERDICT_PASS) {
            if self.opts.keep_running {
                return None;
            }
            let names: Vec<&str> = workloads.iter().map(|s| s.name.as_str()).collect();
            log::info!("all workloads passed ({})", names.join(", "));
            return Some(Outcome::Success);
        }
        if self.opts.run_for_ns.is_some_and(|d| elapsed >= d) {
            return Some(Outcome::Success);
        }
        if elapsed >= self.opts.timeout_ns && !self.opts.keep_running {
            if workloads.is_empty() {
                return Some(Outcome::Success);
            }
            let pending: Vec<&str> = workloads
                .iter()
                .filter(|s| s.verdict != VERDICT_PASS)
                .map(|s| s.name.as_str())
                .collect();
            return Some(Outcome::Failure(format!(
                "timeout after {} ms; no verdict from {}",
                elapsed / 1_000_000,
                pending.join(", ")
            )));
        }
        None
    }
}

/// The runtime's `main`: `args` are the arguments after the program name.
pub fn main(programs: &[Program], args: &[String]) -> ExitCode {
    crate::logger::init("runtime");
    let opts = match options::or_exit("runtime", Options::parse(args), USAGE) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut system = match sysxml::load(&opts.system) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(2);
        }
    };
    for (region, file) in &opts.prefills {
        let Some(mr) = system.regions.iter_mut().find(|r| &r.name == region) else {
            log::error!(
                "--prefill: no region named {region} in {}",
                opts.system.display()
            );
            return ExitCode::from(2);
        };
        // Relative to where the user stands (system.xml's own prefill paths are relative to it).
        let path = std::path::absolute(file).unwrap_or_else(|_| file.clone());
        log::info!("--prefill: region {region} from {}", path.display());
        mr.prefill_path = Some(path.display().to_string());
    }
    if let Some(k) = opts.kills.iter().find(|k| system.pd(&k.pd).is_none()) {
        log::error!("--kill: no PD named {} in {}", k.pd, opts.system.display());
        return ExitCode::from(2);
    }
    log::info!(
        "{}: {} PDs, {} regions, {} channels",
        opts.system.display(),
        system.pds.len(),
        system.regions.len(),
        system.channels.len()
    );
    let dir = opts.system.parent().unwrap_or(std::path::Path::new("."));
    let mut world = match World::new(system, programs, dir, opts.spins) {
        Ok(w) => w,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = crate::external::listen(&mut world, opts.external_dir.as_deref()) {
        log::error!("cannot open the external client slots: {e}");
        return ExitCode::FAILURE;
    }
    // The runtime holds every region's descriptor: no PD may reach them through procfs.
    if let Err(e) = process::set_undumpable().and_then(|()| sys::fault::catch_interrupts()) {
        log::error!("cannot set up the runtime process: {e}");
        return ExitCode::FAILURE;
    }
    let rt = match Runtime::start(world, opts) {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("cannot start the PDs: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.run() {
        Outcome::Success => {
            log::info!("exit 0");
            ExitCode::SUCCESS
        }
        Outcome::Failure(why) => {
            log::error!("FAILED: {why}");
            ExitCode::FAILURE
        }
        Outcome::Interrupted => {
            log::warn!("interrupted");
            ExitCode::from(130)
        }
    }
}
