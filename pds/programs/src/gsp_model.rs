//! The GSP model PD: the simulated GPU. Hosted mode and QEMU have no NVIDIA GPU, so this PD is
//! the device the driver PDs talk to: `gsp_model::GspModel` of [`CHIP`], with its BAR0 served
//! as PPCs from gsp and gpu, its PCIe configuration space as PPCs from pci (with their effects:
//! BAR addresses, function-level reset), fault knobs (`gsp_model::ppc::LABEL_FAULT`), and its
//! interrupt line raised to gsp as a notification.
//!
//! Memory: the model reaches system memory only through the DMA regions system.xml maps into
//! it, at their physical addresses ([`crate::phys`]: seL4's, or the hosted runtime's fake
//! bases), and backs its framebuffer with the VRAM regions packed from FB offset 0 in the order
//! gpu-server assumes (`vram`, then `client0_vram`, `client1_vram`, `client2_vram`:
//! `gsp_model::phys::FbLayout::HOSTED`).
//!
//! Firmware: when `gsp_fw` is empty at start (no real firmware was loaded into it), the model
//! writes its synthetic GSP image and bootloader there ([`crate::gsp::firmware`]) before it
//! answers anyone, and runs whatever image the region then holds.
//!
//! A device: it never calls anyone, and it is never restarted.
mod scratch;

use crate::gsp::firmware::{self, PackError, PackHeader};
use crate::phys;
use crate::regions::{ro, rw};
use crate::sys::gsp_model::{channels, paddrs, regions};
use crate::sys::{PaddrDecl, RegionDecl};
use gsp::chip::Chipset;
use gsp_model::fwimage;
use gsp_model::phys::{FbLayout, Memory};
use gsp_model::{GspModel, ModelConfig};
use pd_core::{Channel, ChannelSet, Handler, Kernel, MessageInfo};

/// The chip the model simulates (its PCI identity follows: GA102 is device 0x2204).
pub const CHIP: Chipset = Chipset::GA102;

/// Bytes of the synthetic `.fwimage`: an odd size, so the radix3 map's last page is partial.
const SYNTHETIC_FWIMAGE: usize = 0x12_3456;

/// System memory the model reaches: each DMA region with the physical address it is told.
const SYSMEM: [(RegionDecl, PaddrDecl); 5] = [
    (regions::GSP_DMA, paddrs::GSP_DMA_PADDR),
    (regions::GPU_DMA, paddrs::GPU_DMA_PADDR),
    (regions::CLIENT0_DMA, paddrs::CLIENT0_DMA_PADDR),
    (regions::CLIENT1_DMA, paddrs::CLIENT1_DMA_PADDR),
    (regions::CLIENT2_DMA, paddrs::CLIENT2_DMA_PADDR),
];

/// The framebuffer's backing, in FB order.
const VRAM: [RegionDecl; 4] = [
    regions::VRAM,
    regions::CLIENT0_VRAM,
    regions::CLIENT1_VRAM,
    regions::CLIENT2_VRAM,
];

/// The model PD's handler: the model, and which interrupt bits gsp was already told about.
#[derive(Debug)]
pub struct ModelPd {
    model: GspModel<'static>,
    /// The GSP's IRQSTAT as last signalled: a bit that appears since is a new interrupt.
    raised: u32,
}

impl ModelPd {
    /// Serve `model` (config space on the `pci` channel, BAR0 on the others).
    pub fn new(mut model: GspModel<'static>) -> Self {
        model.serve_pci_on(channels::PCI);
        Self { model, raised: 0 }
    }

    /// The model.
    pub fn model(&mut self) -> &mut GspModel<'static> {
        &mut self.model
    }

    /// Raise the interrupt line (notify gsp) for IRQSTAT bits that came up since last time.
    fn interrupt(&mut self, k: &mut dyn Kernel) {
        let stat = self.model.bar.gsp.irqstat;
        if stat & !self.raised != 0 {
            // A lost notification is recovered by gsp's next register poll.
            let _ = k.notify(channels::GSP);
        }
        self.raised = stat;
    }
}

impl Handler for ModelPd {
    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        let reply = self.model.protected(k, ch, msg);
        self.interrupt(k);
        reply
    }

    fn notified(&mut self, k: &mut dyn Kernel, set: ChannelSet) {
        self.model.notified(k, set);
    }
}

/// Build the model PD: firmware, memory, the model.
pub fn init(k: &mut dyn Kernel) -> ModelPd {
    log::info!(
        "gsp_model: a simulated {} (PCI {:04x}:{:04x}): there is no NVIDIA GPU here; this PD is \
         the device",
        CHIP.name(),
        gsp_model::PciIdentity::for_chip(CHIP).vendor,
        gsp_model::PciIdentity::for_chip(CHIP).device
    );
    let image = firmware_image();
    let mem = memory(k);
    let buf = scratch::take().unwrap_or_else(|| {
        log::error!("gsp_model: RPC buffer already in use: the model answers no RPC");
        &mut []
    });
    ModelPd::new(GspModel::new(ModelConfig::new(CHIP), mem, image, buf))
}

/// The GSP ELF in `gsp_fw`, after writing the synthetic pack there if the region is empty.
fn firmware_image() -> &'static [u8] {
    let decl = regions::GSP_FW;
    let empty = ro(decl)
        .read::<PackHeader>(0)
        .is_ok_and(|h| h.magic == [0; 8]);
    if empty {
        write_synthetic(decl);
    }
    match firmware::read(firmware::region_bytes(decl)) {
        Ok(pack) => {
            log::info!(
                "gsp_model: runs the GSP image in gsp_fw: {} bytes for {}, from {}",
                pack.gsp.len(),
                pack.chip(),
                pack.origin()
            );
            pack.gsp
        }
        Err(e) => {
            log::error!("gsp_model: gsp_fw: {e}; the booter will refuse any image");
            &[]
        }
    }
}

/// Write the synthetic GSP image and bootloader into the (empty) `gsp_fw`.
fn write_synthetic(decl: RegionDecl) {
    let Some(dst) = firmware::region_bytes_mut(decl) else {
        return;
    };
    let sizes = (
        fwimage::file_size(SYNTHETIC_FWIMAGE),
        fwimage::bootloader_size(),
    );
    let origin = "synthetic (gsp_model::fwimage): no NVIDIA firmware installed";
    let chip = CHIP.name();
    let written = firmware::write_in_place(dst, sizes, chip, origin, |gsp, bootloader| {
        fwimage::build(gsp, SYNTHETIC_FWIMAGE)
            .and_then(|_| fwimage::build_bootloader(bootloader))
            .map(|_| ())
            .map_err(|_| PackError::TooLarge)
    });
    match written {
        Ok(n) => log::info!(
            "gsp_model: gsp_fw was empty: wrote the model's synthetic GSP {} image ({n} bytes)",
            core::str::from_utf8(fwimage::VERSION)
                .unwrap_or("?")
                .trim_end_matches('\0')
        ),
        Err(e) => log::error!("gsp_model: cannot write the synthetic image: {e}"),
    }
}

/// System memory and framebuffer from the regions mapped into this PD.
fn memory(k: &dyn Kernel) -> Memory {
    let mut mem = Memory::new(FbLayout::HOSTED);
    for (region, paddr) in SYSMEM {
        let (base, source) = phys::paddr(k, paddr);
        match mem.sys.add(base, rw(region)) {
            Ok(()) => log::info!(
                "gsp_model: sysmem {} at {base:#x} ({source}), {} MiB",
                region.name,
                region.size >> 20
            ),
            Err(e) => log::error!("gsp_model: sysmem {}: {e}", region.name),
        }
    }
    for region in VRAM {
        match mem.add_vram(rw(region)) {
            Ok(at) => log::info!(
                "gsp_model: FB {at:#x}..{:#x} backed by {}",
                at + region.size,
                region.name
            ),
            Err(e) => log::error!("gsp_model: FB {}: {e}", region.name),
        }
    }
    log::info!(
        "gsp_model: FB reports {} GiB; only the backed part is memory",
        mem.fb_size >> 30
    );
    mem
}
