//! The fault campaign's client program (`client.elf` in the campaign's builds; feature
//! `fault-injection`): the hosted campaign (`mono`'s `campaign::programs`) and the seL4 campaign
//! image (`images/microkit/pds/client`, feature `campaign`) both run it, each handing it the plan
//! its platform was given ([`init`]).
//!
//! It runs the demo clients' DRM job (see [`exchange`]: open, query, BOs, VM_BIND, a copy-engine
//! EXEC, wait, check the copied bytes, close) every [`STEP_NS`] until the plan's `end`, and
//! judges every job: served, refused with a clean error (an errno, e.g. `ENODEV` while a driver
//! restarts), or wrong bytes (a client buffer whose contents changed). It also keeps a canary: a
//! page of its ioctl buffer (shared with drm) that it never hands to anyone, so a correct stack
//! never writes it; a changed checksum is a corrupted buffer too.
//!
//! Pacing: from its timer where the platform has one (hosted); where `Kernel::set_timeout` is
//! unsupported (seL4: no timer driver in the image), `init` runs the whole workload itself, jobs
//! back to back like the demo client with a `Kernel::yield_now` after each, spinning on the clock
//! only through the quiet times around usage reports and the settling time, and returns a
//! finished client. (Without the yield one client starved the other there: pacing jobs by
//! spinning, client0 got 9 jobs to client1's 337 in 800 ms; back to back, 2 to 618 in 1.5 s.)
//!
//! The plan's fault entries cut the run into windows, one per distinct fault time (window 0 is
//! the warm-up before the first fault). At the end of each window the client logs one line the
//! campaign reads (`mono::campaign::session`):
//!
//! ```text
//! client0: window 3 ok 61 errors 2 wrong 0 corrupt 0 recovered-at-us 912345 healthy-before 1 ok-at-end 1
//! ```
//!
//! `recovered-at-us` is when (µs after the epoch) the first job after the window's last failure
//! was served (0: no failure, or none served since), so the campaign can time recovery from the
//! moment the fault fired, including any time the client spent blocked in a call.
//!
//! Usage reports (the plan's `report` entries) fire in a PD at its first event after their time;
//! the client starts no job from [`QUIET_BEFORE_NS`] before such a time to [`QUIET_AFTER_NS`] after
//! it, so the servers report with no job in flight. After `end` it waits [`SETTLE_NS`] (the last
//! report's time falls inside), makes one last job (so every server on its path sees an event
//! after that report's time), logs `campaign done` and reports its verdict: pass unless a buffer
//! changed or nothing was ever served.
//!
//! Trust: the plan comes from whoever started the system; a bad one is logged and the client
//! runs without faults' windows.

use crate::drm_job::{self, JobError, Views};
use crate::regions::rw;
use crate::sys::{client0, client1, RegionDecl};
use drm_api::transport::DrmClient;
use pd_core::faults::{Action, Item, Plan};
use pd_core::shm::{ReadWrite, Region};
use pd_core::{Channel, Handler, IpcError, Kernel, Verdict};

/// One job every 2 ms per client (or as soon as the last one ended).
pub const STEP_NS: u64 = 2_000_000;
/// No job starts this long before a usage report's time (a job in flight holds buffers; a slow
/// build's job takes tens of ms)...
pub const QUIET_BEFORE_NS: u64 = 100_000_000;
/// ...or this long after it.
pub const QUIET_AFTER_NS: u64 = 10_000_000;
/// After `end`: quiet time before the last job (the final report's time falls inside).
pub const SETTLE_NS: u64 = 160_000_000;
/// Without a plan the client runs this long (like the demo client).
pub const DEFAULT_RUN_NS: u64 = 1_000_000_000;
/// The canary page's offset in the ioctl buffer (its last page: ioctls use the first bytes).
pub const CANARY_OFFSET: usize = 0xf000;
/// The canary's length.
pub const CANARY_LEN: usize = 0x1000;
/// The most window boundaries (and, separately, usage reports) a plan may give a client: every
/// entry of a plan could be one ([`pd_core::faults::MAX_ENTRIES`] per PD, a few PDs).
pub const MAX_TIMES: usize = 4 * pd_core::faults::MAX_ENTRIES;

/// Fixed-capacity list of absolute times.
type Times = heapless::Vec<u64, MAX_TIMES>;

/// What one job came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// Done and its bytes checked.
    Served,
    /// A clean error (an errno).
    Refused,
    /// The copied bytes were wrong.
    Wrong,
}

/// The demo clients' DRM job, once (`crate::drm_job::run`, what `crate::client::workload`
/// repeats), with a fresh seed from `x`.
pub fn exchange(
    k: &mut dyn Kernel,
    drm: &mut DrmClient,
    views: &Views,
    x: &mut u64,
    verbose: bool,
) -> Exchange {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    match drm_job::run(k, drm, views, *x, verbose) {
        Ok(()) => Exchange::Served,
        // The job's own check: the copied bytes are not the source's.
        Err(JobError::WrongBytes) => Exchange::Wrong,
        Err(JobError::Ioctl(_)) => Exchange::Refused,
    }
}

/// One window's tally.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    ok: u64,
    errors: u64,
    wrong: u64,
    corrupt: u64,
    first_err: Option<u64>,
    /// The first served job after the latest failure.
    recovered: Option<u64>,
    healthy_before: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    Settling,
    Done,
}

/// The campaign client PD.
#[derive(Debug)]
pub struct Client {
    /// The client's DRM transport and its VRAM window and DMA pool (`None`: not a client PD).
    io: Option<(DrmClient, Views)>,
    /// A second view of the ioctl buffer, for the canary.
    ioctl: Region<ReadWrite>,
    /// Absolute start times of windows 1.. (the distinct fault times), ascending.
    boundaries: Times,
    /// Absolute times of usage reports (no job starts close to them).
    reports: Times,
    end_ns: u64,
    /// The plan's epoch (the system's start), or this client's start without a plan.
    epoch_ns: u64,
    window: usize,
    tally: Window,
    last_ok: bool,
    served_total: u64,
    wrong_total: u64,
    corrupt_total: u64,
    x: u64,
    canary: u64,
    phase: Phase,
}

/// A client's channel to drm and its ioctl buffer, VRAM window and DMA pool (as the demo client's).
fn config(name: &str) -> Option<(Channel, [RegionDecl; 3])> {
    use client0::regions as r0;
    use client1::regions as r1;
    match name {
        client0::NAME => Some((
            client0::channels::DRM,
            [r0::CLIENT0_IOCTL, r0::CLIENT0_VRAM, r0::CLIENT0_DMA],
        )),
        client1::NAME => Some((
            client1::channels::DRM,
            [r1::CLIENT1_IOCTL, r1::CLIENT1_VRAM, r1::CLIENT1_DMA],
        )),
        _ => None,
    }
}

/// What the plan says the client must know, in absolute times.
#[derive(Debug, Default, PartialEq, Eq)]
struct Schedule {
    /// Window starts: the distinct times of the fault entries, ascending.
    boundaries: Times,
    /// The `report` entries' times: the client keeps quiet around them, so the servers report
    /// what they hold with no job in flight.
    reports: Times,
    end: u64,
    epoch: u64,
}

/// Why a plan cannot pace the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScheduleError {
    /// More fault times or reports than [`MAX_TIMES`].
    TooManyTimes,
}

/// The schedule of `plan` (none: run [`DEFAULT_RUN_NS`] from `now`).
fn schedule(plan: Option<&str>, now: u64) -> Result<Schedule, ScheduleError> {
    let Some(text) = plan else {
        return Ok(Schedule {
            end: now.saturating_add(DEFAULT_RUN_NS),
            epoch: now,
            ..Schedule::default()
        });
    };
    let plan = Plan::new(text);
    let epoch = plan.epoch();
    let (mut boundaries, mut reports) = (Times::new(), Times::new());
    for item in plan.items() {
        if let Ok(Item::Entry {
            trigger, action, ..
        }) = item
        {
            let at = epoch.saturating_add(trigger.at_ns);
            let list = match action {
                Action::Report => &mut reports,
                // One window per distinct fault time.
                _ if boundaries.contains(&at) => continue,
                _ => &mut boundaries,
            };
            list.push(at).map_err(|_| ScheduleError::TooManyTimes)?;
        }
    }
    boundaries.sort_unstable();
    let end = plan.end().map_or(now.saturating_add(DEFAULT_RUN_NS), |e| {
        epoch.saturating_add(e)
    });
    Ok(Schedule {
        boundaries,
        reports,
        end,
        epoch,
    })
}

/// The next canary word of the xorshift stream in `x`.
fn next_word(x: &mut u64) -> [u8; 8] {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    x.to_le_bytes()
}

/// Lay the canary for `seed` into the ioctl buffer; its checksum, or `None` if it does not fit.
fn lay_canary(ioctl: &Region<ReadWrite>, seed: u64) -> Option<u64> {
    let mut x = seed | 1;
    for i in 0..CANARY_LEN / 8 {
        ioctl
            .write_bytes(CANARY_OFFSET + i * 8, &next_word(&mut x))
            .ok()?;
    }
    canary_sum(ioctl)
}

/// FNV-1a over the canary page as it is now.
fn canary_sum(ioctl: &Region<ReadWrite>) -> Option<u64> {
    let mut chunk = [0u8; 256];
    let mut h = pd_core::hash::FNV_OFFSET;
    for at in (0..CANARY_LEN).step_by(chunk.len()) {
        ioctl.read_bytes(CANARY_OFFSET + at, &mut chunk).ok()?;
        h = pd_core::hash::fnv1a(h, &chunk);
    }
    Some(h)
}

/// Build the client for the plan its platform was given (`None`: no plan), lay its canary and
/// start its workload: armed on its timer, or run to the end here where the platform has none.
pub fn init(k: &mut dyn Kernel, plan: Option<&str>) -> Client {
    let now = k.now_ns();
    let mut bad = false;
    let Schedule {
        boundaries,
        reports,
        end: end_ns,
        epoch: epoch_ns,
    } = schedule(plan, now).unwrap_or_else(|e| {
        log::error!("{}: fault plan unusable ({e:?}); no windows", k.pd_name());
        bad = true;
        Schedule {
            end: now.saturating_add(DEFAULT_RUN_NS),
            epoch: now,
            ..Schedule::default()
        }
    });
    let (io, ioctl) = match config(k.pd_name()) {
        Some((drm, [ioctl, vram, dma])) if !bad => {
            let views = Views {
                vram: rw(vram),
                dma: rw(dma),
            };
            let ioctl = rw(ioctl);
            (Some((DrmClient::new(drm, ioctl.alias()), views)), ioctl)
        }
        _ => {
            log::error!("{}: not a campaign client PD", k.pd_name());
            let _ = k.report_verdict(Verdict::Fail);
            let none = RegionDecl {
                size: 0,
                ..client0::regions::CLIENT0_IOCTL
            };
            (None, rw(none))
        }
    };
    let seed = now ^ 0x5eed;
    let canary = lay_canary(&ioctl, seed).unwrap_or(0);
    log::info!(
        "{}: campaign client: {} fault windows, end in {} ms",
        k.pd_name(),
        boundaries.len(),
        end_ns.saturating_sub(now) / 1_000_000
    );
    let phase = if io.is_some() {
        Phase::Running
    } else {
        Phase::Done
    };
    let mut client = Client {
        io,
        ioctl,
        boundaries,
        reports,
        end_ns,
        epoch_ns,
        window: 0,
        // Nothing served yet: a fault before the first served job cannot be judged.
        tally: Window::default(),
        last_ok: false,
        served_total: 0,
        wrong_total: 0,
        corrupt_total: 0,
        x: seed | 1,
        canary,
        phase,
    };
    if let Err(IpcError::Unsupported) = k.set_timeout(now) {
        client.run_inline(k, now);
    }
    client
}

impl Client {
    /// Without a timer: run every step in turn, spinning on the clock until each one's time.
    fn run_inline(&mut self, k: &mut dyn Kernel, mut at: u64) {
        while self.phase != Phase::Done {
            while k.now_ns() < at {
                core::hint::spin_loop();
            }
            at = match self.step(k) {
                Next::Job(_) => k.now_ns(),
                Next::Wait(t) => t,
            };
        }
    }

    /// Log the current window's line (it ended at `now`) and start the next one.
    fn close_window(&mut self, k: &mut dyn Kernel, now: u64) {
        let t = self.tally;
        let recovered_us = t
            .recovered
            .filter(|&r| r <= now)
            .map_or(0, |r| r.saturating_sub(self.epoch_ns) / 1_000);
        log::info!(
            "{}: window {} ok {} errors {} wrong {} corrupt {} recovered-at-us {recovered_us} healthy-before {} ok-at-end {}",
            k.pd_name(),
            self.window,
            t.ok,
            t.errors,
            t.wrong,
            t.corrupt,
            u8::from(t.healthy_before),
            u8::from(self.last_ok)
        );
        self.window += 1;
        self.tally = Window {
            healthy_before: self.last_ok,
            ..Window::default()
        };
    }

    fn record(&mut self, outcome: Exchange, now: u64) {
        let t = &mut self.tally;
        match outcome {
            Exchange::Served => {
                t.ok += 1;
                self.served_total += 1;

                if !self.last_ok && t.first_err.is_some() {
                    t.recovered = Some(now);
                }
            }
            Exchange::Refused | Exchange::Wrong => {
                if outcome == Exchange::Wrong {
                    t.wrong += 1;
                    self.wrong_total += 1;
                } else {
                    t.errors += 1;
                }
                t.first_err.get_or_insert(now);
                t.recovered = None;
            }
        }
        self.last_ok = outcome == Exchange::Served;
    }

    fn check_canary(&mut self, k: &mut dyn Kernel) {
        if canary_sum(&self.ioctl) == Some(self.canary) {
            return;
        }
        log::error!("{}: canary page of the ioctl buffer changed", k.pd_name());
        self.tally.corrupt += 1;
        self.corrupt_total += 1;
        // Lay it again, so one corruption counts once.
        self.canary = lay_canary(&self.ioctl, self.x).unwrap_or(0);
    }

    fn job(&mut self, k: &mut dyn Kernel) -> Exchange {
        match self.io.as_mut() {
            Some((drm, views)) => exchange(k, drm, views, &mut self.x, false),
            None => Exchange::Refused,
        }
    }

    fn finish(&mut self, k: &mut dyn Kernel) {
        let last = self.job(k);
        self.check_canary(k);
        let verdict = if self.served_total > 0 && self.corrupt_total == 0 && self.wrong_total == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        log::info!(
            "{}: campaign done: {} jobs served, {} with wrong bytes, {} canary changes, last job {last:?}",
            k.pd_name(),
            self.served_total,
            self.wrong_total,
            self.corrupt_total
        );
        self.phase = Phase::Done;
        let _ = k.report_verdict(verdict);
    }

    /// One step at `k.now_ns()`; says when the next one is due.
    fn step(&mut self, k: &mut dyn Kernel) -> Next {
        let now = k.now_ns();
        match self.phase {
            Phase::Done => return Next::Wait(u64::MAX),
            Phase::Settling if now >= self.end_ns.saturating_add(SETTLE_NS) => {
                self.finish(k);
                return Next::Wait(u64::MAX);
            }
            Phase::Settling => {}
            Phase::Running if now >= self.end_ns => {
                self.close_window(k, now);
                self.phase = Phase::Settling;
                return Next::Wait(self.end_ns.saturating_add(SETTLE_NS));
            }
            Phase::Running => {
                let quiet = self.reports.iter().find(|&&r| {
                    now.saturating_add(QUIET_BEFORE_NS) >= r && now < r + QUIET_AFTER_NS
                });
                if let Some(&r) = quiet {
                    return Next::Wait(r + QUIET_AFTER_NS);
                }
                let outcome = self.job(k);
                let after = k.now_ns();
                // A job counts in the window it ended in: one that a fault cut short belongs to
                // the fault's window, and the window before it ends healthy or not on its own.
                while let Some(&b) = self.boundaries.get(self.window).filter(|&&b| after >= b) {
                    self.close_window(k, b);
                }
                self.record(outcome, after);
                if outcome == Exchange::Served && self.served_total == 1 {
                    // The campaign reads this line: how long the system takes to serve.
                    log::info!(
                        "{}: first job served at +{}us",
                        k.pd_name(),
                        after.saturating_sub(self.epoch_ns) / 1_000
                    );
                }
                self.check_canary(k);
                // The other client of this priority goes next (see `Kernel::yield_now`).
                k.yield_now();
                return Next::Job(now.saturating_add(STEP_NS));
            }
        }
        Next::Wait(now.saturating_add(STEP_NS))
    }
}

/// When a step wants the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// It ran a job: the next one at this time on a timer ([`STEP_NS`] pacing), at once without.
    Job(u64),
    /// Not before this time (a quiet or settling time; `u64::MAX`: never).
    Wait(u64),
}

impl Handler for Client {
    fn timeout(&mut self, k: &mut dyn Kernel) {
        let (Next::Job(next) | Next::Wait(next)) = self.step(k);
        if next != u64::MAX {
            let _ = k.set_timeout(next);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    fn client() -> Client {
        Client {
            io: None,
            ioctl: Region::from_static(vec![0u8; 0x10000].leak()),
            boundaries: Times::new(),
            reports: Times::new(),
            end_ns: 0,
            epoch_ns: 0,
            window: 0,
            tally: Window::default(),
            last_ok: true,
            served_total: 0,
            wrong_total: 0,
            corrupt_total: 0,
            x: 1,
            canary: 0,
            phase: Phase::Running,
        }
    }

    #[test]
    fn a_window_keeps_the_first_success_after_its_last_failure() {
        let mut c = client();
        c.record(Exchange::Served, 10);
        c.record(Exchange::Refused, 20);
        c.record(Exchange::Served, 30);
        c.record(Exchange::Wrong, 40);
        assert_eq!(
            c.tally.recovered, None,
            "a later failure reopens the outage"
        );
        c.record(Exchange::Served, 70);
        c.record(Exchange::Served, 80);
        let t = c.tally;
        assert_eq!(
            (t.ok, t.errors, t.wrong, t.first_err, t.recovered),
            (4, 1, 1, Some(20), Some(70))
        );
        assert!(c.last_ok);
    }

    #[test]
    fn canaries_are_seeded_and_checksummed() {
        let r = Region::from_static(vec![0u8; 0x10000].leak());
        let sum = lay_canary(&r, 3).unwrap();
        assert_eq!(canary_sum(&r), Some(sum));
        let other = Region::from_static(vec![0u8; 0x10000].leak());
        assert_ne!(lay_canary(&other, 4), Some(sum));
        r.write_bytes(CANARY_OFFSET + 100, &[0xff]).unwrap();
        assert_ne!(canary_sum(&r), Some(sum));
        let small = Region::from_static(vec![0u8; 0x100].leak());
        assert_eq!(canary_sum(&small), None);
        assert_eq!(lay_canary(&small, 3), None);
    }

    #[test]
    fn the_plan_gives_sorted_windows_reports_and_the_end() {
        let plan = "epoch=1000;end=900ns;*@100ns:report;gpu@500ns:panic;drm@300ns:hang;\
                    pci@500ns:corrupt;*@950ns:report";
        let s = schedule(Some(plan), 7).unwrap();
        assert_eq!(s.boundaries.as_slice(), [1300, 1500]);
        assert_eq!(s.reports.as_slice(), [1100, 1950]);
        assert_eq!((s.end, s.epoch), (1900, 1000));
        let none = schedule(None, 7).unwrap();
        assert_eq!((none.end, none.epoch), (7 + DEFAULT_RUN_NS, 7));
        assert!(none.boundaries.is_empty());
        let mut many = std::string::String::new();
        for i in 0..=MAX_TIMES {
            many.push_str(&std::format!("gpu@{i}ms:panic;"));
        }
        assert_eq!(schedule(Some(&many), 0), Err(ScheduleError::TooManyTimes));
    }
}
