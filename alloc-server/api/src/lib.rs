//! Wire types, errors and RAII client stub of the DMA allocator.
//!
//! (Being built: see the open issue for this crate.)
#![no_std]
#![deny(unsafe_code)]
