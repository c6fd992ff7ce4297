//! The hosted Microkit runtime: every protection domain of `system.xml` runs as its own Linux
//! process, and the runtime enforces the description the way seL4 does on hardware.
//!
//! - **Memory**: each memory region is one memfd, mapped only into the PDs that map it, at the
//!   declared address (`MAP_FIXED_NOREPLACE`) with the declared rights (a read-only map comes from
//!   a read-only descriptor, so it cannot be `mprotect`ed writable). A PD starts from a fresh
//!   `exec` (no inherited mappings), keeps no descriptor but its doorbell, and is undumpable, so it
//!   cannot reach another PD's memory through procfs either. Touching anything else is a SIGSEGV.
//! - **Channels**: each declared channel is one shared page mapped only into its two end PDs
//!   (`channel`): coalescing notification bits and one PPC slot, with spin-then-futex wake-ups
//!   (`wait`). A PD has no page for an undeclared channel; `notify`/`ppcall` without the right
//!   return `IpcError` and are logged with the PD's name.
//! - **Faults**: a PD's death (signal, abort, exit, or the PPC watchdog) is classified
//!   (`fault`) and delivered to its parent's `Handler::fault`; callers blocked on it get
//!   `IpcError::PeerFaulted`. The parent's `restart_child` starts a fresh process with the same
//!   regions (their contents kept, as on seL4), `stop_child` makes calls to it fail from then on.
//! - **Lifetime**: the runtime kills and reaps every PD on exit, and each PD dies with the runtime
//!   (`PR_SET_PDEATHSIG`); memfds die with their last descriptor.
//!
//! One binary is both: [`main`] runs the runtime, or, given `--pd NAME ...` by the runtime, one
//! PD (with the program table the binary was built with: `pd_programs::PROGRAMS` for `hosted`,
//! test tables in the tests and benches).
//!
//! Trust: the PDs are untrusted with respect to each other. A PD can scribble over the channel
//! pages it shares with a peer, which only confuses that channel (the pages hold nothing but
//! atomics, every value read from them is checked); it cannot reach pages it was not given.
#![deny(unsafe_code)]

pub mod boot;
pub mod channel;
pub mod external;
pub mod fault;
pub mod logger;
pub mod pages;
pub mod pd;
pub mod runtime;
pub mod sys;
pub mod wait;

use pd_programs::Program;
use std::process::ExitCode;

/// The binary's `main` for a program table: [`run`] with the process's arguments.
pub fn main(programs: &[Program]) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(programs, &args)
}

/// A PD when `args` (without the program name) start with `--pd`, else the runtime
/// (`[OPTIONS] SYSTEM.XML`). The PDs run `/proc/self/exe`, so the calling binary must call this
/// with the same table when it sees `--pd`.
pub fn run(programs: &[Program], args: &[String]) -> ExitCode {
    if args.first().map(String::as_str) == Some("--pd") {
        pd::main(programs, args)
    } else {
        runtime::main(programs, args)
    }
}
