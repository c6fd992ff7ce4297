//! Processes: starting a PD with exactly the descriptors it was given, watching it through a pidfd,
//! signalling it, and the process-wide hardening every PD applies to itself.

use super::check;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// Start `exe ARGS` as a child that inherits only `keep` (plus stdout and stderr), in its own
/// process group (a terminal's Ctrl-C reaches the runtime, which then stops everyone), and that is
/// killed if the runtime dies (`PR_SET_PDEATHSIG`).
///
/// # Errors
/// The OS error of fork or exec.
pub fn spawn(exe: &str, args: &[String], keep: &[RawFd]) -> io::Result<Child> {
    let keep = keep.to_vec();
    // SAFETY: getpid has no preconditions.
    let runtime = unsafe { libc::getpid() };
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0);
    let hook = move || -> io::Result<()> {
        // SAFETY: only async-signal-safe calls (close_range, fcntl, prctl, getppid) between fork
        // and exec; `keep` was allocated before the fork and is only read.
        unsafe {
            check(libc::close_range(
                3,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC as i32,
            ))?;
            for &fd in &keep {
                check(libc::fcntl(fd, libc::F_SETFD, 0))?;
            }
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
            // The runtime may have died before the prctl: then nobody would ever kill us.
            if libc::getppid() != runtime {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe calls (see above).
    unsafe { cmd.pre_exec(hook) };
    cmd.spawn()
}

/// A pidfd: becomes readable when the process exits.
#[derive(Debug)]
pub struct PidFd(OwnedFd);

impl PidFd {
    /// Open a pidfd for our child `pid` (not yet reaped, so the pid cannot have been reused).
    ///
    /// # Errors
    /// The OS error of `pidfd_open`.
    pub fn open(pid: u32) -> io::Result<Self> {
        // SAFETY: plain syscall; pid_t and flags are passed by value.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(super::last_error());
        }
        // CAST: a descriptor returned by the kernel fits c_int.
        // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody else.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    /// The descriptor, for `poll`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }
}

/// Send `sig` to our unreaped child `pid`.
pub fn kill(pid: u32, sig: i32) {
    // CAST: a pid from the kernel fits pid_t.
    // SAFETY: plain syscall; the child is not reaped yet, so `pid` is still ours.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// Wait until one of `fds` is readable or `timeout_ms` passes; the readable ones are marked.
/// Interrupted waits (a signal) return with nothing marked.
pub fn poll(fds: &[BorrowedFd<'_>], ready: &mut Vec<bool>, timeout_ms: i32) {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // CAST: a PD count fits nfds_t.
    // SAFETY: `pfds` is a valid array of `len` pollfds that lives across the call.
    unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    ready.clear();
    ready.extend(pfds.iter().map(|p| p.revents != 0));
}

/// Make this process undumpable: other processes of the same user can then no longer open its
/// `/proc/PID/mem` or `/proc/PID/fd/*`, so a PD cannot reach another PD's (or the runtime's)
/// memory through procfs. Reset by exec, so every PD sets it for itself.
///
/// # Errors
/// The OS error of `prctl`.
pub fn set_undumpable() -> io::Result<()> {
    // SAFETY: plain prctl with valid arguments.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) }).map(|_| ())
}

/// Take ownership of a descriptor number the runtime passed on the command line.
///
/// # Errors
/// `InvalidInput` when `fd` is not an open descriptor of this process.
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only inspects the descriptor table.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) }).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: the descriptor is open (checked above) and the runtime handed it to this process
    // alone; nothing else in the process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Close every descriptor from 3 up except those in `keep` (a PD keeps only its doorbell once its
/// pages are mapped, mappings outliving their descriptors; an external client slot also keeps its
/// listener and region descriptors).
pub fn close_other_fds(keep: &[RawFd]) {
    let mut keep: Vec<libc::c_uint> = keep
        .iter()
        .filter_map(|&fd| libc::c_uint::try_from(fd).ok())
        .collect();
    keep.sort_unstable();
    let mut from: libc::c_uint = 3;
    for fd in keep.into_iter().filter(|&fd| fd >= 3) {
        if fd > from {
            // SAFETY: closing descriptors nothing in the process uses any more (the PD adopted
            // and dropped every inherited one not in `keep`); close_range ignores unused numbers.
            unsafe { libc::close_range(from, fd - 1, 0) };
        }
        from = fd.saturating_add(1);
    }
    // SAFETY: as above.
    unsafe { libc::close_range(from, libc::c_uint::MAX, 0) };
}

/// Give up every capability and the right to gain any (`PR_SET_NO_NEW_PRIVS`). A PD needs none,
/// and without `CAP_SYS_PTRACE` a PD started by root cannot open an undumpable sibling's memory
/// through procfs either.
///
/// # Errors
/// The OS error of `capset` or `prctl`.
pub fn drop_capabilities() -> io::Result<()> {
    /// `struct __user_cap_header_struct`, version 3 (`_LINUX_CAPABILITY_VERSION_3`).
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    /// `struct __user_cap_data_struct`; version 3 takes two (64 capability bits).
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let none = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads a valid header and two data structs that live across the call; giving
    // up capabilities is always permitted.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header, none.as_ptr()) };
    if r < 0 {
        return Err(super::last_error());
    }
    // SAFETY: plain prctl with valid arguments.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(|_| ())
}

/// Give the CPU to another runnable process, if any.
pub fn yield_now() {
    // SAFETY: sched_yield has no preconditions.
    unsafe { libc::sched_yield() };
}
