//! The ioctl benchmark's client: a workload PD that times DRM ioctls through whatever platform it
//! runs on (isolated PDs or the monolithic composition), with the platform's clock, and logs one
//! parseable line per measurement: `bench: NAME NS ns/op (N ops)`.
//!
//! Measured: `GETPARAM` round trips; `EXEC` of 64 push segments (each a 4 KiB copy-engine copy)
//! followed by `SYNCOBJ_WAIT` on its fence; plus single `GEM_NEW` and `VM_BIND` calls. The set-up
//! is the demo job's ([`crate::drm_job`]): a DRM file, VM_INIT, BOs, binds, a channel.

use crate::client::Config;
use crate::client_ext::Idle;
use crate::drm_job::{self, Views};
use crate::regions::rw;
use drm_api::errno::Errno;
use drm_api::ioctl::nr;
use drm_api::transport::{DrmClient, FileId};
use drm_api::uapi::*;
use pd_core::{Kernel, Verdict};

/// GETPARAM round trips timed.
pub const GETPARAMS: u64 = 2000;
/// EXEC-64 submissions timed.
pub const EXECS: u64 = 50;
/// Push segments per EXEC.
pub const PUSHES: usize = 64;

/// Run the benchmark (client0; any other client passes at once and stays idle, so the timings
/// are one client's), report the verdict, idle.
pub fn init(k: &mut dyn Kernel) -> Idle {
    run(k, |_, _| {})
}

/// [`init`], with `first` run once the DRM stack answers and before the ioctls are timed. It is
/// given the clock at the start of the first DRM job that succeeded: when the GPU was ready.
pub(crate) fn run(k: &mut dyn Kernel, first: fn(&mut dyn Kernel, u64)) -> Idle {
    let verdict = match crate::client::config(k.pd_name()) {
        Some(cfg) if k.pd_name() == crate::sys::client0::NAME => bench(k, cfg, first),
        Some(_) => Verdict::Pass,
        None => Verdict::Fail,
    };
    let _ = k.report_verdict(verdict);
    Idle
}

fn bench(
    k: &mut dyn Kernel,
    (drm, ioctl, vram, dma): Config,
    first: fn(&mut dyn Kernel, u64),
) -> Verdict {
    let mut c = DrmClient::new(drm, rw(ioctl));
    let views = Views {
        vram: rw(vram),
        dma: rw(dma),
    };
    // The GPU comes up while the system boots: wait for the first successful job.
    let start = k.now_ns();
    loop {
        let attempt = k.now_ns();
        if drm_job::run(k, &mut c, &views, 1, false).is_ok() {
            first(k, attempt);
            break;
        }
        if k.now_ns().saturating_sub(start) > crate::client::GIVE_UP_NS {
            log::error!("bench: the DRM stack never came up");
            return Verdict::Fail;
        }
    }
    match c.open(k).and_then(|f| {
        let r = timed(k, &mut c, &views, f);
        let _ = c.close(k, f);
        r
    }) {
        Ok(()) => Verdict::Pass,
        Err(e) => {
            log::error!("bench: failed: {e}");
            Verdict::Fail
        }
    }
}

/// Log one measurement: `bench: NAME NS ns/op (OPS ops)`.
pub(crate) fn report(name: &str, ns: u64, ops: u64) {
    log::info!("bench: {name} {} ns/op ({ops} ops)", ns / ops.max(1));
}

fn timed(k: &mut dyn Kernel, c: &mut DrmClient, v: &Views, f: FileId) -> Result<(), Errno> {
    let t = k.now_ns();
    for _ in 0..GETPARAMS {
        let mut g = drm_nouveau_getparam {
            param: getparam::CHIPSET_ID,
            value: 0,
        };
        c.ioctl(k, f, nr::NOUVEAU_GETPARAM, &mut g)?;
    }
    report("getparam", k.now_ns() - t, GETPARAMS);

    let t = k.now_ns();
    let setup = drm_job::Setup::new(k, c, f, v, 0x1000, false)?;
    report("setup", k.now_ns() - t, 1);
    let t = k.now_ns();
    let bo = setup.gem_new(k, c, f, domain::VRAM, 0x1000)?;
    report("gem_new", k.now_ns() - t, 1);
    let t = k.now_ns();
    setup.bind(k, c, f, bo.handle, drm_job::VA_SPARE, 0x1000)?;
    report("vm_bind", k.now_ns() - t, 1);

    for (name, pushes, rounds) in [("exec1", 1, EXECS), ("exec64", PUSHES, EXECS)] {
        let t = k.now_ns();
        for _ in 0..rounds {
            setup.exec_and_wait(k, c, f, pushes)?;
        }
        report(name, k.now_ns() - t, rounds);
    }
    setup.close(k, c, f)
}
