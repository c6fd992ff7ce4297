//! The model's RPC assembly buffer, in static memory: `gsp_model::GspModel` borrows it for its
//! whole life, so it cannot live in the handler that owns the model.
//!
//! A designated `unsafe` module: [`take`] hands the buffer out at most once per address space
//! (an atomic flag), so no two `&mut` to it can exist. That suffices because the model PD is
//! started once and never restarted (a device is not supervised; system.xml gives it no parent),
//! and only its `init` takes the buffer. A second taker (a second model in one process, which no
//! platform builds) gets `None` instead of an alias.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// Bytes of the buffer: one whole message and room for continuation records (GSP-RM's replies
/// to gpu-server are far smaller).
pub const BYTES: usize = 0x2_0000;

struct Scratch {
    bytes: UnsafeCell<[u8; BYTES]>,
    taken: AtomicBool,
}

// SAFETY: the bytes are reachable only through the one `&mut` that `take` hands out once.
unsafe impl Sync for Scratch {}

static SCRATCH: Scratch = Scratch {
    bytes: UnsafeCell::new([0; BYTES]),
    taken: AtomicBool::new(false),
};

/// The buffer, the first time; `None` ever after.
pub fn take() -> Option<&'static mut [u8]> {
    if SCRATCH.taken.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: the flag was clear and is now set for good: this is the only reference ever made.
    Some(unsafe { &mut *SCRATCH.bytes.get() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_handed_out_once() {
        let first = take().unwrap();
        assert_eq!(first.len(), BYTES);
        first[0] = 1;
        assert!(take().is_none());
    }
}
