//! Wire types, errors and client stub of the PCI server.
//!
//! (Being built: see the open issue for this crate.)
#![no_std]
#![deny(unsafe_code)]
