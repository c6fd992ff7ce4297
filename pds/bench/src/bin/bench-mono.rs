//! `bench-mono SYSTEM.XML`: every PD in this one process (`mono`'s composition) running the bench
//! client.
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    hosted::logger::init("mono");
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: bench-mono SYSTEM.XML");
        return ExitCode::from(2);
    };
    let path = Path::new(&path);
    let system = match sysxml::load(path) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = mono::layout::map(&system, path.parent().unwrap_or(Path::new("."))) {
        log::error!("mono: {e}");
        return ExitCode::from(2);
    }
    let config = mono::Config {
        timeout_ns: 120_000_000_000,
        watchdog_ns: 10_000_000_000,
        plan: None,
    };
    match mono::platform::run(&pd_bench::programs(), &config) {
        mono::Outcome::Success => ExitCode::SUCCESS,
        mono::Outcome::Failure(why) => {
            log::error!("mono: {why}");
            ExitCode::FAILURE
        }
    }
}
