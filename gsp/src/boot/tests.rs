//! The boot state machine against a fake GPU: a register file with the behaviour each step
//! waits for, a firmware peer (the queue code's GSP side) that starts when booter_load "runs",
//! and synthetic firmware files. Each failure test names the step it must fail in.
#![allow(unsafe_code, clippy::unwrap_used, clippy::indexing_slicing)]

extern crate std;

use super::*;
use crate::cmdq::{MessageMeta, Rx, Tx, TxSignal, QUEUE_REGION_SIZE};
use crate::elf::tests::{synth_bootloader, synth_elf, Aligned};
use crate::fw::current::static_info::GspStaticConfigInfo;
use crate::fw::current::wpr::GSP_FW_WPR_META_MAGIC;
use crate::rpc::Event;
use core::ptr::NonNull;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::string::String;
use std::vec;
use std::vec::Vec;
use zerocopy::FromZeros;

const GSP: u32 = 0x110000;

/// What the fake firmware does once booter_load started it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Firmware {
    /// Sequencer (with CORE_RESUME), INIT_DONE, answers static info.
    Good,
    /// Sends INIT_DONE without a sequencer first.
    NoSequencer,
    /// Never says anything.
    Silent,
    /// Sends a sequencer with an unknown opcode.
    BadSequencer,
}

/// Everything the fakes share.
struct World {
    regs: BTreeMap<u32, u32>,
    /// The GSP side of the queues, once the firmware "runs".
    gsp: Option<(Tx, Rx)>,
    queues: Option<Region<ReadWrite>>,
    firmware: Firmware,
    received: Vec<u32>,
    now: u64,
    booter_mbox0: u32,
    riscv_comes_up: bool,
    frts_err: u32,
}

type Shared = Rc<RefCell<World>>;

struct FakeMmio(Shared);

impl Mmio for FakeMmio {
    fn read32(&mut self, off: u32) -> Result<u32, MmioError> {
        Ok(self.0.borrow().regs.get(&off).copied().unwrap_or(0))
    }
    fn write32(&mut self, off: u32, v: u32) -> Result<(), MmioError> {
        // BCR_CTRL becomes valid when written.
        let v = if off == GSP + 0x1668 { v | 1 } else { v };
        self.0.borrow_mut().regs.insert(off, v);
        Ok(())
    }
}

struct Never;
impl TxSignal for Never {
    fn notify(&mut self) -> Result<(), QueueError> {
        Ok(())
    }
    fn wait_for_space(&mut self) -> Result<(), QueueError> {
        Err(QueueError::Timeout)
    }
}

/// The clock: every wait lets the firmware run.
struct FakeClock(Shared);

impl Clock for FakeClock {
    fn now_ns(&mut self) -> u64 {
        self.0.borrow().now
    }
    fn delay_us(&mut self, us: u32) {
        let mut w = self.0.borrow_mut();
        w.now += u64::from(us.max(1)) * 1000;
        let mut received = Vec::new();
        if let Some((tx, rx)) = &mut w.gsp {
            let mut buf = vec![0u8; 0x10000];
            while let Ok(Some(m)) = rx.try_receive(&mut buf) {
                received.push(m.rpc.function);
                if m.rpc.function == 65 {
                    let mut s = GspStaticConfigInfo::new_zeroed();
                    s.fb_length = 8 << 30;
                    s.hInternalClient = 0xc1e0_0001;
                    let meta = MessageMeta::reply(65, m.rpc.sequence, 0);
                    tx.send_message(meta, s.as_bytes(), &mut Never).unwrap();
                }
            }
        }
        w.received.extend(received);
    }
}

struct FakeSecure(Shared);

impl SecureBoot for FakeSecure {
    fn run_fwsec_frts(
        &mut self,
        _: &mut dyn Mmio,
        _: &mut dyn Clock,
        frts: Span,
    ) -> Result<(), SecureBootError> {
        let mut w = self.0.borrow_mut();
        // CAST: test addresses below 2^44.
        w.regs.insert(0x1fa824, ((frts.start >> 12) << 4) as u32);
        w.regs.insert(0x1fa828, ((frts.end >> 12) << 4) as u32);
        let err = w.frts_err;
        w.regs.insert(0x1438, err << 16);
        Ok(())
    }

    fn run_booter_load(
        &mut self,
        _: &mut dyn Mmio,
        _: &mut dyn Clock,
        wpr_meta_dma: u64,
    ) -> Result<u32, SecureBootError> {
        let mut w = self.0.borrow_mut();
        assert_eq!(wpr_meta_dma, dma(9));
        if w.riscv_comes_up {
            w.regs.insert(GSP + 0x1388, 1 << 7);
        }
        w.regs.insert(0x1180f8, 1 << 26); // reload handoff for CORE_RESUME
        let q = w.queues.take().unwrap();
        let queues = SharedQueues::new(q).unwrap();
        queues.init_gsp().unwrap();
        let (mut tx, rx) = queues.split(Side::Gsp).unwrap();
        let firmware = w.firmware;
        let send = |tx: &mut Tx, f: u32, body: &[u8]| {
            tx.send_message(MessageMeta::reply(f, 0, 0), body, &mut Never)
                .unwrap();
        };
        let mut print = vec![0u8; 8];
        print[4] = 5;
        print.extend_from_slice(b"hello");
        send(&mut tx, 0x100c, &print);
        let seq = |cmds: &[u32]| {
            let mut v = Vec::new();
            let n = cmds.len() as u32;
            v.extend_from_slice(&n.to_le_bytes());
            v.extend_from_slice(&n.to_le_bytes());
            v.extend_from_slice(&[0; 32]);
            for c in cmds {
                v.extend_from_slice(&c.to_le_bytes());
            }
            v
        };
        match firmware {
            Firmware::Good => {
                send(&mut tx, 0x1002, &seq(&[0, 0x2000, 0x1234, 3, 10, 8]));
                send(&mut tx, 0x1001, &[]);
            }
            Firmware::NoSequencer => send(&mut tx, 0x1001, &[]),
            Firmware::BadSequencer => send(&mut tx, 0x1002, &seq(&[42])),
            Firmware::Silent => {}
        }
        w.gsp = Some((tx, rx));
        Ok(w.booter_mbox0)
    }
}

#[derive(Default)]
struct Sink(Vec<String>);
impl EventSink for Sink {
    fn event(&mut self, e: Event<'_>) {
        if let Event::LibosPrint { text, .. } = e {
            self.0.push(String::from_utf8_lossy(text).into_owned());
        }
    }
}

/// A DMA address per buffer index.
fn dma(i: u64) -> u64 {
    0x1_0000_0000 + i * 0x100_0000
}

/// Test memory for the buffers; kept alive for the whole test.
struct Mem(Vec<Vec<u64>>);

impl Mem {
    fn buf(&mut self, i: u64, size: usize) -> DmaBuf {
        let mut v = vec![0u64; size.div_ceil(8)];
        let p = NonNull::new(v.as_mut_ptr().cast::<u8>()).unwrap();
        self.0.push(v);
        // SAFETY: the Vec's heap storage stays put and alive in `self.0` for the test, and it is
        // only reached through Region views.
        let region = unsafe { Region::new(p, size) };
        DmaBuf {
            region,
            dma: dma(i),
        }
    }
}

struct Rig {
    world: Shared,
    mem: Mem,
    gsp_elf: Aligned,
    bootloader: Vec<u8>,
    fwimage_buf: usize,
}

impl Rig {
    fn new() -> Self {
        let mut regs = BTreeMap::new();
        regs.insert(0x0, 0x1720_00a1); // BOOT_0
        regs.insert(0xa00, 0x1720_0000); // BOOT_42: GA102
        regs.insert(0x118128, 1); // GFW priv mask open
        regs.insert(0x118234, 0xff); // GFW boot done
        regs.insert(0x1183a4, 8192); // usable FB: 8 GiB
        let world = World {
            regs,
            gsp: None,
            queues: None,
            firmware: Firmware::Good,
            received: Vec::new(),
            now: 0,
            booter_mbox0: 0,
            riscv_comes_up: true,
            frts_err: 0,
        };
        let elf = synth_elf(&[
            (".fwimage", &[0x5a; 10_000]),
            (".fwversion", b"570.144\0"),
            (".fwsignature_ga10x", &[7; 0x100]),
        ]);
        Self {
            world: Rc::new(RefCell::new(world)),
            mem: Mem(Vec::new()),
            gsp_elf: Aligned::new(&elf),
            bootloader: synth_bootloader(21, 0x200),
            fwimage_buf: 3 * 4096,
        }
    }

    fn run(&mut self) -> (Result<Booted<'static>, BootError>, BootTraceRing, Sink) {
        let Rig {
            world,
            mem: m,
            gsp_elf,
            bootloader,
            fwimage_buf,
        } = self;
        let queues = m.buf(0, QUEUE_REGION_SIZE);
        // The firmware side's view of the queue region.
        world.borrow_mut().queues = Some(queues.region.subregion(0, QUEUE_REGION_SIZE).unwrap());
        let buffers = BootBuffers {
            queues,
            libos_args: m.buf(1, 4096),
            logs: [m.buf(2, 0x10000), m.buf(3, 0x10000), m.buf(4, 0x10000)],
            rmargs: m.buf(5, 4096),
            fwimage: m.buf(6, *fwimage_buf),
            radix3: m.buf(7, 3 * 4096),
            bootloader: m.buf(8, 4096),
            wpr_meta: m.buf(9, 4096),
            signature: m.buf(10, 4096),
            flush_page: m.buf(11, 4096),
        };
        let sysinfo = SystemInfoParams {
            vendor: 0x10de,
            device: 0x2204,
            ..Default::default()
        };
        let input = BootInput {
            firmware: BootFirmware {
                gsp: gsp_elf.bytes(),
                bootloader,
            },
            buffers,
            config: BootConfig::new(sysinfo),
            rx_buffer: std::boxed::Box::leak(vec![0u8; 0x10000].into_boxed_slice()),
        };
        let mut io = FakeMmio(world.clone());
        let mut clock = FakeClock(world.clone());
        let mut secure = FakeSecure(world.clone());
        let mut sink = Sink::default();
        let mut trace = BootTraceRing::new();
        let dev = BootDevice {
            io: &mut io,
            clock: &mut clock,
            secure: &mut secure,
            sink: &mut sink,
        };
        let r = boot(input, dev, &mut trace);
        (r, trace, sink)
    }

    fn reg(&self, off: u32) -> u32 {
        self.world.borrow().regs.get(&off).copied().unwrap_or(0)
    }

    fn set(&self, off: u32, v: u32) {
        self.world.borrow_mut().regs.insert(off, v);
    }
}

fn entered(trace: &BootTraceRing) -> Vec<u32> {
    trace
        .recent()
        .filter_map(|e| match e.event {
            BootTrace::Enter(s) => Some(s as u32),
            _ => None,
        })
        .collect()
}

#[test]
fn boots_through_all_fifteen_steps_in_order() {
    let mut rig = Rig::new();
    let (r, trace, sink) = rig.run();
    let booted = r.unwrap();
    assert_eq!(entered(&trace), (1..=16).collect::<Vec<u32>>());
    assert_eq!(booted.chip, Chipset::GA102);
    assert_eq!(booted.static_info.fb_length, 8 << 30);
    assert_eq!(booted.static_info.hInternalClient, 0xc1e0_0001);
    // The GSP saw the two boot commands, then the static-info request.
    assert_eq!(rig.world.borrow().received, [72, 73, 65]);
    // Registers the steps leave behind.
    assert_eq!(
        rig.reg(0x100c10),
        (dma(11) >> 8) as u32,
        "sysmem flush page"
    );
    assert_eq!(rig.reg(0x100c40), (dma(11) >> 40) as u32);
    assert_eq!(
        (rig.reg(GSP + 0x40), rig.reg(GSP + 0x44)),
        (dma(1) as u32, (dma(1) >> 32) as u32)
    );
    assert_eq!(
        rig.reg(GSP + 0x80),
        0xc0ffee,
        "bootloader app_version in FALCON_OS"
    );
    assert_eq!(rig.reg(0x2000), 0x1234, "the sequencer ran");
    assert_eq!(sink.0, ["hello"]);
    assert_eq!(booted.layout.frts.len(), 1 << 20);
    assert!(trace
        .recent()
        .all(|e| !matches!(e.event, BootTrace::Failed(_))));
}

#[test]
fn boot_writes_the_wpr_meta_rmargs_and_libos_page() {
    let mut rig = Rig::new();
    let (r, _, _) = rig.run();
    let booted = r.unwrap();
    let mem = &rig.mem.0;
    // Buffer 9 is the WPR meta page, 5 RMARGS, 1 the LibOS arguments.
    let meta = &mem[9];
    assert_eq!(meta[0], GSP_FW_WPR_META_MAGIC);
    assert_eq!(meta[2], dma(7), "sysmemAddrOfRadix3Elf = level-0 page");
    assert_eq!(meta[3], 10_000, "sizeOfRadix3Elf");
    assert_eq!(meta[4], dma(8), "bootloader");
    assert_eq!(meta[9], dma(10), "signature");
    assert_eq!(meta[19], booted.layout.frts.start, "frtsOffset");
    assert_eq!(mem[5][0], dma(0), "RMARGS: message queues");
    assert_eq!(mem[1][1], dma(2), "LibOS args: LOGINIT first");
    assert_eq!(mem[1][13], dma(5), "... RMARGS fourth");
}

fn fails_at(rig: &mut Rig, step: State, cause: BootCause) {
    let (r, trace, _) = rig.run();
    let e = r.err().unwrap();
    assert_eq!(e, BootError { step, cause });
    let steps = entered(&trace);
    assert_eq!(*steps.last().unwrap(), State::Failed as u32);
    assert_eq!(steps[steps.len() - 2], step as u32);
    assert_eq!(trace.count(BootTrace::Failed(e).kind()), 1);
}

#[test]
fn step_1_unknown_chip() {
    let mut rig = Rig::new();
    rig.set(0xa00, 0x3f00_0000);
    fails_at(
        &mut rig,
        State::IdentifyChip,
        BootCause::Chip(ChipError::UnknownArchitecture),
    );
}

#[test]
fn step_2_gfw_never_finishes() {
    let mut rig = Rig::new();
    rig.set(0x118234, 0x7f);
    fails_at(&mut rig, State::WaitGfwBoot, BootCause::Timeout);
    assert!(rig.world.borrow().now >= 4_000_000_000);
    // The value is not trusted while the priv-level mask is closed.
    let mut rig = Rig::new();
    rig.set(0x118128, 0);
    fails_at(&mut rig, State::WaitGfwBoot, BootCause::Timeout);
}

#[test]
fn step_6_wrong_firmware_version_or_short_buffer() {
    let mut rig = Rig::new();
    rig.gsp_elf = Aligned::new(&synth_elf(&[
        (".fwimage", &[1; 100]),
        (".fwversion", b"535.113.01\0"),
        (".fwsignature_ga10x", &[7; 0x100]),
    ]));
    fails_at(
        &mut rig,
        State::LoadFirmware,
        BootCause::WrongFirmwareVersion,
    );
    let mut rig = Rig::new();
    rig.fwimage_buf = 4096;
    fails_at(
        &mut rig,
        State::LoadFirmware,
        BootCause::Radix3(Radix3Error::BufferTooSmall),
    );
}

#[test]
fn step_8_existing_wpr2_or_frts_error() {
    let mut rig = Rig::new();
    rig.set(0x1fa828, 0x10);
    fails_at(&mut rig, State::FwsecFrts, BootCause::Wpr2AlreadySet);
    let mut rig = Rig::new();
    rig.world.borrow_mut().frts_err = 0x42;
    fails_at(&mut rig, State::FwsecFrts, BootCause::FrtsError(0x42));
}

#[test]
fn step_11_booter_error() {
    let mut rig = Rig::new();
    rig.world.borrow_mut().booter_mbox0 = 0xdead;
    fails_at(&mut rig, State::BooterLoad, BootCause::BooterError(0xdead));
}

#[test]
fn step_12_riscv_never_active() {
    let mut rig = Rig::new();
    rig.world.borrow_mut().riscv_comes_up = false;
    fails_at(&mut rig, State::CheckRiscv, BootCause::RiscvInactive);
}

#[test]
fn step_13_silent_firmware_or_bad_sequence() {
    let mut rig = Rig::new();
    rig.world.borrow_mut().firmware = Firmware::Silent;
    fails_at(
        &mut rig,
        State::RunSequencer,
        BootCause::Rpc(RpcError::Timeout),
    );
    let mut rig = Rig::new();
    rig.world.borrow_mut().firmware = Firmware::BadSequencer;
    fails_at(
        &mut rig,
        State::RunSequencer,
        BootCause::Sequencer(SeqError::BadOpcode),
    );
}

#[test]
fn init_done_without_a_sequencer_is_traced_and_boot_continues() {
    let mut rig = Rig::new();
    rig.world.borrow_mut().firmware = Firmware::NoSequencer;
    let (r, trace, _) = rig.run();
    assert!(r.is_ok());
    assert_eq!(trace.count(BootTrace::NoSequencer.kind()), 1);
}

#[test]
fn every_step_has_a_budget_and_a_name() {
    for n in 1..=15u32 {
        let s = [
            State::IdentifyChip,
            State::WaitGfwBoot,
            State::SysmemFlush,
            State::ResetFalcon,
            State::HostStructures,
            State::LoadFirmware,
            State::FbLayout,
            State::FwsecFrts,
            State::QueueBootCommands,
            State::ResetGsp,
            State::BooterLoad,
            State::CheckRiscv,
            State::RunSequencer,
            State::WaitInitDone,
            State::GetStaticInfo,
        ][n as usize - 1];
        assert_eq!(s as u32, n);
        assert!(s.timeout_ns() > 0 && !s.name().is_empty());
    }
}
