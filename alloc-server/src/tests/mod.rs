//! Unit and property tests of the server, over real byte buffers standing in for the pools.
#![allow(unsafe_code)] // Region views of the test buffers.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // Tests may panic.

extern crate std;

mod buddy;
mod fuzz;
mod props;
mod restart;
mod rules;
mod system;

use crate::fuzz::Registers;
use crate::*;
use alloc_api::{AllocError, Allocation, ClientId, PoolId};
use core::ptr::NonNull;
use pd_core::shm::{ReadWrite, Region};
use pd_core::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};
use std::boxed::Box;
use std::vec;
use std::vec::Vec;

pub(crate) const PAGE: u64 = 4096;
pub(crate) const MIB: u64 = 1 << 20;

/// A view of `mem` (which must outlive it and not move its heap buffer).
pub(crate) fn region(mem: &mut [u8]) -> Region<ReadWrite> {
    // SAFETY: every caller keeps the buffer alive (boxed in the fixture) for as long as the views
    // exist, and reads it only through views.
    unsafe { Region::new(NonNull::new(mem.as_mut_ptr()).unwrap(), mem.len()) }
}

/// (pool name, owner, size, device base) of the test system: the real system's shape, smaller.
pub(crate) const POOLS: [(&str, &str, u64, u64); 4] = [
    ("gsp_dma", "gsp", 4 * MIB, 0x4000_0000),
    ("gpu_dma", "gpu", MIB, 0x4800_0000),
    ("client0_dma", "client0", 256 * 1024, 0x5000_0000),
    ("client1_dma", "client1", 256 * 1024, 0x5040_0000),
];

pub(crate) const CLIENTS: [ClientSpec; 4] = [
    ClientSpec {
        name: "gsp",
        quota_bytes: 3 * MIB,
        max_buffers: 64,
    },
    ClientSpec {
        name: "gpu",
        quota_bytes: 2 * MIB,
        max_buffers: 32,
    },
    ClientSpec {
        name: "client0",
        quota_bytes: 192 * 1024,
        max_buffers: 8,
    },
    ClientSpec {
        name: "client1",
        quota_bytes: 256 * 1024,
        max_buffers: 8,
    },
];

pub(crate) const GRANTS: [Grant; 4] = [
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
];

/// alloc's channel ends in the test system.
pub(crate) const GSP_CH: Channel = Channel::new(1);
pub(crate) const GPU_CH: Channel = Channel::new(2);
const CALLERS: [(Channel, &str); 2] = [(GSP_CH, "gsp"), (GPU_CH, "gpu")];

pub(crate) const GSP: ClientId = ClientId(0);
pub(crate) const GPU: ClientId = ClientId(1);
pub(crate) const CLIENT0: ClientId = ClientId(2);
pub(crate) const CLIENT1: ClientId = ClientId(3);
pub(crate) const GSP_DMA: PoolId = PoolId(0);
pub(crate) const GPU_DMA: PoolId = PoolId(1);
pub(crate) const CLIENT0_DMA: PoolId = PoolId(2);
pub(crate) const CLIENT1_DMA: PoolId = PoolId(3);

pub(crate) fn config(epoch: u16) -> Config<'static> {
    Config {
        clients: &CLIENTS,
        grants: &GRANTS,
        callers: &CALLERS,
        epoch,
    }
}

/// The test system's pools over `mem`.
fn specs(mem: &mut [Vec<u8>]) -> Vec<PoolSpec> {
    POOLS
        .iter()
        .zip(mem.iter_mut())
        .map(|(&(name, owner, _, base), m)| PoolSpec {
            name,
            owner,
            owner_vaddr: 0x5000_0000,
            device_base: base,
            memory: region(m),
        })
        .collect()
}

/// A server over heap buffers, with the owners' views of the same memory for checking it, and
/// optionally a journal.
pub(crate) struct Fixture {
    pub(crate) server: Box<AllocServer>,
    pub(crate) owners: Vec<Region<ReadWrite>>,
    /// The journal's memory, when the server keeps one.
    pub(crate) journal: Option<Region<ReadWrite>>,
    mem: Vec<Vec<u8>>,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self::with_epoch(1)
    }

    pub(crate) fn with_epoch(epoch: u16) -> Self {
        let mut mem: Vec<Vec<u8>> = POOLS.iter().map(|p| vec![0u8; p.2 as usize]).collect();
        // Start dirty, as a restarted server finds its regions: construction must scrub.
        for m in &mut mem {
            m.fill(0xee);
        }
        let owners = mem.iter_mut().map(|m| region(m)).collect();
        let server = Box::new(AllocServer::new(&config(epoch), specs(&mut mem)).unwrap());
        Self {
            server,
            owners,
            journal: None,
            mem,
        }
    }

    /// A server keeping its table in a journal (a first boot: the journal's memory is zero).
    pub(crate) fn journaled(epoch: u16) -> (Self, Start) {
        let mut fx = Self::with_epoch(epoch);
        fx.journal = Some(region(vec![0u8; JOURNAL_SIZE].leak()));
        let start = fx.restart(epoch);
        (fx, start)
    }

    /// Start a new server over the same pools and journal, as a restarted alloc PD does.
    pub(crate) fn restart(&mut self, epoch: u16) -> Start {
        let journal = Journal::new(self.journal.as_ref().unwrap().alias()).unwrap();
        let (server, start) =
            AllocServer::with_journal(&config(epoch), specs(&mut self.mem), journal).unwrap();
        *self.server = server;
        start
    }

    /// Whether `len` bytes at `offset` of `pool` are all `byte`.
    pub(crate) fn all(&self, pool: PoolId, offset: u64, len: u64, byte: u8) -> bool {
        let mut buf = vec![0u8; len as usize];
        self.owners[usize::from(pool.0)]
            .read_bytes(offset as usize, &mut buf)
            .unwrap();
        buf.iter().all(|&b| b == byte)
    }

    /// The owner writes `byte` over a granted buffer.
    pub(crate) fn scribble(&self, pool: PoolId, a: &Allocation, byte: u8) {
        self.owners[usize::from(pool.0)]
            .fill(a.offset as usize, a.size as usize, byte)
            .unwrap();
    }

    pub(crate) fn alloc(
        &mut self,
        caller: ClientId,
        pool: PoolId,
        size: u64,
    ) -> Result<Allocation, AllocError> {
        self.server.alloc(caller, pool, size, PAGE)
    }
}

/// A caller's kernel whose PPCs go straight into the server's `protected` on `server_ch`.
pub(crate) struct Loopback<'s> {
    pub(crate) server: &'s mut AllocServer,
    pub(crate) server_ch: Channel,
    pub(crate) mrs: MessageRegisters,
}

impl Kernel for Loopback<'_> {
    fn pd_name(&self) -> &str {
        "gpu"
    }
    fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
        Ok(())
    }
    fn ppcall(&mut self, _: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        let mut callee = Registers::default();
        callee.0.copy_prefix(&self.mrs, msg.count());
        let reply = self.server.protected(&mut callee, self.server_ch, msg);
        self.mrs.copy_prefix(&callee.0, reply.count());
        Ok(reply)
    }
    fn mrs(&mut self) -> &mut MessageRegisters {
        &mut self.mrs
    }
    fn now_ns(&self) -> u64 {
        0
    }
}
