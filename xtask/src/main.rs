//! `cargo xtask`: the project's one front end (Hubris-style). Each subcommand's doc is its help.
use std::process::{Command, ExitCode};

mod bench;
mod faults;
mod firmware;
mod image;
mod libdrm;

const USAGE: &str = "\
usage: cargo xtask <command>

  run [OPTIONS]       start the hosted system from system.xml and run the demo clients; exits 0
                      when both pass. --kill PD@TIME[:SIG] kills a PD mid-run (e.g. gpu@300ms)
                      to show supervision; `cargo xtask run --help` lists every option. The GPU
                      is simulated; it boots NVIDIA's GSP firmware when .ci/fetch-firmware got it,
                      else the model's synthetic image
  test                run the whole test suite (what CI runs)
  faults [--runs N] [--seed S] [OPTIONS]
                      fault-injection campaign, isolated vs monolithic; writes
                      reports/isolation/ and ends with `faults runs N isolated-survival P% ...`
                      --board B: against the seL4 image in QEMU instead (isolated only;
                      reports/isolation-sel4/; SKIPPED without the SDK)
  bench NAME          run a benchmark; ends with `ratio NAME VALUE goal OP TARGET` lines
                      names: hop pci dma fw gspq ioctl sel4
  libdrm-demo [--kill-gpu]
                      run Debian's unmodified libdrm_nouveau (clients/libdrm/test_nouveau.c) against
                      the hosted system through the LD_PRELOAD interposer; --kill-gpu adds a pass
                      that kills gpu mid-run (error from libdrm, then recovery)
  lspci FILE...       decode saved `lspci -xxx`/`-xxxx` dumps into the PCI server's device table
  image [--board B] [--config debug|release]
                      build the seL4 Microkit image images/out/B/loader.img (needs MICROKIT_SDK)
  qemu [--board B] [--config C] [-- QEMU ARGS]
                      build and boot it in QEMU; exits with the demo's verdict
  test-image [--board B] [--config C]
                      boot it and check the console step by step (SKIPPED without the SDK)
                      boards: qemu_virt_aarch64 (default), x86_64_generic
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match args.first().map(String::as_str) {
        Some("run") => {
            // The real GSP firmware when fetched, else the model's synthetic image.
            let mut extra = firmware::prefill_args(&workspace_root());
            extra.extend(rest.iter().map(|s| s.to_string()));
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            cargo(
                &[
                    "run",
                    "--release",
                    "-p",
                    "hosted",
                    "--bin",
                    "hosted",
                    "--",
                    "system.xml",
                ],
                &extra,
            )
        }
        Some("test") => test(),
        Some("bench") => bench::run(&rest),
        Some("faults") => faults::run(&rest),
        Some("libdrm-demo") => libdrm::demo(&rest),
        // Decode saved lspci dumps with the PCI server's own probe (pci-server/src/bin/lspci.rs).
        Some("lspci") => {
            // Paths are relative to where the user stands; cargo runs from the workspace root.
            let files: Vec<String> = rest
                .iter()
                .map(|p| {
                    std::fs::canonicalize(p)
                        .map_or_else(|_| p.to_string(), |a| a.display().to_string())
                })
                .collect();
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            cargo(
                &["run", "--quiet", "-p", "pci-server", "--bin", "lspci", "--"],
                &files,
            )
        }
        Some("image") => image::image(&rest),
        Some("qemu") => image::qemu(&rest),
        Some("test-image") => image::test_image(&rest),
        // The seL4 campaign's session runner (`faults --board B` starts it, once per boot).
        Some("sel4-session") => image::campaign_session(&rest),
        _ => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Run `cargo ARGS EXTRA` from the workspace root, passing its exit status through.
fn cargo(args: &[&str], extra: &[&str]) -> ExitCode {
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(args)
        .args(extra)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: cannot run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The whole test suite: every crate's unit and integration tests, the fault campaign's tests, the
/// libdrm demo, then the seL4 image test on every board (each prints SKIPPED where the Microkit
/// SDK or a toolchain with rust-src is absent).
fn test() -> ExitCode {
    // The interposer's test preloads the cdylib, which `cargo test` does not produce by itself.
    let so = cargo(&["build", "-p", "interposer"], &[]);
    if so != ExitCode::SUCCESS {
        return so;
    }
    // Every failing test binary is reported, not just the first.
    let unit = cargo(&["test", "--workspace", "--no-fail-fast"], &[]);
    if unit != ExitCode::SUCCESS {
        return unit;
    }
    // The fault campaign's tests: their feature is off in the workspace build.
    let campaign = faults::test();
    if campaign != ExitCode::SUCCESS {
        return campaign;
    }
    // Debian's unmodified libdrm_nouveau against the running hosted system, with gpu killed
    // mid-run in its second pass.
    let libdrm = libdrm::demo(&["--kill-gpu"]);
    if libdrm != ExitCode::SUCCESS {
        return libdrm;
    }
    for board in image::BOARDS {
        let result = image::test_image(&["--board", board.name]);
        if result != ExitCode::SUCCESS {
            return result;
        }
    }
    ExitCode::SUCCESS
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}
