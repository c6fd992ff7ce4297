//! GSP-RM's side of the message queues: receive commands on the command queue, answer on the
//! status queue, send events.
//!
//! The queue code is `gsp::cmdq`'s, from the firmware side (`Side::Gsp`: the status queue is our
//! Tx, the command queue our Rx), so both ends share one definition of every check. On top of it:
//! - commands split into `CONTINUATION_RECORD`s are reassembled into the caller's buffer (the
//!   total is known from the RM alloc/control headers' `paramsSize`). What RM will not use (the
//!   continuation records of a control it does not implement, or of a command too large for the
//!   buffer) is validated where it lies in the ring, as GSP-RM reads the ring over DMA: every
//!   byte read once, for the checksum, and copied nowhere. Whatever the model uses is the copy
//!   it checked;
//! - one RPC is handled at a time; its reply echoes the function and `sequence` and carries the
//!   result in `rpc_result` (RM alloc/control/free carry RM's status in their own `status` field,
//!   as OpenRM's `rpcRmApiControl_GSP` reads it);
//! - replies are sent a message at a time as the status queue has room, so a reply longer than
//!   the ring resumes on later register accesses (a driver waiting for it polls a register, as
//!   it would its interrupt); events are queued behind an unfinished reply, never interleaved
//!   with its continuation records;
//! - the fault knobs of [`crate::Fault`] patch or withhold messages here.
use crate::bar0::FalconRegs;
use crate::boot::{self, BootError, Phase};
use crate::fifo::ChannelError;
use crate::rm::{AllocRequest, Rm};
use crate::{Fault, GspModel, Trace, TraceLog};
use gsp::cmdq::{
    MessageMeta, QueueError, Received, Rx, SharedQueues, Side, Tx, TxSignal, ENTRY_OFFSET,
    GSP_PAGE_SIZE, MAX_ELEMENTS, MAX_PAYLOAD, PEEK_LEN, QUEUE_REGION_SIZE, STATQ_OFFSET,
};
use gsp::fw::current::registry::{PACKED_REGISTRY_ENTRY, PACKED_REGISTRY_TABLE};
use gsp::fw::current::rm::{
    NvStatus, RmClass, RmControl, NV0000_ALLOC_PARAMETERS, NV0080_ALLOC_PARAMETERS,
};
use gsp::fw::current::rpc::{
    rpc_free_v03_00, rpc_gsp_rm_alloc_v03_00, rpc_gsp_rm_control_v03_00, rpc_message_header_v03_00,
    rpc_os_error_log_v17_00, rpc_post_event_v17_00, rpc_rc_triggered_v17_02, MsgFunction, NV_OK,
};
use gsp::fw::current::sequencer::rpc_run_cpu_sequencer_v17_00;
use gsp::fw::current::static_info::GspStaticConfigInfo;
use gsp::fw::current::sysinfo::{
    GspSystemInfo, NV_PCI_CONFIG_MIRROR_BASE, NV_PCI_CONFIG_MIRROR_SIZE,
};
use gsp::mmu::VA_BITS;
use pd_core::shm::{ReadWrite, Region};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Internal RM handles reported in `GspStaticConfigInfo` (client, device, subdevice).
pub const INTERNAL_HANDLES: [u32; 3] = [0xc1e0_0001, 0xde1c_0001, 0x5d1c_0001];
/// Largest event payload the model queues.
const EVENT_MAX: usize = core::mem::size_of::<rpc_os_error_log_v17_00>();
/// Events held while the status queue is full or a reply is unfinished.
const PENDING_EVENTS: usize = 8;
/// An event number no firmware defines (the spurious-event knob sends it).
const BOGUS_EVENT: u32 = 0x10fe;

/// What of a command's payload the model copies out of the ring into its buffer. The rest is
/// checksummed where it lies (read once, as the GSP reads the ring over DMA) and dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    /// All of it.
    All,
    /// The first message only: the rest are parameters of a control RM does not implement,
    /// which it refuses from the fixed part without reading them (see [`unread_control`]).
    FirstMessage,
    /// Nothing after the first message: too large for the buffer; refused once complete.
    Nothing,
}

/// A command being reassembled from continuation records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Assembly {
    function: u32,
    sequence: u32,
    /// Payload bytes received so far (in the buffer when `keep` is [`Keep::All`]).
    got: usize,
    /// Payload bytes the command announced.
    expected: usize,
    /// What is copied out.
    keep: Keep,
}

/// A reply being sent a message at a time from the front of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Outgoing {
    function: u32,
    sequence: u32,
    result: u32,
    len: usize,
    sent: usize,
}

/// An event waiting for room.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PendingEvent {
    function: u32,
    payload: heapless::Vec<u8, EVENT_MAX>,
}

/// The firmware's ends of the message queues.
#[derive(Debug)]
pub struct Queues {
    tx: Tx,
    rx: Rx,
    ring: Region<ReadWrite>,
    boot_cmds: u8,
    assembly: Option<Assembly>,
    outgoing: Option<Outgoing>,
    pending: heapless::Deque<PendingEvent, PENDING_EVENTS>,
}

impl Queues {
    /// Whether a reply or events wait for room on the status queue.
    pub fn has_backlog(&self) -> bool {
        self.outgoing.is_some() || !self.pending.is_empty()
    }
}

/// SWGEN0 to the CPU after each message; a full status queue is never waited on (the caller
/// checked for room first).
struct Swgen0<'f>(&'f mut FalconRegs);

impl TxSignal for Swgen0<'_> {
    fn notify(&mut self) -> Result<(), QueueError> {
        self.0.irqstat |= 1 << 6;
        Ok(())
    }

    fn wait_for_space(&mut self) -> Result<(), QueueError> {
        Err(QueueError::Timeout)
    }
}

/// GSP-RM starts: validate the LibOS arguments, RMARGS and the queue region, publish the status
/// queue, link to the command queue, and create the internal RM client.
///
/// # Errors
/// The [`BootError`] of the first bad structure.
pub(crate) fn start(m: &mut GspModel<'_>) -> Result<Queues, BootError> {
    let rmargs = boot::check_libos(&m.mem, m.libos)?;
    let base = boot::check_rmargs(&m.mem, rmargs)?;
    boot::check_queue_region(&m.mem, base)?;
    let region = m
        .mem
        .sys
        .subregion(base, QUEUE_REGION_SIZE)
        .map_err(|_| BootError::Queues {
            what: "region not in one DMA window",
            value: base,
        })?;
    let ring = region.alias();
    let queues_err = |what| BootError::Queues { what, value: base };
    let shared = SharedQueues::new(region).map_err(|_| queues_err("region too small"))?;
    shared
        .init_gsp()
        .map_err(|_| queues_err("cannot initialise the status queue"))?;
    let (tx, mut rx) = shared
        .split(Side::Gsp)
        .map_err(|_| queues_err("cannot split the queues"))?;
    match rx.link() {
        Ok(true) => {}
        Ok(false) => {
            return Err(queues_err(
                "the command queue's tx header was never written",
            ))
        }
        Err(_) => {
            return Err(queues_err(
                "the command queue's tx header is not the shared layout",
            ))
        }
    }
    internal_client(&mut m.rm, &m.mem);
    Ok(Queues {
        tx,
        rx,
        ring,
        boot_cmds: 0,
        assembly: None,
        outgoing: None,
        pending: heapless::Deque::new(),
    })
}

/// The client GSP-RM allocates for itself, whose handles static info reports.
fn internal_client(rm: &mut Rm, mem: &crate::phys::Memory) {
    let [client, device, subdevice] = INTERNAL_HANDLES;
    let mut p = NV0000_ALLOC_PARAMETERS::new_zeroed();
    p.hClient = client;
    let dev = NV0080_ALLOC_PARAMETERS::new_zeroed();
    let steps: [(u32, u32, RmClass, &[u8]); 3] = [
        (0, client, RmClass::Nv01RootClient, p.as_bytes()),
        (client, device, RmClass::Nv01Device0, dev.as_bytes()),
        (device, subdevice, RmClass::Nv20Subdevice0, &[0; 4]),
    ];
    for (parent, object, class, params) in steps {
        let req = AllocRequest {
            client,
            parent,
            object,
            class: class.into(),
        };
        if let Err(s) = rm.alloc(req, params, mem) {
            log::error!("gsp_model: internal client object {object:#x} not created: {s:?}");
        }
    }
}

/// Everything a send needs, borrowed field by field from the model.
struct Outbox<'x> {
    q: &'x mut Queues,
    gsp: &'x mut FalconRegs,
    fault: &'x mut Fault,
    trace: &'x mut TraceLog,
}

impl Outbox<'_> {
    /// Room for one message of `len` payload bytes.
    fn has_room(&mut self, len: usize) -> bool {
        let need = gsp::cmdq::elements_for(
            core::mem::size_of::<gsp::fw::current::rpc::rpc_message_header_v03_00>() + len,
        );
        // CAST: need <= 16.
        matches!(self.q.tx.free_slots(), Ok(free) if free >= need as u32)
    }

    /// Send one message (payload at most [`MAX_PAYLOAD`]), applying a one-shot fault knob.
    fn send(&mut self, meta: MessageMeta, body: &[u8]) -> Result<(), QueueError> {
        if *self.fault == Fault::SpuriousEvents {
            *self.fault = Fault::None;
            self.trace.record(Trace::FaultInjected);
            let mut post = rpc_post_event_v17_00::new_zeroed();
            post.hClient = 0xdead_0001;
            post.hEvent = 0xbeef;
            self.send(
                MessageMeta::reply(MsgFunction::PostEvent.into(), 0, NV_OK),
                post.as_bytes(),
            )?;
            self.send(MessageMeta::reply(BOGUS_EVENT, 0, NV_OK), &[0; 8])?;
        }
        let slot = self.q.tx.write_ptr();
        self.q.tx.send_message(meta, body, &mut Swgen0(self.gsp))?;
        let patch: Option<fn(&mut [u32; 3])> = match *self.fault {
            Fault::CorruptChecksum => Some(|h| h[0] ^= 0x0bad_c0de),
            Fault::SkipSeqNum => Some(|h| {
                let d = h[1] ^ h[1].wrapping_add(1);
                h[1] ^= d;
                h[0] ^= d;
            }),
            Fault::OversizeElemCount => Some(|h| {
                let d = h[2] ^ (MAX_ELEMENTS + 1);
                h[2] ^= d;
                h[0] ^= d;
            }),
            _ => None,
        };
        if let Some(p) = patch {
            // checkSum @32, seqNum @36, elemCount @40 of GSP_MSG_QUEUE_ELEMENT; the checksum
            // folds hi32 ^ lo32, so changing either word by d changes it by d.
            // CAST: slot < 63.
            let at = STATQ_OFFSET + ENTRY_OFFSET + slot as usize * GSP_PAGE_SIZE + 32;
            if let Ok(mut h) = self.q.ring.read::<[u32; 3]>(at) {
                p(&mut h);
                let _ = self.q.ring.write(at, &h);
            }
            log::warn!(
                "gsp_model: fault knob {:?} applied to status-queue entry {slot}",
                self.fault
            );
            *self.fault = Fault::None;
            self.trace.record(Trace::FaultInjected);
        }
        Ok(())
    }

    /// Send an event now if possible, else queue it.
    fn event(&mut self, function: u32, payload: &[u8]) {
        if self.q.outgoing.is_none()
            && self.q.pending.is_empty()
            && self.has_room(payload.len())
            && self
                .send(MessageMeta::reply(function, 0, NV_OK), payload)
                .is_ok()
        {
            return;
        }
        let mut v = heapless::Vec::new();
        let queued = v.extend_from_slice(payload).is_ok()
            && self
                .q
                .pending
                .push_back(PendingEvent {
                    function,
                    payload: v,
                })
                .is_ok();
        if !queued {
            log::error!("gsp_model: event {function:#x} dropped: status queue backlog full");
            self.trace.record(Trace::EventDropped);
        }
    }
}

/// Borrow the model's fields for sending, with the buffer beside them.
macro_rules! outbox {
    ($m:expr) => {{
        let GspModel {
            queues,
            bar,
            fault,
            trace,
            buf,
            ..
        } = $m;
        queues.as_mut().map(|q| {
            (
                Outbox {
                    q,
                    gsp: &mut bar.gsp,
                    fault,
                    trace,
                },
                &mut **buf,
            )
        })
    }};
}

/// Send an event (queued behind an unfinished reply or a full queue).
fn send_event(m: &mut GspModel<'_>, function: MsgFunction, payload: &[u8]) {
    if let Some((mut o, _)) = outbox!(m) {
        o.event(function.into(), payload);
    }
}

/// GSP_INIT_DONE.
pub(crate) fn init_done(m: &mut GspModel<'_>) {
    send_event(m, MsgFunction::GspInitDone, &[]);
}

/// The crash knob: OS_ERROR_LOG, then HALT and SWGEN0 in the GSP's IRQSTAT, RISC-V stopped.
pub(crate) fn crash(m: &mut GspModel<'_>) {
    let mut log = rpc_os_error_log_v17_00::new_zeroed();
    let msg = b"gsp_model: injected GSP-RM crash (fault knob)";
    if let Some(dst) = log.errString.get_mut(..msg.len()) {
        dst.copy_from_slice(msg);
    }
    if let Some((mut o, _)) = outbox!(m) {
        // A crash does not wait for an unfinished reply.
        o.q.outgoing = None;
        if o.has_room(log.as_bytes().len()) {
            let _ = o.send(
                MessageMeta::reply(MsgFunction::OsErrorLog.into(), 0, NV_OK),
                log.as_bytes(),
            );
        }
    }
    m.trace.record(Trace::FaultInjected);
    m.bar.gsp.irqstat |= (1 << 4) | (1 << 6);
    m.bar.gsp.halted = true;
    m.bar.gsp.riscv_active = false;
}

/// A channel stopped: MMU_FAULT_QUEUED for a page fault, then RC_TRIGGERED with the Xid.
pub(crate) fn channel_error(m: &mut GspModel<'_>, chid: u32, engine: u32, e: ChannelError) {
    let mut rc = rpc_rc_triggered_v17_02::new_zeroed();
    rc.nv2080EngineType = engine;
    rc.chid = chid;
    rc.exceptType = e.xid();
    rc.bCallbackNeeded = 1;
    if let ChannelError::MmuFault {
        addr,
        write,
        reason,
    } = e
    {
        send_event(m, MsgFunction::MmuFaultQueued, &[]);
        // CAST: the two halves of the faulting address.
        (rc.mmuFaultAddrLo, rc.mmuFaultAddrHi) = (addr as u32, (addr >> 32) as u32);
        // CAST: a small enum index; the write bit marks the access type.
        rc.mmuFaultType = (reason as u32) | (u32::from(write) << 8);
    }
    send_event(m, MsgFunction::RcTriggered, rc.as_bytes());
}

/// Run the command queue: finish an unfinished reply, flush held events, then receive and answer
/// commands until the queue is empty or the status queue is full.
pub(crate) fn pump(m: &mut GspModel<'_>) {
    // Each round receives at least one message or returns; a ring holds at most 63.
    for _ in 0..=gsp::cmdq::MSG_COUNT {
        if !continue_reply(m) || !flush_events(m) {
            return;
        }
        if !matches!(m.phase, Phase::RmInit | Phase::Running) {
            return;
        }
        match receive(m) {
            Some(Some(reply)) => {
                if let Some(q) = m.queues.as_mut() {
                    q.outgoing = Some(reply);
                }
            }
            Some(None) => {}
            None => return,
        }
    }
}

/// Send what fits of the unfinished reply. Returns whether it is finished.
fn continue_reply(m: &mut GspModel<'_>) -> bool {
    let Some((mut o, buf)) = outbox!(m) else {
        return false;
    };
    let Some(mut out) = o.q.outgoing else {
        return true;
    };
    loop {
        let first = out.sent == 0;
        let n = (out.len - out.sent).min(MAX_PAYLOAD);
        if !first && n == 0 {
            o.q.outgoing = None;
            return true;
        }
        if !o.has_room(n) {
            o.q.outgoing = Some(out);
            o.trace.record(Trace::StatusQueueFull);
            return false;
        }
        let meta = if first {
            MessageMeta::reply(out.function, out.sequence, out.result)
        } else {
            MessageMeta::reply(MsgFunction::ContinuationRecord.into(), out.sequence, NV_OK)
        };
        let body = buf.get(out.sent..out.sent + n).unwrap_or_default();
        if let Err(e) = o.send(meta, body) {
            log::error!("gsp_model: reply {:#x} not sent: {e:?}", out.function);
            o.q.outgoing = None;
            return true;
        }
        out.sent += n;
        if out.sent >= out.len {
            o.q.outgoing = None;
            return true;
        }
    }
}

/// Send held events. Returns whether none is left.
fn flush_events(m: &mut GspModel<'_>) -> bool {
    let Some((mut o, _)) = outbox!(m) else {
        return false;
    };
    while let Some(ev) = o.q.pending.front() {
        let (function, payload) = (ev.function, ev.payload.clone());
        if !o.has_room(payload.len()) {
            return false;
        }
        if let Err(e) = o.send(MessageMeta::reply(function, 0, NV_OK), &payload) {
            log::error!("gsp_model: event {function:#x} not sent: {e:?}");
        }
        o.q.pending.pop_front();
    }
    true
}

/// Bytes a command announces in its own header (RM alloc/control carry `paramsSize`).
fn announced_len(function: u32, payload: &[u8]) -> usize {
    let with = |hdr: usize, at: usize| {
        let size = payload
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes);
        // CAST: u32 to usize is lossless on our targets.
        size.map_or(payload.len(), |s| hdr.saturating_add(s as usize))
    };
    match MsgFunction::try_from(function) {
        Ok(MsgFunction::GspRmAlloc) => with(core::mem::size_of::<rpc_gsp_rm_alloc_v03_00>(), 20),
        Ok(MsgFunction::GspRmControl) => {
            with(core::mem::size_of::<rpc_gsp_rm_control_v03_00>(), 16)
        }
        _ => payload.len(),
    }
}

/// The assembly a command starts with its first message (at the front of `buf`).
fn first_message(buf: &[u8], msg: &Received) -> Assembly {
    let function = msg.rpc.function;
    let payload = buf.get(..msg.len).unwrap_or_default();
    let expected = announced_len(function, payload);
    let keep = if unread_params(&msg.rpc, payload) {
        Keep::FirstMessage
    } else if expected > buf.len() {
        Keep::Nothing
    } else {
        Keep::All
    };
    Assembly {
        function,
        sequence: msg.rpc.sequence,
        got: msg.len,
        expected,
        keep,
    }
}

/// Whether the message with RPC header `rpc`, whose payload starts with `head` (at least the
/// fixed part), starts a GSP_RM_CONTROL of a command RM does not implement, whose parameters
/// continue in continuation records: RM never reads them, so the model copies only the fixed
/// part (see [`unread_control`]).
fn unread_params(rpc: &rpc_message_header_v03_00, head: &[u8]) -> bool {
    let len =
        (rpc.length as usize).saturating_sub(core::mem::size_of::<rpc_message_header_v03_00>());
    rpc.function == u32::from(MsgFunction::GspRmControl)
        && announced_len(rpc.function, head) > len
        && rpc_gsp_rm_control_v03_00::read_from_prefix(head)
            .is_ok_and(|(h, _)| RmControl::try_from(h.cmd).is_err())
}

/// Receive one message and, when a command is complete, handle it. `None`: nothing to do now;
/// `Some(None)`: progress without a reply; `Some(Some(reply))`: a reply to send.
fn receive(m: &mut GspModel<'_>) -> Option<Option<Outgoing>> {
    let q = m.queues.as_mut()?;
    let asm = q.assembly;
    let keep = asm.map_or(Keep::All, |a| a.keep);
    // Where this message's bytes go: after what was kept, or, when the rest of the command is
    // dropped, after its fixed part (the peeked bytes of its continuation records land there).
    let at = match asm {
        None => 0,
        Some(a) if keep == Keep::All => a.got,
        Some(_) => PEEK_LEN,
    };
    let dst = m.buf.get_mut(at..).unwrap_or_default();
    // What RM will not read is only validated, in place: a continuation record of a command
    // whose rest is dropped, and the parameters of an unknown control that continues in
    // continuation records (its fixed part is in the bytes peeked at).
    let wanted = |rpc: &rpc_message_header_v03_00, head: &[u8]| {
        if rpc.function == u32::from(MsgFunction::ContinuationRecord) {
            keep == Keep::All
        } else {
            !unread_params(rpc, head)
        }
    };
    let msg: Received = match q.rx.try_receive_or_verify(dst, wanted) {
        Ok(Some(msg)) => msg,
        Ok(None) => return None,
        Err(e) if e.is_skipped_message() || e == QueueError::BufferTooSmall => {
            log::error!("gsp_model: command rejected by the queue: {e:?}");
            m.trace.record(Trace::CommandRejected);
            return Some(None);
        }
        Err(e) => {
            log::error!("gsp_model: command queue unusable: {e:?}");
            m.trace.record(Trace::CommandRejected);
            return None;
        }
    };
    let function = msg.rpc.function;
    let is_cont = function == u32::from(MsgFunction::ContinuationRecord);
    let a = match (asm, is_cont) {
        (Some(mut a), true) => {
            a.got += msg.len;
            a
        }
        (None, true) => {
            log::error!("gsp_model: CONTINUATION_RECORD with no command to continue");
            m.trace.record(Trace::CommandRejected);
            return Some(None);
        }
        (Some(a), false) => {
            // The driver broke its own command off: drop it (no reply; the caller's wait fails)
            // and take the new one from the front of the buffer.
            log::error!(
                "gsp_model: command {:#x} interrupted by {function:#x} before its continuation records; dropped",
                a.function
            );
            m.trace.record(Trace::CommandRejected);
            if at + msg.len <= m.buf.len() {
                m.buf.copy_within(at..at + msg.len, 0);
            }
            first_message(m.buf, &msg)
        }
        (None, false) => first_message(m.buf, &msg),
    };
    if a.got < a.expected {
        if let Some(q) = m.queues.as_mut() {
            q.assembly = Some(a);
        }
        return Some(None);
    }
    if let Some(q) = m.queues.as_mut() {
        q.assembly = None;
    }
    match a.keep {
        Keep::All => Some(handle(m, a.function, a.sequence, a.got)),
        Keep::FirstMessage => Some(Some(unread_control(m, a.sequence))),
        Keep::Nothing => {
            log::error!(
                "gsp_model: command {:#x} of {} bytes exceeds the model's buffer",
                a.function,
                a.expected
            );
            Some(Some(reply(
                a.function,
                a.sequence,
                NvStatus::InvalidArgument,
                0,
            )))
        }
    }
}

/// A GSP_RM_CONTROL of a command RM does not implement, whose parameters ran into continuation
/// records and were validated in place, never copied: RM's verdict comes from the fixed part at
/// the front of the buffer (client, object, then the unknown command: it never reaches the
/// parameters), and the reply is that fixed part with the status, without parameters. Nothing
/// is lost to the driver: on a failed control OpenRM's `rpcRmApiControl_GSP` copies parameters
/// back only for controls flagged `RMCTRL_FLAGS_COPYOUT_ON_ERROR`, which an unknown control
/// cannot be. (A control that fits one message is still answered with its parameters.)
fn unread_control(m: &mut GspModel<'_>, sequence: u32) -> Outgoing {
    let function = MsgFunction::GspRmControl.into();
    let hdr = core::mem::size_of::<rpc_gsp_rm_control_v03_00>();
    let Some((mut h, _)) = m
        .buf
        .get(..hdr)
        .and_then(|b| rpc_gsp_rm_control_v03_00::read_from_prefix(b).ok())
    else {
        return reply(function, sequence, NvStatus::InvalidParamStruct, 0);
    };
    let r = m.rm.control(h.hClient, h.hObject, h.cmd, &mut [], &m.mem);
    let what = format_args!(
        "RM_CONTROL {:#x} on {:#x} ({} bytes of parameters, unread)",
        h.cmd, h.hObject, h.paramsSize
    );
    h.status = verdict(&mut m.trace, MsgFunction::GspRmControl, r, what).into();
    match put_header(m.buf, &h) {
        Ok(()) => reply(function, sequence, NvStatus::Ok, hdr),
        Err(s) => reply(function, sequence, s, 0),
    }
}

/// A reply of the first `len` buffer bytes with `rpc_result` = `status`.
fn reply(function: u32, sequence: u32, status: NvStatus, len: usize) -> Outgoing {
    Outgoing {
        function,
        sequence,
        result: status.into(),
        len,
        sent: 0,
    }
}

/// Handle the complete command of `len` bytes at the front of the buffer.
fn handle(m: &mut GspModel<'_>, function: u32, sequence: u32, len: usize) -> Option<Outgoing> {
    if m.phase == Phase::RmInit {
        return boot_command(m, function, sequence, len);
    }
    let f = MsgFunction::try_from(function);
    let status = match f {
        Ok(MsgFunction::GetGspStaticInfo) => static_info(m, len),
        Ok(MsgFunction::GspRmAlloc) => rm_alloc(m, len),
        Ok(MsgFunction::GspRmControl) => rm_control(m, len),
        Ok(MsgFunction::Free) => rm_free(m, len),
        // NOP answers with its own payload (GSP-RM replies in place): a ping.
        Ok(MsgFunction::Nop) => Ok(len),
        _ => Err(NvStatus::NotSupported),
    };
    match status {
        Ok(reply_len) => Some(reply(function, sequence, NvStatus::Ok, reply_len)),
        Err(s) => {
            log::warn!("gsp_model: rpc {function:#x} (seq {sequence}) refused: {s:?}");
            m.trace.record(Trace::RpcFailed {
                function,
                status: s.into(),
            });
            Some(reply(function, sequence, s, 0))
        }
    }
}

/// The two boot commands, in order; then GSP_RUN_CPU_SEQUENCER.
fn boot_command(
    m: &mut GspModel<'_>,
    function: u32,
    sequence: u32,
    len: usize,
) -> Option<Outgoing> {
    let step = m.queues.as_ref().map_or(2, |q| q.boot_cmds);
    let payload = m.buf.get(..len).unwrap_or_default();
    let checked = match (step, MsgFunction::try_from(function)) {
        (0, Ok(MsgFunction::GspSetSystemInfo)) => check_system_info(m, payload),
        (1, Ok(MsgFunction::SetRegistry)) => check_registry(payload),
        (0, _) => Err(BootError::BootCommand {
            what: "the first command must be GSP_SET_SYSTEM_INFO",
            value: u64::from(function),
        }),
        _ => Err(BootError::BootCommand {
            what: "the second command must be SET_REGISTRY",
            value: u64::from(function),
        }),
    };
    if let Err(e) = checked {
        m.fail(e);
        return Some(reply(function, sequence, NvStatus::InvalidArgument, 0));
    }
    if let Some(q) = m.queues.as_mut() {
        q.boot_cmds += 1;
    }
    let ok = reply(function, sequence, NvStatus::Ok, 0);
    if step == 1 {
        // Reply first, then the sequencer: queue the reply before the event.
        if let Some(q) = m.queues.as_mut() {
            q.outgoing = Some(ok);
        }
        continue_reply(m);
        let buf = boot::sequencer_buffer();
        let mut seq = rpc_run_cpu_sequencer_v17_00::new_zeroed();
        // CAST: the buffer has 19 dwords.
        (seq.bufferSizeDWord, seq.cmdIndex) = (buf.len() as u32, buf.len() as u32);
        let mut payload = [0u8; core::mem::size_of::<rpc_run_cpu_sequencer_v17_00>() + 19 * 4];
        let (head, tail) =
            payload.split_at_mut(core::mem::size_of::<rpc_run_cpu_sequencer_v17_00>());
        head.copy_from_slice(seq.as_bytes());
        tail.copy_from_slice(buf.as_bytes());
        send_event(m, MsgFunction::GspRunCpuSequencer, &payload);
        m.set_phase(Phase::AwaitResume);
        return None;
    }
    Some(ok)
}

fn check_system_info(m: &GspModel<'_>, p: &[u8]) -> Result<(), BootError> {
    let bad = |what, value| Err(BootError::BootCommand { what, value });
    let Ok(s) = GspSystemInfo::read_from_bytes(p) else {
        // CAST: usize to u64 is lossless.
        return bad(
            "GSP_SET_SYSTEM_INFO payload is not sizeof(GspSystemInfo) = 928",
            p.len() as u64,
        );
    };
    let pci = m.config.pci;
    let id = u32::from(pci.device) << 16 | u32::from(pci.vendor);
    if s.PCIDeviceID != id {
        return bad(
            "PCIDeviceID is not device << 16 | vendor",
            u64::from(s.PCIDeviceID),
        );
    }
    if s.pciConfigMirrorBase != NV_PCI_CONFIG_MIRROR_BASE
        || s.pciConfigMirrorSize != NV_PCI_CONFIG_MIRROR_SIZE
    {
        return bad(
            "pciConfigMirrorBase/Size (want 0x88000/0x1000)",
            u64::from(s.pciConfigMirrorBase),
        );
    }
    if s.maxUserVa == 0 || s.maxUserVa > 1 << VA_BITS {
        return bad("maxUserVa", s.maxUserVa);
    }
    if let Some([bar0, bar1, bar3]) = pci.bars {
        for (what, want, got) in [
            ("gpuPhysAddr is not BAR0", bar0, s.gpuPhysAddr),
            ("gpuPhysFbAddr is not BAR1", bar1, s.gpuPhysFbAddr),
            ("gpuPhysInstAddr is not BAR3", bar3, s.gpuPhysInstAddr),
        ] {
            if want != got {
                return bad(what, got);
            }
        }
    }
    Ok(())
}

/// A `PACKED_REGISTRY_TABLE`: every entry's name inside the table and NUL-terminated, a known
/// type, DWORD lengths 0 or 4, and `size` by either driver convention.
fn check_registry(p: &[u8]) -> Result<(), BootError> {
    let bad = |what, value| Err(BootError::BootCommand { what, value });
    let Ok((t, rest)) = PACKED_REGISTRY_TABLE::read_from_prefix(p) else {
        return bad("SET_REGISTRY payload shorter than its header", 0);
    };
    let hdr = core::mem::size_of::<PACKED_REGISTRY_TABLE>();
    // CAST: u32 to usize is lossless; usize to u64 is lossless.
    let size = t.size as usize;
    if size != p.len() && size + hdr != p.len() {
        return bad(
            "PACKED_REGISTRY_TABLE.size matches neither convention",
            u64::from(t.size),
        );
    }
    let n = t.numEntries as usize;
    let entries = rest.get(..n.saturating_mul(core::mem::size_of::<PACKED_REGISTRY_ENTRY>()));
    let Some(entries) = entries else {
        return bad("numEntries runs past the table", u64::from(t.numEntries));
    };
    for e in entries.chunks_exact(core::mem::size_of::<PACKED_REGISTRY_ENTRY>()) {
        let Ok(e) = PACKED_REGISTRY_ENTRY::read_from_bytes(e) else {
            return bad("registry entry", 0);
        };
        let name = p
            .get(e.nameOffset as usize..)
            .and_then(|s| s.iter().position(|&b| b == 0));
        if !matches!(name, Some(l) if l > 0) {
            return bad(
                "registry entry name outside the table or not NUL-terminated",
                u64::from(e.nameOffset),
            );
        }
        match e.type_ {
            1 if e.length == 0 || e.length == 4 => {}
            2 | 3 if (e.data as usize).saturating_add(e.length as usize) <= p.len() => {}
            t => {
                return bad(
                    "registry entry type/length",
                    u64::from(t) << 32 | u64::from(e.length),
                )
            }
        }
    }
    Ok(())
}

/// GET_GSP_STATIC_INFO: the request is a zeroed `GspStaticConfigInfo`, the reply the filled one.
fn static_info(m: &mut GspModel<'_>, len: usize) -> Result<usize, NvStatus> {
    let size = core::mem::size_of::<GspStaticConfigInfo>();
    let req = m.buf.get(..len).unwrap_or_default();
    if len != size || req.iter().any(|&b| b != 0) {
        return Err(NvStatus::InvalidParamStruct);
    }
    let mut s = GspStaticConfigInfo::new_zeroed();
    let regions = &mut s.fbRegionInfoParams;
    for (slot, (base, bytes)) in regions.fbRegion.iter_mut().zip(m.mem.fb.windows()) {
        slot.base = base;
        slot.limit = base + bytes - 1;
        slot.performance = 1000;
        (slot.supportCompressed, slot.supportISO) = (1, 1);
        regions.numFBRegions += 1;
    }
    s.fb_length = m.mem.fb_size;
    (s.fbio_mask, s.fb_bus_width, s.fbp_mask, s.l2_cache_size) = (1, 64, 1, 4 << 20);
    let chip = m.config.chip.name();
    let upper = chip.bytes().map(|b| b.to_ascii_uppercase());
    let name = b"NVIDIA "
        .iter()
        .copied()
        .chain(upper)
        .chain(b" (gsp_model)".iter().copied());
    for (dst, src) in s.gpuNameString.iter_mut().zip(name) {
        *dst = src;
    }
    for (dst, src) in s.gpuShortNameString.iter_mut().zip(chip.as_bytes()) {
        *dst = *src;
    }
    // BAR1/BAR2 page directories live in GSP-RM's own non-WPR heap, out of the driver's way.
    let heap = m.meta.map_or(0, |meta| meta.nonWprHeapOffset);
    (s.bar1PdeBase, s.bar2PdeBase) = (heap + 0x1000, heap + 0x2000);
    [s.hInternalClient, s.hInternalDevice, s.hInternalSubdevice] = INTERNAL_HANDLES;
    s.gidInfo.length = 16;
    for (i, b) in s.gidInfo.data.iter_mut().take(16).enumerate() {
        // CAST: i < 16; a deterministic UUID from the chipset code.
        *b = (u32::from(m.config.chip) as u8).wrapping_add(i as u8 * 17);
    }
    let dst = m.buf.get_mut(..size).ok_or(NvStatus::InvalidParamStruct)?;
    dst.copy_from_slice(s.as_bytes());
    Ok(size)
}

/// RM's verdict on a request: a refusal is logged (`what`) and traced.
fn verdict(
    trace: &mut TraceLog,
    function: MsgFunction,
    r: Result<(), NvStatus>,
    what: core::fmt::Arguments<'_>,
) -> NvStatus {
    match r {
        Ok(()) => NvStatus::Ok,
        Err(s) => {
            log::warn!("gsp_model: {what}: {s:?}");
            trace.record(Trace::RpcFailed {
                function: function.into(),
                status: s.into(),
            });
            s
        }
    }
}

/// Write the answered fixed part `h` back over the front of the buffer.
fn put_header<T: IntoBytes + zerocopy::Immutable>(buf: &mut [u8], h: &T) -> Result<(), NvStatus> {
    let n = core::mem::size_of::<T>();
    buf.get_mut(..n)
        .ok_or(NvStatus::InvalidParamStruct)?
        .copy_from_slice(h.as_bytes());
    Ok(())
}

/// GSP_RM_ALLOC: header + params in the buffer; the reply is the same with `status` filled.
fn rm_alloc(m: &mut GspModel<'_>, len: usize) -> Result<usize, NvStatus> {
    let (mut h, params) = m
        .buf
        .get(..len)
        .and_then(|b| rpc_gsp_rm_alloc_v03_00::read_from_prefix(b).ok())
        .ok_or(NvStatus::InvalidParamStruct)?;
    // CAST: u32 to usize is lossless.
    if params.len() != h.paramsSize as usize {
        return Err(NvStatus::InvalidParamStruct);
    }
    let req = AllocRequest {
        client: h.hClient,
        parent: h.hParent,
        object: h.hObject,
        class: h.hClass,
    };
    let r = m.rm.alloc(req, params, &m.mem);
    let what = format_args!(
        "RM_ALLOC class {:#x} handle {:#x} under {:#x}",
        h.hClass, h.hObject, h.hParent
    );
    h.status = verdict(&mut m.trace, MsgFunction::GspRmAlloc, r, what).into();
    put_header(m.buf, &h)?;
    Ok(len)
}

/// GSP_RM_CONTROL: header + params; the params are answered in place.
fn rm_control(m: &mut GspModel<'_>, len: usize) -> Result<usize, NvStatus> {
    let hdr = core::mem::size_of::<rpc_gsp_rm_control_v03_00>();
    let (mut h, rest) = m
        .buf
        .get(..len)
        .and_then(|b| rpc_gsp_rm_control_v03_00::read_from_prefix(b).ok())
        .ok_or(NvStatus::InvalidParamStruct)?;
    // CAST: u32 to usize is lossless.
    if rest.len() != h.paramsSize as usize {
        return Err(NvStatus::InvalidParamStruct);
    }
    let params = m
        .buf
        .get_mut(hdr..len)
        .ok_or(NvStatus::InvalidParamStruct)?;
    let r = m.rm.control(h.hClient, h.hObject, h.cmd, params, &m.mem);
    let what = format_args!("RM_CONTROL {:#x} on {:#x}", h.cmd, h.hObject);
    h.status = verdict(&mut m.trace, MsgFunction::GspRmControl, r, what).into();
    put_header(m.buf, &h)?;
    Ok(len)
}

/// FREE.
fn rm_free(m: &mut GspModel<'_>, len: usize) -> Result<usize, NvStatus> {
    let mut f = m
        .buf
        .get(..len)
        .and_then(|b| rpc_free_v03_00::read_from_bytes(b).ok())
        .ok_or(NvStatus::InvalidParamStruct)?;
    let r = m.rm.free(f.hRoot, f.hObjectOld);
    let what = format_args!("FREE {:#x} of client {:#x}", f.hObjectOld, f.hRoot);
    f.status = verdict(&mut m.trace, MsgFunction::Free, r, what).into();
    put_header(m.buf, &f)?;
    Ok(len)
}
