//! The gsp PD: boots the GPU's GSP in `init` and then serves gpu-server's RM requests.
//!
//! `init` claims the GPU at pci-server, takes the boot's DMA buffers from alloc-server, reads the
//! firmware from `gsp_fw` and runs `gsp::boot` over BAR0, which it reaches as PPCs to the device
//! (the GSP model PD in hosted mode and QEMU), every step logged ([`bringup`]). The boot takes as
//! long as it takes: a call gpu makes meanwhile waits for `init` to end. Then [`GspPd`] serves
//! `GspOps` over PPC and handles the device's interrupt ([`service`]); after a firmware crash
//! it boots the GPU again in place. After a restart it does all of it again from scratch: RM
//! objects, queues and buffers of the old instance are gone (pci-server resets the GPU when the
//! old instance's claim goes, alloc-server takes its buffers back).
//!
//! Calls out: pci (claim, config, BARs), alloc (DMA buffers), gsp_model (BAR0); it notifies gpu
//! when events wait or the firmware crashed.
pub mod bench;
pub mod bringup;
pub mod device;
pub mod firmware;
pub mod service;
pub mod throttle;

pub use service::GspPd;

use crate::sys::{gsp::regions, supervisor::children};

/// Build the gsp PD: boot the GPU.
pub fn init(k: &mut dyn pd_core::Kernel) -> GspPd {
    let status = crate::regions::ro(regions::STATUS);
    let generation = crate::status::read(&status, children::GSP).map_or(1, |s| s.generation);
    log::info!(
        "{}: up (generation {generation}); booting the GPU",
        k.pd_name()
    );
    let mut pd = GspPd::new(generation);
    pd.boot(k);
    pd
}
