//! A child's fault message, as pd-core's [`FaultKind`]; and injecting a fault, for the demo.
//!
//! Injection: `cargo xtask image --fault PD:N` writes N into PD's `pd_sel4_inject_fault_after`.
//! The PD's first instance then faults (a store to address 0: a VM fault) while serving its Nth
//! PPC, with the caller waiting for the answer; its restarted instances never do. That is the
//! hard case the supervisor and the callers must survive on real hardware.
#![allow(unsafe_code)]

use pd_core::FaultKind;

/// What the fault message `msg` (just received, so still in the IPC buffer) says happened.
pub fn kind(msg: &sel4_microkit::MessageInfo) -> FaultKind {
    match msg.fault() {
        sel4::Fault::VmFault(f) => FaultKind::VmFault {
            // CAST: a seL4 word is 64 bits on every target this crate builds for.
            addr: Some(f.inner().get_Addr() as u64),
        },
        // A Rust panic ends in `abort`, an undefined instruction: a user exception.
        sel4::Fault::UserException(_) => FaultKind::Abort,
        // CAST: as above.
        _ => FaultKind::Other(msg.label() as u64),
    }
}

/// The PPC this PD's first instance faults on (1-based), or 0 for never.
pub fn inject_after() -> usize {
    *sel4_microkit::var! {
        #[used(linker)]
        pd_sel4_inject_fault_after: usize = 0
    }
}

/// Fault now: store to address 0, which no PD maps.
pub fn inject(call: usize) -> ! {
    log::warn!("fault injected: storing to address 0 while serving PPC #{call}");
    loop {
        // SAFETY: the store faults before it writes anything (address 0 is never mapped); the
        // kernel stops this thread and reports the fault to the parent, which restarts the PD.
        unsafe { store_to_zero() };
    }
}

#[cfg(target_arch = "aarch64")]
unsafe fn store_to_zero() {
    // SAFETY: see `inject`.
    unsafe { core::arch::asm!("str xzr, [{0}]", in(reg) 0usize, options(nostack)) };
}

#[cfg(target_arch = "x86_64")]
unsafe fn store_to_zero() {
    // SAFETY: see `inject`.
    unsafe { core::arch::asm!("mov qword ptr [{0}], 0", in(reg) 0usize, options(nostack)) };
}
