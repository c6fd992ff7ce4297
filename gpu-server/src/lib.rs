//! GPU resources once the GSP is up: VRAM, BOs, VA spaces, channels, jobs (no_std).
//!
//! (Being built: see the open issue for this crate.)
#![no_std]
#![deny(unsafe_code)]
