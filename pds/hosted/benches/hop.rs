//! `cargo xtask bench hop`: the hosted runtime's PD-to-PD round trips against a raw baseline of
//! the same pattern between the same two processes, in one run, interleaved.
//!
//! - **PPC**: `pinger` calls `ponger` with 4 message registers and `ponger` answers each +1
//!   (`Kernel::ppcall` through the channel page, the callee's event loop and `protected`).
//!   Raw: the same 4 words and a sequence word over a plain shared page (region `raw`), with the
//!   same spin-then-futex waits (`hosted::wait`), no runtime code in between.
//! - **notify**: `pinger` notifies `ponger`, whose `notified` notifies back; one round trip is two
//!   notify->wake hops through both event loops. Raw: the same ping-pong of two sequence words.
//!
//! The raw rounds run between the very processes of the runtime rounds (the ponger enters its raw
//! loop from a handler), so both see the same CPU placement, which on a shared 2-vCPU VM decides
//! more than anything else. Rounds alternate; the medians are compared. The pinger PD measures and
//! logs its medians; this process starts the runtime, collects them and prints the verdict lines.

use hosted::wait::{self, Spin};
use pd_core::{Channel, ChannelSet, Handler, Kernel, MessageInfo, Verdict};
use pd_programs::{program, Program, Role};
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const ROUNDS: usize = 301;
const OPS: u64 = 300;
const PONGER: Channel = Channel::new(1);
/// Where hop.xml maps region `raw` in both PDs.
const RAW_VADDR: usize = 0x4000_0000;

const PROGRAMS: &[Program] = &[
    program!("b-pinger.elf" => pinger, Role::Workload),
    program!("b-ponger.elf" => ponger),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--pd") => hosted::run(PROGRAMS, &args),
        Some("--runtime") => hosted::run(PROGRAMS, args.get(1..).unwrap_or_default()),
        _ => bench(),
    }
}

/// Start the runtime on hop.xml, collect the pinger's medians, print the verdict lines.
fn bench() -> ExitCode {
    let xml = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/hop.xml");
    let mut child = Command::new("/proc/self/exe")
        .args(["--runtime", xml, "--timeout", "120s"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the runtime");
    let mut medians = Vec::new();
    let mut log = String::new();
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    for line in stderr.lines().map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("pinger: result ") {
            let v: Vec<&str> = rest.split_whitespace().collect();
            if let [name, subject, baseline] = v[..] {
                let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
                medians.push((name.to_owned(), num(subject), num(baseline)));
            }
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = child.wait().expect("wait for the runtime");
    if !status.success() || medians.len() != 2 {
        eprint!("{log}");
        eprintln!("hop: the benchmark system failed ({status})");
        return ExitCode::FAILURE;
    }
    println!("hop: {ROUNDS} interleaved rounds of {OPS} round trips each, medians per round trip");
    let mut goals = Vec::new();
    for (name, subject, baseline) in &medians {
        println!(
            "  {name:6}  runtime {:>10}   raw shared memory {:>10}",
            benchkit::fmt_ns(*subject),
            benchkit::fmt_ns(*baseline)
        );
        let goal = if name == "ppc" { "hop" } else { "notify" };
        goals.push(benchkit::Goal::new(
            goal,
            subject / baseline,
            benchkit::Op::AtMost,
            1.3,
        ));
    }
    benchkit::report(&goals);
    ExitCode::SUCCESS
}

// ---- the raw baseline ----

/// Region `raw`: the pinger's request word, the ponger's reply word (sequence numbers, with the
/// runtime's WAITING bit protocol), the round's mode, and 4 words of message.
#[repr(C)]
struct RawPage {
    request: AtomicU32,
    reply: AtomicU32,
    mode: AtomicU32,
    words: [AtomicU64; 4],
}

/// `mode`: the pinger asks for a raw round of calls (with words) or of notifications...
const MODE_CALLS: u32 = 1;
const MODE_NOTES: u32 = 2;
/// ...and the ponger says it is in its raw loop.
const MODE_READY: u32 = 3;
/// The sequence part of a request or reply word.
const SEQ: u32 = (1 << 30) - 1;

#[allow(unsafe_code)]
fn raw_page() -> &'static RawPage {
    // SAFETY: hop.xml maps region `raw` (4 KiB, rw) at RAW_VADDR in both PDs, and the runtime keeps
    // it mapped for the PD's life; the page is zeroed at start and holds only atomics, which the
    // other PD may change at any time.
    unsafe { &*(RAW_VADDR as *const RawPage) }
}

/// Publish the next sequence number in `word` and wake its waiter if it sleeps.
fn bump(word: &AtomicU32) {
    wait::publish(word, ((word.load(Ordering::Relaxed) & SEQ) + 1) & SEQ);
}

/// Wait until `word`'s sequence moves past `seen`; the new sequence.
fn next(word: &AtomicU32, seen: u32) -> u32 {
    wait::wait_word(word, Spin::default(), None, |v| v & SEQ != seen).unwrap_or(seen) & SEQ
}

/// The ponger's raw loop: answer `OPS` requests of a round (+1 on each word for calls).
fn raw_pong(p: &RawPage, calls: bool) {
    let mut seen = p.request.load(Ordering::Acquire) & SEQ;
    wait::publish(&p.mode, MODE_READY);
    for _ in 0..OPS {
        seen = next(&p.request, seen);
        if calls {
            for w in &p.words {
                w.store(w.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
        }
        bump(&p.reply);
    }
    wait::publish(&p.mode, 0);
}

/// One raw round from the pinger's side: start the ponger's loop, then time `OPS` round trips.
fn raw_round(k: &mut dyn Kernel, calls: bool) -> f64 {
    let p = raw_page();
    p.mode.store(
        if calls { MODE_CALLS } else { MODE_NOTES },
        Ordering::SeqCst,
    );
    let _ = k.notify(PONGER);
    wait::wait_word(&p.mode, Spin::default(), None, |m| m == MODE_READY);
    let per_op = benchkit::time_per_op(OPS, || {
        for i in 0..OPS {
            let seen = p.reply.load(Ordering::Acquire) & SEQ;
            if calls {
                for (j, w) in p.words.iter().enumerate() {
                    w.store(i + j as u64, Ordering::Relaxed);
                }
            }
            bump(&p.request);
            next(&p.reply, seen);
            if calls {
                std::hint::black_box(
                    p.words
                        .iter()
                        .map(|w| w.load(Ordering::Relaxed))
                        .sum::<u64>(),
                );
            }
        }
    });
    wait::wait_word(&p.mode, Spin::default(), None, |m| m == 0);
    per_op
}

// ---- the PDs ----

/// The measuring PD: PPC rounds in `init`, notify rounds driven by `notified`.
struct Pinger {
    round: usize,
    count: u64,
    started: u64,
    runtime: Vec<f64>,
    baseline: Vec<f64>,
}

fn pinger(k: &mut dyn Kernel) -> Pinger {
    let (mut runtime, mut baseline, mut failed) = (Vec::new(), Vec::new(), 0u64);
    for round in 0..=ROUNDS {
        let t = benchkit::time_per_op(OPS, || {
            for i in 0..OPS {
                let mrs = k.mrs();
                for j in 0..4 {
                    mrs.set(j, i + j as u64);
                }
                let r = k.ppcall(PONGER, MessageInfo::new(1, 4));
                failed += u64::from(r.is_err() || k.mrs().get(3) != i + 4);
            }
        });
        let b = raw_round(k, true);
        if round > 0 {
            // Round 0 warms both up.
            runtime.push(t);
            baseline.push(b);
        }
    }
    if failed > 0 {
        log::error!("{failed} calls failed or came back wrong");
        let _ = k.report_verdict(Verdict::Fail);
    }
    let (s, b) = (
        benchkit::median(&mut runtime),
        benchkit::median(&mut baseline),
    );
    log::info!("result ppc {s:.1} {b:.1}");
    let started = k.now_ns();
    let _ = k.notify(PONGER);
    Pinger {
        round: 0,
        count: 0,
        started,
        runtime: Vec::new(),
        baseline: Vec::new(),
    }
}

impl Handler for Pinger {
    fn notified(&mut self, k: &mut dyn Kernel, _: ChannelSet) {
        self.count += 1;
        if self.count < OPS {
            let _ = k.notify(PONGER);
            return;
        }
        // CAST: a round's nanoseconds and OPS fit f64 exactly enough for a median.
        self.runtime
            .push(k.now_ns().saturating_sub(self.started) as f64 / OPS as f64);
        self.baseline.push(raw_round(k, false));
        self.round += 1;
        if self.round <= ROUNDS {
            self.count = 0;
            self.started = k.now_ns();
            let _ = k.notify(PONGER);
            return;
        }
        // Round 0 warmed both up.
        let (s, b) = (
            benchkit::median(&mut self.runtime[1..]),
            benchkit::median(&mut self.baseline[1..]),
        );
        log::info!("result notify {s:.1} {b:.1}");
        let _ = k.report_verdict(Verdict::Pass);
    }
}

/// Answers calls (+1 per register) and notifications (by notifying back), or runs a raw round
/// when the pinger asked for one.
struct Ponger;

impl Handler for Ponger {
    fn protected(&mut self, k: &mut dyn Kernel, _: Channel, msg: MessageInfo) -> MessageInfo {
        let mrs = k.mrs();
        for i in 0..msg.count() {
            mrs.set(i, mrs.get(i) + 1);
        }
        MessageInfo::new(0, msg.count())
    }

    fn notified(&mut self, k: &mut dyn Kernel, _: ChannelSet) {
        // The pinger may be waiting on `mode` (its WAITING bit set): compare the value only.
        match raw_page().mode.load(Ordering::Acquire) & !hosted::pages::WAITING {
            MODE_CALLS => raw_pong(raw_page(), true),
            MODE_NOTES => raw_pong(raw_page(), false),
            _ => {
                let _ = k.notify(PONGER);
            }
        }
    }
}

fn ponger(_: &mut dyn Kernel) -> Ponger {
    Ponger
}
