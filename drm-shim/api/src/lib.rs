//! DRM uAPI (nouveau, nova) wire types, byte for byte, and the client stub.
//!
//! (Being built: see the open issue for this crate.)
#![no_std]
#![deny(unsafe_code)]
