//! No heap: a global allocator that refuses every allocation.
//!
//! PD code never allocates (servers are `no_std` without `alloc`), and the images contain no call
//! to an allocator. But rustc asks for a `#[global_allocator]` as soon as any crate in a binary's
//! graph links `alloc` — `object` (the ELF reader `gsp` uses) always does, even when nothing of
//! it allocates. This one satisfies rustc and keeps the rule: an allocation, should one ever
//! appear, fails, which panics and so faults the PD, and its parent sees it.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};

struct NoHeap;

// SAFETY: returning null is how an allocator reports failure; `dealloc` is only ever called with
// a pointer this allocator returned, and it returns none.
unsafe impl GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _layout: Layout) -> *mut u8 {
        core::ptr::null_mut()
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static NO_HEAP: NoHeap = NoHeap;
