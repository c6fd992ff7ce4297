//! `drm.elf` on seL4: pd-programs' `drm` PD module, unchanged, on the pd-sel4 glue.
#![no_std]
#![no_main]

pd_sel4::protection_domain!(pd_programs::drm::init);
