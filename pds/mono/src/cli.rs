//! The command line of the monolithic composition, shared by its binaries: `mono` (the product's
//! program table) and, built with `fault-injection`, `mono-campaign` (the same program under a
//! name that a build without the feature never overwrites: the campaign's monolithic
//! composition).
//!
//! `mono [OPTIONS] SYSTEM.XML` runs every PD of the system in this one process (see the crate
//! doc) and exits with the workloads' verdict, like the hosted runtime's `hosted SYSTEM.XML`.

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "\
usage: mono [OPTIONS] SYSTEM.XML

Runs every protection domain of SYSTEM.XML in this one process (the monolithic composition: PPCs
are function calls, nothing is isolated). Exits 0 when every workload PD reported success.

options:
  --timeout DUR    give up after DUR if workloads have not finished (default 30s)
  --watchdog DUR   end the process when no event finishes for DUR (default 3s)
  --campaign       run the fault campaign's clients (needs feature fault-injection); the plan
                   comes from PD_FAULTS (pd_core::faults)

exit status: 0 all workloads passed; 1 a workload failed, the timeout or the watchdog hit; 2 bad
arguments or system description; a signal when a PD crashed (and with it, everything).
";

struct Args {
    system: String,
    campaign: bool,
    config: crate::Config,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut out = Args {
        system: String::new(),
        campaign: false,
        config: crate::Config {
            timeout_ns: 30_000_000_000,
            watchdog_ns: 3_000_000_000,
            plan: None,
        },
    };
    let mut system = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut duration = || {
            let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
            hosted::runtime::options::parse_duration(v)
                .ok_or_else(|| format!("bad value for {a}: {v}"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--timeout" => out.config.timeout_ns = duration()?,
            "--watchdog" => out.config.watchdog_ns = duration()?,
            "--campaign" => out.campaign = true,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => {
                if system.replace(s.to_owned()).is_some() {
                    return Err(format!("more than one system description: {s}"));
                }
            }
        }
    }
    out.system = system.ok_or("no system description given")?;
    Ok(Some(out))
}

/// The binaries' `main`.
pub fn main() -> ExitCode {
    // The plan's times count from here: the system's start.
    #[cfg(feature = "fault-injection")]
    crate::campaign::stamp_epoch();
    hosted::logger::init("mono");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut args = match hosted::runtime::options::or_exit("mono", parse(&args), USAGE) {
        Ok(a) => a,
        Err(code) => return code,
    };
    // A panic anywhere is the end of everything: abort, as an isolated PD would.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(ToString::to_string).unwrap_or_default();
        log::error!("mono: panicked at {at}: {msg}");
        std::process::abort();
    }));
    let path = Path::new(&args.system);
    let system = match sysxml::load(path) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let compiled: Vec<&str> = pd_programs::sys::system::PDS
        .iter()
        .map(|d| d.name)
        .collect();
    let loaded: Vec<&str> = system.pds.iter().map(|p| p.name.as_str()).collect();
    if compiled != loaded {
        log::error!(
            "{} declares PDs {loaded:?} but this binary was built for {compiled:?}: rebuild",
            path.display()
        );
        return ExitCode::from(2);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    match crate::layout::map(&system, dir) {
        Ok(p) => log::info!(
            "mono: {}: {} PDs in one process, {} regions mapped once each",
            path.display(),
            system.pds.len(),
            p.len()
        ),
        Err(e) => {
            log::error!("mono: {e}");
            return ExitCode::from(2);
        }
    }
    let programs = match table(&mut args) {
        Ok(t) => t,
        Err(e) => {
            log::error!("mono: {e}");
            return ExitCode::from(2);
        }
    };
    match crate::platform::run(&programs, &args.config) {
        crate::Outcome::Success => {
            log::info!("mono: exit 0");
            ExitCode::SUCCESS
        }
        crate::Outcome::Failure(why) => {
            log::error!("mono: FAILED: {why}");
            ExitCode::FAILURE
        }
    }
}

/// The program table: the product's, or the campaign's (with the plan from the environment).
fn table(args: &mut Args) -> Result<Vec<pd_programs::Program>, String> {
    #[cfg(feature = "fault-injection")]
    {
        args.config.plan = std::env::var(pd_core::faults::PLAN_ENV).ok();
        if let Some(plan) = &args.config.plan {
            pd_core::faults::Plan::new(plan)
                .check()
                .map_err(|e| e.to_string())?;
        }
        if args.campaign {
            return Ok(crate::campaign::programs());
        }
    }
    if args.campaign {
        return Err("--campaign needs a build with feature fault-injection".into());
    }
    Ok(pd_programs::PROGRAMS.to_vec())
}
