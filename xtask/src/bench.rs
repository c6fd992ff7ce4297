//! `cargo xtask bench NAME`: each benchmark is a `harness = false` bench target of the crate it
//! measures, built with optimisations, and ends with its `ratio` lines (see `benchkit`); `sel4`
//! is the seL4 image's own (`image::bench`).
use std::process::ExitCode;

/// (name, package, bench target, what it measures)
const BENCHES: &[(&str, &str, &str, &str)] = &[
    (
        "hop",
        "hosted",
        "hop",
        "PPC round trip and notify->wake of the hosted runtime vs raw futex ping-pong",
    ),
    (
        "pci",
        "pci-server",
        "pci",
        "config accesses and time of a full 256-bus scan vs the minimum",
    ),
    (
        "dma",
        "alloc-server",
        "dma",
        "buddy alloc/free rate and fragmentation vs first-fit",
    ),
    (
        "fw",
        "gsp",
        "fw",
        "parse the real GSP image and build its radix3 map vs memcpy",
    ),
    (
        "gspq",
        "gsp-model",
        "gspq",
        "GSP queue round trips and 256 KiB bulk vs memcpy",
    ),
    (
        "ioctl",
        "pd-bench",
        "ioctl",
        "GETPARAM and EXEC-64 through isolated PDs vs monolithic",
    ),
];

pub fn run(args: &[&str]) -> ExitCode {
    let Some(name) = args.first() else {
        eprintln!("usage: cargo xtask bench NAME\n");
        for (n, _, _, what) in BENCHES {
            eprintln!("  {n:8} {what}");
        }
        eprintln!(
            "  {:8} instructions per PPC, notify and ioctl on seL4 in QEMU (--board B)",
            "sel4"
        );
        return ExitCode::from(2);
    };
    if *name == "sel4" {
        return super::image::bench(args.get(1..).unwrap_or(&[]));
    }
    match BENCHES.iter().find(|(n, ..)| n == name) {
        Some((_, pkg, target, _)) => super::cargo(
            &["bench", "-p", pkg, "--bench", target, "--"],
            args.get(1..).unwrap_or(&[]),
        ),
        None => {
            eprintln!("xtask: no benchmark named {name}");
            ExitCode::from(2)
        }
    }
}
