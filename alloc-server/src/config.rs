//! What the PD glue hands the server: clients with their quotas, pools with their three bases,
//! the delegation policy, and which channel is which caller. Everything is resolved by name and
//! checked once, at construction; a bad table is a typed [`ConfigError`].

use pd_core::shm::{ReadWrite, Region};
use pd_core::Channel;

/// A client: a PD that owns a pool or calls the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientSpec {
    /// The PD's name in `system.xml`.
    pub name: &'static str,
    /// The most bytes that may be live in the pools this client owns, whoever allocated them.
    pub quota_bytes: u64,
    /// The most buffers that may be live in the pools this client owns (its share of the
    /// server's buffer table; the shares must add up to at most [`crate::MAX_BUFFERS`]).
    pub max_buffers: u32,
}

/// The delegation policy, one line per (caller, pool): `caller` may allocate from `pool`.
///
/// A grant to the pool's owner is ordinary use; a grant to anyone else is delegation (gpu-server
/// allocating a GART buffer in a client's pool, which that client maps and nobody else does). A
/// delegated buffer is charged to the pool's owner (its quota, its totals, its reclaim) but only
/// the caller that allocated it may free it. Without a grant a caller cannot touch a pool at all,
/// not even to query it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The calling PD.
    pub caller: &'static str,
    /// The pool's region name in `system.xml`.
    pub pool: &'static str,
}

/// A DMA pool: a region mapped into its owner, alloc-server and the device.
#[derive(Debug)]
pub struct PoolSpec {
    /// The region's name in `system.xml`.
    pub name: &'static str,
    /// The owning PD (the one other than alloc and the device model that maps the region).
    pub owner: &'static str,
    /// Where the owner maps the region.
    pub owner_vaddr: u64,
    /// The region's physical (device) address: `setvar region_paddr` on seL4, the runtime's
    /// stable fake base in hosted mode. Must be 2 MiB aligned.
    pub device_base: u64,
    /// The server's own read-write mapping (its size is the pool's size).
    pub memory: Region<ReadWrite>,
}

/// The server's configuration (pools come separately, since they own their mappings).
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    /// Every client, in [`alloc_api::ClientId`] order.
    pub clients: &'a [ClientSpec],
    /// Who may allocate from which pool.
    pub grants: &'a [Grant],
    /// alloc's channel ends and the PD at the other end.
    pub callers: &'a [(Channel, &'static str)],
    /// A value that differs between lives of the server (the supervisor's restart count of
    /// `alloc`, or a clock reading): handles from a previous life are then refused as stale.
    pub epoch: u16,
}

/// Why a configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// More clients than [`crate::MAX_CLIENTS`].
    TooManyClients,
    /// More pools than [`crate::MAX_POOLS`].
    TooManyPools,
    /// Two clients or two pools share a name.
    DuplicateName(&'static str),
    /// A pool, grant or caller names a client that is not configured.
    UnknownClient(&'static str),
    /// A grant names a pool that is not configured.
    UnknownPool(&'static str),
    /// The pool is empty or not a whole number of pages.
    PoolSize(&'static str),
    /// The pool's device base is not 2 MiB aligned, so alignment could not be honoured.
    PoolAlignment(&'static str),
    /// The pools together exceed [`crate::ARENA_PAGES`] pages (128 MiB).
    PoolsTooLarge,
    /// The clients' `max_buffers` add up to more than the buffer table ([`crate::MAX_BUFFERS`]).
    TooManyBuffers,
    /// A channel appears twice in `callers`.
    DuplicateChannel(Channel),
    /// The journal's region refused a write.
    Journal,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooManyClients => write!(f, "more than {} clients", crate::MAX_CLIENTS),
            Self::TooManyPools => write!(f, "more than {} pools", crate::MAX_POOLS),
            Self::DuplicateName(n) => write!(f, "name {n} used twice"),
            Self::UnknownClient(n) => write!(f, "no client named {n}"),
            Self::UnknownPool(n) => write!(f, "no pool named {n}"),
            Self::PoolSize(n) => write!(f, "pool {n} is empty or not page-sized"),
            Self::PoolAlignment(n) => write!(f, "pool {n} device base not 2 MiB aligned"),
            Self::PoolsTooLarge => write!(f, "pools exceed {} pages", crate::ARENA_PAGES),
            Self::TooManyBuffers => write!(f, "max_buffers exceed {}", crate::MAX_BUFFERS),
            Self::DuplicateChannel(c) => write!(f, "channel {c} listed twice"),
            Self::Journal => write!(f, "the journal's region refused a write"),
        }
    }
}

/// This system's policy (the part of the configuration `system.xml` cannot express).
pub mod policy {
    use super::{ClientSpec, Grant};

    const MIB: u64 = 1 << 20;

    /// Every PD that owns a DMA pool. A quota equal to the pool size leaves the pool itself as
    /// the byte limit; the buffer counts share the server's 1024-entry table (896 used).
    pub const CLIENTS: &[ClientSpec] = &[
        ClientSpec {
            name: "gsp",
            quota_bytes: 96 * MIB,
            max_buffers: 256,
        },
        ClientSpec {
            name: "gpu",
            quota_bytes: 8 * MIB,
            max_buffers: 256,
        },
        ClientSpec {
            name: "client0",
            quota_bytes: 4 * MIB,
            max_buffers: 128,
        },
        ClientSpec {
            name: "client1",
            quota_bytes: 4 * MIB,
            max_buffers: 128,
        },
        ClientSpec {
            name: "client2",
            quota_bytes: 4 * MIB,
            max_buffers: 128,
        },
    ];

    /// gsp and gpu use their own pools; gpu also allocates GART buffers in each client's pool on
    /// that client's behalf. Clients never call alloc-server (they have no channel to it).
    pub const GRANTS: &[Grant] = &[
        Grant {
            caller: "gsp",
            pool: "gsp_dma",
        },
        Grant {
            caller: "gpu",
            pool: "gpu_dma",
        },
        Grant {
            caller: "gpu",
            pool: "client0_dma",
        },
        Grant {
            caller: "gpu",
            pool: "client1_dma",
        },
        Grant {
            caller: "gpu",
            pool: "client2_dma",
        },
    ];
}
