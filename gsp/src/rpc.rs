//! RPC codec: rpc_message_header_v03_00, typed payloads, reply matching, event dispatch.
//!
//! Commands are [`CommandToGsp`] types sent through the command queue ([`crate::cmdq`]):
//! [`SetSystemInfo`], [`SetRegistry`], [`GetGspStaticInfo`], [`RmAlloc`], [`RmControl`],
//! [`RmFree`]. [`Rpc`] owns both queue ends and the receive buffer, numbers every command with an
//! RPC-level `sequence`, and matches a reply to its command by function *and* sequence (OpenRM
//! `kernel_gsp.c` `_kgspRpcDrainOneEvent`: `function == expectedFunc && sequence ==
//! expectedSequence`; GSP-RM answers in the command's own header). Everything else that arrives
//! meanwhile — events, stale replies of an earlier command that timed out, unknown functions —
//! is decoded ([`Event::parse`], every length checked) and handed to an [`EventSink`], never
//! dropped. A reply that does not fit one message arrives as the reply plus
//! `CONTINUATION_RECORD`s, which [`Rpc::call`] reassembles up to the length the caller expects
//! (nouveau `r535_gsp_msgq_recv`).
//!
//! What the firmware checks of `sequence` is UNVERIFIED (reference section 7): nouveau sends 0
//! for the two boot commands and a counter for the rest, nova always 0. Here every command gets
//! the next value of one counter from 0, which satisfies either reading and makes replies
//! unambiguous.
use crate::cmdq::{
    CommandToGsp, PayloadWriter, QueueError, Received, Rx, Tx, TxSignal, GSP_PAGE_SIZE, MAX_PAYLOAD,
};
use crate::fw::current::registry::{
    PACKED_REGISTRY_ENTRY, PACKED_REGISTRY_TABLE, REGISTRY_TABLE_ENTRY_TYPE_DWORD,
};
use crate::fw::current::rpc::{
    rpc_free_v03_00, rpc_gsp_rm_alloc_v03_00, rpc_gsp_rm_control_v03_00, rpc_message_header_v03_00,
    rpc_os_error_log_v17_00, rpc_post_event_v17_00, rpc_rc_triggered_v17_02,
    rpc_ucode_libos_print_v1E_08, MsgFunction, NV_OK, POST_EVENT_DATA_OFFSET,
};
use crate::fw::current::sequencer::rpc_run_cpu_sequencer_v17_00;
use crate::fw::current::static_info::GspStaticConfigInfo;
use crate::fw::current::sysinfo::{
    GspSystemInfo, NV_PCI_CONFIG_MIRROR_BASE, NV_PCI_CONFIG_MIRROR_SIZE,
};
use crate::regs::{Mmio, NV_PGSP_QUEUE_HEAD};
use core::mem::size_of;
use pd_core::trace::{TraceEvent, TraceRing};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Time, for every timeout and delay of the driver side (the PD implements it over
/// `Kernel::now_ns` and a short spin; tests and the model over a fake that lets the peer run).
pub trait Clock {
    /// Monotonic time in nanoseconds.
    fn now_ns(&mut self) -> u64;
    /// Wait about `us` microseconds. May return early; callers always re-check the clock.
    fn delay_us(&mut self, us: u32);
}

/// TIMEOUT: 4 s for a reply, as nouveau's `r535_gsp_msg_recv` (4,000,000 polls of >= 1 us) and
/// OpenRM's default RPC timeout; GSP-RM answers in microseconds when healthy.
pub const REPLY_TIMEOUT_NS: u64 = 4_000_000_000;
/// TIMEOUT: 1 s for ring space, as OpenRM `GspMsgQueueSendCommand` and nova `ALLOCATE_TIMEOUT`.
pub const SEND_TIMEOUT_NS: u64 = 1_000_000_000;
/// TIMEOUT: how long a reply may still take once the queue rejected a message while the reply was
/// awaited (a corrupt message from the firmware: its header cannot be trusted, so it may have
/// been the reply). GSP-RM answers in microseconds and in order; 50 ms is far above that even on
/// a loaded host, and far below [`REPLY_TIMEOUT_NS`], which would outlast any caller's patience
/// (the PD's own watchdog) for a reply that will never come.
pub const LOST_REPLY_NS: u64 = 50_000_000;
/// How long to wait between looks at an empty queue.
const POLL_US: u32 = 10;

/// Why an RPC failed. Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RpcError {
    /// The queues failed (bad pointer, full ring, doorbell): see the [`QueueError`].
    Queue(QueueError) = 1,
    /// No reply (or awaited event) arrived in time.
    Timeout = 2,
    /// GSP-RM answered with this NV_STATUS (`rpc_result`, or the RM status inside the reply).
    Failed {
        /// The NV_STATUS.
        status: u32,
    } = 3,
    /// The reply was shorter than its payload structure or announced lengths.
    BadReply = 4,
    /// Parameters do not fit the command (over 4 GiB, or larger than the caller's buffer).
    ParamsTooLarge = 5,
    /// A multi-message reply was interrupted by another message.
    BrokenContinuation = 6,
    /// An event's payload is shorter than its structure or announced lengths.
    BadEvent = 7,
    /// The queue rejected a message while the reply was awaited, and no reply followed within
    /// [`LOST_REPLY_NS`]: the rejected message was the reply (the command may or may not have
    /// taken effect).
    ReplyLost = 8,
}

impl From<QueueError> for RpcError {
    fn from(e: QueueError) -> Self {
        Self::Queue(e)
    }
}

/// An RPC-layer event worth keeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcTrace {
    /// A message was rejected by the queue and skipped.
    Skipped(QueueError),
    /// A message that is neither the awaited reply nor an event (e.g. a late reply).
    Unexpected {
        /// Its function.
        function: u32,
        /// Its sequence.
        sequence: u32,
    },
    /// An event's payload did not parse.
    BadEvent {
        /// Its function.
        function: u32,
    },
    /// A reply did not arrive in time.
    Timeout {
        /// The awaited function.
        function: u32,
    },
    /// GSP-RM failed a command.
    Failed {
        /// The function.
        function: u32,
        /// The NV_STATUS.
        status: u32,
    },
}

impl TraceEvent for RpcTrace {
    const KINDS: usize = 5;

    fn kind(&self) -> usize {
        match self {
            Self::Skipped(_) => 0,
            Self::Unexpected { .. } => 1,
            Self::BadEvent { .. } => 2,
            Self::Timeout { .. } => 3,
            Self::Failed { .. } => 4,
        }
    }

    fn kind_name(kind: usize) -> &'static str {
        ["Skipped", "Unexpected", "BadEvent", "Timeout", "Failed"]
            .get(kind)
            .copied()
            .unwrap_or("?")
    }
}

/// What the PCI side knows about the GPU, for [`system_info`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SystemInfoParams {
    /// BAR0 physical address.
    pub bar0: u64,
    /// BAR1 physical address.
    pub bar1: u64,
    /// BAR3 physical address.
    pub bar3: u64,
    /// PCI bus << 8 | devfn (Linux `pci_dev_id`, no domain).
    pub bus_devfn: u16,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Subsystem vendor id.
    pub subsystem_vendor: u16,
    /// Subsystem device id.
    pub subsystem_device: u16,
    /// Revision id.
    pub revision: u8,
}

/// The `GspSystemInfo` nova-core sends (`gsp/fw/commands.rs`): BARs, PCI ids, the config mirror,
/// maxUserVa = 2^47 - 4096; everything else zero.
pub fn system_info(p: &SystemInfoParams) -> GspSystemInfo {
    let mut s = GspSystemInfo::new_zeroed();
    s.gpuPhysAddr = p.bar0;
    s.gpuPhysFbAddr = p.bar1;
    s.gpuPhysInstAddr = p.bar3;
    s.nvDomainBusDeviceFunc = u64::from(p.bus_devfn);
    s.maxUserVa = (1 << 47) - 4096;
    s.pciConfigMirrorBase = NV_PCI_CONFIG_MIRROR_BASE;
    s.pciConfigMirrorSize = NV_PCI_CONFIG_MIRROR_SIZE;
    s.PCIDeviceID = u32::from(p.device) << 16 | u32::from(p.vendor);
    s.PCISubDeviceID = u32::from(p.subsystem_device) << 16 | u32::from(p.subsystem_vendor);
    s.PCIRevisionID = u32::from(p.revision);
    s
}

/// GSP_SET_SYSTEM_INFO.
#[derive(Clone, Copy, Debug)]
pub struct SetSystemInfo(pub GspSystemInfo);

impl CommandToGsp for SetSystemInfo {
    const FUNCTION: MsgFunction = MsgFunction::GspSetSystemInfo;
    type Command = GspSystemInfo;

    fn init(&self) -> GspSystemInfo {
        self.0
    }
}

/// One DWORD registry entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryEntry {
    /// Key (ASCII, no NUL).
    pub name: &'static str,
    /// Value.
    pub value: u32,
}

/// The entries nova-core sends (reference section 1).
pub const NOVA_REGISTRY: [RegistryEntry; 3] = [
    RegistryEntry {
        name: "RMSecBusResetEnable",
        value: 1,
    },
    RegistryEntry {
        name: "RMForcePcieConfigSave",
        value: 1,
    },
    RegistryEntry {
        name: "RMDevidCheckIgnore",
        value: 1,
    },
];

/// How `PACKED_REGISTRY_TABLE` counts `size` and fills DWORD `length`, which differ between the
/// drivers; which the GSP checks is UNVERIFIED (reference section 7).
///
/// The default is [`RegistryConvention::OpenRm`]: GSP-RM is built from the same OpenRM tree as
/// the CPU-RM that writes the table this way (`size` = whole table including the 8-byte header,
/// DWORD `length` = 4), so it is the layout the firmware's own unpacker was written against;
/// nouveau uses it too. nova-core's convention boots as well, which suggests the firmware is
/// lenient, so the switch exists to follow nova if that ever proves otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RegistryConvention {
    /// OpenRM and nouveau: `size` counts header + entries + names; DWORD `length` = 4.
    #[default]
    OpenRm,
    /// nova-core: `size` counts entries + names only; DWORD `length` = 0.
    Nova,
}

/// SET_REGISTRY with DWORD entries.
#[derive(Clone, Copy, Debug)]
pub struct SetRegistry<'e> {
    /// The entries.
    pub entries: &'e [RegistryEntry],
    /// Size/length convention.
    pub convention: RegistryConvention,
}

impl SetRegistry<'_> {
    fn names_len(&self) -> usize {
        self.entries.iter().map(|e| e.name.len() + 1).sum()
    }
}

impl CommandToGsp for SetRegistry<'_> {
    const FUNCTION: MsgFunction = MsgFunction::SetRegistry;
    type Command = PACKED_REGISTRY_TABLE;

    fn init(&self) -> PACKED_REGISTRY_TABLE {
        let body = self.variable_payload_len();
        let size = match self.convention {
            RegistryConvention::OpenRm => body + size_of::<PACKED_REGISTRY_TABLE>(),
            RegistryConvention::Nova => body,
        };
        // CAST: a handful of entries; far below u32::MAX (the command is refused above 4 GiB).
        PACKED_REGISTRY_TABLE {
            size: size as u32,
            numEntries: self.entries.len() as u32,
        }
    }

    fn variable_payload_len(&self) -> usize {
        self.entries.len() * size_of::<PACKED_REGISTRY_ENTRY>() + self.names_len()
    }

    fn init_variable_payload(&self, dst: &mut PayloadWriter<'_>) -> Result<(), QueueError> {
        let length = match self.convention {
            RegistryConvention::OpenRm => 4,
            RegistryConvention::Nova => 0,
        };
        let mut name_at = size_of::<PACKED_REGISTRY_TABLE>()
            + self.entries.len() * size_of::<PACKED_REGISTRY_ENTRY>();
        for e in self.entries {
            let entry = PACKED_REGISTRY_ENTRY {
                // CAST: bounded by the payload length, checked to fit u32 by the queue.
                nameOffset: name_at as u32,
                type_: REGISTRY_TABLE_ENTRY_TYPE_DWORD,
                _pad: [0; 3],
                data: e.value,
                length,
            };
            dst.write_value(&entry)?;
            name_at += e.name.len() + 1;
        }
        for e in self.entries {
            dst.write(e.name.as_bytes())?;
            dst.write(&[0])?;
        }
        Ok(())
    }
}

/// GET_GSP_STATIC_INFO: the request is a zero-filled `GspStaticConfigInfo`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GetGspStaticInfo;

impl CommandToGsp for GetGspStaticInfo {
    const FUNCTION: MsgFunction = MsgFunction::GetGspStaticInfo;
    type Command = GspStaticConfigInfo;

    fn init(&self) -> GspStaticConfigInfo {
        GspStaticConfigInfo::new_zeroed()
    }
}

/// GSP_RM_ALLOC: allocate RM object `h_object` of class `h_class` under `h_parent`.
#[derive(Clone, Copy, Debug)]
pub struct RmAlloc<'p> {
    /// Client handle.
    pub h_client: u32,
    /// Parent handle.
    pub h_parent: u32,
    /// New object handle.
    pub h_object: u32,
    /// Class.
    pub h_class: u32,
    /// Allocation flags.
    pub flags: u32,
    /// Class parameters.
    pub params: &'p [u8],
}

impl CommandToGsp for RmAlloc<'_> {
    const FUNCTION: MsgFunction = MsgFunction::GspRmAlloc;
    type Command = rpc_gsp_rm_alloc_v03_00;

    fn init(&self) -> rpc_gsp_rm_alloc_v03_00 {
        rpc_gsp_rm_alloc_v03_00 {
            hClient: self.h_client,
            hParent: self.h_parent,
            hObject: self.h_object,
            hClass: self.h_class,
            status: 0,
            // CAST: the Rpc checks params fit u32 before sending.
            paramsSize: self.params.len() as u32,
            flags: self.flags,
            reserved: [0; 4],
        }
    }

    fn variable_payload_len(&self) -> usize {
        self.params.len()
    }

    fn init_variable_payload(&self, dst: &mut PayloadWriter<'_>) -> Result<(), QueueError> {
        dst.write(self.params)
    }
}

/// GSP_RM_CONTROL: control `cmd` on object `h_object`.
#[derive(Clone, Copy, Debug)]
pub struct RmControl<'p> {
    /// Client handle.
    pub h_client: u32,
    /// Object handle.
    pub h_object: u32,
    /// Control command.
    pub cmd: u32,
    /// Control flags.
    pub flags: u32,
    /// Parameters.
    pub params: &'p [u8],
}

impl CommandToGsp for RmControl<'_> {
    const FUNCTION: MsgFunction = MsgFunction::GspRmControl;
    type Command = rpc_gsp_rm_control_v03_00;

    fn init(&self) -> rpc_gsp_rm_control_v03_00 {
        rpc_gsp_rm_control_v03_00 {
            hClient: self.h_client,
            hObject: self.h_object,
            cmd: self.cmd,
            status: 0,
            // CAST: the Rpc checks params fit u32 before sending.
            paramsSize: self.params.len() as u32,
            flags: self.flags,
        }
    }

    fn variable_payload_len(&self) -> usize {
        self.params.len()
    }

    fn init_variable_payload(&self, dst: &mut PayloadWriter<'_>) -> Result<(), QueueError> {
        dst.write(self.params)
    }
}

/// FREE: free RM object `h_object` of client `h_client`.
#[derive(Clone, Copy, Debug)]
pub struct RmFree {
    /// Client handle.
    pub h_client: u32,
    /// Parent handle (nouveau sends 0).
    pub h_parent: u32,
    /// The object.
    pub h_object: u32,
}

impl CommandToGsp for RmFree {
    const FUNCTION: MsgFunction = MsgFunction::Free;
    type Command = rpc_free_v03_00;

    fn init(&self) -> rpc_free_v03_00 {
        rpc_free_v03_00 {
            hRoot: self.h_client,
            hObjectParent: self.h_parent,
            hObjectOld: self.h_object,
            status: 0,
        }
    }
}

/// An RM command whose reply echoes its fixed part, with GSP-RM's status filled in.
pub trait RmCommand: CommandToGsp<Command: FromBytes> {
    /// The RM status in the reply's fixed part.
    fn status(reply: &Self::Command) -> u32;
}

impl RmCommand for RmAlloc<'_> {
    fn status(reply: &rpc_gsp_rm_alloc_v03_00) -> u32 {
        reply.status
    }
}

impl RmCommand for RmControl<'_> {
    fn status(reply: &rpc_gsp_rm_control_v03_00) -> u32 {
        reply.status
    }
}

impl RmCommand for RmFree {
    fn status(reply: &rpc_free_v03_00) -> u32 {
        reply.status
    }
}

/// A decoded message that is not the reply being waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// GSP_INIT_DONE: GSP-RM is up.
    InitDone,
    /// GSP_RUN_CPU_SEQUENCER: the whole payload (header + command buffer), for
    /// [`crate::sequencer::run`].
    RunCpuSequencer(&'a [u8]),
    /// POST_EVENT.
    PostEvent {
        /// The fixed part.
        header: rpc_post_event_v17_00,
        /// `eventData[eventDataSize]`.
        data: &'a [u8],
    },
    /// RC_TRIGGERED: a channel hit a robust-channel error.
    RcTriggered {
        /// The fixed part.
        header: rpc_rc_triggered_v17_02,
        /// `rcJournalBuffer[rcJournalBufferSize]`.
        journal: &'a [u8],
    },
    /// MMU_FAULT_QUEUED: a fault is waiting in the fault buffer.
    MmuFaultQueued,
    /// OS_ERROR_LOG: GSP-RM reports an error (Xid).
    OsErrorLog {
        /// Exception type (Xid).
        except_type: u32,
        /// Runlist.
        runlist: u32,
        /// Channel.
        chid: u32,
        /// The message, up to its NUL.
        message: &'a [u8],
    },
    /// UCODE_LIBOS_PRINT: a log line from a LibOS ucode.
    LibosPrint {
        /// Engine descriptor.
        engine: u32,
        /// The text.
        text: &'a [u8],
    },
    /// GSP_LOCKDOWN_NOTICE.
    LockdownNotice,
    /// GSP_POST_NOCAT_RECORD (payload not interpreted).
    NocatRecord(&'a [u8]),
    /// A non-event message nobody waited for (typically the reply of a command that timed out).
    Unexpected {
        /// The RPC header.
        rpc: rpc_message_header_v03_00,
    },
}

impl<'a> Event<'a> {
    /// Decode the message with RPC header `rpc` and payload `payload`.
    ///
    /// # Errors
    /// [`RpcError::BadEvent`] when the payload is shorter than the event's structure or than the
    /// variable part it announces.
    pub fn parse(rpc: &rpc_message_header_v03_00, payload: &'a [u8]) -> Result<Self, RpcError> {
        let Ok(function) = MsgFunction::try_from(rpc.function) else {
            return Ok(Self::Unexpected { rpc: *rpc });
        };
        Ok(match function {
            MsgFunction::GspInitDone => Self::InitDone,
            MsgFunction::GspRunCpuSequencer => {
                if payload.len() < size_of::<rpc_run_cpu_sequencer_v17_00>() {
                    return Err(RpcError::BadEvent);
                }
                Self::RunCpuSequencer(payload)
            }
            MsgFunction::PostEvent => {
                // eventData starts at 29, inside C's padding of the fixed part.
                let header = read_prefix::<rpc_post_event_v17_00>(payload, POST_EVENT_DATA_OFFSET)?;
                let data = tail(payload, POST_EVENT_DATA_OFFSET, header.eventDataSize)?;
                Self::PostEvent { header, data }
            }
            MsgFunction::RcTriggered => {
                let n = size_of::<rpc_rc_triggered_v17_02>();
                let header = read_prefix::<rpc_rc_triggered_v17_02>(payload, n)?;
                let journal = tail(payload, n, header.rcJournalBufferSize)?;
                Self::RcTriggered { header, journal }
            }
            MsgFunction::MmuFaultQueued => Self::MmuFaultQueued,
            MsgFunction::OsErrorLog => {
                // The 570.144 struct ends with preemptiveRemovalPreviousXid; accept the string's
                // end as the minimum (older layouts end there).
                let min =
                    core::mem::offset_of!(rpc_os_error_log_v17_00, preemptiveRemovalPreviousXid);
                let log = read_prefix::<rpc_os_error_log_v17_00>(payload, min)?;
                let s = payload.get(12..min).unwrap_or(&[]);
                let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                Self::OsErrorLog {
                    except_type: log.exceptType,
                    runlist: log.runlistId,
                    chid: log.chid,
                    message: s.get(..end).unwrap_or(&[]),
                }
            }
            MsgFunction::UcodeLibosPrint => {
                let n = size_of::<rpc_ucode_libos_print_v1E_08>();
                let h = read_prefix::<rpc_ucode_libos_print_v1E_08>(payload, n)?;
                let text = tail(payload, n, h.libosPrintBufSize)?;
                Self::LibosPrint {
                    engine: h.ucodeEngDesc,
                    text,
                }
            }
            MsgFunction::GspLockdownNotice => Self::LockdownNotice,
            MsgFunction::GspPostNocatRecord => Self::NocatRecord(payload),
            _ => Self::Unexpected { rpc: *rpc },
        })
    }
}

/// Copy a `T` from the front of `payload`, which must hold at least `min` bytes; bytes of `T`
/// past the payload's end read as zero.
fn read_prefix<T: FromBytes + IntoBytes>(payload: &[u8], min: usize) -> Result<T, RpcError> {
    if payload.len() < min {
        return Err(RpcError::BadEvent);
    }
    let mut v = T::new_zeroed();
    let n = size_of::<T>().min(payload.len());
    if let (Some(dst), Some(src)) = (v.as_mut_bytes().get_mut(..n), payload.get(..n)) {
        dst.copy_from_slice(src);
    }
    Ok(v)
}

/// `len` bytes of `payload` from `at`, all of which must be present.
fn tail(payload: &[u8], at: usize, len: u32) -> Result<&[u8], RpcError> {
    let end = at.checked_add(len as usize).ok_or(RpcError::BadEvent)?;
    payload.get(at..end).ok_or(RpcError::BadEvent)
}

/// Where events go (the gsp server queues them for gpu-server, reports crashes, logs prints).
pub trait EventSink {
    /// One event (its slices borrow the receive buffer: copy what must outlive the call).
    fn event(&mut self, event: Event<'_>);
}

/// A reply, or an awaited event: its RPC header and its (reassembled) payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The RPC header of the first message.
    pub rpc: rpc_message_header_v03_00,
    /// The payload, continuation records appended.
    pub payload: &'a [u8],
}

/// The driver side of the RPC channel: both queue ends, the receive buffer, the sequence.
#[derive(Debug)]
pub struct Rpc<'b> {
    tx: Tx,
    rx: Rx,
    buf: &'b mut [u8],
    sequence: u32,
    trace: TraceRing<RpcTrace, 16, { RpcTrace::KINDS }>,
}

/// An [`Rpc`] set aside without its receive buffer ([`Rpc::park`]).
#[derive(Debug)]
pub struct ParkedRpc {
    tx: Tx,
    rx: Rx,
    sequence: u32,
    trace: TraceRing<RpcTrace, 16, { RpcTrace::KINDS }>,
}

impl ParkedRpc {
    /// The channel again, receiving into `buf` (the same size rules as [`Rpc::new`]); the
    /// sequence counter and trace carry on where [`Rpc::park`] left them.
    pub fn resume(self, buf: &mut [u8]) -> Rpc<'_> {
        Rpc {
            tx: self.tx,
            rx: self.rx,
            buf,
            sequence: self.sequence,
            trace: self.trace,
        }
    }
}

/// [`TxSignal`] for the driver: the doorbell is `NV_PGSP_QUEUE_HEAD(0)`, a full ring is polled
/// until [`SEND_TIMEOUT_NS`].
struct Doorbell<'h> {
    mmio: &'h mut dyn Mmio,
    clock: &'h mut dyn Clock,
    deadline: u64,
}

impl TxSignal for Doorbell<'_> {
    fn notify(&mut self) -> Result<(), QueueError> {
        NV_PGSP_QUEUE_HEAD::default()
            .write(self.mmio, 0)
            .map_err(|_| QueueError::Doorbell)
    }

    fn wait_for_space(&mut self) -> Result<(), QueueError> {
        if self.clock.now_ns() >= self.deadline {
            return Err(QueueError::Timeout);
        }
        self.clock.delay_us(POLL_US);
        Ok(())
    }
}

impl<'b> Rpc<'b> {
    /// The RPC channel over the driver's queue ends, receiving into `buf` (at least
    /// [`MAX_PAYLOAD`] bytes; more to accept replies split into continuation records).
    pub fn new(tx: Tx, rx: Rx, buf: &'b mut [u8]) -> Self {
        Self {
            tx,
            rx,
            buf,
            sequence: 0,
            trace: TraceRing::new(),
        }
    }

    /// Set the receive buffer aside and keep the rest (queue ends, sequence, trace): for a
    /// server whose receive buffer lives in the same struct as the channel (a PD handler owns
    /// both and cannot hold a borrow of itself). Nothing is pending in the buffer between calls:
    /// every call returns with its message consumed.
    pub fn park(self) -> ParkedRpc {
        ParkedRpc {
            tx: self.tx,
            rx: self.rx,
            sequence: self.sequence,
            trace: self.trace,
        }
    }

    /// The RPC trace ring.
    pub fn trace(&self) -> &TraceRing<RpcTrace, 16, { RpcTrace::KINDS }> {
        &self.trace
    }

    /// The command queue end (for its trace and pointers).
    pub fn tx(&self) -> &Tx {
        &self.tx
    }

    /// The status queue end (for its trace and pointers).
    pub fn rx(&self) -> &Rx {
        &self.rx
    }

    /// Send `cmd` without waiting for a reply (the boot commands, queued before the GSP runs).
    /// Returns the RPC sequence it carried.
    ///
    /// # Errors
    /// [`RpcError::ParamsTooLarge`]; [`RpcError::Queue`] when sending failed.
    pub fn post<C: CommandToGsp>(
        &mut self,
        cmd: &C,
        mmio: &mut dyn Mmio,
        clock: &mut dyn Clock,
    ) -> Result<u32, RpcError> {
        if u32::try_from(cmd.variable_payload_len()).is_err() {
            return Err(RpcError::ParamsTooLarge);
        }
        let sequence = self.sequence;
        let deadline = clock.now_ns().saturating_add(SEND_TIMEOUT_NS);
        let mut sig = Doorbell {
            mmio,
            clock,
            deadline,
        };
        self.tx.send(cmd, sequence, &mut sig)?;
        self.sequence = self.sequence.wrapping_add(1);
        Ok(sequence)
    }

    /// Send `cmd` and wait for its reply, dispatching everything else to `sink`. The reply's
    /// payload is reassembled from continuation records up to `expect_len` bytes.
    ///
    /// # Errors
    /// As [`Rpc::post`]; [`RpcError::Timeout`] when no reply came within [`REPLY_TIMEOUT_NS`];
    /// [`RpcError::Failed`] when `rpc_result` is not `NV_OK`; [`RpcError::BrokenContinuation`].
    pub fn call<C: CommandToGsp>(
        &mut self,
        cmd: &C,
        expect_len: usize,
        mmio: &mut dyn Mmio,
        clock: &mut dyn Clock,
        sink: &mut dyn EventSink,
    ) -> Result<Reply<'_>, RpcError> {
        let sequence = self.post(cmd, mmio, clock)?;
        let function = u32::from(C::FUNCTION);
        let deadline = clock.now_ns().saturating_add(REPLY_TIMEOUT_NS);
        let first = self.wait_until(function, deadline, clock, sink, |m| {
            m.rpc.function == function && m.rpc.sequence == sequence
        })?;
        let len = self.reassemble(first, expect_len, deadline, clock, sink)?;
        if first.rpc.rpc_result != NV_OK {
            let status = first.rpc.rpc_result;
            self.trace.record(RpcTrace::Failed { function, status });
            log::warn!("gsp: rpc {function} seq {sequence} failed: status {status:#x}");
            return Err(RpcError::Failed { status });
        }
        Ok(Reply {
            rpc: first.rpc,
            payload: self.buf.get(..len).unwrap_or(&[]),
        })
    }

    /// Wait for an event with one of `functions` (boot: RUN_CPU_SEQUENCER, INIT_DONE),
    /// dispatching everything else to `sink`; at most `timeout_ns`.
    ///
    /// # Errors
    /// [`RpcError::Timeout`]; [`RpcError::Queue`] for a broken queue.
    pub fn wait_event(
        &mut self,
        functions: &[MsgFunction],
        timeout_ns: u64,
        clock: &mut dyn Clock,
        sink: &mut dyn EventSink,
    ) -> Result<Reply<'_>, RpcError> {
        let deadline = clock.now_ns().saturating_add(timeout_ns);
        let awaited = functions.first().map_or(0, |&f| u32::from(f));
        let m = self.wait_until(awaited, deadline, clock, sink, |m| {
            functions.iter().any(|&f| u32::from(f) == m.rpc.function)
        })?;
        Ok(Reply {
            rpc: m.rpc,
            payload: self.buf.get(..m.len).unwrap_or(&[]),
        })
    }

    /// Dispatch every message already queued (the SWGEN0 interrupt handler). Returns how many
    /// were dispatched.
    ///
    /// # Errors
    /// [`RpcError::Queue`] for a broken queue (skipped messages are only traced).
    pub fn poll(&mut self, sink: &mut dyn EventSink) -> Result<usize, RpcError> {
        let mut n = 0;
        // Bounded: each round consumes at least one entry of what was published when we began.
        for _ in 0..crate::cmdq::MSG_COUNT {
            match self.rx.try_receive(self.buf) {
                Ok(Some(m)) => {
                    self.dispatch(&m, sink);
                    n += 1;
                }
                Ok(None) => break,
                Err(e) if e.is_skipped_message() => self.trace.record(RpcTrace::Skipped(e)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// GET_GSP_STATIC_INFO.
    ///
    /// # Errors
    /// As [`Rpc::call`]; [`RpcError::BadReply`] when the reply is shorter than the struct.
    pub fn get_static_info(
        &mut self,
        mmio: &mut dyn Mmio,
        clock: &mut dyn Clock,
        sink: &mut dyn EventSink,
    ) -> Result<GspStaticConfigInfo, RpcError> {
        let n = size_of::<GspStaticConfigInfo>();
        let r = self.call(&GetGspStaticInfo, n, mmio, clock, sink)?;
        GspStaticConfigInfo::read_from_prefix(r.payload)
            .map(|(s, _)| s)
            .map_err(|_| RpcError::BadReply)
    }

    /// An RM command (GSP_RM_ALLOC, GSP_RM_CONTROL, FREE): send it, wait for the reply, check
    /// the RM status in the reply's fixed part, and copy the parameters GSP-RM returns back into
    /// `params` (which must be as long as the command's parameters).
    ///
    /// # Errors
    /// As [`Rpc::call`]; [`RpcError::Failed`] with the RM status; [`RpcError::BadReply`] for a
    /// reply shorter than its fixed part plus `params`.
    pub fn rm<C: RmCommand>(
        &mut self,
        cmd: &C,
        params: &mut [u8],
        mmio: &mut dyn Mmio,
        clock: &mut dyn Clock,
        sink: &mut dyn EventSink,
    ) -> Result<(), RpcError> {
        let expect = size_of::<C::Command>().saturating_add(cmd.variable_payload_len());
        let r = self.call(cmd, expect, mmio, clock, sink)?;
        let (h, rest) = C::Command::read_from_prefix(r.payload).map_err(|_| RpcError::BadReply)?;
        rm_result(C::status(&h), rest, params)
    }

    /// Receive until a message satisfies `want` (returned, payload at the front of the buffer);
    /// everything else is dispatched.
    fn wait_until(
        &mut self,
        awaited: u32,
        deadline: u64,
        clock: &mut dyn Clock,
        sink: &mut dyn EventSink,
        want: impl Fn(&Received) -> bool,
    ) -> Result<Received, RpcError> {
        let mut deadline = deadline;
        let mut rejected = false;
        loop {
            match self.rx.try_receive(self.buf) {
                Ok(Some(m)) if want(&m) => return Ok(m),
                Ok(Some(m)) => self.dispatch(&m, sink),
                Ok(None) => {
                    if clock.now_ns() >= deadline {
                        return Err(if rejected {
                            self.reply_lost(awaited)
                        } else {
                            self.timed_out(awaited)
                        });
                    }
                    clock.delay_us(POLL_US);
                }
                Err(e) if e.is_skipped_message() => {
                    self.trace.record(RpcTrace::Skipped(e));
                    // The rejected message may have been the awaited one: a reply still on its
                    // way comes soon, else it was this one and waiting longer wedges the caller.
                    rejected = true;
                    deadline = deadline.min(clock.now_ns().saturating_add(LOST_REPLY_NS));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn reply_lost(&mut self, function: u32) -> RpcError {
        self.trace.record(RpcTrace::Timeout { function });
        log::error!(
            "gsp: message {function:#x} lost: the queue rejected a message while it was awaited \
             and none followed"
        );
        RpcError::ReplyLost
    }

    fn timed_out(&mut self, function: u32) -> RpcError {
        self.trace.record(RpcTrace::Timeout { function });
        log::error!("gsp: no message {function:#x} from the GSP in time");
        RpcError::Timeout
    }

    /// Append the continuation records that follow `first` while the payload is short of
    /// `expect_len` and the last part was a full message. Returns the payload length.
    fn reassemble(
        &mut self,
        first: Received,
        expect_len: usize,
        deadline: u64,
        clock: &mut dyn Clock,
        sink: &mut dyn EventSink,
    ) -> Result<usize, RpcError> {
        let mut len = first.len;
        let mut last = first.len;
        while len < expect_len && last == MAX_PAYLOAD {
            let Some(dst) = self.buf.get_mut(len..) else {
                return Err(RpcError::ParamsTooLarge);
            };
            match self.rx.try_receive(dst) {
                Ok(Some(m)) if m.rpc.function == u32::from(MsgFunction::ContinuationRecord) => {
                    len += m.len;
                    last = m.len;
                }
                Ok(Some(m)) => {
                    // Not lost: move it to the front and dispatch it, then fail the reply.
                    self.buf.copy_within(len..len + m.len, 0);
                    self.dispatch(&m, sink);
                    return Err(RpcError::BrokenContinuation);
                }
                Ok(None) if clock.now_ns() < deadline => clock.delay_us(POLL_US),
                Ok(None) => return Err(self.timed_out(first.rpc.function)),
                Err(QueueError::BufferTooSmall) => return Err(RpcError::ParamsTooLarge),
                Err(e) if e.is_skipped_message() => return Err(RpcError::BrokenContinuation),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(len)
    }

    /// Decode the message whose payload is at the front of the buffer and hand it to `sink`.
    fn dispatch(&mut self, m: &Received, sink: &mut dyn EventSink) {
        let payload = self.buf.get(..m.len).unwrap_or(&[]);
        match Event::parse(&m.rpc, payload) {
            Ok(ev) => {
                if let Event::Unexpected { rpc } = ev {
                    self.trace.record(RpcTrace::Unexpected {
                        function: rpc.function,
                        sequence: rpc.sequence,
                    });
                    log::warn!(
                        "gsp: unexpected message function {} sequence {} (passed on)",
                        rpc.function,
                        rpc.sequence
                    );
                }
                sink.event(ev);
            }
            Err(_) => {
                self.trace.record(RpcTrace::BadEvent {
                    function: m.rpc.function,
                });
                log::warn!(
                    "gsp: event {:#x} with a malformed payload dropped",
                    m.rpc.function
                );
            }
        }
    }
}

/// An RM status and the returned parameters: copy them back (they must cover `params`).
fn rm_result(status: u32, returned: &[u8], params: &mut [u8]) -> Result<(), RpcError> {
    let src = returned.get(..params.len()).ok_or(RpcError::BadReply)?;
    params.copy_from_slice(src);
    if status == NV_OK {
        Ok(())
    } else {
        Err(RpcError::Failed { status })
    }
}

/// Bytes of receive buffer needed to accept any single message.
pub const MIN_RX_BUFFER: usize = MAX_PAYLOAD;
const _: () = assert!(MIN_RX_BUFFER > GSP_PAGE_SIZE);
