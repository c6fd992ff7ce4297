//! `pong.elf` on seL4: the bench image's PPC and notification target (pd-programs' `bench_ipc`).
#![no_std]
#![no_main]

pd_sel4::protection_domain!(pd_programs::bench_ipc::pong);
