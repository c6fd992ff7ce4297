//! One function with a random 4 KiB configuration space, through enumeration, assignment, the
//! table and client requests (`cargo +nightly fuzz run config_space` in `pci-server/`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pci_server::fuzz::config_space(data));
