//! `faults [OPTIONS]`: the isolation campaign (`cargo xtask faults` runs it): seeded faults in
//! both compositions, a report in `--out`, and one summary line on stdout, last:
//!
//! `faults runs N isolated-survival P% monolithic-survival Q% leaked-pages L corrupted-buffers C`
//!
//! Exit status 0 when the isolated composition kept its promise (every run survived, nothing
//! leaked, no buffer changed), 1 when not, 2 on bad arguments or binaries that do not start.
//!
//! With `--sel4-runner` (`cargo xtask faults --board B` passes it) the isolated composition runs
//! on the seL4 image in QEMU and there is no monolithic one (`monolithic-survival n/a`). Hangs
//! are not injected there: seL4 has no PPC timeout and the image no watchdog, so a hung PD
//! would hold its callers for ever with nobody to notice; asking for `hang` is an error.

use mono::campaign::catalogue::Kind;
use mono::campaign::schedule::Config;
use mono::campaign::session::{Composition, Sel4Runner};
use mono::campaign::{report, Binaries};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: faults [OPTIONS]

  --runs N          runs per composition (default 1000)
  --seed S          seed of everything random (default 1)
  --jobs J          sessions at a time (default 2)
  --kinds K,K,...   only these fault kinds: panic wild-read wild-write hang corrupt-reply oom
                    gsp-crash gsp-garbage (default all)
  --warmup DUR      system start to first fault (default 300ms)
  --window DUR      one run's window (default 300ms; a hang's adds the watchdog)
  --watchdog DUR    PPC watchdog / hang detector (default 1s; above the longest legitimate
                    wait, a GSP reboot behind a restarted gsp)
  --per-session N   most runs per boot (default 16)
  --out DIR         report folder (default reports/isolation)
  --system FILE     system description (default system.xml)
  --bin-dir DIR     where the isolated and mono-campaign binaries are (default: beside this one)
  --logs DIR        keep every session's log there (<composition>-<first run>.log)
  --sel4-runner P   run the isolated composition on the seL4 image through P (`xtask
                    sel4-session`, with its --runner-arg A arguments), and no monolithic one;
                    default --out reports/isolation-sel4, --per-session 8, --window 1s
                    (guest time), no hang
  --runner-arg A    an argument for the runner (repeatable)
";

/// A run's window on seL4 (guest time): a restarted gsp boots the GPU again in ~500 ms there.
const SEL4_WINDOW_NS: u64 = 1_000_000_000;

/// Why the seL4 campaign injects no hangs (also in its report).
const SEL4_NO_HANG: &str = "hang is not injected on seL4: a PPC there has no timeout and the \
image has no watchdog, so a hung PD holds its callers for ever and nothing can notice it";

struct Args {
    config: Config,
    out: PathBuf,
    bins: Binaries,
    argv: Vec<String>,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let here = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut bin_dir = here.parent().map(PathBuf::from).unwrap_or_default();
    let mut config = Config::default();
    let (mut out, mut system) = (None, PathBuf::from("system.xml"));
    let (mut runner, mut runner_args, mut per_session, mut window) = (None, Vec::new(), None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-h" || a == "--help" {
            return Ok(None);
        }
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        let bad = || format!("bad value for {a}: {v}");
        let dur = || hosted::runtime::options::parse_duration(v).ok_or_else(bad);
        let num = || v.parse::<usize>().map_err(|_| bad());
        match a.as_str() {
            "--runs" => config.runs = num()?,
            "--seed" => config.seed = v.parse().map_err(|_| bad())?,
            "--jobs" => config.jobs = num()?.max(1),
            "--per-session" => per_session = Some(num()?.max(1)),
            "--warmup" => config.warmup_ns = dur()?,
            "--window" => window = Some(dur()?),
            "--watchdog" => config.watchdog_ns = dur()?,
            "--kinds" => {
                config.kinds = v
                    .split(',')
                    .map(|k| Kind::from_name(k).ok_or_else(|| format!("unknown fault kind {k}")))
                    .collect::<Result<_, _>>()?;
            }
            "--out" => out = Some(PathBuf::from(v)),
            "--sel4-runner" => runner = Some(PathBuf::from(v)),
            "--runner-arg" => runner_args.push(v.clone()),
            "--system" => system = PathBuf::from(v),
            "--bin-dir" => bin_dir = PathBuf::from(v),
            "--logs" => config.logs = Some(PathBuf::from(v)),
            _ => return Err(format!("unknown option {a}")),
        }
    }
    let sel4 = runner.map(|program| {
        let mut args = vec!["sel4-session".to_owned()];
        args.extend(runner_args);
        Sel4Runner { program, args }
    });
    if sel4.is_some() {
        if config.kinds.contains(&Kind::Hang) {
            return Err(SEL4_NO_HANG.to_owned());
        }
        if config.kinds.is_empty() {
            config.kinds = Kind::ALL.into_iter().filter(|k| *k != Kind::Hang).collect();
        }
    }
    // A seL4 session's plan must fit the image's plan buffer (4 KiB): 8 runs do with room.
    config.per_session = per_session.unwrap_or(if sel4.is_some() {
        8
    } else {
        config.per_session
    });
    // In guest time on seL4, where a GSP boot behind a restarted gsp takes ~500 ms.
    config.window_ns = window.unwrap_or(if sel4.is_some() {
        SEL4_WINDOW_NS
    } else {
        config.window_ns
    });
    let out = out.unwrap_or_else(|| {
        PathBuf::from(if sel4.is_some() {
            "reports/isolation-sel4"
        } else {
            "reports/isolation"
        })
    });
    let bins = Binaries {
        isolated: bin_dir.join("isolated"),
        mono: bin_dir.join("mono-campaign"),
        system,
        sel4,
    };
    Ok(Some(Args {
        config,
        out,
        bins,
        argv: args.to_vec(),
    }))
}

/// `git describe`-like: the commit and whether the tree had changes.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match hosted::runtime::options::or_exit("faults", parse(&argv), USAGE) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let c = &args.config;
    eprintln!(
        "faults: {} runs per composition, seed {}, {} sessions at a time",
        c.runs, c.seed, c.jobs
    );
    let campaign = match mono::campaign::run_campaign(&args.bins, &args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "faults: {e} (binaries {} and {})",
                args.bins.isolated.display(),
                args.bins.mono.display()
            );
            return ExitCode::from(2);
        }
    };
    let mut command = String::from("cargo xtask faults");
    // As the user typed it: xtask turned `--board B` into the runner's options.
    let mut argv = args.argv.iter();
    while let Some(a) = argv.next() {
        let word = match a.as_str() {
            "--sel4-runner" => {
                argv.next();
                continue;
            }
            "--runner-arg" => match argv.next() {
                Some(v) => v,
                None => continue,
            },
            _ => a,
        };
        command.push(' ');
        command.push_str(word);
    }
    let mut meta = vec![
        ("command".to_owned(), format!("`{command}`")),
        ("commit".to_owned(), commit()),
        ("system".to_owned(), args.bins.system.display().to_string()),
    ];
    if let Some(r) = &args.bins.sel4 {
        meta.push((
            "platform".to_owned(),
            format!(
                "seL4 image in QEMU (`{}`, `-icount shift=0`: times are guest time), isolated \
                 composition only (no monolithic seL4 image); {SEL4_NO_HANG}",
                r.args.join(" ")
            ),
        ));
    }
    if let Err(e) = report::write(&campaign, &args.out, &meta) {
        eprintln!(
            "faults: cannot write the report to {}: {e}",
            args.out.display()
        );
        return ExitCode::from(2);
    }
    eprintln!(
        "faults: report in {} (REPORT.md, survival.svg, runs.csv)",
        args.out.display()
    );
    if !campaign.unjudged.is_empty() {
        eprintln!(
            "faults: {} runs could not be judged (see the report)",
            campaign.unjudged.len()
        );
    }
    println!("{}", report::summary_line(&campaign));
    let iso = report::tally(&campaign, Composition::Isolated, |_| true);
    let kept = iso.survived == iso.runs
        && report::leaked_pages(&campaign, Composition::Isolated) == 0
        && report::corrupted_buffers(&campaign, Composition::Isolated) == 0;
    if kept {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
