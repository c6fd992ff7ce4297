//! RM object classes a channel needs, their allocation parameters, the RM controls gpu-server
//! uses, NV_STATUS codes, and the method formats of the classes the GPU executes (host GPFIFO,
//! copy engine, usermode doorbell) — 570.144 layouts.
//!
//! Sources (names kept so they grep against NVIDIA's):
//! - nouveau's excerpts of the 570.144 headers, `nvkm/subdev/gsp/rm/r570/nvrm/{client,fifo}.h`
//!   (`NV0000_ALLOC_PARAMETERS`, `NV_CHANNEL_ALLOC_PARAMS` with `tpcConfigID`), and the 535
//!   excerpts its r570 path uses unchanged, `rm/r535/nvrm/{device,vmm,fifo,ce}.h`
//!   (`NV0080/NV2080_ALLOC_PARAMETERS`, `NV_VASPACE_ALLOCATION_PARAMETERS`,
//!   `NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS`, `NVA06F_CTRL_*`, `NVC0B5_ALLOCATION_PARAMETERS`);
//!   nouveau `rm/r535/fifo.c` (how a channel is allocated: device parent, instance/USERD/RAMFC
//!   in FB, method buffer in sysmem, BIND then GPFIFO_SCHEDULE).
//! - OpenRM `src/common/sdk/nvidia/inc/nvstatuscodes.h` (NV_STATUS values),
//!   `class/clc36f.h` (GPFIFO entry, method header, USERD `GPGet`/`GPPut`, host semaphores),
//!   `class/clc361.h` (usermode region at BAR0 0x810000, `NOTIFY_CHANNEL_PENDING` at +0x90),
//!   `nverror.h` (ROBUST_CHANNEL_* numbers); open-gpu-doc `classes/dma-copy/clc5b5.h` and OpenRM
//!   `kernel-open/nvidia-uvm/clc7b5.h` (copy-engine methods: same offsets in c5b5/c6b5/c7b5).
//!
//! Layout rule: C natural alignment (LP64), trailing padding made explicit.
use crate::chip::Chipset;
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// An RM class this stack allocates. Anything else is refused by [`RmClass::try_from`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RmClass {
    /// `NV01_ROOT`: a client, as nouveau allocates it (params [`NV0000_ALLOC_PARAMETERS`]).
    Nv01Root = 0x0000,
    /// `NV01_ROOT_CLIENT`: a client, the root of an object tree (`hParent` = its own handle).
    Nv01RootClient = 0x0041,
    /// `NV01_DEVICE_0` (params [`NV0080_ALLOC_PARAMETERS`]).
    Nv01Device0 = 0x0080,
    /// `NV20_SUBDEVICE_0` (params [`NV2080_ALLOC_PARAMETERS`]).
    Nv20Subdevice0 = 0x2080,
    /// `FERMI_VASPACE_A` (params [`NV_VASPACE_ALLOCATION_PARAMETERS`]).
    FermiVaspaceA = 0x90f1,
    /// `TURING_CHANNEL_GPFIFO_A` (params [`NV_CHANNEL_ALLOC_PARAMS`]).
    TuringChannelGpfifoA = 0xc46f,
    /// `AMPERE_CHANNEL_GPFIFO_A` (params [`NV_CHANNEL_ALLOC_PARAMS`]).
    AmpereChannelGpfifoA = 0xc56f,
    /// `TURING_DMA_COPY_A` (params [`NVB0B5_ALLOCATION_PARAMETERS`]).
    TuringDmaCopyA = 0xc5b5,
    /// `AMPERE_DMA_COPY_A` (GA100).
    AmpereDmaCopyA = 0xc6b5,
    /// `AMPERE_DMA_COPY_B` (GA102 and later, Ada too).
    AmpereDmaCopyB = 0xc7b5,
    /// `TURING_USERMODE_A` (no params): the doorbell region.
    TuringUsermodeA = 0xc461,
    /// `AMPERE_USERMODE_A` (no params).
    AmpereUsermodeA = 0xc561,
}

/// A class number this stack does not allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownClass(pub u32);

impl TryFrom<u32> for RmClass {
    type Error = UnknownClass;

    fn try_from(v: u32) -> Result<Self, UnknownClass> {
        use RmClass::*;
        Ok(match v {
            0x0000 => Nv01Root,
            0x0041 => Nv01RootClient,
            0x0080 => Nv01Device0,
            0x2080 => Nv20Subdevice0,
            0x90f1 => FermiVaspaceA,
            0xc46f => TuringChannelGpfifoA,
            0xc56f => AmpereChannelGpfifoA,
            0xc5b5 => TuringDmaCopyA,
            0xc6b5 => AmpereDmaCopyA,
            0xc7b5 => AmpereDmaCopyB,
            0xc461 => TuringUsermodeA,
            0xc561 => AmpereUsermodeA,
            other => return Err(UnknownClass(other)),
        })
    }
}

impl From<RmClass> for u32 {
    fn from(c: RmClass) -> u32 {
        // CAST: RmClass is repr(u32); the discriminant is the class number.
        c as u32
    }
}

/// The classes a chip's channel uses (nouveau `tu102_fifo`/`ga102_fifo`, `tu102_ce`/`ga100_ce`/
/// `ga102_ce` class lists; Ada reuses GA102's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelClasses {
    /// The GPFIFO channel class.
    pub channel: RmClass,
    /// The copy-engine class.
    pub copy: RmClass,
    /// The usermode (doorbell) class.
    pub usermode: RmClass,
}

impl ChannelClasses {
    /// The classes for `chip`, or `None` for a chip whose classes this stack does not model
    /// (Hopper).
    pub const fn for_chip(chip: Chipset) -> Option<Self> {
        use Chipset::*;
        let (channel, copy, usermode) = match chip {
            TU102 | TU104 | TU106 | TU116 | TU117 => (
                RmClass::TuringChannelGpfifoA,
                RmClass::TuringDmaCopyA,
                RmClass::TuringUsermodeA,
            ),
            GA100 => (
                RmClass::AmpereChannelGpfifoA,
                RmClass::AmpereDmaCopyA,
                RmClass::AmpereUsermodeA,
            ),
            GA102 | GA103 | GA104 | GA106 | GA107 | AD102 | AD103 | AD104 | AD106 | AD107 => (
                RmClass::AmpereChannelGpfifoA,
                RmClass::AmpereDmaCopyB,
                RmClass::AmpereUsermodeA,
            ),
            GH100 => return None,
        };
        Some(Self {
            channel,
            copy,
            usermode,
        })
    }
}

/// `NV_STATUS`: the result of an RPC, an RM alloc or an RM control (nvstatuscodes.h). Only the
/// codes this stack produces or acts on are named; [`NvStatus::try_from`] refuses the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum NvStatus {
    /// `NV_OK`.
    Ok = 0x00,
    /// `NV_ERR_INSUFFICIENT_RESOURCES`: a fixed pool is full.
    InsufficientResources = 0x1a,
    /// `NV_ERR_INVALID_ADDRESS`.
    InvalidAddress = 0x1e,
    /// `NV_ERR_INVALID_ARGUMENT`.
    InvalidArgument = 0x1f,
    /// `NV_ERR_INVALID_CLASS`: unknown class, or a class that cannot live under that parent.
    InvalidClass = 0x22,
    /// `NV_ERR_INVALID_CLIENT`: no such client handle.
    InvalidClient = 0x23,
    /// `NV_ERR_INVALID_COMMAND`: unknown control command.
    InvalidCommand = 0x24,
    /// `NV_ERR_INVALID_FLAGS`.
    InvalidFlags = 0x29,
    /// `NV_ERR_INVALID_LIMIT`: a size or count beyond what is allowed.
    InvalidLimit = 0x2e,
    /// `NV_ERR_INVALID_OBJECT_HANDLE`: no such object (or the handle is 0).
    InvalidObjectHandle = 0x33,
    /// `NV_ERR_INVALID_OBJECT_PARENT`: the parent handle names no suitable object.
    InvalidObjectParent = 0x36,
    /// `NV_ERR_INVALID_PARAM_STRUCT`: the parameter size is not the class's or control's.
    InvalidParamStruct = 0x3a,
    /// `NV_ERR_INVALID_STATE`: the object is not in a state that allows this.
    InvalidState = 0x40,
    /// `NV_ERR_INSERT_DUPLICATE_NAME`: the handle is already in use in that client.
    InsertDuplicateName = 0x19,
    /// `NV_ERR_NOT_SUPPORTED`.
    NotSupported = 0x56,
    /// `NV_ERR_OBJECT_NOT_FOUND`.
    ObjectNotFound = 0x57,
    /// `NV_ERR_GENERIC`.
    Generic = 0xffff,
}

/// An NV_STATUS value this stack does not name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownStatus(pub u32);

impl TryFrom<u32> for NvStatus {
    type Error = UnknownStatus;

    fn try_from(v: u32) -> Result<Self, UnknownStatus> {
        Ok(match v {
            0x00 => Self::Ok,
            0x19 => Self::InsertDuplicateName,
            0x1a => Self::InsufficientResources,
            0x1e => Self::InvalidAddress,
            0x1f => Self::InvalidArgument,
            0x22 => Self::InvalidClass,
            0x23 => Self::InvalidClient,
            0x24 => Self::InvalidCommand,
            0x29 => Self::InvalidFlags,
            0x2e => Self::InvalidLimit,
            0x33 => Self::InvalidObjectHandle,
            0x36 => Self::InvalidObjectParent,
            0x3a => Self::InvalidParamStruct,
            0x40 => Self::InvalidState,
            0x56 => Self::NotSupported,
            0x57 => Self::ObjectNotFound,
            0xffff => Self::Generic,
            other => return Err(UnknownStatus(other)),
        })
    }
}

impl From<NvStatus> for u32 {
    fn from(s: NvStatus) -> u32 {
        // CAST: repr(u32) discriminant is the wire value.
        s as u32
    }
}

/// `NV_PROC_NAME_MAX_LENGTH`.
pub const NV_PROC_NAME_MAX_LENGTH: usize = 100;

/// `NV0000_ALLOC_PARAMETERS` (570.144): parameters of [`RmClass::Nv01RootClient`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV0000_ALLOC_PARAMETERS {
    /// The client's own handle (must equal the RPC's `hObject`).
    pub hClient: u32,
    /// Process id of the owner.
    pub processID: u32,
    /// NUL-terminated process name.
    pub processName: [u8; NV_PROC_NAME_MAX_LENGTH],
    /// Explicit padding before the 8-aligned pointer.
    pub _pad0: [u8; 4],
    /// OS pid info pointer (NvP64; zero from a kernel client).
    pub pOsPidInfo: u64,
}

// nouveau rm/r570/nvrm/client.h ("Excerpt of RM headers ... tree/570.144").
const _: () = assert!(size_of::<NV0000_ALLOC_PARAMETERS>() == 120);
const _: () = assert!(offset_of!(NV0000_ALLOC_PARAMETERS, processID) == 4);
const _: () = assert!(offset_of!(NV0000_ALLOC_PARAMETERS, processName) == 8);
const _: () = assert!(offset_of!(NV0000_ALLOC_PARAMETERS, pOsPidInfo) == 112);

/// `NV0080_ALLOC_PARAMETERS`: parameters of [`RmClass::Nv01Device0`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV0080_ALLOC_PARAMETERS {
    /// Device instance (0: the only GPU).
    pub deviceId: u32,
    /// Client whose device to share (0).
    pub hClientShare: u32,
    /// Target client (0).
    pub hTargetClient: u32,
    /// Target device (0).
    pub hTargetDevice: u32,
    /// NV0080_ALLOC_FLAGS_*.
    pub flags: u32,
    /// Explicit padding.
    pub _pad0: u32,
    /// Default VA space size (0: RM default).
    pub vaSpaceSize: u64,
    /// Internal VA start.
    pub vaStartInternal: u64,
    /// Internal VA limit.
    pub vaLimitInternal: u64,
    /// NV_DEVICE_ALLOCATION_VAMODE_*.
    pub vaMode: u32,
    /// Explicit trailing padding.
    pub _pad1: u32,
}

// nouveau rm/r535/nvrm/device.h (used unchanged by its r570 path).
const _: () = assert!(size_of::<NV0080_ALLOC_PARAMETERS>() == 56);
const _: () = assert!(offset_of!(NV0080_ALLOC_PARAMETERS, flags) == 16);
const _: () = assert!(offset_of!(NV0080_ALLOC_PARAMETERS, vaSpaceSize) == 24);
const _: () = assert!(offset_of!(NV0080_ALLOC_PARAMETERS, vaLimitInternal) == 40);
const _: () = assert!(offset_of!(NV0080_ALLOC_PARAMETERS, vaMode) == 48);

/// `NV2080_ALLOC_PARAMETERS`: parameters of [`RmClass::Nv20Subdevice0`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV2080_ALLOC_PARAMETERS {
    /// Subdevice instance (0).
    pub subDeviceId: u32,
}

// nouveau rm/r535/nvrm/device.h.
const _: () = assert!(size_of::<NV2080_ALLOC_PARAMETERS>() == 4);

/// `NV_VASPACE_ALLOCATION_PARAMETERS`: parameters of [`RmClass::FermiVaspaceA`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV_VASPACE_ALLOCATION_PARAMETERS {
    /// [`NV_VASPACE_ALLOCATION_INDEX_GPU_NEW`].
    pub index: u32,
    /// NV_VASPACE_ALLOCATION_FLAGS_*, e.g. [`NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED`].
    pub flags: u32,
    /// VA space size (0: default).
    pub vaSize: u64,
    /// Internal VA start.
    pub vaStartInternal: u64,
    /// Internal VA limit.
    pub vaLimitInternal: u64,
    /// Big page size (0: default, 64 KiB).
    pub bigPageSize: u32,
    /// Explicit padding.
    pub _pad0: u32,
    /// VA base.
    pub vaBase: u64,
}

// nouveau rm/r535/nvrm/vmm.h.
const _: () = assert!(size_of::<NV_VASPACE_ALLOCATION_PARAMETERS>() == 48);
const _: () = assert!(offset_of!(NV_VASPACE_ALLOCATION_PARAMETERS, vaSize) == 8);
const _: () = assert!(offset_of!(NV_VASPACE_ALLOCATION_PARAMETERS, vaLimitInternal) == 24);
const _: () = assert!(offset_of!(NV_VASPACE_ALLOCATION_PARAMETERS, bigPageSize) == 32);
const _: () = assert!(offset_of!(NV_VASPACE_ALLOCATION_PARAMETERS, vaBase) == 40);

/// `NV_VASPACE_ALLOCATION_INDEX_GPU_NEW`: create a new VA space.
pub const NV_VASPACE_ALLOCATION_INDEX_GPU_NEW: u32 = 0;
/// `NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED` (BIT(3)): the client owns the page tables
/// and hands RM the root with [`RmControl::DmaSetPageDirectory`].
pub const NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED: u32 = 1 << 3;

/// `NV_MEMORY_DESC_PARAMS`: a physical range handed to RM.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NV_MEMORY_DESC_PARAMS {
    /// Physical base.
    pub base: u64,
    /// Bytes.
    pub size: u64,
    /// `NV_ADDRESS_SPACE`: [`ADDR_SYSMEM`] or [`ADDR_FBMEM`].
    pub addressSpace: u32,
    /// `NV_MEMORY_CACHED` (1) / `NV_MEMORY_UNCACHED` (0).
    pub cacheAttrib: u32,
}

// nouveau rm/r570/nvrm/fifo.h.
const _: () = assert!(size_of::<NV_MEMORY_DESC_PARAMS>() == 24);
const _: () = assert!(offset_of!(NV_MEMORY_DESC_PARAMS, addressSpace) == 16);
const _: () = assert!(offset_of!(NV_MEMORY_DESC_PARAMS, cacheAttrib) == 20);

/// `NV_ADDRESS_SPACE` ADDR_SYSMEM.
pub const ADDR_SYSMEM: u32 = 1;
/// `NV_ADDRESS_SPACE` ADDR_FBMEM.
pub const ADDR_FBMEM: u32 = 2;

/// `NV_MAX_SUBDEVICES`.
pub const NV_MAX_SUBDEVICES: usize = 8;

/// `NV_CHANNEL_ALLOC_PARAMS` (570.144): parameters of the GPFIFO channel classes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV_CHANNEL_ALLOC_PARAMS {
    /// Error context DMA (0).
    pub hObjectError: u32,
    /// No longer used (0).
    pub hObjectBuffer: u32,
    /// GPU virtual address of the GPFIFO ring (in the channel's VA space).
    pub gpFifoOffset: u64,
    /// GPFIFO entries (8 bytes each).
    pub gpFifoEntries: u32,
    /// NVOS04_FLAGS_*.
    pub flags: u32,
    /// Context share (0).
    pub hContextShare: u32,
    /// The channel's VA space ([`RmClass::FermiVaspaceA`] object).
    pub hVASpace: u32,
    /// USERD memory objects (unused when `userdMem` is given).
    pub hUserdMemory: [u32; NV_MAX_SUBDEVICES],
    /// Offsets into `hUserdMemory`.
    pub userdOffset: [u64; NV_MAX_SUBDEVICES],
    /// NV2080_ENGINE_TYPE_* the channel feeds (e.g. [`NV2080_ENGINE_TYPE_COPY0`]).
    pub engineType: u32,
    /// Channel identifier for the session.
    pub cid: u32,
    /// One-hot subdevice mask.
    pub subDeviceId: u32,
    /// ECC error context DMA (0).
    pub hObjectEccError: u32,
    /// Instance block (FB).
    pub instanceMem: NV_MEMORY_DESC_PARAMS,
    /// USERD (FB or sysmem): the model reads `GPPut` and writes `GPGet` here.
    pub userdMem: NV_MEMORY_DESC_PARAMS,
    /// RAMFC (FB).
    pub ramfcMem: NV_MEMORY_DESC_PARAMS,
    /// Fault method buffer (sysmem).
    pub mthdbufMem: NV_MEMORY_DESC_PARAMS,
    /// Reserved.
    pub hPhysChannelGroup: u32,
    /// NV_KERNELCHANNEL_ALLOC_INTERNALFLAGS_*.
    pub internalFlags: u32,
    /// Reserved.
    pub errorNotifierMem: NV_MEMORY_DESC_PARAMS,
    /// Reserved.
    pub eccErrorNotifierMem: NV_MEMORY_DESC_PARAMS,
    /// Reserved.
    pub ProcessID: u32,
    /// Reserved.
    pub SubProcessID: u32,
    /// Confidential computing (zero).
    pub encryptIv: [u32; 3],
    /// Confidential computing (zero).
    pub decryptIv: [u32; 3],
    /// Confidential computing (zero).
    pub hmacNonce: [u32; 8],
    /// TPC configuration id (0).
    pub tpcConfigID: u32,
    /// Explicit trailing padding (the struct is 8-aligned).
    pub _pad0: u32,
}

// nouveau rm/r570/nvrm/fifo.h ("Excerpt of RM headers ... tree/570.144"), LP64 alignment.
const _: () = assert!(size_of::<NV_CHANNEL_ALLOC_PARAMS>() == 368);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, gpFifoOffset) == 8);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, gpFifoEntries) == 16);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, flags) == 20);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, hVASpace) == 28);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, hUserdMemory) == 32);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, userdOffset) == 64);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, engineType) == 128);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, instanceMem) == 144);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, userdMem) == 168);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, ramfcMem) == 192);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, mthdbufMem) == 216);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, hPhysChannelGroup) == 240);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, errorNotifierMem) == 248);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, ProcessID) == 296);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, encryptIv) == 304);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, hmacNonce) == 328);
const _: () = assert!(offset_of!(NV_CHANNEL_ALLOC_PARAMS, tpcConfigID) == 360);

/// `NVOS04_FLAGS_CHANNEL_USERD_INDEX_VALUE` 10:8 (alloc_channel.h).
pub const NVOS04_FLAGS_CHANNEL_USERD_INDEX_VALUE_SHIFT: u32 = 8;
/// `NVOS04_FLAGS_CHANNEL_USERD_INDEX_PAGE_VALUE` 20:12.
pub const NVOS04_FLAGS_CHANNEL_USERD_INDEX_PAGE_VALUE_SHIFT: u32 = 12;
/// `NVOS04_FLAGS_CHANNEL_USERD_INDEX_PAGE_FIXED_TRUE` (bit 21).
pub const NVOS04_FLAGS_CHANNEL_USERD_INDEX_PAGE_FIXED: u32 = 1 << 21;
/// `NVOS04_FLAGS_PRIVILEGED_CHANNEL_TRUE` (bit 5).
pub const NVOS04_FLAGS_PRIVILEGED_CHANNEL: u32 = 1 << 5;

/// `NV2080_ENGINE_TYPE_COPY0` (cl2080_notification.h); COPYn = COPY0 + n up to COPY9.
pub const NV2080_ENGINE_TYPE_COPY0: u32 = 0x09;
/// `NV2080_ENGINE_TYPE_COPY9`.
pub const NV2080_ENGINE_TYPE_COPY9: u32 = 0x12;

/// `NVB0B5_ALLOCATION_PARAMETERS` (nouveau calls it `NVC0B5_...`): copy-engine class params.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NVB0B5_ALLOCATION_PARAMETERS {
    /// [`NVB0B5_ALLOCATION_PARAMETERS_VERSION_1`].
    pub version: u32,
    /// NV2080_ENGINE_TYPE_COPYn, matching the channel's engine.
    pub engineType: u32,
}

// nouveau rm/r535/nvrm/ce.h; r535/ce.c sets version = 1.
const _: () = assert!(size_of::<NVB0B5_ALLOCATION_PARAMETERS>() == 8);
const _: () = assert!(offset_of!(NVB0B5_ALLOCATION_PARAMETERS, engineType) == 4);

/// The only copy-engine params version.
pub const NVB0B5_ALLOCATION_PARAMETERS_VERSION_1: u32 = 1;

/// RM control commands gpu-server sends (each with its params struct below).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RmControl {
    /// `NV0080_CTRL_CMD_DMA_SET_PAGE_DIRECTORY`, on the device.
    DmaSetPageDirectory = 0x0080_1813,
    /// `NV0080_CTRL_CMD_DMA_UNSET_PAGE_DIRECTORY`, on the device.
    DmaUnsetPageDirectory = 0x0080_1814,
    /// `NV2080_CTRL_CMD_CE_GET_FAULT_METHOD_BUFFER_SIZE`, on the subdevice.
    CeGetFaultMethodBufferSize = 0x2080_2a08,
    /// `NVA06F_CTRL_CMD_GPFIFO_SCHEDULE`, on a channel.
    GpfifoSchedule = 0xa06f_0103,
    /// `NVA06F_CTRL_CMD_BIND`, on a channel.
    Bind = 0xa06f_0104,
    /// `NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN`, on a channel.
    GpfifoGetWorkSubmitToken = 0xc36f_0108,
}

/// A control command this stack does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownControl(pub u32);

impl TryFrom<u32> for RmControl {
    type Error = UnknownControl;

    fn try_from(v: u32) -> Result<Self, UnknownControl> {
        use RmControl::*;
        Ok(match v {
            0x0080_1813 => DmaSetPageDirectory,
            0x0080_1814 => DmaUnsetPageDirectory,
            0x2080_2a08 => CeGetFaultMethodBufferSize,
            0xa06f_0103 => GpfifoSchedule,
            0xa06f_0104 => Bind,
            0xc36f_0108 => GpfifoGetWorkSubmitToken,
            other => return Err(UnknownControl(other)),
        })
    }
}

impl From<RmControl> for u32 {
    fn from(c: RmControl) -> u32 {
        // CAST: repr(u32) discriminant is the command number.
        c as u32
    }
}

impl RmControl {
    /// The exact parameter size the command takes.
    pub const fn params_size(self) -> usize {
        match self {
            Self::DmaSetPageDirectory => size_of::<NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS>(),
            Self::DmaUnsetPageDirectory => size_of::<NV0080_CTRL_DMA_UNSET_PAGE_DIRECTORY_PARAMS>(),
            Self::CeGetFaultMethodBufferSize => {
                size_of::<NV2080_CTRL_CE_GET_FAULT_METHOD_BUFFER_SIZE_PARAMS>()
            }
            Self::GpfifoSchedule => size_of::<NVA06F_CTRL_GPFIFO_SCHEDULE_PARAMS>(),
            Self::Bind => size_of::<NVA06F_CTRL_BIND_PARAMS>(),
            Self::GpfifoGetWorkSubmitToken => {
                size_of::<NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS>()
            }
        }
    }
}

/// `NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS`: hand RM the root (PD3) of a client-owned VA
/// space's page tables.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS {
    /// Physical address of the PD3.
    pub physAddress: u64,
    /// PD3 entries (4 for a 49-bit VA space).
    pub numEntries: u32,
    /// `..._FLAGS_APERTURE` (1:0) and friends.
    pub flags: u32,
    /// The [`RmClass::FermiVaspaceA`] object.
    pub hVASpace: u32,
    /// Channel id (ignored unless ALL_CHANNELS is false with a channel).
    pub chId: u32,
    /// Subdevice id + 1, 0 for broadcast.
    pub subDeviceId: u32,
    /// PASID (0).
    pub pasid: u32,
}

// nouveau rm/r535/nvrm/vmm.h (newer revision, with SET_PAGE_DIRECTORY).
const _: () = assert!(size_of::<NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS>() == 32);
const _: () = assert!(offset_of!(NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS, numEntries) == 8);
const _: () = assert!(offset_of!(NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS, flags) == 12);
const _: () = assert!(offset_of!(NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS, hVASpace) == 16);
const _: () = assert!(offset_of!(NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS, pasid) == 28);

/// `NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_FLAGS_APERTURE` (1:0): VIDMEM 0, SYSMEM_COH 1,
/// SYSMEM_NONCOH 2 (note: not the PDE aperture encoding).
pub const NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_FLAGS_APERTURE_MASK: u32 = 0b11;

/// `NV0080_CTRL_DMA_UNSET_PAGE_DIRECTORY_PARAMS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV0080_CTRL_DMA_UNSET_PAGE_DIRECTORY_PARAMS {
    /// The VA space.
    pub hVASpace: u32,
    /// Subdevice id + 1, 0 for broadcast.
    pub subDeviceId: u32,
}

// nouveau rm/r535/nvrm/vmm.h.
const _: () = assert!(size_of::<NV0080_CTRL_DMA_UNSET_PAGE_DIRECTORY_PARAMS>() == 8);

/// `NV2080_CTRL_CE_GET_FAULT_METHOD_BUFFER_SIZE_PARAMS`: how big `mthdbufMem` must be.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NV2080_CTRL_CE_GET_FAULT_METHOD_BUFFER_SIZE_PARAMS {
    /// Bytes.
    pub size: u32,
}

// nouveau rm/r535/nvrm/fifo.h.
const _: () = assert!(size_of::<NV2080_CTRL_CE_GET_FAULT_METHOD_BUFFER_SIZE_PARAMS>() == 4);

/// `NVA06F_CTRL_GPFIFO_SCHEDULE_PARAMS`: enable (or disable) a channel.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NVA06F_CTRL_GPFIFO_SCHEDULE_PARAMS {
    /// NvBool: schedule the channel.
    pub bEnable: u8,
    /// NvBool: do not submit yet.
    pub bSkipSubmit: u8,
}

// nouveau rm/r535/nvrm/fifo.h.
const _: () = assert!(size_of::<NVA06F_CTRL_GPFIFO_SCHEDULE_PARAMS>() == 2);

/// `NVA06F_CTRL_BIND_PARAMS`: bind a channel to its engine.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NVA06F_CTRL_BIND_PARAMS {
    /// NV2080_ENGINE_TYPE_*.
    pub engineType: u32,
}

// nouveau rm/r535/nvrm/fifo.h.
const _: () = assert!(size_of::<NVA06F_CTRL_BIND_PARAMS>() == 4);

/// `NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS`: the value to write to the usermode
/// doorbell for this channel.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS {
    /// The token (nouveau computes the same value: runlist << 16 | chid).
    pub workSubmitToken: u32,
}

// ctrlc36f.h.
const _: () = assert!(size_of::<NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS>() == 4);

/// ROBUST_CHANNEL_* error numbers (nverror.h), the `exceptType` of `rpc_rc_triggered_v17_02`.
pub mod rc {
    /// `ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT` (Xid 31): a GPU page fault.
    pub const FIFO_ERROR_MMU_ERR_FLT: u32 = 31;
    /// `ROBUST_CHANNEL_PBDMA_ERROR` (Xid 32): an invalid push buffer or method.
    pub const PBDMA_ERROR: u32 = 32;
    /// `ROBUST_CHANNEL_CE0_ERROR` (Xid 39): a copy-engine error.
    pub const CE0_ERROR: u32 = 39;
}

/// The host (PBDMA) side of a GPFIFO channel: `clc36f.h`, shared by `TURING_CHANNEL_GPFIFO_A` and
/// `AMPERE_CHANNEL_GPFIFO_A`.
pub mod host {
    /// Bytes of a USERD block (nouveau `gv100_chan_userd.size`).
    pub const USERD_SIZE: u64 = 0x200;
    /// `Nvc36fControl.GPGet`: the GPU's GPFIFO read index (written by the GPU).
    pub const USERD_GP_GET: u64 = 0x88;
    /// `Nvc36fControl.GPPut`: the driver's GPFIFO write index.
    pub const USERD_GP_PUT: u64 = 0x8c;
    /// Bytes per GPFIFO entry (`NVC36F_GP_ENTRY__SIZE`).
    pub const GP_ENTRY_SIZE: u64 = 8;

    /// `NVC36F_SET_OBJECT`: bind a class to the subchannel (data: class 15:0, engine 20:16).
    pub const SET_OBJECT: u32 = 0x0000;
    /// `NVC36F_NOP`.
    pub const NOP: u32 = 0x0008;
    /// `NVC36F_SEMAPHOREA`: semaphore address bits 39:32 (data 7:0).
    pub const SEMAPHOREA: u32 = 0x0010;
    /// `NVC36F_SEMAPHOREB`: semaphore address bits 31:2 (data 31:2).
    pub const SEMAPHOREB: u32 = 0x0014;
    /// `NVC36F_SEMAPHOREC`: payload.
    pub const SEMAPHOREC: u32 = 0x0018;
    /// `NVC36F_SEMAPHORED`: operation (4:0; RELEASE = 2), RELEASE_SIZE 24:24 (4BYTE = 1).
    pub const SEMAPHORED: u32 = 0x001c;
    /// `NVC36F_SEMAPHORED_OPERATION_RELEASE`.
    pub const SEMAPHORED_OPERATION_RELEASE: u32 = 2;
    /// `NVC36F_NON_STALL_INTERRUPT`.
    pub const NON_STALL_INTERRUPT: u32 = 0x0020;
    /// `NVC36F_MEM_OP_A`..`NVC36F_MEM_OP_D` (TLB invalidates and membars).
    pub const MEM_OP_A: u32 = 0x0028;
    /// `NVC36F_MEM_OP_B`.
    pub const MEM_OP_B: u32 = 0x002c;
    /// `NVC36F_MEM_OP_C`.
    pub const MEM_OP_C: u32 = 0x0030;
    /// `NVC36F_MEM_OP_D`.
    pub const MEM_OP_D: u32 = 0x0034;
    /// `NVC36F_SET_REFERENCE`.
    pub const SET_REFERENCE: u32 = 0x0050;
    /// `NVC36F_SEM_ADDR_LO`: address bits 31:2.
    pub const SEM_ADDR_LO: u32 = 0x005c;
    /// `NVC36F_SEM_ADDR_HI`: address bits 39:32 (data 7:0).
    pub const SEM_ADDR_HI: u32 = 0x0060;
    /// `NVC36F_SEM_PAYLOAD_LO`.
    pub const SEM_PAYLOAD_LO: u32 = 0x0064;
    /// `NVC36F_SEM_PAYLOAD_HI`.
    pub const SEM_PAYLOAD_HI: u32 = 0x0068;
    /// `NVC36F_SEM_EXECUTE`: operation 2:0 (RELEASE = 1), PAYLOAD_SIZE 24:24 (64BIT = 1).
    pub const SEM_EXECUTE: u32 = 0x006c;
    /// `NVC36F_SEM_EXECUTE_OPERATION_RELEASE`.
    pub const SEM_EXECUTE_OPERATION_RELEASE: u32 = 1;
    /// `NVC36F_WFI`.
    pub const WFI: u32 = 0x0078;
    /// Host methods are below this; higher methods go to the subchannel's engine.
    pub const HOST_METHOD_LIMIT: u32 = 0x0100;

    /// A GPFIFO entry (`NVC36F_GP_ENTRY0/1`): a push-buffer segment.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct GpEntry {
        /// GPU VA of the segment (4-byte aligned, 40 bits).
        pub va: u64,
        /// Length in dwords (`GP_ENTRY1_LENGTH` 30:10); 0 is a control entry (NOP).
        pub dwords: u32,
        /// `GP_ENTRY1_SYNC_WAIT`.
        pub sync_wait: bool,
    }

    impl GpEntry {
        /// Encode as the two little-endian dwords of the ring entry.
        pub const fn encode(self) -> u64 {
            // GET 31:2 in dword 0; GET_HI 7:0, LENGTH 30:10, SYNC 31 in dword 1.
            let lo = self.va & 0xffff_fffc;
            let hi = ((self.va >> 32) & 0xff)
                | ((self.dwords as u64 & 0x1f_ffff) << 10)
                | ((self.sync_wait as u64) << 31);
            lo | (hi << 32)
        }

        /// Decode a ring entry. `GP_ENTRY1_LEVEL_SUBROUTINE` and `PRIV` are ignored by this
        /// model (main level only); FETCH conditional is treated as unconditional.
        pub const fn decode(raw: u64) -> Self {
            let lo = raw & 0xffff_ffff;
            let hi = raw >> 32;
            Self {
                va: (lo & 0xffff_fffc) | ((hi & 0xff) << 32),
                // CAST: masked to 21 bits.
                dwords: ((hi >> 10) & 0x1f_ffff) as u32,
                sync_wait: hi >> 31 != 0,
            }
        }
    }

    /// `NVC36F_DMA_SEC_OP` (31:29) of a push-buffer method header.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum SecOp {
        /// GRP0_USE_TERT (0): with TERT_OP 0 and count 0 it is a NOP dword.
        Grp0UseTert,
        /// INC_METHOD (1): `count` data dwords to consecutive methods.
        IncMethod,
        /// GRP2_USE_TERT (2).
        Grp2UseTert,
        /// NON_INC_METHOD (3): `count` data dwords to the same method.
        NonIncMethod,
        /// IMMD_DATA_METHOD (4): 13-bit data in the header itself.
        ImmdDataMethod,
        /// ONE_INC (5): first dword to the method, the rest to the next one.
        OneInc,
        /// RESERVED6 (6).
        Reserved6,
        /// END_PB_SEGMENT (7).
        EndPbSegment,
    }

    /// A decoded push-buffer method header (`NVC36F_DMA_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MethodHeader {
        /// The operation.
        pub op: SecOp,
        /// Method byte offset (`METHOD_ADDRESS` 11:0 is in dwords).
        pub method: u32,
        /// Subchannel (15:13).
        pub subchannel: u8,
        /// Data dword count (28:16), or the immediate data for `ImmdDataMethod`.
        pub count: u32,
    }

    impl MethodHeader {
        /// Decode a header dword.
        pub const fn decode(dw: u32) -> Self {
            let op = match dw >> 29 {
                0 => SecOp::Grp0UseTert,
                1 => SecOp::IncMethod,
                2 => SecOp::Grp2UseTert,
                3 => SecOp::NonIncMethod,
                4 => SecOp::ImmdDataMethod,
                5 => SecOp::OneInc,
                6 => SecOp::Reserved6,
                _ => SecOp::EndPbSegment,
            };
            Self {
                op,
                method: (dw & 0xfff) << 2,
                // CAST: masked to 3 bits.
                subchannel: ((dw >> 13) & 0x7) as u8,
                count: (dw >> 16) & 0x1fff,
            }
        }

        /// Encode a header of `op` (use [`SecOp::IncMethod`], [`SecOp::NonIncMethod`],
        /// [`SecOp::OneInc`] or [`SecOp::ImmdDataMethod`]).
        pub const fn encode(op: SecOp, subchannel: u8, method: u32, count: u32) -> u32 {
            let code = match op {
                SecOp::Grp0UseTert => 0,
                SecOp::IncMethod => 1,
                SecOp::Grp2UseTert => 2,
                SecOp::NonIncMethod => 3,
                SecOp::ImmdDataMethod => 4,
                SecOp::OneInc => 5,
                SecOp::Reserved6 => 6,
                SecOp::EndPbSegment => 7,
            };
            (code << 29)
                | ((count & 0x1fff) << 16)
                | ((subchannel as u32 & 0x7) << 13)
                | ((method >> 2) & 0xfff)
        }
    }
}

/// Copy-engine methods (`clc5b5.h`; identical offsets in `clc6b5.h` and `clc7b5.h`).
pub mod copy {
    /// `NVC5B5_SET_SEMAPHORE_A`: semaphore address, upper bits (16:0).
    pub const SET_SEMAPHORE_A: u32 = 0x0240;
    /// `NVC5B5_SET_SEMAPHORE_B`: lower 32 bits.
    pub const SET_SEMAPHORE_B: u32 = 0x0244;
    /// `NVC5B5_SET_SEMAPHORE_PAYLOAD`.
    pub const SET_SEMAPHORE_PAYLOAD: u32 = 0x0248;
    /// `NVC5B5_LAUNCH_DMA`.
    pub const LAUNCH_DMA: u32 = 0x0300;
    /// `NVC5B5_OFFSET_IN_UPPER` (16:0).
    pub const OFFSET_IN_UPPER: u32 = 0x0400;
    /// `NVC5B5_OFFSET_IN_LOWER`.
    pub const OFFSET_IN_LOWER: u32 = 0x0404;
    /// `NVC5B5_OFFSET_OUT_UPPER` (16:0).
    pub const OFFSET_OUT_UPPER: u32 = 0x0408;
    /// `NVC5B5_OFFSET_OUT_LOWER`.
    pub const OFFSET_OUT_LOWER: u32 = 0x040c;
    /// `NVC5B5_PITCH_IN`.
    pub const PITCH_IN: u32 = 0x0410;
    /// `NVC5B5_PITCH_OUT`.
    pub const PITCH_OUT: u32 = 0x0414;
    /// `NVC5B5_LINE_LENGTH_IN`: bytes per line.
    pub const LINE_LENGTH_IN: u32 = 0x0418;
    /// `NVC5B5_LINE_COUNT`.
    pub const LINE_COUNT: u32 = 0x041c;

    /// `LAUNCH_DMA_DATA_TRANSFER_TYPE` 1:0 (NONE 0, PIPELINED 1, NON_PIPELINED 2).
    pub const LAUNCH_DATA_TRANSFER_TYPE_MASK: u32 = 0b11;
    /// `LAUNCH_DMA_FLUSH_ENABLE` 2:2.
    pub const LAUNCH_FLUSH_ENABLE: u32 = 1 << 2;
    /// `LAUNCH_DMA_SEMAPHORE_TYPE` 4:3 (NONE 0, RELEASE_ONE_WORD 1, RELEASE_FOUR_WORD 2).
    pub const LAUNCH_SEMAPHORE_TYPE_SHIFT: u32 = 3;
    /// `LAUNCH_DMA_INTERRUPT_TYPE` 6:5.
    pub const LAUNCH_INTERRUPT_TYPE_SHIFT: u32 = 5;
    /// `LAUNCH_DMA_SRC_MEMORY_LAYOUT_PITCH` 7:7.
    pub const LAUNCH_SRC_LAYOUT_PITCH: u32 = 1 << 7;
    /// `LAUNCH_DMA_DST_MEMORY_LAYOUT_PITCH` 8:8.
    pub const LAUNCH_DST_LAYOUT_PITCH: u32 = 1 << 8;
    /// `LAUNCH_DMA_MULTI_LINE_ENABLE` 9:9.
    pub const LAUNCH_MULTI_LINE_ENABLE: u32 = 1 << 9;
    /// `LAUNCH_DMA_REMAP_ENABLE` 10:10.
    pub const LAUNCH_REMAP_ENABLE: u32 = 1 << 10;
    /// `LAUNCH_DMA_SRC_TYPE_PHYSICAL` 12:12.
    pub const LAUNCH_SRC_TYPE_PHYSICAL: u32 = 1 << 12;
    /// `LAUNCH_DMA_DST_TYPE_PHYSICAL` 13:13.
    pub const LAUNCH_DST_TYPE_PHYSICAL: u32 = 1 << 13;
    /// `LAUNCH_DMA_SEMAPHORE_REDUCTION_ENABLE` 19:19.
    pub const LAUNCH_SEMAPHORE_REDUCTION_ENABLE: u32 = 1 << 19;
}

/// The usermode region (`clc361.h`: BAR0 0x810000..0x81ffff for `VOLTA/TURING/AMPERE_USERMODE_A`).
pub mod usermode {
    /// BAR0 offset of the region.
    pub const BASE: u32 = 0x0081_0000;
    /// `NVC361_TIME_0`: PTIMER nanoseconds, low word.
    pub const TIME_0: u32 = 0x80;
    /// `NVC361_TIME_1`: high word.
    pub const TIME_1: u32 = 0x84;
    /// `NVC361_NOTIFY_CHANNEL_PENDING`: write a work-submit token to kick its channel.
    pub const NOTIFY_CHANNEL_PENDING: u32 = 0x90;
}

#[cfg(test)]
mod tests {
    use super::host::{GpEntry, MethodHeader, SecOp};
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn classes_controls_and_status_round_trip() {
        for v in 0..0x1_0000u32 {
            if let Ok(c) = RmClass::try_from(v) {
                assert_eq!(u32::from(c), v);
            }
            if let Ok(s) = NvStatus::try_from(v) {
                assert_eq!(u32::from(s), v);
            }
        }
        assert_eq!(RmClass::try_from(0xc56f), Ok(RmClass::AmpereChannelGpfifoA));
        assert_eq!(RmClass::try_from(0x1234), Err(UnknownClass(0x1234)));
        assert_eq!(NvStatus::try_from(0x33), Ok(NvStatus::InvalidObjectHandle));
        assert_eq!(NvStatus::try_from(0x34), Err(UnknownStatus(0x34)));
        for c in [
            RmControl::DmaSetPageDirectory,
            RmControl::DmaUnsetPageDirectory,
            RmControl::CeGetFaultMethodBufferSize,
            RmControl::GpfifoSchedule,
            RmControl::Bind,
            RmControl::GpfifoGetWorkSubmitToken,
        ] {
            assert_eq!(RmControl::try_from(u32::from(c)), Ok(c));
            assert!(c.params_size() > 0);
        }
        assert_eq!(
            RmControl::try_from(0x2080_0123),
            Err(UnknownControl(0x2080_0123))
        );
    }

    #[test]
    fn channel_classes_per_chip() {
        let tu = ChannelClasses::for_chip(Chipset::TU102).unwrap();
        assert_eq!(
            (tu.channel, tu.copy),
            (RmClass::TuringChannelGpfifoA, RmClass::TuringDmaCopyA)
        );
        let ad = ChannelClasses::for_chip(Chipset::AD102).unwrap();
        assert_eq!(
            (ad.channel, ad.copy, ad.usermode),
            (
                RmClass::AmpereChannelGpfifoA,
                RmClass::AmpereDmaCopyB,
                RmClass::AmpereUsermodeA
            )
        );
        assert_eq!(
            ChannelClasses::for_chip(Chipset::GA100).unwrap().copy,
            RmClass::AmpereDmaCopyA
        );
        assert_eq!(ChannelClasses::for_chip(Chipset::GH100), None);
    }

    #[test]
    fn gp_entry_matches_clc36f_fields() {
        let e = GpEntry {
            va: 0xab_1234_5678,
            dwords: 0x12,
            sync_wait: false,
        };
        let raw = e.encode();
        // ENTRY0 = GET 31:2; ENTRY1 = GET_HI 7:0 | LENGTH << 10.
        assert_eq!(raw as u32, 0x1234_5678);
        assert_eq!((raw >> 32) as u32, 0xab | (0x12 << 10));
        assert_eq!(GpEntry::decode(raw), e);
        assert!(GpEntry::decode(1 << 63).sync_wait);
    }

    #[test]
    fn method_header_matches_clc36f_fields() {
        // nouveau PUSH_MTHD: 0x20000000 | count << 16 | subc << 13 | mthd >> 2.
        let h = MethodHeader::encode(SecOp::IncMethod, 4, 0x300, 1);
        assert_eq!(h, 0x2001_8000 | (0x300 >> 2));
        assert_eq!(
            MethodHeader::decode(h),
            MethodHeader {
                op: SecOp::IncMethod,
                method: 0x300,
                subchannel: 4,
                count: 1
            }
        );
        let imm = MethodHeader::decode(0x8000_0000 | (5 << 16) | (0x6c >> 2));
        assert_eq!(
            (imm.op, imm.method, imm.count),
            (SecOp::ImmdDataMethod, 0x6c, 5)
        );
    }

    #[test]
    fn channel_params_golden_offsets() {
        let mut p = NV_CHANNEL_ALLOC_PARAMS::new_zeroed();
        p.gpFifoOffset = 0x1122_3344_5566_7788;
        p.hVASpace = 0xaabb_ccdd;
        p.userdMem.base = 0x0102_0304_0506_0708;
        p.tpcConfigID = 0x5a5a_5a5a;
        let b = p.as_bytes();
        assert_eq!(&b[8..16], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&b[28..32], &0xaabb_ccddu32.to_le_bytes());
        assert_eq!(&b[168..176], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&b[360..364], &0x5a5a_5a5au32.to_le_bytes());
    }
}
