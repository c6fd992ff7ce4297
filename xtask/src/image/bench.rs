//! `cargo xtask bench sel4 [--board B]`: the cost of isolation on seL4, in guest instructions.
//!
//! The bench image is derived from `system.xml` in code ([`isolated`]), never kept as a second
//! XML file: client0 runs `bench.elf` (pd-programs' `bench_ipc`: the ioctl bench client with IPC
//! loops first), the other clients `bench.elf` too (they pass at once and stay idle), and a PD
//! `pong` joins with a channel from client0. The monolithic image is derived from that one
//! ([`monolithic`]): the five driver PDs become one, `drivers.elf` (pd-programs' `drivers`, the
//! same PD modules on pd-direct, as pds/mono composes them), and everything else stays, the GSP
//! model included (it is the device). Each image boots in QEMU with `-icount shift=0`, where
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
use std::process::ExitCode;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

use pd_programs::sys::system;
use pd_programs::{bench_ipc, drivers};

use super::boot::{start_qemu, BOOT_TIMEOUT, FAILURES};
use super::{board_system, build_system, Options, Prerequisites};

/// The measurements, in the order the table shows them (names as `bench_client` logs them).
const METRICS: [&str; 12] = [
    "boot",
    "ppc",
    "notify",
    "gspq_rtt",
    "gspq_256k",
    "memcpy_256k",
    "getparam",
    "setup",
    "gem_new",
    "vm_bind",
    "exec1",
    "exec64",
];

/// The PL011 UART of QEMU's `virt` board (hw/arm/virt.c `VIRT_UART`), the bench client's
/// console on a release kernel, and where it is mapped in client0 (free in `system.xml`).
const UART: (u64, u64) = (0x0900_0000, 0x7f00_0000);
/// The glue's symbol for the UART's address (images/microkit/glue/src/uart.rs).
const UART_SYMBOL: &str = "pd_sel4_uart";

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
    system.channels.push(call_channel(
        ("client0", bench_ipc::PONG.index()),
        ("pong", bench_ipc::CLIENT.index()),
    ));
    system
        .validate()
        .map_err(|e| format!("the bench image: {e}"))
}

/// The isolated bench image's channel from client0 ([`bench_ipc::GSP`], pp) to gsp
/// ([`bench_ipc::AT_GSP`]), for the GSP queue loops; the monolithic image has none.
///
/// # Errors
/// An id is taken, or the result does not validate.
pub fn gsp_channel(system: &mut sysxml::System) -> Result<(), String> {
    system.channels.push(call_channel(
        ("client0", bench_ipc::GSP.index()),
        ("gsp", bench_ipc::AT_GSP.index()),
    ));
    system
        .validate()
        .map_err(|e| format!("the bench image's channel to gsp: {e}"))
}

/// A channel the bench derives: `caller` (PD, id) may call `callee` (PD, id).
fn call_channel(caller: (&str, u8), callee: (&str, u8)) -> sysxml::ChannelDecl {
    sysxml::ChannelDecl {
        ends: [
            end(caller.0, caller.1, true),
            end(callee.0, callee.1, false),
        ],
        line: 0,
        column: 0,
    }
}

/// A release kernel has no console: map QEMU `virt`'s PL011 ([`UART`]) into client0, whose log
/// the glue then writes there (aarch64 only: x86_64's serial port needs an I/O port
/// capability).
///
/// # Errors
/// The board is not aarch64, or the result does not validate.
pub fn uart_console(system: &mut sysxml::System, board: &str) -> Result<(), String> {
    if board != "qemu_virt_aarch64" {
        return Err(format!(
            "--config release: the bench client has no console on {board} (a PL011 on \
             qemu_virt_aarch64 only)"
        ));
    }
    let (paddr, vaddr) = UART;
    system.regions.push(sysxml::MemoryRegion {
        name: "bench_uart".into(),
        size: 0x1000,
        page_size: None,
        phys_addr: Some(paddr),
        prefill_path: None,
        line: 0,
        column: 0,
    });
    let client0 = system
        .pds
        .iter_mut()
        .find(|p| p.name == "client0")
        .ok_or("system.xml has no client0")?;
    client0.maps.push(sysxml::Map {
        mr: "bench_uart".into(),
        vaddr,
        perms: sysxml::Perms {
            r: true,
            w: true,
            x: false,
        },
        cached: false,
        setvar_vaddr: Some(UART_SYMBOL.into()),
        setvar_size: None,
        line: 0,
        column: 0,
    });
    system
        .validate()
        .map_err(|e| format!("the bench image's UART: {e}"))
}

/// A channel end the bench adds: `pd`'s id `id`, which may call the other end when `pp`.
fn end(pd: &str, id: u8, pp: bool) -> sysxml::End {
    sysxml::End {
        pd: pd.into(),
        id,
        pp,
        notify: true,
        setvar_id: None,
        line: 0,
        column: 0,
    }
}

/// `system` (the isolated bench image or `system.xml`) as the monolithic image: the driver PDs
/// ([`drivers::MERGED`]) become one PD `drivers` (`drivers.elf`) in the first one's place (its
/// parent and child id, so the supervisor restarts all five as one), at the highest of their
/// priorities, passive, with the union of their maps (the same vaddr in each, `system.xml`
/// promises) and setvars. A channel between two merged PDs is gone (a direct call now); one
/// with a merged end gets `drivers`' id from [`drivers::channel`], the function the PD uses.
/// The GSP model is the device in both images, so it stays its own PD.
///
/// # Errors
/// A merged PD is missing, two of them map a region differently, or the result does not
/// validate.
pub fn monolithic(system: &mut sysxml::System) -> Result<(), String> {
    let parents: Vec<Option<String>> = system
        .pds
        .iter()
        .map(|p| {
            p.parent
                .and_then(|i| system.pds.get(i))
                .map(|p| p.name.clone())
        })
        .collect();
    let merged = |name: &str| drivers::MERGED.contains(&name);
    let first = drivers::MERGED[0];
    let mut one = system
        .pd(first)
        .ok_or_else(|| format!("the system has no {first}"))?
        .clone();
    one.name = drivers::NAME.into();
    one.program_image = drivers::IMAGE.into();
    // Passive like drm, the PD the clients call: a call runs on the caller's scheduling context
    // (the kernel's fastpath), as into the isolated drm; a notification runs on drivers' own.
    one.passive = true;
    (one.maps, one.setvars) = (Vec::new(), Vec::new());
    for pd in system.pds.iter().filter(|p| merged(&p.name)) {
        one.priority = one.priority.max(pd.priority);
        for map in &pd.maps {
            match one.maps.iter_mut().find(|m| m.mr == map.mr) {
                Some(m) if (m.vaddr, m.cached) != (map.vaddr, map.cached) => {
                    return Err(format!("{} maps {} differently", pd.name, map.mr))
                }
                Some(m) => m.perms.w |= map.perms.w,
                None => one.maps.push(map.clone()),
            }
        }
        for setvar in &pd.setvars {
            if !one.setvars.iter().any(|s| s.symbol == setvar.symbol) {
                one.setvars.push(setvar.clone());
            }
        }
    }
    let missing: Vec<&str> = drivers::MERGED
        .iter()
        .copied()
        .filter(|n| system.pd(n).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(format!("the system has no {}", missing.join(", ")));
    }

    let index = |name: &str| system::PDS.iter().position(|d| d.name == name);
    let mut channels = Vec::new();
    for c in &system.channels {
        let [a, b] = &c.ends;
        if merged(&a.pd) && merged(&b.pd) {
            continue;
        }
        let mut c = c.clone();
        for end in &mut c.ends {
            if merged(&end.pd) {
                let ch = index(&end.pd)
                    .and_then(|pd| drivers::channel(pd, pd_core::Channel::new(end.id)))
                    .ok_or_else(|| {
                        format!("{}'s channel {} is not in system.xml", end.pd, end.id)
                    })?;
                (end.pd, end.id) = (drivers::NAME.into(), ch.index());
            }
        }
        channels.push(c);
    }

    // The PDs: `one` in the first merged PD's place, the others gone; parents re-indexed.
    let mut pds: Vec<(sysxml::Pd, Option<String>)> = Vec::new();
    for (pd, parent) in system.pds.iter().zip(parents) {
        if pd.name == first {
            pds.push((one.clone(), parent));
        } else if !merged(&pd.name) {
            pds.push((pd.clone(), parent));
        }
    }
    let at: Vec<Option<usize>> = pds
        .iter()
        .map(|(_, parent)| {
            let parent = parent.as_deref()?;
            pds.iter().position(|(p, _)| p.name == parent)
        })
        .collect();
    let pds = pds
        .into_iter()
        .zip(at)
        .map(|((pd, _), parent)| sysxml::Pd { parent, ..pd })
        .collect();
    system.pds = pds;
    system.channels = channels;
    system
        .validate()
        .map_err(|e| format!("the monolithic image: {e}"))
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
    let (mut child, lines) = start_qemu(opts, prereq, img, Some("bench"))?;
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
    if let Some(c) = default_config(args, opts.board.name) {
        opts.config = c.to_string();
    }
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

/// The kernel config when `args` name none: release where the bench image has a console for it
/// (sel4bench's figures are release-kernel figures, so the comparison is like with like), the
/// image's default (debug) elsewhere.
fn default_config(args: &[&str], board: &str) -> Option<&'static str> {
    let named = args.contains(&"--config");
    (!named && board == "qemu_virt_aarch64").then_some("release")
}

/// Build the image of `system` in `images/out/<board>/<dir>` and boot it twice.
fn boot_twice(
    opts: &Options,
    prereq: &Prerequisites,
    system: sysxml::System,
    dir: &str,
) -> Result<[BTreeMap<String, u64>; 2], String> {
    let out = super::super::workspace_root()
        .join("images/out")
        .join(opts.board.name)
        .join(dir);
    let img = build_system(opts, prereq, system, &out)?;
    Ok([measure(opts, prereq, &img)?, measure(opts, prereq, &img)?])
}

/// Build both images, boot each twice, print the table and the goals; `Ok(false)` when a goal
/// is missed or two runs of an image differ.
fn bench(opts: &Options, prereq: &Prerequisites) -> Result<bool, String> {
    let mut system = board_system(opts.board)?;
    isolated(&mut system)?;
    if opts.config == "release" {
        uart_console(&mut system, opts.board.name)?;
    }
    let mut mono = system.clone();
    monolithic(&mut mono)?;
    gsp_channel(&mut system)?;
    let iso = boot_twice(opts, prereq, system, "bench-isolated")?;
    let mono = boot_twice(opts, prereq, mono, "bench-monolithic")?;
    let same = iso[0] == iso[1] && mono[0] == mono[1];

    println!(
        "\nseL4 bench, {} {} kernel (QEMU -icount shift=0,sleep=off: 1 ns = 1 guest instruction)",
        opts.board.name, opts.config
    );
    println!(
        "{:10} {:>14} {:>14} {:>14} {:>14}",
        "op", "isolated run1", "isolated run2", "mono run1", "mono run2"
    );
    let cell = |r: &BTreeMap<String, u64>, m: &str| r.get(m).map_or("-".into(), u64::to_string);
    for m in METRICS {
        println!(
            "{m:10} {:>14} {:>14} {:>14} {:>14}",
            cell(&iso[0], m),
            cell(&iso[1], m),
            cell(&mono[0], m),
            cell(&mono[1], m)
        );
    }
    println!(
        "instruction counts of the two runs of each image: {}",
        if same { "identical" } else { "DIFFERENT" }
    );
    let (core, call_reply, notify) = sel4bench_cycles(opts.board.name);
    let get = |r: &BTreeMap<String, u64>, m: &str| {
        r.get(m)
            .map(|&v| v as f64)
            .ok_or(format!("no {m} measurement"))
    };
    let ppc = get(&iso[0], "ppc")?;
    if let Ok(n) = get(&iso[0], "notify") {
        println!(
            "sel4bench (cycles, {core}, MCS): call+reply {call_reply}, notify {notify}; \
             ours (instructions): ppc {ppc}, notify {n}"
        );
    }
    let mut goals = vec![
        benchkit::Goal::new(
            "exec64-sel4",
            get(&mono[0], "exec64")? / get(&iso[0], "exec64")?,
            benchkit::Op::AtLeast,
            0.9,
        ),
        benchkit::Goal::new(
            "ppc-vs-sel4bench",
            ppc / call_reply,
            benchkit::Op::AtMost,
            1.5,
        ),
    ];
    // `cargo xtask bench gspq`'s goal, in instructions: 256 KiB through the queues with the
    // device answering against memcpy of it. Where memcpy is a string instruction (x86_64's
    // `rep movsq`, which QEMU counts once per 8 bytes), instructions do not compare it with a
    // loop, so only the aarch64 board has the goal.
    let (memcpy, bulk) = (get(&iso[0], "memcpy_256k")?, get(&iso[0], "gspq_256k")?);
    if opts.board.name.starts_with("x86_64") {
        println!(
            "gspq-bulk-sel4: not a goal on {}: memcpy is rep movsq there ({:.3} in instructions)",
            opts.board.name,
            memcpy / bulk
        );
    } else {
        goals.push(benchkit::Goal::new(
            "gspq-bulk-sel4",
            memcpy / bulk,
            benchkit::Op::AtLeast,
            0.5,
        ));
    }
    let ok = benchkit::report(&goals);
    Ok(ok && same)
}

#[cfg(test)]
mod tests {
    use super::default_config;

    #[test]
    fn the_bench_defaults_to_a_release_kernel_where_it_has_a_console() {
        assert_eq!(default_config(&[], "qemu_virt_aarch64"), Some("release"));
        assert_eq!(
            default_config(&["--config", "debug"], "qemu_virt_aarch64"),
            None
        );
        assert_eq!(default_config(&[], "x86_64_generic"), None);
    }

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
    fn the_monolithic_image_merges_the_drivers_only_on_every_board() {
        for board in super::super::BOARDS {
            let mut iso = board_system(board).unwrap();
            isolated(&mut iso).unwrap();
            let mut mono = iso.clone();
            monolithic(&mut mono).unwrap();
            for name in drivers::MERGED {
                assert!(mono.pd(name).is_none(), "{name} merged");
            }
            let one = mono.pd(drivers::NAME).unwrap();
            let model = mono.pd("gsp_model").unwrap();
            assert_eq!(
                model,
                iso.pd("gsp_model").unwrap(),
                "the device stays as it is"
            );
            assert!(one.priority < model.priority && one.passive);
            assert_eq!(
                (one.parent.map(|i| mono.pds[i].name.as_str()), one.id),
                (Some("supervisor"), iso.pd("pci").unwrap().id)
            );
            // Every map and setvar of a merged PD is in drivers, writable where any was.
            for pd in iso
                .pds
                .iter()
                .filter(|p| drivers::MERGED.contains(&p.name.as_str()))
            {
                for m in &pd.maps {
                    let d = one.maps.iter().find(|d| d.mr == m.mr).unwrap();
                    assert_eq!(d.vaddr, m.vaddr);
                    assert!(d.perms.w || !m.perms.w, "{}", m.mr);
                }
                for v in &pd.setvars {
                    let same = |d: &sysxml::SetVar| {
                        (&d.symbol, &d.region_paddr) == (&v.symbol, &v.region_paddr)
                    };
                    assert!(one.setvars.iter().any(same), "{}", v.symbol);
                }
            }
            assert!(!one.maps.iter().find(|m| m.mr == "gsp_fw").unwrap().perms.w);
            // The tool gets a valid SDF (validate ran) that parses back the same.
            let again = sysxml::parse(&mono.to_sdf()).unwrap();
            assert_eq!(again.pds.len(), iso.pds.len() - drivers::MERGED.len() + 1);
            let ends = |s: &sysxml::System| -> Vec<(String, u8, bool, bool)> {
                let e = s.channels.iter().flat_map(|c| c.ends.iter());
                e.map(|e| (e.pd.clone(), e.id, e.pp, e.notify)).collect()
            };
            assert_eq!(ends(&again), ends(&mono));
        }
    }

    #[test]
    fn channels_with_one_merged_end_get_the_ids_the_drivers_pd_uses() {
        let mut iso = board_system(&super::super::BOARDS[0]).unwrap();
        isolated(&mut iso).unwrap();
        let mut mono = iso.clone();
        monolithic(&mut mono).unwrap();
        let index = |n: &str| system::PDS.iter().position(|d| d.name == n).unwrap();
        let merged = |n: &str| drivers::MERGED.contains(&n);
        let mut kept = 0;
        for c in &iso.channels {
            let [a, b] = &c.ends;
            if merged(&a.pd) && merged(&b.pd) {
                continue;
            }
            kept += 1;
            let (inner, outer) = if merged(&a.pd) { (a, b) } else { (b, a) };
            if !merged(&inner.pd) {
                assert!(mono.channels.contains(c), "untouched: {c:?}");
                continue;
            }
            let id = drivers::channel(index(&inner.pd), pd_core::Channel::new(inner.id)).unwrap();
            let found = mono
                .channels
                .iter()
                .find(|m| m.ends.contains(outer))
                .unwrap();
            let end = found.ends.iter().find(|e| e.pd == drivers::NAME).unwrap();
            assert_eq!(
                (end.id, end.pp, end.notify),
                (id.index(), inner.pp, inner.notify)
            );
            // The PD maps it back to the merged PD's own end.
            let r = drivers::route(id).unwrap();
            assert_eq!((r.from, r.ch.index()), (index(&inner.pd), inner.id));
        }
        assert_eq!(mono.channels.len(), kept);
        assert!(
            kept < iso.channels.len(),
            "the calls between drivers are gone"
        );
    }

    #[test]
    fn a_system_without_a_driver_is_refused() {
        let mut system = board_system(&super::super::BOARDS[0]).unwrap();
        system.pds.retain(|p| p.name != "gpu");
        system
            .channels
            .retain(|c| c.ends.iter().all(|e| e.pd != "gpu"));
        assert!(monolithic(&mut system).unwrap_err().contains("gpu"));
    }

    #[test]
    fn the_release_image_maps_the_uart_into_client0_only() {
        let board = &super::super::BOARDS[0];
        assert_eq!(board.name, "qemu_virt_aarch64");
        let mut system = board_system(board).unwrap();
        isolated(&mut system).unwrap();
        uart_console(&mut system, board.name).unwrap();
        let again = sysxml::parse(&system.to_sdf()).unwrap();
        let region = again
            .regions
            .iter()
            .find(|r| r.name == "bench_uart")
            .unwrap();
        assert_eq!((region.phys_addr, region.size), (Some(UART.0), 0x1000));
        let maps: Vec<(&str, &sysxml::Map)> = again
            .pds
            .iter()
            .flat_map(|p| p.maps.iter().map(move |m| (p.name.as_str(), m)))
            .filter(|(_, m)| m.mr == "bench_uart")
            .collect();
        assert_eq!(maps.len(), 1);
        let (pd, map) = maps[0];
        assert_eq!((pd, map.vaddr, map.cached), ("client0", UART.1, false));
        assert_eq!(map.setvar_vaddr.as_deref(), Some(UART_SYMBOL));
        assert!(map.perms.w && !map.perms.x);
        // The monolithic image keeps it (client0 is not merged).
        let mut mono = system.clone();
        monolithic(&mut mono).unwrap();
        assert!(mono
            .pd("client0")
            .unwrap()
            .maps
            .iter()
            .any(|m| m.mr == "bench_uart"));
        // Twice is a taken region name.
        assert!(uart_console(&mut system, board.name).is_err());
    }

    #[test]
    fn the_release_console_is_refused_without_a_pl011() {
        for board in &super::super::BOARDS[1..] {
            let mut system = board_system(board).unwrap();
            isolated(&mut system).unwrap();
            assert!(uart_console(&mut system, board.name)
                .unwrap_err()
                .contains("PL011"));
        }
    }

    #[test]
    fn the_channel_to_gsp_is_the_isolated_images_and_valid() {
        for board in super::super::BOARDS {
            let mut system = board_system(board).unwrap();
            isolated(&mut system).unwrap();
            gsp_channel(&mut system).unwrap();
            let again = sysxml::parse(&system.to_sdf()).unwrap();
            let c = again
                .channels
                .iter()
                .find(|c| {
                    c.ends
                        .iter()
                        .any(|e| e.pd == "gsp" && e.id == bench_ipc::AT_GSP.index())
                })
                .unwrap();
            let [a, b] = &c.ends;
            assert_eq!(
                (a.pd.as_str(), a.id, a.pp),
                ("client0", bench_ipc::GSP.index(), true)
            );
            assert!(!b.pp);
            assert!(again.pd("gsp").unwrap().priority > again.pd("client0").unwrap().priority);
            assert!(gsp_channel(&mut system).is_err(), "the ids are taken");
        }
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
