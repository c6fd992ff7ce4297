//! The demo client PDs (`client0`, `client1`, one program): for [`RUN_NS`] they run DRM jobs
//! ([`crate::drm_job`]: open, query, BOs, VM_BIND, a copy-engine EXEC, wait on its syncobj, check
//! the copied bytes) through the whole stack, each in its own DRM file. A job that fails because
//! a driver PD restarted (`ENODEV`, lost context) is retried in a new file; no success for
//! [`GIVE_UP_NS`] fails the run, and wrong bytes fail it at once. The verdict goes to the platform
//! ([`Kernel::report_verdict`]); then the PD idles.

use crate::client_ext::Idle;
use crate::drm_job::{self, JobError, Views};
use crate::regions::rw;
use crate::sys::{client0, client1, RegionDecl};
use drm_api::transport::DrmClient;
use pd_core::{Channel, Kernel, Verdict};

/// How long the workload runs.
pub const RUN_NS: u64 = 1_000_000_000;
/// How long it keeps retrying without a single success.
pub const GIVE_UP_NS: u64 = 10_000_000_000;

/// A client's channel to drm and its three regions (ioctl buffer, VRAM window, DMA pool).
pub type Config = (Channel, RegionDecl, RegionDecl, RegionDecl);

/// The configuration of client PD `name`.
pub fn config(name: &str) -> Option<Config> {
    use client0::regions as r0;
    use client1::regions as r1;
    match name {
        client0::NAME => Some((
            client0::channels::DRM,
            r0::CLIENT0_IOCTL,
            r0::CLIENT0_VRAM,
            r0::CLIENT0_DMA,
        )),
        client1::NAME => Some((
            client1::channels::DRM,
            r1::CLIENT1_IOCTL,
            r1::CLIENT1_VRAM,
            r1::CLIENT1_DMA,
        )),
        _ => None,
    }
}

/// Run the workload, report the verdict, idle.
pub fn init(k: &mut dyn Kernel) -> Idle {
    let verdict = match config(k.pd_name()) {
        Some((drm, ioctl, vram, dma)) => {
            let mut client = DrmClient::new(drm, rw(ioctl));
            workload(
                k,
                &mut client,
                &Views {
                    vram: rw(vram),
                    dma: rw(dma),
                },
            )
        }
        None => {
            log::error!("{}: no client configuration for this PD", k.pd_name());
            Verdict::Fail
        }
    };
    let _ = k.report_verdict(verdict);
    Idle
}

/// Run DRM jobs for [`RUN_NS`] (and past it until an outage in progress is over).
pub fn workload(k: &mut dyn Kernel, drm: &mut DrmClient, views: &Views) -> Verdict {
    log::info!(
        "{}: running DRM jobs for {} ms",
        k.pd_name(),
        RUN_NS / 1_000_000
    );
    let start = k.now_ns();
    let (mut ok, mut failed, mut streak, mut last_ok) = (0u64, 0u64, 0u64, start);
    while k.now_ns().saturating_sub(start) < RUN_NS || streak > 0 {
        // Jobs back to back, each after the other clients' turn (see `Kernel::yield_now`).
        k.yield_now();
        let seed = k.now_ns() ^ ok.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        match drm_job::run(k, drm, views, seed, ok == 0 && failed == 0) {
            Ok(()) if streak > 0 => {
                log::info!(
                    "{}: DRM jobs succeed again after {streak} failed attempts",
                    k.pd_name()
                );
                (ok, streak, last_ok) = (ok + 1, 0, k.now_ns());
            }
            Ok(()) => (ok, last_ok) = (ok + 1, k.now_ns()),
            Err(JobError::WrongBytes) => {
                log::error!("{}: a job produced wrong bytes", k.pd_name());
                return Verdict::Fail;
            }
            Err(e) => {
                if streak == 0 {
                    log::warn!("{}: job failed ({e}); retrying in a new file", k.pd_name());
                }
                (failed, streak) = (failed + 1, streak + 1);
                if k.now_ns().saturating_sub(last_ok) > GIVE_UP_NS {
                    log::error!(
                        "{}: no successful job for {GIVE_UP_NS} ns; giving up",
                        k.pd_name()
                    );
                    return Verdict::Fail;
                }
            }
        }
    }
    log::info!(
        "{}: workload done: {ok} DRM jobs checked, {failed} failed and retried",
        k.pd_name()
    );
    if ok > 0 {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}
