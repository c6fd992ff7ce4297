//! CPU sequencer interpreter (opcodes 0-8), bounds-checked.
//!
//! During boot GSP-RM sends `GSP_RUN_CPU_SEQUENCER` (`rpc_run_cpu_sequencer_v17_00`): a buffer of
//! commands, each an opcode dword followed by its payload dwords (reference section 7), that the
//! CPU must execute — register writes, read-modify-writes, polls, delays, register saves, and the
//! four core operations that hand the GSP over to SEC2 and back (nova-core `gsp/sequencer.rs`,
//! nouveau `r535_gsp_msg_run_cpu_sequencer`, OpenRM `kgspExecuteSequencerBuffer`).
//!
//! The buffer comes from the firmware, so nothing in it is trusted: the used length must lie
//! within both the announced buffer size and the bytes actually received, every command's payload
//! must lie within the used length, every register offset must be dword-aligned and inside BAR0,
//! every `regSaveArea` index below 8, and delays and poll timeouts are capped. A violation stops
//! the sequence with a typed [`SeqError`] before the offending command does anything.
//!
//! `cmdIndex` means different things to the drivers: OpenRM and nouveau walk *dwords* up to it,
//! nova counts *commands*. [`CmdIndexUnit`] switches; the default is [`CmdIndexUnit::Dwords`],
//! because GSP-RM is built from the same OpenRM tree whose CPU side reads it that way (and nouveau
//! boots real hardware reading it that way); nova's reading agrees whenever the buffer is fully
//! used, which is why it works too.
use crate::boot::falcon::{self, FalconError, HALT_TIMEOUT_NS};
use crate::chip::Chipset;
use crate::fw::current::sequencer::{
    rpc_run_cpu_sequencer_v17_00, GSP_SEQ_BUF_OPCODE, GSP_SEQ_REG_SAVE_AREA_LEN,
};
use crate::regs::{Falcon, Mmio, MmioError, PeregrineCoreSelect};
use crate::rpc::Clock;
use core::mem::size_of;
use zerocopy::FromBytes;

/// BAR0 is 16 MiB on Turing, Ampere and Ada: every register offset lies below.
pub const BAR0_SIZE: u32 = 0x0100_0000;
/// TIMEOUT: REG_POLL with timeout 0 waits 4 s, as nova and nouveau do.
pub const DEFAULT_POLL_TIMEOUT_US: u32 = 4_000_000;
/// TIMEOUT: the longest REG_POLL timeout accepted from the firmware (10 s); real sequences poll
/// for microseconds to milliseconds.
pub const MAX_POLL_TIMEOUT_US: u32 = 10_000_000;
/// The longest DELAY_US accepted from the firmware (1 s).
pub const MAX_DELAY_US: u32 = 1_000_000;

/// How to read `cmdIndex` (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CmdIndexUnit {
    /// OpenRM and nouveau: the number of dwords of `commandBuffer` in use.
    #[default]
    Dwords,
    /// nova-core: the number of commands.
    Commands,
}

/// Why a sequence stopped. Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SeqError {
    /// The payload is shorter than `rpc_run_cpu_sequencer_v17_00`.
    Truncated = 1,
    /// `cmdIndex` exceeds `bufferSizeDWord` or the dwords received.
    BadLength = 2,
    /// An opcode above 8.
    BadOpcode = 3,
    /// A command's payload runs past the used part of the buffer.
    CommandTruncated = 4,
    /// A register offset is unaligned or outside BAR0.
    BadRegister = 5,
    /// A REG_STORE index is not below 8.
    BadSaveIndex = 6,
    /// A DELAY_US or REG_POLL timeout beyond the caps.
    BadDelay = 7,
    /// A REG_POLL condition did not hold in time.
    PollTimeout = 8,
    /// A register access failed.
    Mmio = 9,
    /// A core operation failed (reset, start, halt, reload).
    Core = 10,
    /// SEC2 reported an error in MAILBOX0 after CORE_RESUME.
    Sec2Error = 11,
    /// The GSP's RISC-V core is not active after CORE_RESUME.
    RiscvInactive = 12,
}

impl From<MmioError> for SeqError {
    fn from(_: MmioError) -> Self {
        Self::Mmio
    }
}

impl From<FalconError> for SeqError {
    fn from(e: FalconError) -> Self {
        match e {
            FalconError::Mmio(_) => Self::Mmio,
            _ => Self::Core,
        }
    }
}

/// What CORE_RESUME needs from the boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequencerEnv {
    /// The chip (for the RISC-V status register and core selection).
    pub chip: Chipset,
    /// DMA address of the LibOS argument page (GSP MBOX0/1).
    pub libos_dma: u64,
    /// The bootloader's app version (GSP `FALCON_OS`).
    pub app_version: u32,
    /// How to read `cmdIndex`.
    pub unit: CmdIndexUnit,
    /// Which core the GSP reset selects on GA102+ (see `boot::CoreSelect`).
    pub core: PeregrineCoreSelect,
}

/// The result of a completed sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqOutcome {
    /// `regSaveArea` after the REG_STOREs.
    pub reg_save: [u32; GSP_SEQ_REG_SAVE_AREA_LEN],
    /// Commands executed.
    pub commands: u32,
}

/// One decoded command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    RegWrite {
        addr: u32,
        val: u32,
    },
    RegModify {
        addr: u32,
        mask: u32,
        val: u32,
    },
    RegPoll {
        addr: u32,
        mask: u32,
        val: u32,
        timeout_us: u32,
        error: u32,
    },
    DelayUs(u32),
    RegStore {
        addr: u32,
        index: u32,
    },
    CoreReset,
    CoreStart,
    CoreWaitForHalt,
    CoreResume,
}

/// Run the sequence in `payload` (the whole GSP_RUN_CPU_SEQUENCER payload).
///
/// # Errors
/// The first [`SeqError`]; commands before it have run, none after it.
pub fn run(
    payload: &[u8],
    env: &SequencerEnv,
    io: &mut dyn Mmio,
    clock: &mut dyn Clock,
) -> Result<SeqOutcome, SeqError> {
    let (hdr, rest) =
        rpc_run_cpu_sequencer_v17_00::read_from_prefix(payload).map_err(|_| SeqError::Truncated)?;
    let received = rest.len() / size_of::<u32>();
    let dword = |i: usize| -> Option<u32> {
        let b = rest.get(i * 4..i * 4 + 4)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    };
    let capacity = received.min(hdr.bufferSizeDWord as usize);
    let (limit, max_cmds) = match env.unit {
        CmdIndexUnit::Dwords => {
            if hdr.cmdIndex as usize > capacity {
                return Err(fail(SeqError::BadLength, hdr.cmdIndex));
            }
            (hdr.cmdIndex as usize, u32::MAX)
        }
        CmdIndexUnit::Commands => (capacity, hdr.cmdIndex),
    };
    let mut out = SeqOutcome {
        reg_save: hdr.regSaveArea,
        commands: 0,
    };
    let mut pos = 0usize;
    while pos < limit && out.commands < max_cmds {
        let at = pos;
        let (cmd, next) = decode(at, limit, &dword).map_err(|e| fail(e, at as u32))?;
        execute(cmd, env, io, clock, &mut out.reg_save).map_err(|e| fail(e, at as u32))?;
        out.commands += 1;
        pos = next;
    }
    if env.unit == CmdIndexUnit::Commands && out.commands < max_cmds {
        return Err(fail(SeqError::BadLength, hdr.cmdIndex));
    }
    Ok(out)
}

fn fail(e: SeqError, at: u32) -> SeqError {
    log::error!("gsp: cpu sequencer stopped at dword {at}: {e:?}");
    e
}

/// Decode the command at dword `at`, whose payload must end by `limit`. Returns it and the
/// index of the next command.
fn decode(
    at: usize,
    limit: usize,
    dword: &dyn Fn(usize) -> Option<u32>,
) -> Result<(Cmd, usize), SeqError> {
    let raw = dword(at).ok_or(SeqError::CommandTruncated)?;
    let op = GSP_SEQ_BUF_OPCODE::try_from(raw).map_err(|_| SeqError::BadOpcode)?;
    let next = at + 1 + op.payload_dwords();
    if next > limit {
        return Err(SeqError::CommandTruncated);
    }
    let p = |i: usize| dword(at + 1 + i).ok_or(SeqError::CommandTruncated);
    let cmd = match op {
        GSP_SEQ_BUF_OPCODE::REG_WRITE => Cmd::RegWrite {
            addr: p(0)?,
            val: p(1)?,
        },
        GSP_SEQ_BUF_OPCODE::REG_MODIFY => Cmd::RegModify {
            addr: p(0)?,
            mask: p(1)?,
            val: p(2)?,
        },
        GSP_SEQ_BUF_OPCODE::REG_POLL => Cmd::RegPoll {
            addr: p(0)?,
            mask: p(1)?,
            val: p(2)?,
            timeout_us: p(3)?,
            error: p(4)?,
        },
        GSP_SEQ_BUF_OPCODE::DELAY_US => Cmd::DelayUs(p(0)?),
        GSP_SEQ_BUF_OPCODE::REG_STORE => Cmd::RegStore {
            addr: p(0)?,
            index: p(1)?,
        },
        GSP_SEQ_BUF_OPCODE::CORE_RESET => Cmd::CoreReset,
        GSP_SEQ_BUF_OPCODE::CORE_START => Cmd::CoreStart,
        GSP_SEQ_BUF_OPCODE::CORE_WAIT_FOR_HALT => Cmd::CoreWaitForHalt,
        GSP_SEQ_BUF_OPCODE::CORE_RESUME => Cmd::CoreResume,
    };
    Ok((cmd, next))
}

/// A register offset the firmware named: dword-aligned and inside BAR0.
fn reg(addr: u32) -> Result<u32, SeqError> {
    if addr.is_multiple_of(4) && addr < BAR0_SIZE {
        Ok(addr)
    } else {
        Err(SeqError::BadRegister)
    }
}

fn execute(
    cmd: Cmd,
    env: &SequencerEnv,
    io: &mut dyn Mmio,
    clock: &mut dyn Clock,
    save: &mut [u32; GSP_SEQ_REG_SAVE_AREA_LEN],
) -> Result<(), SeqError> {
    match cmd {
        Cmd::RegWrite { addr, val } => io.write32(reg(addr)?, val)?,
        Cmd::RegModify { addr, mask, val } => {
            let a = reg(addr)?;
            let old = io.read32(a)?;
            io.write32(a, (old & !mask) | val)?;
        }
        Cmd::RegPoll {
            addr,
            mask,
            val,
            timeout_us,
            error,
        } => {
            let a = reg(addr)?;
            let us = match timeout_us {
                0 => DEFAULT_POLL_TIMEOUT_US,
                t if t > MAX_POLL_TIMEOUT_US => return Err(SeqError::BadDelay),
                t => t,
            };
            falcon::poll(clock, u64::from(us) * 1000, SeqError::PollTimeout, || {
                Ok(io.read32(a)? & mask == val)
            })
            .inspect_err(|_| {
                log::error!("gsp: sequencer poll of {a:#x} timed out (firmware error {error:#x})");
            })?;
        }
        Cmd::DelayUs(us) => {
            if us > MAX_DELAY_US {
                return Err(SeqError::BadDelay);
            }
            // TIMEOUT: a bounded delay the firmware asked for; re-checked against the clock
            // because delay_us may return early.
            let end = clock.now_ns().saturating_add(u64::from(us) * 1000);
            while clock.now_ns() < end {
                clock.delay_us(us);
            }
        }
        Cmd::RegStore { addr, index } => {
            let a = reg(addr)?;
            let slot = save.get_mut(index as usize).ok_or(SeqError::BadSaveIndex)?;
            *slot = io.read32(a)?;
        }
        Cmd::CoreReset => falcon::reset(io, clock, Falcon::Gsp, env.chip, env.core)?,
        Cmd::CoreStart => falcon::start(io, Falcon::Gsp)?,
        Cmd::CoreWaitForHalt => falcon::wait_halted(io, clock, Falcon::Gsp, HALT_TIMEOUT_NS)?,
        Cmd::CoreResume => core_resume(env, io, clock)?,
    }
    Ok(())
}

/// CORE_RESUME (nova `GspSeqCmd::CoreResume`, nouveau r535): SEC2-RTOS has been loaded by the
/// sequence; reset the GSP, give it the LibOS arguments, start SEC2 (which reloads GSP-RM), wait
/// for the handoff, check SEC2's status, then the version and the RISC-V core.
fn core_resume(
    env: &SequencerEnv,
    io: &mut dyn Mmio,
    clock: &mut dyn Clock,
) -> Result<(), SeqError> {
    falcon::reset(io, clock, Falcon::Gsp, env.chip, env.core)?;
    falcon::write_mailboxes(io, Falcon::Gsp, env.libos_dma)?;
    falcon::start(io, Falcon::Sec2)?;
    falcon::wait_reload_completed(io, clock)?;
    let mbox0 = falcon::mailbox0(io, Falcon::Sec2)?;
    if mbox0 != 0 {
        log::error!("gsp: sequencer CORE_RESUME: SEC2 reported {mbox0:#x}");
        return Err(SeqError::Sec2Error);
    }
    falcon::write_os_version(io, Falcon::Gsp, env.app_version)?;
    if !falcon::riscv_active(io, Falcon::Gsp, env.chip)? {
        return Err(SeqError::RiscvInactive);
    }
    Ok(())
}
