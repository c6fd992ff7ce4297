//! System tests of the hosted runtime: whole systems booted from small `tests/*.xml` descriptions
//! (plus the product's `system.xml`), each run as a real runtime process with its PD processes.
//!
//! This binary is its own PD executable: the runtime starts PDs as `/proc/self/exe --pd ...`, so
//! `main` dispatches `--pd` (a PD with the test program table) and `--runtime` (the runtime)
//! before running the tests (`harness = false`; an argument filters tests by name).

mod pds;
mod relay;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Test programs (images `t-*.elf`) and the product's, for the product system test.
    let programs: Vec<_> = pds::PROGRAMS
        .iter()
        .chain(pd_programs::PROGRAMS)
        .copied()
        .collect();
    match args.first().map(String::as_str) {
        Some("--pd") => return hosted::run(&programs, &args),
        Some("--runtime") => return hosted::run(&programs, args.get(1..).unwrap_or_default()),
        _ => {}
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let tests: &[(&str, fn())] = &[
        (
            "product_system_boots_and_the_demo_passes",
            product_system_boots_and_the_demo_passes,
        ),
        (
            "killing_gsp_in_the_product_system_reboots_the_gpu_and_the_clients_recover",
            product_gsp_restart,
        ),
        (
            "killing_pci_mid_run_restarts_it_and_clients_continue",
            || kill_restarts("pci"),
        ),
        (
            "killing_alloc_mid_run_restarts_it_and_clients_continue",
            || kill_restarts("alloc"),
        ),
        (
            "killing_gsp_mid_run_restarts_it_and_clients_continue",
            || kill_restarts("gsp"),
        ),
        (
            "killing_gpu_mid_run_restarts_it_and_clients_continue",
            || kill_restarts("gpu"),
        ),
        (
            "killing_drm_mid_run_restarts_it_and_clients_continue",
            || kill_restarts("drm"),
        ),
        (
            "a_pd_cannot_touch_memory_outside_its_mappings",
            memory_outside_mappings_faults,
        ),
        (
            "undeclared_and_unpermitted_ipc_is_refused_and_logged",
            ipc_refusals,
        ),
        (
            "restart_budget_exhaustion_marks_the_pd_failed",
            budget_exhaustion,
        ),
        (
            "hung_and_dying_callees_end_calls_with_errors",
            hung_and_dying_callees,
        ),
        (
            "a_call_to_a_pd_in_its_init_waits_past_the_watchdog",
            call_waits_for_init,
        ),
        (
            "no_orphans_or_memfds_outlive_a_clean_shutdown",
            no_leaks_after_shutdown,
        ),
        ("pds_die_with_a_killed_runtime", pds_die_with_the_runtime),
        ("a_bad_description_exits_2_naming_the_line", bad_description),
    ];
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let t = Instant::now();
        let ok = std::panic::catch_unwind(test).is_ok();
        println!(
            "test {name} ... {} ({:.1} s)",
            if ok { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64()
        );
        if !ok {
            failed.push(*name);
        }
    }
    println!("\n{} passed; {} failed", ran - failed.len(), failed.len());
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failed: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// A finished runtime: its exit code, its pid and the whole log (runtime and PDs).
struct Run {
    code: Option<i32>,
    pid: u32,
    log: String,
}

impl Run {
    fn has(&self, line_part: &str) -> bool {
        self.log.contains(line_part)
    }

    fn count(&self, line_part: &str) -> usize {
        self.log.lines().filter(|l| l.contains(line_part)).count()
    }

    /// The pids the runtime reported starting.
    fn pd_pids(&self) -> Vec<u32> {
        self.log
            .lines()
            .filter_map(|l| {
                l.split("(pid ")
                    .nth(1)?
                    .split([')', ','])
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    fn assert(&self, ok: bool, what: &str) {
        assert!(
            ok,
            "{what}\n--- log (exit {:?}) ---\n{}",
            self.code, self.log
        );
    }
}

/// Start the runtime on `args`; `during` runs while it runs (given its pid and log so far).
fn run_with(args: &[&str], during: impl FnOnce(u32, &dyn Fn() -> String)) -> Run {
    let mut child = Command::new("/proc/self/exe")
        .arg("--runtime")
        .args(args)
        .env("HOSTED_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&log);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let snapshot = || log.lock().unwrap().clone();
    during(pid, &snapshot);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("runtime did not finish:\n{}", snapshot());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The pipe closes only when every PD holding it is gone: an orphan would hang here.
    let join_deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() {
        assert!(
            Instant::now() < join_deadline,
            "a PD outlived the runtime:\n{}",
            snapshot()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    reader.join().unwrap();
    Run {
        code: status.code(),
        pid,
        log: snapshot(),
    }
}

fn run(xml: &str, extra: &[&str]) -> Run {
    let path = tests_dir().join(xml);
    let mut args = vec![path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_with(&args, |_, _| {})
}

fn product_system_boots_and_the_demo_passes() {
    let xml = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../system.xml");
    let r = run_with(&[xml.to_str().unwrap()], |_, _| {});
    r.assert(r.code == Some(0), "the demo must pass");
    for pd in [
        "supervisor",
        "pci",
        "alloc",
        "gsp",
        "gpu",
        "drm",
        "client0",
        "client1",
        "client2",
        "gsp_model",
    ] {
        r.assert(r.has(&format!("runtime: started {pd} (pid")), pd);
    }
    r.assert(
        r.has("runtime: client0 reported pass") && r.has("runtime: client1 reported pass"),
        "verdicts",
    );
    r.assert(
        r.has("runtime: all workloads passed (client0, client1)"),
        "summary",
    );
    // The simulated GPU booted through every step of gsp's state machine, on the model's own
    // image (no firmware is prefilled here), and both clients' DRM jobs ran on it.
    r.assert(
        r.has("gsp_model: gsp_fw was empty: wrote the model's synthetic GSP 570.144 image"),
        "synthetic image",
    );
    r.assert(
        r.has("gsp: firmware: synthetic GSP image"),
        "gsp says which image",
    );
    for step in 1..=16 {
        r.assert(
            r.has(&format!("gsp: boot: {step} (")),
            &format!("boot step {step}"),
        );
    }
    r.assert(r.count("gsp: GSP up after ") == 1, "one boot");
    r.assert(r.has("gpu: GPU up: ga102 (chipset 0x172)"), "gpu server up");
    for c in ["client0", "client1"] {
        for step in [
            "GETPARAM: chipset 0x172, PCI device 0x2204",
            "VM_BIND x3",
            "EXEC (copy engine, 65536 bytes), SYNCOBJ_WAIT: signalled; destination checked",
        ] {
            r.assert(r.has(&format!("{c}: {step}")), &format!("{c}: {step}"));
        }
    }
    r.assert(!r.has("watchdog"), "nothing timed out");
}

/// The pid `runtime: started NAME (pid N)` names, once it appeared in the log.
fn wait_for_pid(log: &dyn Fn() -> String, pd: &str, after: &str) -> u32 {
    let t = Instant::now();
    loop {
        let l = log();
        if l.contains(after) {
            let line = l
                .lines()
                .find(|line| line.starts_with(&format!("runtime: started {pd} (pid")))
                .unwrap();
            return line
                .split("(pid ")
                .nth(1)
                .unwrap()
                .trim_end_matches(')')
                .parse()
                .unwrap();
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no {after:?} in:\n{l}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// gsp killed once the clients' jobs run: the supervisor restarts it, pci resets the GPU (FLR)
/// as the claim of the dead instance goes, alloc takes its buffers back, the new instance boots
/// the GPU from scratch, and the clients' jobs, failing with ENODEV meanwhile, recover.
fn product_gsp_restart() {
    let xml = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../system.xml");
    let r = run_with(&[xml.to_str().unwrap()], |_, log| {
        let gsp = wait_for_pid(log, "gsp", "client0: EXEC");
        Command::new("kill")
            .args(["-KILL", &gsp.to_string()])
            .status()
            .unwrap();
    });
    r.assert(r.code == Some(0), "the clients must recover");
    for line in [
        "supervisor: gsp faulted (killed by signal 9); restarting it",
        "gsp: up (generation 2); booting the GPU",
        "pci: 01:00.0 function-level reset; BARs restored, bus mastering off",
        "gsp_model: warning: function-level reset",
        "alloc: reclaimed 12 buffers",
        "gpu: gsp restarted: every RM object is gone; gave back ",
        " DMA buffers (0 refused); starting over",
    ] {
        r.assert(r.has(line), line);
    }
    r.assert(r.count("gsp: GSP up after ") == 2, "booted twice");
    r.assert(
        r.count("gpu: GPU up: ga102") == 2,
        "gpu-server started twice",
    );
    r.assert(!r.has("gsp: error"), "the second boot is clean");
    for c in ["client0", "client1"] {
        r.assert(r.has(&format!("{c}: workload done:")), c);
    }
}

fn kill_restarts(pd: &str) {
    let kill = format!("{pd}@300ms");
    let r = run("chain.xml", &["--kill", &kill]);
    r.assert(r.code == Some(0), "clients must finish after the restart");
    r.assert(
        r.has(&format!("runtime: --kill: sending signal 9 to {pd}")),
        "kill sent",
    );
    r.assert(
        r.has(&format!(
            "runtime: {pd} faulted (killed by signal 9); reporting to supervisor"
        )),
        "fault reported",
    );
    r.assert(
        r.has(&format!(
            "supervisor: {pd} faulted (killed by signal 9); restarting it"
        )),
        "supervisor decision",
    );
    r.assert(r.has(&format!("runtime: restarted {pd} (pid")), "restart");
    r.assert(
        r.has(&format!("restarted {pd} (pid")) && r.has("generation 2)"),
        "generation",
    );
    for c in ["client0", "client1"] {
        r.assert(r.has(&format!("{c}: workload done:")), c);
    }
}

fn memory_outside_mappings_faults() {
    let r = run("isolation.xml", &[]);
    r.assert(r.code == Some(0), "boss must see both faults as expected");
    r.assert(r.has("reader: procfs opens nothing of "), "procfs closed");
    r.assert(
        r.has("boss: child 2 faulted: vm fault at 0x40000000"),
        "reader fault",
    );
    r.assert(
        r.has("boss: child 3 faulted: vm fault at 0x50000000"),
        "writer fault",
    );
    r.assert(
        !r.has("reader: error") && !r.has("writer: error"),
        "no access succeeded",
    );
    r.assert(r.has("victim: wrote the secret"), "victim ran");
}

fn ipc_refusals() {
    let r = run("ipc.xml", &[]);
    r.assert(r.code == Some(0), "caller must pass");
    for line in [
        "caller: warning: notify on channel 9 refused: channel not declared for this PD in system.xml",
        "caller: warning: call on channel 9 refused: channel not declared for this PD in system.xml",
        "caller: warning: call on channel 2 refused: channel end has no pp right",
        "caller: warning: notify on channel 2 refused: channel end has notify=\"false\"",
        "caller: warning: Child(1) is not a child of this PD",
        "caller: reply Ok(MessageInfo(label=0x8, count=3)) registers [1, 11, 21, 99]",
    ] {
        r.assert(r.has(line), line);
    }
}

fn budget_exhaustion() {
    let r = run("budget.xml", &["--run-for", "2s"]);
    r.assert(r.code == Some(1), "a failed PD makes the run fail");
    r.assert(
        r.count("runtime: restarted crasher (pid") == 5,
        "five restarts",
    );
    r.assert(r.has("too soon; restart throttled"), "throttle");
    r.assert(r.has("supervisor: error: crasher faulted (abort) again: restart budget exhausted, marked failed"), "budget");
    r.assert(
        r.has("runtime: warning: crasher stopped for good by its parent"),
        "stopped",
    );
    r.assert(
        r.has("watcher: status page: crasher failed (generation 6, 5 restarts)"),
        "status page",
    );
    r.assert(
        r.has("runtime: error: FAILED: PDs stopped for good: crasher"),
        "exit reason",
    );
}

fn hung_and_dying_callees() {
    let r = run("watchdog.xml", &["--watchdog", "300ms"]);
    r.assert(r.code == Some(0), "caller and boss must pass");
    r.assert(
        r.has(
            "runtime: warning: watchdog: sleeper did not answer caller within 300 ms; killing it",
        ),
        "watchdog",
    );
    r.assert(r.has("caller: call to sleeper: Err(Timeout)"), "timeout");
    r.assert(
        r.has("caller: call to aborter: Err(PeerFaulted)"),
        "peer faulted",
    );
    r.assert(
        r.has("boss: child 2 faulted: missed its watchdog deadline"),
        "watchdog fault",
    );
    r.assert(r.has("boss: child 3 faulted: abort"), "abort fault");
}

fn call_waits_for_init() {
    let r = run("initwait.xml", &["--watchdog", "300ms"]);
    r.assert(r.code == Some(0), "waiter must pass");
    r.assert(r.has("waiter: call to slow: Ok(())"), "the call returned");
    r.assert(!r.has("watchdog"), "nothing was killed");
}

/// Live processes whose descriptors include a memfd of the runtime `pid`, and which PD pids exist.
fn leftovers(runtime: u32, pds: &[u32]) -> Vec<String> {
    let tag = format!("memfd:hosted-{runtime}:");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        // A zombie (state Z) is dead and holds nothing; when the runtime itself was killed, its
        // PDs are reparented to an init that may reap them late.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        if pds.contains(&pid) && state.is_some_and(|s| s != "Z") {
            found.push(format!("PD process {pid} still runs: {stat}"));
        }
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if target.to_string_lossy().starts_with(&tag) {
                    found.push(format!("pid {pid} holds {}", target.display()));
                }
            }
        }
    }
    found
}

fn no_leaks_after_shutdown() {
    let r = run("chain.xml", &[]);
    r.assert(r.code == Some(0), "clean run");
    let pids = r.pd_pids();
    r.assert(pids.len() == 9, "nine PDs started");
    let left = leftovers(r.pid, &pids);
    r.assert(left.is_empty(), &format!("leftovers: {left:?}"));
}

fn pds_die_with_the_runtime() {
    let r = run_with(
        &[tests_dir().join("chain.xml").to_str().unwrap()],
        |pid, log| {
            let t = Instant::now();
            while log().matches("runtime: started").count() < 9 {
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "PDs did not start:\n{}",
                    log()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            // SIGKILL: the runtime gets no chance to clean up; PR_SET_PDEATHSIG must.
            Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
        },
    );
    r.assert(r.code.is_none(), "runtime was killed");
    let pids = r.pd_pids();
    let left = leftovers(r.pid, &pids);
    r.assert(left.is_empty(), &format!("leftovers: {left:?}"));
}

fn bad_description() {
    let dir = std::env::temp_dir().join(format!("hosted-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let xml = dir.join("bad.xml");
    std::fs::write(
        &xml,
        "<system>\n  <protection_domain name=\"a\" priority=\"1\">\n    <program_image path=\"x\" />\n    <map mr=\"nowhere\" vaddr=\"0x1000\" />\n  </protection_domain>\n</system>\n",
    )
    .unwrap();
    let r = run_with(&[xml.to_str().unwrap()], |_, _| {});
    let _ = std::fs::remove_dir_all(&dir);
    r.assert(r.code == Some(2), "exit 2");
    r.assert(r.has("runtime: error: bad.xml:4:"), "line of the bad map");
    r.assert(r.has("nowhere"), "names the region");
    let r = run("chain.xml", &["--kill", "nobody@1s"]);
    r.assert(
        r.code == Some(2) && r.has("--kill: no PD named nobody"),
        "unknown PD in --kill",
    );
}
