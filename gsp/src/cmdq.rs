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
//! The copy and the checksum are one pass over the bytes (`pd_core::shm::Region::read_bytes_xor`
//! sums exactly what it copied); sending is one pass the same way (`write_bytes_xor`).
//!
//! The firmware side reads the ring where it lies, as the GSP does over DMA:
//! [`Rx::try_receive_or_verify`] copies the first [`PEEK_LEN`] payload bytes, lets the caller
//! decide from them whether it wants the rest, and checksums an unwanted rest in place, every
//! byte read once and copied nowhere. Every message is validated in full either way, and what a
//! caller uses is always the copy that was checked.
//!
//! Trust: the peer (GSP firmware, or the driver as seen by the model) controls every byte of the
//! region except our own headers' values, which we keep privately and only ever write.
use crate::fw::current::msgq::{
    msgqRxHeader, msgqTxHeader, GSP_MSG_QUEUE_ELEMENT, GSP_MSG_QUEUE_ELEMENT_HDR_SIZE,
    GSP_MSG_QUEUE_ELEMENT_SIZE_MAX, GSP_MSG_QUEUE_ELEMENT_SIZE_MIN, MSGQ_FLAGS_SWAP_RX,
};
use crate::fw::current::rpc::rpc_message_header_v03_00;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{fence, Ordering};
use pd_core::shm::{ReadWrite, Region, RegionError};
use pd_core::trace::{TraceEvent, TraceRing};

#[cfg(any(test, feature = "fuzz"))]
pub mod fuzz;
mod rx;
mod tx;

pub use rx::{Received, Rx, PEEK_LEN};
pub use tx::{CommandToGsp, MessageBody, MessageMeta, PayloadWriter, Tx, TxSignal};

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
        self.add_words(pos, pd_core::shm::xor_words(bytes));
    }

    /// XOR in `words`, the [`pd_core::shm::xor_words`] of bytes that sit at message offset `pos`
    /// (what the fused region copies return): rotated to the word phase of `pos`.
    pub fn add_words(&mut self, pos: usize, words: u64) {
        // CAST: pos % 8 < 8.
        self.0 ^= words.rotate_left(8 * (pos % 8) as u32);
    }

    /// XOR in another partial checksum of the same message.
    pub fn merge(&mut self, other: Checksum) {
        self.0 ^= other.0;
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

/// The ring spans that hold `len` bytes from message offset `pos` of the message at entry `slot`
/// of the queue at `queue`, as `(region offset, message offset, length)`: all in the first, unless
/// the message wraps at the ring's end, when the rest is in the second (from entry 0).
///
/// # Invariants
/// As [`ring_offset`], and `pos + len <= MAX_ELEMENTS * GSP_PAGE_SIZE`.
fn ring_spans(queue: usize, slot: u32, pos: usize, len: usize) -> [(usize, usize, usize); 2] {
    let (at, to_end) = ring_offset(queue, slot, pos);
    let first = len.min(to_end);
    let (wrapped, _) = ring_offset(queue, slot, pos + first);
    [(at, pos, first), (wrapped, pos + first, len - first)]
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
    fn ring_spans_split_only_where_the_ring_wraps() {
        let base = STATQ_OFFSET + ENTRY_OFFSET;
        assert_eq!(
            ring_spans(STATQ_OFFSET, 3, 48, 100),
            [
                (base + 3 * 4096 + 48, 48, 100),
                (base + 3 * 4096 + 148, 148, 0)
            ]
        );
        assert_eq!(
            ring_spans(STATQ_OFFSET, 61, 4000, 2 * 4096),
            [
                (base + 61 * 4096 + 4000, 4000, 4096 + 96),
                (base, 2 * 4096, 4096 - 96)
            ]
        );
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
