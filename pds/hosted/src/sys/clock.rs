//! `CLOCK_MONOTONIC` in nanoseconds: one clock shared by every process of a run, so a time one PD
//! writes into a shared page (a call's start) means the same to the runtime.

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // CAST: monotonic time is non-negative and fits u64 nanoseconds for 584 years of uptime.
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// A `timespec` for an absolute `CLOCK_MONOTONIC` time in nanoseconds.
pub(crate) fn timespec(ns: u64) -> libc::timespec {
    // CAST: seconds of a u64 nanosecond count fit i64; the remainder is below 10^9.
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}
