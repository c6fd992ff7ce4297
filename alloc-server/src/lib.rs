//! alloc-server: DMA-capable memory carved out of the pools `system.xml` declares.
//!
//! Role: gsp and gpu-server need memory the device reaches by physical address (GSP queues, the
//! radix3 firmware map, LibOS arguments, GART buffers). Microkit regions are fixed at build time, so
//! every pool is a region mapped into its owner PD, this server and the device, and the server
//! hands out page-granular, contiguous pieces of it: `{offset, device address, size}` and a handle
//! ([`AllocServer::alloc`]), through a buddy allocator with exact-size grants ([`buddy`]).
//!
//! Protocol: PPC from gsp and gpu, labels and registers as `alloc_api::wire` lays them out; the
//! client stub and RAII buffers are in `alloc-api`. The supervisor's "status changed" notification
//! makes the PD glue report each client's generation ([`AllocServer::observe`]), and a restarted or
//! retired client is reclaimed ([`AllocServer::reclaim`]).
//!
//! Rules, each enforced here and tested:
//! - **Policy**: a caller allocates only from pools it is granted ([`Grant`]); gpu's grants on
//!   client pools are delegation, charged to the client.
//! - **Quota** per pool owner, in bytes and buffers.
//! - **Zero on free**: free memory is zero, so a buffer is zero when handed out (see `pool`).
//! - **Handles name only the caller's own buffers**: forged, stale, double-freed, reclaimed,
//!   someone else's, or a wrong offset are typed errors and change nothing.
//! - **Reclaim**: a restarted or retired client loses everything it held or owned, zeroed.
//! - **Restart keeps what clients hold**: with a [`Journal`] (the PD keeps one in a region that
//!   outlives it), a restarted server adopts its last life's buffers ([`AllocServer::with_journal`]),
//!   so its own fault costs its clients nothing.
//! - **Accounting**: [`AllocServer::pool_usage`], [`AllocServer::client_usage`],
//!   [`AllocServer::usage_lines`] and [`AllocServer::audit`].
//!
//! Trust: callers are untrusted (every register is checked); the pools' owners and the device may
//! write their pool at any time, which can only affect their own data. No heap: all state is fixed
//! arrays sized by the constants below, and exceeding them is a typed error.
#![no_std]
#![deny(unsafe_code)]

mod accounting;
pub mod buddy;
mod config;
pub mod fuzz;
pub mod journal;
mod pool;
mod server;
mod slots;
mod trace;

#[cfg(test)]
mod tests;

pub use accounting::{AuditError, AuditSummary, PoolLine};
pub use config::{policy, ClientSpec, Config, ConfigError, Grant, PoolSpec};
pub use journal::{Journal, JOURNAL_SIZE};
pub use server::{AllocServer, Fresh, ReclaimReport, Start};
pub use trace::Trace;

/// The most pages all pools together may have (128 MiB; this system's pools use 116 MiB).
pub const ARENA_PAGES: usize = buddy::MAX_PAGES as usize;

/// Bitmap words for all pools' buddies: enough for [`ARENA_PAGES`] pages in up to [`MAX_POOLS`]
/// pools (each order's bits take at most pages/64 + 2 words, and the orders' pages halve).
pub const ARENA_WORDS: usize = 2 * ARENA_PAGES / 64 + 2 * buddy::ORDERS * MAX_POOLS;

/// The most pools (a pool id is also a bit in a client's grant mask).
pub const MAX_POOLS: usize = 8;

/// The most clients.
pub const MAX_CLIENTS: usize = 16;

/// Live buffers across all pools (the buffer table's size; handles carry a 16-bit slot).
pub const MAX_BUFFERS: usize = 1024;
const _: () = assert!(MAX_BUFFERS <= u16::MAX as usize);
