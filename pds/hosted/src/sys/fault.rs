//! Signals. PD side: a SIGSEGV/SIGBUS handler that records the faulting address where the runtime
//! can read it after the PD died (a wait status carries only the signal number), then lets the
//! fault kill the process. Runtime side: SIGINT/SIGTERM only set a flag the main loop polls.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

/// Where the fault handler writes the faulting address (a word of the PD's control page).
static FAULT_WORD: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

/// The bit that marks [`FAULT_WORD`] as written (addresses are below 2^63 in user space).
pub const FAULT_ADDR_VALID: u64 = 1 << 63;

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let word = FAULT_WORD.load(Ordering::Relaxed);
    if !word.is_null() && !info.is_null() {
        // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; `word` points into
        // the control page, which stays mapped for the life of the process. Only an atomic store
        // happens here (async-signal-safe). A signal sent by a process (si_code <= 0, e.g.
        // `kill -SEGV`) carries no address.
        unsafe {
            if (*info).si_code > 0 {
                let addr = (*info).si_addr() as u64;
                (*word).store(addr | FAULT_ADDR_VALID, Ordering::SeqCst);
            }
        }
    }
    // SA_RESETHAND restored the default action; the signal raised again here is delivered as the
    // handler returns and kills the process with it (a sent signal has no access to re-run).
    // SAFETY: raise is async-signal-safe.
    unsafe { libc::raise(sig) };
}

/// Record SIGSEGV/SIGBUS fault addresses into `word` before the default action kills the process.
/// Runs on an alternate stack so a stack overflow is reported too.
///
/// # Errors
/// The OS error of `sigaltstack` or `sigaction`.
pub fn record_faults_into(word: &'static AtomicU64) -> io::Result<()> {
    FAULT_WORD.store(std::ptr::from_ref(word).cast_mut(), Ordering::SeqCst);
    let stack: &'static mut [u8] = Box::leak(vec![0u8; 64 * 1024].into_boxed_slice());
    let ss = libc::stack_t {
        ss_sp: stack.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: stack.len(),
    };
    // SAFETY: `ss` describes a leaked buffer that lives for the rest of the process.
    super::check(unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) })?;
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: a zeroed sigaction is a valid starting point; the handler has the SA_SIGINFO
        // signature and is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fault as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESETHAND;
            libc::sigemptyset(&mut sa.sa_mask);
            super::check(libc::sigaction(sig, &sa, std::ptr::null_mut()))?;
        }
    }
    Ok(())
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Turn SIGINT and SIGTERM into a flag ([`interrupted`]); a blocked `poll` returns early.
///
/// # Errors
/// The OS error of `sigaction`.
pub fn catch_interrupts() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic. No
        // SA_RESTART, so the runtime's poll is interrupted.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_interrupt as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            super::check(libc::sigaction(sig, &sa, std::ptr::null_mut()))?;
        }
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
