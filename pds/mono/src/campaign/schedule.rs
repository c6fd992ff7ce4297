//! Runs drawn from a seed, packed into sessions: one boot of a composition absorbs several faults
//! in sequence, each in its own window of time, so each is judged on its own.
//!
//! A session's plan (`pd_core::faults` syntax) starts with a warm-up, puts one fault at the start
//! of each window, asks every PD for its usage before the first fault and after the end (leak
//! check), and ends the clients' workload after the last window. Packing respects what a session
//! can take: the system's recovery budgets (at most [`KILLS_PER_PD`] killed instances of a PD and
//! [`GSP_REBOOTS`] in-place GSP reboots per session), so no run meets a system that has given up
//! because of the runs before it; and, in the monolithic composition, that the first fault that
//! kills a PD ends the process (so each session holds at most one, last).

use super::catalogue::{self, Kind, Target};
use super::session::Composition;
use pd_core::faults::Action;

/// How a campaign runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Runs per composition.
    pub runs: usize,
    /// Everything random comes from this.
    pub seed: u64,
    /// Sessions running at the same time.
    pub jobs: usize,
    /// From the system's start to the first fault.
    pub warmup_ns: u64,
    /// One run's window (a hang's gets the watchdog deadline on top).
    pub window_ns: u64,
    /// The PPC watchdog (isolated) and the hang detector (monolithic).
    pub watchdog_ns: u64,
    /// The most runs in one session.
    pub per_session: usize,
    /// Only these kinds (all when empty).
    pub kinds: Vec<Kind>,
    /// Keep every session's log here (`<composition>-<first run>.log`).
    pub logs: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            runs: 1000,
            seed: 1,
            jobs: 2,
            warmup_ns: 300_000_000,
            window_ns: 300_000_000,
            watchdog_ns: 1_000_000_000,
            per_session: 16,
            kinds: Vec::new(),
            logs: None,
        }
    }
}

impl Config {
    /// A run's window.
    pub fn window(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Hang => self.window_ns + self.watchdog_ns,
            _ => self.window_ns,
        }
    }
}

/// The supervisor restarts a driver at most 5 times in 10 s (`pd_programs::supervisor::policy`):
/// a session kills each PD at most this often, so every restart is granted.
pub const KILLS_PER_PD: usize = 4;

/// The gsp PD boots a crashed firmware again in place at most 3 times per instance
/// (`pd_programs::gsp`'s `MAX_REBOOTS`, with no time window); a session holds at most this many
/// runs that can cost such a reboot ([`catalogue::Target::reboots_gsp`]).
pub const GSP_REBOOTS: usize = 2;

/// One fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Its number in the campaign (the same run in both compositions).
    pub id: usize,
    /// Where and what.
    pub target: Target,
    /// The exact action.
    pub action: Action,
    /// It fires at this event of the PD at or after its window's start.
    pub nth: u32,
}

/// splitmix64.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    /// Uniform below `n` (`n` > 0; 0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        // CAST: usize to u64 is lossless here, and the remainder is below n.
        self.next_u64()
            .checked_rem(n as u64)
            .map_or(0, |r| r as usize)
    }
}

/// `n` runs drawn from `seed`, over the catalogue's targets of `kinds` (all when empty) whose
/// injecting PD is in `active` (handles events while the workload runs; all when empty).
pub fn draw(seed: u64, n: usize, kinds: &[Kind], active: &[String]) -> Vec<Run> {
    let targets: Vec<Target> = catalogue::targets()
        .into_iter()
        .filter(|t| kinds.is_empty() || kinds.contains(&t.kind))
        .filter(|t| active.is_empty() || active.iter().any(|a| a == t.inject_in))
        .collect();
    let mut rng = Rng::new(seed);
    (0..n)
        .filter_map(|id| {
            let target = *targets.get(rng.below(targets.len()))?;
            let action = catalogue::action(target, rng.next_u64());
            // CAST: below 4.
            let nth = 1 + rng.below(4) as u32;
            Some(Run {
                id,
                target,
                action,
                nth,
            })
        })
        .collect()
}

/// A run's place in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The run.
    pub run: Run,
    /// Its window's start, in ns after the system's start.
    pub at_ns: u64,
    /// Its window's length.
    pub window_ns: u64,
}

/// One boot of a composition and the runs it absorbs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The runs, in time order.
    pub slots: Vec<Slot>,
    /// When the clients stop, in ns after the system's start.
    pub end_ns: u64,
}

/// When the baseline usage report fires, before the first fault (the clients are quiet from
/// `client::QUIET_BEFORE_NS` before it to `client::QUIET_AFTER_NS` after it).
const BASELINE_BEFORE_NS: u64 = 30_000_000;
/// When the final usage report fires, after the end: inside the clients' settling time, before
/// their last job (`client::SETTLE_NS`).
const FINAL_AFTER_NS: u64 = super::client::SETTLE_NS - 10_000_000;

impl Session {
    fn new(runs: &[Run], config: &Config) -> Self {
        let mut at = config.warmup_ns;
        let slots = runs
            .iter()
            .map(|&run| {
                let window_ns = config.window(run.target.kind);
                let slot = Slot {
                    run,
                    at_ns: at,
                    window_ns,
                };
                at += window_ns;
                slot
            })
            .collect();
        Self { slots, end_ns: at }
    }

    /// The session's plan (its epoch is stamped by the runtime it is given to).
    pub fn plan(&self, config: &Config) -> String {
        let mut p = format!(
            "seed={};end={}ns;*@{}ns:report",
            config.seed,
            self.end_ns,
            config.warmup_ns.saturating_sub(BASELINE_BEFORE_NS)
        );
        for s in &self.slots {
            // The fault may fire only inside its window: a late one would be blamed on the next.
            p.push_str(&format!(
                ";{}@{}ns+{}ns#{}:{}",
                s.run.target.inject_in, s.at_ns, s.window_ns, s.run.nth, s.run.action
            ));
        }
        p.push_str(&format!(";*@{}ns:report", self.end_ns + FINAL_AFTER_NS));
        p
    }
}

/// Pack `runs` (in order) into sessions for `comp`.
pub fn pack(runs: &[Run], comp: Composition, config: &Config) -> Vec<Session> {
    let mut sessions = Vec::new();
    let mut current: Vec<Run> = Vec::new();
    let per_session = config.per_session.max(1);
    for &run in runs {
        let kills = |pd: &str, cur: &[Run]| {
            cur.iter()
                .filter(|r| r.target.kind.kills_the_pd() && r.target.pd == pd)
                .count()
        };
        let reboots = current.iter().filter(|r| r.target.reboots_gsp()).count();
        let over_budget = (run.target.kind.kills_the_pd()
            && kills(run.target.pd, &current) >= KILLS_PER_PD)
            || (run.target.reboots_gsp() && reboots >= GSP_REBOOTS);
        if current.len() >= per_session || over_budget {
            sessions.push(Session::new(&current, config));
            current.clear();
        }
        current.push(run);
        if comp == Composition::Monolithic && run.target.kind.kills_the_pd() {
            sessions.push(Session::new(&current, config));
            current.clear();
        }
    }
    if !current.is_empty() {
        sessions.push(Session::new(&current, config));
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_seeded_and_cover_the_catalogue() {
        let a = draw(7, 500, &[], &[]);
        assert_eq!(a, draw(7, 500, &[], &[]));
        assert_ne!(a, draw(8, 500, &[], &[]));
        for t in catalogue::targets() {
            assert!(a.iter().any(|r| r.target == t), "{t:?} never drawn");
        }
        assert!(a.iter().all(|r| (1..=4).contains(&r.nth)));
        let busy = draw(7, 100, &[], &["drm".to_owned()]);
        assert!(busy.iter().all(|r| r.target.inject_in == "drm"));
        let only = draw(7, 50, &[Kind::Panic], &[]);
        assert!(only.iter().all(|r| r.target.kind == Kind::Panic));
        assert!(draw(7, 50, &[], &[])
            .iter()
            .enumerate()
            .all(|(i, r)| r.id == i));
    }

    #[test]
    fn monolithic_sessions_end_at_their_first_kill_and_isolated_ones_respect_the_budget() {
        let config = Config::default();
        let runs = draw(3, 300, &[], &[]);
        for comp in [Composition::Isolated, Composition::Monolithic] {
            let sessions = pack(&runs, comp, &config);
            let flat: Vec<usize> = sessions
                .iter()
                .flat_map(|s| s.slots.iter().map(|x| x.run.id))
                .collect();
            assert_eq!(
                flat,
                (0..300).collect::<Vec<_>>(),
                "every run once, in order"
            );
            for s in &sessions {
                assert!(s.slots.len() <= config.per_session);
                for pd in catalogue::DRIVERS {
                    let kills = s
                        .slots
                        .iter()
                        .filter(|x| x.run.target.pd == pd && x.run.target.kind.kills_the_pd())
                        .count();
                    assert!(kills <= KILLS_PER_PD);
                    let reboots = s
                        .slots
                        .iter()
                        .filter(|x| x.run.target.reboots_gsp())
                        .count();
                    assert!(reboots <= GSP_REBOOTS);
                }
                if comp == Composition::Monolithic {
                    let first_kill = s
                        .slots
                        .iter()
                        .position(|x| x.run.target.kind.kills_the_pd());
                    assert!(first_kill.is_none_or(|i| i == s.slots.len() - 1));
                }
            }
        }
    }

    #[test]
    fn plans_put_one_fault_per_window_and_reports_around_them() {
        let config = Config::default();
        let runs = draw(1, 3, &[Kind::Hang, Kind::Panic], &[]);
        let s = &pack(&runs, Composition::Isolated, &config)[0];
        let plan = s.plan(&config);
        let p = pd_core::faults::Plan::new(&plan);
        assert_eq!(p.check(), Ok(()));
        assert_eq!(p.end(), Some(s.end_ns));
        let times: Vec<u64> = p
            .items()
            .filter_map(|i| match i.unwrap() {
                pd_core::faults::Item::Entry { trigger, .. } => Some(trigger.at_ns),
                _ => None,
            })
            .collect();
        assert_eq!(times.len(), 5);
        assert_eq!(times[1], config.warmup_ns);
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            s.end_ns,
            s.slots.iter().map(|x| x.window_ns).sum::<u64>() + config.warmup_ns
        );
    }
}
