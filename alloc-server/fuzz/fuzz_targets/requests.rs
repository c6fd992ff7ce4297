//! PPC traffic from arbitrary channels into alloc-server: the request decoder, every check, the
//! buffer table and the buddy, with the audit after each step and leak and zeroing checks at the
//! end (see `alloc_server::fuzz::requests`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = alloc_server::fuzz::requests(data) {
        panic!("alloc-server: {failure:?}"); // PANIC: how libFuzzer records a finding.
    }
});
