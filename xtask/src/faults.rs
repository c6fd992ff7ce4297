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
//!
//! `--board B [--config C]`: the same campaign against the seL4 image in QEMU (isolated only: there
//! is no monolithic seL4 image). xtask builds the campaign's images first
//! (`image::prepare_campaign`) and hands `faults` itself as the session runner
//! (`xtask sel4-session`); the report goes to `reports/isolation-sel4` unless `--out` says.
//! Without the Microkit SDK, a toolchain with rust-src or QEMU it prints
//! `*** SKIPPED: seL4 campaign (B): <reason> ***` and succeeds, like `test-image`.

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

/// `--board B` and `--config C` out of `args` (for the seL4 image), and the rest.
fn split_image_args<'a>(args: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
    let (mut image, mut rest) = (Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        if a == "--board" || a == "--config" {
            image.push(a);
            image.extend(it.next());
        } else {
            rest.push(a);
        }
    }
    (image, rest)
}

/// Build, then run the campaign with `args`.
pub fn run(args: &[&str]) -> ExitCode {
    let (image_args, args) = split_image_args(args);
    let mut extra: Vec<String> = Vec::new();
    if !image_args.is_empty() {
        let board = image_args
            .iter()
            .skip_while(|a| **a != "--board")
            .nth(1)
            .copied()
            .unwrap_or("qemu_virt_aarch64");
        match super::image::prepare_campaign(&image_args) {
            Ok(super::image::Prepared::Ready(runner_args)) => {
                let exe = match std::env::current_exe() {
                    Ok(e) => e,
                    Err(e) => {
                        eprintln!("xtask faults: cannot find xtask itself: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                extra.push("--sel4-runner".into());
                extra.push(exe.display().to_string());
                for a in runner_args {
                    extra.push("--runner-arg".into());
                    extra.push(a);
                }
            }
            Ok(super::image::Prepared::Skipped(reason)) => {
                println!("\n*** SKIPPED: seL4 campaign ({board}): {reason} ***\n");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("xtask faults: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut args: Vec<&str> = args;
    args.extend(extra.iter().map(String::as_str));
    let args = args.as_slice();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_and_config_go_to_the_image_and_the_rest_to_faults() {
        let (image, rest) = split_image_args(&[
            "--runs",
            "20",
            "--board",
            "qemu_virt_aarch64",
            "--seed",
            "3",
            "--config",
            "debug",
        ]);
        assert_eq!(image, ["--board", "qemu_virt_aarch64", "--config", "debug"]);
        assert_eq!(rest, ["--runs", "20", "--seed", "3"]);
        assert_eq!(split_image_args(&["--runs", "5"]).0, Vec::<&str>::new());
    }
}
