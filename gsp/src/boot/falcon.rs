//! Falcon core operations the boot and the CPU sequencer share: reset, start, wait for halt,
//! mailboxes, the RISC-V active check, and the GSP-reload handoff.
//!
//! Register sequences follow nova-core `falcon.rs` and `falcon/hal/{tu102,ga102}.rs` (and OpenRM
//! `kflcnReset*`), over [`Mmio`] and [`Clock`] so the GSP model (or a test map) satisfies them.
use crate::chip::Chipset;
use crate::regs::{
    Falcon, Falcon2, FieldError, Mmio, MmioError, PeregrineCoreSelect, NV_PFALCON_FALCON_CPUCTL,
    NV_PFALCON_FALCON_ENGINE, NV_PFALCON_FALCON_HWCFG2, NV_PFALCON_FALCON_MAILBOX0,
    NV_PFALCON_FALCON_MAILBOX1, NV_PFALCON_FALCON_OS, NV_PGC6_BSI_SECURE_SCRATCH_14,
    NV_PRISCV_RISCV_BCR_CTRL, NV_PRISCV_RISCV_CORE_SWITCH_RISCV_STATUS, NV_PRISCV_RISCV_CPUCTL,
};
use crate::rpc::Clock;

/// TIMEOUT: reset-ready is not always signalled by hardware (OpenRM `kflcnPreResetWait_GA102`);
/// nova waits 150 us and carries on.
const RESET_READY_TIMEOUT_NS: u64 = 150_000;
/// TIMEOUT: IMEM/DMEM scrubbing after reset completes in under 20 ms (nova).
const SCRUB_TIMEOUT_NS: u64 = 20_000_000;
/// TIMEOUT: a core-select write becomes valid within 10 ms (nova `select_falcon_core`).
const CORE_SELECT_TIMEOUT_NS: u64 = 10_000_000;
/// TIMEOUT: GSP reload after CORE_RESUME completes within 2 s (nova `check_reload_completed`).
pub const RELOAD_TIMEOUT_NS: u64 = 2_000_000_000;
/// TIMEOUT: a falcon running a boot ucode halts within 2 s (nova `wait_till_halted`).
pub const HALT_TIMEOUT_NS: u64 = 2_000_000_000;
/// How long to wait between polls.
const POLL_US: u32 = 1;

/// Why a falcon operation failed. Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FalconError {
    /// A register access failed.
    Mmio(MmioError) = 1,
    /// A register field held no valid value.
    Field(FieldError) = 2,
    /// Memory scrubbing did not finish after reset.
    ScrubTimeout = 3,
    /// The falcon did not halt in time.
    HaltTimeout = 4,
    /// The GSP-reload handoff bit did not appear in time.
    ReloadTimeout = 5,
    /// The core selection did not become valid.
    CoreSelectTimeout = 6,
}

impl From<MmioError> for FalconError {
    fn from(e: MmioError) -> Self {
        Self::Mmio(e)
    }
}

impl From<FieldError> for FalconError {
    fn from(e: FieldError) -> Self {
        Self::Field(e)
    }
}

/// Poll `done` until it holds or `timeout_ns` passes.
///
/// # Errors
/// `on_timeout` when it never held; the first error `done` returns.
pub(crate) fn poll<E>(
    clock: &mut dyn Clock,
    timeout_ns: u64,
    on_timeout: E,
    mut done: impl FnMut() -> Result<bool, E>,
) -> Result<(), E> {
    let deadline = clock.now_ns().saturating_add(timeout_ns);
    loop {
        if done()? {
            return Ok(());
        }
        if clock.now_ns() >= deadline {
            return Err(on_timeout);
        }
        clock.delay_us(POLL_US);
    }
}

/// Reset falcon `f` (nova `Falcon::reset`): wait (non-failing) for reset-ready, pulse the engine
/// reset, on GA102 and later select `core`, and wait for memory scrubbing to finish.
///
/// # Errors
/// [`FalconError::ScrubTimeout`], [`FalconError::CoreSelectTimeout`], register errors.
pub fn reset(
    io: &mut dyn Mmio,
    clock: &mut dyn Clock,
    f: Falcon,
    chip: Chipset,
    core: PeregrineCoreSelect,
) -> Result<(), FalconError> {
    let _ = poll(
        clock,
        RESET_READY_TIMEOUT_NS,
        FalconError::ScrubTimeout,
        || Ok::<_, FalconError>(NV_PFALCON_FALCON_HWCFG2::read(io, f)?.reset_ready()),
    );
    NV_PFALCON_FALCON_ENGINE::default()
        .set(|w| w.reset(true))?
        .write(io, f)?;
    clock.delay_us(10);
    NV_PFALCON_FALCON_ENGINE::default().write(io, f)?;
    if chip.has_riscv_cpuctl() {
        select_core(io, clock, f, core)?;
    }
    // nouveau/nova clear MAILBOX0 before waiting for scrubbing.
    NV_PFALCON_FALCON_MAILBOX0::default().write(io, f)?;
    poll(clock, SCRUB_TIMEOUT_NS, FalconError::ScrubTimeout, || {
        Ok(!NV_PFALCON_FALCON_HWCFG2::read(io, f)?.mem_scrubbing())
    })
}

/// Select which core of a GA102+ engine runs (nova `select_core`, OpenRM `kflcnRiscvProgramBcr`).
fn select_core(
    io: &mut dyn Mmio,
    clock: &mut dyn Clock,
    f: Falcon,
    core: PeregrineCoreSelect,
) -> Result<(), FalconError> {
    let bcr = NV_PRISCV_RISCV_BCR_CTRL::read(io, Falcon2(f))?;
    if bcr.core_select().ok() == Some(core) && bcr.valid() {
        return Ok(());
    }
    NV_PRISCV_RISCV_BCR_CTRL::default()
        .set(|w| w.core_select(core))?
        .write(io, Falcon2(f))?;
    poll(
        clock,
        CORE_SELECT_TIMEOUT_NS,
        FalconError::CoreSelectTimeout,
        || Ok(NV_PRISCV_RISCV_BCR_CTRL::read(io, Falcon2(f))?.valid()),
    )
}

/// Start falcon `f`'s CPU.
///
/// # Errors
/// Register errors.
pub fn start(io: &mut dyn Mmio, f: Falcon) -> Result<(), FalconError> {
    NV_PFALCON_FALCON_CPUCTL::default()
        .set(|w| w.startcpu(true))?
        .write(io, f)?;
    Ok(())
}

/// Wait until falcon `f` halts.
///
/// # Errors
/// [`FalconError::HaltTimeout`], register errors.
pub fn wait_halted(
    io: &mut dyn Mmio,
    clock: &mut dyn Clock,
    f: Falcon,
    timeout_ns: u64,
) -> Result<(), FalconError> {
    poll(clock, timeout_ns, FalconError::HaltTimeout, || {
        Ok(NV_PFALCON_FALCON_CPUCTL::read(io, f)?.halted())
    })
}

/// Write a 64-bit argument to `f`'s MAILBOX0 (low half) and MAILBOX1 (high half).
///
/// # Errors
/// Register errors.
pub fn write_mailboxes(io: &mut dyn Mmio, f: Falcon, value: u64) -> Result<(), FalconError> {
    // CAST: the two halves of a u64, truncation intended.
    let (lo, hi) = (value as u32, (value >> 32) as u32);
    NV_PFALCON_FALCON_MAILBOX0::default()
        .set(|w| w.value(lo))?
        .write(io, f)?;
    NV_PFALCON_FALCON_MAILBOX1::default()
        .set(|w| w.value(hi))?
        .write(io, f)?;
    Ok(())
}

/// `f`'s MAILBOX0 (a boot ucode's status: 0 = success).
///
/// # Errors
/// Register errors.
pub fn mailbox0(io: &mut dyn Mmio, f: Falcon) -> Result<u32, FalconError> {
    Ok(NV_PFALCON_FALCON_MAILBOX0::read(io, f)?.value())
}

/// Write the bootloader's app version to `f`'s `FALCON_OS`.
///
/// # Errors
/// Register errors.
pub fn write_os_version(io: &mut dyn Mmio, f: Falcon, version: u32) -> Result<(), FalconError> {
    NV_PFALCON_FALCON_OS::default()
        .set(|w| w.value(version))?
        .write(io, f)?;
    Ok(())
}

/// Whether `f`'s RISC-V core is active: `NV_PRISCV_RISCV_CPUCTL.ACTIVE_STAT` on GA102 and later,
/// `NV_PRISCV_RISCV_CORE_SWITCH_RISCV_STATUS` on TU10x/GA100 (reference 1.12).
///
/// # Errors
/// Register errors.
pub fn riscv_active(io: &mut dyn Mmio, f: Falcon, chip: Chipset) -> Result<bool, FalconError> {
    Ok(if chip.has_riscv_cpuctl() {
        NV_PRISCV_RISCV_CPUCTL::read(io, Falcon2(f))?.active_stat()
    } else {
        NV_PRISCV_RISCV_CORE_SWITCH_RISCV_STATUS::read(io, Falcon2(f))?.active_stat()
    })
}

/// Wait for the GSP-reload handoff (`NV_PGC6_BSI_SECURE_SCRATCH_14` bit 26) after CORE_RESUME.
///
/// # Errors
/// [`FalconError::ReloadTimeout`], register errors.
pub fn wait_reload_completed(io: &mut dyn Mmio, clock: &mut dyn Clock) -> Result<(), FalconError> {
    poll(clock, RELOAD_TIMEOUT_NS, FalconError::ReloadTimeout, || {
        Ok(NV_PGC6_BSI_SECURE_SCRATCH_14::read(io)?.boot_stage_3_handoff())
    })
}
