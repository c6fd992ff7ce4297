//! The receiving end: copy out, validate, and skip what is bad without wedging.

use super::{
    elements_for, expected_tx_header, queue_name, ring_offset, used_slots, Checksum, QueueError,
    QueueTrace, QueueTraceRing, Side, ELEMENT_HDR_SIZE, GSP_PAGE_SIZE, MAX_ELEMENTS,
    MESSAGE_HDR_SIZE, MSG_COUNT, RPC_HDR_SIZE, RX_READ_PTR, TX_WRITE_PTR,
};
use crate::fw::current::msgq::{
    msgqTxHeader, GSP_MSG_QUEUE_ELEMENT, GSP_MSG_QUEUE_ELEMENT_SIZE_MAX,
};
use crate::fw::current::rpc::{
    rpc_message_header_v03_00, MsgFunction, UnknownFunction, NV_VGPU_MSG_SIGNATURE_VALID,
    RPC_HEADER_VERSION_V03_00,
};
use core::sync::atomic::{fence, Ordering};
use pd_core::shm::{ReadWrite, Region};
use zerocopy::{FromZeros, IntoBytes};

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
    pub(super) fn new(region: Region<ReadWrite>, side: Side) -> Self {
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
