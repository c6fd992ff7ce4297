//! DMA-capable memory pools: buddy allocator, quotas, zero-on-free, reclaim (no_std server logic).
//!
//! (Being built: see the open issue for this crate.)
#![no_std]
#![deny(unsafe_code)]
