//! The `log` backend of every process of a run: one line per record on stderr, written with a
//! single `write` so lines of different PDs never interleave mid-line, each starting with the
//! process's name: `gpu: message`, or `gpu: warning: message` for levels other than info. The
//! runtime's own lines start with `runtime:`.
//!
//! PD code may or may not start its messages with its own name (pd-core's default handlers do);
//! the name is never printed twice. `HOSTED_LOG=debug` (or `trace`, `warn`, `error`) sets the level.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

#[derive(Debug)]
struct Logger {
    name: String,
}

/// The line for one record: the name, a level tag unless info, and the message without a repeated
/// name prefix.
fn line(name: &str, level: Level, message: &str) -> String {
    let message = message
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(message);
    let tag = match level {
        Level::Info => "",
        Level::Error => "error: ",
        Level::Warn => "warning: ",
        Level::Debug => "debug: ",
        Level::Trace => "trace: ",
    };
    format!("{name}: {tag}{message}\n")
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let text = line(&self.name, record.level(), &record.args().to_string());
            // One write per line; a failing stderr has nowhere to report to.
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Install the backend for this process, named `name`. A second call changes nothing.
pub fn init(name: &str) {
    let level = match std::env::var("HOSTED_LOG").as_deref() {
        Ok("error") => LevelFilter::Error,
        Ok("warn") => LevelFilter::Warn,
        Ok("debug") => LevelFilter::Debug,
        Ok("trace") => LevelFilter::Trace,
        _ => LevelFilter::Info,
    };
    let logger = Box::leak(Box::new(Logger {
        name: name.to_owned(),
    }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_name_once_and_a_level_tag() {
        assert_eq!(line("gpu", Level::Info, "up"), "gpu: up\n");
        assert_eq!(line("gpu", Level::Info, "gpu: up"), "gpu: up\n");
        assert_eq!(line("gpu", Level::Warn, "gpu: odd"), "gpu: warning: odd\n");
        assert_eq!(
            line("gpu", Level::Error, "gpus: x"),
            "gpu: error: gpus: x\n"
        );
    }
}
