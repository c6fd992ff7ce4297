//! Requests gpu-server sends to the gsp PD: wire types, errors, client stub.
//!
//! (Being built: see the open issue for this crate.)
#![no_std]
#![deny(unsafe_code)]
