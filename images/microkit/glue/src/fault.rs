//! A child's fault message, as pd-core's [`FaultKind`]; and injecting a fault, for the demo.
//!
//! Injection: `cargo xtask image --fault PD:N` writes N into PD's `pd_sel4_inject_fault_after`.
//! The PD's first instance then faults (a store to address 0: a VM fault) while serving its Nth
//! PPC, with the caller waiting for the answer; its restarted instances never do. That is the
//! hard case the supervisor and the callers must survive on real hardware.
//!
//! The fault campaign (feature `fault-injection`, `cargo xtask faults --board B`): xtask writes a
//! `pd_core::faults` plan, NUL-terminated, into every image's `pd_sel4_fault_plan` ([`plan`]);
//! the event loop puts a `pd_core::faults::Faulty` in front of a PD's handler when the plan has
//! entries for it ([`injector`]), and the campaign client reads it through `crate::fault_plan`.
//! Times count from the guest's boot (the plan has no epoch: the clock starts at 0).
#![allow(unsafe_code)]

use pd_core::FaultKind;

/// What the fault message `msg` (just received, so still in the IPC buffer) says happened.
///
/// Only labels this decodes are handed to rust-sel4's decoder, which panics on a label its
/// configuration lacks: a Rust panic ends in `brk` on aarch64, a *debug exception*, which it
/// cannot parse without the kernel's hardware debug API, and a panic there would take the
/// supervisor down with the child (the seL4 fault campaign found this).
pub fn kind(msg: &sel4_microkit::MessageInfo) -> FaultKind {
    use sel4::sys::seL4_Fault_tag as tag;
    // CAST: a seL4 word is 64 bits on every target this crate builds for.
    let label = msg.label() as u64;
    if is_debug_exception(label) {
        return FaultKind::Abort;
    }
    if label != tag::seL4_Fault_VMFault && label != tag::seL4_Fault_UserException {
        return FaultKind::Other(label);
    }
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

/// Whether `label` is a debug exception (only kernels with the hardware debug API have them: a
/// release kernel's fault labels lack it).
#[sel4::sel4_cfg(HARDWARE_DEBUG_API)]
fn is_debug_exception(label: u64) -> bool {
    label == sel4::sys::seL4_Fault_tag::seL4_Fault_DebugException
}

/// As above, for a kernel without the hardware debug API: no label is one.
#[sel4::sel4_cfg(not(HARDWARE_DEBUG_API))]
fn is_debug_exception(_: u64) -> bool {
    false
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

/// The size of `pd_sel4_fault_plan`: a session's plan (a dozen runs) with room to spare.
#[cfg(feature = "fault-injection")]
pub const PLAN_LEN: usize = 4096;

/// The fault plan xtask wrote into this image, if any: the bytes of `pd_sel4_fault_plan` up to
/// the first NUL (`None`: empty, or not UTF-8).
#[cfg(feature = "fault-injection")]
pub fn plan() -> Option<&'static str> {
    let bytes: &'static [u8; PLAN_LEN] = sel4_microkit::var! {
        #[used(linker)]
        pd_sel4_fault_plan: [u8; PLAN_LEN] = [0; PLAN_LEN]
    };
    plan_text(bytes)
}

/// The text of a plan buffer: up to the first NUL, `None` when empty or not UTF-8.
#[cfg(feature = "fault-injection")]
fn plan_text(bytes: &[u8]) -> Option<&str> {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = core::str::from_utf8(bytes.get(..len)?).ok()?;
    (!text.is_empty()).then_some(text)
}

/// PD `pd`'s injector for the image's plan, for an instance starting now (a restarted instance
/// skips the entries whose time has passed); `None` without a plan or entries for `pd`.
#[cfg(feature = "fault-injection")]
pub fn injector(pd: &str) -> Option<pd_core::faults::Injector> {
    pd_core::faults::Injector::from_text(plan(), pd, crate::clock::now_ns())
}
