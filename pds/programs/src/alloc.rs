//! The alloc PD: alloc-server, the system's only allocator of DMA memory. Each `*_dma` region of
//! `system.xml` is one pool ([`pools`]), in the order alloc maps them (gsp_dma 0, gpu_dma 1,
//! client0_dma..client2_dma 2..4: the `alloc_api::PoolId`s callers use), owned by the one other
//! PD that maps it; quotas and grants are alloc-server's `policy` (gpu also allocates GART
//! buffers in each client's pool on its behalf). It serves gsp and gpu (client stub
//! `alloc_api::DmaClient`) and never calls anyone.
//!
//! On the supervisor's notification it reads the status page and reclaims every owner whose
//! instance ended ([`crate::deaths`]): restarted, held or failed.
//!
//! Its own restart costs its clients nothing: the buffer table lives on in the `alloc_journal`
//! region (alloc-server's `journal`), which only alloc maps and a restart does not clear, so the
//! next life adopts every buffer gsp and gpu still hold, contents and handles unchanged. With it
//! the journal keeps which owner instances this PD has already reclaimed (the marks), so an owner
//! that died while alloc was down is reclaimed as soon as alloc is back. Accounting, for the bring-up
//! log and the fault campaign, is logged at start and after every notification ([`AllocPd::report`]):
//!
//! ```text
//! alloc: pool gsp_dma (owner gsp, device 0x100800000): 0 buffers, 0 of 98304 KiB used, ...
//! alloc: client gsp charged-buffers 0 held-buffers 0 allocs 0 frees 0 reclaimed 0 reclaims 0
//! alloc: usage dma-pages 0 vram-pages 0
//! alloc: audit ok live-buffers 0 live-pages 0
//! ```
//!
//! The `usage` line has the format of `pd_core::faults`' `report` action, which reads the same
//! numbers through [`Handler::usage`].

use crate::deaths::Deaths;
use crate::phys;
use crate::regions::{ro, rw};
use crate::status;
use crate::sys::{self, alloc::channels, alloc::paddrs, alloc::regions, supervisor::children};
use crate::sys::{PaddrDecl, RegionDecl};
use alloc_api::{AllocError, PAGE_SIZE};
use alloc_server::journal::MARKS;
use alloc_server::{policy, AllocServer, Config, ConfigError, Journal, PoolSpec, Start};
use pd_core::shm::{ReadOnly, ReadWrite, Region};
use pd_core::{Channel, ChannelSet, Child, Handler, Kernel, MessageInfo, Usage};

/// Who calls alloc on which channel.
const CALLERS: &[(Channel, &str)] = &[
    (channels::GSP, sys::gsp::NAME),
    (channels::GPU, sys::gpu::NAME),
];

/// Every pool owner, by supervisor child: whose instances end matters.
const OWNERS: [(Child, &str); 5] = [
    (children::GSP, sys::gsp::NAME),
    (children::GPU, sys::gpu::NAME),
    (children::CLIENT0, sys::client0::NAME),
    (children::CLIENT1, sys::client1::NAME),
    (children::CLIENT2, sys::client2::NAME),
];

/// One pool as `system.xml` describes it: alloc's mapping, its physical address, the owner and
/// where the owner maps it.
#[derive(Clone, Copy, Debug)]
pub struct PoolDecl {
    /// alloc's own mapping.
    pub map: RegionDecl,
    /// alloc's `setvar region_paddr` of it.
    pub paddr: PaddrDecl,
    /// The owning PD.
    pub owner: &'static str,
    /// Where the owner maps it.
    pub owner_vaddr: u64,
}

/// The pools, in alloc's map order (= `PoolId`).
pub const POOLS: [PoolDecl; 5] = [
    PoolDecl {
        map: regions::GSP_DMA,
        paddr: paddrs::GSP_DMA_PADDR,
        owner: sys::gsp::NAME,
        owner_vaddr: sys::gsp::regions::GSP_DMA.vaddr,
    },
    PoolDecl {
        map: regions::GPU_DMA,
        paddr: paddrs::GPU_DMA_PADDR,
        owner: sys::gpu::NAME,
        owner_vaddr: sys::gpu::regions::GPU_DMA.vaddr,
    },
    PoolDecl {
        map: regions::CLIENT0_DMA,
        paddr: paddrs::CLIENT0_DMA_PADDR,
        owner: sys::client0::NAME,
        owner_vaddr: sys::client0::regions::CLIENT0_DMA.vaddr,
    },
    PoolDecl {
        map: regions::CLIENT1_DMA,
        paddr: paddrs::CLIENT1_DMA_PADDR,
        owner: sys::client1::NAME,
        owner_vaddr: sys::client1::regions::CLIENT1_DMA.vaddr,
    },
    PoolDecl {
        map: regions::CLIENT2_DMA,
        paddr: paddrs::CLIENT2_DMA_PADDR,
        owner: sys::client2::NAME,
        owner_vaddr: sys::client2::regions::CLIENT2_DMA.vaddr,
    },
];

/// The pools' specs: alloc's own views, device bases from the platform (seL4: `setvar`; hosted:
/// the fake base the model translates too).
pub fn pools(k: &dyn Kernel) -> [PoolSpec; 5] {
    POOLS.map(|p| PoolSpec {
        name: p.map.name,
        owner: p.owner,
        owner_vaddr: p.owner_vaddr,
        device_base: phys::paddr(k, p.paddr).0,
        memory: rw(p.map),
    })
}

/// The alloc PD's handler. `server` is `None` only if the tables above disagree with
/// alloc-server's policy (a build error the tests rule out): then every request is refused.
#[derive(Debug)]
pub struct AllocPd {
    server: Option<AllocServer>,
    status: Region<ReadOnly>,
    deaths: Deaths<5>,
}

// Kept in the handler, on a stack sized for it (see the pci PD's module doc).
const _: () = assert!(core::mem::size_of::<AllocPd>() <= 128 * 1024);

/// Build the alloc PD.
pub fn init(k: &mut dyn Kernel) -> AllocPd {
    let pools = pools(k);
    AllocPd::new(
        k,
        pools,
        ro(regions::STATUS),
        Some(rw(regions::ALLOC_JOURNAL)),
    )
}

/// Build the server, on the journal when there is one; the marks it kept when it was adopted.
fn start(
    config: &Config<'_>,
    pools: [PoolSpec; 5],
    journal: Option<Region<ReadWrite>>,
) -> Result<(AllocServer, Option<[u32; MARKS]>), ConfigError> {
    let journal = journal.and_then(|r| {
        Journal::new(r)
            .inspect_err(|e| log::error!("alloc: journal region too small ({e:?}); none kept"))
            .ok()
    });
    let Some(journal) = journal else {
        return AllocServer::new(config, pools).map(|s| (s, None));
    };
    let marks = journal.marks();
    let (server, start) = AllocServer::with_journal(config, pools, journal)?;
    match start {
        Start::Adopted {
            buffers,
            pages,
            torn,
        } => {
            log::info!(
                "alloc: adopted {buffers} buffers ({pages} pages) from the journal; {torn} torn records"
            );
            Ok((server, marks))
        }
        Start::Fresh(why) => {
            log::info!("alloc: fresh start ({why:?}); pools scrubbed");
            Ok((server, None))
        }
    }
}

impl AllocPd {
    /// A PD over `pools` (in `PoolId` order), watching the owners on `status`, keeping its
    /// buffer table in `journal` when given.
    pub fn new(
        k: &dyn Kernel,
        pools: [PoolSpec; 5],
        status: Region<ReadOnly>,
        journal: Option<Region<ReadWrite>>,
    ) -> Self {
        // The supervisor's count of our own starts tells this life's handles from the last's.
        let epoch = status::read(&status, children::ALLOC)
            .map_or(k.now_ns() >> 20, |s| u64::from(s.generation));
        let config = Config {
            clients: policy::CLIENTS,
            grants: policy::GRANTS,
            callers: CALLERS,
            // CAST: the epoch only has to differ between lives; its low bits do.
            epoch: epoch as u16,
        };
        let (server, marks) = match start(&config, pools, journal) {
            Ok((server, marks)) => (Some(server), marks),
            Err(e) => {
                log::error!("alloc: bad pool configuration: {e}; refusing all");
                (None, None)
            }
        };
        let children = OWNERS.map(|(c, _)| c);
        let resumed = marks.and_then(|m| m.get(..OWNERS.len())?.try_into().ok());
        let deaths = match resumed {
            Some(handled) => Deaths::resume(children, handled),
            None => Deaths::new(&status, children),
        };
        let mut pd = Self {
            server,
            deaths,
            status,
        };
        // Owners that died while this PD was down (nothing when it started fresh).
        pd.reclaim_ended();
        pd.report();
        pd
    }

    /// The server, when configured.
    pub fn server(&self) -> Option<&AllocServer> {
        self.server.as_ref()
    }

    /// Log the accounting: one line per pool and per client, the leak-check totals and the audit.
    pub fn report(&self) {
        let Some(srv) = &self.server else {
            return;
        };
        for line in srv.usage_lines() {
            log::info!("{line}");
        }
        for name in policy::CLIENTS.iter().map(|c| c.name) {
            if let Some(u) = srv.client_id(name).and_then(|id| srv.client_usage(id).ok()) {
                log::info!(
                    "alloc: client {name} charged-buffers {} held-buffers {} allocs {} frees {} reclaimed {} reclaims {}",
                    u.charged_buffers,
                    u.held_buffers,
                    u.allocs,
                    u.frees,
                    u.reclaimed,
                    u.reclaims
                );
            }
        }
        if let Some(u) = self.usage() {
            log::info!("alloc: usage dma-pages {} vram-pages 0", u.dma_pages);
        }
        match srv.audit() {
            Ok(s) => log::info!(
                "alloc: audit ok live-buffers {} live-pages {}",
                s.live_buffers,
                s.live_bytes / PAGE_SIZE
            ),
            Err(e) => log::error!("alloc: audit FAILED {e:?}"),
        }
    }

    /// Reclaim every owner whose instance ended since the last look.
    fn reclaim_ended(&mut self) {
        let Some(srv) = self.server.as_mut() else {
            return;
        };
        for (child, generation) in self.deaths.since(&self.status) {
            let Some(&(_, name)) = OWNERS.iter().find(|(c, _)| *c == child) else {
                continue;
            };
            let Some(id) = srv.client_id(name) else {
                continue;
            };
            log::info!("alloc: {name} instance {generation} ended; reclaiming");
            if let Err(e) = srv.reclaim(id) {
                log::error!("alloc: reclaiming {name} failed: {e}");
            }
        }
        if let Some(journal) = srv.journal() {
            let mut marks = [0; MARKS];
            for (m, h) in marks.iter_mut().zip(self.deaths.handled()) {
                *m = h;
            }
            if journal.set_marks(marks).is_err() {
                log::error!("alloc: the journal refused the marks");
            }
        }
    }
}

impl Handler for AllocPd {
    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        match self.server.as_mut() {
            Some(srv) => srv.protected(k, ch, msg),
            None => alloc_api::wire::error_reply(AllocError::Internal),
        }
    }

    fn notified(&mut self, _k: &mut dyn Kernel, set: ChannelSet) {
        if set.contains(channels::SUPERVISOR) {
            self.reclaim_ended();
            self.report();
        }
    }

    fn usage(&self) -> Option<Usage> {
        let s = self.server.as_ref()?.audit().ok()?;
        Some(Usage {
            dma_pages: s.live_bytes / PAGE_SIZE,
            vram_pages: 0,
        })
    }
}
