//! PCIe enumeration, BAR assignment and device grants (no_std server logic).
//!
//! (Being built: see the open issue for this crate.)
#![no_std]
#![deny(unsafe_code)]
