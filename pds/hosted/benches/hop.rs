//! `cargo xtask bench hop`: the hosted runtime's PD-to-PD round trips against a raw baseline of
//! the same pattern between two plain processes, in one run, interleaved.
//!
//! - **PPC**: `pinger` calls `ponger` with 4 message registers, `ponger` answers each +1
//!   (`Kernel::ppcall` through the channel page, the callee's event loop and `protected`). Raw:
//!   the same 4 words and a sequence word over a shared memfd page between `pinger` and a plain
//!   process it starts, with the same spin-then-futex waits (`hosted::wait`).
//! - **notify**: `pinger` notifies `ponger`, whose `notified` notifies back; one round trip is two
//!   notify->wake hops through both event loops. Raw: the same ping-pong of two doorbell words.
//!
//! Rounds alternate runtime and raw; the medians of the rounds are compared. The pinger PD does
//! the measuring (it is the only place both patterns run on equal terms) and logs its medians;
//! this process starts the runtime, collects them, and prints the verdict lines.

use hosted::sys::memfd::{Mapping, Memfd, Prot};
use hosted::wait::{self, Spin};
use pd_core::{Channel, ChannelSet, Handler, Kernel, MessageInfo, Verdict};
use pd_programs::{program, Program, Role};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const ROUNDS: usize = 21;
const OPS: u64 = 4000;
const PONGER: Channel = Channel::new(1);

const PROGRAMS: &[Program] = &[
    program!("b-pinger.elf" => pinger, Role::Workload),
    program!("b-ponger.elf" => ponger),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--pd") => hosted::run(PROGRAMS, &args),
        Some("--runtime") => hosted::run(PROGRAMS, args.get(1..).unwrap_or_default()),
        Some("--raw-pong") => raw_pong(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(-1)),
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
    for line in BufReader::new(child.stderr.take().expect("stderr"))
        .lines()
        .map_while(Result::ok)
    {
        if let Some(rest) = line.strip_prefix("pinger: result ") {
            let v: Vec<&str> = rest.split_whitespace().collect();
            if let [name, subject, baseline] = v[..] {
                medians.push((
                    name.to_owned(),
                    subject.parse::<f64>().unwrap_or(0.0),
                    baseline.parse::<f64>().unwrap_or(0.0),
                ));
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
            "  {name:6}  runtime {:>10}   raw processes {:>10}",
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

/// The raw page: a request and a reply sequence word (each a doorbell) and 4 words of message.
#[repr(C)]
struct RawPage {
    request: AtomicU32,
    reply: AtomicU32,
    words: [AtomicU64; 4],
}

// SAFETY: only atomics, #[repr(C)].
#[allow(unsafe_code)]
unsafe impl hosted::sys::memfd::SharedPage for RawPage {}

/// Marks a request that carries words (a call); without it the request is a notification.
const WORDS: u32 = 1 << 30;
/// The sequence part of a request or reply word.
const SEQ: u32 = WORDS - 1;

/// The raw partner: answer requests until killed, with the runtime's wait protocol
/// (`wait::wait_word` spins, then announces WAITING and sleeps; the writer wakes it only then).
fn raw_pong(fd: i32) -> ExitCode {
    let Ok(owned) = hosted::sys::process::adopt_fd(fd) else {
        return ExitCode::FAILURE;
    };
    let Ok(map) = Mapping::new(std::os::fd::AsFd::as_fd(&owned), 4096, Prot::RW, None) else {
        return ExitCode::FAILURE;
    };
    let Some(p) = map.page::<RawPage>() else {
        return ExitCode::FAILURE;
    };
    let mut seen = 0;
    loop {
        let Some(v) = wait::wait_word(&p.request, Spin::default(), None, |v| v != seen) else {
            continue;
        };
        seen = v;
        if v & WORDS != 0 {
            for w in &p.words {
                w.store(w.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
        }
        publish(&p.reply, 0);
    }
}

/// Publish the next sequence number in `word` (with `flags`) and wake its waiter if it sleeps.
fn publish(word: &AtomicU32, flags: u32) {
    let next = ((word.load(Ordering::Relaxed) & SEQ) + 1) & SEQ;
    let old = word.swap(next | flags, Ordering::SeqCst);
    if old & hosted::pages::WAITING != 0 {
        hosted::sys::futex::wake(word);
    }
}

/// One raw round trip from the pinger's side: (write the words,) publish, wait for the answer.
fn raw_round_trip(p: &RawPage, with_words: bool) {
    let before = p.reply.load(Ordering::Acquire) & SEQ;
    if with_words {
        for (i, w) in p.words.iter().enumerate() {
            w.store(i as u64, Ordering::Relaxed);
        }
    }
    publish(&p.request, if with_words { WORDS } else { 0 });
    wait::wait_word(&p.reply, Spin::default(), None, |v| v & SEQ != before);
    if with_words {
        std::hint::black_box(
            p.words
                .iter()
                .map(|w| w.load(Ordering::Relaxed))
                .sum::<u64>(),
        );
    }
}

// ---- the PDs ----

/// The measuring PD: PPC rounds in `init`, notify rounds driven by `notified`.
struct Pinger {
    raw: &'static RawPage,
    partner: std::process::Child,
    round: usize,
    count: u64,
    started: u64,
    runtime: Vec<f64>,
    baseline: Vec<f64>,
}

fn pinger(k: &mut dyn Kernel) -> Pinger {
    let fd = Memfd::create("hop-raw", 4096).expect("raw page");
    let map = Mapping::new(fd.fd(), 4096, Prot::RW, None)
        .expect("raw page")
        .leak();
    let raw = map.page::<RawPage>().expect("raw page");
    let raw_fd = fd.fd().as_raw_fd();
    let partner = hosted::sys::process::spawn(
        "/proc/self/exe",
        &["--raw-pong".into(), raw_fd.to_string()],
        &[raw_fd],
    )
    .expect("start the raw partner");
    // PPC: interleaved rounds (benchkit alternates which goes first).
    let mut failed = 0u64;
    let c = benchkit::compare(
        ROUNDS,
        OPS,
        || {
            for _ in 0..OPS {
                for i in 0..4 {
                    k.mrs().set(i, i as u64);
                }
                let r = k.ppcall(PONGER, MessageInfo::new(1, 4));
                failed += u64::from(r.is_err() || k.mrs().get(3) != 4);
            }
        },
        || {
            for _ in 0..OPS {
                raw_round_trip(raw, true);
            }
        },
    );
    if failed > 0 {
        log::error!("{failed} calls failed or came back wrong");
        let _ = k.report_verdict(Verdict::Fail);
    }
    log::info!("result ppc {:.1} {:.1}", c.subject, c.baseline);
    let mut p = Pinger {
        raw,
        partner,
        round: 0,
        count: 0,
        started: 0,
        runtime: Vec::new(),
        baseline: Vec::new(),
    };
    p.started = k.now_ns();
    let _ = k.notify(PONGER);
    p
}

impl Handler for Pinger {
    fn notified(&mut self, k: &mut dyn Kernel, _: ChannelSet) {
        self.count += 1;
        if self.count < OPS {
            let _ = k.notify(PONGER);
            return;
        }
        self.runtime
            .push((k.now_ns() - self.started) as f64 / OPS as f64);
        let raw = self.raw;
        self.baseline.push(benchkit::time_per_op(OPS, || {
            for _ in 0..OPS {
                raw_round_trip(raw, false);
            }
        }));
        self.round += 1;
        if self.round < ROUNDS {
            self.count = 0;
            self.started = k.now_ns();
            let _ = k.notify(PONGER);
            return;
        }
        let (s, b) = (
            benchkit::median(&mut self.runtime),
            benchkit::median(&mut self.baseline),
        );
        log::info!("result notify {s:.1} {b:.1}");
        let _ = self.partner.kill();
        let _ = self.partner.wait();
        let _ = k.report_verdict(Verdict::Pass);
    }
}

/// Answers calls (+1 per register) and notifications (by notifying back).
struct Ponger;

impl Handler for Ponger {
    fn protected(&mut self, k: &mut dyn Kernel, _: Channel, msg: MessageInfo) -> MessageInfo {
        for i in 0..msg.count() {
            let v = k.mrs().get(i);
            k.mrs().set(i, v + 1);
        }
        MessageInfo::new(0, msg.count())
    }

    fn notified(&mut self, k: &mut dyn Kernel, _: ChannelSet) {
        let _ = k.notify(PONGER);
    }
}

fn ponger(_: &mut dyn Kernel) -> Ponger {
    Ponger
}
