//! Restarting a faulted child, and being restarted.
//!
//! Microkit restarts a child by pointing its thread at an entry point (`microkit_pd_restart`
//! writes only the program counter); the child keeps its memory. Restarting at `_start` does not
//! work for a rust-sel4 PD: its runtime installs a panic hook once and panics when asked again.
//! So every image has a second, *warm* entry point, [`pd_sel4_restart_entry`]: it resets the
//! stack, marks the start as warm and runs the PD's `init` again. `cargo xtask image` writes each
//! child's warm entry into its parent's `pd_sel4_child_entries` table (by child id) after linking,
//! because only the linker knows the address.
//!
//! A fault can leave a caller waiting in a PPC to the faulted PD, holding that PD's reply object.
//! The warm-started PD's first receive therefore *replies* on it with [`PEER_FAULTED_LABEL`]
//! (a no-op when nobody waits), so the caller's `ppcall` returns `IpcError::PeerFaulted`, as in
//! hosted mode, instead of the kernel cancelling the caller's IPC and leaving it inactive.
//! The reply also hands back a scheduling context a passive PD was running on.
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicBool, Ordering};

use pd_core::{Child, IpcError};

/// The reply label that means "the PD you called faulted and was restarted; its state is gone".
/// Just below pd-core's "refused" label (`u64::MAX` truncated), out of every API's range.
pub const PEER_FAULTED_LABEL: u64 = pd_core::MessageInfo::LABEL_MASK - 1;

/// How many children a Microkit PD can have (child ids 0..=61).
const MAX_CHILDREN: usize = 62;

/// Set by the warm entry; survives in the PD's memory across restarts.
static WARM: AtomicBool = AtomicBool::new(false);

/// Whether this start is a restart by the parent.
pub fn is_warm() -> bool {
    WARM.load(Ordering::Relaxed)
}

/// This image's warm entry point, so that a live reference keeps it in the linked image.
pub fn warm_entry() -> usize {
    pd_sel4_restart_entry as *const () as usize
}

/// The warm entry point of child `child`, as `cargo xtask image` patched it in; 0 means none.
fn child_entry(child: Child) -> Option<usize> {
    let table = sel4_microkit::var! {
        #[used(linker)]
        pd_sel4_child_entries: [usize; MAX_CHILDREN] = [0; MAX_CHILDREN]
    };
    table
        .get(usize::from(child.index()))
        .copied()
        .filter(|&entry| entry != 0)
}

/// Restart child `child` at its warm entry point (Microkit's `microkit_pd_restart`).
///
/// # Errors
/// [`IpcError::NotAChild`] when the image has no entry for `child` or the kernel refuses the
/// child's TCB (it is not a child of this PD).
pub fn restart_child(child: Child) -> Result<(), IpcError> {
    let entry = child_entry(child).ok_or(IpcError::NotAChild)?;
    let name = crate::system::child_name(child.index()).unwrap_or("?");
    log::info!(
        "restarting {name} (child {}) at its warm entry {entry:#x}",
        child.index()
    );
    let mut context = sel4::UserContext::default();
    *context.pc_mut() = entry as sel4::Word;
    sel4_microkit::Child::new(usize::from(child.index()))
        .tcb()
        .tcb_write_registers(true, 1, &mut context)
        .map_err(|_| IpcError::NotAChild)
}

/// Stop child `child` for good (Microkit's `microkit_pd_stop`).
///
/// # Errors
/// [`IpcError::NotAChild`] when the kernel refuses the child's TCB.
pub fn stop_child(child: Child) -> Result<(), IpcError> {
    sel4_microkit::Child::new(usize::from(child.index()))
        .tcb()
        .tcb_suspend()
        .map_err(|_| IpcError::NotAChild)
}

unsafe extern "C" {
    /// The warm entry point (assembly below).
    fn pd_sel4_restart_entry();
    /// The PD's main function, defined by `sel4_microkit::declare_protection_domain!`.
    fn __sel4_microkit__main();
}

/// Called by the warm entry on a fresh stack: run the PD's main again, marked warm.
#[unsafe(no_mangle)]
extern "C" fn pd_sel4_warm_start() -> ! {
    WARM.store(true, Ordering::Relaxed);
    // SAFETY: the symbol is the PD's main function (it takes nothing and never returns); the
    // runtime state it relies on (IPC buffer, panic hook, TLS) survived the restart in memory.
    unsafe { __sel4_microkit__main() };
    loop {
        core::hint::spin_loop();
    }
}

// The warm entry: reset the stack to rust-sel4's static stack (declared by `stack_size` in
// `protection_domain!`), as `_start` does, then call `pd_sel4_warm_start`.
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    r#"
    .section .text.pd_sel4_restart_entry, "ax", %progbits
    .global pd_sel4_restart_entry
    pd_sel4_restart_entry:
        ldr x9, =__sel4_runtime_common__stack_bottom
        ldr x9, [x9]
        mov sp, x9
        bl pd_sel4_warm_start
    1:  b 1b
    "#
);

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    r#"
    .section .text.pd_sel4_restart_entry, "ax", @progbits
    .global pd_sel4_restart_entry
    pd_sel4_restart_entry:
        mov rsp, qword ptr [rip + __sel4_runtime_common__stack_bottom]
        mov rbp, rsp
        sub rsp, 0x8
        push rbp
        call pd_sel4_warm_start
    1:  jmp 1b
    "#
);
