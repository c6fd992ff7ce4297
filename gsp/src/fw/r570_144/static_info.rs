//! GspStaticConfigInfo (570.144): the GET_GSP_STATIC_INFO payload, sent zero-filled and returned
//! filled in by GSP-RM.
//!
//! Sources: OpenRM 570.144 `src/nvidia/inc/kernel/gpu/gsp/gsp_static_config.h` (pinned by
//! `gsp_abi_check.c`: sizeof >= 1656 and the offsets of reference section 7), its excerpt in
//! nouveau `nvkm/subdev/gsp/rm/r570/nvrm/gsp.h`, and nova-core `gsp/fw/r570_144/bindings.rs`
//! (`GspStaticConfigInfo_t`, `NVGPU_ENGINE_CAPS_MASK_ARRAY_MAX` = 3). sizeof = 1656.
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `NV2080_CTRL_GPU_GET_GID_INFO_PARAMS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV2080_CTRL_GPU_GET_GID_INFO_PARAMS {
    /// GPU index.
    pub index: u32,
    /// Format flags.
    pub flags: u32,
    /// Bytes used in `data`.
    pub length: u32,
    /// The GID.
    pub data: [u8; 256],
}
const _: () = assert!(size_of::<NV2080_CTRL_GPU_GET_GID_INFO_PARAMS>() == 268);

/// `NV2080_CTRL_BIOS_GET_SKU_INFO_PARAMS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV2080_CTRL_BIOS_GET_SKU_INFO_PARAMS {
    /// Board id.
    pub BoardID: u32,
    /// Chip SKU string.
    pub chipSKU: [u8; 9],
    /// Chip SKU modifier.
    pub chipSKUMod: [u8; 5],
    /// Explicit padding.
    pub _pad0: [u8; 2],
    /// SKU config version.
    pub skuConfigVersion: u32,
    /// Project string.
    pub project: [u8; 5],
    /// Project SKU string.
    pub projectSKU: [u8; 5],
    /// CDP string.
    pub CDP: [u8; 6],
    /// Project SKU modifier.
    pub projectSKUMod: [u8; 2],
    /// Explicit padding.
    pub _pad1: [u8; 2],
    /// Business cycle.
    pub businessCycle: u32,
}
const _: () = assert!(size_of::<NV2080_CTRL_BIOS_GET_SKU_INFO_PARAMS>() == 48);
const _: () = assert!(offset_of!(NV2080_CTRL_BIOS_GET_SKU_INFO_PARAMS, skuConfigVersion) == 20);
const _: () = assert!(offset_of!(NV2080_CTRL_BIOS_GET_SKU_INFO_PARAMS, businessCycle) == 44);

/// `NV2080_CTRL_CMD_FB_GET_FB_REGION_FB_REGION_INFO`: one framebuffer region.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV2080_CTRL_CMD_FB_GET_FB_REGION_FB_REGION_INFO {
    /// First byte.
    pub base: u64,
    /// Last byte (inclusive).
    pub limit: u64,
    /// Reserved bytes.
    pub reserved: u64,
    /// Relative performance.
    pub performance: u32,
    /// Supports compression.
    pub supportCompressed: u8,
    /// Supports ISO.
    pub supportISO: u8,
    /// Protected.
    pub bProtected: u8,
    /// Surface types not allowed here.
    pub blackList: [u8; 17],
}
const _: () = assert!(size_of::<NV2080_CTRL_CMD_FB_GET_FB_REGION_FB_REGION_INFO>() == 48);
const _: () = assert!(offset_of!(NV2080_CTRL_CMD_FB_GET_FB_REGION_FB_REGION_INFO, blackList) == 31);

/// `NV2080_CTRL_CMD_FB_GET_FB_REGION_INFO_PARAMS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV2080_CTRL_CMD_FB_GET_FB_REGION_INFO_PARAMS {
    /// Used entries of `fbRegion`.
    pub numFBRegions: u32,
    /// Explicit padding.
    pub _pad: [u8; 4],
    /// The regions.
    pub fbRegion: [NV2080_CTRL_CMD_FB_GET_FB_REGION_FB_REGION_INFO; 16],
}
const _: () = assert!(size_of::<NV2080_CTRL_CMD_FB_GET_FB_REGION_INFO_PARAMS>() == 776);

/// `NV0080_CTRL_GPU_GET_SRIOV_CAPS_PARAMS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV0080_CTRL_GPU_GET_SRIOV_CAPS_PARAMS {
    /// Virtual functions.
    pub totalVFs: u32,
    /// First VF routing offset.
    pub firstVfOffset: u32,
    /// VF feature mask.
    pub vfFeatureMask: u32,
    /// Explicit padding.
    pub _pad0: [u8; 4],
    /// VF BAR0.
    pub FirstVFBar0Address: u64,
    /// VF BAR1.
    pub FirstVFBar1Address: u64,
    /// VF BAR2.
    pub FirstVFBar2Address: u64,
    /// BAR0 size.
    pub bar0Size: u64,
    /// BAR1 size.
    pub bar1Size: u64,
    /// BAR2 size.
    pub bar2Size: u64,
    /// b64bitBar0, b64bitBar1, b64bitBar2, bSriovEnabled, bSriovHeavyEnabled,
    /// bEmulateVFBar0TlbInvalidationRegister, bClientRmAllocatedCtxBuffer,
    /// bNonPowerOf2ChannelCountSupported, bVfResizableBAR1Supported.
    pub flags: [u8; 9],
    /// Explicit padding.
    pub _pad1: [u8; 7],
}
const _: () = assert!(size_of::<NV0080_CTRL_GPU_GET_SRIOV_CAPS_PARAMS>() == 80);
const _: () = assert!(offset_of!(NV0080_CTRL_GPU_GET_SRIOV_CAPS_PARAMS, FirstVFBar0Address) == 16);

/// `EcidManufacturingInfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct EcidManufacturingInfo {
    /// Low word.
    pub ecidLow: u32,
    /// High word.
    pub ecidHigh: u32,
    /// Extended word.
    pub ecidExtended: u32,
}
const _: () = assert!(size_of::<EcidManufacturingInfo>() == 12);

/// `GspStaticConfigInfo` (570.144).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GspStaticConfigInfo {
    /// GR capability bits.
    pub grCapsBits: [u8; 23],
    /// Explicit padding.
    pub _pad0: u8,
    /// GPU id.
    pub gidInfo: NV2080_CTRL_GPU_GET_GID_INFO_PARAMS,
    /// SKU information.
    pub SKUInfo: NV2080_CTRL_BIOS_GET_SKU_INFO_PARAMS,
    /// Explicit padding.
    pub _pad1: [u8; 4],
    /// Framebuffer regions.
    pub fbRegionInfoParams: NV2080_CTRL_CMD_FB_GET_FB_REGION_INFO_PARAMS,
    /// SR-IOV capabilities.
    pub sriovCaps: NV0080_CTRL_GPU_GET_SRIOV_CAPS_PARAMS,
    /// Highest GFID.
    pub sriovMaxGfid: u32,
    /// Engine capability mask.
    pub engineCaps: [u32; 3],
    /// Poison fuse.
    pub poisonFuseEnabled: u8,
    /// Explicit padding.
    pub _pad2: [u8; 7],
    /// Framebuffer size in bytes.
    pub fb_length: u64,
    /// FBIO mask.
    pub fbio_mask: u64,
    /// FB bus width.
    pub fb_bus_width: u32,
    /// FB RAM type.
    pub fb_ram_type: u32,
    /// FBP mask.
    pub fbp_mask: u64,
    /// L2 size.
    pub l2_cache_size: u32,
    /// Marketing name, NUL-terminated.
    pub gpuNameString: [u8; 64],
    /// Short name.
    pub gpuShortNameString: [u8; 64],
    /// Name in UTF-16.
    pub gpuNameString_Unicode: [u16; 64],
    /// bGpuInternalSku, bIsQuadroGeneric, bIsQuadroAd, bIsNvidiaNvs, bIsVgx, bGeforceSmb,
    /// bIsTitan, bIsTesla, bIsMobile, bIsGc6Rtd3Allowed, bIsGc8Rtd3Allowed,
    /// bIsGcOffRtd3Allowed, bIsGcoffLegacyAllowed, bIsMigSupported.
    pub skuFlags: [u8; 14],
    /// GC6 board power.
    pub RTD3GC6TotalBoardPower: u16,
    /// PERST# delay.
    pub RTD3GC6PerstDelay: u16,
    /// Explicit padding.
    pub _pad3: [u8; 2],
    /// BAR1 page directory base.
    pub bar1PdeBase: u64,
    /// BAR2 page directory base.
    pub bar2PdeBase: u64,
    /// VBIOS valid.
    pub bVbiosValid: u8,
    /// Explicit padding.
    pub _pad4: [u8; 3],
    /// VBIOS subsystem vendor.
    pub vbiosSubVendor: u32,
    /// VBIOS subsystem device.
    pub vbiosSubDevice: u32,
    /// Page retirement supported.
    pub bPageRetirementSupported: u8,
    /// VA space split between server and client RM.
    pub bSplitVasBetweenServerClientRm: u8,
    /// Root port needs the no-snoop workaround.
    pub bClRootportNeedsNosnoopWAR: u8,
    /// Explicit padding.
    pub _pad5: u8,
    /// `VIRTUAL_DISPLAY_GET_NUM_HEADS_PARAMS` {numHeads, maxNumHeads}.
    pub displaylessMaxHeads: [u32; 2],
    /// `VIRTUAL_DISPLAY_GET_MAX_RESOLUTION_PARAMS` {headIndex, maxHResolution, maxVResolution}.
    pub displaylessMaxResolution: [u32; 3],
    /// Explicit padding.
    pub _pad6: [u8; 4],
    /// Max pixels without display.
    pub displaylessMaxPixels: u64,
    /// Client handle for internal RMAPI control.
    pub hInternalClient: u32,
    /// Device handle for internal RMAPI control.
    pub hInternalDevice: u32,
    /// Subdevice handle for internal RMAPI control.
    pub hInternalSubdevice: u32,
    /// Self-hosted mode.
    pub bSelfHostedMode: u8,
    /// ATS supported.
    pub bAtsSupported: u8,
    /// UEFI GPU.
    pub bIsGpuUefi: u8,
    /// EFI initialised.
    pub bIsEfiInit: u8,
    /// ECID of two groups.
    pub ecidInfo: [EcidManufacturingInfo; 2],
    /// `FW_WPR_LAYOUT_OFFSET` {nonWprHeapOffset, frtsOffset}.
    pub fwWprLayoutOffset: [u64; 2],
}

// gsp_abi_check.c pins these (reference section 7); the rest follow from nova's bindings.
const _: () = assert!(size_of::<GspStaticConfigInfo>() == 1656);
const _: () = assert!(offset_of!(GspStaticConfigInfo, gidInfo) == 24);
const _: () = assert!(offset_of!(GspStaticConfigInfo, SKUInfo) == 292);
const _: () = assert!(offset_of!(GspStaticConfigInfo, fbRegionInfoParams) == 344);
const _: () = assert!(offset_of!(GspStaticConfigInfo, sriovCaps) == 1120);
const _: () = assert!(offset_of!(GspStaticConfigInfo, fb_length) == 1224);
const _: () = assert!(offset_of!(GspStaticConfigInfo, gpuNameString) == 1260);
const _: () = assert!(offset_of!(GspStaticConfigInfo, skuFlags) == 1516);
const _: () = assert!(offset_of!(GspStaticConfigInfo, bar1PdeBase) == 1536);
const _: () = assert!(offset_of!(GspStaticConfigInfo, bar2PdeBase) == 1544);
const _: () = assert!(offset_of!(GspStaticConfigInfo, displaylessMaxPixels) == 1592);
const _: () = assert!(offset_of!(GspStaticConfigInfo, hInternalClient) == 1600);
const _: () = assert!(offset_of!(GspStaticConfigInfo, hInternalDevice) == 1604);
const _: () = assert!(offset_of!(GspStaticConfigInfo, hInternalSubdevice) == 1608);
const _: () = assert!(offset_of!(GspStaticConfigInfo, ecidInfo) == 1616);
const _: () = assert!(offset_of!(GspStaticConfigInfo, fwWprLayoutOffset) == 1640);

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    /// Golden bytes at the pinned offsets the driver reads back.
    #[test]
    fn pinned_fields_land_at_their_bytes() {
        let mut s = GspStaticConfigInfo::new_zeroed();
        s.fb_length = 0x1_0000_0000;
        s.gpuNameString[..4].copy_from_slice(b"GA10");
        s.bar1PdeBase = 0x1122_3344_5566_7788;
        s.hInternalClient = 0xc1e0_0001;
        s.hInternalSubdevice = 0x5c00_0003;
        let b = s.as_bytes();
        assert_eq!(b[1224..1232], [0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&b[1260..1264], b"GA10");
        assert_eq!(
            b[1536..1544],
            [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        );
        assert_eq!(b[1600..1604], [1, 0, 0xe0, 0xc1]);
        assert_eq!(b[1608..1612], [3, 0, 0, 0x5c]);
        assert_eq!(b.iter().filter(|&&x| x != 0).count(), 1 + 4 + 8 + 3 + 2);
    }
}
