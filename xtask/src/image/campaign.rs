//! The fault campaign on the seL4 image (`cargo xtask faults --board B`): [`prepare`] builds the
//! campaign's program images once (feature `fault-injection` in the glue, the campaign client as
//! `client.elf`, no demo fault) in `images/out/<board>/campaign`; then the campaign driver
//! (`mono`'s `faults --sel4-runner`) runs one [`session`] per boot: `xtask sel4-session`, the
//! session runner, which writes the session's plan into a copy of the images, runs the Microkit
//! tool on them, boots QEMU (`-icount shift=0`: plan times are guest nanoseconds from boot) and
//! copies the serial console to its stderr, which the driver judges like a hosted session's log.
//! The session ends once every workload PD printed its verdict, QEMU exits, `--timeout` (wall
//! clock) passes, or the driver closes the runner's stdin (it stops a session early that way: a
//! signal would leave QEMU running).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::{board_system, build_system, elf, Options, Prerequisites};

/// What [`prepare`] came to.
#[derive(Debug)]
pub enum Prepared {
    /// The images are built; the runner needs these arguments (`--board B --config C`).
    Ready(Vec<String>),
    /// This machine cannot run the campaign: why (the SDK, a toolchain or QEMU is missing).
    Skipped(String),
}

/// `images/out/<board>/campaign`.
fn campaign_dir(opts: &Options) -> PathBuf {
    opts.out_dir().join("campaign")
}

fn options(args: &[&str]) -> Result<Options, String> {
    let mut opts = Options::parse(args)?;
    opts.fault = None;
    opts.campaign = true;
    Ok(opts)
}

/// Build the campaign's images for `args` (`--board B [--config C]`).
///
/// # Errors
/// Bad arguments, a release config (no console to judge), or a failed build.
pub fn prepare(args: &[&str]) -> Result<Prepared, String> {
    let opts = options(args)?;
    if opts.config == "release" {
        return Err("a release kernel prints nothing (no debug console): nothing to judge".into());
    }
    let prereq = match Prerequisites::find(&opts) {
        Ok(p) => p,
        Err(reason) => return Ok(Prepared::Skipped(reason)),
    };
    let qemu = opts.board.qemu_binary();
    if super::boot::which(qemu).is_none() {
        return Ok(Prepared::Skipped(format!("{qemu} is not installed")));
    }
    build_system(
        &opts,
        &prereq,
        board_system(opts.board)?,
        &campaign_dir(&opts),
    )?;
    Ok(Prepared::Ready(vec![
        "--board".into(),
        opts.board.name.into(),
        "--config".into(),
        opts.config.clone(),
    ]))
}

/// The session runner's arguments: `--board B --config C [--watchdog D] --timeout NMS SYSTEM`
/// (the hosted runtime's shape; the watchdog has no meaning on seL4 and is ignored).
fn session_args<'a>(args: &[&'a str]) -> Result<(Vec<&'a str>, Duration), String> {
    let (mut image_args, mut timeout) = (Vec::new(), None);
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "--board" | "--config" => {
                image_args.push(a);
                image_args.push(it.next().ok_or(format!("{a} needs a value"))?);
            }
            "--watchdog" => {
                it.next();
            }
            "--timeout" => {
                let v = it.next().ok_or("--timeout needs a value")?;
                let ms = v
                    .strip_suffix("ms")
                    .and_then(|n| n.parse().ok())
                    .ok_or(format!("--timeout {v}: expected N ms"))?;
                timeout = Some(Duration::from_millis(ms));
            }
            _ if !a.starts_with('-') => {}
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    Ok((image_args, timeout.ok_or("--timeout is required")?))
}

/// A session's copy of the campaign's images with `plan` written in; returns its directory.
fn stage(opts: &Options, plan: &str) -> Result<PathBuf, String> {
    let from = campaign_dir(opts);
    let dir = from.join(format!("session-{}", std::process::id()));
    let images = dir.join("elf");
    std::fs::create_dir_all(&images).map_err(|e| format!("{}: {e}", images.display()))?;
    let listing = std::fs::read_dir(from.join("elf")).map_err(|e| {
        format!(
            "no campaign images in {} ({e}): run `cargo xtask faults --board {}`",
            from.display(),
            opts.board.name
        )
    })?;
    for entry in listing {
        let src = entry.map_err(|e| e.to_string())?.path();
        let Some(name) = src.file_name() else {
            continue;
        };
        let dst = images.join(name);
        let _ = std::fs::remove_file(&dst);
        // The firmware pack is large and never patched: link it.
        let linked =
            src.extension().is_none_or(|x| x != "elf") && std::fs::hard_link(&src, &dst).is_ok();
        if !linked {
            std::fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", dst.display()))?;
        }
    }
    elf::write_plan(&images, plan)?;
    std::fs::copy(from.join("system.system"), dir.join("system.system"))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Boot the staged image and copy its console to stderr until every workload PD printed its
/// verdict, QEMU exits, or `deadline` passes.
fn boot(
    opts: &Options,
    prereq: &Prerequisites,
    dir: &Path,
    deadline: Instant,
) -> Result<(), String> {
    let system = board_system(opts.board)?;
    let mut waiting: Vec<String> = system
        .pds
        .iter()
        .filter(|pd| {
            pd_programs::find(pd_programs::PROGRAMS, &pd.program_image)
                .is_some_and(|p| p.role == pd_programs::Role::Workload)
        })
        .map(|pd| format!("{}: verdict ", pd.name))
        .collect();
    let (mut child, lines) = super::boot::start_qemu(opts, prereq, &dir.join("loader.img"), None)?;
    let (closed, stdin_closed) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = closed.send(());
    });
    let poll = Duration::from_millis(100);
    while !waiting.is_empty() && Instant::now() < deadline && stdin_closed.try_recv().is_err() {
        match lines.recv_timeout(poll) {
            Ok(line) => {
                waiting.retain(|w| !line.contains(w.as_str()));
                eprintln!("{line}");
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

/// `xtask sel4-session ARGS` (run by the campaign driver, not by hand): one campaign session on
/// the seL4 image with the plan in `PD_FAULTS`.
pub fn session(args: &[&str]) -> ExitCode {
    let started = Instant::now();
    let result = session_args(args).and_then(|(image_args, timeout)| {
        let opts = options(&image_args)?;
        let prereq = Prerequisites::find(&opts)?;
        let plan = std::env::var("PD_FAULTS").unwrap_or_default();
        let dir = stage(&opts, &plan)?;
        let tool = super::microkit(&opts, &prereq, &dir, &dir.join("elf")).output();
        let result = match tool {
            Ok(o) if o.status.success() => boot(&opts, &prereq, &dir, started + timeout),
            Ok(o) => Err(format!(
                "the Microkit tool failed:\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!("cannot run the Microkit tool: {e}")),
        };
        let _ = std::fs::remove_dir_all(&dir);
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sel4-session: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runner_takes_the_hosted_runtimes_arguments() {
        let (image, timeout) = session_args(&[
            "--board",
            "qemu_virt_aarch64",
            "--config",
            "debug",
            "--watchdog",
            "1000000us",
            "--timeout",
            "5300ms",
            "system.xml",
        ])
        .unwrap();
        assert_eq!(image, ["--board", "qemu_virt_aarch64", "--config", "debug"]);
        assert_eq!(timeout, Duration::from_millis(5300));
        assert!(session_args(&["--board", "qemu_virt_aarch64"]).is_err());
        assert!(session_args(&["--timeout", "5s"]).is_err());
        assert!(session_args(&["--frobnicate", "--timeout", "1ms"]).is_err());
    }
}
