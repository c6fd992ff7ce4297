//! A strict simulated NVIDIA GPU speaking the GSP firmware side (no_std).
//!
//! (Being built: see the open issue for this crate.)
#![no_std]
#![deny(unsafe_code)]
