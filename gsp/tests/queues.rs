//! The message queues end to end: the driver's ends against a firmware-side peer built from the
//! same `Tx`/`Rx` code, at every wrap position, with continuation records, and with every kind of
//! damage a peer can do to the ring (each rejected without a panic or a hang, and the next good
//! message still received).

mod msgq_util;

use gsp::cmdq::{
    elements_for, CommandToGsp, MessageMeta, PayloadWriter, QueueError, QueueTrace, Received, Rx,
    MAX_PAYLOAD, MESSAGE_HDR_SIZE, MSG_COUNT, PTE_COUNT, QUEUE_REGION_SIZE,
};
use gsp::fw::current::msgq::msgqTxHeader;
use gsp::fw::current::rpc::{MsgFunction, NV_VGPU_MSG_RESULT_RPC_PENDING};
use msgq_util::{naive_checksum, pattern, NoWait, Pair, Pump, DMA_BASE};
use pd_core::trace::TraceEvent;
use std::sync::atomic::Ordering;

/// A test command: a fixed 24-byte part and a variable payload.
struct Blob {
    fixed: [u32; 6],
    payload: Vec<u8>,
    /// Bytes the payload writer actually writes (to test under/overfill).
    writes: usize,
}

impl Blob {
    fn new(payload: Vec<u8>) -> Self {
        let writes = payload.len();
        Self {
            fixed: [1, 2, 3, 4, 5, 6],
            payload,
            writes,
        }
    }
}

impl CommandToGsp for Blob {
    const FUNCTION: MsgFunction = MsgFunction::GspRmControl;
    type Command = [u32; 6];

    fn init(&self) -> [u32; 6] {
        self.fixed
    }

    fn variable_payload_len(&self) -> usize {
        self.payload.len()
    }

    fn init_variable_payload(&self, dst: &mut PayloadWriter<'_>) -> Result<(), QueueError> {
        // Write in uneven pieces so pieces straddle entries, the ring end and message ends.
        let mut data = pattern(self.writes, 0x5a);
        data[..self.payload.len().min(self.writes)]
            .copy_from_slice(&self.payload[..self.payload.len().min(self.writes)]);
        for chunk in data.chunks(4093) {
            dst.write(chunk)?;
        }
        Ok(())
    }
}

fn body_of(b: &Blob) -> Vec<u8> {
    let mut v: Vec<u8> = b.fixed.iter().flat_map(|w| w.to_le_bytes()).collect();
    v.extend_from_slice(&b.payload);
    v
}

/// Receive one message on `rx`, expecting success.
fn recv(rx: &mut Rx) -> (Received, Vec<u8>) {
    let mut buf = vec![0u8; 0x10000];
    let m = rx.try_receive(&mut buf).unwrap().expect("a message");
    buf.truncate(m.len);
    (m, buf)
}

/// Receive a command and its continuation records, reassembled.
fn recv_all(rx: &mut Rx, total: usize) -> (Received, Vec<u8>) {
    let (first, mut data) = recv(rx);
    while data.len() < total {
        let (m, more) = recv(rx);
        assert_eq!(m.rpc.function, u32::from(MsgFunction::ContinuationRecord));
        data.extend_from_slice(&more);
    }
    (first, data)
}

/// Move both cmdq pointers to `slot` with one-entry messages.
fn advance_cmdq(p: &mut Pair, slot: u32) {
    for i in 0..slot {
        p.cpu_tx
            .send(&Blob::new(vec![i as u8; 8]), i, &mut NoWait::default())
            .unwrap();
        recv(&mut p.gsp_rx);
    }
    assert_eq!((p.cpu_tx.write_ptr(), p.gsp_rx.read_ptr()), (slot, slot));
}

/// Move both statq pointers to `slot`.
fn advance_statq(p: &mut Pair, slot: u32) {
    for i in 0..slot {
        let meta = MessageMeta::reply(u32::from(MsgFunction::UcodeLibosPrint), i, 0);
        p.gsp_tx
            .send_message(meta, &[i as u8; 5][..], &mut NoWait::default())
            .unwrap();
        recv(&mut p.cpu_rx);
    }
}

#[test]
fn cpu_init_writes_ptes_and_cmdq_header_and_links_both_ways() {
    let mut p = Pair::new();
    let raw = p.raw();
    for i in 0..PTE_COUNT {
        assert_eq!(
            raw.read::<u64>(i * 8).unwrap(),
            DMA_BASE + (i as u64) * 0x1000
        );
    }
    assert_eq!(raw.read::<u64>(PTE_COUNT * 8).unwrap(), 0);
    let h: msgqTxHeader = raw.read(0x1000).unwrap();
    assert_eq!(
        (h.size, h.msgSize, h.msgCount, h.flags),
        (0x40000, 0x1000, 63, 1)
    );
    assert_eq!((h.rxHdrOff, h.entryOff, h.writePtr), (0x20, 0x1000, 0));
    assert_eq!(raw.read::<msgqTxHeader>(0x41000).unwrap(), h);
    assert!(p.cpu_rx.link().unwrap() && p.gsp_rx.link().unwrap());
    assert_eq!(QUEUE_REGION_SIZE, 0x81000);
}

#[test]
fn not_yet_linked_queue_is_empty_and_a_foreign_header_is_refused() {
    let mut p = Pair::new();
    let raw = p.raw();
    raw.fill(0x41000, 32, 0).unwrap();
    let mut buf = [0u8; 64];
    // All zero: the GSP has not initialised its queue yet. Nothing to read, no error.
    assert_eq!(p.cpu_rx.try_receive(&mut buf), Ok(None));
    // A header with another geometry: refused, traced.
    let mut h: msgqTxHeader = raw.read(0x1000).unwrap();
    h.msgCount = 64;
    raw.write(0x41000, &h).unwrap();
    assert_eq!(
        p.cpu_rx.try_receive(&mut buf),
        Err(QueueError::BadQueueHeader)
    );
    assert_eq!(p.cpu_rx.trace().count(QueueTrace::BadQueueHeader.kind()), 1);
    h.msgCount = 63;
    raw.write(0x41000, &h).unwrap();
    assert_eq!(p.cpu_rx.try_receive(&mut buf), Ok(None));
}

/// A command's bytes as they sit in the ring (golden fixture for the element and RPC headers).
#[test]
fn command_golden_bytes_in_the_ring() {
    let mut p = Pair::new();
    let mut sig = NoWait::default();
    p.cpu_tx
        .send(&Blob::new(vec![0xa0, 0xa1, 0xa2]), 5, &mut sig)
        .unwrap();
    assert_eq!(sig.rings, 1);
    let mut m = vec![0u8; MESSAGE_HDR_SIZE + 24 + 3 + 5];
    p.raw().read_bytes(Pair::cmdq_entry(0), &mut m).unwrap();
    let golden_hdr: [u8; 80] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // authTagBuffer
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // aadBuffer
        0xff, 0xff, 0xff, 0xff, // checkSum (checked below)
        0, 0, 0, 0, // seqNum 0
        1, 0, 0, 0, // elemCount 1
        0, 0, 0, 0, // padding
        0, 0, 0, 3, // header_version 3.0
        b'V', b'R', b'P', b'C', // signature
        59, 0, 0, 0, // length 32 + 24 + 3
        76, 0, 0, 0, // GSP_RM_CONTROL
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // results pending
        5, 0, 0, 0, // sequence
        0, 0, 0, 0, // spare
    ];
    let mut got = m[..80].to_vec();
    got[32..36].fill(0xff);
    assert_eq!(got, golden_hdr);
    assert_eq!(m[80..104], body_of(&Blob::new(vec![]))[..]);
    assert_eq!(
        m[104..112],
        [0xa0, 0xa1, 0xa2, 0, 0, 0, 0, 0],
        "payload, then zero padding"
    );
    assert_eq!(
        naive_checksum(&m[..107]),
        0,
        "checksum over 48 + rpc.length verifies"
    );
    let hdr = u32::from_le_bytes(m[32..36].try_into().unwrap());
    m[32..36].fill(0);
    assert_eq!(hdr, naive_checksum(&m[..107]));
    let wr = p.raw().load_u32(0x1000 + 16, Ordering::Acquire).unwrap();
    assert_eq!(wr, 1);
}

/// Every start position of the ring, for messages of 1, 2, 3, 7 and 16 entries, both ways.
#[test]
fn every_wrap_position_both_directions() {
    for elems in [1usize, 2, 3, 7, 16] {
        let payload_len = elems * 0x1000 - MESSAGE_HDR_SIZE - 24 - 7;
        for start in 0..MSG_COUNT {
            let mut p = Pair::new();
            advance_cmdq(&mut p, start);
            let cmd = Blob::new(pattern(payload_len, start as u8));
            p.cpu_tx
                .send(&cmd, 1000 + start, &mut NoWait::default())
                .unwrap();
            assert_eq!(p.cpu_tx.write_ptr(), (start + elems as u32) % MSG_COUNT);
            let (m, data) = recv(&mut p.gsp_rx);
            assert_eq!(m.elements as usize, elems);
            assert_eq!((m.rpc.function, m.rpc.sequence), (76, 1000 + start));
            assert_eq!(m.rpc.rpc_result, NV_VGPU_MSG_RESULT_RPC_PENDING);
            assert_eq!(data, body_of(&cmd), "elems {elems} start {start}");
            assert_eq!(p.gsp_rx.read_ptr(), p.cpu_tx.write_ptr());

            advance_statq(&mut p, start);
            let reply = pattern(payload_len + 24, !(start as u8));
            let meta = MessageMeta::reply(76, 1000 + start, 0);
            p.gsp_tx
                .send_message(meta, &reply[..], &mut NoWait::default())
                .unwrap();
            let (m, data) = recv(&mut p.cpu_rx);
            assert_eq!((m.rpc.rpc_result, m.rpc.sequence), (0, 1000 + start));
            assert_eq!(data, reply);
        }
    }
}

#[test]
fn continuation_records_at_every_start_position() {
    // Three full messages and a bit: 16 + 16 + 16 + 1 entries, all in the ring at once.
    let len = 3 * MAX_PAYLOAD + 100 - 24;
    for start in 0..MSG_COUNT {
        let mut p = Pair::new();
        advance_cmdq(&mut p, start);
        let cmd = Blob::new(pattern(len, start as u8));
        let mut sig = NoWait::default();
        p.cpu_tx.send(&cmd, 7, &mut sig).unwrap();
        assert_eq!(sig.rings, 4, "one doorbell per message");
        assert_eq!(p.cpu_tx.write_ptr(), (start + 49) % MSG_COUNT);
        let (first, data) = recv_all(&mut p.gsp_rx, len + 24);
        assert_eq!(first.rpc.function, 76);
        assert_eq!(first.len, MAX_PAYLOAD);
        assert_eq!(data, body_of(&cmd));
    }
}

#[test]
fn payload_boundaries_split_exactly_where_nova_does() {
    // (body bytes, messages): MAX_PAYLOAD fits one message; one more byte needs a record.
    for (body, msgs) in [
        (0, 1),
        (1, 1),
        (MAX_PAYLOAD, 1),
        (MAX_PAYLOAD + 1, 2),
        (2 * MAX_PAYLOAD, 2),
        (2 * MAX_PAYLOAD + 1, 3),
    ] {
        let mut p = Pair::new();
        let meta = MessageMeta::command(MsgFunction::GspRmAlloc, 3);
        let data = pattern(body, 3);
        let mut sig = NoWait::default();
        p.cpu_tx.send_message(meta, &data[..], &mut sig).unwrap();
        assert_eq!(sig.rings, msgs, "body {body}");
        let (_, got) = recv_all(&mut p.gsp_rx, body);
        assert_eq!(got, data);
        assert_eq!(p.gsp_rx.try_receive(&mut [0u8; 16]), Ok(None));
        assert_eq!(elements_for(32 + body.min(MAX_PAYLOAD)) <= 16, true);
    }
}

/// A 256 KiB payload does not fit the ring at once: the sender waits for the peer mid-command.
#[test]
fn bulk_payload_waits_for_the_peer_between_records() {
    let mut p = Pair::new();
    let len = 256 * 1024;
    let data = pattern(len, 0x77);
    let meta = MessageMeta::command(MsgFunction::GspRmControl, 9);
    let mut pump = Pump {
        peer: &mut p.gsp_rx,
        got: Vec::new(),
        waits: 0,
    };
    p.cpu_tx.send_message(meta, &data[..], &mut pump).unwrap();
    assert!(pump.waits > 0);
    let mut got: Vec<u8> = Vec::new();
    let mut functions = Vec::new();
    for (f, d) in pump.got.drain(..) {
        functions.push(f);
        got.extend(d);
    }
    while let Ok(Some(m)) = {
        let mut buf = vec![0u8; 0x10000];
        let r = p.gsp_rx.try_receive(&mut buf);
        if let Ok(Some(m)) = &r {
            got.extend_from_slice(&buf[..m.len]);
            functions.push(m.rpc.function);
        }
        r
    } {
        let _ = m;
    }
    assert_eq!(got, data);
    assert_eq!(functions[0], 76);
    assert!(functions[1..].iter().all(|&f| f == 71));
    assert_eq!(functions.len(), len.div_ceil(MAX_PAYLOAD));
}

#[test]
fn a_full_ring_times_out_without_publishing_anything() {
    let mut p = Pair::new();
    let mut sig = NoWait::default();
    for i in 0..62 {
        p.cpu_tx.send(&Blob::new(vec![]), i, &mut sig).unwrap();
    }
    assert_eq!(p.cpu_tx.free_slots(), Ok(0));
    assert_eq!(
        p.cpu_tx.send(&Blob::new(vec![]), 62, &mut sig),
        Err(QueueError::Timeout)
    );
    assert_eq!(p.cpu_tx.trace().count(QueueTrace::SendTimeout.kind()), 1);
    assert_eq!(p.cpu_tx.write_ptr(), 62);
    // Once the peer consumes, sending works again.
    recv(&mut p.gsp_rx);
    p.cpu_tx.send(&Blob::new(vec![1]), 62, &mut sig).unwrap();
}

#[test]
fn payload_that_does_not_fill_its_space_is_refused_and_nothing_is_published() {
    let mut p = Pair::new();
    let mut under = Blob::new(vec![1; 100]);
    under.writes = 99;
    assert_eq!(
        p.cpu_tx.send(&under, 1, &mut NoWait::default()),
        Err(QueueError::PayloadUnderfilled)
    );
    let mut over = Blob::new(vec![1; 100]);
    over.writes = 101;
    assert_eq!(
        p.cpu_tx.send(&over, 2, &mut NoWait::default()),
        Err(QueueError::PayloadOverflow)
    );
    assert_eq!(p.cpu_tx.write_ptr(), 0);
    assert_eq!(p.gsp_rx.try_receive(&mut [0u8; 256]), Ok(None));
    // The queue is intact: the next command goes through with seqNum 0.
    p.cpu_tx
        .send(&Blob::new(vec![7; 10]), 3, &mut NoWait::default())
        .unwrap();
    let (m, _) = recv(&mut p.gsp_rx);
    assert_eq!((m.seq, m.rpc.sequence), (0, 3));
}

/// Three status messages A, B, C; `damage` spoils B in the ring. B must be rejected with
/// `expect`, and A and C received intact.
fn spoil_middle(start: u32, expect: QueueError, damage: impl Fn(&mut Pair, usize)) {
    let mut p = Pair::new();
    advance_statq(&mut p, start);
    let bodies = [pattern(100, 1), pattern(5000, 2), pattern(300, 3)];
    for (i, b) in bodies.iter().enumerate() {
        let meta = MessageMeta::reply(u32::from(MsgFunction::PostEvent), i as u32, 0);
        p.gsp_tx
            .send_message(meta, &b[..], &mut NoWait::default())
            .unwrap();
    }
    let b_at = Pair::statq_entry((start + 1) % MSG_COUNT);
    damage(&mut p, b_at);
    let (_, a) = recv(&mut p.cpu_rx);
    assert_eq!(a, bodies[0]);
    let mut buf = vec![0u8; 0x10000];
    assert_eq!(p.cpu_rx.try_receive(&mut buf), Err(expect), "start {start}");
    assert!(expect.is_skipped_message());
    let (m, c) = recv(&mut p.cpu_rx);
    assert_eq!(
        c, bodies[2],
        "the next good message after a {expect:?} at start {start}"
    );
    assert_eq!(m.rpc.sequence, 2);
    assert_eq!(p.cpu_rx.try_receive(&mut buf), Ok(None));
    assert_eq!(p.cpu_rx.read_ptr(), p.gsp_tx.write_ptr());
}

/// Rewrite the checksum of the message at `at` after tampering (so only the intended check
/// fails).
fn fix_checksum(p: &mut Pair, at: usize) {
    let raw = p.raw();
    let len = raw.read::<u32>(at + 56).unwrap() as usize + 48;
    let mut m = vec![0u8; len];
    // The message may wrap; these tests place B so that it does not when fixing checksums.
    raw.read_bytes(at, &mut m).unwrap();
    m[32..36].fill(0);
    raw.write(at + 32, &naive_checksum(&m)).unwrap();
}

#[test]
fn corrupt_checksum_is_rejected_and_the_next_message_received() {
    for start in [0, 30, 61, 62] {
        spoil_middle(start, QueueError::BadChecksum, |p, at| {
            let raw = p.raw();
            let b: u8 = raw.read(at + 200).unwrap();
            raw.write(at + 200, &(b ^ 0x10)).unwrap();
        });
    }
}

#[test]
fn wrong_seqnum_is_rejected_and_the_next_message_received() {
    spoil_middle(3, QueueError::BadSeqNum, |p, at| {
        p.raw().write(at + 36, &77u32).unwrap();
        fix_checksum(p, at);
    });
    // A replay of an old message (valid checksum, old seqNum) is refused the same way.
    spoil_middle(10, QueueError::BadSeqNum, |p, at| {
        p.raw().write(at + 36, &0u32).unwrap();
        fix_checksum(p, at);
    });
}

#[test]
fn oversized_or_inconsistent_elemcount_is_rejected_and_the_next_message_received() {
    for count in [0u32, 3, 17, 40, 1000, u32::MAX] {
        spoil_middle(5, QueueError::BadElemCount, |p, at| {
            p.raw().write(at + 40, &count).unwrap();
            fix_checksum(p, at);
        });
    }
}

#[test]
fn bad_length_and_rpc_header_are_rejected_and_the_next_message_received() {
    for length in [0u32, 31, 0x10000 - 47, u32::MAX] {
        spoil_middle(8, QueueError::BadLength, |p, at| {
            p.raw().write(at + 56, &length).unwrap();
        });
    }
    spoil_middle(8, QueueError::BadRpcHeader, |p, at| {
        p.raw().write(at + 52, b"XRPC").unwrap();
        fix_checksum(p, at);
    });
    spoil_middle(8, QueueError::BadRpcHeader, |p, at| {
        p.raw().write(at + 48, &0x0200_0000u32).unwrap();
        fix_checksum(p, at);
    });
}

#[test]
fn message_larger_than_the_buffer_is_skipped() {
    let mut p = Pair::new();
    for (i, len) in [2000usize, 10].iter().enumerate() {
        let meta = MessageMeta::reply(0x1003, i as u32, 0);
        p.gsp_tx
            .send_message(meta, &pattern(*len, 0)[..], &mut NoWait::default())
            .unwrap();
    }
    let mut small = [0u8; 1000];
    assert_eq!(
        p.cpu_rx.try_receive(&mut small),
        Err(QueueError::BufferTooSmall)
    );
    let m = p.cpu_rx.try_receive(&mut small).unwrap().unwrap();
    assert_eq!(&small[..m.len], &pattern(10, 0)[..]);
}

#[test]
fn out_of_range_write_pointer_is_an_error_not_a_hang() {
    let mut p = Pair::new();
    let meta = MessageMeta::reply(0x1001, 0, 0);
    p.gsp_tx
        .send_message(meta, &[1u8, 2, 3][..], &mut NoWait::default())
        .unwrap();
    let raw = p.raw();
    raw.store_u32(Pair::STATQ_WRITE_PTR, 63, Ordering::Release)
        .unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        assert_eq!(p.cpu_rx.try_receive(&mut buf), Err(QueueError::BadPointer));
    }
    assert_eq!(
        p.cpu_rx
            .trace()
            .count(QueueTrace::BadPointer { value: 0 }.kind()),
        3
    );
    raw.store_u32(Pair::STATQ_WRITE_PTR, 1, Ordering::Release)
        .unwrap();
    assert_eq!(recv(&mut p.cpu_rx).1, vec![1, 2, 3]);
}

#[test]
fn write_pointer_moving_backwards_is_stale() {
    let mut p = Pair::new();
    for i in 0..3 {
        let meta = MessageMeta::reply(0x1003, i, 0);
        p.gsp_tx
            .send_message(meta, &[i as u8; 9][..], &mut NoWait::default())
            .unwrap();
    }
    assert_eq!(p.cpu_rx.available(), Ok(3));
    recv(&mut p.cpu_rx);
    let raw = p.raw();
    raw.store_u32(Pair::STATQ_WRITE_PTR, 1, Ordering::Release)
        .unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        p.cpu_rx.try_receive(&mut buf),
        Err(QueueError::StalePointer)
    );
    raw.store_u32(Pair::STATQ_WRITE_PTR, 3, Ordering::Release)
        .unwrap();
    assert_eq!(recv(&mut p.cpu_rx).1, vec![1; 9]);
    assert_eq!(recv(&mut p.cpu_rx).1, vec![2; 9]);
}

#[test]
fn bad_peer_read_pointer_is_an_error_on_send() {
    let mut p = Pair::new();
    let mut sig = NoWait::default();
    p.cpu_tx.send(&Blob::new(vec![]), 0, &mut sig).unwrap();
    p.cpu_tx.send(&Blob::new(vec![]), 1, &mut sig).unwrap();
    let raw = p.raw();
    // Out of range.
    raw.store_u32(Pair::GSP_READ_PTR, 100, Ordering::Release)
        .unwrap();
    assert_eq!(
        p.cpu_tx.send(&Blob::new(vec![]), 2, &mut sig),
        Err(QueueError::BadPointer)
    );
    // Past what was published (the GSP cannot have consumed entry 2).
    raw.store_u32(Pair::GSP_READ_PTR, 5, Ordering::Release)
        .unwrap();
    assert_eq!(
        p.cpu_tx.send(&Blob::new(vec![]), 2, &mut sig),
        Err(QueueError::StalePointer)
    );
    // Forward within what was published: fine.
    raw.store_u32(Pair::GSP_READ_PTR, 1, Ordering::Release)
        .unwrap();
    assert_eq!(p.cpu_tx.free_slots(), Ok(61));
    // Backwards again: stale.
    raw.store_u32(Pair::GSP_READ_PTR, 0, Ordering::Release)
        .unwrap();
    assert_eq!(p.cpu_tx.free_slots(), Err(QueueError::StalePointer));
    assert_eq!(
        p.cpu_tx
            .trace()
            .count(QueueTrace::StalePointer { value: 0, last: 0 }.kind()),
        2
    );
}

#[test]
fn garbage_between_messages_is_skipped_entry_by_entry() {
    // The GSP publishes a two-entry message that is then overwritten with garbage: both entries
    // are rejected one at a time (nothing in them is plausible), and the next good message is
    // accepted with a traced seqNum resync (two skips counted two seqNums, the peer spent one).
    let mut p = Pair::new();
    let meta = MessageMeta::reply(0x1006, 0, 0);
    p.gsp_tx
        .send_message(meta, &[9u8; 5000][..], &mut NoWait::default())
        .unwrap();
    p.raw().fill(Pair::statq_entry(0), 0x2000, 0xa5).unwrap();
    let mut buf = vec![0u8; 0x10000];
    assert_eq!(
        p.cpu_rx.try_receive(&mut buf),
        Err(QueueError::BadElemCount)
    );
    assert_eq!(p.cpu_rx.read_ptr(), 1);
    assert_eq!(
        p.cpu_rx.try_receive(&mut buf),
        Err(QueueError::BadElemCount)
    );
    assert_eq!(p.cpu_rx.read_ptr(), 2);
    let meta = MessageMeta::reply(0x1006, 1, 0);
    p.gsp_tx
        .send_message(meta, &[1u8; 4][..], &mut NoWait::default())
        .unwrap();
    let m = p.cpu_rx.try_receive(&mut buf).unwrap().unwrap();
    assert_eq!((m.seq, &buf[..4]), (1, &[1u8; 4][..]));
    assert_eq!(
        p.cpu_rx.trace().count(
            QueueTrace::SeqResync {
                expected: 0,
                got: 0
            }
            .kind()
        ),
        1
    );
    assert_eq!(p.cpu_rx.expected_seq(), 2);
}

#[test]
fn random_traffic_round_trips() {
    let mut rng = msgq_util::XorShift(0x1234_5678_9abc_def1);
    let mut p = Pair::new();
    for i in 0..2000u32 {
        let len = match rng.below(4) {
            0 => rng.below(64) as usize,
            1 => rng.below(0x3000) as usize,
            2 => rng.below(MAX_PAYLOAD as u64) as usize,
            _ => rng.below(3 * MAX_PAYLOAD as u64) as usize,
        };
        let data = pattern(len, i as u8);
        let meta = MessageMeta::command(MsgFunction::GspRmAlloc, i);
        let mut pump = Pump {
            peer: &mut p.gsp_rx,
            got: Vec::new(),
            waits: 0,
        };
        p.cpu_tx.send_message(meta, &data[..], &mut pump).unwrap();
        let mut got: Vec<u8> = pump.got.drain(..).flat_map(|(_, d)| d).collect();
        while got.len() < len || (len == 0 && got.is_empty()) {
            let (_, d) = recv(&mut p.gsp_rx);
            got.extend(d);
            if len == 0 {
                break;
            }
        }
        assert_eq!(got, data, "message {i} of {len} bytes");
    }
    assert_eq!(
        p.gsp_rx.trace().counters().count(),
        0,
        "no rejections on clean traffic"
    );
}

#[test]
fn tx_and_rx_sides_are_independent_ends() {
    // Each side's Tx is the other side's Rx: the model uses (statq Tx, cmdq Rx) from this code.
    let mut p = Pair::new();
    let meta = MessageMeta::command(MsgFunction::GetGspStaticInfo, 1);
    p.cpu_tx
        .send_message(meta, &[0u8; 1656][..], &mut NoWait::default())
        .unwrap();
    let (m, d) = recv(&mut p.gsp_rx);
    assert_eq!(m.function(), Ok(MsgFunction::GetGspStaticInfo));
    let mut reply = d.clone();
    reply[1224..1232].copy_from_slice(&(1u64 << 32).to_le_bytes());
    let meta = MessageMeta::reply(m.rpc.function, m.rpc.sequence, 0);
    p.gsp_tx
        .send_message(meta, &reply[..], &mut NoWait::default())
        .unwrap();
    let (r, d) = recv(&mut p.cpu_rx);
    assert_eq!(
        (r.rpc.function, r.rpc.sequence, r.rpc.rpc_result),
        (65, 1, 0)
    );
    assert_eq!(d, reply);
}
