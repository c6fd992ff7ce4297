//! Chip identity: `NV_PMC_BOOT_42` decoding into [`Chipset`] and [`Architecture`], and the
//! per-chip choices the boot makes from it (firmware signature section, LibOS version, which
//! registers exist). Chipset codes and signature sections: reference section 1.1 and 8
//! (`../shared/reference/gsp-protocol.md`), confirmed in nova-core `gpu.rs` and `firmware/gsp.rs`.
//!
//! Trust: BOOT_42 comes from the device; an unknown architecture or implementation is a typed
//! error ([`ChipError`]), never a guess.

use crate::regs::{NV_PMC_BOOT_0, NV_PMC_BOOT_42};

/// Why a BOOT_0/BOOT_42 value names no chip we drive.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChipError {
    /// BOOT_0 says the GPU predates Fermi: BOOT_42 is not implemented there.
    PreFermi = 1,
    /// BOOT_42's architecture field (bits 29:24) names no architecture this driver knows.
    UnknownArchitecture = 2,
    /// The architecture is known but the implementation (bits 23:20) names no supported chip.
    UnknownChipset = 3,
}

/// GPU architecture: BOOT_42 bits 29:24.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Architecture {
    /// Turing (TU10x, TU11x).
    Turing = 0x16,
    /// Ampere (GA100, GA10x).
    Ampere = 0x17,
    /// Hopper (GH100).
    Hopper = 0x18,
    /// Ada Lovelace (AD10x).
    Ada = 0x19,
}

impl TryFrom<u32> for Architecture {
    type Error = ChipError;

    fn try_from(value: u32) -> Result<Self, ChipError> {
        match value {
            0x16 => Ok(Self::Turing),
            0x17 => Ok(Self::Ampere),
            0x18 => Ok(Self::Hopper),
            0x19 => Ok(Self::Ada),
            _ => Err(ChipError::UnknownArchitecture),
        }
    }
}

impl From<Architecture> for u32 {
    fn from(arch: Architecture) -> u32 {
        // CAST: a fieldless `repr(u32)` enum converts losslessly.
        arch as u32
    }
}

/// A supported chip: `architecture << 4 | implementation` (OpenRM's chipset code).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Chipset {
    TU102 = 0x162,
    TU104 = 0x164,
    TU106 = 0x166,
    TU117 = 0x167,
    TU116 = 0x168,
    GA100 = 0x170,
    GA102 = 0x172,
    GA103 = 0x173,
    GA104 = 0x174,
    GA106 = 0x176,
    GA107 = 0x177,
    GH100 = 0x180,
    AD102 = 0x192,
    AD103 = 0x193,
    AD104 = 0x194,
    AD106 = 0x196,
    AD107 = 0x197,
}

/// Which LibOS the chip's GSP-RM runs; decides the WPR2 heap sizing (reference section 1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Libos {
    /// LibOS 2: Turing and GA100.
    V2,
    /// LibOS 3: GA102 and later.
    V3,
}

/// Where the usable framebuffer size is read (nova-core `fb/hal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FbSizeSource {
    /// `NV_PFB_PRI_MMU_LOCAL_MEMORY_RANGE` (TU10x, GA100).
    LocalMemoryRange,
    /// `NV_USABLE_FB_SIZE_IN_MB` (GA102 and later).
    UsableFbSizeInMb,
}

impl Chipset {
    /// Every supported chip, in chipset-code order.
    pub const ALL: [Chipset; 17] = [
        Self::TU102,
        Self::TU104,
        Self::TU106,
        Self::TU117,
        Self::TU116,
        Self::GA100,
        Self::GA102,
        Self::GA103,
        Self::GA104,
        Self::GA106,
        Self::GA107,
        Self::GH100,
        Self::AD102,
        Self::AD103,
        Self::AD104,
        Self::AD106,
        Self::AD107,
    ];

    /// The chip named by a BOOT_0/BOOT_42 pair, as nova-core identifies it: BOOT_0 rules out
    /// pre-Fermi parts (which lack BOOT_42), then BOOT_42 gives architecture and implementation.
    ///
    /// # Errors
    /// [`ChipError::PreFermi`], [`ChipError::UnknownArchitecture`], [`ChipError::UnknownChipset`].
    pub fn identify(boot0: NV_PMC_BOOT_0, boot42: NV_PMC_BOOT_42) -> Result<Self, ChipError> {
        if boot0.is_older_than_fermi() {
            return Err(ChipError::PreFermi);
        }
        Self::from_boot42(boot42)
    }

    /// The chip named by BOOT_42 (bits 29:24 architecture, 23:20 implementation).
    ///
    /// # Errors
    /// [`ChipError::UnknownArchitecture`] or [`ChipError::UnknownChipset`].
    pub fn from_boot42(boot42: NV_PMC_BOOT_42) -> Result<Self, ChipError> {
        let arch = boot42
            .architecture()
            .map_err(|_| ChipError::UnknownArchitecture)?;
        Self::try_from(u32::from(arch) << 4 | boot42.implementation())
    }

    /// The chip's architecture.
    pub fn arch(self) -> Architecture {
        match self {
            Self::TU102 | Self::TU104 | Self::TU106 | Self::TU117 | Self::TU116 => {
                Architecture::Turing
            }
            Self::GA100 | Self::GA102 | Self::GA103 | Self::GA104 | Self::GA106 | Self::GA107 => {
                Architecture::Ampere
            }
            Self::GH100 => Architecture::Hopper,
            Self::AD102 | Self::AD103 | Self::AD104 | Self::AD106 | Self::AD107 => {
                Architecture::Ada
            }
        }
    }

    /// Lower-case name as used in firmware paths: `nvidia/<name>/gsp/gsp-570.144.bin`.
    pub fn name(self) -> &'static str {
        match self {
            Self::TU102 => "tu102",
            Self::TU104 => "tu104",
            Self::TU106 => "tu106",
            Self::TU117 => "tu117",
            Self::TU116 => "tu116",
            Self::GA100 => "ga100",
            Self::GA102 => "ga102",
            Self::GA103 => "ga103",
            Self::GA104 => "ga104",
            Self::GA106 => "ga106",
            Self::GA107 => "ga107",
            Self::GH100 => "gh100",
            Self::AD102 => "ad102",
            Self::AD103 => "ad103",
            Self::AD104 => "ad104",
            Self::AD106 => "ad106",
            Self::AD107 => "ad107",
        }
    }

    /// The GSP image family: the `<family>` of Debian's `gsp_<family>.bin` (535 series) and the
    /// image the per-chip 570.144 files link to. GA100 runs the Turing image; Hopper the GA10x one
    /// (reference section 8).
    pub fn image_family(self) -> &'static str {
        match self {
            Self::TU102 | Self::TU104 | Self::TU106 | Self::TU117 | Self::TU116 | Self::GA100 => {
                "tu10x"
            }
            _ => "ga10x",
        }
    }

    /// ELF section holding this chip's signatures in the GSP image (nova-core
    /// `firmware/gsp.rs`: TU116/117 use `_tu11x`, GA100 shares Turing's `_tu10x`).
    pub fn signature_section(self) -> &'static str {
        match self {
            Self::TU116 | Self::TU117 => ".fwsignature_tu11x",
            Self::TU102 | Self::TU104 | Self::TU106 | Self::GA100 => ".fwsignature_tu10x",
            Self::GA102 | Self::GA103 | Self::GA104 | Self::GA106 | Self::GA107 => {
                ".fwsignature_ga10x"
            }
            Self::GH100 => ".fwsignature_gh100",
            Self::AD102 | Self::AD103 | Self::AD104 | Self::AD106 | Self::AD107 => {
                ".fwsignature_ad10x"
            }
        }
    }

    /// The LibOS version GSP-RM runs on this chip (nova-core `LibosParams::from_chipset`).
    pub fn libos(self) -> Libos {
        if self < Self::GA102 {
            Libos::V2
        } else {
            Libos::V3
        }
    }

    /// Whether `NV_PFB_NISO_FLUSH_SYSMEM_ADDR_HI` exists (GA100 and later; on Turing the flush
    /// page must sit below 2^40).
    pub fn has_sysmem_flush_hi(self) -> bool {
        self >= Self::GA100
    }

    /// Whether the RISC-V core state is read from `NV_PRISCV_RISCV_CPUCTL` (GA102 and later)
    /// rather than `NV_PRISCV_RISCV_CORE_SWITCH_RISCV_STATUS` (TU10x, GA100).
    pub fn has_riscv_cpuctl(self) -> bool {
        self >= Self::GA102
    }

    /// Whether the display fuse is `regs::ga100::NV_FUSE_STATUS_OPT_DISPLAY` (GA100 and later)
    /// rather than `regs::gm107::NV_FUSE_STATUS_OPT_DISPLAY`.
    pub fn has_ga100_display_fuse(self) -> bool {
        self >= Self::GA100
    }

    /// Which register gives the usable framebuffer size.
    pub fn fb_size_source(self) -> FbSizeSource {
        if self >= Self::GA102 {
            FbSizeSource::UsableFbSizeInMb
        } else {
            FbSizeSource::LocalMemoryRange
        }
    }
}

impl TryFrom<u32> for Chipset {
    type Error = ChipError;

    fn try_from(code: u32) -> Result<Self, ChipError> {
        Self::ALL
            .into_iter()
            .find(|c| u32::from(*c) == code)
            .ok_or(ChipError::UnknownChipset)
    }
}

impl From<Chipset> for u32 {
    fn from(chip: Chipset) -> u32 {
        // CAST: a fieldless `repr(u32)` enum converts losslessly.
        chip as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot42(arch: u32, imp: u32) -> NV_PMC_BOOT_42 {
        NV_PMC_BOOT_42::from_raw(arch << 24 | imp << 20 | 0xa1 << 12)
    }

    #[test]
    fn boot42_decodes_every_supported_chip() {
        for chip in Chipset::ALL {
            let code = u32::from(chip);
            let decoded = Chipset::from_boot42(boot42(code >> 4, code & 0xf));
            assert_eq!(decoded, Ok(chip), "{}", chip.name());
            assert_eq!(u32::from(chip.arch()), code >> 4);
        }
    }

    #[test]
    fn boot42_rejects_unknown_architecture_and_implementation() {
        assert_eq!(
            Chipset::from_boot42(boot42(0x14, 0)),
            Err(ChipError::UnknownArchitecture)
        );
        // TU10x implementation 5 does not exist.
        assert_eq!(
            Chipset::from_boot42(boot42(0x16, 5)),
            Err(ChipError::UnknownChipset)
        );
        assert_eq!(
            Chipset::from_boot42(boot42(0x19, 5)),
            Err(ChipError::UnknownChipset)
        );
    }

    #[test]
    fn boot0_pre_fermi_is_refused() {
        // NV50-era BOOT_0: architecture_0 = 0x5, architecture_1 = 0.
        let old = NV_PMC_BOOT_0::from_raw(0x05 << 24);
        assert_eq!(
            Chipset::identify(old, boot42(0x16, 2)),
            Err(ChipError::PreFermi)
        );
        // TU102's BOOT_0 has architecture_0 = 0x16.
        let tu102 = NV_PMC_BOOT_0::from_raw(0x16 << 24 | 0x2 << 20 | 0xa1);
        assert_eq!(
            Chipset::identify(tu102, boot42(0x16, 2)),
            Ok(Chipset::TU102)
        );
    }

    #[test]
    fn signature_sections_follow_nova() {
        assert_eq!(Chipset::TU102.signature_section(), ".fwsignature_tu10x");
        assert_eq!(Chipset::GA100.signature_section(), ".fwsignature_tu10x");
        assert_eq!(Chipset::TU116.signature_section(), ".fwsignature_tu11x");
        assert_eq!(Chipset::TU117.signature_section(), ".fwsignature_tu11x");
        assert_eq!(Chipset::GA107.signature_section(), ".fwsignature_ga10x");
        assert_eq!(Chipset::AD104.signature_section(), ".fwsignature_ad10x");
        assert_eq!(Chipset::GA100.image_family(), "tu10x");
        assert_eq!(Chipset::GH100.image_family(), "ga10x");
    }

    #[test]
    fn per_chip_hal_choices() {
        assert_eq!(Chipset::GA100.libos(), Libos::V2);
        assert_eq!(Chipset::GA102.libos(), Libos::V3);
        assert!(!Chipset::TU117.has_sysmem_flush_hi());
        assert!(Chipset::GA100.has_sysmem_flush_hi());
        assert!(!Chipset::GA100.has_riscv_cpuctl());
        assert!(Chipset::GA102.has_riscv_cpuctl());
        assert_eq!(
            Chipset::GA100.fb_size_source(),
            FbSizeSource::LocalMemoryRange
        );
        assert_eq!(
            Chipset::AD102.fb_size_source(),
            FbSizeSource::UsableFbSizeInMb
        );
    }
}
