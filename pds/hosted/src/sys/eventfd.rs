//! Eventfds: a PD's doorbell towards the runtime (restart/stop requests, verdicts). The runtime
//! polls them beside the PDs' pidfds.

use super::check;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A non-blocking eventfd.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new eventfd with counter 0.
    ///
    /// # Errors
    /// The OS error of `eventfd`.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall with valid flags.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Adopt a descriptor inherited from the runtime.
    pub fn from_owned(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// Add one to the counter (wakes a poller).
    pub fn signal(&self) {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a live u64 to an fd we own. A full counter (EAGAIN) still
        // leaves the eventfd readable, which is all a doorbell needs.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Reset the counter to 0; whether it was signalled.
    pub fn drain(&self) -> bool {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from a non-blocking fd we own.
        let n = unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        n == 8
    }

    /// The descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
