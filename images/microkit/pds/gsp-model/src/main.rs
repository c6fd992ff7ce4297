//! `gsp-model.elf` on seL4: pd-programs' `gsp_model` PD module, unchanged, on the pd-sel4 glue.
//!
//! QEMU has no NVIDIA GPU, so the simulated one runs in the image as this PD; it says so first.
#![no_std]
#![no_main]

pd_sel4::protection_domain!(init);

fn init(k: &mut dyn pd_core::Kernel) -> impl pd_core::Handler {
    log::info!(
        "QEMU has no NVIDIA GPU: the GSP model runs in this image as a PD and is the GPU \
         the driver PDs talk to"
    );
    pd_programs::gsp_model::init(k)
}
