//! Ready-made topologies.

use super::{EmuBar, EmuError, EmuFunction, PcieType, Slot, Topology};
use crate::regs::ext;
use pci_api::Bdf;

/// PCI vendor id of NVIDIA.
pub const NVIDIA: u16 = 0x10de;
/// PCI vendor id of Red Hat's QEMU devices (host bridge 0x0008, root port 0x000c).
pub const QEMU: u16 = 0x1b36;

/// Functions in [`nvidia_gpu`]'s topology.
pub const GPU_TOPOLOGY_FUNCTIONS: usize = 4;

/// What the emulated GPU looks like on the bus. BAR layout as on Turing..Ada boards: BAR0
/// registers (32-bit), BAR1 the VRAM aperture (64-bit prefetchable), BAR3 the instance-memory
/// aperture (64-bit prefetchable), BAR5 I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuSpec {
    /// PCI device id (e.g. 0x2204 for a GA102).
    pub device: u16,
    /// Subsystem vendor and device.
    pub subsystem: (u16, u16),
    /// Size of BAR0 (registers), e.g. 16 MiB.
    pub bar0: u32,
    /// Size of BAR1 (VRAM aperture).
    pub bar1: u64,
    /// Size of BAR3 (instance memory).
    pub bar3: u64,
    /// Device id of the HD-audio function 1, if the board has one (0x1aef on GA102).
    pub audio: Option<u16>,
}

/// The GPU's PCIe topology as the GSP model presents it: a host bridge at 00:00.0, a root port
/// at 00:01.0 offering ARI forwarding, and below it the GPU (function 0: PM, MSI, PCIe endpoint,
/// vendor capability; AER extended capability) and, if `spec.audio`, its HD-audio function 1.
/// Bus numbers and BAR addresses start at 0: the `pci` server assigns them.
///
/// # Errors
/// [`EmuError::BadBar`] when a BAR size is not a power of two (BAR0 also at most 2 GiB).
pub fn nvidia_gpu(spec: &GpuSpec) -> Result<Topology<GPU_TOPOLOGY_FUNCTIONS>, EmuError> {
    let mut t = Topology::new();
    t.add(
        Slot::At(Bdf::from_routing_id(0x0000)),
        EmuFunction::host_bridge(QEMU, 0x0008),
    )?;
    let mut port = EmuFunction::bridge(QEMU, 0x000c);
    port.pcie(PcieType::RootPort, true)?.msi(0)?.pm()?;
    let port = t.add(Slot::At(Bdf::from_routing_id(0x0008)), port)?;

    let mut gpu = EmuFunction::endpoint(NVIDIA, spec.device, 0x03_00_00);
    gpu.subsystem(spec.subsystem.0, spec.subsystem.1)
        .bar(
            0,
            EmuBar::Mem32 {
                size: spec.bar0,
                prefetchable: false,
            },
        )?
        .bar(
            1,
            EmuBar::Mem64 {
                size: spec.bar1,
                prefetchable: true,
            },
        )?
        .bar(
            3,
            EmuBar::Mem64 {
                size: spec.bar3,
                prefetchable: true,
            },
        )?
        .bar(5, EmuBar::Io { size: 128 })?
        .rom(512 << 10)?
        .pm()?
        .msi(0)?
        .pcie(PcieType::Endpoint, false)?
        .flr()?
        .vendor_cap(0x14)?
        .ext_cap(ext::AER, 0x48)?;
    if spec.audio.is_some() {
        gpu.multi_function();
    }
    t.add(
        Slot::Below {
            bridge: port,
            devfn: 0,
        },
        gpu,
    )?;
    if let Some(id) = spec.audio {
        let mut hda = EmuFunction::endpoint(NVIDIA, id, 0x04_03_00);
        hda.subsystem(spec.subsystem.0, spec.subsystem.1)
            .bar(
                0,
                EmuBar::Mem32 {
                    size: 16 << 10,
                    prefetchable: false,
                },
            )?
            .pm()?
            .msi(0)?
            .pcie(PcieType::Endpoint, false)?;
        t.add(
            Slot::Below {
                bridge: port,
                devfn: 1,
            },
            hda,
        )?;
    }
    Ok(t)
}
