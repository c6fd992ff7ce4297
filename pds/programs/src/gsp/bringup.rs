//! Everything between "the gsp PD started" and "GSP-RM answers": find and claim the GPU at
//! pci-server, read the firmware pack, take the boot's DMA buffers from alloc-server, and run
//! `gsp::boot::boot` over the device, each step logged (`gsp: ...`; the boot logs its fifteen
//! states as `gsp: boot: N (...)`).
//!
//! Nothing survives a restart: a restarted gsp PD claims again (pci-server dropped the old
//! instance's claim when the supervisor reported the restart), allocates again (alloc-server
//! reclaimed the old buffers the same way) and boots from scratch.
use super::device::Device;
use super::firmware::{self, Pack, PackError};
use crate::sys::gsp::{channels, regions};
use alloc_api::{DmaError, DmaHandle, PoolId, Reply, Request};
use gsp::boot::{
    boot, BootBuffers, BootConfig, BootDevice, BootError, BootFirmware, BootInput, BootTraceRing,
    DmaBuf, FIRMWARE_VERSION,
};
use gsp::chip::{ChipError, Chipset};
use gsp::cmdq::QUEUE_REGION_SIZE;
use gsp::elf::{BlobError, GspImage, ImageError, RiscvBootloader};
use gsp::fw::current::libos::LOG_BUFFER_SIZE;
use gsp::fw::current::static_info::GspStaticConfigInfo;
use gsp::radix3::{Geometry, Radix3Error};
use gsp::regs::{MmioError, NV_PMC_BOOT_0, NV_PMC_BOOT_42};
use gsp::rpc::{EventSink, ParkedRpc, SystemInfoParams};
use gsp_model::secure::ModelSecureBoot;
use pci_api::{Bdf, PciClient, PciError, Width};
use pd_core::shm::{ReadWrite, Region};

/// The gsp PD's DMA pool: alloc-server numbers pools in the order system.xml maps them into
/// `alloc`, and `gsp_dma` comes first.
const POOL: PoolId = PoolId(0);
/// Bytes of one small boot structure (LibOS arguments, RMARGS, `GspFwWprMeta`, flush page).
const PAGE: usize = 0x1000;
/// PCI class code of a VGA-compatible display controller's base class.
const CLASS_DISPLAY: u32 = 0x03;
/// NVIDIA's PCI vendor id.
const NVIDIA: u16 = 0x10de;
/// Config space: subsystem vendor/device ids, command register bits (PCI 3.0, 6.2).
const SUBSYSTEM: u16 = 0x2c;
const COMMAND: u16 = 0x04;
const CMD_MEMORY: u32 = 1 << 1;
const CMD_MASTER: u32 = 1 << 2;

/// Why the GPU could not be brought up (before or during the boot). Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BringUpError {
    /// BAR0 did not answer.
    Device(MmioError) = 1,
    /// The chip is not one the driver knows.
    Chip(ChipError) = 2,
    /// `gsp_fw` holds no usable firmware pack.
    Firmware(PackError) = 3,
    /// The GSP ELF was refused.
    Image(ImageError) = 4,
    /// The bootloader was refused.
    Bootloader(BlobError) = 5,
    /// pci-server lists no NVIDIA display controller.
    NoGpu = 6,
    /// pci-server refused a request.
    Pci(PciError) = 7,
    /// alloc-server refused a buffer, could not be reached, or answered outside the protocol or
    /// outside this PD's mapping of the pool.
    Dma(DmaError) = 8,
    /// The image is too large for a radix3 map.
    Radix3(Radix3Error) = 9,
    /// A boot step failed.
    Boot(BootError) = 10,
}

impl BringUpError {
    /// The boot step for `Health::boot_step` (0: before the boot state machine ran) and the
    /// error code for `Health::boot_error` (the boot's cause code, or 100 + this error's).
    pub fn health_codes(&self) -> (u32, u32) {
        let own = |n: u32| (0, 100 + n);
        match self {
            Self::Boot(e) => (e.step as u32, e.cause.code()),
            Self::Device(_) => own(1),
            Self::Chip(_) => own(2),
            Self::Firmware(_) => own(3),
            Self::Image(_) => own(4),
            Self::Bootloader(_) => own(5),
            Self::NoGpu => own(6),
            Self::Pci(_) => own(7),
            Self::Dma(_) => own(8),
            Self::Radix3(_) => own(9),
        }
    }
}

/// A GSP that answers.
#[derive(Debug)]
pub struct Up {
    /// The chip.
    pub chip: Chipset,
    /// What GSP-RM reported.
    pub info: GspStaticConfigInfo,
    /// The RPC channel, its receive buffer set aside.
    pub rpc: ParkedRpc,
}

/// DMA buffers one boot takes.
const BUFFERS: usize = 12;

/// What a bring-up took from other servers, to give back before the GPU is booted again in
/// place (a restarted PD gives nothing back: pci and alloc take it when the supervisor reports
/// the restart).
#[derive(Debug, Default)]
pub struct Held {
    gpu: Option<Bdf>,
    buffers: heapless::Vec<(DmaHandle, u64), BUFFERS>,
}

impl Held {
    /// Give the GPU back to pci-server, which resets it (FLR) so the firmware stops and the
    /// next boot finds it at power-on, then free the boot's DMA buffers at alloc-server.
    /// Failures are logged; what could not be given back is forgotten (the servers take it
    /// back when this PD restarts).
    pub fn give_back(&mut self, k: &mut dyn pd_core::Kernel) {
        if let Some(bdf) = self.gpu.take() {
            match PciClient::new(channels::PCI).release(k, bdf) {
                Ok(()) => log::info!("gsp: released {bdf}: pci resets it"),
                Err(e) => log::error!("gsp: releasing {bdf} failed: {e}"),
            }
        }
        let mut freed = 0;
        while let Some((handle, offset)) = self.buffers.pop() {
            let req = Request::Free { handle, offset };
            let info = req.encode(k.mrs());
            let ok = k
                .ppcall(channels::ALLOC, info)
                .is_ok_and(|r| Reply::decode(req.opcode(), r, k.mrs()).is_ok());
            freed += usize::from(ok);
        }
        log::info!("gsp: {freed} DMA buffers freed");
    }
}

/// Claim the GPU, gather its firmware and buffers, and boot it. `rx` becomes the RPC channel's
/// receive buffer (at least `gsp::rpc::MIN_RX_BUFFER` bytes); boot events go to `sink`; what
/// was taken from pci and alloc is recorded in `held`.
///
/// # Errors
/// The first [`BringUpError`]; everything is logged as it happens.
pub fn bring_up(
    dev: &Device<'_>,
    rx: &mut [u8],
    sink: &mut dyn EventSink,
    trace: &mut BootTraceRing,
    held: &mut Held,
) -> Result<Up, BringUpError> {
    let chip = probe(dev)?;
    // After the device answered: the pack is in place (the model writes it before it serves).
    let pack =
        firmware::read(firmware::region_bytes(regions::GSP_FW)).map_err(BringUpError::Firmware)?;
    log_pack(&pack, chip);
    let image = GspImage::parse(pack.gsp).map_err(BringUpError::Image)?;
    let bootloader = RiscvBootloader::parse(pack.bootloader).map_err(BringUpError::Bootloader)?;
    let sysinfo = dev
        .with_kernel(|k| claim(k, held))
        .map_err(BringUpError::Device)
        .and_then(|r| r)?;
    let buffers = dev
        .with_kernel(|k| buffers(k, &image, &bootloader, chip, held))
        .map_err(BringUpError::Device)
        .and_then(|r| r)?;
    let input = BootInput {
        firmware: BootFirmware {
            gsp: pack.gsp,
            bootloader: pack.bootloader,
        },
        buffers,
        config: BootConfig::new(sysinfo),
        rx_buffer: rx,
    };
    let (mut io, mut time) = (dev.io(), dev.time());
    let device = BootDevice {
        io: &mut io,
        clock: &mut time,
        secure: &mut ModelSecureBoot,
        sink,
    };
    log::info!(
        "gsp: boot: GSP firmware {FIRMWARE_VERSION}; FWSEC-FRTS and booter_load by the simulated \
         GPU's register protocol (gsp_model::secure)"
    );
    let booted = boot(input, device, trace).map_err(BringUpError::Boot)?;
    Ok(Up {
        chip: booted.chip,
        info: booted.static_info,
        rpc: booted.rpc.park(),
    })
}

/// Read the chip's identity: the first access, which also waits for the device to be ready.
fn probe(dev: &Device<'_>) -> Result<Chipset, BringUpError> {
    let mut io = dev.io();
    let boot0 = NV_PMC_BOOT_0::read(&mut io).map_err(BringUpError::Device)?;
    let boot42 = NV_PMC_BOOT_42::read(&mut io).map_err(BringUpError::Device)?;
    let chip = Chipset::identify(boot0, boot42).map_err(BringUpError::Chip)?;
    log::info!(
        "gsp: probe: BOOT_0 {:#010x}, BOOT_42 {:#010x}: {} ({:#x})",
        boot0.into_raw(),
        boot42.into_raw(),
        chip.name(),
        chip as u32
    );
    Ok(chip)
}

fn log_pack(pack: &Pack<'_>, chip: Chipset) {
    log::info!(
        "gsp: firmware: {} ({} bytes) + bootloader ({} bytes) for {}, from {}",
        if pack.origin().starts_with("synthetic") {
            "synthetic GSP image"
        } else {
            "GSP image"
        },
        pack.gsp.len(),
        pack.bootloader.len(),
        pack.chip(),
        pack.origin()
    );
    if !chip.name().eq_ignore_ascii_case(pack.chip()) {
        log::warn!(
            "gsp: firmware: the pack is for {}, the GPU is a {}",
            pack.chip(),
            chip.name()
        );
    }
}

/// Find the GPU at pci-server, claim it, enable memory decoding and bus mastering, and gather
/// what `GSP_SET_SYSTEM_INFO` reports.
fn claim(k: &mut dyn pd_core::Kernel, held: &mut Held) -> Result<SystemInfoParams, BringUpError> {
    let pci = PciClient::new(channels::PCI);
    let mut index = 0u16;
    let gpu = loop {
        let (e, total) = pci.list(k, index).map_err(BringUpError::Pci)?;
        if e.vendor == NVIDIA && e.class >> 16 == CLASS_DISPLAY {
            break e;
        }
        index = index
            .checked_add(1)
            .filter(|&i| i < total)
            .ok_or(BringUpError::NoGpu)?;
    };
    match pci.claim(k, gpu.bdf) {
        Ok(()) | Err(PciError::AlreadyClaimed) => held.gpu = Some(gpu.bdf),
        Err(e) => return Err(BringUpError::Pci(e)),
    }
    let read = |k: &mut dyn pd_core::Kernel, offset, width| {
        pci.read_config(k, gpu.bdf, offset, width)
            .map_err(BringUpError::Pci)
    };
    let subsystem = read(k, SUBSYSTEM, Width::U32)?;
    let command = read(k, COMMAND, Width::U16)?;
    pci.write_config(
        k,
        gpu.bdf,
        COMMAND,
        Width::U16,
        command | CMD_MEMORY | CMD_MASTER,
    )
    .map_err(BringUpError::Pci)?;
    let mut bars = [0u64; 3];
    for (slot, index) in bars.iter_mut().zip([0u8, 1, 3]) {
        let b = pci.bar(k, gpu.bdf, index).map_err(BringUpError::Pci)?;
        *slot = b.phys;
    }
    log::info!(
        "gsp: pci: claimed {} ({:04x}:{:04x} rev {:#04x}), BAR0 {:#x}, BAR1 {:#x}, BAR3 {:#x}",
        gpu.bdf,
        gpu.vendor,
        gpu.device,
        gpu.revision,
        bars[0],
        bars[1],
        bars[2]
    );
    Ok(sysinfo(
        gpu.bdf,
        gpu.vendor,
        gpu.device,
        gpu.revision,
        subsystem,
        bars,
    ))
}

fn sysinfo(
    bdf: Bdf,
    vendor: u16,
    device: u16,
    revision: u8,
    subsystem: u32,
    [bar0, bar1, bar3]: [u64; 3],
) -> SystemInfoParams {
    // CAST: the two halves of the subsystem register.
    SystemInfoParams {
        bar0,
        bar1,
        bar3,
        bus_devfn: bdf.routing_id(),
        vendor,
        device,
        subsystem_vendor: subsystem as u16,
        subsystem_device: (subsystem >> 16) as u16,
        revision,
    }
}

/// The boot's DMA buffers, the large `.fwimage` copy first (alloc-server's buddy keeps large
/// blocks whole at the top of the pool; asking for it first never finds them split).
fn buffers(
    k: &mut dyn pd_core::Kernel,
    image: &GspImage<'_>,
    bootloader: &RiscvBootloader<'_>,
    chip: Chipset,
    held: &mut Held,
) -> Result<BootBuffers, BringUpError> {
    let pool = crate::regions::rw(regions::GSP_DMA);
    let geometry = Geometry::new(image.fwimage().len() as u64).map_err(BringUpError::Radix3)?;
    let signature = image.signature(chip).map_err(BringUpError::Image)?.len();
    let mut get = |len: usize| dma(k, &pool, len, held);
    let fwimage = get(geometry.image_buffer_len())?;
    let radix3 = get(geometry.table_pages() * PAGE)?;
    let b = BootBuffers {
        fwimage,
        radix3,
        queues: get(QUEUE_REGION_SIZE)?,
        libos_args: get(PAGE)?,
        logs: [
            get(LOG_BUFFER_SIZE)?,
            get(LOG_BUFFER_SIZE)?,
            get(LOG_BUFFER_SIZE)?,
        ],
        rmargs: get(PAGE)?,
        bootloader: get(bootloader.ucode().len())?,
        signature: get(signature)?,
        wpr_meta: get(PAGE)?,
        flush_page: get(PAGE)?,
    };
    log::info!(
        "gsp: dma: {BUFFERS} buffers from gsp_dma: .fwimage {} KiB at {:#x}, radix3 {} pages, queues at \
         {:#x}",
        b.fwimage.region.size() >> 10,
        b.fwimage.dma,
        geometry.table_pages(),
        b.queues.dma
    );
    Ok(b)
}

/// One buffer of at least `len` bytes from the gsp pool, as a view of this PD's mapping.
fn dma(
    k: &mut dyn pd_core::Kernel,
    pool: &Region<ReadWrite>,
    len: usize,
    held: &mut Held,
) -> Result<DmaBuf, BringUpError> {
    // CAST: buffer lengths are far below 2^64.
    let a = alloc_api::client::grant(k, channels::ALLOC, POOL, len as u64, PAGE as u64)
        .map_err(BringUpError::Dma)?;
    let bad = BringUpError::Dma(DmaError::BadReply);
    // Room for every buffer of a boot: `buffers` asks for BUFFERS of them.
    let _ = held.buffers.push((a.handle, a.offset));
    let at = usize::try_from(a.offset).map_err(|_| bad)?;
    let size = usize::try_from(a.size).map_err(|_| bad)?;
    let region = pool.subregion(at, size).map_err(|_| bad)?;
    Ok(DmaBuf {
        region,
        dma: a.device_addr,
    })
}
