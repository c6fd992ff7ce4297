//! The ioctl benchmark's program table: the product's, with `client.elf` replaced by the bench
//! client (`pd_programs::bench_client`: client0 times ioctls, client1 stays out of the way). Both
//! binaries of this crate run it, one per composition, so the two measure the same code.
use pd_programs::{program, Program, Role};

/// `pd_programs::PROGRAMS` with the bench client in place of the demo clients.
pub fn programs() -> Vec<Program> {
    pd_programs::PROGRAMS
        .iter()
        .map(|p| match p.image {
            "client.elf" => {
                program!("client.elf" => pd_programs::bench_client::init, Role::Workload)
            }
            _ => *p,
        })
        .collect()
}
