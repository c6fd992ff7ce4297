//! The runtime's only contact with the OS: every `unsafe` block of the crate lives below here, each
//! with its `// SAFETY:` reason. The rest of the crate sees safe, typed wrappers.
#![allow(unsafe_code)]

pub mod clock;
pub mod eventfd;
pub mod fault;
pub mod futex;
pub mod memfd;
pub mod process;

use std::io;

/// The last OS error, for a syscall that returned -1.
fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// Turn a `-1`-on-error return value into a `Result`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(last_error())
    } else {
        Ok(ret)
    }
}
