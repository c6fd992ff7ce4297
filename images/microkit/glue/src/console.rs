//! `log` to the kernel's debug console (`seL4_DebugPutChar`), one line per record, each starting
//! with the PD's name.
//!
//! Server code already writes `"{pd}: ..."` itself in many places (pd-core's defaults do), so the
//! prefix is added only when the line does not start with it. A release kernel has no debug
//! console: there the log goes to a UART where the image maps one into the PD (`uart`), and is
//! silent elsewhere.
//!
//! The console is written a character per system call, so a PD preempted mid-line interleaves
//! with the next one. A PD only loses the CPU mid-line to a PD of its own priority (round robin
//! at the end of its budget); such a PD first yields, so that it starts the line with a fresh
//! budget, which a line takes a fraction of. (A serial server PD, as in sDDF, would make lines
//! atomic for every PD; system.xml has none yet.)

use core::fmt::{self, Write};

/// How much of a line is buffered before it is written; longer lines are written in pieces.
const LINE: usize = 256;

struct Console;

static CONSOLE: Console = Console;

/// Install the logger (once; a restarted PD finds it installed already).
pub fn init() {
    if log::set_logger(&CONSOLE).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

impl log::Log for Console {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let tag = match record.level() {
            log::Level::Error => Some("ERROR"),
            log::Level::Warn => Some("WARN"),
            _ => None,
        };
        if crate::system::shares_priority() {
            sel4::r#yield();
        }
        let mut line = Line::new(sel4_microkit::pd_name().unwrap_or("?"), tag);
        let _ = write!(line, "{}", record.args());
        line.finish();
    }

    fn flush(&self) {}
}

/// One log line being assembled: the first [`LINE`] bytes decide whether the PD name is missing.
struct Line<'a> {
    pd: &'a str,
    buf: [u8; LINE],
    len: usize,
    started: bool,
    tag: Option<&'static str>,
}

impl<'a> Line<'a> {
    /// A line of PD `pd`, marked with its level (`pd: [WARN] ...`) when `tag` is given.
    fn new(pd: &'a str, tag: Option<&'static str>) -> Self {
        Self {
            pd,
            buf: [0; LINE],
            len: 0,
            started: false,
            tag,
        }
    }

    fn flush(&mut self) {
        let text = self.buf.get(..self.len).unwrap_or_default();
        if !self.started {
            self.started = true;
            let named = text.strip_prefix(self.pd.as_bytes());
            let rest = match named.and_then(|r| r.strip_prefix(b":")) {
                Some(rest) => rest,
                None => text,
            };
            put(self.pd.as_bytes());
            put(b":");
            if let Some(tag) = self.tag {
                put(b" [");
                put(tag.as_bytes());
                put(b"]");
            }
            if !rest.starts_with(b" ") {
                put(b" ");
            }
            put(rest);
        } else {
            put(text);
        }
        self.len = 0;
    }

    fn finish(mut self) {
        self.flush();
        put(b"\n");
    }
}

impl Write for Line<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE {
                self.flush();
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Write raw bytes to the debug console.
#[sel4::sel4_cfg(PRINTING)]
pub fn put(bytes: &[u8]) {
    for &b in bytes {
        sel4::debug_put_char(b);
    }
}

/// A release kernel has no debug console: the PD's UART, if it has one.
#[sel4::sel4_cfg(not(PRINTING))]
pub fn put(bytes: &[u8]) {
    crate::uart::put(bytes);
}
