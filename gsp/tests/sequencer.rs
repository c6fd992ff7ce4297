//! The CPU sequencer: every opcode against a fake BAR0, and every bounds error (each stops the
//! sequence before the offending command touches anything).

use gsp::chip::Chipset;
use gsp::regs::{Mmio, MmioError, PeregrineCoreSelect};
use gsp::rpc::Clock;
use gsp::sequencer::{run, CmdIndexUnit, SeqError, SequencerEnv, MAX_DELAY_US};
use std::collections::HashMap;

const GSP: u32 = 0x110000;
const SEC2: u32 = 0x840000;
const ENGINE: u32 = 0x3c0;
const CPUCTL: u32 = 0x100;
const MBOX0: u32 = 0x40;
const MBOX1: u32 = 0x44;
const FALCON_OS: u32 = 0x80;
const BCR_CTRL: u32 = 0x1668;
const RISCV_CPUCTL: u32 = 0x1388;
const BSI_SCRATCH_14: u32 = 0x1180f8;

/// BAR0 as a map with a little behaviour: values that appear after some reads, a BCR_CTRL that
/// becomes valid when written, and a log of writes.
#[derive(Default)]
struct FakeBar {
    regs: HashMap<u32, u32>,
    /// offset -> (reads before it changes, value after)
    later: HashMap<u32, (u32, u32)>,
    writes: Vec<(u32, u32)>,
}

impl Mmio for FakeBar {
    fn read32(&mut self, off: u32) -> Result<u32, MmioError> {
        if let Some((n, v)) = self.later.get_mut(&off) {
            if *n == 0 {
                let v = *v;
                self.later.remove(&off);
                self.regs.insert(off, v);
            } else {
                *n -= 1;
            }
        }
        Ok(self.regs.get(&off).copied().unwrap_or(0))
    }

    fn write32(&mut self, off: u32, v: u32) -> Result<(), MmioError> {
        self.writes.push((off, v));
        let v = if off == GSP + BCR_CTRL { v | 1 } else { v };
        self.regs.insert(off, v);
        Ok(())
    }
}

/// A clock that only moves when someone waits (by at least `min_step_us`).
#[derive(Default)]
struct FakeClock {
    now: u64,
    min_step_us: u32,
}

impl Clock for FakeClock {
    fn now_ns(&mut self) -> u64 {
        self.now
    }
    fn delay_us(&mut self, us: u32) {
        self.now += u64::from(us.max(self.min_step_us).max(1)) * 1000;
    }
}

fn env(unit: CmdIndexUnit) -> SequencerEnv {
    SequencerEnv {
        chip: Chipset::GA102,
        libos_dma: 0x1_2345_6000,
        app_version: 0x0057_0144,
        unit,
        core: PeregrineCoreSelect::Falcon,
    }
}

/// A GSP_RUN_CPU_SEQUENCER payload: header (buffer size = commands' dwords unless given) then
/// the command dwords.
fn seq(cmds: &[u32], buffer_size: Option<u32>, cmd_index: Option<u32>) -> Vec<u8> {
    let n = cmds.len() as u32;
    let mut v = Vec::new();
    v.extend_from_slice(&buffer_size.unwrap_or(n).to_le_bytes());
    v.extend_from_slice(&cmd_index.unwrap_or(n).to_le_bytes());
    v.extend_from_slice(&[0u8; 32]);
    for c in cmds {
        v.extend_from_slice(&c.to_le_bytes());
    }
    v
}

fn go(cmds: &[u32], bar: &mut FakeBar, clock: &mut FakeClock) -> Result<(u32, [u32; 8]), SeqError> {
    run(
        &seq(cmds, None, None),
        &env(CmdIndexUnit::Dwords),
        bar,
        clock,
    )
    .map(|o| (o.commands, o.reg_save))
}

#[test]
fn reg_write_modify_store() {
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    bar.regs.insert(0x1000, 0xffff_0000);
    bar.regs.insert(0x2000, 0xabcd);
    let (n, save) = go(
        &[
            0,
            0x3000,
            0x11, // REG_WRITE
            1,
            0x1000,
            0xff00_0000,
            0x5, // REG_MODIFY: (old & !mask) | val
            4,
            0x2000,
            7, // REG_STORE into regSaveArea[7]
        ],
        &mut bar,
        &mut clock,
    )
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(bar.regs[&0x3000], 0x11);
    assert_eq!(bar.regs[&0x1000], 0x00ff_0005);
    assert_eq!(save, [0, 0, 0, 0, 0, 0, 0, 0xabcd]);
}

#[test]
fn reg_poll_waits_for_the_condition_and_times_out_with_a_typed_error() {
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    bar.later.insert(0x4000, (5, 0x80));
    go(&[2, 0x4000, 0xf0, 0x80, 1000, 0xe], &mut bar, &mut clock).unwrap();
    // Timeout 0 means the drivers' 4 s.
    let start = clock.now;
    assert_eq!(
        go(
            &[2, 0x5000, 1, 1, 0, 0xe, 0, 0x6000, 1],
            &mut bar,
            &mut clock
        ),
        Err(SeqError::PollTimeout)
    );
    assert!(clock.now - start >= 4_000_000_000);
    assert!(
        !bar.regs.contains_key(&0x6000),
        "nothing after the failed command ran"
    );
    // An explicit timeout is honoured.
    let start = clock.now;
    assert_eq!(
        go(&[2, 0x5000, 1, 1, 50, 0], &mut bar, &mut clock),
        Err(SeqError::PollTimeout)
    );
    assert!((50_000..1_000_000).contains(&(clock.now - start)));
}

#[test]
fn delay_waits_and_caps_apply() {
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    go(&[3, 250], &mut bar, &mut clock).unwrap();
    assert!(clock.now >= 250_000);
    assert_eq!(
        go(&[3, MAX_DELAY_US + 1], &mut bar, &mut clock),
        Err(SeqError::BadDelay)
    );
    assert_eq!(
        go(&[2, 0, 0, 0, 10_000_001, 0], &mut bar, &mut clock),
        Err(SeqError::BadDelay)
    );
}

#[test]
fn every_register_taking_opcode_checks_its_offset() {
    for addr in [0x0100_0000u32, 0x0100_0004, 0x1002, u32::MAX] {
        for cmd in [
            vec![0, addr, 1],
            vec![1, addr, 1, 1],
            vec![2, addr, 0, 0, 1, 0],
            vec![4, addr, 0],
        ] {
            let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
            assert_eq!(
                go(&cmd, &mut bar, &mut clock),
                Err(SeqError::BadRegister),
                "{cmd:x?}"
            );
            assert!(bar.writes.is_empty());
        }
    }
}

#[test]
fn reg_store_index_must_be_below_eight() {
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    assert_eq!(
        go(&[4, 0x100, 8], &mut bar, &mut clock),
        Err(SeqError::BadSaveIndex)
    );
    assert_eq!(
        go(&[4, 0x100, u32::MAX], &mut bar, &mut clock),
        Err(SeqError::BadSaveIndex)
    );
}

#[test]
fn buffer_bounds_are_checked() {
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    let e = env(CmdIndexUnit::Dwords);
    // Shorter than the header.
    assert_eq!(
        run(&[0u8; 39], &e, &mut bar, &mut clock),
        Err(SeqError::Truncated)
    );
    // cmdIndex beyond bufferSizeDWord, and beyond the dwords received.
    let cmds = [0, 0x100, 1];
    assert_eq!(
        run(&seq(&cmds, Some(2), Some(3)), &e, &mut bar, &mut clock),
        Err(SeqError::BadLength)
    );
    assert_eq!(
        run(&seq(&cmds, Some(100), Some(4)), &e, &mut bar, &mut clock),
        Err(SeqError::BadLength)
    );
    // A command whose payload runs past cmdIndex.
    assert_eq!(
        run(&seq(&cmds, None, Some(2)), &e, &mut bar, &mut clock),
        Err(SeqError::CommandTruncated)
    );
    // Unknown opcode.
    assert_eq!(go(&[9], &mut bar, &mut clock), Err(SeqError::BadOpcode));
    assert!(bar.writes.is_empty());
    // A trailing partial dword is ignored (only whole dwords count as received).
    let mut p = seq(&[3, 1], None, None);
    p.push(0xee);
    assert!(run(&p, &e, &mut bar, &mut clock).is_ok());
}

#[test]
fn cmd_index_as_a_command_count() {
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    let e = env(CmdIndexUnit::Commands);
    let cmds = [0, 0x100, 1, 0, 0x104, 2, 0, 0x108, 3];
    let o = run(&seq(&cmds, None, Some(2)), &e, &mut bar, &mut clock).unwrap();
    assert_eq!(o.commands, 2);
    assert!(!bar.regs.contains_key(&0x108));
    // More commands than the buffer holds.
    assert_eq!(
        run(&seq(&cmds, None, Some(4)), &e, &mut bar, &mut clock),
        Err(SeqError::BadLength)
    );
    // The same buffer read as dwords runs all three.
    let o = run(
        &seq(&cmds, None, None),
        &env(CmdIndexUnit::Dwords),
        &mut bar,
        &mut clock,
    )
    .unwrap();
    assert_eq!(o.commands, 3);
}

#[test]
fn core_reset_start_and_halt() {
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    bar.later.insert(GSP + CPUCTL, (3, 1 << 4));
    go(&[5, 6, 7], &mut bar, &mut clock).unwrap();
    let engine: Vec<u32> = bar
        .writes
        .iter()
        .filter(|w| w.0 == GSP + ENGINE)
        .map(|w| w.1)
        .collect();
    assert_eq!(engine, [1, 0], "reset pulse");
    assert!(
        bar.writes.contains(&(GSP + BCR_CTRL, 0)),
        "GA102: falcon core selected"
    );
    assert!(
        bar.writes
            .iter()
            .any(|&(o, v)| o == GSP + CPUCTL && v & 2 != 0),
        "started"
    );
    // A core that never halts.
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    assert_eq!(go(&[7], &mut bar, &mut clock), Err(SeqError::Core));
    // Scrubbing that never finishes.
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    bar.regs.insert(GSP + 0xf4, 1 << 12);
    assert_eq!(go(&[5], &mut bar, &mut clock), Err(SeqError::Core));
}

#[test]
fn core_resume_hands_over_to_sec2_and_checks_every_result() {
    let ready = |bar: &mut FakeBar| {
        bar.later.insert(BSI_SCRATCH_14, (2, 1 << 26));
        bar.regs.insert(GSP + RISCV_CPUCTL, 1 << 7);
    };
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    ready(&mut bar);
    go(&[8], &mut bar, &mut clock).unwrap();
    assert_eq!(
        (bar.regs[&(GSP + MBOX0)], bar.regs[&(GSP + MBOX1)]),
        (0x2345_6000, 1)
    );
    assert!(
        bar.writes
            .iter()
            .any(|&(o, v)| o == SEC2 + CPUCTL && v & 2 != 0),
        "SEC2 started"
    );
    assert_eq!(bar.regs[&(GSP + FALCON_OS)], 0x0057_0144);
    // SEC2 reports an error.
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    ready(&mut bar);
    bar.regs.insert(SEC2 + MBOX0, 0xbad);
    assert_eq!(go(&[8], &mut bar, &mut clock), Err(SeqError::Sec2Error));
    // The RISC-V core stays inactive.
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    bar.later.insert(BSI_SCRATCH_14, (0, 1 << 26));
    assert_eq!(go(&[8], &mut bar, &mut clock), Err(SeqError::RiscvInactive));
    // The handoff never comes.
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    assert_eq!(go(&[8], &mut bar, &mut clock), Err(SeqError::Core));
    assert!(clock.now >= 2_000_000_000);
}

#[test]
fn turing_checks_the_core_switch_status_and_selects_no_core() {
    let (mut bar, mut clock) = (FakeBar::default(), FakeClock::default());
    bar.later.insert(BSI_SCRATCH_14, (0, 1 << 26));
    bar.regs.insert(GSP + 0x1240, 1);
    let e = SequencerEnv {
        chip: Chipset::TU102,
        ..env(CmdIndexUnit::Dwords)
    };
    run(&seq(&[8], None, None), &e, &mut bar, &mut clock).unwrap();
    assert!(!bar.writes.iter().any(|w| w.0 == GSP + BCR_CTRL));
}

#[test]
fn random_buffers_never_panic_or_hang() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let n = (next() % 24) as usize;
        let cmds: Vec<u32> = (0..n)
            .map(|_| match next() % 4 {
                0 => (next() % 10) as u32,
                1 => (next() % 0x2000) as u32 * 4,
                2 => next() as u32,
                _ => (next() % 9) as u32,
            })
            .collect();
        let mut bar = FakeBar::default();
        let mut clock = FakeClock {
            now: 0,
            min_step_us: 50_000,
        };
        let unit = if next() % 2 == 0 {
            CmdIndexUnit::Dwords
        } else {
            CmdIndexUnit::Commands
        };
        let p = seq(&cmds, Some(next() as u32 % 32), Some(next() as u32 % 32));
        let _ = run(&p, &env(unit), &mut bar, &mut clock);
        assert!(clock.now < 200_000_000_000, "bounded time");
    }
}
