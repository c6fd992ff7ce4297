//! `bench.elf` on seL4: pd-programs' `bench_ipc` client (the bench image's client0), on the glue.
#![no_std]
#![no_main]

pd_sel4::protection_domain!(pd_programs::bench_ipc::init);
