//! Arbitrary ioctl numbers and argument blocks from arbitrary clients: errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pd_core::shm::Region;
use std::sync::OnceLock;

static BUF: OnceLock<usize> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let base = *BUF.get_or_init(|| vec![0u8; 0x10000].leak().as_mut_ptr() as usize);
    // SAFETY: the leaked 64 KiB buffer lives forever and is only used through this view.
    let buf = unsafe { Region::new(std::ptr::NonNull::new(base as *mut u8).unwrap(), 0x10000) };
    drm_shim::fuzz::ioctl_sequence(&buf, data);
});
