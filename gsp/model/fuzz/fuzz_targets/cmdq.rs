//! GSP-RM's command-queue receive path against a hostile driver: well-formed and corrupt
//! commands, continuation records, pointer games, doorbells, fault knobs
//! (`cargo +nightly fuzz run cmdq` in `gsp/model/`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gsp_model::fuzz::command_queue(data));
