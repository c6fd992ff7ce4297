//! rpc_message_header_v03_00, function numbers, and the RPC payload headers (570.144).
//!
//! Sources: OpenRM 570.144 `src/nvidia/generated/g_rpc-message-header.h` (header),
//! `src/nvidia/inc/kernel/vgpu/rpc_global_enums.h` (function and event numbers),
//! `src/nvidia/generated/g_rpc-structures.h` (payloads; `rpc_gsp_rm_alloc/control` pinned by
//! `gsp_abi_check.c`); the excerpts of those headers in nouveau
//! (`nvkm/subdev/gsp/rm/r570/nvrm/{gsp,fifo}.h` for 570.144, `rm/r535/nvrm/{alloc,event}.h` where
//! nouveau uses the 535 layout unchanged for 570) and nova-core `gsp/fw/r570_144/bindings.rs`.
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `rpc_message_header_v03_00`: the header of every RPC, command or event.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct rpc_message_header_v03_00 {
    /// [`RPC_HEADER_VERSION_V03_00`].
    pub header_version: u32,
    /// [`NV_VGPU_MSG_SIGNATURE_VALID`] ("VRPC").
    pub signature: u32,
    /// Bytes of this header plus the payload.
    pub length: u32,
    /// [`MsgFunction`] number; a reply echoes its command's.
    pub function: u32,
    /// Sender writes [`NV_VGPU_MSG_RESULT_RPC_PENDING`]; a reply carries the NV_STATUS.
    pub rpc_result: u32,
    /// Likewise, the private status.
    pub rpc_result_private: u32,
    /// RPC-level sequence number; a reply echoes its command's.
    pub sequence: u32,
    /// `spare` / `cpuRmGfid` union (zero).
    pub spare: u32,
}

// g_rpc-message-header.h; reference section 7.
const _: () = assert!(size_of::<rpc_message_header_v03_00>() == 32);
const _: () = assert!(offset_of!(rpc_message_header_v03_00, header_version) == 0);
const _: () = assert!(offset_of!(rpc_message_header_v03_00, signature) == 4);
const _: () = assert!(offset_of!(rpc_message_header_v03_00, length) == 8);
const _: () = assert!(offset_of!(rpc_message_header_v03_00, function) == 12);
const _: () = assert!(offset_of!(rpc_message_header_v03_00, rpc_result) == 16);
const _: () = assert!(offset_of!(rpc_message_header_v03_00, rpc_result_private) == 20);
const _: () = assert!(offset_of!(rpc_message_header_v03_00, sequence) == 24);
const _: () = assert!(offset_of!(rpc_message_header_v03_00, spare) == 28);

/// `header_version` 3.0 (major in bits 31:24, minor in 23:16; nova `MsgHeaderVersion`).
pub const RPC_HEADER_VERSION_V03_00: u32 = 0x0300_0000;
/// `NV_VGPU_MSG_SIGNATURE_VALID`: 'C','P','R','V' packed big-endian ("VRPC" in memory).
pub const NV_VGPU_MSG_SIGNATURE_VALID: u32 = 0x4350_5256;
/// `NV_VGPU_MSG_RESULT_RPC_PENDING`: what the sender puts in both result fields.
pub const NV_VGPU_MSG_RESULT_RPC_PENDING: u32 = 0xffff_ffff;
/// `NV_OK`.
pub const NV_OK: u32 = 0;

/// RPC function and event numbers (`NV_VGPU_MSG_FUNCTION_*`, `NV_VGPU_MSG_EVENT_*`): the ones this
/// driver sends or understands. Anything else is refused by [`MsgFunction::try_from`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MsgFunction {
    /// NOP.
    Nop = 0,
    /// SET_GUEST_SYSTEM_INFO (vGPU guests).
    SetGuestSystemInfo = 1,
    /// ALLOC_ROOT.
    AllocRoot = 2,
    /// ALLOC_DEVICE.
    AllocDevice = 3,
    /// ALLOC_MEMORY.
    AllocMemory = 4,
    /// ALLOC_CHANNEL_DMA.
    AllocChannelDma = 6,
    /// MAP_MEMORY.
    MapMemory = 7,
    /// ALLOC_OBJECT.
    AllocObject = 9,
    /// FREE: free an RM object (`rpc_free_v03_00`).
    Free = 10,
    /// LOG.
    Log = 11,
    /// UNLOADING_GUEST_DRIVER.
    UnloadingGuestDriver = 47,
    /// GET_STATIC_INFO.
    GetStaticInfo = 51,
    /// GET_GSP_STATIC_INFO (`GspStaticConfigInfo` both ways).
    GetGspStaticInfo = 65,
    /// CONTINUATION_RECORD: raw bytes continuing the previous message.
    ContinuationRecord = 71,
    /// GSP_SET_SYSTEM_INFO (`GspSystemInfo`).
    GspSetSystemInfo = 72,
    /// SET_REGISTRY (`PACKED_REGISTRY_TABLE`).
    SetRegistry = 73,
    /// GSP_RM_CONTROL (`rpc_gsp_rm_control_v03_00`).
    GspRmControl = 76,
    /// GSP_RM_ALLOC (`rpc_gsp_rm_alloc_v03_00`).
    GspRmAlloc = 103,
    /// Event GSP_INIT_DONE: GSP-RM finished booting.
    GspInitDone = 0x1001,
    /// Event GSP_RUN_CPU_SEQUENCER (`rpc_run_cpu_sequencer_v17_00`).
    GspRunCpuSequencer = 0x1002,
    /// Event POST_EVENT (`rpc_post_event_v17_00`).
    PostEvent = 0x1003,
    /// Event RC_TRIGGERED (`rpc_rc_triggered_v17_02`): a channel was robust-channel reset.
    RcTriggered = 0x1004,
    /// Event MMU_FAULT_QUEUED (no payload): a replayable fault is in the fault buffer.
    MmuFaultQueued = 0x1005,
    /// Event OS_ERROR_LOG (`rpc_os_error_log_v17_00`).
    OsErrorLog = 0x1006,
    /// Event UCODE_LIBOS_PRINT (`rpc_ucode_libos_print_v1E_08`).
    UcodeLibosPrint = 0x100c,
    /// Event GSP_LOCKDOWN_NOTICE.
    GspLockdownNotice = 0x101c,
    /// Event GSP_POST_NOCAT_RECORD.
    GspPostNocatRecord = 0x1020,
}

/// A function number this driver does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownFunction(pub u32);

impl TryFrom<u32> for MsgFunction {
    type Error = UnknownFunction;

    fn try_from(v: u32) -> Result<Self, UnknownFunction> {
        use MsgFunction::*;
        Ok(match v {
            0 => Nop,
            1 => SetGuestSystemInfo,
            2 => AllocRoot,
            3 => AllocDevice,
            4 => AllocMemory,
            6 => AllocChannelDma,
            7 => MapMemory,
            9 => AllocObject,
            10 => Free,
            11 => Log,
            47 => UnloadingGuestDriver,
            51 => GetStaticInfo,
            65 => GetGspStaticInfo,
            71 => ContinuationRecord,
            72 => GspSetSystemInfo,
            73 => SetRegistry,
            76 => GspRmControl,
            103 => GspRmAlloc,
            0x1001 => GspInitDone,
            0x1002 => GspRunCpuSequencer,
            0x1003 => PostEvent,
            0x1004 => RcTriggered,
            0x1005 => MmuFaultQueued,
            0x1006 => OsErrorLog,
            0x100c => UcodeLibosPrint,
            0x101c => GspLockdownNotice,
            0x1020 => GspPostNocatRecord,
            other => return Err(UnknownFunction(other)),
        })
    }
}

impl From<MsgFunction> for u32 {
    fn from(f: MsgFunction) -> u32 {
        // CAST: MsgFunction is repr(u32); the discriminant is the wire value.
        f as u32
    }
}

impl MsgFunction {
    /// `NV_VGPU_MSG_EVENT_FIRST_EVENT`: numbers from here on are GSP-initiated events.
    pub const FIRST_EVENT: u32 = 0x1000;

    /// Whether this number is a GSP-initiated event rather than a command/reply.
    pub const fn is_event(self) -> bool {
        // CAST: repr(u32) discriminant.
        self as u32 >= Self::FIRST_EVENT
    }
}

/// `rpc_gsp_rm_alloc_v03_00`, followed by `paramsSize` bytes of class parameters.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct rpc_gsp_rm_alloc_v03_00 {
    /// Client handle.
    pub hClient: u32,
    /// Parent object handle.
    pub hParent: u32,
    /// New object's handle (chosen by the caller).
    pub hObject: u32,
    /// Class number.
    pub hClass: u32,
    /// NV_STATUS of the allocation (reply).
    pub status: u32,
    /// Bytes of class parameters following this header.
    pub paramsSize: u32,
    /// Allocation flags.
    pub flags: u32,
    /// Reserved (zero).
    pub reserved: [u8; 4],
}

// g_rpc-structures.h; gsp_abi_check.c; reference section 7 ("both versions").
const _: () = assert!(size_of::<rpc_gsp_rm_alloc_v03_00>() == 32);
const _: () = assert!(offset_of!(rpc_gsp_rm_alloc_v03_00, hClient) == 0);
const _: () = assert!(offset_of!(rpc_gsp_rm_alloc_v03_00, hParent) == 4);
const _: () = assert!(offset_of!(rpc_gsp_rm_alloc_v03_00, hObject) == 8);
const _: () = assert!(offset_of!(rpc_gsp_rm_alloc_v03_00, hClass) == 12);
const _: () = assert!(offset_of!(rpc_gsp_rm_alloc_v03_00, status) == 16);
const _: () = assert!(offset_of!(rpc_gsp_rm_alloc_v03_00, paramsSize) == 20);
const _: () = assert!(offset_of!(rpc_gsp_rm_alloc_v03_00, flags) == 24);
const _: () = assert!(offset_of!(rpc_gsp_rm_alloc_v03_00, reserved) == 28);

/// `rpc_gsp_rm_control_v03_00`, followed by `paramsSize` bytes of control parameters.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct rpc_gsp_rm_control_v03_00 {
    /// Client handle.
    pub hClient: u32,
    /// Object the control is addressed to.
    pub hObject: u32,
    /// Control command number.
    pub cmd: u32,
    /// NV_STATUS of the control (reply).
    pub status: u32,
    /// Bytes of parameters following this header.
    pub paramsSize: u32,
    /// Control flags.
    pub flags: u32,
}

// g_rpc-structures.h; gsp_abi_check.c; reference section 7.
const _: () = assert!(size_of::<rpc_gsp_rm_control_v03_00>() == 24);
const _: () = assert!(offset_of!(rpc_gsp_rm_control_v03_00, hClient) == 0);
const _: () = assert!(offset_of!(rpc_gsp_rm_control_v03_00, hObject) == 4);
const _: () = assert!(offset_of!(rpc_gsp_rm_control_v03_00, cmd) == 8);
const _: () = assert!(offset_of!(rpc_gsp_rm_control_v03_00, status) == 12);
const _: () = assert!(offset_of!(rpc_gsp_rm_control_v03_00, paramsSize) == 16);
const _: () = assert!(offset_of!(rpc_gsp_rm_control_v03_00, flags) == 20);

/// `NVOS00_PARAMETERS_v03_00` wrapped as `rpc_free_v03_00` (the FREE payload).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct rpc_free_v03_00 {
    /// Client handle (`hRoot`).
    pub hRoot: u32,
    /// Parent of the object (nouveau sends 0).
    pub hObjectParent: u32,
    /// The object to free.
    pub hObjectOld: u32,
    /// NV_STATUS (reply).
    pub status: u32,
}

// nouveau rm/r535/nvrm/alloc.h (used unchanged by its r570 path); g_rpc-structures.h.
const _: () = assert!(size_of::<rpc_free_v03_00>() == 16);
const _: () = assert!(offset_of!(rpc_free_v03_00, hRoot) == 0);
const _: () = assert!(offset_of!(rpc_free_v03_00, hObjectParent) == 4);
const _: () = assert!(offset_of!(rpc_free_v03_00, hObjectOld) == 8);
const _: () = assert!(offset_of!(rpc_free_v03_00, status) == 12);

/// `rpc_post_event_v17_00`. `eventData[]` starts at [`POST_EVENT_DATA_OFFSET`] (29), inside C's
/// trailing padding, so the last three bytes here are its first bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct rpc_post_event_v17_00 {
    /// Client the event belongs to.
    pub hClient: u32,
    /// Event object handle.
    pub hEvent: u32,
    /// Notifier index.
    pub notifyIndex: u32,
    /// Event data word.
    pub data: u32,
    /// 16-bit info.
    pub info16: u16,
    /// Explicit padding.
    pub _pad0: [u8; 2],
    /// Status.
    pub status: u32,
    /// Bytes of `eventData` that follow.
    pub eventDataSize: u32,
    /// Whether to notify the whole list.
    pub bNotifyList: u8,
    /// First three bytes of `eventData[]` (C's trailing padding of the fixed part).
    pub eventDataHead: [u8; 3],
}

// nouveau rm/r535/nvrm/event.h (used unchanged by its r570 path).
const _: () = assert!(size_of::<rpc_post_event_v17_00>() == 32);
const _: () = assert!(offset_of!(rpc_post_event_v17_00, hClient) == 0);
const _: () = assert!(offset_of!(rpc_post_event_v17_00, hEvent) == 4);
const _: () = assert!(offset_of!(rpc_post_event_v17_00, notifyIndex) == 8);
const _: () = assert!(offset_of!(rpc_post_event_v17_00, data) == 12);
const _: () = assert!(offset_of!(rpc_post_event_v17_00, info16) == 16);
const _: () = assert!(offset_of!(rpc_post_event_v17_00, status) == 20);
const _: () = assert!(offset_of!(rpc_post_event_v17_00, eventDataSize) == 24);
const _: () = assert!(offset_of!(rpc_post_event_v17_00, bNotifyList) == 28);

/// `offsetof(rpc_post_event_v17_00, eventData)`.
pub const POST_EVENT_DATA_OFFSET: usize = 29;

/// `rpc_rc_triggered_v17_02` (570.144 layout), followed by `rcJournalBufferSize` bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct rpc_rc_triggered_v17_02 {
    /// Engine (NV2080_ENGINE_TYPE_*).
    pub nv2080EngineType: u32,
    /// Channel id.
    pub chid: u32,
    /// GPU function id.
    pub gfid: u32,
    /// Exception level.
    pub exceptLevel: u32,
    /// Exception type (ROBUST_CHANNEL_* error number).
    pub exceptType: u32,
    /// Scope.
    pub scope: u32,
    /// Partition attribution.
    pub partitionAttributionId: u16,
    /// Explicit padding.
    pub _pad0: [u8; 2],
    /// Faulting address, low word.
    pub mmuFaultAddrLo: u32,
    /// Faulting address, high word.
    pub mmuFaultAddrHi: u32,
    /// Fault type.
    pub mmuFaultType: u32,
    /// Whether a callback is needed.
    pub bCallbackNeeded: u8,
    /// Explicit padding.
    pub _pad1: [u8; 3],
    /// Bytes of RC journal that follow.
    pub rcJournalBufferSize: u32,
}

// nouveau rm/r570/nvrm/fifo.h ("Excerpt of RM headers ... tree/570.144").
const _: () = assert!(size_of::<rpc_rc_triggered_v17_02>() == 48);
const _: () = assert!(offset_of!(rpc_rc_triggered_v17_02, chid) == 4);
const _: () = assert!(offset_of!(rpc_rc_triggered_v17_02, exceptType) == 16);
const _: () = assert!(offset_of!(rpc_rc_triggered_v17_02, partitionAttributionId) == 24);
const _: () = assert!(offset_of!(rpc_rc_triggered_v17_02, mmuFaultAddrLo) == 28);
const _: () = assert!(offset_of!(rpc_rc_triggered_v17_02, mmuFaultType) == 36);
const _: () = assert!(offset_of!(rpc_rc_triggered_v17_02, bCallbackNeeded) == 40);
const _: () = assert!(offset_of!(rpc_rc_triggered_v17_02, rcJournalBufferSize) == 44);

/// `rpc_os_error_log_v17_00` (570.144 layout: with `preemptiveRemovalPreviousXid`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct rpc_os_error_log_v17_00 {
    /// Exception type (Xid).
    pub exceptType: u32,
    /// Runlist.
    pub runlistId: u32,
    /// Channel id.
    pub chid: u32,
    /// NUL-terminated message.
    pub errString: [u8; 0x100],
    /// Previous Xid before a preemptive removal.
    pub preemptiveRemovalPreviousXid: u32,
}

// nouveau rm/r570/nvrm/gsp.h (570.144 excerpt).
const _: () = assert!(size_of::<rpc_os_error_log_v17_00>() == 272);
const _: () = assert!(offset_of!(rpc_os_error_log_v17_00, chid) == 8);
const _: () = assert!(offset_of!(rpc_os_error_log_v17_00, errString) == 12);
const _: () = assert!(offset_of!(rpc_os_error_log_v17_00, preemptiveRemovalPreviousXid) == 268);

/// `rpc_ucode_libos_print_v1E_08`, followed by `libosPrintBufSize` bytes of log.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct rpc_ucode_libos_print_v1E_08 {
    /// Engine descriptor: class id 31:8, instance 7:0.
    pub ucodeEngDesc: u32,
    /// Bytes of print buffer that follow.
    pub libosPrintBufSize: u32,
}

// nouveau r535 gsp.c `struct rpc_ucode_libos_print_v1e_08`; OpenRM kernel_gsp.c `_kgspRpcUcodeLibosPrint`.
const _: () = assert!(size_of::<rpc_ucode_libos_print_v1E_08>() == 8);
const _: () = assert!(offset_of!(rpc_ucode_libos_print_v1E_08, libosPrintBufSize) == 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_round_trips_and_unknown_is_refused() {
        for v in (0..0x1100u32).chain([u32::MAX]) {
            match MsgFunction::try_from(v) {
                Ok(f) => assert_eq!(u32::from(f), v),
                Err(UnknownFunction(u)) => assert_eq!(u, v),
            }
        }
        assert_eq!(MsgFunction::try_from(72), Ok(MsgFunction::GspSetSystemInfo));
        assert_eq!(MsgFunction::try_from(5), Err(UnknownFunction(5)));
        assert!(MsgFunction::GspInitDone.is_event() && !MsgFunction::Free.is_event());
    }

    /// Golden bytes of the fixed RM alloc/control/free headers.
    #[test]
    fn rm_headers_golden_bytes() {
        let a = rpc_gsp_rm_alloc_v03_00 {
            hClient: 0xc1d0_0001,
            hParent: 0x2,
            hObject: 0x3,
            hClass: 0x0080,
            status: 0,
            paramsSize: 0x38,
            flags: 0,
            reserved: [0; 4],
        };
        assert_eq!(
            a.as_bytes(),
            &[
                1, 0, 0xd0, 0xc1, 2, 0, 0, 0, 3, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x38, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        let c = rpc_gsp_rm_control_v03_00 {
            hClient: 1,
            hObject: 2,
            cmd: 0x2080_0123,
            status: 0,
            paramsSize: 8,
            flags: 0,
        };
        assert_eq!(
            c.as_bytes(),
            &[1, 0, 0, 0, 2, 0, 0, 0, 0x23, 0x01, 0x80, 0x20, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]
        );
        let f = rpc_free_v03_00 {
            hRoot: 1,
            hObjectParent: 0,
            hObjectOld: 7,
            status: 0,
        };
        assert_eq!(
            f.as_bytes(),
            &[1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]
        );
    }
}
