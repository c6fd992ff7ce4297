//! Wire types, errors and the RAII client stub of alloc-server, the DMA allocator.
//!
//! Role: drivers (gsp, gpu) need memory a device reaches by physical address. alloc-server carves
//! it out of pools that `system.xml` declares, one per PD, each mapped into its owner, alloc-server
//! and the device. A caller asks over PPC ([`wire`]) for `{offset, device address, size}` and a
//! [`DmaHandle`]; the [`client`] stub wraps that in a [`DmaBuffer`] whose drop returns it.
//!
//! Trust: the server trusts no register a caller sends (every id, size, handle and offset is
//! checked, see `alloc-server`), and the stub trusts the server only as far as checking that a
//! reply fits the protocol and the caller's own mapping. A handle names only the caller's own
//! buffers; forging one gets a typed error, never someone else's memory.
#![no_std]
#![deny(unsafe_code)]

pub mod cache;
pub mod client;
mod error;
pub mod wire;

#[cfg(test)]
mod tests;

pub use cache::Coherence;
pub use client::{
    DelegatedBuffer, DmaBuffer, DmaClient, FlushReport, FreeList, FreeSlot, MappedPool,
};
pub use error::{AllocError, DmaError};
pub use wire::{Allocation, ClientUsage, Opcode, PoolUsage, Reply, Request};

/// Allocation granularity: buffers are whole 4 KiB pages.
pub const PAGE_SIZE: u64 = 0x1000;

/// The largest device-address alignment a request may ask for (pools are 2 MiB aligned).
pub const MAX_ALIGN: u64 = 0x20_0000;

/// A pool, by its index in alloc-server's configuration (the order of the DMA regions mapped into
/// the `alloc` PD in `system.xml`; pd-programs generates the constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolId(pub u8);

/// A client (a PD that owns a pool or calls alloc-server), by its index in the server's
/// configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u8);

macro_rules! small_id {
    ($t:ident) => {
        impl $t {
            /// The index.
            pub const fn index(self) -> u8 {
                self.0
            }
        }

        impl TryFrom<u64> for $t {
            type Error = u64;

            /// An id from a message register; the value itself when it does not fit.
            fn try_from(v: u64) -> Result<Self, u64> {
                u8::try_from(v).map(Self).map_err(|_| v)
            }
        }
    };
}
small_id!(PoolId);
small_id!(ClientId);

/// Names one buffer at alloc-server: slot, server epoch and the slot's generation, opaque to
/// callers. 0 is never issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DmaHandle(u64);

impl DmaHandle {
    /// A handle from its wire form (unchecked: the server checks every handle it is given).
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The wire form.
    pub const fn raw(self) -> u64 {
        self.0
    }
}
