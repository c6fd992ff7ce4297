//! The two signed-ucode boot steps, as the driver runs them against the model
//! ([`gsp::boot::SecureBoot`]).
//!
//! On real hardware FWSEC-FRTS comes from the VBIOS and booter_load is a signed SEC2 ucode; the
//! driver loads them through the falcons' DMA engines and starts them. The model emulates their
//! *effects* when the falcon is started ([`crate::boot`]), so running them is the register
//! protocol alone: pulse the falcon's engine reset (a ucode is always loaded into a freshly
//! reset falcon), write the mailboxes, start the CPU, wait for the halt, read MBOX0.
//!
//! The FRTS location the driver computed is *not* handed to the model: the model derives it from
//! its own FB and the layout rules, and the driver then checks WPR2 against its own numbers —
//! so a driver whose layout arithmetic is wrong fails here, as it would on hardware.
use gsp::boot::falcon::HALT_TIMEOUT_NS;
use gsp::boot::{SecureBoot, SecureBootError};
use gsp::fb::Span;
use gsp::regs::{
    Falcon, Mmio, NV_PFALCON_FALCON_CPUCTL, NV_PFALCON_FALCON_ENGINE, NV_PFALCON_FALCON_MAILBOX0,
    NV_PFALCON_FALCON_MAILBOX1,
};
use gsp::rpc::Clock;

/// FWSEC-FRTS and booter_load for the GSP model.
#[derive(Debug, Default, Clone, Copy)]
pub struct ModelSecureBoot;

fn mmio<T>(r: Result<T, gsp::regs::MmioError>) -> Result<T, SecureBootError> {
    r.map_err(|_| SecureBootError::Mmio)
}

/// Reset falcon `f`, write `arg` to its mailboxes, start it and wait for the halt.
fn run(
    io: &mut dyn Mmio,
    clock: &mut dyn Clock,
    f: Falcon,
    arg: u64,
) -> Result<u32, SecureBootError> {
    let (reset, idle) = (
        NV_PFALCON_FALCON_ENGINE::from_raw(1),
        NV_PFALCON_FALCON_ENGINE::from_raw(0),
    );
    mmio(reset.write(io, f))?;
    clock.delay_us(10);
    mmio(idle.write(io, f))?;
    // CAST: the two halves of the argument.
    mmio(NV_PFALCON_FALCON_MAILBOX0::from_raw(arg as u32).write(io, f))?;
    mmio(NV_PFALCON_FALCON_MAILBOX1::from_raw((arg >> 32) as u32).write(io, f))?;
    mmio(NV_PFALCON_FALCON_CPUCTL::from_raw(1 << 1).write(io, f))?;
    let deadline = clock.now_ns().saturating_add(HALT_TIMEOUT_NS);
    while !mmio(NV_PFALCON_FALCON_CPUCTL::read(io, f))?.halted() {
        if clock.now_ns() >= deadline {
            return Err(SecureBootError::Timeout);
        }
        clock.delay_us(10);
    }
    Ok(mmio(NV_PFALCON_FALCON_MAILBOX0::read(io, f))?.value())
}

impl SecureBoot for ModelSecureBoot {
    fn run_fwsec_frts(
        &mut self,
        io: &mut dyn Mmio,
        clock: &mut dyn Clock,
        frts: Span,
    ) -> Result<(), SecureBootError> {
        log::debug!(
            "gsp_model: FWSEC-FRTS for FRTS at {:#x}..{:#x}",
            frts.start,
            frts.end
        );
        run(io, clock, Falcon::Gsp, 0).map(|_| ())
    }

    fn run_booter_load(
        &mut self,
        io: &mut dyn Mmio,
        clock: &mut dyn Clock,
        wpr_meta_dma: u64,
    ) -> Result<u32, SecureBootError> {
        run(io, clock, Falcon::Sec2, wpr_meta_dma)
    }
}
