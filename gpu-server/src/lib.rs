//! gpu-server (no_std): owns the GPU's resources once the GSP is up — VRAM, buffer objects in VRAM
//! or GART, one GPU VA space per context with page tables in the GPU's own format, GPFIFO
//! channels and job submission with fences — and serves them to drm-shim as [`gpu_api::GpuOps`].
//!
//! The peers are traits ([`deps::Rm`] for RM objects through the gsp PD, [`deps::Dma`] for DMA
//! memory through alloc-server, [`gsp::regs::Mmio`] for the doorbell; together [`deps::Peers`]),
//! so the same code runs
//! isolated (each a PPC client stub) and monolithic (direct calls). A [`Session`] borrows the
//! server and its peers for one request.
//!
//! Trust: drm-shim is trusted to say which client a context belongs to; every id, size, range and
//! offset is checked. Cleanup: closing a context frees every RM object, BO, mapping, page table
//! and channel it owned, and nothing of another context. A restarted gpu-server starts from
//! nothing with a new generation, so context ids of the previous instance answer `ContextLost`.
#![no_std]
#![deny(unsafe_code)]

pub mod channel;
pub mod ctx;
pub mod deps;
pub mod pt;
pub mod vm;
pub mod vram;

use ctx::{Bo, Ctx, Place, RmHandles, Win};
use deps::{Dma, Peers, Pool};
use gpu_api::{
    BoDesc, BoId, ChanId, ClientId, CtxId, DeviceInfo, Fence, GpuError, GpuOps, Push, Submitted,
};
use gsp::fw::current::rm::{self as rmdef, ChannelClasses, RmClass, RmControl};
use gsp::mmu::{PageSize, Pte, PteFlags, Target};
use pd_core::shm::{ReadWrite, Region};
use vm::Backing;
use vram::{Window, MAX_CLIENT_WORDS, MAX_WINDOW_WORDS};
use zerocopy::{FromZeros, IntoBytes};

/// Client PDs gpu-server knows (drm-shim's client channels).
pub const MAX_CLIENTS: usize = 3;
/// Contexts at once.
pub const MAX_CTXS: usize = 8;
/// Page-table pages gpu-server holds over all contexts.
pub const MAX_TABLE_PAGES: usize = 512;

/// Where one client sees its CPU-mappable memory.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientMaps {
    /// Address of the client's VRAM window in the client.
    pub vram_vaddr: u64,
    /// Address of the client's DMA pool in the client.
    pub dma_vaddr: u64,
}

/// Fixed facts gpu-server starts from (system.xml, pci-server and the GSP's static info).
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// This instance's generation (from the supervisor's status page): context ids carry it.
    pub generation: u8,
    /// The device's parameters.
    pub device: DeviceInfo,
    /// RM classes of the chip's channels.
    pub classes: ChannelClasses,
    /// Physical base of gpu-server's DMA pool (page tables are written through its view).
    pub dma_base: u64,
    /// Per client, where it sees its memory.
    pub clients: [ClientMaps; MAX_CLIENTS],
}

/// gpu-server's state.
#[derive(Debug)]
pub struct GpuServer {
    cfg: Config,
    vram: Window<MAX_WINDOW_WORDS>,
    client_vram: [Option<Window<MAX_CLIENT_WORDS>>; MAX_CLIENTS],
    dma_view: Region<ReadWrite>,
    tables: heapless::FnvIndexMap<u64, deps::DmaBuf, MAX_TABLE_PAGES>,
    ctxs: [Option<Ctx>; MAX_CTXS],
    next_client: u32,
}

impl GpuServer {
    /// A server over the general VRAM window (`vram`), the clients' windows and its DMA pool view.
    pub fn new(
        cfg: Config,
        vram: Window<MAX_WINDOW_WORDS>,
        client_vram: [Option<Window<MAX_CLIENT_WORDS>>; MAX_CLIENTS],
        dma_view: Region<ReadWrite>,
    ) -> Self {
        Self {
            cfg,
            vram,
            client_vram,
            dma_view,
            tables: heapless::FnvIndexMap::new(),
            ctxs: Default::default(),
            next_client: 0,
        }
    }

    /// Contexts open.
    pub fn contexts(&self) -> usize {
        self.ctxs.iter().flatten().count()
    }

    /// VRAM bytes in use over all windows.
    pub fn vram_used(&self) -> u64 {
        self.vram.used()
            + self
                .client_vram
                .iter()
                .flatten()
                .map(Window::used)
                .sum::<u64>()
    }

    /// What the server holds for others, for leak checks ([`pd_core::Handler::usage`]): VRAM
    /// pages allocated from its windows (BOs and channels' kernel objects; the server itself
    /// holds none permanently). DMA pages are alloc-server's to count (it grants them), so
    /// they are 0 here rather than counted twice.
    pub fn usage(&self) -> pd_core::Usage {
        pd_core::Usage {
            dma_pages: 0,
            vram_pages: self.vram_used() / vram::PAGE,
        }
    }

    /// Page-table pages held.
    pub fn table_pages(&self) -> usize {
        self.tables.len()
    }

    fn ctx_index(&self, id: CtxId) -> Result<usize, GpuError> {
        // CAST: the low byte of an id is the slot.
        let slot = (id.0 & 0xff) as usize;
        if id.0 >> 24 != u32::from(self.cfg.generation) {
            return Err(GpuError::ContextLost);
        }
        match self.ctxs.get(slot) {
            Some(Some(c)) if c.id == id => Ok(slot),
            _ => Err(GpuError::NotFound),
        }
    }

    fn ctx_mut(&mut self, i: usize) -> Result<&mut Ctx, GpuError> {
        self.ctxs
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or(GpuError::NotFound)
    }

    /// Give back everything the server holds — channels' method buffers, GART BOs and page
    /// tables to alloc-server, BOs' VRAM to its windows — without an RM call: for when every RM
    /// object is gone already (the GSP firmware was booted again, or the gsp PD restarted) and
    /// the server is about to start over. Afterwards it holds nothing: no contexts, no table
    /// pages, no VRAM in use. A free alloc-server refuses is only counted: that buffer stays
    /// lost to this server, as it would be without this call.
    pub fn release(&mut self, dma: &mut dyn Dma) -> Released {
        let mut r = Released::default();
        let mut give = |pool, buf| match dma.dma_free(pool, buf) {
            Ok(()) => r.freed += 1,
            Err(_) => r.refused += 1,
        };
        for ctx in self.ctxs.iter_mut().filter_map(Option::take) {
            for chan in ctx.chans.iter().flatten() {
                give(Pool::Server, chan.mthdbuf);
            }
            for bo in ctx.bos.iter().flatten() {
                match bo.place {
                    Place::Gart(buf) => give(Pool::Client(ctx.client), buf),
                    Place::Vram {
                        fb,
                        win: Win::General,
                    } => {
                        let _ = self.vram.free(fb, bo.size);
                    }
                    Place::Vram {
                        fb,
                        win: Win::Client,
                    } => {
                        if let Some(w) = self
                            .client_vram
                            .get_mut(usize::from(ctx.client.0))
                            .and_then(Option::as_mut)
                        {
                            let _ = w.free(fb, bo.size);
                        }
                    }
                }
            }
        }
        for (_, buf) in self.tables.iter() {
            give(Pool::Server, *buf);
        }
        self.tables.clear();
        r
    }

    /// Borrow the server and its peers for one request.
    pub fn session<'a>(&'a mut self, peers: &'a mut dyn Peers) -> Session<'a> {
        Session {
            srv: self,
            p: peers,
        }
    }
}

/// What [`GpuServer::release`] gave back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// DMA buffers alloc-server took back.
    pub freed: u32,
    /// DMA buffers it refused (lost).
    pub refused: u32,
}

/// The server with its peers, for one request: implements [`GpuOps`].
pub struct Session<'a> {
    srv: &'a mut GpuServer,
    p: &'a mut dyn Peers,
}

impl core::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("srv", &self.srv)
            .finish_non_exhaustive()
    }
}

/// Page tables in gpu-server's DMA pool, allocated through alloc-server.
struct Tables<'s, 'a> {
    s: &'s mut Session<'a>,
}

impl pt::TableMemory for Tables<'_, '_> {
    fn target(&self) -> Target {
        Target::SysCoherent
    }
    fn alloc_table(&mut self) -> Result<u64, GpuError> {
        let b = self.s.p.dma_alloc(Pool::Server, 0x1000, 0x1000)?;
        if self.s.srv.tables.insert(b.dev_addr, b).is_err() {
            let _ = self.s.p.dma_free(Pool::Server, b);
            return Err(GpuError::NoMemory);
        }
        Ok(b.dev_addr)
    }
    fn free_table(&mut self, addr: u64) {
        if let Some(b) = self.s.srv.tables.remove(&addr) {
            let _ = self.s.p.dma_free(Pool::Server, b);
        }
    }
    fn write_u64(&mut self, addr: u64, value: u64) -> Result<(), GpuError> {
        if !self.s.srv.tables.contains_key(&(addr & !0xfff)) {
            return Err(GpuError::Device);
        }
        let off = addr
            .checked_sub(self.s.srv.cfg.dma_base)
            .and_then(|o| usize::try_from(o).ok())
            .ok_or(GpuError::Device)?;
        self.s
            .srv
            .dma_view
            .write(off, &value)
            .map_err(|_| GpuError::Device)
    }
}

impl Session<'_> {
    /// Close every context, as [`GpuOps::ctx_close`] does each (RM objects, channels, BOs, VA
    /// space): for when their caller, drm-shim, restarted. Its files are gone, and with them
    /// every reason to keep what they opened. Returns how many closed cleanly.
    pub fn close_all(&mut self) -> usize {
        let ids: heapless::Vec<CtxId, MAX_CTXS> =
            self.srv.ctxs.iter().flatten().map(|c| c.id).collect();
        ids.iter().filter(|&&id| self.ctx_close(id).is_ok()).count()
    }

    fn ctx(&self, id: CtxId) -> Result<usize, GpuError> {
        self.srv.ctx_index(id)
    }

    /// Rewrite the PTEs of `range` from what the VA space says backs each page.
    fn write_ptes(&mut self, c: usize, (va, len): (u64, u64)) -> Result<(), GpuError> {
        let mut at = va;
        while at < va + len {
            let pte = self.pte_for(c, at)?;
            let ctx = self.srv.ctx_mut(c)?;
            let mut pt = ctx.pt.take().ok_or(GpuError::NoVaSpace)?;
            let r = pt.set(&mut Tables { s: self }, at, pte);
            if let Ok(ctx) = self.srv.ctx_mut(c) {
                ctx.pt = Some(pt);
            }
            r?;
            at += vm::PAGE;
        }
        Ok(())
    }

    fn pte_for(&mut self, c: usize, va: u64) -> Result<Pte, GpuError> {
        let ctx = self.srv.ctx_mut(c)?;
        let backing = ctx.va.as_ref().ok_or(GpuError::NoVaSpace)?.backing(va);
        let (target, addr) = match backing {
            Backing::None => return Ok(Pte::INVALID),
            Backing::Sparse => return Ok(Pte::SPARSE),
            Backing::Bo { bo, offset } => match ctx.any_bo(bo).ok_or(GpuError::NotFound)?.place {
                Place::Vram { fb, .. } => (Target::Vram, fb + offset),
                Place::Gart(buf) => (Target::SysCoherent, buf.dev_addr + offset),
            },
        };
        let flags = PteFlags {
            volatile: target != Target::Vram,
            ..PteFlags::default()
        };
        Pte::page(target, addr, PageSize::K4, flags).map_err(|_| GpuError::Device)
    }

    fn free_bo(&mut self, c: usize, bo: &Bo) {
        match bo.place {
            Place::Vram {
                fb,
                win: Win::General,
            } => {
                let _ = self.srv.vram.free(fb, bo.size);
            }
            Place::Vram {
                fb,
                win: Win::Client,
            } => {
                let client = self
                    .srv
                    .ctxs
                    .get(c)
                    .and_then(Option::as_ref)
                    .map(|x| usize::from(x.client.0));
                if let Some(w) = client
                    .and_then(|i| self.srv.client_vram.get_mut(i))
                    .and_then(Option::as_mut)
                {
                    let _ = w.free(fb, bo.size);
                }
            }
            Place::Gart(buf) => {
                let client = self
                    .srv
                    .ctxs
                    .get(c)
                    .and_then(Option::as_ref)
                    .map(|x| x.client);
                if let Some(cl) = client {
                    let _ = self.p.dma_free(Pool::Client(cl), buf);
                }
            }
        }
    }
}

impl GpuOps for Session<'_> {
    fn device_info(&mut self) -> Result<DeviceInfo, GpuError> {
        Ok(self.srv.cfg.device)
    }

    fn vram_used(&mut self) -> Result<u64, GpuError> {
        Ok(self.srv.vram_used())
    }

    fn ptimer_ns(&mut self) -> Result<u64, GpuError> {
        let lo = self
            .p
            .read32(rmdef::usermode::BASE + rmdef::usermode::TIME_0)
            .map_err(|_| GpuError::Device)?;
        let hi = self
            .p
            .read32(rmdef::usermode::BASE + rmdef::usermode::TIME_1)
            .map_err(|_| GpuError::Device)?;
        Ok(u64::from(hi) << 32 | u64::from(lo))
    }

    fn ctx_open(&mut self, client: ClientId) -> Result<CtxId, GpuError> {
        if usize::from(client.0) >= MAX_CLIENTS {
            return Err(GpuError::Invalid);
        }
        let slot = self
            .srv
            .ctxs
            .iter()
            .position(Option::is_none)
            .ok_or(GpuError::NoMemory)?;
        self.srv.next_client = self.srv.next_client.wrapping_add(1);
        // Root client handles are unique across generations and contexts.
        let hclient = 0xc100_0000
            | (u32::from(self.srv.cfg.generation) << 16)
            | (self.srv.next_client & 0xffff);
        let mut p = rmdef::NV0000_ALLOC_PARAMETERS::new_zeroed();
        p.hClient = hclient;
        self.p.rm_alloc(
            hclient,
            hclient,
            hclient,
            RmClass::Nv01RootClient.into(),
            p.as_bytes(),
        )?;
        let dev = rmdef::NV0080_ALLOC_PARAMETERS::new_zeroed();
        let sub = rmdef::NV2080_ALLOC_PARAMETERS::new_zeroed();
        let tree = self
            .p
            .rm_alloc(
                hclient,
                hclient,
                ctx::handle::DEVICE,
                RmClass::Nv01Device0.into(),
                dev.as_bytes(),
            )
            .and_then(|()| {
                self.p.rm_alloc(
                    hclient,
                    ctx::handle::DEVICE,
                    ctx::handle::SUBDEVICE,
                    RmClass::Nv20Subdevice0.into(),
                    sub.as_bytes(),
                )
            });
        if let Err(e) = tree {
            let _ = self.p.rm_free(hclient, hclient, hclient);
            return Err(e);
        }
        // CAST: slot < MAX_CTXS.
        let id = CtxId(
            u32::from(self.srv.cfg.generation) << 24
                | (self.srv.next_client & 0xffff) << 8
                | slot as u32,
        );
        let handles = RmHandles {
            client: hclient,
            device: ctx::handle::DEVICE,
            subdevice: ctx::handle::SUBDEVICE,
            vaspace: None,
        };
        if let Some(s) = self.srv.ctxs.get_mut(slot) {
            *s = Some(Ctx::new(id, client, handles));
        }
        Ok(id)
    }

    fn ctx_close(&mut self, id: CtxId) -> Result<(), GpuError> {
        let c = self.ctx(id)?;
        let chans: heapless::Vec<ChanId, { ctx::MAX_CHANS }> = self
            .srv
            .ctx_mut(c)
            .map(|x| channel::channel_ids(x).collect())
            .unwrap_or_default();
        for ch in chans {
            let _ = self.channel_free_impl(c, ch);
        }
        let bos: [Option<Bo>; ctx::MAX_BOS] =
            core::mem::replace(&mut self.srv.ctx_mut(c)?.bos, [None; ctx::MAX_BOS]);
        for bo in bos.iter().flatten() {
            self.free_bo(c, bo);
        }
        let Some(mut ctx) = self.srv.ctxs.get_mut(c).and_then(Option::take) else {
            return Err(GpuError::NotFound);
        };
        // Freeing the root client frees the whole RM tree (device, VA space, channels).
        let freed = self.p.rm_free(ctx.rm.client, ctx.rm.client, ctx.rm.client);
        if let Some(mut pt) = ctx.pt.take() {
            pt.release(&mut Tables { s: self });
        }
        freed
    }

    fn bo_new(
        &mut self,
        id: CtxId,
        domain: u32,
        size: u64,
        align: u64,
    ) -> Result<BoDesc, GpuError> {
        use drm_domain::*;
        let c = self.ctx(id)?;
        if size == 0 || !(align == 0 || align.is_power_of_two()) || align > 0x20_0000 {
            return Err(GpuError::Invalid);
        }
        let size = size
            .checked_next_multiple_of(vram::PAGE)
            .ok_or(GpuError::Invalid)?;
        let client = self.srv.ctx_mut(c)?.client;
        let ci = usize::from(client.0);
        let maps = *self.srv.cfg.clients.get(ci).ok_or(GpuError::Invalid)?;
        let (place, map_addr, placed) = if domain & VRAM != 0 {
            if domain & MAPPABLE != 0 {
                let w = self
                    .srv
                    .client_vram
                    .get_mut(ci)
                    .and_then(Option::as_mut)
                    .ok_or(GpuError::NoMemory)?;
                let fb = w.alloc(size, align)?;
                (
                    Place::Vram {
                        fb,
                        win: Win::Client,
                    },
                    maps.vram_vaddr + (fb - w.fb_base()),
                    VRAM | MAPPABLE,
                )
            } else {
                let fb = self.srv.vram.alloc(size, align)?;
                (
                    Place::Vram {
                        fb,
                        win: Win::General,
                    },
                    0,
                    VRAM,
                )
            }
        } else if domain & (GART | CPU) != 0 {
            let buf = self
                .p
                .dma_alloc(Pool::Client(client), size, align.max(vram::PAGE))?;
            (
                Place::Gart(buf),
                maps.dma_vaddr + buf.offset,
                GART | (domain & (MAPPABLE | COHERENT)),
            )
        } else {
            return Err(GpuError::Invalid);
        };
        let bo = Bo {
            size,
            domain: placed,
            place,
            map_addr,
            kernel: false,
        };
        match self.srv.ctx_mut(c)?.add_bo(bo) {
            Ok(bid) => Ok(BoDesc {
                id: bid,
                size,
                domain: placed,
                map_addr,
            }),
            Err(e) => {
                self.free_bo(c, &bo);
                Err(e)
            }
        }
    }

    fn bo_free(&mut self, id: CtxId, bo: BoId) -> Result<(), GpuError> {
        let c = self.ctx(id)?;
        let ctx = self.srv.ctx_mut(c)?;
        ctx.bo(bo)?;
        let b = ctx.take_bo(bo).ok_or(GpuError::NotFound)?;
        let ranges = ctx.va.as_mut().map(|v| v.unmap_bo(bo)).unwrap_or_default();
        for r in ranges {
            if let Err(e) = self.write_ptes(c, r) {
                // The GPU may still reach the memory through a PTE not cleared: it stays with
                // the context, out of the client's reach, and goes with its VA space at close
                // (neither leaked nor handed to anyone while mapped).
                let _ = self.srv.ctx_mut(c)?.add_bo(Bo { kernel: true, ..b });
                return Err(e);
            }
        }
        self.free_bo(c, &b);
        Ok(())
    }

    fn bo_busy(&mut self, id: CtxId, bo: BoId) -> Result<bool, GpuError> {
        let c = self.ctx(id)?;
        let ctx = self.srv.ctx_mut(c)?;
        ctx.bo(bo)?;
        let mapped = ctx.va.as_ref().is_some_and(|v| v.maps_bo(bo));
        Ok(mapped && self.ctx_busy(c)?)
    }

    fn vm_init(&mut self, id: CtxId, kernel_addr: u64, kernel_size: u64) -> Result<(), GpuError> {
        let c = self.ctx(id)?;
        let ctx = self.srv.ctx_mut(c)?;
        if ctx.va.is_some() {
            return Err(GpuError::AlreadyInitialised);
        }
        let space = vm::VaSpace::new(kernel_addr, kernel_size)?;
        let (hclient, hdevice) = (ctx.rm.client, ctx.rm.device);
        let pt = pt::PageTables::new(&mut Tables { s: self })?;
        let root = pt.root();
        let mut p = rmdef::NV_VASPACE_ALLOCATION_PARAMETERS::new_zeroed();
        p.flags = rmdef::NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED;
        p.vaSize = vm::VA_END;
        let setup = self
            .p
            .rm_alloc(
                hclient,
                hdevice,
                ctx::handle::VASPACE,
                RmClass::FermiVaspaceA.into(),
                p.as_bytes(),
            )
            .and_then(|()| {
                let mut d = rmdef::NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS::new_zeroed();
                d.physAddress = root;
                d.numEntries = 4;
                d.flags = 1; // APERTURE = SYSMEM_COH: the tables are in gpu-server's DMA pool.
                d.hVASpace = ctx::handle::VASPACE;
                self.p.rm_control(
                    hclient,
                    hdevice,
                    RmControl::DmaSetPageDirectory.into(),
                    d.as_mut_bytes(),
                )
            });
        let mut pt = pt;
        if let Err(e) = setup {
            let _ = self.p.rm_free(hclient, hdevice, ctx::handle::VASPACE);
            pt.release(&mut Tables { s: self });
            return Err(e);
        }
        let ctx = self.srv.ctx_mut(c)?;
        ctx.va = Some(space);
        ctx.pt = Some(pt);
        ctx.rm.vaspace = Some(ctx::handle::VASPACE);
        Ok(())
    }

    fn vm_map(
        &mut self,
        id: CtxId,
        bo: Option<BoId>,
        addr: u64,
        bo_offset: u64,
        range: u64,
    ) -> Result<(), GpuError> {
        let c = self.ctx(id)?;
        let ctx = self.srv.ctx_mut(c)?;
        let changed = match bo {
            None => ctx
                .va
                .as_mut()
                .ok_or(GpuError::NoVaSpace)?
                .map_sparse(addr, range)?,
            Some(b) => {
                let size = ctx.bo(b)?.size;
                if bo_offset.checked_add(range).is_none_or(|end| end > size)
                    || !bo_offset.is_multiple_of(vm::PAGE)
                {
                    return Err(GpuError::Invalid);
                }
                ctx.va
                    .as_mut()
                    .ok_or(GpuError::NoVaSpace)?
                    .map(b, bo_offset, addr, range)?
            }
        };
        self.write_ptes(c, changed)
    }

    fn vm_unmap(&mut self, id: CtxId, addr: u64, range: u64) -> Result<(), GpuError> {
        let c = self.ctx(id)?;
        let changed = self
            .srv
            .ctx_mut(c)?
            .va
            .as_mut()
            .ok_or(GpuError::NoVaSpace)?
            .unmap(addr, range)?;
        self.write_ptes(c, changed)
    }

    fn channel_alloc(&mut self, id: CtxId) -> Result<ChanId, GpuError> {
        let c = self.ctx(id)?;
        self.channel_alloc_impl(c)
    }

    fn channel_free(&mut self, id: CtxId, chan: ChanId) -> Result<(), GpuError> {
        let c = self.ctx(id)?;
        self.channel_free_impl(c, chan)
    }

    fn exec(&mut self, id: CtxId, chan: ChanId, pushes: &[Push]) -> Result<Submitted, GpuError> {
        let c = self.ctx(id)?;
        self.exec_impl(c, chan, pushes)
    }

    fn fence_signaled(&mut self, id: CtxId, fence: Fence) -> Result<bool, GpuError> {
        let c = self.ctx(id)?;
        self.fence_signaled_impl(c, fence)
    }
}

/// nouveau's GEM domain bits (`NOUVEAU_GEM_DOMAIN_*`), which `bo_new` takes.
mod drm_domain {
    pub const CPU: u32 = 1 << 0;
    pub const VRAM: u32 = 1 << 1;
    pub const GART: u32 = 1 << 2;
    pub const MAPPABLE: u32 = 1 << 3;
    pub const COHERENT: u32 = 1 << 4;
}
