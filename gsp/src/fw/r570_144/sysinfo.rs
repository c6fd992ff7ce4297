//! GspSystemInfo (570.144): the GSP_SET_SYSTEM_INFO payload.
//!
//! Sources: OpenRM 570.144 `src/nvidia/inc/kernel/gpu/gsp/gsp_static_config.h` (pinned by
//! `gsp_abi_check.c`: sizeof >= 920 and the offsets of reference section 7), its excerpt in nouveau
//! `nvkm/subdev/gsp/rm/r570/nvrm/gsp.h`, and nova-core `gsp/fw/r570_144/bindings.rs` (whose
//! explicit `__bindgen_padding_*` fields give the padding below). sizeof = 928.
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `BUSINFO`: PCI ids of a bridge or chipset.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BUSINFO {
    /// Device id.
    pub deviceID: u16,
    /// Vendor id.
    pub vendorID: u16,
    /// Subsystem device id.
    pub subdeviceID: u16,
    /// Subsystem vendor id.
    pub subvendorID: u16,
    /// Revision id.
    pub revisionID: u8,
    /// Explicit padding.
    pub _pad: u8,
}
const _: () = assert!(size_of::<BUSINFO>() == 10);
const _: () = assert!(offset_of!(BUSINFO, revisionID) == 8);

/// `DOD_METHOD_DATA`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DOD_METHOD_DATA {
    /// NV_STATUS of the ACPI call.
    pub status: u32,
    /// Used entries of `acpiIdList`.
    pub acpiIdListLen: u32,
    /// ACPI display ids.
    pub acpiIdList: [u32; 16],
}
const _: () = assert!(size_of::<DOD_METHOD_DATA>() == 72);

/// `JT_METHOD_DATA`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct JT_METHOD_DATA {
    /// NV_STATUS of the ACPI call.
    pub status: u32,
    /// JT capabilities.
    pub jtCaps: u32,
    /// JT revision.
    pub jtRevId: u16,
    /// SBIOS capabilities present.
    pub bSBIOSCaps: u8,
    /// Explicit padding.
    pub _pad: u8,
}
const _: () = assert!(size_of::<JT_METHOD_DATA>() == 12);

/// `MUX_METHOD_DATA_ELEMENT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MUX_METHOD_DATA_ELEMENT {
    /// ACPI id.
    pub acpiId: u32,
    /// Mux mode.
    pub mode: u32,
    /// NV_STATUS.
    pub status: u32,
}
const _: () = assert!(size_of::<MUX_METHOD_DATA_ELEMENT>() == 12);

/// `MUX_METHOD_DATA`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MUX_METHOD_DATA {
    /// Used entries.
    pub tableLen: u32,
    /// Mode table.
    pub acpiIdMuxModeTable: [MUX_METHOD_DATA_ELEMENT; 16],
    /// Part table.
    pub acpiIdMuxPartTable: [MUX_METHOD_DATA_ELEMENT; 16],
    /// State table.
    pub acpiIdMuxStateTable: [MUX_METHOD_DATA_ELEMENT; 16],
}
const _: () = assert!(size_of::<MUX_METHOD_DATA>() == 580);

/// `CAPS_METHOD_DATA`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct CAPS_METHOD_DATA {
    /// NV_STATUS.
    pub status: u32,
    /// Optimus capabilities.
    pub optimusCaps: u32,
}
const _: () = assert!(size_of::<CAPS_METHOD_DATA>() == 8);

/// `ACPI_METHOD_DATA` (676 bytes; all zero when there is no ACPI, as here).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ACPI_METHOD_DATA {
    /// Whether the data below is valid.
    pub bValid: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
    /// _DOD results.
    pub dodMethodData: DOD_METHOD_DATA,
    /// JT results.
    pub jtMethodData: JT_METHOD_DATA,
    /// MUX results.
    pub muxMethodData: MUX_METHOD_DATA,
    /// CAPS results.
    pub capsMethodData: CAPS_METHOD_DATA,
}
const _: () = assert!(size_of::<ACPI_METHOD_DATA>() == 676);
const _: () = assert!(offset_of!(ACPI_METHOD_DATA, dodMethodData) == 4);
const _: () = assert!(offset_of!(ACPI_METHOD_DATA, jtMethodData) == 76);
const _: () = assert!(offset_of!(ACPI_METHOD_DATA, muxMethodData) == 88);
const _: () = assert!(offset_of!(ACPI_METHOD_DATA, capsMethodData) == 668);

/// `GSP_VF_INFO`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GSP_VF_INFO {
    /// SR-IOV virtual functions.
    pub totalVFs: u32,
    /// Routing offset of VF 1.
    pub firstVFOffset: u32,
    /// BAR0 of VF 1.
    pub FirstVFBar0Address: u64,
    /// BAR1 of VF 1.
    pub FirstVFBar1Address: u64,
    /// BAR2 of VF 1.
    pub FirstVFBar2Address: u64,
    /// BAR0 is 64-bit.
    pub b64bitBar0: u8,
    /// BAR1 is 64-bit.
    pub b64bitBar1: u8,
    /// BAR2 is 64-bit.
    pub b64bitBar2: u8,
    /// Explicit padding.
    pub _pad: [u8; 5],
}
const _: () = assert!(size_of::<GSP_VF_INFO>() == 40);
const _: () = assert!(offset_of!(GSP_VF_INFO, FirstVFBar0Address) == 8);
const _: () = assert!(offset_of!(GSP_VF_INFO, b64bitBar0) == 32);

/// `GspSystemInfo` (570.144).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GspSystemInfo {
    /// BAR0 physical address.
    pub gpuPhysAddr: u64,
    /// BAR1 physical address.
    pub gpuPhysFbAddr: u64,
    /// BAR3 (instance memory) physical address.
    pub gpuPhysInstAddr: u64,
    /// I/O BAR physical address.
    pub gpuPhysIoAddr: u64,
    /// PCI bus/devfn (both drivers: `pci_dev_id`, no domain).
    pub nvDomainBusDeviceFunc: u64,
    /// Simulation access buffer (0).
    pub simAccessBufPhysAddr: u64,
    /// Notify-op shared surface (0).
    pub notifyOpSharedSurfacePhysAddr: u64,
    /// PCIe atomics supported by the path to the GPU.
    pub pcieAtomicsOpMask: u64,
    /// Console memory size.
    pub consoleMemSize: u64,
    /// Highest user VA (nova: (1 << 47) - 4096).
    pub maxUserVa: u64,
    /// Offset of the PCI config mirror in BAR0 (0x88000).
    pub pciConfigMirrorBase: u32,
    /// Size of the PCI config mirror (0x1000).
    pub pciConfigMirrorSize: u32,
    /// device << 16 | vendor.
    pub PCIDeviceID: u32,
    /// subsystem device << 16 | subsystem vendor.
    pub PCISubDeviceID: u32,
    /// Revision id.
    pub PCIRevisionID: u32,
    /// PCIe atomics completer capabilities.
    pub pcieAtomicsCplDeviceCapMask: u32,
    /// Out-of-range architecture.
    pub oorArch: u8,
    /// Explicit padding.
    pub _pad0: [u8; 7],
    /// Chipset PDB properties.
    pub clPdbProperties: u64,
    /// Chipset id.
    pub Chipset: u32,
    /// GPU is behind a bridge.
    pub bGpuBehindBridge: u8,
    /// FLR supported.
    pub bFlrSupported: u8,
    /// 64-bit BAR0 supported.
    pub b64bBar0Supported: u8,
    /// MNOC available.
    pub bMnocAvailable: u8,
    /// Chipset L1 substates enable.
    pub chipsetL1ssEnable: u32,
    /// Upstream port lacks L0s.
    pub bUpstreamL0sUnsupported: u8,
    /// Upstream port lacks L1.
    pub bUpstreamL1Unsupported: u8,
    /// Upstream port supports L1 POR.
    pub bUpstreamL1PorSupported: u8,
    /// L1 POR only on mobile.
    pub bUpstreamL1PorMobileOnly: u8,
    /// System has a display mux.
    pub bSystemHasMux: u8,
    /// Upstream address valid.
    pub upstreamAddressValid: u8,
    /// First host bridge ids.
    pub FHBBusInfo: BUSINFO,
    /// Chipset ids.
    pub chipsetIDInfo: BUSINFO,
    /// Explicit padding.
    pub _pad1: [u8; 2],
    /// ACPI method results.
    pub acpiMethodData: ACPI_METHOD_DATA,
    /// Hypervisor type.
    pub hypervisorType: u32,
    /// Passthrough (vGPU).
    pub bIsPassthru: u8,
    /// Explicit padding.
    pub _pad2: [u8; 7],
    /// System timer offset.
    pub sysTimerOffsetNs: u64,
    /// SR-IOV information.
    pub gspVFInfo: GSP_VF_INFO,
    /// Primary GPU.
    pub bIsPrimary: u8,
    /// GRID build.
    pub isGridBuild: u8,
    /// Explicit padding.
    pub _pad3: [u8; 2],
    /// `GSP_PCIE_CONFIG_REG.linkCap`.
    pub pcieConfigRegLinkCap: u32,
    /// GRID build CSP.
    pub gridBuildCsp: u32,
    /// Preserve video memory allocations over suspend.
    pub bPreserveVideoMemoryAllocations: u8,
    /// TDR event supported.
    pub bTdrEventSupported: u8,
    /// Stretch-vblank capable.
    pub bFeatureStretchVblankCapable: u8,
    /// Dynamic-granularity page arrays.
    pub bEnableDynamicGranularityPageArrays: u8,
    /// Clock boost supported.
    pub bClockBoostSupported: u8,
    /// Route display interrupts to the CPU.
    pub bRouteDispIntrsToCPU: u8,
    /// Explicit padding.
    pub _pad4: [u8; 6],
    /// CPU page size.
    pub hostPageSize: u64,
}

// gsp_abi_check.c pins these (reference section 7); the rest follow from nova's bindings.
const _: () = assert!(size_of::<GspSystemInfo>() == 928);
const _: () = assert!(offset_of!(GspSystemInfo, gpuPhysAddr) == 0);
const _: () = assert!(offset_of!(GspSystemInfo, gpuPhysFbAddr) == 8);
const _: () = assert!(offset_of!(GspSystemInfo, gpuPhysInstAddr) == 16);
const _: () = assert!(offset_of!(GspSystemInfo, gpuPhysIoAddr) == 24);
const _: () = assert!(offset_of!(GspSystemInfo, nvDomainBusDeviceFunc) == 32);
const _: () = assert!(offset_of!(GspSystemInfo, maxUserVa) == 72);
const _: () = assert!(offset_of!(GspSystemInfo, pciConfigMirrorBase) == 80);
const _: () = assert!(offset_of!(GspSystemInfo, pciConfigMirrorSize) == 84);
const _: () = assert!(offset_of!(GspSystemInfo, PCIDeviceID) == 88);
const _: () = assert!(offset_of!(GspSystemInfo, PCISubDeviceID) == 92);
const _: () = assert!(offset_of!(GspSystemInfo, PCIRevisionID) == 96);
const _: () = assert!(offset_of!(GspSystemInfo, clPdbProperties) == 112);
const _: () = assert!(offset_of!(GspSystemInfo, Chipset) == 120);
const _: () = assert!(offset_of!(GspSystemInfo, chipsetL1ssEnable) == 128);
const _: () = assert!(offset_of!(GspSystemInfo, FHBBusInfo) == 138);
const _: () = assert!(offset_of!(GspSystemInfo, chipsetIDInfo) == 148);
const _: () = assert!(offset_of!(GspSystemInfo, acpiMethodData) == 160);
const _: () = assert!(offset_of!(GspSystemInfo, hypervisorType) == 836);
const _: () = assert!(offset_of!(GspSystemInfo, sysTimerOffsetNs) == 848);
const _: () = assert!(offset_of!(GspSystemInfo, gspVFInfo) == 856);
const _: () = assert!(offset_of!(GspSystemInfo, bIsPrimary) == 896);
const _: () = assert!(offset_of!(GspSystemInfo, pcieConfigRegLinkCap) == 900);
const _: () = assert!(offset_of!(GspSystemInfo, bPreserveVideoMemoryAllocations) == 908);
const _: () = assert!(offset_of!(GspSystemInfo, hostPageSize) == 920);

/// `pciConfigMirrorBase` both drivers send (reference section 7).
pub const NV_PCI_CONFIG_MIRROR_BASE: u32 = 0x88000;
/// `pciConfigMirrorSize` both drivers send.
pub const NV_PCI_CONFIG_MIRROR_SIZE: u32 = 0x1000;
