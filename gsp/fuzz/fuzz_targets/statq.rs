//! The status-queue receive path: arbitrary queue contents, headers and pointers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gsp::cmdq::fuzz::statq(data));
