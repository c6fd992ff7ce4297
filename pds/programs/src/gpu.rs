//! The gpu PD: gpu-server, serving drm-shim's `GpuOps` PPCs. Its peers all go through this PD's
//! one kernel ([`Peers`]): RM objects through the gsp PD, DMA memory through alloc-server, the
//! doorbell and PTIMER through BAR0 (PPCs to the device model).
//!
//! gpu-server starts lazily, on the first request once the GSP reports static info (the gsp PD
//! boots the GPU in its own `init`): until then requests answer `NotReady`, which drm turns into
//! `ENODEV`. When the supervisor reports that gsp restarted, every RM object is gone, so the
//! server starts over with a new generation (old context ids answer `ContextLost`).
use crate::deaths::Deaths;
use crate::regions::{ro, rw};
use crate::status::Watch;
use crate::sys::{self, gpu::channels, gpu::regions, supervisor::children};
use alloc_api::{DmaError, DmaHandle, PoolId, Reply, Request};
use gpu_api::{DeviceInfo, GpuError};
use gpu_server::deps::{Dma, DmaBuf, Pool, Rm};
use gpu_server::vram::Window;
use gpu_server::{ClientMaps, Config, GpuServer, MAX_CLIENTS};
use gsp::chip::Chipset;
use gsp::fw::current::rm::ChannelClasses;
use gsp::regs::{Mmio, MmioError};
use gsp_api::{GspClient, GspError, GspState, RmAlloc, RmControl};
use pd_core::shm::ReadOnly;
use pd_core::shm::Region;
use pd_core::{ChannelSet, Handler, Kernel, MessageInfo, Usage};

/// Pools as alloc-server numbers them: the order alloc maps them in system.xml.
fn pool_id(pool: Pool) -> PoolId {
    match pool {
        Pool::Server => PoolId(1),
        // CAST: client ids are 0..3.
        Pool::Client(c) => PoolId(2 + c.0),
    }
}

/// This PD's peers, all through its one kernel.
struct Peers<'k> {
    k: &'k mut dyn Kernel,
}

fn rm_error(e: GspError) -> GpuError {
    match e {
        GspError::NotReady => GpuError::NotReady,
        GspError::Crashed | GspError::Unreachable => GpuError::ContextLost,
        GspError::TooLarge | GspError::BadRequest => GpuError::Invalid,
        _ => GpuError::Device,
    }
}

/// RM parameter structs gpu-server sends are far below this (the largest is 368 bytes).
const PARAMS: usize = gsp_api::MAX_INLINE_PARAMS;

impl Rm for Peers<'_> {
    fn rm_alloc(
        &mut self,
        client: u32,
        parent: u32,
        object: u32,
        class: u32,
        params: &[u8],
    ) -> Result<(), GpuError> {
        let mut buf = [0u8; PARAMS];
        let p = buf.get_mut(..params.len()).ok_or(GpuError::Invalid)?;
        p.copy_from_slice(params);
        let req = RmAlloc {
            client,
            parent,
            object,
            class,
            flags: 0,
        };
        GspClient::new(channels::GSP)
            .rm_alloc(self.k, &req, p)
            .map_err(rm_error)
    }
    fn rm_control(
        &mut self,
        client: u32,
        object: u32,
        cmd: u32,
        params: &mut [u8],
    ) -> Result<(), GpuError> {
        let req = RmControl {
            client,
            object,
            cmd,
            flags: 0,
        };
        GspClient::new(channels::GSP)
            .rm_control(self.k, &req, params)
            .map_err(rm_error)
    }
    fn rm_free(&mut self, client: u32, parent: u32, object: u32) -> Result<(), GpuError> {
        GspClient::new(channels::GSP)
            .rm_free(self.k, client, parent, object)
            .map_err(rm_error)
    }
}

/// gpu-server's error for a failed call to alloc-server.
fn dma_error(e: DmaError) -> GpuError {
    match e {
        DmaError::Ipc(_) => GpuError::ContextLost,
        _ => GpuError::NoMemory,
    }
}

impl Dma for Peers<'_> {
    fn dma_alloc(&mut self, pool: Pool, size: u64, align: u64) -> Result<DmaBuf, GpuError> {
        let align = align.max(0x1000);
        let a = alloc_api::client::grant(&mut *self.k, channels::ALLOC, pool_id(pool), size, align)
            .map_err(dma_error)?;
        Ok(DmaBuf {
            handle: a.handle.raw(),
            offset: a.offset,
            dev_addr: a.device_addr,
            size: a.size,
        })
    }
    fn dma_free(&mut self, _: Pool, buf: DmaBuf) -> Result<(), GpuError> {
        let free = Request::Free {
            handle: DmaHandle::from_raw(buf.handle),
            offset: buf.offset,
        };
        match alloc_api::client::call(&mut *self.k, channels::ALLOC, free).map_err(dma_error)? {
            Reply::Freed => Ok(()),
            _ => Err(GpuError::Device),
        }
    }
}

impl Mmio for Peers<'_> {
    fn read32(&mut self, offset: u32) -> Result<u32, MmioError> {
        gsp_model::ppc::MmioPpc::new(&mut *self.k, channels::GSP_MODEL).read32(offset)
    }
    fn write32(&mut self, offset: u32, value: u32) -> Result<(), MmioError> {
        gsp_model::ppc::MmioPpc::new(&mut *self.k, channels::GSP_MODEL).write32(offset, value)
    }
}

/// The gpu PD's state.
#[derive(Debug)]
pub struct GpuPd {
    srv: Option<GpuServer>,
    generation: u8,
    bulk: Region<ReadOnly>,
    status: Region<ReadOnly>,
    /// gsp: its restart ends every RM object.
    watch: Watch<1>,
    /// drm: an ended instance took its files, and so every context, with it (reported once per
    /// instance, so a throttled restart shown twice does not close the new instance's).
    drm_deaths: Deaths<1>,
    /// The GSP boot (`gsp_api::Health::generation`) the server started on.
    gsp_boot: Option<u32>,
}

/// Build the gpu PD (the server itself starts on the first request, once the GSP is up).
pub fn init(k: &mut dyn Kernel) -> GpuPd {
    let status = ro(regions::STATUS);
    // Our own generation on the status page makes this instance's context ids unique.
    let generation = crate::status::read(&status, children::GPU).map_or(1, |s| s.generation);
    log::info!(
        "{}: up (generation {generation}); serving drm once the GSP is up",
        k.pd_name()
    );
    GpuPd {
        srv: None,
        // CAST: context ids carry the low 8 bits of the generation.
        generation: generation as u8,
        bulk: ro(regions::DRM_GPU),
        watch: Watch::new(&status, [children::GSP]),
        drm_deaths: Deaths::new(&status, [children::DRM]),
        gsp_boot: None,
        status,
    }
}

/// Where each client maps its VRAM window and DMA pool (system.xml).
const CLIENT_MAPS: [ClientMaps; MAX_CLIENTS] = [
    ClientMaps {
        vram_vaddr: sys::client0::regions::CLIENT0_VRAM.vaddr,
        dma_vaddr: sys::client0::regions::CLIENT0_DMA.vaddr,
    },
    ClientMaps {
        vram_vaddr: sys::client1::regions::CLIENT1_VRAM.vaddr,
        dma_vaddr: sys::client1::regions::CLIENT1_DMA.vaddr,
    },
    ClientMaps {
        vram_vaddr: sys::client2::regions::CLIENT2_VRAM.vaddr,
        dma_vaddr: sys::client2::regions::CLIENT2_DMA.vaddr,
    },
];

impl GpuPd {
    /// Start gpu-server once the GSP answers: its static info names the chip and the FB size.
    fn start(&mut self, k: &mut dyn Kernel) -> Result<&mut GpuServer, GpuError> {
        if self.srv.is_none() {
            let info = GspClient::new(channels::GSP)
                .static_info(k)
                .map_err(rm_error)?;
            self.gsp_boot = GspClient::new(channels::GSP)
                .health(k)
                .ok()
                .map(|h| h.generation);
            let chip = Chipset::try_from(info.chipset).map_err(|_| GpuError::Device)?;
            let classes = ChannelClasses::for_chip(chip).ok_or(GpuError::Device)?;
            let (vendor, device_id) = pci_device(k);
            let device = DeviceInfo {
                vendor,
                device: device_id,
                chipset: info.chipset,
                fb_size: info.fb_length,
                // What a client can map of VRAM is its own BAR1 window (system.xml), not the
                // device's whole BAR1: report that (every window has the same size).
                vram_bar_size: regions::CLIENT0_VRAM.size,
                graph_units: 1,
                exec_push_max: gpu_api::ppc::MAX_PUSHES as u32,
            };
            // The FB packs `vram` then each client's window, in system.xml's sizes (the model's
            // layout, gsp_model::phys::FbLayout).
            let vram = regions::VRAM;
            let windows = [
                regions::CLIENT0_VRAM,
                regions::CLIENT1_VRAM,
                regions::CLIENT2_VRAM,
            ];
            let mut fb = vram.size;
            let mut clients: [Option<Window<{ gpu_server::vram::MAX_CLIENT_WORDS }>>; MAX_CLIENTS] =
                [None, None, None];
            for (slot, w) in clients.iter_mut().zip(windows) {
                *slot = Window::new(fb, rw(w)).ok();
                fb += w.size;
            }
            let cfg = Config {
                generation: self.generation,
                device,
                classes,
                // Where the page tables gpu-server writes into gpu_dma sit for the device: on
                // seL4 the real base (setvar), in hosted mode the fake one.
                dma_base: crate::phys::paddr(&*k, crate::sys::gpu::paddrs::GPU_DMA_PADDR).0,
                clients: CLIENT_MAPS,
            };
            let general = Window::new(0, rw(vram))?;
            log::info!(
                "{}: GPU up: {} (chipset {:#x}), {} MiB FB; serving drm",
                k.pd_name(),
                chip.name(),
                info.chipset,
                info.fb_length >> 20
            );
            self.srv = Some(GpuServer::new(cfg, general, clients, rw(regions::GPU_DMA)));
        }
        self.srv.as_mut().ok_or(GpuError::NotReady)
    }
}

impl GpuPd {
    /// Every RM object is gone (`why`): give back what the server holds (its DMA buffers to
    /// alloc-server, which would otherwise keep them for this live PD for ever) and start over
    /// with a new generation on the next request.
    /// Act on gsp's or drm's restart, from the status page; whether gsp restarted.
    fn peers_moved(&mut self, k: &mut dyn Kernel) -> bool {
        let gsp = !self.watch.moved(&self.status).is_empty();
        let drm = !self.drm_deaths.since(&self.status).is_empty();
        if gsp {
            self.start_over(k, "gsp restarted");
        } else if drm {
            if let Some(srv) = self.srv.as_mut() {
                let open = srv.contexts();
                let mut peers = Peers { k: &mut *k };
                let closed = srv.session(&mut peers).close_all();
                log::info!(
                    "{}: drm restarted: closed {closed} of its {open} contexts",
                    k.pd_name()
                );
            }
        }
        gsp
    }

    fn start_over(&mut self, k: &mut dyn Kernel, why: &str) {
        self.generation = self.generation.wrapping_add(1);
        let Some(mut srv) = self.srv.take() else {
            log::info!("{}: {why}: every RM object is gone", k.pd_name());
            return;
        };
        let r = srv.release(&mut Peers { k: &mut *k });
        log::info!(
            "{}: {why}: every RM object is gone; gave back {} DMA buffers ({} refused); starting \
             over",
            k.pd_name(),
            r.freed,
            r.refused
        );
    }
}

/// The GPU's PCI vendor and device ids, from pci-server's device list (gpu may list, not claim).
fn pci_device(k: &mut dyn Kernel) -> (u16, u16) {
    let pci = pci_api::PciClient::new(channels::PCI);
    let mut index = 0u16;
    while let Ok((e, total)) = pci.list(k, index) {
        if e.vendor == 0x10de && e.class >> 16 == 0x03 {
            return (e.vendor, e.device);
        }
        index += 1;
        if index >= total {
            break;
        }
    }
    log::warn!("{}: pci-server lists no NVIDIA display device", k.pd_name());
    (0x10de, 0)
}

impl Handler for GpuPd {
    fn protected(
        &mut self,
        k: &mut dyn Kernel,
        ch: pd_core::Channel,
        msg: MessageInfo,
    ) -> MessageInfo {
        if ch != channels::DRM {
            return MessageInfo::new(GpuError::Invalid as u64, 0);
        }
        // A gsp restart may be on the status page before its notification reaches us: never serve
        // a request with RM state from a previous GSP (its fences and channels are gone). Nor
        // keep a restarted drm's contexts into its new life.
        self.peers_moved(k);
        let mut mrs = k.mrs().clone();
        let reply = match self.start(k) {
            Err(e) => MessageInfo::new(e as u64, 0),
            Ok(_) => match self.srv.as_mut() {
                Some(srv) => {
                    let mut peers = Peers { k: &mut *k };
                    let mut session = srv.session(&mut peers);
                    gpu_api::ppc::serve(&mut session, msg, &mut mrs, &self.bulk)
                }
                None => MessageInfo::new(GpuError::NotReady as u64, 0),
            },
        };
        k.mrs().copy_prefix(&mrs, reply.count());
        reply
    }

    fn notified(&mut self, k: &mut dyn Kernel, set: ChannelSet) {
        let restarted = set.contains(channels::SUPERVISOR) && self.peers_moved(k);
        // gsp tells of events and of a firmware crash, after which it boots the GPU again in
        // place: a boot other than the server's (or none running) means the RM objects are gone.
        let rebooted = !restarted
            && set.contains(channels::GSP)
            && self.srv.is_some()
            && !GspClient::new(channels::GSP).health(k).is_ok_and(|h| {
                h.state == GspState::Running as u32 && Some(h.generation) == self.gsp_boot
            });
        if rebooted {
            self.start_over(k, "the GSP firmware crashed or was booted again");
        }
    }

    /// VRAM pages gpu-server has allocated (none before it starts); DMA is alloc-server's count.
    fn usage(&self) -> Option<Usage> {
        Some(self.srv.as_ref().map(GpuServer::usage).unwrap_or_default())
    }
}
