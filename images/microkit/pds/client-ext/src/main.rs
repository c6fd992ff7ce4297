//! `client-ext.elf` on seL4: pd-programs' `client_ext` PD module, unchanged, on the pd-sel4 glue.
#![no_std]
#![no_main]

pd_sel4::protection_domain!(pd_programs::client_ext::init);
