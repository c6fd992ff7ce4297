//! The fault campaign (feature `fault-injection`): many injected faults, the demo clients'
//! workload, both compositions, one report.
//!
//! - In the system: [`client`] is the campaign's client program; [`programs`] is the product's
//!   program table with it as `client.elf` (every server unchanged), used by `mono-campaign --campaign`
//!   and the `isolated` binary (the hosted runtime). The faults themselves come from
//!   `pd_core::faults` plans, which both platforms apply in front of every PD.
//! - Around the system: [`catalogue`] (what can be injected where), [`schedule`] (seeded runs
//!   packed into sessions: one boot absorbs several faults, each judged in its own window),
//!   [`session`] (start a composition with a plan and read its log), [`judge`] (each run's
//!   verdict: survived, recovered, how fast, what leaked or changed) and [`report`] (Markdown, SVG
//!   and the summary line). [`run_campaign`] ties them together for the `faults` binary (`cargo
//!   xtask faults`) and the tests.
//!
//! Trust: the campaign trusts its binaries and parses only their log lines; a line it does not
//! understand is ignored, a run it cannot judge is re-run or reported as unjudged, never guessed.

pub mod catalogue;
pub mod client;
pub mod judge;
pub mod report;
pub mod schedule;
pub mod session;

pub use client::{exchange, init, Client, Exchange};

use pd_core::faults::PLAN_ENV;
use pd_programs::{Program, Role};

/// The campaign's program table for `system.xml`: the product's programs with the campaign client
/// as `client.elf`.
pub fn programs() -> Vec<Program> {
    pd_programs::PROGRAMS
        .iter()
        .map(|p| match p.image {
            "client.elf" => pd_programs::program!("client.elf" => init, Role::Workload),
            _ => *p,
        })
        .collect()
}

/// Give the plan in [`PLAN_ENV`] this process's start as its epoch (unless it has one), so the
/// campaign can write times relative to the system's start. Call it first thing in a runtime's
/// `main`, before any PD exists: they inherit the stamped plan.
pub fn stamp_epoch() {
    let Ok(plan) = std::env::var(PLAN_ENV) else {
        return;
    };
    let has_epoch = plan.split(';').any(|i| i.trim().starts_with("epoch="));
    if !has_epoch {
        let now = hosted::sys::clock::now_ns();
        // Edition 2021: set_var is safe; this runs before any thread or PD process exists.
        std::env::set_var(PLAN_ENV, format!("epoch={now};{plan}"));
    }
}

/// Which clients PD `pd` serves: those that reach it through calls (the `pp` routes of
/// `system.xml`), directly or down the stack.
pub fn served_by(pd: &str) -> Vec<&'static str> {
    use pd_programs::sys::system::{PDS, ROUTES};
    let Some(target) = PDS.iter().position(|d| d.name == pd) else {
        return Vec::new();
    };
    let reaches = |from: usize| {
        let mut seen = vec![false; PDS.len()];
        let mut stack = vec![from];
        while let Some(at) = stack.pop() {
            for r in ROUTES.iter().filter(|r| r.pp && r.from == at) {
                if let Some(s) = seen.get_mut(r.to).filter(|s| !**s) {
                    *s = true;
                    stack.push(r.to);
                }
            }
        }
        seen.get(target).copied().unwrap_or(false)
    };
    let client = |i: usize| {
        PDS.get(i)
            .and_then(|d| pd_programs::find(&programs(), d.program_image).map(|p| p.role))
            == Some(Role::Workload)
    };
    (0..PDS.len())
        .filter(|&i| client(i) && (i == target || reaches(i)))
        .filter_map(|i| PDS.get(i).map(|d| d.name))
        .collect()
}

/// Where the campaign's binaries and system description are.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The isolated composition: the hosted runtime with the campaign's table (`isolated`).
    pub isolated: std::path::PathBuf,
    /// The monolithic composition with fault injection (`mono-campaign`).
    pub mono: std::path::PathBuf,
    /// `system.xml`.
    pub system: std::path::PathBuf,
    /// Run the isolated composition on the seL4 image in QEMU through this runner instead of the
    /// hosted runtime; there is no monolithic seL4 image, so the campaign runs only the isolated
    /// composition then.
    pub sel4: Option<session::Sel4Runner>,
}

impl Binaries {
    /// The compositions a campaign with these binaries runs.
    pub fn compositions(&self) -> &'static [session::Composition] {
        if self.sel4.is_some() {
            &[session::Composition::Isolated]
        } else {
            &[
                session::Composition::Isolated,
                session::Composition::Monolithic,
            ]
        }
    }
}

/// Run a whole campaign: draw `config.runs` faults from `config.seed`, run them in both
/// compositions (`config.jobs` sessions at a time), judge every run.
///
/// Each composition first runs one fault-free session ([`judge::calibrate`]): how long it takes
/// to serve its clients (the warm-up before the first fault is at least that and a half, plus
/// 100 ms), and which PDs the workload exercises (the isolated composition's say where faults
/// are drawn: a fault in a PD that handles no event cannot fire).
///
/// # Errors
/// When a composition's binary cannot be started, or its clients are not served within the
/// calibration's time (there is nothing to measure then).
pub fn run_campaign(
    bins: &Binaries,
    config: &schedule::Config,
) -> std::io::Result<judge::Campaign> {
    let mut campaign = judge::Campaign {
        config: config.clone(),
        ..judge::Campaign::default()
    };
    let mut runs = None;
    for &comp in bins.compositions() {
        let Some(cal) = judge::calibrate(bins, comp, config)? else {
            return Err(std::io::Error::other(format!(
                "the {} composition did not serve both clients within {} ms: nothing to measure \
                 (does `cargo xtask run` pass?)",
                comp.name(),
                judge::ACTIVE_FROM_NS / 1_000_000
            )));
        };
        // CAST: a boot time in ns fits u64 for 584 years.
        let needed = cal.boot.as_nanos() as u64 * 3 / 2 + 100_000_000;
        let tuned = schedule::Config {
            warmup_ns: config.warmup_ns.max(needed),
            ..config.clone()
        };
        campaign.boot.insert(
            comp,
            (cal.boot, std::time::Duration::from_nanos(tuned.warmup_ns)),
        );
        eprintln!(
            "faults: {} serves its clients {} ms after start; first fault at {} ms; PDs at work: {}",
            comp.name(),
            cal.boot.as_millis(),
            tuned.warmup_ns / 1_000_000,
            cal.active.join(" ")
        );
        let runs = runs.get_or_insert_with(|| {
            let mut idle: Vec<String> = catalogue::targets()
                .iter()
                .map(|t| t.inject_in.to_owned())
                .filter(|pd| !cal.active.contains(pd))
                .collect();
            idle.sort();
            idle.dedup();
            campaign.idle = idle;
            schedule::draw(config.seed, config.runs, &config.kinds, &cal.active)
        });
        judge::run_all(bins, comp, runs, &tuned, &mut campaign)?;
    }
    Ok(campaign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_campaign_table_swaps_only_the_client() {
        let t = programs();
        assert_eq!(t.len(), pd_programs::PROGRAMS.len());
        for (a, b) in t.iter().zip(pd_programs::PROGRAMS) {
            assert_eq!((a.image, a.role), (b.image, b.role));
            let same = std::ptr::fn_addr_eq(a.start, b.start);
            assert_eq!(same, a.image != "client.elf", "{}", a.image);
        }
    }

    #[test]
    fn every_driver_serves_both_demo_clients_and_a_client_serves_itself() {
        for pd in ["drm", "gpu", "gsp", "alloc", "pci", "gsp_model"] {
            assert_eq!(served_by(pd), ["client0", "client1"], "{pd}");
        }
        assert_eq!(served_by("client1"), ["client1"]);
        assert!(served_by("supervisor").is_empty());
        assert!(served_by("nobody").is_empty());
    }
}
