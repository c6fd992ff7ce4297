//! A monotonic clock from the architecture's free-running counter, readable without a syscall.
#![allow(unsafe_code)]

/// Nanoseconds from the Arm generic timer (`CNTPCT_EL0` scaled by `CNTFRQ_EL0`). The Microkit
/// board `qemu_virt_aarch64` exports the physical timer to user level (`KernelArmExportPTMRUser`).
#[cfg(target_arch = "aarch64")]
pub fn now_ns() -> u64 {
    let (ticks, freq): (u64, u64);
    // SAFETY: reading the counter and its frequency has no side effects, and the kernel
    // configuration lets EL0 read both.
    unsafe {
        core::arch::asm!("mrs {}, cntpct_el0", out(reg) ticks, options(nomem, nostack));
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack));
    }
    if freq == 0 {
        return ticks;
    }
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(freq);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The time stamp counter, taken as nanoseconds. Microkit does not pass the TSC frequency to PDs;
/// under QEMU with `-icount` the TSC counts virtual nanoseconds exactly, and on TCG without it
/// the host's TSC rate (a few GHz) makes deadlines a few times shorter than written.
#[cfg(target_arch = "x86_64")]
pub fn now_ns() -> u64 {
    // SAFETY: `rdtsc` has no side effects and is allowed at user level (CR4.TSD is clear).
    unsafe { core::arch::x86_64::_rdtsc() }
}
