//! The product system's pci and alloc PDs brought up by the hosted runtime (the `hosted` binary on
//! `system.xml`): the `lspci`-style table shows the model's GPU with every BAR inside `pci_mmio`,
//! alloc's pools sit at the runtime's fake physical bases, and when the supervisor restarts gsp
//! both servers take back what its old instance held and say so.

use std::path::Path;
use std::process::Command;

fn system_xml() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../system.xml")
}

/// Run the system for a few seconds, killing gsp half a second in; the whole log.
fn run_killing_gsp() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hosted"))
        .arg(system_xml())
        .args(["--timeout", "3s", "--kill", "gsp@500ms"])
        .env("HOSTED_LOG", "info")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `0x...` numbers in `s`, in order.
fn hex_numbers(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|w| u64::from_str_radix(w.strip_prefix("0x")?, 16).ok())
        .collect()
}

#[test]
fn pci_and_alloc_come_up_on_system_xml_and_clean_up_after_a_gsp_restart() {
    let log = run_killing_gsp();
    let has = |s: &str| log.lines().any(|l| l.contains(s));
    let line = |s: &str| {
        log.lines()
            .find(|l| l.contains(s))
            .unwrap_or_else(|| panic!("no line with {s:?} in\n{log}"))
    };

    // pci: the window is pci_mmio (hosted: its fake base, moved below 4 GiB).
    let sys = sysxml::load(&system_xml()).unwrap();
    let fake = sys.fake_phys_base("pci_mmio");
    let size = sys
        .regions
        .iter()
        .find(|r| r.name == "pci_mmio")
        .unwrap()
        .size;
    let window = hex_numbers(line("pci: BAR window ["));
    assert_eq!(window[..2], [fake % (1 << 32), fake % (1 << 32) + size - 1]);
    // The GPU of the model's chip, behind the model's root port, every memory BAR placed inside.
    assert!(has(
        "pci: 01:00.0  10de:2204  0300  VGA compatible controller  [NVIDIA GA102"
    ));
    assert!(has("pci: 01:00.1  10de:1aef  0403  Audio device"));
    let bars: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("pci: ") && (l.contains(" mem32 ") || l.contains(" pref64 ")))
        .collect();
    assert_eq!(
        bars.len(),
        4,
        "GPU BAR0, BAR1, BAR3 and the audio BAR0:\n{log}"
    );
    for bar in bars {
        let addr = hex_numbers(bar)[0];
        assert!(
            (window[0]..=window[1]).contains(&addr),
            "{bar} outside the window"
        );
    }

    // alloc: one line per pool, each at its region's fake physical base, and the audit.
    for pool in [
        "gsp_dma",
        "gpu_dma",
        "client0_dma",
        "client1_dma",
        "client2_dma",
    ] {
        let l = line(&format!("alloc: pool {pool} "));
        assert_eq!(hex_numbers(l)[0], sys.fake_phys_base(pool), "{l}");
    }
    assert!(has("alloc: usage dma-pages 0 vram-pages 0"));
    assert!(has("alloc: audit ok live-buffers"));

    // gsp restarted: both servers reclaim for its old instance.
    assert!(has(
        "supervisor: gsp faulted (killed by signal 9); restarting it"
    ));
    assert!(has("alloc: gsp instance 1 ended; reclaiming"));
    assert!(has("alloc: client gsp charged-buffers 0 held-buffers 0"));
    // gsp claimed the GPU to boot it: the claim goes, and the GPU is reset for the next holder.
    assert!(has("pci: gsp instance 1 ended: 1 claim(s) released"));
    assert!(has(
        "pci: 01:00.0 function-level reset; BARs restored, bus mastering off"
    ));
    assert!(!has("alloc: audit FAILED"), "{log}");
}
