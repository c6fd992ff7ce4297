//! Cache maintenance around DMA: what `sync_for_device` (CPU wrote, device reads next) and
//! `sync_for_cpu` (device wrote, CPU reads next) do on each platform.
//!
//! | platform                                   | [`Coherence`]   | for device                  | for CPU                      |
//! |--------------------------------------------|-----------------|-----------------------------|------------------------------|
//! | hosted (Linux, any arch)                   | `Coherent`      | full fence (orders copies)  | full fence                   |
//! | seL4 aarch64, QEMU virt (cached mappings, device model coherent) | `Coherent` | `dsb sy` | `dsb sy`              |
//! | seL4 aarch64, real non-coherent DMA master | `NonCoherent`   | `dc cvac` per line, `dsb sy`| `dc civac` per line, `dsb sy`|
//! | seL4 x86_64 (DMA snoops the caches)        | `Coherent`      | full fence (`mfence`)       | full fence                   |
//!
//! Which one applies is a board fact, so the PD glue passes it in with the pool mapping
//! ([`crate::MappedPool`]). `NonCoherent` only changes anything on aarch64: on the other targets
//! every DMA master we build for is coherent and it behaves as `Coherent`.
//!
//! On aarch64 EL0, `dc ivac` is not allowed, so "invalidate" is clean-and-invalidate (`dc civac`):
//! the lines are clean anyway when the buffer was synced for the device before. EL0 cache
//! maintenance needs `SCTLR_EL1.UCI` set, which seL4 sets on aarch64 (unverified on hardware here;
//! only the QEMU `Coherent` path has run).
#![allow(unsafe_code)]

/// Whether the device's DMA is coherent with the CPU caches (a board fact).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coherence {
    /// DMA snoops the caches: only ordering is needed.
    Coherent,
    /// DMA bypasses the caches: lines must be cleaned before and invalidated after DMA.
    NonCoherent,
}

/// Smallest data cache line of any ARMv8-A core we target (`CTR_EL0.DminLine` is 64 bytes on
/// every Cortex-A and Neoverse part); stepping by it touches every line of the range.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
const CACHE_LINE: usize = 64;

/// Make the CPU's writes to `vaddr..vaddr+len` visible to the device.
pub fn sync_for_device(coherence: Coherence, vaddr: usize, len: usize) {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    if coherence == Coherence::NonCoherent {
        for line in lines(vaddr, len) {
            // SAFETY: `dc cvac` writes a line back to memory; it changes no architectural state and
            // faults only on an unmapped address, and `line` lies in the caller's mapped buffer.
            unsafe {
                core::arch::asm!("dc cvac, {0}", in(reg) line, options(nostack, preserves_flags))
            };
        }
    }
    let _ = (coherence, vaddr, len);
    barrier();
}

/// Make the device's writes to `vaddr..vaddr+len` visible to the CPU.
pub fn sync_for_cpu(coherence: Coherence, vaddr: usize, len: usize) {
    barrier();
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    if coherence == Coherence::NonCoherent {
        for line in lines(vaddr, len) {
            // SAFETY: `dc civac` writes back and drops a line; the buffer's lines are clean after
            // `sync_for_device`, so no CPU data is lost, and `line` lies in the mapped buffer.
            unsafe {
                core::arch::asm!("dc civac, {0}", in(reg) line, options(nostack, preserves_flags))
            };
        }
        barrier();
    }
    let _ = (coherence, vaddr, len);
}

/// Addresses of the cache lines covering `vaddr..vaddr+len`.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
fn lines(vaddr: usize, len: usize) -> impl Iterator<Item = usize> {
    let start = vaddr & !(CACHE_LINE - 1);
    let end = vaddr.saturating_add(len);
    (start..end).step_by(CACHE_LINE)
}

/// Complete every earlier memory access before any later one (and before a doorbell write).
fn barrier() {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: `dsb sy` only waits for outstanding memory accesses; it touches no memory or register.
    unsafe {
        core::arch::asm!("dsb sy", options(nostack, preserves_flags))
    };
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}
