//! `cargo xtask bench sel4 [--board B]`: the cost of isolation on seL4, in guest instructions.
//!
//! The bench image is derived from `system.xml` in code ([`isolated`]), never kept as a second
//! XML file: client0 runs `bench.elf` (pd-programs' `bench_ipc`: the ioctl bench client with IPC
//! loops first), the other clients `bench.elf` too (they pass at once and stay idle), and a PD
//! `pong` joins with a channel from client0. The image boots in QEMU with `-icount shift=0`, where
//! guest time advances one nanosecond per guest instruction, so every `ns` the bench client
//! reads from the guest's clock (the generic timer, 62.5 MHz: 16 instructions a tick; the TSC on
//! x86_64) is an instruction count, the same on every run. Each image boots twice and the counts
//! must be identical.
//!
//! Compared with sel4bench's published figures (seL4 website, `_data/benchmarks.json` of
//! github.com/seL4/website at cf0285b1, sel4bench-manifest d2007395, the MCS kernel as Microkit
//! uses), which are *cycles* on real cores: instructions are not cycles, and QEMU has no caches
//! or pipelines, so the ratio says how much work our path does next to the kernel's fastpath, not
//! how long it takes on silicon.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

use pd_programs::bench_ipc;

use super::boot::{console_lines, BOOT_TIMEOUT, FAILURES};
use super::{board_system, build_system, Options, Prerequisites};

/// The measurements, in the order the table shows them (names as `bench_client` logs them).
const METRICS: [&str; 9] = [
    "boot", "ppc", "notify", "getparam", "setup", "gem_new", "vm_bind", "exec1", "exec64",
];

/// sel4bench's published cycles (mean) on the core nearest to the board's: (core, IPC call +
/// IPC reply, Notify). MCS configuration, as Microkit's kernel.
/// Source: <https://sel4.systems/performance> (github.com/seL4/website `_data/benchmarks.json`,
/// commit cf0285b1, sel4bench-manifest d2007395): A57/Tx1/Jetson MCS call 428, reply 444,
/// notify 1128; i7-6700/Skylake MCS call 744, reply 638, notify 1064.
fn sel4bench_cycles(board: &str) -> (&'static str, f64, f64) {
    if board.starts_with("x86_64") {
        ("i7-6700/Skylake", 744.0 + 638.0, 1064.0)
    } else {
        ("A57/Tx1/Jetson", 428.0 + 444.0, 1128.0)
    }
}

/// `system` as the isolated bench image: every `client.elf` PD runs `bench.elf`, and `pong`
/// (`pong.elf`, priority [`bench_ipc::PONG_PRIORITY`]) is added with a channel from client0
/// ([`bench_ipc::PONG`], pp) to pong ([`bench_ipc::CLIENT`]).
///
/// # Errors
/// `system` has no client0, or the result does not validate.
pub fn isolated(system: &mut sysxml::System) -> Result<(), String> {
    for pd in &mut system.pds {
        if pd.program_image == "client.elf" {
            pd.program_image = "bench.elf".into();
        }
    }
    let client0 = system
        .pd("client0")
        .ok_or("system.xml has no client0")?
        .clone();
    system.pds.push(sysxml::Pd {
        name: "pong".into(),
        priority: bench_ipc::PONG_PRIORITY,
        passive: true,
        program_image: "pong.elf".into(),
        maps: Vec::new(),
        setvars: Vec::new(),
        parent: None,
        id: None,
        setvar_id: None,
        irqs: Vec::new(),
        ..client0
    });
    let end = |pd: &str, id: u8, pp: bool| sysxml::End {
        pd: pd.into(),
        id,
        pp,
        notify: true,
        setvar_id: None,
        line: 0,
        column: 0,
    };
    system.channels.push(sysxml::ChannelDecl {
        ends: [
            end("client0", bench_ipc::PONG.index(), true),
            end("pong", bench_ipc::CLIENT.index(), false),
        ],
        line: 0,
        column: 0,
    });
    system
        .validate()
        .map_err(|e| format!("the bench image: {e}"))
}

/// The `bench: NAME N ns/op (M ops)` lines of client0 on a console, as `NAME -> N`.
fn parse_metrics<'a>(lines: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, u64> {
    lines
        .into_iter()
        .filter_map(|l| {
            let rest = l.split("client0: ").nth(1)?.split("bench: ").nth(1)?;
            let mut w = rest.split_whitespace();
            let name = w.next()?.to_string();
            let n = w.next()?.parse().ok()?;
            (w.next() == Some("ns/op")).then_some((name, n))
        })
        .collect()
}

/// Boot `img`, wait for client0's verdict and return its measurements.
fn measure(
    opts: &Options,
    prereq: &Prerequisites,
    img: &Path,
) -> Result<BTreeMap<String, u64>, String> {
    let mut cmd = opts.board.qemu_command(opts, prereq, img);
    println!("bench: {cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", opts.board.qemu_binary()))?;
    let lines = console_lines(&mut child);
    let deadline = Instant::now() + BOOT_TIMEOUT;
    let mut seen = Vec::new();
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains("client0: ") && line.contains("verdict PASS");
                let failed = FAILURES.iter().any(|f| line.contains(f));
                seen.push(line);
                if failed {
                    break Err("a failure on the console".to_string());
                }
                if done {
                    break Ok(());
                }
            }
            Err(RecvTimeoutError::Timeout) => break Err("timed out".into()),
            Err(RecvTimeoutError::Disconnected) => break Err("QEMU exited".into()),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    if let Err(why) = outcome {
        let tail: Vec<&str> = seen
            .iter()
            .rev()
            .take(30)
            .rev()
            .map(String::as_str)
            .collect();
        return Err(format!("{why}; last console lines:\n{}", tail.join("\n")));
    }
    Ok(parse_metrics(seen.iter().map(String::as_str)))
}

/// `cargo xtask bench sel4`.
pub fn run(args: &[&str]) -> ExitCode {
    let mut opts = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => return super::usage_error(&e),
    };
    opts.fault = None;
    // sleep=off: while the guest idles, its clock jumps to the next timer deadline instead of
    // following the host's, so idle periods (in the boot) cost the same on every run.
    if !opts.qemu_args.iter().any(|a| a == "-icount") {
        opts.qemu_args
            .extend(["-icount".to_string(), "shift=0,sleep=off".to_string()]);
    }
    let board = opts.board.name;
    let prereq = match Prerequisites::find(&opts) {
        Ok(p) => p,
        Err(reason) => {
            println!("\n*** SKIPPED: seL4 bench ({board}): {reason} ***\n");
            return ExitCode::SUCCESS;
        }
    };
    match bench(&opts, &prereq) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench sel4: FAIL ({board}): {e}");
            ExitCode::FAILURE
        }
    }
}

/// Build, boot twice, print the table and the goals; `Ok(false)` when a goal is missed or the
/// two runs differ.
fn bench(opts: &Options, prereq: &Prerequisites) -> Result<bool, String> {
    let mut system = board_system(opts.board)?;
    isolated(&mut system)?;
    let out = super::super::workspace_root()
        .join("images/out")
        .join(opts.board.name)
        .join("bench-isolated");
    let img = build_system(opts, prereq, system, &out)?;
    let runs = [measure(opts, prereq, &img)?, measure(opts, prereq, &img)?];
    let same = runs[0] == runs[1];

    println!(
        "\nseL4 bench, {} (QEMU -icount shift=0,sleep=off: 1 ns = 1 guest instruction)",
        opts.board.name
    );
    println!(
        "{:10} {:>14} {:>14}",
        "op", "isolated run1", "isolated run2"
    );
    for metric in METRICS {
        let cell = |r: &BTreeMap<String, u64>| r.get(metric).map_or("-".into(), u64::to_string);
        println!("{metric:10} {:>14} {:>14}", cell(&runs[0]), cell(&runs[1]));
    }
    println!(
        "instruction counts of the two runs: {}",
        if same { "identical" } else { "DIFFERENT" }
    );
    let (core, call_reply, notify) = sel4bench_cycles(opts.board.name);
    let get = |m: &str| runs[0].get(m).copied().map(|v| v as f64);
    let ppc = get("ppc").ok_or("no ppc measurement")?;
    if let Some(n) = get("notify") {
        println!(
            "sel4bench (cycles, {core}, MCS): call+reply {call_reply}, notify {notify}; \
             ours (instructions): ppc {ppc}, notify {n}"
        );
    }
    let ok = benchkit::report(&[benchkit::Goal::new(
        "ppc-vs-sel4bench",
        ppc / call_reply,
        benchkit::Op::AtMost,
        1.5,
    )]);
    Ok(ok && same)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_image_derives_from_system_xml_on_every_board() {
        for board in super::super::BOARDS {
            let mut system = board_system(board).unwrap();
            isolated(&mut system).unwrap();
            let pong = system.pd("pong").unwrap();
            assert_eq!(pong.program_image, "pong.elf");
            assert!(pong.priority > system.pd("client0").unwrap().priority);
            assert!(system.pds.iter().all(|p| p.program_image != "client.elf"));
            // What the tool gets parses back to the same system.
            let again = sysxml::parse(&system.to_sdf()).unwrap();
            assert_eq!(again.pds.len(), system.pds.len());
            assert_eq!(again.channels.len(), system.channels.len());
        }
    }

    #[test]
    fn a_taken_channel_id_is_refused() {
        let mut system = board_system(&super::super::BOARDS[0]).unwrap();
        let client0 = system.pds.iter_mut().find(|p| p.name == "client0").unwrap();
        client0.name = "other".into();
        assert!(isolated(&mut system).unwrap_err().contains("client0"));
        let mut system = board_system(&super::super::BOARDS[0]).unwrap();
        isolated(&mut system).unwrap();
        assert!(isolated(&mut system).is_err(), "pong twice");
    }

    #[test]
    fn metrics_are_read_from_client0_lines_only() {
        let console = [
            "client0: [INFO] bench: ppc 1234 ns/op (1000 ops)",
            "client1: [INFO] bench: ppc 9 ns/op (1 ops)",
            "client0: [INFO] bench: exec64 777 ns/op (50 ops)",
            "client0: [INFO] bench: failed: oops",
        ];
        let m = parse_metrics(console);
        assert_eq!(m.len(), 2);
        assert_eq!((m["ppc"], m["exec64"]), (1234, 777));
    }

    #[test]
    fn sel4bench_figures_follow_the_board() {
        assert_eq!(sel4bench_cycles("qemu_virt_aarch64").1, 872.0);
        assert_eq!(sel4bench_cycles("x86_64_generic").0, "i7-6700/Skylake");
    }
}
