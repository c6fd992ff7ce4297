//! Booting the image in QEMU and reading its serial console against an expect script.
//!
//! The script is built from `system.xml`: every PD must report that it started, the GSP model must
//! say it stands in for the GPU, every workload PD must report `verdict PASS`, and the injected
//! fault must show the supervisor restarting the driver PD and the clients recovering. A line
//! that shows a failure (a `verdict FAIL`, a fault the monitor had to catch, a panic) ends the run
//! at once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{build, Options, Prerequisites};

/// How long a boot may take before the run is declared failed: TCG emulation on a shared 2-core
/// machine, with ~300 MiB of regions for the initialiser to clear.
pub(super) const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// Lines that end a run as failed at once.
pub(super) const FAILURES: &[&str] = &[
    "verdict FAIL",
    "MON|ERROR",
    "panicked",
    "ERROR: ",
    "Kernel panic",
];

/// One expectation: every pattern must appear (in any order) on a line after the previous step
/// passed, or at any time for an `anytime` step.
#[derive(Debug)]
pub struct Step {
    /// What the step shows, for the report.
    what: String,
    /// Substrings, each of which some console line must contain.
    patterns: Vec<String>,
    /// Whether lines from before the previous step count (for output whose place among the
    /// others depends on scheduling).
    anytime: bool,
}

impl Step {
    fn new(what: impl Into<String>, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            what: what.into(),
            patterns: patterns.into_iter().map(Into::into).collect(),
            anytime: false,
        }
    }

    fn anytime(mut self) -> Self {
        self.anytime = true;
        self
    }
}

/// The demo's expect script for `system` (merged with the board's addresses), with the fault
/// injected into PD `fault`, if any. The bring-up steps match the PD modules' own log lines.
pub fn demo_script(system: &sysxml::System, fault: Option<&str>) -> Vec<Step> {
    let started = system
        .pds
        .iter()
        .map(|pd| format!("{}: started on seL4", pd.name));
    let model = system
        .pds
        .iter()
        .filter(|pd| pd.program_image == "gsp-model.elf");
    let model = model.map(|pd| format!("{}: QEMU has no NVIDIA GPU", pd.name));
    let mut steps = vec![
        Step::new(
            "seL4 boots to user space",
            ["Booting all finished, dropped to user space"],
        ),
        Step::new(
            "the Microkit monitor starts",
            ["MON|INFO: Microkit Monitor started!"],
        ),
        Step::new("every PD of system.xml starts", started.collect::<Vec<_>>()),
        Step::new(
            "the GSP model says it stands in for QEMU's missing GPU",
            model.collect::<Vec<_>>(),
        )
        .anytime(),
    ];
    // Anytime, like the model's note: the order of the bring-up follows the priorities.
    if let Some(ecam) = system.region("pci_ecam").and_then(|r| r.phys_addr) {
        steps.push(
            Step::new(
                "pci enumerates QEMU's PCIe devices through the board's ECAM window",
                [
                    format!("pci: configuration space: ECAM at {ecam:#x}"),
                    "pci: 00:00.0".into(),
                ],
            )
            .anytime(),
        );
    }
    steps.push(
        Step::new(
            "gsp boots the GPU, on DMA buffers from alloc",
            ["gsp: dma: ", "gsp: GSP up"],
        )
        .anytime(),
    );
    steps.push(Step::new("gpu serves drm", ["gpu: GPU up"]).anytime());
    if let Some(pd) = fault.and_then(|name| system.pd(name)) {
        let name = &pd.name;
        let parent = pd.parent.and_then(|i| system.pds.get(i));
        // Anytime: how soon the Nth call comes depends on which PDs got the CPU first.
        steps.push(
            Step::new(
                format!("{name} faults (injected, serving a PPC)"),
                [format!("{name}: [WARN] fault injected")],
            )
            .anytime(),
        );
        if let Some(parent) = parent {
            steps.push(Step::new(
                format!("{} restarts {name}", parent.name),
                [format!("{}: restarting {name} ", parent.name)],
            ));
        }
        steps.push(Step::new(
            format!("{name} rebuilds its state with init"),
            [format!("{name}: restarted by its parent")],
        ));
    }
    let workloads = system.pds.iter().filter(|pd| {
        pd_programs::find(pd_programs::PROGRAMS, &pd.program_image)
            .is_some_and(|p| p.role == pd_programs::Role::Workload)
    });
    let verdicts = workloads.map(|pd| format!("{}: verdict PASS", pd.name));
    steps.push(Step::new(
        "every workload PD passes (the clients recovered)",
        verdicts.collect::<Vec<_>>(),
    ));
    steps
}

/// `cargo xtask qemu`: build, boot, echo the console, exit with the demo's verdict.
pub fn qemu(args: &[&str]) -> ExitCode {
    run_checked(args, true)
}

/// `cargo xtask test-image`: the expect test; `SKIPPED: <reason>` where it cannot run here.
pub fn test_image(args: &[&str]) -> ExitCode {
    run_checked(args, false)
}

fn run_checked(args: &[&str], is_qemu: bool) -> ExitCode {
    let name = if is_qemu { "qemu" } else { "test-image" };
    let opts = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => return super::usage_error(&e),
    };
    if opts.config == "release" {
        // seL4's release configuration has no debug console, so the PDs' log goes nowhere.
        eprintln!(
            "xtask {name}: a release kernel prints nothing (no debug console), so there is no \
             demo to follow; build it with `cargo xtask image --config release` and use \
             --config debug to watch the demo"
        );
        return ExitCode::FAILURE;
    }
    let prereq = match Prerequisites::find(&opts) {
        Ok(p) => p,
        Err(reason) if !is_qemu => {
            println!(
                "\n*** SKIPPED: seL4 image test ({}): {reason} ***\n",
                opts.board.name
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("xtask {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let qemu_bin = opts.board.qemu_binary();
    if which(qemu_bin).is_none() {
        if is_qemu {
            eprintln!("xtask qemu: {qemu_bin} is not installed");
            return ExitCode::FAILURE;
        }
        println!(
            "\n*** SKIPPED: seL4 image test ({}): {qemu_bin} is not installed ***\n",
            opts.board.name
        );
        return ExitCode::SUCCESS;
    }
    let result = build(&opts, &prereq).and_then(|_| {
        let system = super::board_system(opts.board)?;
        let fault = opts.fault.as_ref().map(|(pd, _)| pd.as_str());
        let script = demo_script(&system, fault);
        boot(&opts, &prereq, &script, is_qemu)
    });
    match result {
        Ok(()) => {
            println!("{name}: PASS ({}, {})", opts.board.name, opts.config);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: FAIL ({}, {}): {e}", opts.board.name, opts.config);
            ExitCode::FAILURE
        }
    }
}

impl super::Board {
    pub(super) fn qemu_binary(&self) -> &'static str {
        if self.name.starts_with("x86_64") {
            "qemu-system-x86_64"
        } else {
            "qemu-system-aarch64"
        }
    }

    /// The QEMU command line that boots `img` (a `loader.img`) on this board.
    pub(super) fn qemu_command(
        &self,
        opts: &Options,
        prereq: &Prerequisites,
        img: &std::path::Path,
    ) -> Command {
        let mut cmd = Command::new(self.qemu_binary());
        if self.name.starts_with("x86_64") {
            let kernel = prereq
                .sdk
                .join("board")
                .join(self.name)
                .join(&opts.config)
                .join("elf/sel4_32.elf");
            cmd.args([
                "-machine",
                "q35",
                "-cpu",
                "qemu64,+fsgsbase,+pdpe1gb,+xsaveopt,+xsave",
            ])
            .args([
                "-m",
                "1G",
                "-display",
                "none",
                "-serial",
                "mon:stdio",
                "-kernel",
            ])
            .arg(kernel)
            .arg("-initrd")
            .arg(img);
        } else {
            cmd.args([
                "-machine",
                "virt,virtualization=on",
                "-cpu",
                "cortex-a53",
                "-m",
                "2G",
            ])
            .args(["-nographic", "-device"])
            .arg(format!(
                "loader,file={},addr=0x70000000,cpu-num=0",
                img.display()
            ));
        }
        // Deterministic guest time, one nanosecond per instruction, unless the caller chose
        // otherwise. Without it, guest time is host time: on a loaded host a PD's 1 ms budget
        // then covers only a few console characters (each costs ~30 us of emulated I/O on q35),
        // so PDs of equal priority cut each other's lines, and no two runs are alike.
        if !opts.qemu_args.iter().any(|a| a == "-icount") {
            cmd.args(["-icount", "shift=0"]);
        }
        cmd.args(&opts.qemu_args);
        cmd
    }
}

/// Boot the image and follow `script`; `echo` prints every console line (else only the steps
/// and, on failure, the last lines).
fn boot(opts: &Options, prereq: &Prerequisites, script: &[Step], echo: bool) -> Result<(), String> {
    let (mut child, lines) = start_qemu(opts, prereq, &opts.loader_img(), Some("boot"))?;
    let outcome = follow(&lines, script, echo, Instant::now() + BOOT_TIMEOUT);
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

/// Start QEMU on `img` (printing its command line after `tag`, when given) and read its console:
/// the process and its stdout and stderr as lines.
pub(super) fn start_qemu(
    opts: &Options,
    prereq: &Prerequisites,
    img: &std::path::Path,
    tag: Option<&str>,
) -> Result<(Child, Receiver<String>), String> {
    let mut cmd = opts.board.qemu_command(opts, prereq, img);
    if let Some(tag) = tag {
        println!("{tag}: {cmd:?}");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", opts.board.qemu_binary()))?;
    let lines = console_lines(&mut child);
    Ok((child, lines))
}

/// The child's stdout and stderr as lines, from reader threads.
fn console_lines(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || forward(out, &tx));
    }
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || forward(err, &tx));
    }
    rx
}

fn forward(stream: impl std::io::Read, tx: &mpsc::Sender<String>) {
    for line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches('\r')
            .to_string();
        if tx.send(text).is_err() {
            return;
        }
    }
}

/// Check the console against `script` until it passes, a failure line shows, QEMU exits or the
/// deadline passes. A step's patterns are looked for from the line after the one that completed
/// the previous step (from the first line for an `anytime` step), in lines already read and then
/// in new ones.
fn follow(
    lines: &Receiver<String>,
    script: &[Step],
    echo: bool,
    deadline: Instant,
) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    let failed = |why: String, seen: &[String]| {
        if !echo {
            eprintln!("--- last console lines ---");
            for l in seen.iter().rev().take(40).rev() {
                eprintln!("{l}");
            }
            eprintln!("---");
        }
        Err(why)
    };
    let mut from = 0;
    for (n, step) in script.iter().enumerate() {
        let start = if step.anytime { 0 } else { from };
        let first_match = |p: &str, seen: &[String]| {
            let later = seen.get(start..).unwrap_or_default();
            later.iter().position(|l| l.contains(p)).map(|i| i + start)
        };
        let mut found: Vec<Option<usize>> = step
            .patterns
            .iter()
            .map(|p| first_match(p, &seen))
            .collect();
        while found.contains(&None) {
            let missing = || -> Vec<&str> {
                let pending = step
                    .patterns
                    .iter()
                    .zip(&found)
                    .filter(|(_, f)| f.is_none());
                pending.map(|(p, _)| p.as_str()).collect()
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let how = match e {
                        RecvTimeoutError::Timeout => "timed out",
                        RecvTimeoutError::Disconnected => "QEMU exited",
                    };
                    let why = format!(
                        "{how} at step {} ({}): still waiting for {:?}",
                        n + 1,
                        step.what,
                        missing()
                    );
                    return failed(why, &seen);
                }
            };
            if echo {
                println!("{line}");
            }
            let failure = FAILURES.iter().find(|f| line.contains(**f));
            seen.push(line);
            if let (Some(f), Some(line)) = (failure, seen.last()) {
                return failed(format!("failure on the console ({f}): {line}"), &seen);
            }
            let index = seen.len() - 1;
            for (p, slot) in step.patterns.iter().zip(found.iter_mut()) {
                if slot.is_none() && seen.get(index).is_some_and(|l| l.contains(p.as_str())) {
                    *slot = Some(index);
                }
            }
        }
        from = found.iter().flatten().max().map_or(from, |&i| i + 1);
        println!("[ok] step {}/{}: {}", n + 1, script.len(), step.what);
    }
    Ok(())
}

/// The path of `program` on `PATH`.
pub(super) fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[&str]) -> Receiver<String> {
        let (tx, rx) = mpsc::channel();
        for l in lines {
            tx.send((*l).to_string()).unwrap();
        }
        rx
    }

    fn script() -> Vec<Step> {
        vec![
            Step::new("boot", ["MON|INFO: Microkit"]),
            Step::new("all up", ["a: started", "b: started"]),
        ]
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(200)
    }

    #[test]
    fn steps_pass_in_order_with_patterns_in_any_order() {
        let rx = feed(&[
            "noise",
            "MON|INFO: Microkit Bootstrap",
            "b: started",
            "x",
            "a: started",
        ]);
        assert!(follow(&rx, &script(), false, soon()).is_ok());
    }

    #[test]
    fn a_pattern_before_its_step_does_not_count() {
        let rx = feed(&["a: started", "MON|INFO: Microkit", "b: started"]);
        let err = follow(&rx, &script(), false, soon()).unwrap_err();
        assert!(
            err.contains("step 2") && err.contains("a: started"),
            "{err}"
        );
    }

    #[test]
    fn a_failure_line_ends_the_run() {
        let rx = feed(&[
            "MON|INFO: Microkit",
            "client0: verdict FAIL",
            "a: started",
            "b: started",
        ]);
        let err = follow(&rx, &script(), false, soon()).unwrap_err();
        assert!(err.contains("verdict FAIL"), "{err}");
    }

    #[test]
    fn silence_times_out_and_says_what_is_missing() {
        let (tx, rx) = mpsc::channel::<String>();
        let err = follow(&rx, &script(), false, soon()).unwrap_err();
        drop(tx);
        assert!(err.contains("timed out at step 1"), "{err}");
    }

    #[test]
    fn an_anytime_step_counts_earlier_lines() {
        let steps = vec![
            Step::new("boot", ["MON|INFO: Microkit"]),
            Step::new("late", ["z: done"]),
            Step::new("early", ["a: note"]).anytime(),
        ];
        let rx = feed(&["a: note", "MON|INFO: Microkit", "z: done"]);
        assert!(follow(&rx, &steps, false, soon()).is_ok());
    }

    #[test]
    fn steps_after_an_anytime_step_count_from_where_it_happened() {
        let steps = vec![
            Step::new("boot", ["MON|INFO: Microkit"]),
            Step::new("up", ["z: started"]),
            Step::new("fault", ["gpu: fault"]).anytime(),
            Step::new("restart", ["gpu: restarted"]),
        ];
        let rx = feed(&[
            "MON|INFO: Microkit",
            "gpu: fault",
            "gpu: restarted",
            "z: started",
        ]);
        assert!(follow(&rx, &steps, false, soon()).is_ok());
        let rx = feed(&[
            "MON|INFO: Microkit",
            "gpu: restarted",
            "gpu: fault",
            "z: started",
        ]);
        let err = follow(&rx, &steps, false, soon()).unwrap_err();
        assert!(
            err.contains("step 4"),
            "a restart before the fault is no restart: {err}"
        );
    }

    #[test]
    fn the_demo_script_follows_system_xml_and_the_fault() {
        let system = super::super::board_system(&super::super::BOARDS[0]).unwrap();
        let script = demo_script(&system, Some("gpu"));
        let all: Vec<&String> = script.iter().flat_map(|s| &s.patterns).collect();
        for pd in &system.pds {
            let started = format!("{}: started on seL4", pd.name);
            assert!(all.contains(&&started), "{started}");
        }
        let expected = [
            "pci: configuration space: ECAM at 0x4010000000",
            "supervisor: restarting gpu ",
            "gpu: restarted by its parent",
            "client0: verdict PASS",
        ];
        for e in expected {
            assert!(all.iter().any(|p| p.as_str() == e), "{e}");
        }
        let quiet = demo_script(&system, None);
        assert!(quiet
            .iter()
            .flat_map(|s| &s.patterns)
            .all(|p| !p.contains("restart")));
    }
}
