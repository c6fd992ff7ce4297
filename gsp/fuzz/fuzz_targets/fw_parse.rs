//! Arbitrary bytes through every firmware-file parser of `gsp::elf`: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gsp::elf::fuzz_parse(data));
