//! `drivers.elf` on seL4: pd-programs' `drivers` (pci, alloc, gsp, gpu and drm composed in one
//! PD, the monolithic image's), on the glue.
#![no_std]
#![no_main]

pd_sel4::composed_protection_domain!(pd_programs::drivers::start);
