//! Random topologies of bridges, ports and endpoints with random BARs, capabilities and corrupted
//! bytes, through the whole server (`cargo +nightly fuzz run topology` in `pci-server/`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pci_server::fuzz::topology(data));
