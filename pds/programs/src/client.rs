//! The demo client PDs (`client0`, `client1`, one program): for [`RUN_NS`] they send echo
//! requests down the whole stack (client -> drm -> gpu -> gsp/alloc/pci -> model), writing each
//! request into their ioctl buffer too, and check every answer. A failed exchange (a driver PD
//! was killed and restarted mid-call) is retried; no success for [`GIVE_UP_NS`] fails the run.
//! The verdict goes to the platform ([`Kernel::report_verdict`]); then the PD idles.

use crate::client_ext::Idle;
use crate::regions::rw;
use crate::relay::{echo, WORDS};
use crate::sys::{client0, client1, RegionDecl};
use pd_core::shm::{ReadWrite, Region};
use pd_core::{Channel, Kernel, Verdict};

/// How long the workload runs.
pub const RUN_NS: u64 = 1_000_000_000;
/// How long it keeps retrying without a single success.
pub const GIVE_UP_NS: u64 = 10_000_000_000;

fn config(name: &str) -> Option<(Channel, RegionDecl)> {
    match name {
        client0::NAME => Some((client0::channels::DRM, client0::regions::CLIENT0_IOCTL)),
        client1::NAME => Some((client1::channels::DRM, client1::regions::CLIENT1_IOCTL)),
        _ => None,
    }
}

/// Run the workload, report the verdict, idle.
pub fn init(k: &mut dyn Kernel) -> Idle {
    let verdict = match config(k.pd_name()) {
        Some((drm, ioctl)) => workload(k, drm, &rw(ioctl)),
        None => {
            log::error!("{}: no client configuration for this PD", k.pd_name());
            Verdict::Fail
        }
    };
    let _ = k.report_verdict(verdict);
    Idle
}

/// xorshift64: request words that differ every time.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// The workload against `drm`, with the client's `ioctl` buffer (shared with drm).
pub fn workload(k: &mut dyn Kernel, drm: Channel, ioctl: &Region<ReadWrite>) -> Verdict {
    log::info!(
        "{}: running the echo workload for {} ms",
        k.pd_name(),
        RUN_NS / 1_000_000
    );
    let start = k.now_ns();
    let (mut ok, mut failed, mut streak, mut last_ok) = (0u64, 0u64, 0u64, start);
    let mut x = start | 1;
    // Run for RUN_NS, and past it until an outage in progress is over.
    while k.now_ns().saturating_sub(start) < RUN_NS || streak > 0 {
        let mut words = [0u64; WORDS];
        for w in &mut words {
            *w = next(&mut x);
        }
        for (i, w) in words.iter().enumerate() {
            let _ = ioctl.write(i * 8, w);
        }
        match echo(k, drm, &words) {
            Ok(()) if streak > 0 => {
                log::info!(
                    "{}: drm answers again after {streak} failed exchanges",
                    k.pd_name()
                );
                (ok, streak, last_ok) = (ok + 1, 0, k.now_ns());
            }
            Ok(()) => (ok, last_ok) = (ok + 1, k.now_ns()),
            Err(e) => {
                if streak == 0 {
                    log::warn!("{}: exchange failed ({e}); retrying", k.pd_name());
                }
                (failed, streak) = (failed + 1, streak + 1);
                if k.now_ns().saturating_sub(last_ok) > GIVE_UP_NS {
                    log::error!(
                        "{}: no good answer for {GIVE_UP_NS} ns; giving up",
                        k.pd_name()
                    );
                    return Verdict::Fail;
                }
            }
        }
    }
    log::info!(
        "{}: workload done: {ok} checked exchanges, {failed} failed and retried",
        k.pd_name()
    );
    if ok > 0 {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}
