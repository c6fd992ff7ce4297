//! One session: start a composition with a session's plan, collect its log, read the events the
//! campaign judges by.
//!
//! Log lines come from the hosted logger in both compositions: `pd: [level: ]message` from each
//! PD process and `runtime: ...` from the runtime (isolated), or `mono: [level: ][pd: ]message`
//! from the one process (monolithic). The lines of different PD processes reach the pipe in the
//! order they were written, which is the order the campaign relies on to attribute a PD's death
//! to the fault before it.
//!
//! On seL4 (the isolated composition in QEMU, [`Sel4Runner`]) the lines are the serial console's:
//! `pd: [WARN] message` from the glue's logger, the supervisor's `X faulted (...)` for a restarted
//! child, and the Microkit monitor's `MON|ERROR: faulting PD: X` for a PD without a parent.

use super::schedule::Config;
use super::Binaries;
use pd_core::faults::PLAN_ENV;
use std::io::{self, BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Which composition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Composition {
    /// One process per PD, `system.xml` enforced, faults reported to the supervisor.
    Isolated,
    /// Every PD in one process.
    Monolithic,
}

impl Composition {
    /// Its name in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Isolated => "isolated",
            Self::Monolithic => "monolithic",
        }
    }
}

/// How the composition's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// It outlived its deadline and the campaign killed it.
    Overdue,
    /// The campaign stopped it early: a run had failed, so the rest of the session could only be
    /// blamed for its damage.
    Stopped,
}

/// What a session printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// The log, in order.
    pub lines: Vec<String>,
    /// The end.
    pub exit: Exit,
    /// Wall-clock time from start to end.
    pub wall: Duration,
}

/// The slack after a session's end before the campaign gives up on it.
const GRACE: Duration = Duration::from_secs(10);

/// The seL4 image's session runner (`xtask sel4-session`): started like the hosted runtime (same
/// options, the plan in [`PLAN_ENV`]), it boots the image in QEMU with the plan patched in and
/// copies the console to its stderr.
#[derive(Debug, Clone)]
pub struct Sel4Runner {
    /// The program (xtask).
    pub program: std::path::PathBuf,
    /// Its leading arguments (`sel4-session --board B --config C`).
    pub args: Vec<String>,
}

/// A seL4 session's wall-clock allowance besides its guest time: the Microkit tool and QEMU's
/// boot (the loader copies ~60 MiB, the initialiser clears ~300 MiB) on a loaded 2-core host.
pub const SEL4_BOOT_WALL: Duration = Duration::from_secs(180);
/// Wall-clock seconds a seL4 session may take per guest second (`-icount shift=0` under TCG).
pub const SEL4_SLOWDOWN: u32 = 20;

/// Ask the process to stop, and kill it if it has not after a while: the hosted runtime (a
/// SIGTERM, then it stops its PDs and cleans up, a second) or the seL4 runner (its stdin closed,
/// then it stops QEMU, five seconds; a signal would leave QEMU running).
fn stop(child: &mut Child, stdin: Option<ChildStdin>) {
    let patience = match stdin {
        Some(pipe) => {
            drop(pipe);
            Duration::from_secs(5)
        }
        None => {
            hosted::sys::process::kill(child.id(), libc::SIGTERM);
            Duration::from_secs(1)
        }
    };
    let asked = Instant::now();
    while asked.elapsed() < patience {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Run `comp` with `plan`, whose workload ends `end_ns` after the start; `stop_early` sees the
/// log so far whenever it grew, and ends the session when it says so.
///
/// # Errors
/// When the binary cannot be started.
pub fn run(
    bins: &Binaries,
    comp: Composition,
    plan: &str,
    end_ns: u64,
    config: &Config,
    stop_early: &dyn Fn(&[String]) -> bool,
) -> io::Result<Output> {
    let (exe, mut args) = match (comp, &bins.sel4) {
        (Composition::Isolated, Some(r)) => (&r.program, r.args.clone()),
        (Composition::Isolated, None) => (&bins.isolated, Vec::new()),
        (Composition::Monolithic, _) => (&bins.mono, vec!["--campaign".to_owned()]),
    };
    let guest = Duration::from_nanos(end_ns) + Duration::from_secs(5);
    let budget = match (comp, &bins.sel4) {
        (Composition::Isolated, Some(_)) => SEL4_BOOT_WALL + guest * SEL4_SLOWDOWN,
        _ => guest,
    };
    args.extend([
        "--watchdog".to_owned(),
        format!("{}us", config.watchdog_ns / 1_000),
        "--timeout".to_owned(),
        format!("{}ms", budget.as_millis()),
    ]);
    args.push(bins.system.display().to_string());
    let start = Instant::now();
    let sel4 = comp == Composition::Isolated && bins.sel4.is_some();
    let mut child = Command::new(exe)
        .args(&args)
        .env(PLAN_ENV, plan)
        .env("HOSTED_LOG", "info")
        .stdin(if sel4 { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take();
    let stderr = child.stderr.take().ok_or(io::ErrorKind::BrokenPipe)?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = budget + GRACE;
    let mut lines = Vec::new();
    let exit = loop {
        let before = lines.len();
        lines.extend(rx.try_iter());
        if let Some(status) = child.try_wait()? {
            break match (status.code(), status.signal()) {
                (Some(c), _) => Exit::Code(c),
                (None, Some(s)) => Exit::Signal(s),
                (None, None) => Exit::Code(-1),
            };
        }
        if lines.len() > before && stop_early(&lines) {
            stop(&mut child, stdin.take());
            break Exit::Stopped;
        }
        if start.elapsed() > deadline {
            stop(&mut child, stdin.take());
            break Exit::Overdue;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    let _ = reader.join();
    lines.extend(rx.try_iter());
    Ok(Output { lines, exit, wall })
}

/// One client's tally of one window (`client::Client` logs it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowLine {
    /// The window (0: warm-up; `i`: the session's `i`th fault).
    pub index: usize,
    /// Exchanges served.
    pub ok: u64,
    /// Clean errors.
    pub errors: u64,
    /// Wrong answers (detected).
    pub wrong: u64,
    /// Canary changes.
    pub corrupt: u64,
    /// When service came back after the window's last failure (µs after the epoch; 0: no
    /// failure, or it did not come back).
    pub recovered_at_us: u64,
    /// The exchange before the window was served.
    pub healthy_before: bool,
    /// The window's last exchange was served.
    pub ok_at_end: bool,
}

/// What the campaign reads from a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A PD fired a plan entry: its action (plan syntax) and when, in µs after the epoch.
    Injected {
        /// The PD.
        pd: String,
        /// The action.
        action: String,
        /// When.
        at_us: u64,
    },
    /// A client closed a window.
    Window {
        /// The client.
        client: String,
        /// Its tally.
        line: WindowLine,
    },
    /// A client's first job was served, in µs after the epoch.
    FirstServed {
        /// The client.
        client: String,
        /// When.
        at_us: u64,
    },
    /// A client finished the workload.
    Done {
        /// The client.
        client: String,
    },
    /// The runtime saw a PD die.
    Faulted {
        /// The PD.
        pd: String,
        /// How (the runtime's words).
        how: String,
    },
    /// A PD reported what it holds.
    Usage {
        /// The PD.
        pd: String,
        /// DMA pages.
        dma_pages: u64,
        /// VRAM pages.
        vram_pages: u64,
    },
    /// The composition gave up (`FAILED: ...`), was hung, or panicked: why.
    Fatal(String),
}

/// Level tags after the speaker: the hosted logger's (`pd: warning: ...`)...
const LEVELS: [&str; 4] = ["warning", "error", "debug", "trace"];
/// ...and the seL4 glue's (`pd: [WARN] ...`).
const SEL4_LEVELS: [&str; 2] = ["[WARN]", "[ERROR]"];

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `(speaker, message)`: the PD (or `runtime`, `mono`) a line is from, and its message without
/// the level tag. In the monolithic composition the PD's name follows `mono: [level: ]`.
fn speaker(line: &str) -> Option<(&str, &str)> {
    let (mut who, mut rest) = line.split_once(": ")?;
    let tagged = rest
        .split_once(": ")
        .filter(|(level, _)| LEVELS.contains(level))
        .or_else(|| {
            rest.split_once(' ')
                .filter(|(level, _)| SEL4_LEVELS.contains(level))
        });
    if let Some((_, tail)) = tagged {
        rest = tail;
    }
    if who == "mono" {
        let known = |pd: &str| pd_programs::sys::system::PDS.iter().any(|d| d.name == pd);
        if let Some((pd, tail)) = rest.split_once(": ").filter(|(pd, _)| known(pd)) {
            (who, rest) = (pd, tail);
        }
    }
    is_name(who).then_some((who, rest))
}

/// `key value key value ...` pairs of a message, by key.
fn field(words: &[&str], key: &str) -> Option<u64> {
    let i = words.iter().position(|w| *w == key)?;
    words.get(i + 1)?.parse().ok()
}

/// The event a log line reports, if any.
pub fn parse(line: &str) -> Option<Event> {
    // seL4: the Microkit monitor caught the fault of a PD without a parent (the GSP model).
    if let Some(pd) = line.strip_prefix("MON|ERROR: faulting PD: ") {
        return Some(Event::Faulted {
            pd: pd.trim().to_owned(),
            how: "caught by the Microkit monitor".to_owned(),
        });
    }
    let (who, msg) = speaker(line)?;
    if let Some(rest) = msg.strip_prefix("fault injected: ") {
        let (action, tail) = rest.split_once(" at +")?;
        let at_us = tail.split_once("us")?.0.parse().ok()?;
        return Some(Event::Injected {
            pd: who.to_owned(),
            action: action.to_owned(),
            at_us,
        });
    }
    if let Some(rest) = msg.strip_prefix("first job served at +") {
        return Some(Event::FirstServed {
            client: who.to_owned(),
            at_us: rest.strip_suffix("us")?.parse().ok()?,
        });
    }
    let words: Vec<&str> = msg.split_whitespace().collect();
    match words.first().copied() {
        Some("window") => {
            let index = words.get(1)?.parse().ok()?;
            return Some(Event::Window {
                client: who.to_owned(),
                line: WindowLine {
                    index,
                    ok: field(&words, "ok")?,
                    errors: field(&words, "errors")?,
                    wrong: field(&words, "wrong")?,
                    corrupt: field(&words, "corrupt")?,
                    recovered_at_us: field(&words, "recovered-at-us")?,
                    healthy_before: field(&words, "healthy-before")? == 1,
                    ok_at_end: field(&words, "ok-at-end")? == 1,
                },
            });
        }
        Some("usage") => {
            return Some(Event::Usage {
                pd: who.to_owned(),
                dma_pages: field(&words, "dma-pages")?,
                vram_pages: field(&words, "vram-pages")?,
            })
        }
        Some("campaign") if words.get(1) == Some(&"done:") => {
            return Some(Event::Done {
                client: who.to_owned(),
            })
        }
        _ => {}
    }
    // The seL4 image has no runtime that sees deaths: the supervisor's restart line says it.
    let supervisor = pd_programs::sys::supervisor::NAME;
    if who == "runtime" || (who == supervisor && msg.contains(" faulted (")) {
        // `runtime: gpu faulted (abort); reporting to supervisor`, and PDs without a parent:
        // `runtime: error: gsp_model died (...) and has no parent to restart it`.
        for verb in [" faulted (", " died ("] {
            if let Some((pd, rest)) = msg.split_once(verb) {
                if !pd.contains(' ') {
                    let how = rest.split_once(')').map_or(rest, |(h, _)| h);
                    return Some(Event::Faulted {
                        pd: pd.to_owned(),
                        how: how.to_owned(),
                    });
                }
            }
        }
    }
    if let Some(why) = msg.strip_prefix("FAILED: ") {
        return Some(Event::Fatal(why.to_owned()));
    }
    if who == "mono" && (msg.starts_with("watchdog: ") || msg.starts_with("panicked at ")) {
        return Some(Event::Fatal(msg.to_owned()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_both_compositions_parse_to_the_same_events() {
        let injected = Event::Injected {
            pd: "gpu".into(),
            action: "wild-write=0x10".into(),
            at_us: 401_806,
        };
        assert_eq!(
            parse("gpu: warning: fault injected: wild-write=0x10 at +401806us (entry 0)"),
            Some(injected.clone())
        );
        assert_eq!(
            parse("mono: warning: gpu: fault injected: wild-write=0x10 at +401806us (entry 3)"),
            Some(injected)
        );
        let w = parse("mono: client1: window 2 ok 47 errors 3 wrong 1 corrupt 0 recovered-at-us 99480 healthy-before 1 ok-at-end 0").unwrap();
        assert_eq!(
            w,
            Event::Window {
                client: "client1".into(),
                line: WindowLine {
                    index: 2,
                    ok: 47,
                    errors: 3,
                    wrong: 1,
                    corrupt: 0,
                    recovered_at_us: 99480,
                    healthy_before: true,
                    ok_at_end: false
                }
            }
        );
        assert_eq!(
            parse("runtime: gpu faulted (missed its watchdog deadline); reporting to supervisor"),
            Some(Event::Faulted {
                pd: "gpu".into(),
                how: "missed its watchdog deadline".into()
            })
        );
        assert_eq!(
            parse("runtime: error: gsp_model died (abort) and has no parent to restart it"),
            Some(Event::Faulted {
                pd: "gsp_model".into(),
                how: "abort".into()
            })
        );
        assert_eq!(
            parse("alloc: usage dma-pages 12 vram-pages 0"),
            Some(Event::Usage {
                pd: "alloc".into(),
                dma_pages: 12,
                vram_pages: 0
            })
        );
        assert_eq!(
            parse("mono: alloc: usage dma-pages 1 vram-pages 2")
                .map(|e| matches!(e, Event::Usage { .. })),
            Some(true)
        );
        assert_eq!(
            parse("client0: campaign done: 3 served, 0 corrupted buffers, last exchange Served"),
            Some(Event::Done {
                client: "client0".into()
            })
        );
        assert_eq!(
            parse("runtime: error: FAILED: workload client0 died (abort)"),
            Some(Event::Fatal("workload client0 died (abort)".into()))
        );
        assert!(matches!(
            parse("mono: error: watchdog: no event finished for 250 ms: hung"),
            Some(Event::Fatal(_))
        ));
        assert!(matches!(
            parse("mono: error: panicked at pds/core/src/faults.rs:1:2: gpu: injected panic"),
            Some(Event::Fatal(_))
        ));
        assert_eq!(parse("mono: error: gpu: something"), None);
        assert_eq!(
            parse("mono: client1: first job served at +181234us"),
            Some(Event::FirstServed {
                client: "client1".into(),
                at_us: 181_234
            })
        );
        assert_eq!(
            parse("gpu: up (placeholder echo relay: 4 downstream)"),
            None
        );
        assert_eq!(parse("client0: window x ok 1"), None);
        // The seL4 console.
        assert_eq!(
            parse("gpu: [WARN] fault injected: wild-write=0x10 at +401806us (entry 0)"),
            Some(Event::Injected {
                pd: "gpu".into(),
                action: "wild-write=0x10".into(),
                at_us: 401_806
            })
        );
        assert_eq!(
            parse("supervisor: gpu faulted (vm fault at 0x10); restarting it"),
            Some(Event::Faulted {
                pd: "gpu".into(),
                how: "vm fault at 0x10".into()
            })
        );
        assert_eq!(
            parse("supervisor: [ERROR] drm faulted (abort) again: restart budget exhausted, marked failed"),
            Some(Event::Faulted {
                pd: "drm".into(),
                how: "abort".into()
            })
        );
        assert_eq!(
            parse("MON|ERROR: faulting PD: gsp_model"),
            Some(Event::Faulted {
                pd: "gsp_model".into(),
                how: "caught by the Microkit monitor".into()
            })
        );
        assert_eq!(parse("gsp: [WARN] gpu faulted (abort)"), None);
        assert_eq!(parse(""), None);
    }
}
