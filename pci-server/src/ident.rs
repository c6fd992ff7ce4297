//! Identity: class names, and which NVIDIA chip a device id is, so the gsp PD knows which
//! firmware signature family to load before it can read `NV_PMC_BOOT_0/42`.
//!
//! Class names are lspci's (pciutils `pci.ids`, class section). NVIDIA device ids are allocated
//! per chip in contiguous blocks; the ranges below are those blocks as `pci.ids` lists the
//! products of each chip (e.g. GA102: 0x2203 RTX 3090 Ti .. 0x2238 A10M). The GSP signature
//! families follow OpenRM's booter/FWSEC ucode variants (`*_tu10x`, `*_tu11x`, `*_ga10x`,
//! `*_ad10x`): GA100 boots with the Turing (tu10x) images, and this project boots Hopper with
//! the ga10x image.

/// The GPU generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// GM10x/GM20x (no GSP).
    Maxwell,
    /// GP10x (no GSP).
    Pascal,
    /// GV100 (no GSP).
    Volta,
    /// TU10x/TU11x.
    Turing,
    /// GA10x.
    Ampere,
    /// AD10x.
    Ada,
    /// GH100.
    Hopper,
}

impl Arch {
    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Maxwell => "Maxwell",
            Self::Pascal => "Pascal",
            Self::Volta => "Volta",
            Self::Turing => "Turing",
            Self::Ampere => "Ampere",
            Self::Ada => "Ada",
            Self::Hopper => "Hopper",
        }
    }
}

/// Which signed GSP boot images (booter, FWSEC) a chip needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GspFamily {
    /// TU102/TU104/TU106, and GA100.
    Tu10x,
    /// TU116/TU117.
    Tu11x,
    /// GA102..GA107, and (in this project) GH100.
    Ga10x,
    /// AD102..AD107.
    Ad10x,
}

impl GspFamily {
    /// OpenRM's suffix for the family.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tu10x => "tu10x",
            Self::Tu11x => "tu11x",
            Self::Ga10x => "ga10x",
            Self::Ad10x => "ad10x",
        }
    }
}

/// An NVIDIA chip and what the driver needs to know about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chip {
    /// Chip name (`GA102`).
    pub name: &'static str,
    /// Generation.
    pub arch: Arch,
    /// GSP boot image family; `None` for chips without a GSP.
    pub gsp: Option<GspFamily>,
    /// First device id of the chip's block.
    pub first: u16,
    /// Last device id of the chip's block.
    pub last: u16,
}

/// PCI vendor id of NVIDIA.
pub const NVIDIA: u16 = 0x10de;

const fn chip(
    name: &'static str,
    arch: Arch,
    gsp: Option<GspFamily>,
    first: u16,
    last: u16,
) -> Chip {
    Chip {
        name,
        arch,
        gsp,
        first,
        last,
    }
}

use Arch::{Ada, Ampere, Hopper, Maxwell, Pascal, Turing, Volta};
use GspFamily::{Ad10x, Ga10x, Tu10x, Tu11x};

/// NVIDIA GPU chips by device-id block.
pub static CHIPS: &[Chip] = &[
    chip("GM107", Maxwell, None, 0x1380, 0x13bf),
    chip("GM204", Maxwell, None, 0x13c0, 0x13ff),
    chip("GM206", Maxwell, None, 0x1400, 0x143f),
    chip("GP100", Pascal, None, 0x15f0, 0x15ff),
    chip("GM200", Maxwell, None, 0x17c0, 0x17ff),
    chip("GP102", Pascal, None, 0x1b00, 0x1b7f),
    chip("GP104", Pascal, None, 0x1b80, 0x1bff),
    chip("GP106", Pascal, None, 0x1c00, 0x1c7f),
    chip("GP107", Pascal, None, 0x1c80, 0x1cff),
    chip("GP108", Pascal, None, 0x1d00, 0x1d7f),
    chip("GV100", Volta, None, 0x1d80, 0x1dff),
    chip("TU102", Turing, Some(Tu10x), 0x1e00, 0x1e7f),
    chip("TU104", Turing, Some(Tu10x), 0x1e80, 0x1eff),
    chip("TU106", Turing, Some(Tu10x), 0x1f00, 0x1f7f),
    chip("TU117", Turing, Some(Tu11x), 0x1f80, 0x1fff),
    chip("GA100", Ampere, Some(Tu10x), 0x2080, 0x20ff),
    chip("TU116", Turing, Some(Tu11x), 0x2180, 0x21ff),
    chip("GA102", Ampere, Some(Ga10x), 0x2200, 0x223f),
    chip("GH100", Hopper, Some(Ga10x), 0x2300, 0x233f),
    chip("GA103", Ampere, Some(Ga10x), 0x2400, 0x247f),
    chip("GA104", Ampere, Some(Ga10x), 0x2480, 0x24ff),
    chip("GA106", Ampere, Some(Ga10x), 0x2500, 0x257f),
    chip("GA107", Ampere, Some(Ga10x), 0x2580, 0x25ff),
    chip("AD102", Ada, Some(Ad10x), 0x2680, 0x26ff),
    chip("AD103", Ada, Some(Ad10x), 0x2700, 0x277f),
    chip("AD104", Ada, Some(Ad10x), 0x2780, 0x27ff),
    chip("AD106", Ada, Some(Ad10x), 0x2800, 0x287f),
    chip("AD107", Ada, Some(Ad10x), 0x2880, 0x28ff),
];

/// The NVIDIA chip of a display-class function (class 0x03xxxx) with `vendor:device`.
/// Audio, USB and other functions of a GPU board are not GPUs and give `None`.
pub fn nvidia_chip(vendor: u16, device: u16, class: u32) -> Option<&'static Chip> {
    if vendor != NVIDIA || class >> 16 != 0x03 {
        return None;
    }
    CHIPS.iter().find(|c| (c.first..=c.last).contains(&device))
}

/// lspci's name for a class code (base class and subclass; 24-bit `class` with prog-if).
pub fn class_name(class: u32) -> &'static str {
    let (base, sub) = (class >> 16 & 0xff, class >> 8 & 0xff);
    let exact = match (base, sub) {
        (0x00, 0x01) => "VGA compatible unclassified device",
        (0x01, 0x00) => "SCSI storage controller",
        (0x01, 0x01) => "IDE interface",
        (0x01, 0x04) => "RAID bus controller",
        (0x01, 0x05) => "ATA controller",
        (0x01, 0x06) => "SATA controller",
        (0x01, 0x07) => "Serial Attached SCSI controller",
        (0x01, 0x08) => "Non-Volatile memory controller",
        (0x02, 0x00) => "Ethernet controller",
        (0x03, 0x00) => "VGA compatible controller",
        (0x03, 0x01) => "XGA compatible controller",
        (0x03, 0x02) => "3D controller",
        (0x04, 0x00) => "Multimedia video controller",
        (0x04, 0x01) => "Multimedia audio controller",
        (0x04, 0x03) => "Audio device",
        (0x05, 0x00) => "RAM memory",
        (0x06, 0x00) => "Host bridge",
        (0x06, 0x01) => "ISA bridge",
        (0x06, 0x04) => "PCI bridge",
        (0x06, 0x07) => "CardBus bridge",
        (0x07, 0x00) => "Serial controller",
        (0x08, 0x05) => "SD Host controller",
        (0x08, 0x06) => "IOMMU",
        (0x0c, 0x00) => "FireWire (IEEE 1394)",
        (0x0c, 0x03) => "USB controller",
        (0x0c, 0x05) => "SMBus",
        (0x0c, 0x06) => "InfiniBand",
        _ => "",
    };
    if !exact.is_empty() {
        return exact;
    }
    match base {
        0x00 => "Unclassified device",
        0x01 => "Mass storage controller",
        0x02 => "Network controller",
        0x03 => "Display controller",
        0x04 => "Multimedia controller",
        0x05 => "Memory controller",
        0x06 => "Bridge",
        0x07 => "Communication controller",
        0x08 => "System peripheral",
        0x09 => "Input device controller",
        0x0a => "Docking station",
        0x0b => "Processor",
        0x0c => "Serial bus controller",
        0x0d => "Wireless controller",
        0x0e => "Intelligent controller",
        0x0f => "Satellite communications controller",
        0x10 => "Encryption controller",
        0x11 => "Signal processing controller",
        0x12 => "Processing accelerators",
        0x13 => "Non-Essential Instrumentation",
        0x40 => "Coprocessor",
        _ => "Unassigned class",
    }
}
