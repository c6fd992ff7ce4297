//! The runtime's command line: `hosted [OPTIONS] SYSTEM.XML`.

use crate::wait::{Spin, Spins};
use std::fmt;
use std::path::PathBuf;

/// Usage text (also `hosted --help`).
pub const USAGE: &str = "\
usage: hosted [OPTIONS] SYSTEM.XML

Runs every protection domain of SYSTEM.XML as its own process, with only the regions and channels
the file declares. Exits 0 when every workload PD (the demo clients) reported success.

options:
  --kill PD@TIME[:SIG]  send signal SIG (default KILL; also SEGV, ABRT, TERM or a number) to PD
                        TIME after start (e.g. gpu@300ms, drm@1.5s:SEGV); repeatable
  --timeout DUR         give up after DUR if workloads have not finished (default 30s)
  --run-for DUR         stop cleanly after DUR (systems without workload PDs)
  --watchdog DUR        a PPC unanswered for DUR kills the callee (default 3s)
  --prefill REGION=FILE fill memory region REGION with FILE's bytes at start, as system.xml's
                        prefill_path would (e.g. gsp_fw=target/gsp_fw.pack); repeatable
  --spin-us N           an idle PD spins N µs before it sleeps (default 20)
  --call-spin-us N      a caller spins N µs for its reply before it sleeps (default 500)
  --external-dir DIR    where external client slots listen (DIR/<pd>.sock; default
                        $TMPDIR/hosted-<pid>)
  --keep-running        keep running after the workloads passed (for external clients); stop
                        with SIGINT or SIGTERM (exit status 130)

exit status: 0 all workloads passed; 1 a workload failed, a PD was stopped for good, a PD without
parent died, or the timeout hit; 2 bad arguments or system description; 130 interrupted.
";

/// A scheduled signal (`--kill`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    /// The PD's name.
    pub pd: String,
    /// When, in ns after start.
    pub at_ns: u64,
    /// The signal.
    pub signal: i32,
}

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The system description.
    pub system: PathBuf,
    /// Scheduled signals.
    pub kills: Vec<Kill>,
    /// Give up after this long (ns).
    pub timeout_ns: u64,
    /// Stop cleanly after this long (ns).
    pub run_for_ns: Option<u64>,
    /// PPC deadline (ns).
    pub watchdog_ns: u64,
    /// Spin budgets.
    pub spins: Spins,
    /// Directory of external client slots' sockets.
    pub external_dir: Option<PathBuf>,
    /// Keep running after the workloads passed.
    pub keep_running: bool,
    /// Regions to fill from files (`--prefill`), over any `prefill_path` system.xml gives.
    pub prefills: Vec<(String, PathBuf)>,
}

/// A bad command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A spin budget given in whole microseconds.
fn parse_spin_us(v: &str) -> Option<Spin> {
    let us: u64 = v.parse().ok()?;
    Some(Spin {
        ns: us.saturating_mul(1000),
    })
}

/// `300ms`, `2s`, `1.5s`, `40us`: a duration in ns.
pub fn parse_duration(s: &str) -> Option<u64> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e9)
    } else {
        return None;
    };
    let v: f64 = num.parse().ok()?;
    // CAST: a finite, non-negative duration below 2^64 ns (checked) converts exactly enough.
    (v.is_finite() && v >= 0.0 && v * scale < 1.8e19).then_some((v * scale) as u64)
}

fn parse_signal(s: &str) -> Option<i32> {
    let name = s.strip_prefix("SIG").unwrap_or(s);
    match name {
        "KILL" => Some(libc::SIGKILL),
        "SEGV" => Some(libc::SIGSEGV),
        "ABRT" => Some(libc::SIGABRT),
        "TERM" => Some(libc::SIGTERM),
        "BUS" => Some(libc::SIGBUS),
        _ => name.parse().ok().filter(|n| (1..=64).contains(n)),
    }
}

/// `PD@TIME[:SIG]`.
pub fn parse_kill(s: &str) -> Option<Kill> {
    let (pd, rest) = s.split_once('@')?;
    let (time, sig) = rest.split_once(':').unwrap_or((rest, "KILL"));
    Some(Kill {
        pd: pd.to_owned(),
        at_ns: parse_duration(time)?,
        signal: parse_signal(sig)?,
    })
}

impl Options {
    /// Parse the arguments after the program name. `Ok(None)` means `--help`.
    ///
    /// # Errors
    /// A [`UsageError`] naming the bad argument.
    pub fn parse(args: &[String]) -> Result<Option<Self>, UsageError> {
        let mut o = Self {
            system: PathBuf::new(),
            kills: Vec::new(),
            timeout_ns: 30_000_000_000,
            run_for_ns: None,
            watchdog_ns: 3_000_000_000,
            spins: Spins::default(),
            external_dir: None,
            keep_running: false,
            prefills: Vec::new(),
        };
        let mut system = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a == "-h" || a == "--help" {
                return Ok(None);
            }
            if a == "--keep-running" {
                o.keep_running = true;
                continue;
            }
            if !a.starts_with("--") {
                if system.replace(PathBuf::from(a)).is_some() {
                    return Err(UsageError(format!("more than one system description: {a}")));
                }
                continue;
            }
            let v = it
                .next()
                .ok_or_else(|| UsageError(format!("{a} needs a value")))?;
            let bad = || UsageError(format!("bad value for {a}: {v}"));
            match a.as_str() {
                "--kill" => o.kills.push(parse_kill(v).ok_or_else(bad)?),
                "--timeout" => o.timeout_ns = parse_duration(v).ok_or_else(bad)?,
                "--run-for" => o.run_for_ns = Some(parse_duration(v).ok_or_else(bad)?),
                "--watchdog" => o.watchdog_ns = parse_duration(v).ok_or_else(bad)?,
                "--external-dir" => o.external_dir = Some(PathBuf::from(v)),
                "--prefill" => {
                    let (region, file) = v.split_once('=').ok_or_else(bad)?;
                    o.prefills.push((region.to_owned(), PathBuf::from(file)));
                }
                "--spin-us" => o.spins.idle = parse_spin_us(v).ok_or_else(bad)?,
                "--call-spin-us" => o.spins.call = parse_spin_us(v).ok_or_else(bad)?,
                _ => return Err(UsageError(format!("unknown option {a}"))),
            }
        }
        o.system = system.ok_or_else(|| UsageError("no system description given".into()))?;
        Ok(Some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kills_durations_and_signals_parse() {
        assert_eq!(parse_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("40us"), Some(40_000));
        assert_eq!(parse_duration("3"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(
            parse_kill("gpu@300ms"),
            Some(Kill {
                pd: "gpu".into(),
                at_ns: 300_000_000,
                signal: libc::SIGKILL
            })
        );
        assert_eq!(
            parse_kill("drm@1s:SIGSEGV").map(|k| k.signal),
            Some(libc::SIGSEGV)
        );
        assert_eq!(parse_kill("drm@1s:10").map(|k| k.signal), Some(10));
        assert_eq!(parse_kill("drm@1s:NOPE"), None);
        assert_eq!(parse_kill("drm"), None);
    }

    #[test]
    fn the_two_spin_budgets_are_set_apart_and_default_to_20_and_500_us() {
        let o = Options::parse(&args(&["s.xml"])).unwrap().unwrap();
        assert_eq!((o.spins.idle.ns, o.spins.call.ns), (20_000, 500_000));
        let o = Options::parse(&args(&["s.xml", "--call-spin-us", "7", "--spin-us", "3"]))
            .unwrap()
            .unwrap();
        assert_eq!((o.spins.idle.ns, o.spins.call.ns), (3_000, 7_000));
        assert!(Options::parse(&args(&["s.xml", "--call-spin-us", "-1"])).is_err());
    }

    #[test]
    fn options_parse_in_any_order_and_refuse_junk() {
        let o = Options::parse(&args(&["--kill", "gpu@1s", "s.xml", "--watchdog", "2s"]))
            .unwrap()
            .unwrap();
        assert_eq!(o.system, PathBuf::from("s.xml"));
        assert_eq!((o.kills.len(), o.watchdog_ns), (1, 2_000_000_000));
        assert_eq!(Options::parse(&args(&["--help"])), Ok(None));
        assert!(Options::parse(&args(&[])).is_err());
        assert!(Options::parse(&args(&["a.xml", "b.xml"])).is_err());
        assert!(Options::parse(&args(&["a.xml", "--kill"])).is_err());
        assert!(Options::parse(&args(&["a.xml", "--frob", "1"])).is_err());
        assert!(Options::parse(&args(&["a.xml", "--timeout", "soon"])).is_err());
        let o = Options::parse(&args(&["a.xml", "--prefill", "fw=x/y.bin"]))
            .unwrap()
            .unwrap();
        assert_eq!(o.prefills, [("fw".to_owned(), PathBuf::from("x/y.bin"))]);
        assert!(Options::parse(&args(&["a.xml", "--prefill", "fw"])).is_err());
    }
}

/// A command's parsed arguments (`parse` gives `Ok(None)` for `--help`), or how its `main` exits:
/// help prints `usage` and succeeds; a bad argument is named on stderr (`NAME: error: ...`, as
/// the logger writes errors) with `usage` after it, and exits 2. The hosted runtime, the
/// monolithic composition and the fault campaign share it.
pub fn or_exit<T, E: fmt::Display>(
    name: &str,
    parsed: Result<Option<T>, E>,
    usage: &str,
) -> Result<T, std::process::ExitCode> {
    match parsed {
        Ok(Some(args)) => Ok(args),
        Ok(None) => {
            print!("{usage}");
            Err(std::process::ExitCode::SUCCESS)
        }
        Err(e) => {
            eprint!("{name}: error: {e}\n{usage}");
            Err(std::process::ExitCode::from(2))
        }
    }
}
