//! The GPU's PCIe topology as the model presents it in hosted mode, where there is no ECAM:
//! `pci-server`'s emulator ([`pci_server::emul::presets::nvidia_gpu`]: host bridge 00:00.0,
//! root port 00:01.0, the GPU as function 0 below it with the chip's device id, BAR0 16 MiB,
//! BAR1 and BAR3 64-bit prefetchable, and its HD-audio function 1), served over the
//! [`pci_api::cfg`] PPC protocol on the model PD's `pci` channel.
//!
//! Two config writes have device-side effects here: the BAR addresses the `pci` server assigns
//! become the ones `GSP_SET_SYSTEM_INFO` must report, and a PCIe function-level reset (Device
//! Control bit 15) resets the GPU ([`crate::GspModel::reset`]).
use crate::PciIdentity;
use gsp::chip::Chipset;
use pci_api::cfg::{ConfigError, ConfigOp, ConfigRequest};
use pci_api::{Bdf, Width};
use pci_server::emul::presets::{nvidia_gpu, GpuSpec, GPU_TOPOLOGY_FUNCTIONS};
use pci_server::emul::{EmuError, Topology};
use pci_server::ConfigSpace;
use pd_core::{Kernel, MessageInfo};

/// Index of the GPU function in the topology (host bridge, root port, GPU, audio).
const GPU: usize = 2;
/// PCIe capability id.
const CAP_PCIE: u8 = 0x10;
/// Device Control, from the PCIe capability; bit 15 initiates a function-level reset.
const DEVCTL: u16 = 0x08;
const INITIATE_FLR: u32 = 1 << 15;

/// The audio function's device id on the chip's boards (TU102 0x10f7, GA102 0x1aef, AD102
/// 0x22ba, as `lspci` shows them).
const fn audio_device(chip: Chipset) -> u16 {
    match chip {
        Chipset::TU102 | Chipset::TU104 | Chipset::TU106 => 0x10f7,
        Chipset::AD102 | Chipset::AD103 | Chipset::AD104 | Chipset::AD106 | Chipset::AD107 => {
            0x22ba
        }
        _ => 0x1aef,
    }
}

/// What a config access changed on the device side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PciEffect {
    /// Nothing the GPU cares about.
    None,
    /// The GPU's BARs now read as these addresses (BAR0, BAR1, BAR3), or are not all assigned.
    Bars(Option<[u64; 3]>),
    /// The GPU was function-level reset.
    Flr,
}

/// The emulated topology.
#[derive(Debug)]
pub struct Pci {
    topo: Topology<GPU_TOPOLOGY_FUNCTIONS>,
}

impl Pci {
    /// The topology of `chip` with identity `id`: BAR0 16 MiB, BAR1 64 MiB, BAR3 32 MiB.
    ///
    /// # Errors
    /// The emulator's [`EmuError`] (not expected for these sizes).
    pub fn new(chip: Chipset, id: &PciIdentity) -> Result<Self, EmuError> {
        let spec = GpuSpec {
            device: id.device,
            subsystem: (id.subsystem_vendor, id.subsystem_device),
            bar0: 16 << 20,
            bar1: 64 << 20,
            bar3: 32 << 20,
            audio: Some(audio_device(chip)),
        };
        Ok(Self {
            topo: nvidia_gpu(&spec)?,
        })
    }

    fn gpu_read(&self, offset: u16, width: Width) -> u32 {
        self.topo
            .function(GPU)
            .map_or(width.mask(), |f| f.read(offset, width))
    }

    /// Where the GPU function sits now (it moves when the `pci` server numbers the buses).
    fn gpu_bdf(&self) -> Option<Bdf> {
        (0..=u8::MAX)
            .filter_map(|bus| Bdf::new(bus, 0, 0))
            .find(|&b| self.topo.route(b) == Some(GPU))
    }

    /// Offset of the GPU's PCIe capability.
    fn pcie_cap(&self) -> Option<u16> {
        // CAST: config bytes.
        let mut at = (self.gpu_read(0x34, Width::U8) & 0xfc) as u16;
        for _ in 0..48 {
            if at < 0x40 {
                return None;
            }
            // CAST: one byte each.
            if self.gpu_read(at, Width::U8) as u8 == CAP_PCIE {
                return Some(at);
            }
            at = (self.gpu_read(at + 1, Width::U8) & 0xfc) as u16;
        }
        None
    }

    /// The GPU's BAR0, BAR1 and BAR3 addresses, if all are assigned.
    pub fn bars(&self) -> Option<[u64; 3]> {
        let lo = |o| u64::from(self.gpu_read(o, Width::U32) & !0xf);
        let hi = |o| u64::from(self.gpu_read(o, Width::U32)) << 32;
        let bars = [lo(0x10), lo(0x14) | hi(0x18), lo(0x1c) | hi(0x20)];
        bars.iter().all(|&b| b != 0).then_some(bars)
    }

    /// Serve one [`pci_api::cfg`] request (the model PD's `protected` on its `pci` channel).
    pub fn serve(&mut self, k: &mut dyn Kernel, msg: MessageInfo) -> (MessageInfo, PciEffect) {
        let req = match ConfigRequest::decode(msg, k.mrs()) {
            Ok(r) => r,
            Err(e) => return (ConfigRequest::reply(Err(e), k.mrs()), PciEffect::None),
        };
        let (result, effect) = self.access(&req);
        (ConfigRequest::reply(result, k.mrs()), effect)
    }

    /// One access, with its effect.
    ///
    /// # Errors
    /// The emulator's [`ConfigError`].
    pub fn access(&mut self, req: &ConfigRequest) -> (Result<u32, ConfigError>, PciEffect) {
        match req.op {
            ConfigOp::Read => (
                self.topo.read(req.bdf, req.offset, req.width),
                PciEffect::None,
            ),
            ConfigOp::Write => {
                let to_gpu = Some(req.bdf) == self.gpu_bdf();
                let devctl = self.pcie_cap().map(|c| c + DEVCTL);
                let r = self
                    .topo
                    .write(req.bdf, req.offset, req.width, req.value)
                    .map(|()| 0);
                let effect = match (to_gpu, devctl) {
                    (true, Some(d)) if req.offset <= d && d < req.offset + req.width.bytes() => {
                        // CAST: the shift is below 32: devctl lies inside the accessed bytes.
                        let value = req.value >> (8 * u32::from(d - req.offset));
                        if value & INITIATE_FLR != 0 {
                            PciEffect::Flr
                        } else {
                            PciEffect::None
                        }
                    }
                    (true, _) if (0x10..0x28).contains(&req.offset) => PciEffect::Bars(self.bars()),
                    _ => PciEffect::None,
                };
                (r, effect)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pci_api::cfg::ConfigOp::{Read, Write};

    fn req(op: ConfigOp, bdf: Bdf, offset: u16, width: Width, value: u32) -> ConfigRequest {
        ConfigRequest {
            op,
            bdf,
            offset,
            width,
            value,
        }
    }

    #[test]
    fn the_gpu_appears_behind_the_root_port_with_its_ids_and_bars() {
        let id = PciIdentity::for_chip(Chipset::GA102);
        let mut p = Pci::new(Chipset::GA102, &id).unwrap();
        let port = Bdf::new(0, 1, 0).unwrap();
        let gpu = Bdf::new(1, 0, 0).unwrap();
        // Invisible until the port forwards bus 1.
        assert_eq!(
            p.access(&req(Read, gpu, 0, Width::U32, 0)).0,
            Ok(0xffff_ffff)
        );
        p.access(&req(Write, port, 0x18, Width::U32, 0x0001_0100))
            .0
            .unwrap();
        assert_eq!(
            p.access(&req(Read, gpu, 0, Width::U32, 0)).0,
            Ok(0x2204_10de)
        );
        let hda = Bdf::new(1, 0, 1).unwrap();
        assert_eq!(p.access(&req(Read, hda, 0, Width::U16, 0)).0, Ok(0x10de));
        // BAR0 sizes as 16 MiB; assigning all three reports them.
        p.access(&req(Write, gpu, 0x10, Width::U32, 0xffff_ffff))
            .0
            .unwrap();
        assert_eq!(
            p.access(&req(Read, gpu, 0x10, Width::U32, 0)).0,
            Ok(0xff00_0000)
        );
        assert_eq!(
            p.access(&req(Write, gpu, 0x10, Width::U32, 0xe000_0000)).1,
            PciEffect::Bars(None)
        );
        p.access(&req(Write, gpu, 0x14, Width::U32, 0xc000_000c))
            .0
            .unwrap();
        p.access(&req(Write, gpu, 0x18, Width::U32, 0)).0.unwrap();
        p.access(&req(Write, gpu, 0x1c, Width::U32, 0xd000_000c))
            .0
            .unwrap();
        let (_, e) = p.access(&req(Write, gpu, 0x20, Width::U32, 0x1));
        assert_eq!(
            e,
            PciEffect::Bars(Some([0xe000_0000, 0xc000_0000, 0x1_d000_0000]))
        );
        // FLR through Device Control.
        let cap = p.pcie_cap().unwrap();
        assert_eq!(
            p.access(&req(Write, gpu, cap + DEVCTL, Width::U16, 1 << 15))
                .1,
            PciEffect::Flr
        );
        assert_eq!(
            p.access(&req(Write, gpu, cap + DEVCTL, Width::U16, 0)).1,
            PciEffect::None
        );
    }
}
