//! The RPC layer against a scripted firmware peer (built from the same queue code): typed
//! commands on the wire, replies matched by function and sequence, events dispatched in order
//! and not lost, continuation records reassembled, timeouts and failures typed.

mod msgq_util;

use gsp::cmdq::{MessageMeta, QueueError, Received, Rx, Tx, MAX_PAYLOAD};
use gsp::fw::current::registry::{PACKED_REGISTRY_ENTRY, PACKED_REGISTRY_TABLE};
use gsp::fw::current::rpc::{
    rpc_gsp_rm_alloc_v03_00, rpc_gsp_rm_control_v03_00, rpc_message_header_v03_00,
    rpc_rc_triggered_v17_02, MsgFunction, NV_VGPU_MSG_RESULT_RPC_PENDING,
};
use gsp::fw::current::static_info::GspStaticConfigInfo;
use gsp::fw::current::sysinfo::GspSystemInfo;
use gsp::regs::{Mmio, MmioError};
use gsp::rpc::{
    system_info, Clock, Event, EventSink, RegistryConvention, RmAlloc, RmControl, RmFree, Rpc,
    RpcError, RpcTrace, SetRegistry, SetSystemInfo, SystemInfoParams, NOVA_REGISTRY,
};
use msgq_util::{pattern, NoWait, Pair};
use pd_core::shm::{ReadWrite, Region};
use pd_core::trace::TraceEvent;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// BAR0 as a map; records doorbell writes.
#[derive(Default)]
struct MapMmio {
    regs: HashMap<u32, u32>,
    doorbells: u32,
}

impl Mmio for MapMmio {
    fn read32(&mut self, offset: u32) -> Result<u32, MmioError> {
        Ok(self.regs.get(&offset).copied().unwrap_or(0))
    }

    fn write32(&mut self, offset: u32, value: u32) -> Result<(), MmioError> {
        if offset == 0x110c00 {
            self.doorbells += 1;
        }
        self.regs.insert(offset, value);
        Ok(())
    }
}

type Script = Box<dyn FnMut(&Received, &[u8], &mut Tx)>;

/// The firmware side: runs whenever the driver waits (its clock's `delay_us`), answering each
/// command it receives with `script`.
struct FakeGsp {
    tx: Tx,
    rx: Rx,
    now: u64,
    script: Script,
    seen: Vec<(rpc_message_header_v03_00, Vec<u8>)>,
}

impl FakeGsp {
    fn new(tx: Tx, rx: Rx, script: Script) -> Self {
        Self {
            tx,
            rx,
            now: 0,
            script,
            seen: Vec::new(),
        }
    }

    fn step(&mut self) {
        let mut buf = vec![0u8; 0x40000];
        while let Some(m) = self.rx.try_receive(&mut buf).unwrap() {
            self.seen.push((m.rpc, buf[..m.len].to_vec()));
            (self.script)(&m, &buf[..m.len], &mut self.tx);
        }
    }
}

impl Clock for FakeGsp {
    fn now_ns(&mut self) -> u64 {
        self.now
    }

    fn delay_us(&mut self, us: u32) {
        self.now += u64::from(us) * 1000;
        self.step();
    }
}

/// Send `payload` as function `f` from the firmware side.
fn gsp_send(tx: &mut Tx, f: u32, sequence: u32, result: u32, payload: &[u8]) {
    tx.send_message(
        MessageMeta::reply(f, sequence, result),
        payload,
        &mut NoWait::default(),
    )
    .unwrap();
}

/// Records events as owned values.
#[derive(Default)]
struct Sink(Vec<String>);

impl EventSink for Sink {
    fn event(&mut self, e: Event<'_>) {
        self.0.push(match e {
            Event::LibosPrint { text, .. } => format!("print {}", String::from_utf8_lossy(text)),
            Event::PostEvent { header, data } => format!("post {} {:?}", header.notifyIndex, data),
            Event::Unexpected { rpc } => format!("unexpected {} {}", rpc.function, rpc.sequence),
            other => format!("{other:?}"),
        });
    }
}

fn setup(script: Script) -> (Rpc<'static>, FakeGsp, Box<msgq_util::Shm>) {
    let Pair {
        cpu_tx,
        cpu_rx,
        gsp_tx,
        gsp_rx,
        shm,
    } = Pair::new();
    let buf: &'static mut [u8] = Box::leak(vec![0u8; 0x40000].into_boxed_slice());
    (
        Rpc::new(cpu_tx, cpu_rx, buf),
        FakeGsp::new(gsp_tx, gsp_rx, script),
        shm,
    )
}

fn libos_print(tx: &mut Tx, text: &str) {
    let mut p = Vec::new();
    p.extend_from_slice(&0xf3d722_00u32.to_le_bytes());
    p.extend_from_slice(&(text.len() as u32).to_le_bytes());
    p.extend_from_slice(text.as_bytes());
    gsp_send(tx, 0x100c, 0, 0, &p);
}

#[test]
fn boot_commands_are_posted_with_a_doorbell_each_and_exact_bytes() {
    let (mut rpc, mut gsp, _shm) = setup(Box::new(|_, _, _| {}));
    let mut mmio = MapMmio::default();
    let info = system_info(&SystemInfoParams {
        bar0: 0xf000_0000,
        bar1: 0xe000_0000,
        bar3: 0xd000_0000,
        bus_devfn: 0x0100,
        vendor: 0x10de,
        device: 0x2684,
        subsystem_vendor: 0x10de,
        subsystem_device: 0x16f3,
        revision: 0xa1,
    });
    let s0 = rpc.post(&SetSystemInfo(info), &mut mmio, &mut gsp).unwrap();
    let reg = SetRegistry {
        entries: &NOVA_REGISTRY,
        convention: RegistryConvention::default(),
    };
    let s1 = rpc.post(&reg, &mut mmio, &mut gsp).unwrap();
    assert_eq!((s0, s1, mmio.doorbells), (0, 1, 2));
    gsp.step();
    let (h, body) = &gsp.seen[0];
    assert_eq!(
        (h.function, h.sequence, h.rpc_result),
        (72, 0, NV_VGPU_MSG_RESULT_RPC_PENDING)
    );
    assert_eq!(h.length as usize, 32 + 928);
    let got = GspSystemInfo::read_from_bytes(body).unwrap();
    assert_eq!(got, info);
    assert_eq!(
        &body[88..92],
        &[0xde, 0x10, 0x84, 0x26],
        "PCIDeviceID = device << 16 | vendor"
    );
    assert_eq!(got.maxUserVa, (1 << 47) - 4096);
    assert_eq!(
        (got.pciConfigMirrorBase, got.pciConfigMirrorSize),
        (0x88000, 0x1000)
    );
    let (h, body) = &gsp.seen[1];
    assert_eq!((h.function, h.sequence), (73, 1));
    assert_eq!(body, &registry_golden(RegistryConvention::OpenRm));
}

/// The table nova's three entries make, byte for byte, written out by hand.
fn registry_golden(conv: RegistryConvention) -> Vec<u8> {
    let names = b"RMSecBusResetEnable\0RMForcePcieConfigSave\0RMDevidCheckIgnore\0";
    let entries_end = 8 + 3 * 16;
    let (size, length) = match conv {
        RegistryConvention::OpenRm => (entries_end + names.len(), 4u32),
        RegistryConvention::Nova => (3 * 16 + names.len(), 0u32),
    };
    let mut v = Vec::new();
    v.extend_from_slice(&(size as u32).to_le_bytes());
    v.extend_from_slice(&3u32.to_le_bytes());
    let offsets = [entries_end, entries_end + 20, entries_end + 20 + 22];
    for off in offsets {
        v.extend_from_slice(&(off as u32).to_le_bytes());
        v.extend_from_slice(&[1, 0, 0, 0]); // DWORD + padding
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&length.to_le_bytes());
    }
    v.extend_from_slice(names);
    v
}

#[test]
fn registry_conventions_differ_only_in_size_and_length() {
    for conv in [RegistryConvention::OpenRm, RegistryConvention::Nova] {
        let (mut rpc, mut gsp, _shm) = setup(Box::new(|_, _, _| {}));
        let reg = SetRegistry {
            entries: &NOVA_REGISTRY,
            convention: conv,
        };
        rpc.post(&reg, &mut MapMmio::default(), &mut gsp).unwrap();
        gsp.step();
        let body = &gsp.seen[0].1;
        assert_eq!(body, &registry_golden(conv), "{conv:?}");
        let (t, rest) = PACKED_REGISTRY_TABLE::read_from_prefix(body).unwrap();
        let (e, _) = PACKED_REGISTRY_ENTRY::read_from_prefix(rest).unwrap();
        let name = &body[e.nameOffset as usize..][..19];
        assert_eq!((t.numEntries, name), (3, &b"RMSecBusResetEnable"[..]));
    }
}

#[test]
fn static_info_reply_is_matched_and_events_before_it_are_dispatched_in_order() {
    let (mut rpc, mut gsp, _shm) = setup(Box::new(|m, body, tx| {
        assert_eq!(m.rpc.function, 65);
        assert!(body.iter().all(|&b| b == 0), "request is zero-filled");
        libos_print(tx, "hello");
        // A reply with the right function but a stale sequence: not ours.
        gsp_send(tx, 65, m.rpc.sequence + 100, 0, &[0u8; 1656]);
        let mut post = vec![0u8; 29];
        post[8] = 7; // notifyIndex
        post[24] = 2; // eventDataSize
        post.extend_from_slice(&[0xaa, 0xbb]);
        gsp_send(tx, 0x1003, 0, 0, &post);
        let mut s = GspStaticConfigInfo::new_zeroed();
        s.fb_length = 24 << 30;
        s.gpuNameString[..6].copy_from_slice(b"AD102\0");
        s.hInternalClient = 0xc1e0_0001;
        gsp_send(tx, 65, m.rpc.sequence, 0, s.as_bytes());
    }));
    let mut sink = Sink::default();
    let s = rpc
        .get_static_info(&mut MapMmio::default(), &mut gsp, &mut sink)
        .unwrap();
    assert_eq!((s.fb_length, s.hInternalClient), (24 << 30, 0xc1e0_0001));
    assert_eq!(&s.gpuNameString[..5], b"AD102");
    assert_eq!(
        sink.0,
        ["print hello", "unexpected 65 100", "post 7 [170, 187]"]
    );
    assert_eq!(
        rpc.trace().count(
            RpcTrace::Unexpected {
                function: 0,
                sequence: 0
            }
            .kind()
        ),
        1
    );
}

#[test]
fn a_parked_channel_resumes_on_another_buffer_with_its_sequence() {
    let (rpc, mut gsp, _shm) = setup(Box::new(|m, _, tx| {
        let s = GspStaticConfigInfo::new_zeroed();
        gsp_send(tx, 65, m.rpc.sequence, 0, s.as_bytes());
    }));
    let (mut mmio, mut sink) = (MapMmio::default(), Sink::default());
    // Park after each call and resume on a fresh buffer every time: the sequence carries on.
    let mut parked = Some(rpc.park());
    for round in 0..3u32 {
        let mut buf = vec![0u8; MAX_PAYLOAD];
        let mut rpc = parked.take().unwrap().resume(&mut buf);
        rpc.get_static_info(&mut mmio, &mut gsp, &mut sink).unwrap();
        parked = Some(rpc.park());
        assert_eq!(gsp.seen.last().unwrap().0.sequence, round);
    }
    assert_eq!(mmio.doorbells, 3);
}

#[test]
fn rm_alloc_and_control_send_their_params_and_copy_back_the_reply() {
    let (mut rpc, mut gsp, _shm) = setup(Box::new(|m, body, tx| match m.rpc.function {
        103 => {
            let (h, params) = rpc_gsp_rm_alloc_v03_00::read_from_prefix(body).unwrap();
            assert_eq!(
                (h.hClient, h.hParent, h.hObject, h.hClass),
                (1, 2, 3, 0x2080)
            );
            assert_eq!((h.paramsSize, params), (4, &[1u8, 2, 3, 4][..]));
            let mut reply = body.to_vec();
            reply[32..36].copy_from_slice(&[9, 9, 9, 9]);
            gsp_send(tx, 103, m.rpc.sequence, 0, &reply);
        }
        76 => {
            let (h, _) = rpc_gsp_rm_control_v03_00::read_from_prefix(body).unwrap();
            let mut reply = body.to_vec();
            // Status 0x1f (NV_ERR_INVALID_ARGUMENT) for command 0xbad; else echo.
            if h.cmd == 0xbad {
                reply[12..16].copy_from_slice(&0x1fu32.to_le_bytes());
                gsp_send(tx, 76, m.rpc.sequence, 0x1f, &reply);
            } else {
                reply[24..].iter_mut().for_each(|b| *b = !*b);
                gsp_send(tx, 76, m.rpc.sequence, 0, &reply);
            }
        }
        10 => {
            assert_eq!(body, &[1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
            gsp_send(tx, 10, m.rpc.sequence, 0, body);
        }
        f => panic!("unexpected {f}"),
    }));
    let (mut mmio, mut sink) = (MapMmio::default(), Sink::default());
    let mut params = [1u8, 2, 3, 4];
    let alloc = RmAlloc {
        h_client: 1,
        h_parent: 2,
        h_object: 3,
        h_class: 0x2080,
        flags: 0,
        params: &[1, 2, 3, 4],
    };
    rpc.rm(&alloc, &mut params, &mut mmio, &mut gsp, &mut sink)
        .unwrap();
    assert_eq!(params, [9; 4]);
    let mut p = [0x0fu8; 8];
    let ctl = RmControl {
        h_client: 1,
        h_object: 3,
        cmd: 0x2080_0123,
        flags: 0,
        params: &[0x0f; 8],
    };
    rpc.rm(&ctl, &mut p, &mut mmio, &mut gsp, &mut sink)
        .unwrap();
    assert_eq!(p, [0xf0; 8]);
    let bad = RmControl { cmd: 0xbad, ..ctl };
    assert_eq!(
        rpc.rm(&bad, &mut p, &mut mmio, &mut gsp, &mut sink),
        Err(RpcError::Failed { status: 0x1f })
    );
    let free = RmFree {
        h_client: 1,
        h_parent: 0,
        h_object: 5,
    };
    rpc.rm(&free, &mut [], &mut mmio, &mut gsp, &mut sink)
        .unwrap();
    assert!(sink.0.is_empty());
    assert_eq!(
        rpc.trace().count(
            RpcTrace::Failed {
                function: 0,
                status: 0
            }
            .kind()
        ),
        1
    );
}

#[test]
fn large_control_round_trips_through_continuation_records_both_ways() {
    let params = pattern(150_000, 3);
    let expect = params.clone();
    let (mut rpc, mut gsp, _shm) = setup(Box::new(|m, body, tx| {
        // The GSP side sees the first message of the command, then the records.
        if m.rpc.function == 71 {
            return;
        }
        assert_eq!(m.rpc.function, 76);
        assert_eq!(body.len(), MAX_PAYLOAD);
        let mut reply = vec![0u8; 24 + 150_000];
        reply[16..20].copy_from_slice(&150_000u32.to_le_bytes());
        reply[24..].copy_from_slice(&pattern(150_000, 4));
        gsp_send(tx, 76, m.rpc.sequence, 0, &reply);
    }));
    let mut out = vec![0u8; params.len()];
    let ctl = RmControl {
        h_client: 1,
        h_object: 2,
        cmd: 3,
        flags: 0,
        params: &params,
    };
    rpc.rm(
        &ctl,
        &mut out,
        &mut MapMmio::default(),
        &mut gsp,
        &mut Sink::default(),
    )
    .unwrap();
    assert_eq!(out, pattern(150_000, 4));
    // The command arrived whole: first message + records = header + params.
    let sent: Vec<u8> = gsp.seen.iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(&sent[24..], &expect[..]);
    assert!(gsp.seen[1..].iter().all(|(h, _)| h.function == 71));
}

#[test]
fn no_reply_is_a_typed_timeout_and_the_late_reply_is_not_lost() {
    let (mut rpc, mut gsp, _shm) = setup(Box::new(|_, _, _| {}));
    let mut sink = Sink::default();
    let err = rpc.get_static_info(&mut MapMmio::default(), &mut gsp, &mut sink);
    assert_eq!(err, Err(RpcError::Timeout));
    assert!(gsp.now >= gsp::rpc::REPLY_TIMEOUT_NS);
    assert_eq!(
        rpc.trace().count(RpcTrace::Timeout { function: 0 }.kind()),
        1
    );
    // The late reply shows up later: it is passed on, not mistaken for the next call's.
    let late_seq = gsp.seen[0].0.sequence;
    gsp_send(&mut gsp.tx, 65, late_seq, 0, &[0u8; 1656]);
    assert_eq!(rpc.poll(&mut sink), Ok(1));
    assert_eq!(sink.0, [format!("unexpected 65 {late_seq}")]);
}

#[test]
fn a_broken_queue_is_an_error_not_a_wait() {
    let (mut rpc, mut gsp, shm) = setup(Box::new(|_, _, _| {}));
    let mut shm = shm;
    let raw = shm.region();
    raw.store_u32(
        Pair::STATQ_WRITE_PTR,
        200,
        std::sync::atomic::Ordering::Release,
    )
    .unwrap();
    let err = rpc.get_static_info(&mut MapMmio::default(), &mut gsp, &mut Sink::default());
    assert_eq!(err, Err(RpcError::Queue(QueueError::BadPointer)));
    assert!(gsp.now < 1_000_000, "failed at once");
}

#[test]
fn wait_event_skips_to_the_awaited_event_and_dispatches_the_rest() {
    let (mut rpc, mut gsp, _shm) = setup(Box::new(|_, _, _| {}));
    libos_print(&mut gsp.tx, "booting");
    gsp_send(&mut gsp.tx, 0x1005, 0, 0, &[]);
    let mut seq = vec![0u8; 40 + 8];
    seq[0] = 2; // bufferSizeDWord
    seq[4] = 2; // cmdIndex
    seq[40..44].copy_from_slice(&3u32.to_le_bytes()); // DELAY_US
    seq[44..48].copy_from_slice(&5u32.to_le_bytes());
    gsp_send(&mut gsp.tx, 0x1002, 0, 0, &seq);
    gsp_send(&mut gsp.tx, 0x1001, 0, 0, &[]);
    let mut sink = Sink::default();
    let r = rpc
        .wait_event(
            &[MsgFunction::GspRunCpuSequencer],
            1_000_000,
            &mut gsp,
            &mut sink,
        )
        .unwrap();
    assert_eq!(r.payload, &seq[..]);
    assert_eq!(sink.0, ["print booting", "MmuFaultQueued"]);
    let r = rpc
        .wait_event(&[MsgFunction::GspInitDone], 1_000_000, &mut gsp, &mut sink)
        .unwrap();
    assert_eq!(r.rpc.function, 0x1001);
    assert_eq!(
        rpc.wait_event(&[MsgFunction::GspInitDone], 1_000_000, &mut gsp, &mut sink),
        Err(RpcError::Timeout)
    );
}

#[test]
fn events_parse_with_every_length_checked() {
    let rpc_for = |f: u32| {
        let mut h = rpc_message_header_v03_00::new_zeroed();
        h.function = f;
        h
    };
    assert_eq!(Event::parse(&rpc_for(0x1001), &[]), Ok(Event::InitDone));
    assert_eq!(
        Event::parse(&rpc_for(0x1002), &[0; 39]),
        Err(RpcError::BadEvent)
    );
    assert!(matches!(
        Event::parse(&rpc_for(0x1002), &[0; 40]),
        Ok(Event::RunCpuSequencer(_))
    ));
    // POST_EVENT: 29 fixed bytes; eventDataSize must fit.
    let mut post = vec![0u8; 31];
    post[24] = 2;
    assert!(matches!(
        Event::parse(&rpc_for(0x1003), &post),
        Ok(Event::PostEvent { data, .. }) if data.len() == 2
    ));
    post[24] = 3;
    assert_eq!(
        Event::parse(&rpc_for(0x1003), &post),
        Err(RpcError::BadEvent)
    );
    assert_eq!(
        Event::parse(&rpc_for(0x1003), &post[..28]),
        Err(RpcError::BadEvent)
    );
    // RC_TRIGGERED: 48 fixed bytes + journal.
    let mut rc = rpc_rc_triggered_v17_02::new_zeroed();
    rc.chid = 5;
    rc.exceptType = 31;
    rc.rcJournalBufferSize = 4;
    let mut b = rc.as_bytes().to_vec();
    b.extend_from_slice(&[1, 2, 3, 4]);
    assert!(matches!(
        Event::parse(&rpc_for(0x1004), &b),
        Ok(Event::RcTriggered { header, journal: [1, 2, 3, 4] }) if header.chid == 5
    ));
    assert_eq!(
        Event::parse(&rpc_for(0x1004), &b[..50]),
        Err(RpcError::BadEvent)
    );
    assert_eq!(
        Event::parse(&rpc_for(0x1004), &b[..47]),
        Err(RpcError::BadEvent)
    );
    // OS_ERROR_LOG: the message stops at its NUL.
    let mut log = vec![0u8; 272];
    log[0] = 13; // Xid 13
    log[12..17].copy_from_slice(b"fault");
    assert!(matches!(
        Event::parse(&rpc_for(0x1006), &log),
        Ok(Event::OsErrorLog {
            except_type: 13,
            message: b"fault",
            ..
        })
    ));
    assert_eq!(
        Event::parse(&rpc_for(0x1006), &log[..100]),
        Err(RpcError::BadEvent)
    );
    // UCODE_LIBOS_PRINT: size must fit.
    assert_eq!(
        Event::parse(&rpc_for(0x100c), &[0, 0, 0, 0, 9, 0, 0, 0, 1]),
        Err(RpcError::BadEvent)
    );
    assert_eq!(
        Event::parse(&rpc_for(0x100c), &[0; 7]),
        Err(RpcError::BadEvent)
    );
    // Unknown and non-event functions are passed on as Unexpected.
    assert!(matches!(
        Event::parse(&rpc_for(0x9999), &[]),
        Ok(Event::Unexpected { .. })
    ));
    assert!(matches!(
        Event::parse(&rpc_for(65), &[]),
        Ok(Event::Unexpected { .. })
    ));
}

#[test]
fn a_malformed_event_is_traced_and_the_next_message_still_delivered() {
    let (mut rpc, mut gsp, _shm) = setup(Box::new(|_, _, _| {}));
    gsp_send(&mut gsp.tx, 0x100c, 0, 0, &[1, 2, 3]);
    libos_print(&mut gsp.tx, "ok");
    let mut sink = Sink::default();
    assert_eq!(rpc.poll(&mut sink), Ok(2));
    assert_eq!(sink.0, ["print ok"]);
    assert_eq!(
        rpc.trace().count(RpcTrace::BadEvent { function: 0 }.kind()),
        1
    );
}

/// The GSP model's garbage knobs (`gsp_model::Fault`), applied to the header of the status-queue
/// entry at `slot` exactly as the model applies them (`gsp_model::firmware::Outbox::send`):
/// checkSum @32, seqNum @36, elemCount @40; the checksum folds hi32 ^ lo32, so changing a word by
/// d changes the checksum by d.
fn garble(raw: &Region<ReadWrite>, slot: u32, knob: u8) {
    let at = Pair::statq_entry(slot) + 32;
    let mut h: [u32; 3] = raw.read(at).unwrap();
    match knob {
        // CorruptChecksum
        3 => h[0] ^= 0x0bad_c0de,
        // SkipSeqNum
        4 => {
            let d = h[1] ^ h[1].wrapping_add(1);
            h[1] ^= d;
            h[0] ^= d;
        }
        // OversizeElemCount
        5 => {
            let d = h[2] ^ (gsp::cmdq::MAX_ELEMENTS + 1);
            h[2] ^= d;
            h[0] ^= d;
        }
        _ => unreachable!(),
    }
    raw.write(at, &h).unwrap();
}

#[test]
fn a_garbled_reply_is_a_typed_error_soon_and_the_channel_goes_on() {
    for knob in [3u8, 4, 5] {
        let view: Rc<RefCell<Option<Region<ReadWrite>>>> = Rc::default();
        let garbled = Rc::new(Cell::new(false));
        let (v, g) = (view.clone(), garbled.clone());
        let (mut rpc, mut gsp, mut shm) = setup(Box::new(move |m, _, tx| {
            let slot = tx.write_ptr();
            gsp_send(tx, 65, m.rpc.sequence, 0, &[0u8; 1656]);
            // Only the first reply is garbage.
            if !g.replace(true) {
                garble(v.borrow().as_ref().unwrap(), slot, knob);
            }
        }));
        *view.borrow_mut() = Some(shm.region());
        let mut sink = Sink::default();
        let err = rpc.get_static_info(&mut MapMmio::default(), &mut gsp, &mut sink);
        assert_eq!(err, Err(RpcError::ReplyLost), "knob {knob}");
        assert!(garbled.get());
        // Given up soon after the rejection, far before the plain reply timeout.
        assert!(
            gsp.now <= gsp::rpc::LOST_REPLY_NS + 1_000_000,
            "knob {knob}: waited {} ns",
            gsp.now
        );
        assert_eq!(
            rpc.trace()
                .count(RpcTrace::Skipped(QueueError::Timeout).kind()),
            1,
            "knob {knob}: the rejected message is counted"
        );
        assert!(sink.0.is_empty(), "knob {knob}: nothing passed on");
        // The channel is not wedged: the next call gets its reply.
        let s = rpc.get_static_info(&mut MapMmio::default(), &mut gsp, &mut sink);
        assert!(s.is_ok(), "knob {knob}: {s:?}");
    }
}

#[test]
fn a_rejected_event_before_the_reply_does_not_fail_the_call() {
    let view: Rc<RefCell<Option<Region<ReadWrite>>>> = Rc::default();
    let v = view.clone();
    let (mut rpc, mut gsp, mut shm) = setup(Box::new(move |m, _, tx| {
        let slot = tx.write_ptr();
        libos_print(tx, "garbage");
        garble(v.borrow().as_ref().unwrap(), slot, 3);
        gsp_send(tx, 65, m.rpc.sequence, 0, &[0u8; 1656]);
    }));
    *view.borrow_mut() = Some(shm.region());
    let mut sink = Sink::default();
    let s = rpc.get_static_info(&mut MapMmio::default(), &mut gsp, &mut sink);
    assert!(s.is_ok(), "{s:?}");
    assert!(sink.0.is_empty());
    assert_eq!(
        rpc.trace()
            .count(RpcTrace::Skipped(QueueError::Timeout).kind()),
        1
    );
}
