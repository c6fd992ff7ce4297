//! `cargo xtask bench ioctl`: DRM ioctls through the isolated PDs (the hosted runtime, one process
//! per PD) and through the monolithic composition (one process, PPC = function call), with the
//! same code and the same client (`pd_programs::bench_client`), interleaved in one run. Each
//! system is booted, its bench client times GETPARAM, GEM_NEW, VM_BIND and EXEC with 1 and 64
//! pushes (each waited on), and logs `bench: NAME NS ns/op`; the harness takes medians.
use benchkit::{median, Goal, Op};
use std::collections::BTreeMap;
use std::process::Command;

const ROUNDS: usize = 5;
const METRICS: [&str; 6] = ["getparam", "setup", "gem_new", "vm_bind", "exec1", "exec64"];

fn run(bin: &str, system: &str) -> BTreeMap<String, f64> {
    let out = Command::new(bin).arg(system).output().expect("spawn");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{bin} failed:\n{text}");
    text.lines()
        .filter_map(|l| {
            let rest = l.split("bench: ").nth(1)?;
            let mut w = rest.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect()
}

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let system = format!("{root}/system.xml");
    let bins = [
        ("isolated", env!("CARGO_BIN_EXE_bench-isolated")),
        ("monolithic", env!("CARGO_BIN_EXE_bench-mono")),
    ];
    let mut samples: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for round in 0..ROUNDS {
        let order: Vec<_> = if round % 2 == 0 {
            bins.iter().collect()
        } else {
            bins.iter().rev().collect()
        };
        for (name, bin) in order {
            let m = run(bin, &system);
            for metric in METRICS {
                if let Some(v) = m.get(metric) {
                    samples.entry((name, metric)).or_default().push(*v);
                }
            }
        }
    }
    println!(
        "{:10} {:>14} {:>14} {:>8}",
        "ioctl", "isolated ns", "monolithic ns", "mono/iso"
    );
    let mut med = BTreeMap::new();
    for metric in METRICS {
        let iso = median(samples.entry(("isolated", metric)).or_default());
        let mono = median(samples.entry(("monolithic", metric)).or_default());
        println!("{metric:10} {iso:>14.0} {mono:>14.0} {:>8.3}", mono / iso);
        med.insert(metric, (iso, mono));
    }
    let (iso, mono) = med["getparam"];
    println!(
        "getparam round trips/s: isolated {:.0}, monolithic {:.0}",
        1e9 / iso,
        1e9 / mono
    );
    let (iso, mono) = med["exec64"];
    println!(
        "EXEC-64 per second: isolated {:.0}, monolithic {:.0}",
        1e9 / iso,
        1e9 / mono
    );
    let ok = benchkit::report(&[Goal::new("exec64", mono / iso, Op::AtLeast, 0.9)]);
    std::process::exit(if ok { 0 } else { 1 });
}
