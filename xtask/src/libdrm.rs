//! `cargo xtask libdrm-demo [--kill-gpu]`: Debian's unmodified libdrm_nouveau as a client of the
//! hosted system.
//!
//! Builds the interposer (`libdrm_interposer.so`) and the hosted runtime, compiles
//! `clients/libdrm/test_nouveau.c` against the system's libdrm (`pkg-config libdrm_nouveau`),
//! starts the system with `--keep-running` so its external client slot (`client2`) stays up, waits
//! until the demo clients have passed (the stack is up), and runs the program with
//! `LD_PRELOAD=libdrm_interposer.so HOSTED_DRM_SOCKET=<slot socket>`.
//!
//! With `--kill-gpu` a second pass runs the program in `--until-error` mode and kills the `gpu` PD
//! once the program says `ready`: libdrm must report an error (not hang), and the program must get
//! a working device again after the supervisor restarts `gpu`.
//!
//! Exit status: 0 when every pass printed PASS and the system was still running at the end.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// What CI must install (Debian): the libdrm headers and pkg-config file, the library under test,
/// and a C compiler.
pub const APT_PACKAGES: &str = "libdrm-dev libdrm-nouveau2 pkg-config gcc";
/// The external client slot of system.xml.
const SLOT: &str = "client2";
/// How long the system may take to come up (GSP boot included).
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one pass of the program may run before it counts as hung.
const PASS_TIMEOUT: Duration = Duration::from_secs(60);
/// The program's own limit for seeing the error and recovering (`--until-error`).
const RECOVERY_S: &str = "20";

/// Run the demo; `args` are the arguments after `libdrm-demo`.
pub fn demo(args: &[&str]) -> ExitCode {
    let kill_gpu = match args {
        [] => false,
        ["--kill-gpu"] => true,
        _ => {
            eprintln!("usage: cargo xtask libdrm-demo [--kill-gpu]");
            return ExitCode::from(2);
        }
    };
    match run(kill_gpu) {
        Ok(()) => {
            println!("libdrm-demo: PASS");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("libdrm-demo: FAIL: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(kill_gpu: bool) -> Result<(), String> {
    let root = crate::workspace_root();
    let out = root.join("target/libdrm-demo");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let program = compile(&root, &out)?;
    step("building the interposer and the hosted runtime");
    if crate::cargo(
        &["build", "--release", "-p", "interposer", "-p", "hosted"],
        &[],
    ) != ExitCode::SUCCESS
    {
        return Err("cargo build failed".into());
    }
    let preload = root.join("target/release/libdrm_interposer.so");
    let sockets = out.join("slots");
    let mut system = System::start(&root, &sockets)?;
    let socket = sockets.join(format!("{SLOT}.sock"));
    let result = (|| {
        system.wait_until_up()?;
        let env = [
            ("LD_PRELOAD", preload.display().to_string()),
            ("HOSTED_DRM_SOCKET", socket.display().to_string()),
        ];
        step("pass 1: open, chipset, BO create/map/write/unmap/map/check, error paths");
        passes(&program, &[], &env, |_| Ok(()))?;
        if kill_gpu {
            step("pass 2: kill gpu while the program runs; expect an error, then recovery");
            passes(&program, &["--until-error", RECOVERY_S], &env, |line| {
                if line == "ready" {
                    system.kill("gpu")?;
                }
                Ok(())
            })?;
        }
        system.still_running()
    })();
    system.stop();
    result
}

fn step(what: &str) {
    println!("libdrm-demo: {what}");
}

/// Compile the C program against the system's libdrm_nouveau.
fn compile(root: &Path, out: &Path) -> Result<PathBuf, String> {
    step("compiling clients/libdrm/test_nouveau.c against libdrm_nouveau (pkg-config)");
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libdrm_nouveau", "libdrm"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .ok_or_else(|| {
            format!("pkg-config finds no libdrm_nouveau; install: apt-get install {APT_PACKAGES}")
        })?;
    let flags = String::from_utf8_lossy(&flags.stdout).to_string();
    let exe = out.join("test_nouveau");
    let status = Command::new("gcc")
        .args(["-O2", "-Wall", "-Wextra", "-o"])
        .arg(&exe)
        .arg(root.join("clients/libdrm/test_nouveau.c"))
        .args(flags.split_whitespace())
        .status()
        .map_err(|e| format!("gcc: {e}; install: apt-get install {APT_PACKAGES}"))?;
    if !status.success() {
        return Err("gcc failed".into());
    }
    Ok(exe)
}

/// Lines of a child's output, read on a thread (and echoed on stderr at once with `echo` in front,
/// when given).
fn lines(r: impl std::io::Read + Send + 'static, echo: Option<&'static str>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if let Some(prefix) = echo {
                eprintln!("{prefix}{line}");
            }
            if tx.send(line).is_err() && echo.is_none() {
                break;
            }
        }
    });
    rx
}

/// Run the program once with `args` and `env`, echoing its output and handing each line to
/// `on_line`; it must end within [`PASS_TIMEOUT`] with PASS.
fn passes(
    program: &Path,
    args: &[&str],
    env: &[(&str, String)],
    mut on_line: impl FnMut(&str) -> Result<(), String>,
) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    let out = lines(child.stdout.take().ok_or("no stdout")?, None);
    let deadline = Instant::now() + PASS_TIMEOUT;
    let mut last = String::new();
    loop {
        match out.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                println!("    {line}");
                on_line(&line)?;
                last = line;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the program hung (no end after {} s)",
                    PASS_TIMEOUT.as_secs()
                ));
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() && last == "PASS" {
        Ok(())
    } else {
        Err(format!("the program failed ({status})"))
    }
}

/// The hosted system, running `system.xml` with its external slot's socket in `sockets`.
struct System {
    child: Child,
    log: Receiver<String>,
    /// PD name → pid, from the runtime's `started`/`restarted` lines.
    pids: Vec<(String, u32)>,
}

impl System {
    fn start(root: &Path, sockets: &Path) -> Result<Self, String> {
        step("starting the hosted system (system.xml, --keep-running)");
        let mut child = Command::new(root.join("target/release/hosted"))
            .current_dir(root)
            .arg("--keep-running")
            .arg("--external-dir")
            .arg(sockets)
            .arg("system.xml")
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the hosted runtime: {e}"))?;
        let log = lines(child.stderr.take().ok_or("no stderr")?, Some("  | "));
        Ok(Self {
            child,
            log,
            pids: Vec::new(),
        })
    }

    /// Echo the runtime's output so far (indented) and note PD pids.
    fn drain(&mut self, wait: Duration) -> Option<String> {
        let line = self.log.recv_timeout(wait).ok()?;
        // "runtime: started gpu (pid 123)", "runtime: restarted gpu (pid 456, generation 2)"
        let pid = line
            .split_once("started ")
            .and_then(|(_, rest)| rest.split_once(" (pid "))
            .and_then(|(pd, rest)| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                Some((pd.to_owned(), digits.parse().ok()?))
            });
        if let Some((pd, pid)) = pid {
            self.pids.retain(|(p, _)| *p != pd);
            self.pids.push((pd, pid));
        }
        Some(line)
    }

    /// Wait until every demo client reported pass: the stack answers end to end.
    fn wait_until_up(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let mut passed = Vec::new();
        while Instant::now() < deadline {
            if let Some(line) = self.drain(Duration::from_millis(100)) {
                if let Some(pd) = line
                    .strip_prefix("runtime: ")
                    .and_then(|l| l.strip_suffix(" reported pass"))
                {
                    passed.push(pd.to_owned());
                }
                if line.contains("reported FAIL") || line.contains("FAILED") {
                    return Err(format!("the system failed to come up: {line}"));
                }
            }
            if passed.iter().any(|p| p == "client0") && passed.iter().any(|p| p == "client1") {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the hosted runtime exited ({status})"));
            }
        }
        Err(format!(
            "the system was not up after {} s",
            BOOT_TIMEOUT.as_secs()
        ))
    }

    /// SIGKILL PD `pd` (the supervisor restarts it).
    fn kill(&mut self, pd: &str) -> Result<(), String> {
        while self.drain(Duration::from_millis(10)).is_some() {}
        let pid = self
            .pids
            .iter()
            .find(|(p, _)| p == pd)
            .map(|(_, pid)| *pid)
            .ok_or_else(|| format!("no pid known for {pd}"))?;
        step(&format!("killing {pd} (pid {pid})"));
        signal(pid, "KILL")
    }

    fn still_running(&mut self) -> Result<(), String> {
        while self.drain(Duration::from_millis(10)).is_some() {}
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("the hosted runtime exited ({status})")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// SIGTERM the runtime (it stops every PD), SIGKILL if it lingers.
    fn stop(&mut self) {
        step("stopping the hosted system");
        let _ = signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            while self.drain(Duration::from_millis(10)).is_some() {}
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill -SIG pid`.
fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!("kill -{sig} {pid} failed"))
    }
}
