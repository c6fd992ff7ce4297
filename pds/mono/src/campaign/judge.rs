//! Each run's verdict, from its session's log: did the system survive the fault, did the clients
//! recover and how fast, what leaked, what changed that should not have.
//!
//! A run **survived** when, in its window: every client stayed up and was served again by the
//! window's end; clients that do not depend on the faulted PD saw no error at all; no client's
//! canary changed; and no PD died but the faulted one (its *blast radius*). Errors the clients of
//! the faulted PD saw meanwhile are the clean errors isolation promises; how long they lasted is
//! the run's recovery time. A run whose fault never fired, or whose clients were already failing
//! when its window began, is not judged: it goes into a later session, at most [`ATTEMPTS`]
//! times. Runs after a failed one in the same session are not judged either (the failure may have
//! left damage they would be blamed for): they go into a fresh session.

use super::schedule::{pack, Config, Run, Session};
use super::session::{self, Composition, Event, Exit, Output, WindowLine};
use super::{served_by, Binaries};
use pd_programs::Role;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// How often a run may go unjudged before the campaign reports it as such.
pub const ATTEMPTS: usize = 3;

/// A judged run's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The system survived the fault.
    Survived,
    /// It did not: why.
    Failed(String),
}

/// One judged run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// The run.
    pub run: Run,
    /// Where it ran.
    pub composition: Composition,
    /// The verdict.
    pub verdict: Verdict,
    /// Some client saw errors (the fault was visible to clients).
    pub visible: bool,
    /// The longest client outage, when there was one and it ended.
    pub recovery_us: Option<u64>,
    /// Canary changes in any client.
    pub corrupt: u64,
    /// Wrong answers the clients detected.
    pub wrong: u64,
    /// PDs that died in the window besides the faulted one.
    pub also_faulted: Vec<String>,
}

impl RunResult {
    /// Whether it survived.
    pub fn survived(&self) -> bool {
        self.verdict == Verdict::Survived
    }
}

/// One session's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// Where.
    pub composition: Composition,
    /// The runs it held.
    pub runs: Vec<usize>,
    /// DMA pages held at the end beyond what was held before the first fault, over the PDs that
    /// reported both and did not restart in between.
    pub leaked_dma_pages: u64,
    /// VRAM pages, likewise.
    pub leaked_vram_pages: u64,
    /// The PDs that reported usage before and after.
    pub usage_sources: Vec<String>,
    /// How it ended.
    pub exit: Exit,
    /// How long it took.
    pub wall: Duration,
}

/// A run the campaign could not judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unjudged {
    /// The run.
    pub run: Run,
    /// Where.
    pub composition: Composition,
    /// Why (the last attempt's reason).
    pub why: String,
}

/// Everything a campaign found.
#[derive(Debug, Clone, Default)]
pub struct Campaign {
    /// How it ran.
    pub config: Config,
    /// Judged runs, both compositions.
    pub results: Vec<RunResult>,
    /// Sessions, both compositions.
    pub sessions: Vec<SessionSummary>,
    /// Runs left unjudged.
    pub unjudged: Vec<Unjudged>,
    /// Wall-clock time per composition.
    pub wall: BTreeMap<Composition, Duration>,
    /// Per composition: how long after its start both clients were first served (fault-free
    /// calibration session), and the warm-up the sessions used.
    pub boot: BTreeMap<Composition, (Duration, Duration)>,
    /// Targets' PDs that handle no event while the workload runs: their faults cannot fire, so
    /// none were drawn.
    pub idle: Vec<String>,
}

/// A slot's judgement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Judgement {
    Judged(RunResult),
    /// Not judged: run it again (counts as an attempt).
    Retry(String),
    /// An earlier run of the session failed, so the system this run met may already have been
    /// damaged: run it again in a fresh session (not counted as an attempt; the first run of
    /// every session is judged or retried, so the campaign always moves on).
    Spoiled(String),
}

/// The workload PDs (the campaign's clients).
fn clients() -> Vec<&'static str> {
    let table = super::programs();
    pd_programs::sys::system::PDS
        .iter()
        .filter(|d| {
            pd_programs::find(&table, d.program_image).map(|p| p.role) == Some(Role::Workload)
        })
        .map(|d| d.name)
        .collect()
}

fn describe(exit: Exit) -> String {
    match exit {
        Exit::Signal(6) => "the process aborted (SIGABRT)".into(),
        Exit::Signal(11) => "the process took a VM fault (SIGSEGV)".into(),
        Exit::Signal(7) => "the process took a bus error (SIGBUS)".into(),
        Exit::Signal(s) => format!("the process was killed by signal {s}"),
        Exit::Code(c) => format!("the process exited with status {c}"),
        Exit::Overdue => "the process hung past its deadline and was killed".into(),
        Exit::Stopped => "the campaign stopped the session after a failed run".into(),
    }
}

/// A session's judgements and totals.
type Judged = (Vec<(Run, Judgement)>, SessionSummary);

/// A session's log, read once.
struct Log {
    events: Vec<Event>,
    /// How the session ended, in words.
    ended: String,
    exit: Exit,
    /// Per slot: where its fault fired, by position in `events`.
    fired: Vec<Option<usize>>,
}

impl Log {
    fn new(session: &Session, out: &Output) -> Self {
        let events: Vec<Event> = out.lines.iter().filter_map(|l| session::parse(l)).collect();
        let fatal = events.iter().find_map(|e| match e {
            Event::Fatal(why) => Some(why.clone()),
            _ => None,
        });
        let ended = match (fatal, out.exit) {
            (Some(why), Exit::Code(_) | Exit::Overdue) => why,
            (Some(why), exit) => format!("{}: {why}", describe(exit)),
            (None, exit) => describe(exit),
        };
        // A slot's fault: its PD and action, inside its window.
        let fired = session
            .slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let from = slot.at_ns / 1_000;
                let to = session.slots.get(i + 1).map_or(u64::MAX, |n| n.at_ns / 1_000);
                let action = slot.run.action.to_string();
                events.iter().position(|e| {
                    matches!(e, Event::Injected { pd, action: a, at_us }
                        if pd == slot.run.target.inject_in && *a == action && (from..to).contains(at_us))
                })
            })
            .collect();
        Self {
            events,
            ended,
            exit: out.exit,
            fired,
        }
    }

    /// `client`'s line for window `index`.
    fn window(&self, client: &str, index: usize) -> Option<WindowLine> {
        self.events.iter().find_map(|e| match e {
            Event::Window { client: c, line } if c == client && line.index == index => Some(*line),
            _ => None,
        })
    }

    /// The PDs that died between slot `i`'s fault (at `at`) and the next fault, or the window's
    /// close (every client's line for it) if that comes first (the next fault may not be in the
    /// log yet).
    fn deaths(&self, i: usize, at: usize, all_closed: bool) -> Vec<String> {
        let closed = self
            .events
            .iter()
            .rposition(|e| matches!(e, Event::Window { line, .. } if line.index == i + 1))
            .filter(|_| all_closed);
        let next_fault = self.fired.iter().skip(i + 1).flatten().next().copied();
        let next = match (next_fault, closed) {
            (Some(f), Some(c)) => f.min(c),
            (Some(p), None) | (None, Some(p)) => p,
            (None, None) => self.events.len(),
        };
        let mut died: Vec<String> = self
            .events
            .get(at..next)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| match e {
                Event::Faulted { pd, .. } => Some(pd.clone()),
                _ => None,
            })
            .collect();
        died.sort();
        died.dedup();
        died
    }

    /// Usage as the plan's `report` entries asked for it (a PD may log usage at other times too),
    /// before the first fault and after the end: (leaked DMA pages, leaked VRAM pages, the PDs
    /// that reported both and did not restart in between: a restarted PD counts from zero).
    ///
    /// A usage asked for before every client was first served does not count: the system was
    /// still coming up (a slow boot's gsp allocates its buffers after such a report), so the
    /// difference would be its start-up, not a leak.
    fn leaks(&self, session: &Session) -> (u64, u64, Vec<String>) {
        let first_us = session.slots.first().map_or(u64::MAX, |s| s.at_ns / 1_000);
        let up_us = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::FirstServed { at_us, .. } => Some(*at_us),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let end_us = session.end_ns / 1_000;
        let mut asked: BTreeMap<&str, u64> = BTreeMap::new();
        let mut before: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut after: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for e in &self.events {
            match e {
                Event::Injected { pd, action, at_us } if action == "report" => {
                    asked.insert(pd.as_str(), *at_us);
                }
                Event::Usage {
                    pd,
                    dma_pages,
                    vram_pages,
                } => match asked.remove(pd.as_str()) {
                    Some(at) if at < first_us && at >= up_us => {
                        before.insert(pd.as_str(), (*dma_pages, *vram_pages));
                    }
                    Some(at) if at >= end_us => {
                        after.insert(pd.as_str(), (*dma_pages, *vram_pages));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let restarted = |pd: &str| {
            self.events
                .iter()
                .any(|e| matches!(e, Event::Faulted { pd: p, .. } if p == pd))
        };
        let (mut dma, mut vram, mut sources) = (0, 0, Vec::new());
        for (pd, (d0, v0)) in &before {
            if let Some((d1, v1)) = after.get(pd).filter(|_| !restarted(pd)) {
                dma += d1.saturating_sub(*d0);
                vram += v1.saturating_sub(*v0);
                sources.push((*pd).to_owned());
            }
        }
        (dma, vram, sources)
    }
}

/// Judge slot `i` of `session`.
fn judge_run(log: &Log, session: &Session, i: usize, comp: Composition) -> Judgement {
    let Some(slot) = session.slots.get(i) else {
        return Judgement::Retry("no such run".into());
    };
    let run = slot.run;
    let lines: Vec<(&str, Option<WindowLine>)> = clients()
        .into_iter()
        .map(|c| (c, log.window(c, i + 1)))
        .collect();
    let all_closed = lines.iter().all(|(_, w)| w.is_some());
    if log.exit == Exit::Stopped && !all_closed {
        // The campaign stopped the session (a run failed) before this window closed.
        return Judgement::Spoiled("the session was stopped first".into());
    }
    let Some(at) = log.fired.get(i).copied().flatten() else {
        return Judgement::Retry(if all_closed {
            format!(
                "did not fire: {} handled no event in its window",
                run.target.inject_in
            )
        } else {
            format!("not reached: {} before its window", log.ended)
        });
    };
    if let Some((client, _)) = lines
        .iter()
        .find(|(_, w)| w.is_some_and(|w| !w.healthy_before))
    {
        return Judgement::Retry(format!("spoiled: {client} was failing before the fault"));
    }
    let fired_us = match log.events.get(at) {
        Some(Event::Injected { at_us, .. }) => *at_us,
        _ => 0,
    };
    let expected = run.target.kind.kills_the_pd().then_some(run.target.pd);
    let also: Vec<String> = log
        .deaths(i, at, all_closed)
        .into_iter()
        .filter(|d| Some(d.as_str()) != expected)
        .collect();
    let served = served_by(run.target.pd);
    let mut problems = Vec::new();
    let (mut visible, mut recovery, mut corrupt, mut wrong) = (false, 0u64, 0u64, 0u64);
    let stopped: Vec<&str> = lines
        .iter()
        .filter(|(_, w)| w.is_none())
        .map(|(c, _)| *c)
        .collect();
    if !stopped.is_empty() {
        problems.push(format!("{} stopped: {}", stopped.join(" and "), log.ended));
    }
    for &(client, w) in &lines {
        let Some(w) = w else { continue };
        (corrupt, wrong) = (corrupt + w.corrupt, wrong + w.wrong);
        if w.corrupt > 0 {
            problems.push(format!("{client}'s buffer changed"));
        }
        if w.wrong > 0 {
            problems.push(format!("{client}'s job copied wrong bytes"));
        }
        if w.errors + w.wrong > 0 {
            visible = true;
            recovery = recovery.max(w.recovered_at_us.saturating_sub(fired_us));
            if !served.contains(&client) {
                problems.push(format!(
                    "{client}, not served by {}, saw errors",
                    run.target.pd
                ));
            }
        }
        if !w.ok_at_end {
            problems.push(format!(
                "{client} not served again within {} ms",
                slot.window_ns / 1_000_000
            ));
        }
    }
    if !also.is_empty() {
        problems.push(format!("also died: {}", also.join(", ")));
    }
    let all_back = lines.iter().all(|(_, w)| w.is_some_and(|w| w.ok_at_end));
    let verdict = if problems.is_empty() {
        Verdict::Survived
    } else {
        Verdict::Failed(problems.join("; "))
    };
    Judgement::Judged(RunResult {
        run,
        composition: comp,
        verdict,
        visible,
        recovery_us: (visible && all_back).then_some(recovery),
        corrupt,
        wrong,
        also_faulted: also,
    })
}

/// Judge every run of `session` from `out`: in order, until one fails (the rest are spoiled).
fn judge(session: &Session, comp: Composition, out: &Output) -> Judged {
    let log = Log::new(session, out);
    let mut judged = Vec::new();
    let mut failed: Option<usize> = None;
    for (i, slot) in session.slots.iter().enumerate() {
        let j = match failed {
            Some(earlier) => Judgement::Spoiled(format!("run {earlier} failed before it")),
            None => judge_run(&log, session, i, comp),
        };
        if matches!(&j, Judgement::Judged(r) if !r.survived()) {
            failed = Some(slot.run.id);
        }
        judged.push((slot.run, j));
    }
    let (dma, vram, sources) = log.leaks(session);
    let summary = SessionSummary {
        composition: comp,
        runs: session.slots.iter().map(|s| s.run.id).collect(),
        leaked_dma_pages: dma,
        leaked_vram_pages: vram,
        usage_sources: sources,
        exit: out.exit,
        wall: out.wall,
    };
    (judged, summary)
}

/// Whether a run of `session` has failed already, judging only the windows that are complete in
/// the log so far (a session is stopped then: what follows would be judged on a damaged system).
fn failed_so_far(session: &Session, comp: Composition, lines: &[String]) -> bool {
    let windows: Vec<(String, usize)> = lines
        .iter()
        .filter_map(|l| match session::parse(l) {
            Some(Event::Window { client, line }) => Some((client, line.index)),
            _ => None,
        })
        .collect();
    let clients = clients();
    let complete = |i: usize| {
        clients
            .iter()
            .all(|c| windows.iter().any(|(w, index)| w == c && *index == i + 1))
    };
    let n = (0..session.slots.len())
        .take_while(|&i| complete(i))
        .count();
    let out = Output {
        lines: lines.to_vec(),
        exit: Exit::Code(0),
        wall: Duration::ZERO,
    };
    // The whole session, so that each run's window is cut exactly as it will be at the end.
    judge(session, comp, &out)
        .0
        .iter()
        .take(n)
        .any(|(_, j)| matches!(j, Judgement::Judged(r) if !r.survived()))
}

/// Write a session's log into `config.logs`, if asked (a failure to write is only reported).
fn keep_log(config: &Config, comp: Composition, session: &Session, out: &Output) {
    let Some(dir) = &config.logs else { return };
    let first = session.slots.first().map_or(0, |s| s.run.id);
    let path = dir.join(format!("{}-{first}.log", comp.name()));
    let text = format!(
        "# plan: {}\n{}\n",
        session.plan(config),
        out.lines.join("\n")
    );
    if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("faults: cannot keep {}: {e}", path.display());
    }
}

/// A calibration session: the clients must be served before [`ACTIVE_FROM_NS`]; PDs that
/// handle an event in [`ACTIVE_FROM_NS`]`..`[`CALIBRATION_NS`] are exercised by the workload.
pub const CALIBRATION_NS: u64 = 3_000_000_000;
/// See [`CALIBRATION_NS`].
pub const ACTIVE_FROM_NS: u64 = 2_000_000_000;

/// What a fault-free session says about a composition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calibration {
    /// From the start until every client's first job was served.
    pub boot: Duration,
    /// The PDs that handle events while the workload runs (a fault elsewhere could not fire).
    pub active: Vec<String>,
}

/// Run one fault-free session of `comp`; `None` when some client was not served in time.
///
/// # Errors
/// When the composition's binary cannot be started.
pub fn calibrate(
    bins: &Binaries,
    comp: Composition,
    config: &Config,
) -> std::io::Result<Option<Calibration>> {
    let plan = format!(
        "end={CALIBRATION_NS}ns;*@{ACTIVE_FROM_NS}ns+{}ns:report",
        CALIBRATION_NS - ACTIVE_FROM_NS
    );
    let out = session::run(bins, comp, &plan, CALIBRATION_NS, config, &|_| false)?;
    let mut firsts: BTreeMap<String, u64> = BTreeMap::new();
    let mut active = Vec::new();
    for e in out.lines.iter().filter_map(|l| session::parse(l)) {
        match e {
            Event::FirstServed { client, at_us } => {
                firsts.insert(client, at_us);
            }
            Event::Injected { pd, action, .. } if action == "report" => active.push(pd),
            _ => {}
        }
    }
    let boot = firsts.values().max().copied().unwrap_or(u64::MAX);
    if clients().iter().any(|c| !firsts.contains_key(*c)) || boot >= ACTIVE_FROM_NS / 1_000 {
        return Ok(None);
    }
    active.sort();
    active.dedup();
    Ok(Some(Calibration {
        boot: Duration::from_micros(boot),
        active,
    }))
}

/// Run `runs` in `comp`, `config.jobs` sessions at a time, re-running unjudged runs; every run ends
/// up judged or in the campaign's unjudged list.
///
/// # Errors
/// When a composition's binary cannot be started.
pub fn run_all(
    bins: &Binaries,
    comp: Composition,
    runs: &[Run],
    config: &Config,
    into: &mut Campaign,
) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    let mut queue: Vec<(Run, usize)> = runs.iter().map(|&r| (r, 0)).collect();
    while !queue.is_empty() {
        let batch: Vec<Run> = queue.iter().map(|(r, _)| *r).collect();
        let attempts: BTreeMap<usize, usize> = queue.iter().map(|(r, a)| (r.id, *a)).collect();
        let sessions: VecDeque<Session> = pack(&batch, comp, config).into();
        let total = sessions.len();
        let todo = Mutex::new(sessions);
        let done: Mutex<Vec<Judged>> = Mutex::new(Vec::new());
        let error: Mutex<Option<std::io::Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..config.jobs.max(1) {
                s.spawn(|| loop {
                    let next = todo.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(session) = next else { break };
                    let plan = session.plan(config);
                    // Judge again only when a window closed.
                    let seen = std::cell::Cell::new(0);
                    let failed = |lines: &[String]| {
                        let fresh = lines.get(seen.replace(lines.len())..).unwrap_or_default();
                        fresh.iter().any(|l| l.contains(": window "))
                            && failed_so_far(&session, comp, lines)
                    };
                    match session::run(bins, comp, &plan, session.end_ns, config, &failed) {
                        Ok(out) => {
                            keep_log(config, comp, &session, &out);
                            let judged = judge(&session, comp, &out);
                            if let Ok(mut d) = done.lock() {
                                d.push(judged);
                                eprint!(
                                    "\rfaults: {} sessions {}/{total}   ",
                                    comp.name(),
                                    d.len()
                                );
                            }
                        }
                        Err(e) => {
                            if let Ok(mut slot) = error.lock() {
                                slot.get_or_insert(e);
                            }
                            break;
                        }
                    }
                });
            }
        });
        eprintln!();
        if let Some(e) = error.into_inner().ok().flatten() {
            return Err(e);
        }
        queue.clear();
        for (judged, summary) in done.into_inner().unwrap_or_default() {
            into.sessions.push(summary);
            for (run, j) in judged {
                match j {
                    Judgement::Judged(r) => into.results.push(r),
                    Judgement::Spoiled(_) => {
                        let tried = attempts.get(&run.id).copied().unwrap_or(0);
                        queue.push((run, tried));
                    }
                    Judgement::Retry(why) => {
                        let tried = attempts.get(&run.id).copied().unwrap_or(0) + 1;
                        if tried < ATTEMPTS {
                            queue.push((run, tried));
                        } else {
                            into.unjudged.push(Unjudged {
                                run,
                                composition: comp,
                                why,
                            });
                        }
                    }
                }
            }
        }
        queue.sort_by_key(|(r, _)| r.id);
    }
    into.results.sort_by_key(|r| (r.composition, r.run.id));
    *into.wall.entry(comp).or_default() += started.elapsed();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::catalogue::{self, Kind, Target};
    use crate::campaign::schedule::{self, Slot};

    fn session(kinds: &[(Kind, &'static str)]) -> Session {
        let mut at = 300_000_000;
        let slots = kinds
            .iter()
            .enumerate()
            .map(|(id, &(kind, pd))| {
                let target = Target {
                    kind,
                    pd,
                    inject_in: pd,
                };
                let s = Slot {
                    run: schedule::Run {
                        id,
                        target,
                        action: catalogue::action(target, 0),
                        nth: 1,
                    },
                    at_ns: at,
                    window_ns: 150_000_000,
                };
                at += 150_000_000;
                s
            })
            .collect();
        Session { slots, end_ns: at }
    }

    fn out(lines: &[&str], exit: Exit) -> Output {
        Output {
            lines: lines.iter().map(|s| s.to_string()).collect(),
            exit,
            wall: Duration::from_secs(1),
        }
    }

    fn verdicts(j: &[(Run, Judgement)]) -> Vec<String> {
        j.iter()
            .map(|(_, j)| match j {
                Judgement::Judged(r) => match &r.verdict {
                    Verdict::Survived => format!("survived {:?}", r.recovery_us),
                    Verdict::Failed(why) => format!("failed: {why}"),
                },
                Judgement::Retry(why) => format!("retry: {why}"),
                Judgement::Spoiled(why) => format!("spoiled: {why}"),
            })
            .collect()
    }

    #[test]
    fn a_contained_crash_survives_and_a_dead_process_fails() {
        let s = session(&[(Kind::Panic, "gpu"), (Kind::CorruptReply, "drm")]);
        let ok = "ok 50 errors 0 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1";
        let log = [
            "alloc: warning: fault injected: report at +270000us (entry 0)".to_owned(),
            "alloc: usage dma-pages 4 vram-pages 0".to_owned(),
            "alloc: usage dma-pages 9 vram-pages 0".to_owned(),
            "gpu: warning: fault injected: panic at +300100us (entry 0)".to_owned(),
            "runtime: gpu faulted (abort); reporting to supervisor".to_owned(),
            "client0: window 1 ok 60 errors 3 wrong 0 corrupt 0 recovered-at-us 305200 healthy-before 1 ok-at-end 1".to_owned(),
            "client1: window 1 ok 60 errors 2 wrong 0 corrupt 0 recovered-at-us 304100 healthy-before 1 ok-at-end 1".to_owned(),
            "drm: warning: fault injected: corrupt=0x1 at +450000us (entry 0)".to_owned(),
            format!("client0: window 2 {ok}"),
            format!("client1: window 2 {}", ok.replace("errors 0", "errors 1").replace("recovered-at-us 0", "recovered-at-us 452000")),
            "alloc: usage dma-pages 7 vram-pages 0".to_owned(),
            "alloc: warning: fault injected: report at +610000us (entry 3)".to_owned(),
            "alloc: usage dma-pages 6 vram-pages 0".to_owned(),
        ];
        let log: Vec<&str> = log.iter().map(String::as_str).collect();
        let (j, summary) = judge(&s, Composition::Isolated, &out(&log, Exit::Code(0)));
        assert_eq!(verdicts(&j), ["survived Some(5100)", "survived Some(2000)"]);
        assert_eq!(
            (summary.leaked_dma_pages, summary.usage_sources.clone()),
            (2, vec!["alloc".to_owned()])
        );
        // The same first run, monolithic: the process died in the window, the second never ran.
        let mono = [
            "mono: warning: gpu: fault injected: panic at +300100us (entry 0)",
            "mono: error: panicked at pds/core/src/faults.rs:1:2: gpu: injected panic",
        ];
        let (j, _) = judge(&s, Composition::Monolithic, &out(&mono, Exit::Signal(6)));
        let v = verdicts(&j);
        assert!(
            v[0].starts_with(
                "failed: client0 and client1 stopped: the process aborted (SIGABRT): panicked at"
            ),
            "{v:?}"
        );
        assert_eq!(v[1], "spoiled: run 0 failed before it");
    }

    #[test]
    fn vram_gpu_server_still_holds_at_the_end_is_a_leak_like_dma() {
        // Leaks do not depend on the run's fault: only on the usage asked for before the first
        // fault and after the end.
        let s = session(&[(Kind::GspCrash, "gsp_model")]);
        let ok = "ok 50 errors 0 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1";
        let log = [
            "alloc: warning: fault injected: report at +270000us (entry 0)".to_owned(),
            "alloc: usage dma-pages 40 vram-pages 0".to_owned(),
            "gpu: warning: fault injected: report at +270100us (entry 0)".to_owned(),
            "gpu: usage dma-pages 0 vram-pages 10".to_owned(),
            format!("client0: window 1 {ok}"),
            format!("client1: window 1 {ok}"),
            "alloc: warning: fault injected: report at +460000us (entry 2)".to_owned(),
            "alloc: usage dma-pages 40 vram-pages 0".to_owned(),
            "gpu: warning: fault injected: report at +460100us (entry 2)".to_owned(),
            "gpu: usage dma-pages 0 vram-pages 13".to_owned(),
        ];
        let log: Vec<&str> = log.iter().map(String::as_str).collect();
        let (_, summary) = judge(&s, Composition::Isolated, &out(&log, Exit::Code(0)));
        assert_eq!(
            (
                summary.leaked_dma_pages,
                summary.leaked_vram_pages,
                summary.usage_sources.clone()
            ),
            (0, 3, vec!["alloc".to_owned(), "gpu".to_owned()])
        );
        let c = Campaign {
            sessions: vec![summary],
            ..Campaign::default()
        };
        assert_eq!(
            crate::campaign::report::leaked_pages(&c, Composition::Isolated),
            3
        );
    }

    #[test]
    fn a_usage_taken_before_the_system_served_anyone_is_no_baseline() {
        let s = session(&[(Kind::GspCrash, "gsp_model")]);
        let ok = "ok 50 errors 0 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1";
        let log = [
            // gsp is still booting: alloc reports before gsp's buffers exist.
            "alloc: warning: fault injected: report at +270000us (entry 0)".to_owned(),
            "alloc: usage dma-pages 0 vram-pages 0".to_owned(),
            "client0: first job served at +280000us".to_owned(),
            "client1: first job served at +281000us".to_owned(),
            format!("client0: window 1 {ok}"),
            format!("client1: window 1 {ok}"),
            "alloc: warning: fault injected: report at +460000us (entry 2)".to_owned(),
            "alloc: usage dma-pages 482 vram-pages 0".to_owned(),
        ];
        let log: Vec<&str> = log.iter().map(String::as_str).collect();
        let (_, summary) = judge(&s, Composition::Isolated, &out(&log, Exit::Code(0)));
        assert_eq!(
            (summary.leaked_dma_pages, summary.usage_sources.len()),
            (0, 0),
            "not measured, not a leak"
        );
    }

    #[test]
    fn blast_radius_unserved_errors_canaries_and_spoiled_windows_are_caught() {
        let s = session(&[
            (Kind::Hang, "gsp"),
            (Kind::OutOfMemory, "alloc"),
            (Kind::Panic, "pci"),
        ]);
        let log = [
            "gsp: warning: fault injected: hang at +300100us (entry 0)",
            "runtime: gsp faulted (missed its watchdog deadline); reporting to supervisor",
            "runtime: gpu faulted (abort); reporting to supervisor",
            "client0: window 1 ok 1 errors 3 wrong 0 corrupt 1 recovered-at-us 100 healthy-before 1 ok-at-end 0",
            "client1: window 1 ok 1 errors 3 wrong 1 corrupt 0 recovered-at-us 300200 healthy-before 1 ok-at-end 1",
            "client0: window 2 ok 1 errors 0 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 0 ok-at-end 1",
            "client1: window 2 ok 1 errors 0 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1",
            "client0: window 3 ok 1 errors 0 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1",
            "client1: window 3 ok 1 errors 0 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1",
        ];
        let (j, _) = judge(&s, Composition::Isolated, &out(&log, Exit::Code(0)));
        let v = verdicts(&j);
        assert_eq!(
            v[0],
            "failed: client0's buffer changed; client0 not served again within 150 ms; client1's job copied wrong bytes; also died: gpu"
        );
        assert_eq!(
            v[1..],
            [
                "spoiled: run 0 failed before it",
                "spoiled: run 0 failed before it"
            ]
        );
    }

    #[test]
    fn runs_that_did_not_fire_or_met_failing_clients_are_retried() {
        let s = session(&[
            (Kind::Panic, "drm"),
            (Kind::OutOfMemory, "alloc"),
            (Kind::Panic, "gpu"),
        ]);
        let log = [
            "drm: warning: fault injected: panic at +300100us (entry 0)",
            "runtime: drm faulted (abort); reporting to supervisor",
            "client0: window 1 ok 5 errors 1 wrong 0 corrupt 0 recovered-at-us 310000 healthy-before 1 ok-at-end 0",
            "client1: window 1 ok 5 errors 1 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1",
            "client0: window 2 ok 1 errors 0 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1",
            "client1: window 2 ok 1 errors 0 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1",
            "gpu: warning: fault injected: panic at +600200us (entry 0)",
            "client0: window 3 ok 1 errors 1 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 0 ok-at-end 1",
            "client1: window 3 ok 1 errors 1 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1",
        ];
        let (j, _) = judge(&s, Composition::Isolated, &out(&log, Exit::Code(0)));
        let v = verdicts(&j);
        assert_eq!(v[0], "failed: client0 not served again within 150 ms");
        assert_eq!(
            v[1..],
            [
                "spoiled: run 0 failed before it",
                "spoiled: run 0 failed before it"
            ]
        );
        let s = session(&[(Kind::OutOfMemory, "alloc"), (Kind::Panic, "gpu")]);
        let log = [
            "client0: window 1 ok 9 errors 0 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 0",
            "client1: window 1 ok 9 errors 0 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1",
            "gpu: warning: fault injected: panic at +450200us (entry 0)",
            "client0: window 2 ok 1 errors 1 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 0 ok-at-end 1",
            "client1: window 2 ok 1 errors 1 wrong 0 corrupt 0 recovered-at-us 0 healthy-before 1 ok-at-end 1",
        ];
        let (j, _) = judge(&s, Composition::Isolated, &out(&log, Exit::Code(0)));
        let v = verdicts(&j);
        assert!(
            v[0].starts_with("retry: did not fire: alloc handled no event"),
            "{v:?}"
        );
        assert_eq!(v[1], "retry: spoiled: client0 was failing before the fault");
    }
}
