//! NVIDIA GSP firmware control: images, boot layout, message queues, RPC, boot (no_std).
//!
//! (Being built: see the open issue for this crate.)
#![no_std]
#![deny(unsafe_code)]
