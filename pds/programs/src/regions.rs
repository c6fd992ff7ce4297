//! Typed views of the calling PD's own mapped regions, from the generated [`RegionDecl`]s.
//!
//! Every platform maps each region of `system.xml` into the PD at the declared address before the
//! PD's `init` runs, and keeps it mapped for the PD's life: the hosted runtime with
//! `MAP_FIXED_NOREPLACE` at process start, seL4 through the Microkit loader. That is what makes a
//! [`Region`] view of the declared range sound. Pass only the PD's own
//! `sys::<this pd>::regions` constants: another PD's declaration names memory this PD does not
//! have, and touching it is a VM fault (on both platforms), reported to the parent.
#![allow(unsafe_code)]

use crate::sys::RegionDecl;
use core::ptr::NonNull;
use pd_core::shm::{Access, ReadOnly, ReadWrite, Region};

/// A view of `decl`, or an empty view (every access fails with `OutOfBounds`) when the address or
/// size cannot be a mapping of this PD; the refusal is logged.
fn view<A: Access>(decl: RegionDecl) -> Region<A> {
    let base = usize::try_from(decl.vaddr)
        .ok()
        .and_then(|a| NonNull::new(a as *mut u8));
    match (base, usize::try_from(decl.size)) {
        (Some(base), Ok(size)) => {
            // SAFETY: the platform maps `decl` at `vaddr..vaddr+size` for the PD's whole life
            // (module doc), and `Region` never creates references into it, only copies.
            unsafe { Region::new(base, size) }
        }
        _ => {
            log::error!(
                "region {} at {:#x} cannot be mapped here",
                decl.name,
                decl.vaddr
            );
            // SAFETY: a zero-sized view never dereferences its (dangling, aligned) base.
            unsafe { Region::new(NonNull::dangling(), 0) }
        }
    }
}

/// A read-write view of a region mapped `rw`; an empty view (logged) if it is mapped read-only.
pub fn rw(decl: RegionDecl) -> Region<ReadWrite> {
    if decl.writable {
        view(decl)
    } else {
        log::error!("region {} is mapped read-only here", decl.name);
        view(RegionDecl { size: 0, ..decl })
    }
}

/// A read-only view of a region (any mapping).
pub fn ro(decl: RegionDecl) -> Region<ReadOnly> {
    view(decl)
}
