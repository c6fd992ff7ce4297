//! The sending end: commands built in place in the ring, split into continuation records.

use super::{
    elements_for, free_slots, queue_name, ring_spans, used_slots, Checksum, QueueError, QueueTrace,
    QueueTraceRing, Side, MAX_PAYLOAD, MESSAGE_HDR_SIZE, MSG_COUNT, RPC_HDR_SIZE, RX_READ_PTR,
    TX_WRITE_PTR,
};
use crate::fw::current::msgq::GSP_MSG_QUEUE_ELEMENT;
use crate::fw::current::rpc::{
    rpc_message_header_v03_00, MsgFunction, NV_VGPU_MSG_RESULT_RPC_PENDING,
    NV_VGPU_MSG_SIGNATURE_VALID, RPC_HEADER_VERSION_V03_00,
};
use core::mem::size_of;
use core::sync::atomic::{fence, Ordering};
use pd_core::shm::{ReadWrite, Region};
use zerocopy::{FromZeros, Immutable, IntoBytes};

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
    pub(super) fn new(region: Region<ReadWrite>, side: Side) -> Self {
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
            // Copied and checksummed in one pass over the bytes.
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            let sum = self.put(slot, pos, now)?;
            if let Some(m) = &mut self.open {
                m.sum.merge(sum);
                m.written += now.len();
            }
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

    /// Copy `bytes` to message offset `pos` of the message at `slot` (in at most two pieces: a
    /// message may wrap around the ring's end) and return their part of the checksum, computed
    /// in the same pass as the copy.
    fn put(&mut self, slot: u32, pos: usize, bytes: &[u8]) -> Result<Checksum, QueueError> {
        let mut sum = Checksum::default();
        let mut rest = bytes;
        for (at, p, n) in ring_spans(self.tx.mine, slot, pos, bytes.len()) {
            if n == 0 {
                continue;
            }
            let (now, later) = rest.split_at(n.min(rest.len()));
            sum.add_words(p, self.tx.region.write_bytes_xor(at, now)?);
            rest = later;
        }
        Ok(sum)
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
        // Zeros add nothing to the checksum.
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
        // The header's own part of the sum is already in (with checkSum still zero).
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
