//! `cargo xtask faults [--runs N] [--seed S] [OPTIONS]`: the isolation campaign.
//!
//! Builds the campaign's binaries (crate `mono` with feature `fault-injection`, release: the
//! isolated composition `isolated`, the monolithic `mono`, the driver `faults`) and runs `faults`
//! from the workspace root with the options given (`cargo xtask faults --help` lists them). It
//! injects seeded faults into the demo system in both compositions, writes
//! `reports/isolation/{REPORT.md,survival.svg,runs.csv}` and ends with one line:
//!
//! `faults runs N isolated-survival P% monolithic-survival Q% leaked-pages L corrupted-buffers C`
//!
//! Exit status 0 when the isolated composition kept its promise (every run survived, nothing
//! leaked, no client buffer changed).

use std::process::ExitCode;

/// The build every campaign uses.
const BUILD: &[&str] = &[
    "build",
    "--release",
    "-p",
    "mono",
    "--features",
    "fault-injection",
    "--bins",
];

/// Build, then run the campaign with `args`.
pub fn run(args: &[&str]) -> ExitCode {
    let built = super::cargo(BUILD, &[]);
    if built != ExitCode::SUCCESS {
        return built;
    }
    let started = std::time::Instant::now();
    let code = super::cargo(
        &[
            "run",
            "--quiet",
            "--release",
            "-p",
            "mono",
            "--features",
            "fault-injection",
            "--bin",
            "faults",
            "--",
        ],
        args,
    );
    // Stderr: stdout ends with the summary line.
    eprintln!(
        "xtask: faults took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    code
}

/// The campaign's own tests (its feature is off in the workspace build): its unit tests,
/// pd-core's injection points, and a small campaign against both compositions
/// (`pds/mono/tests/campaign.rs`: every crash and hang of a driver contained in isolation, and
/// each of them the end of the monolith). About 30 s.
pub fn test() -> ExitCode {
    super::cargo(
        &[
            "test",
            "-p",
            "mono",
            "-p",
            "pd-core",
            "--features",
            "mono/fault-injection",
        ],
        &[],
    )
}
