//! Top-of-VRAM framebuffer layout for the GSP boot, and the `GspFwWprMeta` that describes it.
//!
//! From the end of VRAM downwards (reference section 1.7; nova-core `fb.rs`, nouveau r535
//! `oneinit`): VGA workspace, FRTS (1 MiB, created by FWSEC-FRTS), the bootloader, the ELF image,
//! the WPR2 heap, `GspFwWprMeta` at the start of WPR2, and a 1 MiB non-WPR heap below WPR2.
//!
//! The WPR2 heap is sized by [`wpr_heap_size`] from the firmware version's [`HeapParams`]
//! ([`HeapParams::R570_144`] by default; [`HeapParams::R535_113_01`] for nouveau's firmware) and
//! clamped per [`HeapClamp`]. Where drivers differ the choice is one switch, documented there.
//!
//! Everything here is checked arithmetic on values the device reported (FB size, VGA workspace):
//! a layout that does not fit is [`LayoutError`], never a wrapped address.

use crate::chip::{Architecture, Chipset, FbSizeSource, Libos};
use crate::elf::RiscvBootloader;
use crate::fw::current::wpr::{self, GspFwWprMeta};
use crate::radix3::Radix3;
use crate::regs::{self, Mmio, MmioError};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Why no layout could be computed.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// The regions do not fit below the end of the framebuffer.
    FbTooSmall = 1,
    /// The VGA workspace base the device reported lies at or beyond the end of the framebuffer.
    BadVgaWorkspace = 2,
    /// The chip boots through FSP (Hopper), which this layout does not describe.
    UnsupportedChip = 3,
    /// The firmware image or bootloader is empty.
    EmptyFirmware = 4,
}

/// A half-open range of framebuffer offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Span {
    /// Bytes in the span.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `start..start + len`.
    fn at(start: u64, len: u64) -> Result<Self, LayoutError> {
        let end = start.checked_add(len).ok_or(LayoutError::FbTooSmall)?;
        Ok(Self { start, end })
    }
}

/// `value` rounded down to a power-of-two `align`.
const fn align_down(value: u64, align: u64) -> u64 {
    value & !(align - 1)
}

/// `value` rounded up to a power-of-two `align`.
fn align_up(value: u64, align: u64) -> Result<u64, LayoutError> {
    value
        .checked_add(align - 1)
        .map(|v| align_down(v, align))
        .ok_or(LayoutError::FbTooSmall)
}

/// `a - b`, or [`LayoutError::FbTooSmall`].
fn below(a: u64, b: u64) -> Result<u64, LayoutError> {
    a.checked_sub(b).ok_or(LayoutError::FbTooSmall)
}

/// WPR2 heap constants of one firmware version (OpenRM `gsp_fw_heap.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapParams {
    /// LibOS 2 carve-out.
    pub os_size_libos2: u64,
    /// LibOS 3 (bare metal) carve-out.
    pub os_size_libos3: u64,
    /// GSP-RM boot working memory (Turing through Ada).
    pub base_rm_size: u64,
    /// One RM client's allocations.
    pub client_alloc_size: u64,
    /// Management overhead per GiB of framebuffer.
    pub size_per_gb_fb: u64,
    /// LibOS 2 heap bounds in MiB: `[min, max)`.
    pub libos2_mb: (u64, u64),
    /// LibOS 3 heap bounds in MiB: `[min, max)`.
    pub libos3_mb: (u64, u64),
}

impl HeapParams {
    /// 570.144, the firmware this crate targets (`fw::current::wpr`).
    pub const R570_144: Self = Self {
        os_size_libos2: wpr::GSP_FW_HEAP_PARAM_OS_SIZE_LIBOS2,
        os_size_libos3: wpr::GSP_FW_HEAP_PARAM_OS_SIZE_LIBOS3_BAREMETAL,
        base_rm_size: wpr::GSP_FW_HEAP_PARAM_BASE_RM_SIZE_TU10X,
        client_alloc_size: wpr::GSP_FW_HEAP_PARAM_CLIENT_ALLOC_SIZE,
        size_per_gb_fb: wpr::GSP_FW_HEAP_PARAM_SIZE_PER_GB_FB,
        libos2_mb: (
            wpr::GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS2_MIN_MB,
            wpr::GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS2_MAX_MB,
        ),
        libos3_mb: (
            wpr::GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS3_BAREMETAL_MIN_MB,
            wpr::GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS3_BAREMETAL_MAX_MB,
        ),
    };

    /// 535.113.01 (nouveau's r535 firmware): LibOS 3 carve-out 20 MiB, bounds [84, 276) MiB;
    /// everything else as 570.144 (reference 1.7, OpenRM 535.113.01 `gsp_fw_heap.h`).
    pub const R535_113_01: Self = Self {
        os_size_libos3: 20 * MIB,
        libos3_mb: (84, 276),
        ..Self::R570_144
    };
}

/// How the WPR2 heap size is clamped to its bounds. The two drivers differ and the reference
/// marks the firmware's own rule UNVERIFIED. Both only matter for framebuffers the computed size
/// never reaches in practice: the maximum binds only above ~1.5 TiB of VRAM, and the minimum
/// binds only for LibOS 3 below a few GiB (LibOS 2 starts at 104 MiB > 64 MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeapClamp {
    /// nova-core `LibosParams::wpr_heap_size`: clamp to `[min, max − 1]`. Default: nova-core
    /// boots the 570.144 firmware this crate targets.
    #[default]
    Nova,
    /// nouveau r535: raise to `min`, no maximum.
    MinOnly,
}

/// WPR2 heap size for `chip` with `fb_size` bytes of VRAM: LibOS carve-out + base RM + client
/// allocation (rounded up to 1 MiB) + per-GiB overhead × ceil(FB GiB) (rounded up to 1 MiB),
/// then clamped (nova-core `gsp/fw.rs` `LibosParams::wpr_heap_size`).
///
/// # Errors
/// [`LayoutError::UnsupportedChip`] for Hopper (different base RM size and heap rules).
pub fn wpr_heap_size(
    chip: Chipset,
    fb_size: u64,
    params: &HeapParams,
    clamp: HeapClamp,
) -> Result<u64, LayoutError> {
    if chip.arch() == Architecture::Hopper {
        return Err(LayoutError::UnsupportedChip);
    }
    let (carveout, (min_mb, max_mb)) = match chip.libos() {
        Libos::V2 => (params.os_size_libos2, params.libos2_mb),
        Libos::V3 => (params.os_size_libos3, params.libos3_mb),
    };
    let overhead = params.size_per_gb_fb.saturating_mul(fb_size.div_ceil(GIB));
    let size = carveout
        .saturating_add(params.base_rm_size)
        .saturating_add(align_up(params.client_alloc_size, MIB).unwrap_or(u64::MAX))
        .saturating_add(align_up(overhead, MIB).unwrap_or(u64::MAX));
    let min = min_mb.saturating_mul(MIB);
    Ok(match clamp {
        HeapClamp::Nova => size.clamp(min, max_mb.saturating_mul(MIB).saturating_sub(1).max(min)),
        HeapClamp::MinOnly => size.max(min),
    })
}

/// What the layout depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutInput {
    /// The chip.
    pub chip: Chipset,
    /// Usable framebuffer size in bytes ([`read_fb_size`]).
    pub fb_size: u64,
    /// The VGA workspace base the VBIOS reports, `None` without display or without a valid base
    /// ([`read_vga_workspace`]).
    pub vga_workspace: Option<u64>,
    /// `.fwimage` length.
    pub fwimage_len: u64,
    /// Bootloader payload length.
    pub bootloader_len: u64,
}

/// The regions reserved at the top of VRAM for the GSP boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbLayout {
    /// All of VRAM, from 0.
    pub fb: Span,
    /// VGA workspace, up to the end of VRAM.
    pub vga_workspace: Span,
    /// FRTS (1 MiB), ending at the VGA workspace aligned down to 128 KiB.
    pub frts: Span,
    /// Bootloader copy, below FRTS, 4 KiB aligned.
    pub boot: Span,
    /// ELF (`.fwimage`) copy, below the bootloader, 64 KiB aligned.
    pub elf: Span,
    /// WPR2 heap, below the ELF, 1 MiB aligned.
    pub wpr2_heap: Span,
    /// WPR2: `GspFwWprMeta` at its start, up to the end of FRTS.
    pub wpr2: Span,
    /// Non-WPR heap (1 MiB) directly below WPR2.
    pub non_wpr_heap: Span,
}

/// VBIOS workspace size used when the reported base lies too low (nova-core `fb.rs`).
const VBIOS_WORKSPACE_SIZE: u64 = 128 * KIB;
/// The PRAMIN window: default VGA workspace size without display.
const PRAMIN_SIZE: u64 = MIB;
/// FRTS size and alignment.
const FRTS_SIZE: u64 = MIB;
const FRTS_ALIGN: u64 = 128 * KIB;
/// Non-WPR heap size (nova-core `non_wpr_heap_size_tu102`).
const NON_WPR_HEAP_SIZE: u64 = MIB;

impl FbLayout {
    /// The layout for 570.144 with the default [`HeapClamp`].
    ///
    /// # Errors
    /// See [`FbLayout::compute_with`].
    pub fn compute(input: &LayoutInput) -> Result<Self, LayoutError> {
        Self::compute_with(input, &HeapParams::R570_144, HeapClamp::default())
    }

    /// The layout with explicit heap constants and clamp rule.
    ///
    /// # Errors
    /// [`LayoutError::EmptyFirmware`], [`LayoutError::BadVgaWorkspace`],
    /// [`LayoutError::UnsupportedChip`], [`LayoutError::FbTooSmall`].
    pub fn compute_with(
        input: &LayoutInput,
        heap: &HeapParams,
        clamp: HeapClamp,
    ) -> Result<Self, LayoutError> {
        if input.fwimage_len == 0 || input.bootloader_len == 0 {
            return Err(LayoutError::EmptyFirmware);
        }
        let fb = Span {
            start: 0,
            end: input.fb_size,
        };
        let default_base = below(fb.end, PRAMIN_SIZE)?;
        let vga_start = match input.vga_workspace {
            Some(addr) if addr >= fb.end => return Err(LayoutError::BadVgaWorkspace),
            Some(addr) if addr < default_base => below(fb.end, VBIOS_WORKSPACE_SIZE)?,
            Some(addr) => addr,
            None => default_base,
        };
        let vga_workspace = Span {
            start: vga_start,
            end: fb.end,
        };
        let frts_end = align_down(vga_start, FRTS_ALIGN);
        let frts = Span::at(below(frts_end, FRTS_SIZE)?, FRTS_SIZE)?;
        let boot = Span::at(
            align_down(below(frts.start, input.bootloader_len)?, 4 * KIB),
            input.bootloader_len,
        )?;
        let elf = Span::at(
            align_down(below(boot.start, input.fwimage_len)?, 64 * KIB),
            input.fwimage_len,
        )?;
        let heap_size = wpr_heap_size(input.chip, input.fb_size, heap, clamp)?;
        let wpr2_heap = Span {
            start: align_down(below(elf.start, heap_size)?, MIB),
            end: align_down(elf.start, MIB),
        };
        let meta_len = core::mem::size_of::<GspFwWprMeta>() as u64;
        let wpr2 = Span {
            start: align_down(below(wpr2_heap.start, meta_len)?, MIB),
            end: frts.end,
        };
        let non_wpr_heap = Span {
            start: below(wpr2.start, NON_WPR_HEAP_SIZE)?,
            end: wpr2.start,
        };
        Ok(Self {
            fb,
            vga_workspace,
            frts,
            boot,
            elf,
            wpr2_heap,
            wpr2,
            non_wpr_heap,
        })
    }

    /// The `GspFwWprMeta` for this layout and the system-memory side of the boot (nova-core
    /// `GspFwWprMeta::new`): everything at cold-boot values, `verified` zero for booter to set.
    pub fn wpr_meta(&self, sysmem: &WprSysmem) -> GspFwWprMeta {
        GspFwWprMeta {
            magic: wpr::GSP_FW_WPR_META_MAGIC,
            revision: wpr::GSP_FW_WPR_META_REVISION,
            sysmemAddrOfRadix3Elf: sysmem.radix3.level0,
            sizeOfRadix3Elf: sysmem.radix3.image_len,
            sysmemAddrOfBootloader: sysmem.bootloader_addr,
            sizeOfBootloader: sysmem.bootloader_len,
            bootloaderCodeOffset: u64::from(sysmem.bootloader_code_offset),
            bootloaderDataOffset: u64::from(sysmem.bootloader_data_offset),
            bootloaderManifestOffset: u64::from(sysmem.bootloader_manifest_offset),
            sysmemAddrOfSignature: sysmem.signature_addr,
            sizeOfSignature: sysmem.signature_len,
            gspFwRsvdStart: self.non_wpr_heap.start,
            nonWprHeapOffset: self.non_wpr_heap.start,
            nonWprHeapSize: self.non_wpr_heap.len(),
            gspFwWprStart: self.wpr2.start,
            gspFwHeapOffset: self.wpr2_heap.start,
            gspFwHeapSize: self.wpr2_heap.len(),
            gspFwOffset: self.elf.start,
            bootBinOffset: self.boot.start,
            frtsOffset: self.frts.start,
            frtsSize: self.frts.len(),
            gspFwWprEnd: align_down(self.vga_workspace.start, FRTS_ALIGN),
            fbSize: self.fb.len(),
            vgaWorkspaceOffset: self.vga_workspace.start,
            vgaWorkspaceSize: self.vga_workspace.len(),
            bootCount: 0,
            partitionRpcAddr: 0,
            partitionRpcRequestOffset: 0,
            partitionRpcReplyOffset: 0,
            elfCodeOffset: 0,
            elfDataOffset: 0,
            elfCodeSize: 0,
            elfDataSize: 0,
            lsUcodeVersion: 0,
            gspFwHeapVfPartitionCount: 0,
            flags: 0,
            padding: [0; 2],
            pmuReservedSize: 0,
            verified: 0,
        }
    }
}

/// Where the boot's system-memory pieces are (DMA addresses and lengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WprSysmem {
    /// The radix3 map of `.fwimage`.
    pub radix3: Radix3,
    /// DMA address of the bootloader payload.
    pub bootloader_addr: u64,
    /// Its length.
    pub bootloader_len: u64,
    /// `RM_RISCV_UCODE_DESC.monitorCodeOffset`.
    pub bootloader_code_offset: u32,
    /// `RM_RISCV_UCODE_DESC.monitorDataOffset`.
    pub bootloader_data_offset: u32,
    /// `RM_RISCV_UCODE_DESC.manifestOffset`.
    pub bootloader_manifest_offset: u32,
    /// DMA address of the chip's signature bytes.
    pub signature_addr: u64,
    /// Their length.
    pub signature_len: u64,
}

impl WprSysmem {
    /// The pieces from a parsed bootloader and signature and their DMA addresses.
    pub fn new(
        radix3: Radix3,
        bootloader: &RiscvBootloader<'_>,
        bootloader_addr: u64,
        signature: &[u8],
        signature_addr: u64,
    ) -> Self {
        Self {
            radix3,
            bootloader_addr,
            bootloader_len: bootloader.ucode().len() as u64,
            bootloader_code_offset: bootloader.code_offset(),
            bootloader_data_offset: bootloader.data_offset(),
            bootloader_manifest_offset: bootloader.manifest_offset(),
            signature_addr,
            signature_len: signature.len() as u64,
        }
    }
}

/// The usable framebuffer size as the chip reports it (nova-core `fb/hal`).
///
/// # Errors
/// The MMIO error.
pub fn read_fb_size<M: Mmio + ?Sized>(io: &mut M, chip: Chipset) -> Result<u64, MmioError> {
    Ok(match chip.fb_size_source() {
        FbSizeSource::LocalMemoryRange => {
            regs::NV_PFB_PRI_MMU_LOCAL_MEMORY_RANGE::read(io)?.usable_fb_size()
        }
        FbSizeSource::UsableFbSizeInMb => regs::NV_USABLE_FB_SIZE_IN_MB::read(io)?.usable_fb_size(),
    })
}

/// The VGA workspace base for [`LayoutInput::vga_workspace`]: `None` when the display is fused
/// off or the VBIOS left no valid base.
///
/// # Errors
/// The MMIO error.
pub fn read_vga_workspace<M: Mmio + ?Sized>(
    io: &mut M,
    chip: Chipset,
) -> Result<Option<u64>, MmioError> {
    if !regs::display_enabled(io, chip)? {
        return Ok(None);
    }
    Ok(regs::NV_PDISP_VGA_WORKSPACE_BASE::read(io)?.vga_workspace_addr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs::test_mmio::MapMmio;
    use zerocopy::IntoBytes;

    const GIB24: u64 = 24 << 30;

    fn input(chip: Chipset, fwimage_len: u64, bootloader_len: u64) -> LayoutInput {
        LayoutInput {
            chip,
            fb_size: GIB24,
            vga_workspace: None,
            fwimage_len,
            bootloader_len,
        }
    }

    #[test]
    fn heap_sizes_by_hand() {
        let p = &HeapParams::R570_144;
        // TU102, 24 GiB: 0 + 8 MiB + 96 MiB + roundup(96 KiB × 24 = 2.25 MiB) = 3 MiB -> 107 MiB.
        assert_eq!(
            wpr_heap_size(Chipset::TU102, GIB24, p, HeapClamp::Nova),
            Ok(107 * MIB)
        );
        // GA102, 24 GiB: 22 + 8 + 96 + 3 = 129 MiB.
        assert_eq!(
            wpr_heap_size(Chipset::GA102, GIB24, p, HeapClamp::Nova),
            Ok(129 * MIB)
        );
        // 535.113.01 GA102: 20 + 8 + 96 + 3 = 127 MiB.
        assert_eq!(
            wpr_heap_size(
                Chipset::GA102,
                GIB24,
                &HeapParams::R535_113_01,
                HeapClamp::Nova
            ),
            Ok(127 * MIB)
        );
        // 1 GiB of VRAM: overhead 96 KiB rounds up to 1 MiB; LibOS 2: 105 MiB.
        assert_eq!(
            wpr_heap_size(Chipset::TU117, GIB, p, HeapClamp::MinOnly),
            Ok(105 * MIB)
        );
        assert_eq!(
            wpr_heap_size(Chipset::GH100, GIB24, p, HeapClamp::Nova),
            Err(LayoutError::UnsupportedChip)
        );
    }

    #[test]
    fn heap_clamp_rules_differ_only_at_the_bounds() {
        // A made-up firmware whose LibOS 3 minimum is above the computed size and whose maximum
        // is below it shows both rules.
        let low = HeapParams {
            libos3_mb: (200, 300),
            ..HeapParams::R570_144
        };
        assert_eq!(
            wpr_heap_size(Chipset::GA102, GIB24, &low, HeapClamp::Nova),
            Ok(200 * MIB)
        );
        assert_eq!(
            wpr_heap_size(Chipset::GA102, GIB24, &low, HeapClamp::MinOnly),
            Ok(200 * MIB)
        );
        let high = HeapParams {
            libos3_mb: (88, 100),
            ..HeapParams::R570_144
        };
        assert_eq!(
            wpr_heap_size(Chipset::GA102, GIB24, &high, HeapClamp::Nova),
            Ok(100 * MIB - 1)
        );
        assert_eq!(
            wpr_heap_size(Chipset::GA102, GIB24, &high, HeapClamp::MinOnly),
            Ok(129 * MIB)
        );
    }

    const fn span(start: u64, end: u64) -> Span {
        Span { start, end }
    }

    /// AD102 with 16 GiB and a made-up small image whose bootloader is not a page multiple.
    fn ad102_16g() -> FbLayout {
        let mut i = input(Chipset::AD102, 0x2_3456, 0x2100);
        i.fb_size = 16 * GIB;
        FbLayout::compute(&i).unwrap()
    }

    #[test]
    fn ad102_16g_layout_by_hand() {
        // (The TU102/GA102 24 GiB layouts with the real image sizes are in tests/real_firmware.rs.)
        let l = ad102_16g();
        // VGA: no base -> FB end 0x4_0000_0000 − 1 MiB; FRTS: the 1 MiB below it.
        assert_eq!(l.vga_workspace, span(0x3_fff0_0000, 0x4_0000_0000));
        assert_eq!(l.frts, span(0x3_ffe0_0000, 0x3_fff0_0000));
        // Bootloader: 0x3_ffe0_0000 − 0x2100 = 0x3_ffdf_df00, down to 4 KiB: 0x3_ffdf_d000.
        assert_eq!(l.boot, span(0x3_ffdf_d000, 0x3_ffdf_f100));
        // ELF: 0x3_ffdf_d000 − 0x2_3456 = 0x3_ffdd_9baa, down to 64 KiB: 0x3_ffdd_0000.
        assert_eq!(l.elf, span(0x3_ffdd_0000, 0x3_ffdf_3456));
        // Heap (LibOS 3): 22 + 8 + 96 + roundup(96 KiB × 16 = 1.5 MiB) = 2 -> 128 MiB;
        // 0x3_ffdd_0000 − 0x800_0000 = 0x3_f7dd_0000 -> 0x3_f7d0_0000; end -> 0x3_ffd0_0000.
        assert_eq!(l.wpr2_heap, span(0x3_f7d0_0000, 0x3_ffd0_0000));
        assert_eq!(l.wpr2_heap.len(), 128 * MIB);
        // WPR2: (0x3_f7d0_0000 − 256) down to 1 MiB, up to the end of FRTS; non-WPR heap below.
        assert_eq!(l.wpr2, span(0x3_f7c0_0000, 0x3_fff0_0000));
        assert_eq!(l.non_wpr_heap, span(0x3_f7b0_0000, 0x3_f7c0_0000));
    }

    #[test]
    fn vga_workspace_rules() {
        let mut i = input(Chipset::GA102, 0x10_0000, 0x6000);
        // A base above FB end − 1 MiB is used as is.
        i.vga_workspace = Some(0x5_fff8_0000);
        let l = FbLayout::compute(&i).unwrap();
        assert_eq!(l.vga_workspace.start, 0x5_fff8_0000);
        assert_eq!(l.frts.end, 0x5_fff8_0000);
        // A base below FB end − 1 MiB is replaced by FB end − 128 KiB.
        i.vga_workspace = Some(0x1000_0000);
        let l = FbLayout::compute(&i).unwrap();
        assert_eq!(l.vga_workspace.start, 0x5_fffe_0000);
        assert_eq!(l.frts, span(0x5_ffee_0000, 0x5_fffe_0000));
        // A base that is not 128 KiB aligned: FRTS ends at it aligned down.
        i.vga_workspace = Some(0x5_fff9_0000);
        let l = FbLayout::compute(&i).unwrap();
        assert_eq!(l.frts.end, 0x5_fff8_0000);
        assert_eq!(l.wpr_meta(&sysmem()).gspFwWprEnd, 0x5_fff8_0000);
        i.vga_workspace = Some(GIB24);
        assert_eq!(FbLayout::compute(&i), Err(LayoutError::BadVgaWorkspace));
    }

    #[test]
    fn layout_errors() {
        let mut i = input(Chipset::TU102, 0x1b3_4ea0, 0x1000);
        i.fb_size = 64 * MIB;
        assert_eq!(FbLayout::compute(&i), Err(LayoutError::FbTooSmall));
        i.fb_size = 0;
        assert_eq!(FbLayout::compute(&i), Err(LayoutError::FbTooSmall));
        i.fb_size = GIB24;
        i.fwimage_len = 0;
        assert_eq!(FbLayout::compute(&i), Err(LayoutError::EmptyFirmware));
        let mut h = input(Chipset::GH100, 0x100, 0x100);
        assert_eq!(FbLayout::compute(&h), Err(LayoutError::UnsupportedChip));
        h.chip = Chipset::AD102;
        h.fwimage_len = u64::MAX;
        assert_eq!(FbLayout::compute(&h), Err(LayoutError::FbTooSmall));
    }

    fn sysmem() -> WprSysmem {
        WprSysmem {
            radix3: Radix3 {
                level0: 0x1_2345_6000,
                image_len: 0x1b3_4ea0,
            },
            bootloader_addr: 0x2000_0000,
            bootloader_len: 0x1000,
            bootloader_code_offset: 0x1800,
            bootloader_data_offset: 0x800,
            bootloader_manifest_offset: 0,
            signature_addr: 0x3000_0000,
            signature_len: 0x1000,
        }
    }

    #[test]
    fn wpr_meta_fields_land_at_their_offsets() {
        let m = ad102_16g().wpr_meta(&sysmem());
        let b = m.as_bytes();
        let at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        assert_eq!(at(0), 0xdc3a_ae21_371a_60b3);
        assert_eq!(at(8), 1);
        assert_eq!(at(16), 0x1_2345_6000);
        assert_eq!(at(24), 0x1b3_4ea0);
        assert_eq!(at(32), 0x2000_0000);
        assert_eq!(at(40), 0x1000);
        assert_eq!(at(48), 0x1800);
        assert_eq!(at(56), 0x800);
        assert_eq!(at(64), 0);
        assert_eq!(at(72), 0x3000_0000);
        assert_eq!(at(80), 0x1000);
        assert_eq!(at(88), 0x3_f7b0_0000);
        assert_eq!(at(96), 0x3_f7b0_0000);
        assert_eq!(at(104), MIB);
        assert_eq!(at(112), 0x3_f7c0_0000);
        assert_eq!(at(120), 0x3_f7d0_0000);
        assert_eq!(at(128), 128 * MIB);
        assert_eq!(at(136), 0x3_ffdd_0000);
        assert_eq!(at(144), 0x3_ffdf_d000);
        assert_eq!(at(152), 0x3_ffe0_0000);
        assert_eq!(at(160), MIB);
        assert_eq!(at(168), 0x3_fff0_0000);
        assert_eq!(at(176), 16 * GIB);
        assert_eq!(at(184), 0x3_fff0_0000);
        assert_eq!(at(192), MIB);
        assert!(b[200..].iter().all(|x| *x == 0));
    }

    #[test]
    fn fb_size_and_vga_from_registers() {
        let mut io = MapMmio::default();
        io.regs.insert(0x100ce0, 3 << 4 | 13);
        io.regs.insert(0x1183a4, 8192);
        assert_eq!(read_fb_size(&mut io, Chipset::TU104), Ok(GIB24));
        assert_eq!(read_fb_size(&mut io, Chipset::GA100), Ok(GIB24));
        assert_eq!(read_fb_size(&mut io, Chipset::GA104), Ok(8 * GIB));
        io.regs.insert(0x625f04, 0x05ff_f808);
        assert_eq!(
            read_vga_workspace(&mut io, Chipset::GA102),
            Ok(Some(0x5_fff8_0000))
        );
        io.regs.insert(0x820c04, 1);
        assert_eq!(read_vga_workspace(&mut io, Chipset::GA102), Ok(None));
        assert_eq!(
            read_vga_workspace(&mut io, Chipset::TU102),
            Ok(Some(0x5_fff8_0000))
        );
        io.fail = true;
        assert_eq!(
            read_fb_size(&mut io, Chipset::TU102),
            Err(MmioError::Unavailable)
        );
    }
}
