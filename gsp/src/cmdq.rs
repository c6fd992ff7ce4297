//! The GSP message queues (cmdq/statq): in-place send, validated receive, resync.
//!
//! # Layout (reference section 5)
//! One DMA buffer of [`QUEUE_REGION_SIZE`] bytes, shared with the GSP: the PTE page (u64 physical
//! address of each of its [`PTE_COUNT`] pages), then the command queue (CPU → GSP) at
//! [`CMDQ_OFFSET`] and the status queue (GSP → CPU) at [`STATQ_OFFSET`]. Each queue is a
//! `msgqTxHeader` at +0, a `msgqRxHeader` at +[`RX_HDR_OFFSET`] and [`MSG_COUNT`] 4 KiB entries
//! from +[`ENTRY_OFFSET`]. With SWAP_RX each side keeps its read pointer *for the other side's
//! queue* in the rx header of its *own* queue, so every header has exactly one writer.
//!
//! # One implementation, both sides
//! [`SharedQueues::split`] hands out a [`Tx`] (writes into "my" queue) and an [`Rx`] (reads "their"
//! queue) for a [`Side`]: the driver is `Side::Cpu` (cmdq as Tx, statq as Rx), the GSP model is
//! `Side::Gsp` (statq as Tx, cmdq as Rx). The model reuses this code; there is one definition.
//!
//! # Sending (nova-core `gsp/cmdq.rs`, reference section 6)
//! A [`CommandToGsp`] has a `FUNCTION`, a fixed `Command` struct that [`CommandToGsp::init`]
//! builds and the queue copies once, straight into the ring slot after the element and RPC
//! headers, and an optional variable payload that [`CommandToGsp::init_variable_payload`] writes
//! through a [`PayloadWriter`] — again straight into the ring, across the ring's end when the
//! message wraps, and across messages when it exceeds 16 elements: the writer closes the full
//! message and opens a `CONTINUATION_RECORD` (function 71) for the rest. The payload must fill
//! exactly the length it announced ([`QueueError::PayloadUnderfilled`] /
//! [`QueueError::PayloadOverflow`]). Each message is checksummed as it is written, its header is
//! written last, then a store fence, then the write pointer, then the doorbell ([`TxSignal`]).
//!
//! *Rejected design:* pin-init (nova's `impl Init<Command>`) writes through a raw pointer into the
//! slot. Here the ring is a `pd_core::shm::Region`, which by design never hands out a pointer or
//! reference into shared memory (the peer may rewrite it at any time), so the command struct is
//! built by value and copied into the slot with one bounds-checked copy; nothing else is staged.
//!
//! # Receiving
//! [`Rx::try_receive`] copies one message out of the ring into caller storage *before* looking at
//! it (the peer can change ring bytes at any time; what was copied is what is checked and used),
//! then validates, in order: the peer's write pointer (below 63, never moving backwards), the
//! element count (1..=16 and within what was published), the RPC length (header..=64 KiB and
//! consistent with the element count), the RPC signature and version, the checksum, and the
//! sequence number. A bad message is rejected with a typed error, recorded in the queue's
//! [`QueueTrace`] ring (with per-kind counters), logged as `gsp: ...`, and *skipped*: the read
//! pointer advances past it (by its element count when that is plausible, else by one element),
//! and the next message is accepted whatever its sequence number (a resync, traced), so a bad
//! message never wedges the queue. A bad peer pointer is an error on every call, never a wait.
//!
//! Trust: the peer (GSP firmware, or the driver as seen by the model) controls every byte of the
//! region except our own headers' values, which we keep privately and only ever write.
use crate::fw::current::msgq::{
    msgqRxHeader, msgqTxHeader, GSP_MSG_QUEUE_ELEMENT, GSP_MSG_QUEUE_ELEMENT_HDR_SIZE,
    GSP_MSG_QUEUE_ELEMENT_SIZE_MAX, GSP_MSG_QUEUE_ELEMENT_SIZE_MIN, MSGQ_FLAGS_SWAP_RX,
};
use crate::fw::current::rpc::{
    rpc_message_header_v03_00, MsgFunction, UnknownFunction, NV_VGPU_MSG_RESULT_RPC_PENDING,
    NV_VGPU_MSG_SIGNATURE_VALID, RPC_HEADER_VERSION_V03_00,
};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{fence, Ordering};
use pd_core::shm::{ReadWrite, Region, RegionError};
use pd_core::trace::{TraceEvent, TraceRing};
use zerocopy::{FromZeros, Immutable, IntoBytes};

#[cfg(any(test, feature = "fuzz"))]
pub mod fuzz;

/// The GSP's page size; ring entries are one page.
pub const GSP_PAGE_SIZE: usize = 0x1000;
/// Size of the whole shared queue region.
pub const QUEUE_REGION_SIZE: usize = 0x81000;
/// `pageTableEntryCount`: pages of the region, each listed in the PTE page.
pub const PTE_COUNT: usize = QUEUE_REGION_SIZE / GSP_PAGE_SIZE;
/// `cmdQueueOffset`: the command queue (CPU → GSP).
pub const CMDQ_OFFSET: usize = 0x1000;
/// `statQueueOffset`: the status queue (GSP → CPU).
pub const STATQ_OFFSET: usize = 0x41000;
/// Bytes of one queue (headers + entries).
pub const QUEUE_SIZE: usize = 0x40000;
/// `rxHdrOff`: the rx header, from the queue start.
pub const RX_HDR_OFFSET: usize = 0x20;
/// `entryOff`: entry 0, from the queue start.
pub const ENTRY_OFFSET: usize = 0x1000;
/// `msgCount`: entries in a ring. Not a power of two: indices wrap with `%`, never a mask.
pub const MSG_COUNT: u32 = 63;
/// Most entries one message may use (64 KiB).
pub const MAX_ELEMENTS: u32 = 16;
/// Bytes before the RPC header in a message.
pub const ELEMENT_HDR_SIZE: usize = GSP_MSG_QUEUE_ELEMENT_HDR_SIZE;
/// Bytes of element header plus RPC header: where a message's payload starts.
pub const MESSAGE_HDR_SIZE: usize = size_of::<GSP_MSG_QUEUE_ELEMENT>();
/// Most payload bytes one message carries (64 KiB minus both headers).
pub const MAX_PAYLOAD: usize = GSP_MSG_QUEUE_ELEMENT_SIZE_MAX - MESSAGE_HDR_SIZE;

const RPC_HDR_SIZE: usize = size_of::<rpc_message_header_v03_00>();
const TX_WRITE_PTR: usize = offset_of!(msgqTxHeader, writePtr);
const RX_READ_PTR: usize = RX_HDR_OFFSET + offset_of!(msgqRxHeader, readPtr);

const _: () = assert!(CMDQ_OFFSET + QUEUE_SIZE == STATQ_OFFSET);
const _: () = assert!(STATQ_OFFSET + QUEUE_SIZE == QUEUE_REGION_SIZE);
const _: () = assert!(ENTRY_OFFSET + (MSG_COUNT as usize) * GSP_PAGE_SIZE == QUEUE_SIZE);
const _: () = assert!(PTE_COUNT == 0x81 && PTE_COUNT * 8 <= GSP_PAGE_SIZE);
const _: () = assert!(GSP_MSG_QUEUE_ELEMENT_SIZE_MIN == GSP_PAGE_SIZE);
const _: () = assert!(MAX_ELEMENTS as usize * GSP_PAGE_SIZE == GSP_MSG_QUEUE_ELEMENT_SIZE_MAX);

/// Why a queue operation failed. Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum QueueError {
    /// The shared region is smaller than [`QUEUE_REGION_SIZE`].
    RegionTooSmall = 1,
    /// A region access fell outside the region (an internal bound was wrong).
    Region = 2,
    /// The peer's tx header does not describe the layout both sides share.
    BadQueueHeader = 3,
    /// A peer pointer is not below [`MSG_COUNT`].
    BadPointer = 4,
    /// A peer pointer moved backwards or past what was published.
    StalePointer = 5,
    /// A received message's checksum did not verify (message skipped).
    BadChecksum = 6,
    /// A received message's sequence number was not the next one (message skipped).
    BadSeqNum = 7,
    /// A received message's element count is 0, over 16, past the write pointer, or does not
    /// match its length (message skipped).
    BadElemCount = 8,
    /// A received message's RPC length is below the RPC header or over 64 KiB (message skipped).
    BadLength = 9,
    /// A received message's RPC signature or header version is wrong (message skipped).
    BadRpcHeader = 10,
    /// A received message is larger than the caller's buffer (message skipped).
    BufferTooSmall = 11,
    /// A command is too large to describe (over 4 GiB).
    MessageTooLarge = 12,
    /// A command's variable payload wrote fewer bytes than it announced.
    PayloadUnderfilled = 13,
    /// A command's variable payload tried to write more bytes than it announced.
    PayloadOverflow = 14,
    /// No ring space became free in time (from [`TxSignal::wait_for_space`]).
    Timeout = 15,
    /// Ringing the peer's doorbell failed.
    Doorbell = 16,
}

impl QueueError {
    /// Whether this error rejected one received message that was then skipped: the queue is
    /// still usable and the next message can be received.
    pub const fn is_skipped_message(self) -> bool {
        matches!(
            self,
            Self::BadChecksum
                | Self::BadSeqNum
                | Self::BadElemCount
                | Self::BadLength
                | Self::BadRpcHeader
                | Self::BufferTooSmall
        )
    }
}

impl From<RegionError> for QueueError {
    fn from(_: RegionError) -> Self {
        Self::Region
    }
}

/// Which end of the queues this code drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The driver: sends on the command queue, receives on the status queue.
    Cpu,
    /// The firmware (the GSP model): sends on the status queue, receives on the command queue.
    Gsp,
}

impl Side {
    /// Offset of the queue this side writes.
    const fn my_queue(self) -> usize {
        match self {
            Self::Cpu => CMDQ_OFFSET,
            Self::Gsp => STATQ_OFFSET,
        }
    }

    /// Offset of the queue this side reads.
    const fn their_queue(self) -> usize {
        match self {
            Self::Cpu => STATQ_OFFSET,
            Self::Gsp => CMDQ_OFFSET,
        }
    }
}

/// The name of the queue at `offset`, for logs.
const fn queue_name(offset: usize) -> &'static str {
    if offset == CMDQ_OFFSET {
        "cmdq"
    } else {
        "statq"
    }
}

/// A queue event worth keeping: each recovery decision of [`Tx`] and [`Rx`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueTrace {
    /// A message failed its checksum and was skipped.
    BadChecksum {
        /// Its seqNum field.
        seq: u32,
        /// Its first entry.
        slot: u32,
    },
    /// A message carried an unexpected seqNum and was skipped.
    BadSeqNum {
        /// The seqNum expected.
        expected: u32,
        /// The seqNum received.
        got: u32,
    },
    /// A message's element count was implausible or inconsistent; skipped.
    BadElemCount {
        /// The elemCount field.
        count: u32,
        /// Entries the write pointer had published.
        available: u32,
    },
    /// A message's RPC length was out of bounds; skipped.
    BadLength {
        /// The rpc.length field.
        length: u32,
    },
    /// A message's RPC signature or version was wrong; skipped.
    BadRpcHeader {
        /// The signature field.
        signature: u32,
        /// The header_version field.
        version: u32,
    },
    /// A message did not fit the caller's buffer; skipped.
    BufferTooSmall {
        /// Its payload length.
        length: u32,
    },
    /// A peer pointer was out of range.
    BadPointer {
        /// The value read.
        value: u32,
    },
    /// A peer pointer moved backwards or beyond what was published.
    StalePointer {
        /// The value read.
        value: u32,
        /// The value before.
        last: u32,
    },
    /// After a skip, a message was accepted with a different seqNum than counted.
    SeqResync {
        /// The seqNum expected.
        expected: u32,
        /// The seqNum accepted.
        got: u32,
    },
    /// The peer's tx header is not the shared layout.
    BadQueueHeader,
    /// No ring space became free in time.
    SendTimeout,
}

impl TraceEvent for QueueTrace {
    const KINDS: usize = 11;

    fn kind(&self) -> usize {
        match self {
            Self::BadChecksum { .. } => 0,
            Self::BadSeqNum { .. } => 1,
            Self::BadElemCount { .. } => 2,
            Self::BadLength { .. } => 3,
            Self::BadRpcHeader { .. } => 4,
            Self::BufferTooSmall { .. } => 5,
            Self::BadPointer { .. } => 6,
            Self::StalePointer { .. } => 7,
            Self::SeqResync { .. } => 8,
            Self::BadQueueHeader => 9,
            Self::SendTimeout => 10,
        }
    }

    fn kind_name(kind: usize) -> &'static str {
        [
            "BadChecksum",
            "BadSeqNum",
            "BadElemCount",
            "BadLength",
            "BadRpcHeader",
            "BufferTooSmall",
            "BadPointer",
            "StalePointer",
            "SeqResync",
            "BadQueueHeader",
            "SendTimeout",
        ]
        .get(kind)
        .copied()
        .unwrap_or("?")
    }
}

/// The trace ring each queue end keeps (the last 16 events, and a counter per kind).
pub type QueueTraceRing = TraceRing<QueueTrace, 16, { QueueTrace::KINDS }>;

/// The XOR checksum of reference section 6, computed incrementally at byte positions.
///
/// Every byte at message offset `p` is XORed into bits `8 * (p % 8)` of a u64 (that is, the
/// little-endian u64 words of the zero-padded message are XORed); the result folds to
/// `hi32 ^ lo32`. Because XOR commutes, parts may be added in any order, which lets the sender
/// add the header last.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum(u64);

impl Checksum {
    /// XOR `bytes`, which sit at message offset `pos`.
    pub fn add(&mut self, pos: usize, bytes: &[u8]) {
        let lead = (8 - pos % 8) % 8;
        let (head, rest) = bytes.split_at(lead.min(bytes.len()));
        for (i, &b) in head.iter().enumerate() {
            self.0 ^= u64::from(b) << (((pos + i) % 8) * 8);
        }
        // Independent accumulators over 256-byte blocks: the compiler turns this into wide
        // vector XORs (a single running XOR is a serial dependency chain, 3x slower than memcpy;
        // 32 lanes measured 2x faster than 8 on a 512 KiB working set).
        let mut blocks = rest.chunks_exact(256);
        let mut acc = [0u64; 32];
        for block in &mut blocks {
            for (a, w) in acc.iter_mut().zip(block.chunks_exact(8)) {
                *a ^= u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            }
        }
        self.0 ^= acc.iter().fold(0, |x, a| x ^ a);
        let mut words = blocks.remainder().chunks_exact(8);
        for w in &mut words {
            self.0 ^= u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        }
        // The tail starts at an 8-aligned offset: its byte i goes to bits 8 * i.
        for (i, &b) in words.remainder().iter().enumerate() {
            self.0 ^= u64::from(b) << (i * 8);
        }
    }

    /// The 32-bit folded value.
    pub fn value(self) -> u32 {
        // CAST: the two halves of a u64, truncation intended.
        ((self.0 >> 32) as u32) ^ (self.0 as u32)
    }
}

/// Entries needed by a message whose RPC header + payload is `rpc_len` bytes.
pub const fn elements_for(rpc_len: usize) -> usize {
    (ELEMENT_HDR_SIZE + rpc_len).div_ceil(GSP_PAGE_SIZE)
}

/// Free entries in a ring: one always stays empty (reference section 5).
const fn free_slots(rd: u32, wr: u32) -> u32 {
    (rd + MSG_COUNT - wr - 1) % MSG_COUNT
}

/// Published, unread entries in a ring.
const fn used_slots(rd: u32, wr: u32) -> u32 {
    (wr + MSG_COUNT - rd) % MSG_COUNT
}

/// Region offset of byte `pos` of a message starting at entry `slot` of the queue at `queue`,
/// and how many bytes from there are contiguous before the ring's end.
///
/// # Invariants
/// `slot < MSG_COUNT` and `pos < MAX_ELEMENTS * GSP_PAGE_SIZE` (callers check both).
fn ring_offset(queue: usize, slot: u32, pos: usize) -> (usize, usize) {
    // CAST: slot < 63 (invariant).
    let entry = (slot as usize + pos / GSP_PAGE_SIZE) % MSG_COUNT as usize;
    let within = pos % GSP_PAGE_SIZE;
    let to_end = (MSG_COUNT as usize - entry) * GSP_PAGE_SIZE - within;
    (
        queue + ENTRY_OFFSET + entry * GSP_PAGE_SIZE + within,
        to_end,
    )
}

/// How many entries to skip past a rejected message whose (copied) header is `hdr`.
///
/// Like OpenRM's `GspMsgQueueReceiveStatus`, the extent implied by `rpc.length` wins when it is
/// plausible (1..=16 entries, all published); else `elemCount` when plausible; else one entry, so
/// that the next header is looked for in the very next entry and garbage is walked past one entry
/// at a time. Never more than was published, never zero: the queue cannot wedge.
fn skip_extent(hdr: &GSP_MSG_QUEUE_ELEMENT, avail: u32) -> u32 {
    let plausible = |n: usize| (1..=MAX_ELEMENTS.min(avail) as usize).contains(&n);
    let by_length = elements_for(hdr.rpc.length as usize);
    if hdr.rpc.length as usize >= RPC_HDR_SIZE && plausible(by_length) {
        // CAST: plausible() bounds it by 16.
        by_length as u32
    } else if plausible(hdr.elemCount as usize) {
        hdr.elemCount
    } else {
        1
    }
}

/// The shared queue region: layout, initialisation, and the split into a [`Tx`] and an [`Rx`].
#[derive(Debug)]
pub struct SharedQueues {
    region: Region<ReadWrite>,
}

impl SharedQueues {
    /// A view of the queue region (the first [`QUEUE_REGION_SIZE`] bytes of `region`).
    ///
    /// # Errors
    /// [`QueueError::RegionTooSmall`].
    pub fn new(region: Region<ReadWrite>) -> Result<Self, QueueError> {
        let region = region
            .subregion(0, QUEUE_REGION_SIZE)
            .map_err(|_| QueueError::RegionTooSmall)?;
        Ok(Self { region })
    }

    /// The CPU's setup before boot (OpenRM `GspMsgQueueInit`): scrub the region (it may be dirty
    /// after a restart), list the physical address of each page in the PTE page (the buffer is
    /// physically contiguous from `dma_base`), and publish the command queue's tx header.
    ///
    /// # Errors
    /// [`QueueError::Region`] (not expected: the size was checked at construction).
    pub fn init_cpu(&self, dma_base: u64) -> Result<(), QueueError> {
        self.region.fill(0, QUEUE_REGION_SIZE, 0)?;
        for i in 0..PTE_COUNT {
            // CAST: i < 0x81.
            let pa = dma_base.wrapping_add((i * GSP_PAGE_SIZE) as u64);
            self.region.write(i * 8, &pa)?;
        }
        self.publish_tx_header(CMDQ_OFFSET)
    }

    /// The firmware side's setup (the GSP model at boot, OpenRM `msgqTxCreate` on the GSP):
    /// publish the status queue's tx header and a zero read pointer for the command queue.
    ///
    /// # Errors
    /// [`QueueError::Region`] (not expected).
    pub fn init_gsp(&self) -> Result<(), QueueError> {
        self.region
            .store_u32(STATQ_OFFSET + RX_READ_PTR, 0, Ordering::Release)?;
        self.publish_tx_header(STATQ_OFFSET)
    }

    fn publish_tx_header(&self, queue: usize) -> Result<(), QueueError> {
        let mut h = expected_tx_header();
        h.writePtr = 0;
        self.region.write(queue, &h)?;
        fence(Ordering::Release);
        Ok(())
    }

    /// Split into the sending and receiving ends of `side`.
    ///
    /// # Errors
    /// [`QueueError::Region`] (not expected).
    pub fn split(self, side: Side) -> Result<(Tx, Rx), QueueError> {
        let tx_region = self.region.subregion(0, QUEUE_REGION_SIZE)?;
        Ok((Tx::new(tx_region, side), Rx::new(self.region, side)))
    }
}

/// The tx header both sides publish (OpenRM `msgqTxCreate` with the parameters of section 5).
fn expected_tx_header() -> msgqTxHeader {
    // CAST: all constants are far below u32::MAX.
    msgqTxHeader {
        version: 0,
        size: QUEUE_SIZE as u32,
        msgSize: GSP_PAGE_SIZE as u32,
        msgCount: MSG_COUNT,
        writePtr: 0,
        flags: MSGQ_FLAGS_SWAP_RX,
        rxHdrOff: RX_HDR_OFFSET as u32,
        entryOff: ENTRY_OFFSET as u32,
    }
}

/// The RPC header fields a sender chooses (the rest are fixed or computed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageMeta {
    /// `function`.
    pub function: u32,
    /// `sequence` (RPC level; a reply echoes its command's).
    pub sequence: u32,
    /// `rpc_result` (commands: [`NV_VGPU_MSG_RESULT_RPC_PENDING`]; replies: the NV_STATUS).
    pub result: u32,
    /// `rpc_result_private`.
    pub result_private: u32,
}

impl MessageMeta {
    /// A command from the CPU: both results pending, as OpenRM and nouveau send them.
    pub fn command(function: MsgFunction, sequence: u32) -> Self {
        Self {
            function: function.into(),
            sequence,
            result: NV_VGPU_MSG_RESULT_RPC_PENDING,
            result_private: NV_VGPU_MSG_RESULT_RPC_PENDING,
        }
    }

    /// A reply or event from the firmware side, with status `result`.
    pub fn reply(function: u32, sequence: u32, result: u32) -> Self {
        Self {
            function,
            sequence,
            result,
            result_private: result,
        }
    }
}

/// How a [`Tx`] reaches its peer while sending.
pub trait TxSignal {
    /// A message was published: ring the peer's doorbell (the CPU writes `NV_PGSP_QUEUE_HEAD(0)`;
    /// the firmware side raises SWGEN0).
    ///
    /// # Errors
    /// [`QueueError::Doorbell`] when the doorbell could not be rung.
    fn notify(&mut self) -> Result<(), QueueError>;

    /// The ring has too few free entries: wait a little (or let the peer run) and return `Ok` to
    /// look again, or give up. This is the only place a send can wait, so the implementation
    /// owns the deadline.
    ///
    /// # Errors
    /// [`QueueError::Timeout`] when the deadline has passed.
    fn wait_for_space(&mut self) -> Result<(), QueueError>;
}

/// A message body: what follows the RPC header.
pub trait MessageBody {
    /// Exact bytes [`MessageBody::write_body`] writes.
    fn body_len(&self) -> usize;

    /// Write the body, in order, through `w`.
    ///
    /// # Errors
    /// Whatever the writer returns.
    fn write_body(&self, w: &mut PayloadWriter<'_>) -> Result<(), QueueError>;
}

impl MessageBody for [u8] {
    fn body_len(&self) -> usize {
        self.len()
    }

    fn write_body(&self, w: &mut PayloadWriter<'_>) -> Result<(), QueueError> {
        w.write(self)
    }
}

/// A command sent to the GSP (nova-core's `CommandToGsp`).
pub trait CommandToGsp {
    /// The RPC function.
    const FUNCTION: MsgFunction;
    /// The fixed part, written into the ring right after the RPC header.
    type Command: IntoBytes + Immutable;

    /// Build the fixed part (copied once into its ring slot).
    fn init(&self) -> Self::Command;

    /// Bytes of variable payload after the fixed part.
    fn variable_payload_len(&self) -> usize {
        0
    }

    /// Write exactly [`CommandToGsp::variable_payload_len`] bytes through `dst`, which writes
    /// straight into the ring (wrapping, and splitting into continuation records, as needed).
    ///
    /// # Errors
    /// [`QueueError::PayloadOverflow`] when writing more; the caller sees
    /// [`QueueError::PayloadUnderfilled`] when this wrote less.
    fn init_variable_payload(&self, dst: &mut PayloadWriter<'_>) -> Result<(), QueueError> {
        let _ = dst;
        Ok(())
    }
}

/// Adapter: a [`CommandToGsp`] as a [`MessageBody`].
struct CommandBody<'c, C>(&'c C);

impl<C: CommandToGsp> MessageBody for CommandBody<'_, C> {
    fn body_len(&self) -> usize {
        size_of::<C::Command>().saturating_add(self.0.variable_payload_len())
    }

    fn write_body(&self, w: &mut PayloadWriter<'_>) -> Result<(), QueueError> {
        w.write(self.0.init().as_bytes())?;
        self.0.init_variable_payload(w)
    }
}

/// The sending end of one queue.
#[derive(Debug)]
pub struct Tx {
    region: Region<ReadWrite>,
    /// Offset of the queue we write.
    mine: usize,
    /// Offset of the peer's queue, whose rx header holds the peer's read pointer of ours.
    theirs: usize,
    /// Our write pointer (private copy; never read back from shared memory).
    wr: u32,
    /// The last peer read pointer we accepted.
    peer_rd: u32,
    /// seqNum of the next message.
    seq: u32,
    trace: QueueTraceRing,
}

impl Tx {
    fn new(region: Region<ReadWrite>, side: Side) -> Self {
        Self {
            region,
            mine: side.my_queue(),
            theirs: side.their_queue(),
            wr: 0,
            peer_rd: 0,
            seq: 0,
            trace: QueueTraceRing::new(),
        }
    }

    /// The trace ring (recent events and per-kind counters).
    pub fn trace(&self) -> &QueueTraceRing {
        &self.trace
    }

    /// Our write pointer.
    pub fn write_ptr(&self) -> u32 {
        self.wr
    }

    /// seqNum the next message will carry.
    pub fn next_seq(&self) -> u32 {
        self.seq
    }

    /// Free entries now, after validating the peer's read pointer.
    ///
    /// # Errors
    /// [`QueueError::BadPointer`] or [`QueueError::StalePointer`] for a bad peer read pointer.
    pub fn free_slots(&mut self) -> Result<u32, QueueError> {
        let rd = self
            .region
            .load_u32(self.theirs + RX_READ_PTR, Ordering::Acquire)?;
        if rd >= MSG_COUNT {
            return Err(self.pointer_error(QueueTrace::BadPointer { value: rd }));
        }
        // The peer may only consume what we published: rd moves forward from the last value we
        // saw, at most up to our write pointer.
        if used_slots(self.peer_rd, rd) > used_slots(self.peer_rd, self.wr) {
            let last = self.peer_rd;
            return Err(self.pointer_error(QueueTrace::StalePointer { value: rd, last }));
        }
        self.peer_rd = rd;
        Ok(free_slots(rd, self.wr))
    }

    fn pointer_error(&mut self, t: QueueTrace) -> QueueError {
        self.trace.record(t);
        log::error!(
            "gsp: {} peer read pointer rejected: {t:?}",
            queue_name(self.mine)
        );
        match t {
            QueueTrace::BadPointer { .. } => QueueError::BadPointer,
            _ => QueueError::StalePointer,
        }
    }

    /// Send `cmd` as a command from the CPU with RPC sequence `sequence`.
    ///
    /// # Errors
    /// As [`Tx::send_message`].
    pub fn send<C: CommandToGsp>(
        &mut self,
        cmd: &C,
        sequence: u32,
        sig: &mut dyn TxSignal,
    ) -> Result<(), QueueError> {
        self.send_message(
            MessageMeta::command(C::FUNCTION, sequence),
            &CommandBody(cmd),
            sig,
        )
    }

    /// Send `body` with the RPC header fields of `meta`: one message, or one followed by
    /// `CONTINUATION_RECORD` messages when the body exceeds [`MAX_PAYLOAD`].
    ///
    /// # Errors
    /// - [`QueueError::MessageTooLarge`]: the body's length does not fit the RPC header.
    /// - [`QueueError::PayloadUnderfilled`] / [`QueueError::PayloadOverflow`]: the body wrote
    ///   fewer / more bytes than it announced (nothing of the unfinished message is published).
    /// - [`QueueError::Timeout`] (from `sig`), [`QueueError::Doorbell`], and the pointer errors of
    ///   [`Tx::free_slots`].
    pub fn send_message(
        &mut self,
        meta: MessageMeta,
        body: &(impl MessageBody + ?Sized),
        sig: &mut dyn TxSignal,
    ) -> Result<(), QueueError> {
        let total = body.body_len();
        u32::try_from(total).map_err(|_| QueueError::MessageTooLarge)?;
        let mut w = PayloadWriter {
            tx: self,
            sig,
            meta,
            remaining: total,
            open: None,
        };
        w.open_next(meta.function)?;
        body.write_body(&mut w)?;
        if w.remaining != 0 {
            return Err(QueueError::PayloadUnderfilled);
        }
        w.close()
    }
}

/// A message being filled in the ring.
#[derive(Debug)]
struct OpenMessage {
    /// Its first entry.
    slot: u32,
    /// Entries it occupies.
    elems: u32,
    /// Its function.
    function: u32,
    /// Payload bytes it carries.
    cap: usize,
    /// Payload bytes written so far.
    written: usize,
    /// Checksum of what was written so far.
    sum: Checksum,
}

/// Writes a message body straight into the ring; handed to [`MessageBody::write_body`] and
/// [`CommandToGsp::init_variable_payload`].
pub struct PayloadWriter<'a> {
    tx: &'a mut Tx,
    sig: &'a mut dyn TxSignal,
    meta: MessageMeta,
    /// Body bytes not yet written (across all messages).
    remaining: usize,
    open: Option<OpenMessage>,
}

impl core::fmt::Debug for PayloadWriter<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PayloadWriter")
            .field("remaining", &self.remaining)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl PayloadWriter<'_> {
    /// Bytes the body still has to write.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Append `bytes` to the body.
    ///
    /// # Errors
    /// [`QueueError::PayloadOverflow`] past the announced length (nothing is written then); the
    /// send errors of [`Tx::send_message`] when a full message is closed and the next opened.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), QueueError> {
        if bytes.len() > self.remaining {
            return Err(QueueError::PayloadOverflow);
        }
        while !bytes.is_empty() {
            let (slot, pos, room) = match &self.open {
                Some(m) if m.written < m.cap => {
                    (m.slot, MESSAGE_HDR_SIZE + m.written, m.cap - m.written)
                }
                _ => {
                    // The open message is full and bytes remain: continue in a new record.
                    self.close()?;
                    self.open_next(MsgFunction::ContinuationRecord.into())?;
                    continue;
                }
            };
            // One page at a time: checksum then copy while the piece is still in L1.
            let (now, rest) = bytes.split_at(room.min(bytes.len()).min(GSP_PAGE_SIZE));
            if let Some(m) = &mut self.open {
                m.sum.add(pos, now);
                m.written += now.len();
            }
            self.put(slot, pos, now)?;
            self.remaining -= now.len();
            bytes = rest;
        }
        Ok(())
    }

    /// Append the bytes of `value`.
    ///
    /// # Errors
    /// As [`PayloadWriter::write`].
    pub fn write_value<T: IntoBytes + Immutable>(&mut self, value: &T) -> Result<(), QueueError> {
        self.write(value.as_bytes())
    }

    /// Append `len` zero bytes.
    ///
    /// # Errors
    /// As [`PayloadWriter::write`].
    pub fn write_zeros(&mut self, mut len: usize) -> Result<(), QueueError> {
        const ZEROS: [u8; 256] = [0; 256];
        if len > self.remaining {
            return Err(QueueError::PayloadOverflow);
        }
        while len > 0 {
            let n = len.min(ZEROS.len());
            self.write(ZEROS.get(..n).unwrap_or(&[]))?;
            len -= n;
        }
        Ok(())
    }

    /// Copy `bytes` to message offset `pos` of the message at `slot`, in at most two pieces.
    fn put(&mut self, slot: u32, pos: usize, bytes: &[u8]) -> Result<(), QueueError> {
        let (at, to_end) = ring_offset(self.tx.mine, slot, pos);
        let (first, second) = bytes.split_at(to_end.min(bytes.len()));
        self.tx.region.write_bytes(at, first)?;
        if !second.is_empty() {
            let (at, _) = ring_offset(self.tx.mine, slot, pos + first.len());
            self.tx.region.write_bytes(at, second)?;
        }
        Ok(())
    }

    /// Reserve ring space for the next message (waiting through the signal if needed).
    fn open_next(&mut self, function: u32) -> Result<(), QueueError> {
        let cap = self.remaining.min(MAX_PAYLOAD);
        // CAST: at most 16, checked by the const asserts on MAX_PAYLOAD.
        let elems = elements_for(RPC_HDR_SIZE + cap) as u32;
        loop {
            if self.tx.free_slots()? >= elems {
                break;
            }
            if let Err(e) = self.sig.wait_for_space() {
                self.tx.trace.record(QueueTrace::SendTimeout);
                log::error!(
                    "gsp: {} full: no room for {elems} entries ({e:?})",
                    queue_name(self.tx.mine)
                );
                return Err(e);
            }
        }
        self.open = Some(OpenMessage {
            slot: self.tx.wr,
            elems,
            function,
            cap,
            written: 0,
            sum: Checksum::default(),
        });
        Ok(())
    }

    /// Finish the open message: zero padding, headers with the checksum, store fence, write
    /// pointer, doorbell.
    fn close(&mut self) -> Result<(), QueueError> {
        let Some(mut m) = self.open.take() else {
            return Ok(());
        };
        // Zero the bytes up to the next 8-byte boundary: the checksum covers them (OpenRM pads
        // its staging copy with zeros; the receiver may read them).
        let end = MESSAGE_HDR_SIZE + m.cap;
        let pad = (8 - end % 8) % 8;
        self.put(m.slot, end, [0u8; 8].get(..pad).unwrap_or(&[]))?;
        let mut hdr = GSP_MSG_QUEUE_ELEMENT::new_zeroed();
        hdr.seqNum = self.tx.seq;
        hdr.elemCount = m.elems;
        hdr.rpc = rpc_message_header_v03_00 {
            header_version: RPC_HEADER_VERSION_V03_00,
            signature: NV_VGPU_MSG_SIGNATURE_VALID,
            // CAST: cap <= MAX_PAYLOAD, far below u32::MAX.
            length: (RPC_HDR_SIZE + m.cap) as u32,
            function: m.function,
            rpc_result: self.meta.result,
            rpc_result_private: self.meta.result_private,
            sequence: self.meta.sequence,
            spare: 0,
        };
        m.sum.add(0, hdr.as_bytes());
        hdr.checkSum = m.sum.value();
        self.put(m.slot, 0, hdr.as_bytes())?;
        // Store fence: the GSP must see the whole message before the pointer that publishes it.
        fence(Ordering::SeqCst);
        self.tx.wr = (m.slot + m.elems) % MSG_COUNT;
        self.tx
            .region
            .store_u32(self.tx.mine + TX_WRITE_PTR, self.tx.wr, Ordering::Release)?;
        self.tx.seq = self.tx.seq.wrapping_add(1);
        self.sig.notify()
    }
}

/// One received message: its RPC header and where its payload went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The RPC header.
    pub rpc: rpc_message_header_v03_00,
    /// Payload bytes copied to the front of the caller's buffer.
    pub len: usize,
    /// The message's seqNum.
    pub seq: u32,
    /// Entries it occupied.
    pub elements: u32,
}

impl Received {
    /// The RPC function.
    ///
    /// # Errors
    /// [`UnknownFunction`] for a number this driver does not know.
    pub fn function(&self) -> Result<MsgFunction, UnknownFunction> {
        MsgFunction::try_from(self.rpc.function)
    }
}

/// The receiving end of one queue.
#[derive(Debug)]
pub struct Rx {
    region: Region<ReadWrite>,
    /// Offset of our queue, whose rx header holds our read pointer (SWAP_RX).
    mine: usize,
    /// Offset of the queue we read.
    theirs: usize,
    /// Our read pointer (private copy).
    rd: u32,
    /// Entries the peer had published beyond `rd` when we last looked.
    seen: u32,
    /// seqNum expected next.
    seq: u32,
    /// The peer's tx header was validated.
    linked: bool,
    /// The last message was skipped: accept the next sequence number as given.
    resync: bool,
    trace: QueueTraceRing,
}

impl Rx {
    fn new(region: Region<ReadWrite>, side: Side) -> Self {
        Self {
            region,
            mine: side.my_queue(),
            theirs: side.their_queue(),
            rd: 0,
            seen: 0,
            seq: 0,
            linked: false,
            resync: false,
            trace: QueueTraceRing::new(),
        }
    }

    /// The trace ring (recent events and per-kind counters).
    pub fn trace(&self) -> &QueueTraceRing {
        &self.trace
    }

    /// Our read pointer.
    pub fn read_ptr(&self) -> u32 {
        self.rd
    }

    /// seqNum expected next.
    pub fn expected_seq(&self) -> u32 {
        self.seq
    }

    /// Whether the peer has published its tx header (OpenRM `msgqRxLink`): `Ok(false)` while it
    /// is still all zero.
    ///
    /// # Errors
    /// [`QueueError::BadQueueHeader`] when it is published but not the shared layout.
    pub fn link(&mut self) -> Result<bool, QueueError> {
        if self.linked {
            return Ok(true);
        }
        let mut h: msgqTxHeader = self.region.read(self.theirs)?;
        if h.as_bytes().iter().all(|&b| b == 0) {
            return Ok(false);
        }
        h.writePtr = 0;
        if h != expected_tx_header() {
            self.trace.record(QueueTrace::BadQueueHeader);
            log::error!(
                "gsp: {} tx header is not the shared layout: {h:?}",
                queue_name(self.theirs)
            );
            return Err(QueueError::BadQueueHeader);
        }
        self.linked = true;
        Ok(true)
    }

    /// Published entries not yet consumed, after validating the peer's write pointer.
    ///
    /// # Errors
    /// [`QueueError::BadPointer`], [`QueueError::StalePointer`], [`QueueError::BadQueueHeader`].
    pub fn available(&mut self) -> Result<u32, QueueError> {
        if !self.link()? {
            return Ok(0);
        }
        let wr = self
            .region
            .load_u32(self.theirs + TX_WRITE_PTR, Ordering::Acquire)?;
        if wr >= MSG_COUNT {
            return Err(self.reject_pointer(QueueTrace::BadPointer { value: wr }));
        }
        let avail = used_slots(self.rd, wr);
        // The peer may only publish more: its write pointer never moves back over what it had
        // already published and we have not consumed.
        if avail < self.seen {
            let last = (self.rd + self.seen) % MSG_COUNT;
            return Err(self.reject_pointer(QueueTrace::StalePointer { value: wr, last }));
        }
        self.seen = avail;
        Ok(avail)
    }

    fn reject_pointer(&mut self, t: QueueTrace) -> QueueError {
        self.trace.record(t);
        log::error!(
            "gsp: {} peer write pointer rejected: {t:?}",
            queue_name(self.theirs)
        );
        match t {
            QueueTrace::BadPointer { .. } => QueueError::BadPointer,
            _ => QueueError::StalePointer,
        }
    }

    /// Receive the next message, if one is published: its payload (after the RPC header) is
    /// copied to the front of `buf`.
    ///
    /// # Errors
    /// - [`QueueError::is_skipped_message`] errors: the message was invalid and has been skipped
    ///   (the contents of `buf` are meaningless); call again for the next one.
    /// - Pointer errors as [`Rx::available`]: nothing was consumed.
    pub fn try_receive(&mut self, buf: &mut [u8]) -> Result<Option<Received>, QueueError> {
        let avail = self.available()?;
        if avail == 0 {
            return Ok(None);
        }
        let slot = self.rd;
        let mut hdr = GSP_MSG_QUEUE_ELEMENT::new_zeroed();
        self.copy_at(slot, 0, hdr.as_mut_bytes())?;
        match self.validate(slot, avail, &hdr, buf) {
            Ok(received) => {
                self.consume(received.elements)?;
                Ok(Some(received))
            }
            Err((e, t)) => {
                let skip = skip_extent(&hdr, avail);
                self.trace.record(t);
                log::warn!(
                    "gsp: {} rejected message at entry {slot} ({e:?}: {t:?}); skipping {skip}",
                    queue_name(self.theirs)
                );
                // The sender spent a seqNum on it; if the skip lost more, the next message
                // resynchronises the count (traced as SeqResync).
                self.resync = true;
                self.seq = self.seq.wrapping_add(1);
                self.consume(skip)?;
                Err(e)
            }
        }
    }

    /// Validate the message whose header (copied) is `hdr`, and copy its payload into `buf`.
    fn validate(
        &mut self,
        slot: u32,
        avail: u32,
        hdr: &GSP_MSG_QUEUE_ELEMENT,
        buf: &mut [u8],
    ) -> Result<Received, (QueueError, QueueTrace)> {
        let count = hdr.elemCount;
        if count == 0 || count > MAX_ELEMENTS || count > avail {
            let t = QueueTrace::BadElemCount {
                count,
                available: avail,
            };
            return Err((QueueError::BadElemCount, t));
        }
        let rpc_len = hdr.rpc.length as usize;
        if !(RPC_HDR_SIZE..=GSP_MSG_QUEUE_ELEMENT_SIZE_MAX - ELEMENT_HDR_SIZE).contains(&rpc_len) {
            return Err((
                QueueError::BadLength,
                QueueTrace::BadLength {
                    length: hdr.rpc.length,
                },
            ));
        }
        if elements_for(rpc_len) != count as usize {
            let t = QueueTrace::BadElemCount {
                count,
                available: avail,
            };
            return Err((QueueError::BadElemCount, t));
        }
        if hdr.rpc.signature != NV_VGPU_MSG_SIGNATURE_VALID
            || hdr.rpc.header_version != RPC_HEADER_VERSION_V03_00
        {
            let t = QueueTrace::BadRpcHeader {
                signature: hdr.rpc.signature,
                version: hdr.rpc.header_version,
            };
            return Err((QueueError::BadRpcHeader, t));
        }
        let len = rpc_len - RPC_HDR_SIZE;
        let Some(dst) = buf.get_mut(..len) else {
            // CAST: len < 64 KiB.
            let t = QueueTrace::BufferTooSmall { length: len as u32 };
            return Err((QueueError::BufferTooSmall, t));
        };
        let mut sum = Checksum::default();
        sum.add(0, hdr.as_bytes());
        // One page at a time: copy out, then checksum the copy while it is still in L1.
        let mut pos = MESSAGE_HDR_SIZE;
        for piece in dst.chunks_mut(GSP_PAGE_SIZE) {
            // Not expected to fail: ring_offset keeps every copy inside the queue.
            self.copy_at(slot, pos, piece).map_err(|e| {
                (
                    e,
                    QueueTrace::BadLength {
                        length: hdr.rpc.length,
                    },
                )
            })?;
            sum.add(pos, piece);
            pos += piece.len();
        }
        if sum.value() != 0 {
            let t = QueueTrace::BadChecksum {
                seq: hdr.seqNum,
                slot,
            };
            return Err((QueueError::BadChecksum, t));
        }
        if hdr.seqNum != self.seq {
            if !self.resync {
                let t = QueueTrace::BadSeqNum {
                    expected: self.seq,
                    got: hdr.seqNum,
                };
                return Err((QueueError::BadSeqNum, t));
            }
            self.trace.record(QueueTrace::SeqResync {
                expected: self.seq,
                got: hdr.seqNum,
            });
        }
        self.resync = false;
        self.seq = hdr.seqNum.wrapping_add(1);
        Ok(Received {
            rpc: hdr.rpc,
            len,
            seq: hdr.seqNum,
            elements: count,
        })
    }

    /// Copy `dst.len()` bytes from message offset `pos` of the message at `slot` (in at most
    /// two pieces: a message may wrap around the ring's end).
    fn copy_at(&self, slot: u32, pos: usize, dst: &mut [u8]) -> Result<(), QueueError> {
        let (at, to_end) = ring_offset(self.theirs, slot, pos);
        let (first, second) = dst.split_at_mut(to_end.min(dst.len()));
        self.region.read_bytes(at, first)?;
        if !second.is_empty() {
            let (at, _) = ring_offset(self.theirs, slot, pos + first.len());
            self.region.read_bytes(at, second)?;
        }
        Ok(())
    }

    /// Advance our read pointer past `count` entries and publish it.
    fn consume(&mut self, count: u32) -> Result<(), QueueError> {
        self.rd = (self.rd + count) % MSG_COUNT;
        self.seen = self.seen.saturating_sub(count);
        // Our reads of the entries complete before the peer may reuse them.
        fence(Ordering::SeqCst);
        self.region
            .store_u32(self.mine + RX_READ_PTR, self.rd, Ordering::Release)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference computation: XOR of little-endian u64 words of the zero-padded bytes.
    fn naive(bytes: &[u8]) -> u32 {
        let mut x = 0u64;
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            x ^= u64::from_le_bytes(w);
        }
        ((x >> 32) as u32) ^ (x as u32)
    }

    #[test]
    fn checksum_in_any_pieces_equals_the_word_xor() {
        let data: [u8; 300] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        for cut1 in [0, 1, 3, 7, 8, 9, 100, 299] {
            for cut2 in [cut1, cut1 + 1, 150.max(cut1), 300] {
                let (a, rest) = data.split_at(cut1);
                let (b, c) = rest.split_at(cut2 - cut1);
                let mut s = Checksum::default();
                // Out of order on purpose: XOR commutes.
                s.add(cut2, c);
                s.add(0, a);
                s.add(cut1, b);
                assert_eq!(s.value(), naive(&data), "cuts {cut1} {cut2}");
            }
        }
    }

    #[test]
    fn ring_arithmetic_keeps_one_slot_empty_and_wraps_by_modulo() {
        assert_eq!(free_slots(0, 0), 62);
        assert_eq!(free_slots(0, 62), 0);
        assert_eq!(free_slots(5, 4), 0);
        assert_eq!(free_slots(4, 5), 61);
        assert_eq!(used_slots(60, 2), 5);
        for rd in 0..MSG_COUNT {
            for wr in 0..MSG_COUNT {
                assert_eq!(free_slots(rd, wr) + used_slots(rd, wr), 62);
            }
        }
        assert_eq!(elements_for(32), 1);
        assert_eq!(elements_for(4096 - 48), 1);
        assert_eq!(elements_for(4096 - 47), 2);
        assert_eq!(elements_for(0x10000 - 48), 16);
    }

    #[test]
    fn ring_offsets_wrap_at_entry_63() {
        let base = CMDQ_OFFSET + ENTRY_OFFSET;
        assert_eq!(ring_offset(CMDQ_OFFSET, 0, 0), (base, 63 * 4096));
        assert_eq!(
            ring_offset(CMDQ_OFFSET, 62, 4095),
            (base + 62 * 4096 + 4095, 1)
        );
        assert_eq!(ring_offset(CMDQ_OFFSET, 62, 4096), (base, 63 * 4096));
        assert_eq!(
            ring_offset(STATQ_OFFSET, 61, 3 * 4096 + 8).0,
            STATQ_OFFSET + ENTRY_OFFSET + 4096 + 8
        );
    }
}
