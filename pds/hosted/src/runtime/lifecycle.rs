//! What happens to a PD after start: death (classified and reported to its parent), restart and
//! stop on the parent's request, and the watchdog on unanswered calls.

use super::world::{State, World};
use crate::channel::{self, Phase};
use crate::sys::process;
use pd_core::FaultKind;
use std::sync::atomic::Ordering;

/// What a death means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// Reported to the parent, which decides.
    Reported,
    /// A PD without parent died: nobody can restart it, the system cannot go on.
    Orphaned,
}

impl World {
    /// Reap PD `i` if its process has exited; the fault as its parent sees it.
    pub fn reap(&mut self, i: usize) -> Option<FaultKind> {
        let slot = self.pds.get_mut(i)?;
        let proc = slot.proc.as_mut()?;
        let status = proc.child.try_wait().ok()??;
        let addr = slot
            .control()
            .map_or(0, |c| c.fault_addr.load(Ordering::SeqCst));
        let kind = crate::fault::classify(status, slot.watchdog_kill, addr);
        slot.proc = None;
        slot.state = State::Faulted;
        Some(kind)
    }

    /// Kill PD `i` (if running) and wait for it, without reporting a fault.
    fn kill_and_reap(&mut self, i: usize) {
        if let Some(mut proc) = self.pds.get_mut(i).and_then(|s| s.proc.take()) {
            process::kill(proc.child.id(), libc::SIGKILL);
            let _ = proc.child.wait();
        }
        self.release_calls(i);
    }

    /// PD `i` is gone: fail the calls waiting on it, abandon the call it was making.
    fn release_calls(&self, i: usize) {
        for res in &self.channels {
            let (Some(page), Some(callee)) = (res.page(), res.callee_end()) else {
                continue;
            };
            if res.pd.get(callee) == Some(&i) {
                channel::end_pending(page, Phase::Faulted);
            } else if res.pd.get(callee ^ 1) == Some(&i) {
                channel::end_pending(page, Phase::Idle);
            }
        }
    }

    /// PD `i` died with `kind`: release its calls and tell its parent.
    pub fn on_death(&mut self, i: usize, kind: FaultKind) -> Death {
        self.release_calls(i);
        let (Some(pd), Some(slot)) = (self.system.pds.get(i), self.pds.get(i)) else {
            return Death::Orphaned;
        };
        let parent = pd.parent.zip(pd.id);
        let Some((p, id)) = parent else {
            log::error!(
                "{} died ({kind}) and has no parent to restart it",
                slot.name
            );
            return Death::Orphaned;
        };
        let parent_name = self.pds.get(p).map_or("?", |s| s.name.as_str());
        log::info!("{} faulted ({kind}); reporting to {parent_name}", slot.name);
        if let Some(ctl) = self.pds.get(p).and_then(|s| s.control()) {
            crate::fault::post(ctl, id, kind);
        }
        Death::Reported
    }

    /// Restart PD `i` on its parent's request: a fresh process with the same regions.
    pub fn restart(&mut self, i: usize) {
        self.kill_and_reap(i);
        self.set_stopped(i, false);
        let name = self.pds.get(i).map_or_else(String::new, |s| s.name.clone());
        match self.spawn(i) {
            Ok(pid) => {
                let generation = self.pds.get(i).map_or(0, |s| s.generation);
                log::info!("restarted {name} (pid {pid}, generation {generation})");
            }
            Err(e) => log::error!("cannot restart {name}: {e}"),
        }
    }

    /// Stop PD `i` for good on its parent's request: calls to it fail from now on.
    pub fn stop(&mut self, i: usize) {
        self.kill_and_reap(i);
        self.set_stopped(i, true);
        if let Some(slot) = self.pds.get_mut(i) {
            slot.state = State::Stopped;
            log::warn!("{} stopped for good by its parent", slot.name);
        }
    }

    /// Mark PD `i`'s callee ends stopped (calls fail at once) or not; failing pending calls after.
    fn set_stopped(&self, i: usize, stopped: bool) {
        for res in &self.channels {
            let (Some(page), Some(callee)) = (res.page(), res.callee_end()) else {
                continue;
            };
            if res.pd.get(callee) == Some(&i) {
                channel::set_stopped(page, callee, stopped);
                if stopped {
                    channel::end_pending(page, Phase::Faulted);
                }
            }
        }
    }

    /// Whether PD `i` is itself waiting in a call.
    fn is_calling(&self, i: usize) -> bool {
        self.channels.iter().any(|res| {
            let caller = res.callee_end().map(|c| c ^ 1);
            caller.and_then(|c| res.pd.get(c)) == Some(&i)
                && res.page().and_then(channel::pending).is_some()
        })
    }

    /// Time out calls pending for longer than `deadline_ns` (timed from when this loop first saw
    /// them, so callers pay no clock read). The callee is killed (and reported as `Watchdog`)
    /// unless it is itself waiting in a call: then the deepest call times out first and the chain
    /// unwinds from the bottom. A call to a PD still in its `init` is timed only from when the
    /// PD's event loop runs (`ControlPage::running`).
    pub fn watchdog(&mut self, now_ns: u64, deadline_ns: u64) {
        let running: Vec<bool> = self
            .pds
            .iter()
            .map(|s| {
                s.control()
                    .is_some_and(|c| c.running.load(Ordering::Acquire) != 0)
            })
            .collect();
        let mut late = Vec::new();
        for (index, res) in self.channels.iter_mut().enumerate() {
            let callee_runs = res
                .callee_end()
                .and_then(|c| res.pd.get(c))
                .is_some_and(|&pd| running.get(pd).copied().unwrap_or(false));
            let call = res
                .page()
                .and_then(channel::pending)
                .filter(|_| callee_runs);
            res.watch = match (call, res.watch) {
                (Some(c), Some((seen, since))) if c == seen => Some((seen, since)),
                (Some(c), _) => Some((c, now_ns)),
                (None, _) => None,
            };
            if res
                .watch
                .is_some_and(|(_, since)| now_ns.saturating_sub(since) >= deadline_ns)
            {
                late.push(index);
            }
        }
        // Who is calling, as of before this round ends any call: ending the deepest call first
        // must not make its caller look idle (and late) in the same round.
        let calling: Vec<bool> = (0..self.pds.len()).map(|i| self.is_calling(i)).collect();
        let mut kill = Vec::new();
        for index in late {
            let Some(res) = self.channels.get(index) else {
                continue;
            };
            let (Some(page), Some(callee)) = (res.page(), res.callee_end()) else {
                continue;
            };
            let Some(&pd) = res.pd.get(callee) else {
                continue;
            };
            let busy = calling.get(pd).copied().unwrap_or(false);
            if !busy && channel::end_pending(page, Phase::TimedOut) {
                kill.push((pd, res.pd.get(callee ^ 1).copied().unwrap_or(usize::MAX)));
            }
        }
        // Every PD waiting (directly or down a chain) on a killed one gets a fresh deadline to
        // answer its own caller: it learns of the timeout only now, and is not the one that hung.
        let mut waiting: Vec<usize> = kill.iter().map(|&(_, caller)| caller).collect();
        while let Some(pd) = waiting.pop() {
            for res in &mut self.channels {
                let serves = res.callee_end().and_then(|c| res.pd.get(c)) == Some(&pd);
                if let (true, Some((seen, since))) = (serves, res.watch) {
                    if since != now_ns {
                        res.watch = Some((seen, now_ns));
                        waiting.extend(res.callee_end().and_then(|c| res.pd.get(c ^ 1)));
                    }
                }
            }
        }
        for (pd, caller) in kill {
            let caller = self
                .pds
                .get(caller)
                .map_or("?", |s| s.name.as_str())
                .to_owned();
            let Some(slot) = self.pds.get_mut(pd) else {
                continue;
            };
            if let Some(pid) = slot.pid() {
                log::warn!(
                    "watchdog: {} did not answer {caller} within {} ms; killing it",
                    slot.name,
                    deadline_ns / 1_000_000
                );
                slot.watchdog_kill = true;
                process::kill(pid, libc::SIGKILL);
            } else {
                log::warn!(
                    "watchdog: call from {caller} to {} (not running) timed out",
                    slot.name
                );
            }
        }
    }

    /// Kill every PD and wait for all of them.
    pub fn shutdown(&mut self) -> usize {
        let mut n = 0;
        for slot in &mut self.pds {
            if let Some(proc) = &slot.proc {
                process::kill(proc.child.id(), libc::SIGKILL);
            }
        }
        for slot in &mut self.pds {
            if let Some(mut proc) = slot.proc.take() {
                let _ = proc.child.wait();
                n += 1;
            }
        }
        n
    }
}
