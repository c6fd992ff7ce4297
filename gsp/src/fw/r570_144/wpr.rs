//! `GspFwWprMeta` and the WPR2 heap parameters (570.144).
//!
//! Sources: OpenRM 570.144 `src/nvidia/arch/nvalloc/common/inc/gsp/gsp_fw_wpr_meta.h` (struct),
//! `src/nvidia/inc/kernel/gpu/gsp/gsp_fw_heap.h` (heap constants), sizes and offsets pinned by
//! OpenRM's `src/nvidia/interface/gsp_abi_check.c`; reference sections 1.7 and 3.
//!
//! The struct has two unions; each is flattened to the variant the CPU writes at cold boot
//! (`sysmemAddrOfSignature`/`sizeOfSignature` at 72, and the partition-RPC variant at 208, which
//! stays zero), with the same bytes as the C layout.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `GSP_FW_WPR_META_MAGIC`.
pub const GSP_FW_WPR_META_MAGIC: u64 = 0xdc3a_ae21_371a_60b3;
/// `GSP_FW_WPR_META_REVISION`.
pub const GSP_FW_WPR_META_REVISION: u64 = 1;
/// `GSP_FW_WPR_META_VERIFIED`: booter writes this into `verified` once it checked the image.
pub const GSP_FW_WPR_META_VERIFIED: u64 = 0xa0a0_a0a0_a0a0_a0a0;

/// `GSP_FW_HEAP_PARAM_OS_SIZE_LIBOS2`: LibOS 2 carve-out of the WPR2 heap.
pub const GSP_FW_HEAP_PARAM_OS_SIZE_LIBOS2: u64 = 0;
/// `GSP_FW_HEAP_PARAM_OS_SIZE_LIBOS3_BAREMETAL`: 22 MiB in 570.144 (20 MiB in 535.113.01).
pub const GSP_FW_HEAP_PARAM_OS_SIZE_LIBOS3_BAREMETAL: u64 = 22 << 20;
/// `GSP_FW_HEAP_PARAM_BASE_RM_SIZE_TU10X`: GSP-RM boot working memory, Turing through Ada.
pub const GSP_FW_HEAP_PARAM_BASE_RM_SIZE_TU10X: u64 = 8 << 20;
/// `GSP_FW_HEAP_PARAM_SIZE_PER_GB_FB`: management overhead per GiB of framebuffer.
pub const GSP_FW_HEAP_PARAM_SIZE_PER_GB_FB: u64 = 96 << 10;
/// `GSP_FW_HEAP_PARAM_CLIENT_ALLOC_SIZE`: 48 KiB × 2048 channels.
pub const GSP_FW_HEAP_PARAM_CLIENT_ALLOC_SIZE: u64 = (48 << 10) * 2048;
/// `GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS2_MIN_MB`.
pub const GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS2_MIN_MB: u64 = 64;
/// `GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS2_MAX_MB`.
pub const GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS2_MAX_MB: u64 = 256;
/// `GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS3_BAREMETAL_MIN_MB` (84 in 535.113.01).
pub const GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS3_BAREMETAL_MIN_MB: u64 = 88;
/// `GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS3_BAREMETAL_MAX_MB` (276 in 535.113.01).
pub const GSP_FW_HEAP_SIZE_OVERRIDE_LIBOS3_BAREMETAL_MAX_MB: u64 = 280;

/// What the CPU tells the GSP bootloader and booter about the boot: where the image, bootloader
/// and signatures are in system memory, and the framebuffer layout (reference section 3).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GspFwWprMeta {
    /// [`GSP_FW_WPR_META_MAGIC`].
    pub magic: u64,
    /// [`GSP_FW_WPR_META_REVISION`].
    pub revision: u64,
    /// DMA address of the radix3 level-0 page.
    pub sysmemAddrOfRadix3Elf: u64,
    /// `.fwimage` length.
    pub sizeOfRadix3Elf: u64,
    /// DMA address of the bootloader payload.
    pub sysmemAddrOfBootloader: u64,
    /// Bootloader payload length.
    pub sizeOfBootloader: u64,
    /// `RM_RISCV_UCODE_DESC.monitorCodeOffset`.
    pub bootloaderCodeOffset: u64,
    /// `RM_RISCV_UCODE_DESC.monitorDataOffset`.
    pub bootloaderDataOffset: u64,
    /// `RM_RISCV_UCODE_DESC.manifestOffset`.
    pub bootloaderManifestOffset: u64,
    /// DMA address of the chip's `.fwsignature_*` bytes (first union, cold-boot variant).
    pub sysmemAddrOfSignature: u64,
    /// Length of the signature bytes.
    pub sizeOfSignature: u64,
    /// Start of the FB reserved for GSP-RM (= `nonWprHeapOffset`).
    pub gspFwRsvdStart: u64,
    /// Start of the non-WPR heap.
    pub nonWprHeapOffset: u64,
    /// Size of the non-WPR heap (1 MiB).
    pub nonWprHeapSize: u64,
    /// Start of WPR2.
    pub gspFwWprStart: u64,
    /// Start of the WPR2 heap.
    pub gspFwHeapOffset: u64,
    /// Size of the WPR2 heap.
    pub gspFwHeapSize: u64,
    /// FB offset the ELF image is copied to.
    pub gspFwOffset: u64,
    /// FB offset the bootloader is copied to.
    pub bootBinOffset: u64,
    /// Start of the FRTS region.
    pub frtsOffset: u64,
    /// Size of the FRTS region (1 MiB).
    pub frtsSize: u64,
    /// End of WPR2 (the VGA workspace start aligned down to 128 KiB).
    pub gspFwWprEnd: u64,
    /// Framebuffer size.
    pub fbSize: u64,
    /// Start of the VGA workspace.
    pub vgaWorkspaceOffset: u64,
    /// Size of the VGA workspace.
    pub vgaWorkspaceSize: u64,
    /// Boot count (0 at cold boot).
    pub bootCount: u64,
    /// Second union, partition-RPC variant: `partitionRpcAddr`.
    pub partitionRpcAddr: u64,
    /// `partitionRpcRequestOffset`.
    pub partitionRpcRequestOffset: u16,
    /// `partitionRpcReplyOffset`.
    pub partitionRpcReplyOffset: u16,
    /// `elfCodeOffset`.
    pub elfCodeOffset: u32,
    /// `elfDataOffset`.
    pub elfDataOffset: u32,
    /// `elfCodeSize`.
    pub elfCodeSize: u32,
    /// `elfDataSize`.
    pub elfDataSize: u32,
    /// `lsUcodeVersion`.
    pub lsUcodeVersion: u32,
    /// Number of VF partitions of the heap (0 bare metal).
    pub gspFwHeapVfPartitionCount: u8,
    /// Flags (570.144; padding in 535.113.01).
    pub flags: u8,
    /// Padding.
    pub padding: [u8; 2],
    /// FB reserved for the PMU (570.144; 0 for Turing through Ada, nova-core `fb/hal`).
    pub pmuReservedSize: u32,
    /// Written by booter: [`GSP_FW_WPR_META_VERIFIED`].
    pub verified: u64,
}

// Layout: gsp_abi_check.c (570.144) pins sizeof(GspFwWprMeta) == 256 and these offsets.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<GspFwWprMeta>() == 256);
    assert!(offset_of!(GspFwWprMeta, magic) == 0);
    assert!(offset_of!(GspFwWprMeta, revision) == 8);
    assert!(offset_of!(GspFwWprMeta, sysmemAddrOfRadix3Elf) == 16);
    assert!(offset_of!(GspFwWprMeta, sizeOfRadix3Elf) == 24);
    assert!(offset_of!(GspFwWprMeta, sysmemAddrOfBootloader) == 32);
    assert!(offset_of!(GspFwWprMeta, sizeOfBootloader) == 40);
    assert!(offset_of!(GspFwWprMeta, bootloaderCodeOffset) == 48);
    assert!(offset_of!(GspFwWprMeta, bootloaderDataOffset) == 56);
    assert!(offset_of!(GspFwWprMeta, bootloaderManifestOffset) == 64);
    assert!(offset_of!(GspFwWprMeta, sysmemAddrOfSignature) == 72);
    assert!(offset_of!(GspFwWprMeta, sizeOfSignature) == 80);
    assert!(offset_of!(GspFwWprMeta, gspFwRsvdStart) == 88);
    assert!(offset_of!(GspFwWprMeta, nonWprHeapOffset) == 96);
    assert!(offset_of!(GspFwWprMeta, nonWprHeapSize) == 104);
    assert!(offset_of!(GspFwWprMeta, gspFwWprStart) == 112);
    assert!(offset_of!(GspFwWprMeta, gspFwHeapOffset) == 120);
    assert!(offset_of!(GspFwWprMeta, gspFwHeapSize) == 128);
    assert!(offset_of!(GspFwWprMeta, gspFwOffset) == 136);
    assert!(offset_of!(GspFwWprMeta, bootBinOffset) == 144);
    assert!(offset_of!(GspFwWprMeta, frtsOffset) == 152);
    assert!(offset_of!(GspFwWprMeta, frtsSize) == 160);
    assert!(offset_of!(GspFwWprMeta, gspFwWprEnd) == 168);
    assert!(offset_of!(GspFwWprMeta, fbSize) == 176);
    assert!(offset_of!(GspFwWprMeta, vgaWorkspaceOffset) == 184);
    assert!(offset_of!(GspFwWprMeta, vgaWorkspaceSize) == 192);
    assert!(offset_of!(GspFwWprMeta, bootCount) == 200);
    assert!(offset_of!(GspFwWprMeta, partitionRpcAddr) == 208);
    assert!(offset_of!(GspFwWprMeta, partitionRpcRequestOffset) == 216);
    assert!(offset_of!(GspFwWprMeta, partitionRpcReplyOffset) == 218);
    assert!(offset_of!(GspFwWprMeta, elfCodeOffset) == 220);
    assert!(offset_of!(GspFwWprMeta, lsUcodeVersion) == 236);
    assert!(offset_of!(GspFwWprMeta, gspFwHeapVfPartitionCount) == 240);
    assert!(offset_of!(GspFwWprMeta, flags) == 241);
    assert!(offset_of!(GspFwWprMeta, padding) == 242);
    assert!(offset_of!(GspFwWprMeta, pmuReservedSize) == 244);
    assert!(offset_of!(GspFwWprMeta, verified) == 248);
};

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn golden_bytes() {
        let mut m = GspFwWprMeta::new_zeroed();
        m.magic = GSP_FW_WPR_META_MAGIC;
        m.revision = GSP_FW_WPR_META_REVISION;
        m.sizeOfSignature = 0x1000;
        m.gspFwHeapVfPartitionCount = 0x7e;
        m.pmuReservedSize = 0x1122_3344;
        m.verified = GSP_FW_WPR_META_VERIFIED;
        let b = m.as_bytes();
        assert_eq!(b[..8], [0xb3, 0x60, 0x1a, 0x37, 0x21, 0xae, 0x3a, 0xdc]);
        assert_eq!(b[8], 1);
        assert_eq!(b[80..88], [0, 0x10, 0, 0, 0, 0, 0, 0]);
        assert_eq!(b[240], 0x7e);
        assert_eq!(b[244..248], [0x44, 0x33, 0x22, 0x11]);
        assert!(b[248..].iter().all(|x| *x == 0xa0));
        assert_eq!(GspFwWprMeta::read_from_bytes(b), Ok(m));
    }
}
