//! Debian's unmodified libdrm_nouveau (through `clients/libdrm/test_nouveau.c`, built against the
//! system's libdrm-dev) with `libdrm_interposer.so` preloaded, against a loopback slot: the
//! interposer, the slot protocol, hosted's endpoint and the shim, end to end, in one `cargo test`.
//! Skipped (with a line saying so) where libdrm-dev or gcc is missing; CI installs them
//! (`cargo xtask libdrm-demo` names the packages).
mod loopback;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `libdrm_interposer.so`, built next to this test's `deps/` directory.
fn preload() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let so = dir.join("libdrm_interposer.so");
    assert!(so.exists(), "{} was not built", so.display());
    so
}

/// The test program, or `None` when this machine cannot build it.
fn compile() -> Option<PathBuf> {
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libdrm_nouveau", "libdrm"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let out = std::env::temp_dir().join(format!("test_nouveau-{}", std::process::id()));
    let ok = Command::new("gcc")
        .args(["-O2", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(root().join("clients/libdrm/test_nouveau.c"))
        .args(String::from_utf8_lossy(&flags.stdout).split_whitespace())
        .status()
        .ok()?
        .success();
    assert!(ok, "test_nouveau.c does not compile");
    Some(out)
}

#[test]
fn libdrm_nouveau_runs_unmodified_against_a_slot() {
    let Some(program) = compile() else {
        eprintln!("SKIPPED: no libdrm_nouveau (pkg-config) or gcc here");
        return;
    };
    let lb = loopback::Loopback::start("libdrm");
    let mut child = Command::new(&program)
        .env("LD_PRELOAD", preload())
        .env("HOSTED_DRM_SOCKET", &lb.socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the program hung");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let _ = std::fs::remove_file(&program);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.lines().last(), Some("PASS"));
    for step in [
        "libdrm took the NVIF path",
        "chipset 0x172",
        "pattern intact",
        "GEM_INFO on closed handle",
    ] {
        assert!(text.contains(step), "missing: {step}");
    }
    // The program closed its file itself; nothing was left for the slot to clean up.
    let (session, left) = lb.finish();
    assert_eq!((session.closed, left), (0, 0));
    assert!(session.calls > 10);
}
