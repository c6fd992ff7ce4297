//! The receiving end: copy out, validate, and skip what is bad without wedging.

use super::{
    elements_for, expected_tx_header, queue_name, ring_spans, used_slots, Checksum, QueueError,
    QueueTrace, QueueTraceRing, Side, ELEMENT_HDR_SIZE, MAX_ELEMENTS, MESSAGE_HDR_SIZE, MSG_COUNT,
    RPC_HDR_SIZE, RX_READ_PTR, TX_WRITE_PTR,
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

/// Payload bytes [`Rx::try_receive_or_verify`] copies before asking whether the rest is wanted:
/// room for the fixed part of any command the firmware side decides on (RM control 24 bytes,
/// RM alloc 32).
pub const PEEK_LEN: usize = 64;

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
    /// copied to the front of `buf`, checksummed in the same pass, and checked only then (what
    /// was checked is what the caller uses, whatever the peer writes meanwhile).
    ///
    /// # Errors
    /// - [`QueueError::is_skipped_message`] errors: the message was invalid and has been skipped
    ///   (the contents of `buf` are meaningless); call again for the next one.
    /// - Pointer errors as [`Rx::available`]: nothing was consumed.
    pub fn try_receive(&mut self, buf: &mut [u8]) -> Result<Option<Received>, QueueError> {
        self.receive(buf, 0, |_, _| true)
    }

    /// As [`Rx::try_receive`], for the firmware side, which reads the ring where it lies (the
    /// GSP over DMA). The first [`PEEK_LEN`] payload bytes (fewer if shorter) are copied to
    /// `buf`; `keep` sees the RPC header and those bytes (copied, checked for shape but not yet
    /// for the checksum) and says whether the rest is wanted. A wanted rest is copied after
    /// them as by [`Rx::try_receive`]; an unwanted one is checksummed in place, each byte read
    /// once, copied nowhere ([`Received::len`] still gives the whole length). Either way the
    /// message is validated in full, and consumed.
    ///
    /// Whatever the caller uses is the copy that was checked; the CPU side, which must copy
    /// before checking, uses [`Rx::try_receive`].
    ///
    /// # Errors
    /// As [`Rx::try_receive`] ([`QueueError::BufferTooSmall`] only for a wanted payload).
    pub fn try_receive_or_verify(
        &mut self,
        buf: &mut [u8],
        keep: impl FnOnce(&rpc_message_header_v03_00, &[u8]) -> bool,
    ) -> Result<Option<Received>, QueueError> {
        self.receive(buf, PEEK_LEN, keep)
    }

    /// Receive the next message: `peek` payload bytes are copied and shown to `keep`, which
    /// decides whether the rest is copied too.
    fn receive(
        &mut self,
        buf: &mut [u8],
        peek: usize,
        keep: impl FnOnce(&rpc_message_header_v03_00, &[u8]) -> bool,
    ) -> Result<Option<Received>, QueueError> {
        let avail = self.available()?;
        if avail == 0 {
            return Ok(None);
        }
        let slot = self.rd;
        let mut hdr = GSP_MSG_QUEUE_ELEMENT::new_zeroed();
        let head = self.copy_at(slot, 0, hdr.as_mut_bytes())?;
        match self.validate(slot, avail, (&hdr, head), buf, (peek, keep)) {
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

    /// Validate the message whose header (copied, with its part of the checksum) is `hdr`,
    /// copying `peek` payload bytes into `buf`, then the rest when `keep` wants it, and
    /// checksumming the rest in place otherwise.
    fn validate(
        &mut self,
        slot: u32,
        avail: u32,
        (hdr, mut sum): (&GSP_MSG_QUEUE_ELEMENT, Checksum),
        buf: &mut [u8],
        (peek, keep): (
            usize,
            impl FnOnce(&rpc_message_header_v03_00, &[u8]) -> bool,
        ),
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
        // Not expected to fail: ring_spans keeps every access inside the queue.
        let region_error = |e| {
            let t = QueueTrace::BadLength {
                length: hdr.rpc.length,
            };
            (e, t)
        };
        let (head, rest) = buf.split_at_mut(peek.min(len).min(buf.len()));
        if !head.is_empty() {
            sum.merge(
                self.copy_at(slot, MESSAGE_HDR_SIZE, head)
                    .map_err(region_error)?,
            );
        }
        let (pos, left) = (MESSAGE_HDR_SIZE + head.len(), len - head.len());
        if keep(&hdr.rpc, head) {
            let Some(dst) = rest.get_mut(..left) else {
                // CAST: len < 64 KiB.
                let t = QueueTrace::BufferTooSmall { length: len as u32 };
                return Err((QueueError::BufferTooSmall, t));
            };
            sum.merge(self.copy_at(slot, pos, dst).map_err(region_error)?);
        } else {
            sum.merge(self.sum_at(slot, pos, left).map_err(region_error)?);
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
    /// two pieces: a message may wrap around the ring's end), and return their part of the
    /// checksum, computed from the bytes copied in the same pass.
    fn copy_at(&self, slot: u32, pos: usize, dst: &mut [u8]) -> Result<Checksum, QueueError> {
        let mut sum = Checksum::default();
        let mut rest = dst;
        for (at, p, n) in ring_spans(self.theirs, slot, pos, rest.len()) {
            if n == 0 {
                continue;
            }
            let (now, later) = rest.split_at_mut(n.min(rest.len()));
            sum.add_words(p, self.region.read_bytes_xor(at, now)?);
            rest = later;
        }
        Ok(sum)
    }

    /// The checksum part of `len` bytes from message offset `pos` of the message at `slot`, read
    /// in place and copied nowhere.
    fn sum_at(&self, slot: u32, pos: usize, len: usize) -> Result<Checksum, QueueError> {
        let mut sum = Checksum::default();
        for (at, p, n) in ring_spans(self.theirs, slot, pos, len) {
            if n == 0 {
                continue;
            }
            sum.add_words(p, self.region.xor_bytes(at, n)?);
        }
        Ok(sum)
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
    extern crate std;
    use super::*;
    use crate::cmdq::fuzz::NoWait;
    use crate::cmdq::{
        MessageMeta, SharedQueues, Tx, CMDQ_OFFSET, ENTRY_OFFSET, MAX_PAYLOAD, QUEUE_REGION_SIZE,
    };
    use crate::fw::current::rpc::NV_VGPU_MSG_RESULT_RPC_PENDING;
    use pd_core::shm::{ReadWrite, Region};
    use std::vec;
    use std::vec::Vec;

    /// The driver's command-queue end, the firmware's, and a raw view to damage the ring with.
    fn cmdq() -> (Tx, Rx, Region<ReadWrite>) {
        let region = Region::from_static(vec![0u8; QUEUE_REGION_SIZE].leak());
        let (cpu, gsp) = (region.alias(), region.alias());
        let cpu = SharedQueues::new(cpu).unwrap();
        cpu.init_cpu(0x1000_0000).unwrap();
        let gsp = SharedQueues::new(gsp).unwrap();
        gsp.init_gsp().unwrap();
        let (tx, _) = cpu.split(Side::Cpu).unwrap();
        let (_, rx) = gsp.split(Side::Gsp).unwrap();
        (tx, rx, region)
    }

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 8) as u8)
            .collect()
    }

    fn send(tx: &mut Tx, body: &[u8]) {
        let meta = MessageMeta::reply(76, 9, NV_VGPU_MSG_RESULT_RPC_PENDING);
        tx.send_message(meta, body, &mut NoWait).unwrap();
    }

    #[test]
    fn an_unwanted_payload_is_verified_in_place_and_only_its_head_copied() {
        let (mut tx, mut rx, _) = cmdq();
        // Uneven sizes walk the messages around the ring: pieces start at every word phase
        // and several messages wrap at its end.
        for (i, len) in [3usize, 64, 65, 4000, 20_003, MAX_PAYLOAD, 777, 50_001]
            .iter()
            .cycle()
            .take(40)
            .enumerate()
        {
            let body = pattern(*len, i as u8);
            send(&mut tx, &body);
            let want = i % 2 == 0;
            let mut peeked = Vec::new();
            // A buffer as short as the head is enough when the rest is not wanted.
            let mut buf = vec![0xeeu8; if want { *len } else { PEEK_LEN }];
            let keep = |rpc: &rpc_message_header_v03_00, head: &[u8]| {
                assert_eq!(rpc.length as usize, RPC_HDR_SIZE + len);
                peeked.extend_from_slice(head);
                want
            };
            let m = rx.try_receive_or_verify(&mut buf, keep).unwrap().unwrap();
            assert_eq!(m.len, *len, "message {i}");
            let head = (*len).min(PEEK_LEN);
            assert_eq!(peeked, &body[..head]);
            if want {
                assert_eq!(buf, body);
            } else {
                assert_eq!(&buf[..head], &body[..head]);
                assert!(buf[head..].iter().all(|&b| b == 0xee));
            }
        }
        assert_eq!(rx.trace().recent().count(), 0);
    }

    #[test]
    fn a_damaged_payload_is_rejected_whether_wanted_or_not() {
        for want in [false, true] {
            let (mut tx, mut rx, raw) = cmdq();
            let bad = pattern(30_000, 1);
            send(&mut tx, &bad);
            send(&mut tx, &pattern(100, 2));
            // Entry 0 holds the first message: flip a payload byte far past the peeked head.
            let at = CMDQ_OFFSET + ENTRY_OFFSET + MESSAGE_HDR_SIZE + 20_000;
            let b: u8 = raw.read(at).unwrap();
            raw.write(at, &(b ^ 0x10)).unwrap();
            let mut buf = vec![0u8; 0x10000];
            assert_eq!(
                rx.try_receive_or_verify(&mut buf, |_, _| want),
                Err(QueueError::BadChecksum)
            );
            let m = rx.try_receive_or_verify(&mut buf, |_, _| true).unwrap();
            assert_eq!(m.map(|m| (m.len, m.seq)), Some((100, 1)));
            assert_eq!(&buf[..100], pattern(100, 2));
        }
    }
}
