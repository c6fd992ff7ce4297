//! The GPU as the gsp PD reaches it: BAR0 as PPCs on its `GSP_MODEL` channel
//! (`gsp_model::ppc::MmioPpc`; the device is the GSP model in hosted mode and in QEMU), time from
//! the kernel, and the GSP's interrupt status.
//!
//! The boot and the RPC layer take registers and the clock as two separate `&mut dyn` objects,
//! while both need the PD's one kernel; [`Device`] holds the kernel in a `RefCell` and hands out
//! [`Io`] and [`Time`] views of it. Neither view calls the other while it holds the kernel, so
//! the borrow never fails (a failure would read as an unavailable device, not a panic).
//!
//! Waiting ([`Time::delay_us`]) polls the GSP falcon's `IRQSTAT`: that is what a driver waiting
//! for the GSP does, and it is when a device that runs only inside register accesses (the model)
//! gets to advance its clock and release work it held back. A wait that sees the falcon halted,
//! or a device declared dead ([`Device::mark_dead`]: the firmware crashed), ends every wait at
//! once: the clock reads as past every deadline, so a call waiting for a reply that will never
//! come fails now instead of after its full timeout.
use core::cell::{Cell, RefCell};
use gsp::regs::{Falcon, Mmio, MmioError, NV_PFALCON_FALCON_IRQSCLR, NV_PFALCON_FALCON_IRQSTAT};
use gsp::rpc::Clock;
use gsp_model::ppc::MmioPpc;
use pd_core::{Channel, Kernel};

/// The PD's kernel, shared by the register and clock views.
pub struct Device<'k> {
    k: RefCell<&'k mut dyn Kernel>,
    ch: Channel,
    dead: Cell<bool>,
}

impl core::fmt::Debug for Device<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Device")
            .field("ch", &self.ch)
            .finish_non_exhaustive()
    }
}

/// What the GSP's interrupt status said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Irq {
    /// The GSP falcon halted: the firmware is dead.
    pub halt: bool,
    /// GSP-RM queued messages (SWGEN0).
    pub swgen0: bool,
}

impl<'k> Device<'k> {
    /// BAR0 through `k` on channel `ch`.
    pub fn new(k: &'k mut dyn Kernel, ch: Channel) -> Self {
        Self {
            k: RefCell::new(k),
            ch,
            dead: Cell::new(false),
        }
    }

    /// The firmware is gone: end every wait at once.
    pub fn mark_dead(&self) {
        self.dead.set(true);
    }

    /// Whether the firmware was found gone (a halt seen while waiting, or [`Device::mark_dead`]).
    pub fn is_dead(&self) -> bool {
        self.dead.get()
    }

    /// The register view.
    pub fn io(&self) -> Io<'_, 'k> {
        Io(self)
    }

    /// The clock view.
    pub fn time(&self) -> Time<'_, 'k> {
        Time(self)
    }

    /// Run `f` with the kernel (for PPCs to other PDs between register accesses).
    ///
    /// # Errors
    /// [`MmioError::Unavailable`] if the kernel is in use (never, see the module doc).
    pub fn with_kernel<R>(&self, f: impl FnOnce(&mut dyn Kernel) -> R) -> Result<R, MmioError> {
        let mut k = self
            .k
            .try_borrow_mut()
            .map_err(|_| MmioError::Unavailable)?;
        Ok(f(&mut **k))
    }

    /// Read the GSP's interrupt status and acknowledge what was set.
    ///
    /// # Errors
    /// The register access's [`MmioError`].
    pub fn take_irq(&self) -> Result<Irq, MmioError> {
        let mut io = self.io();
        let stat = NV_PFALCON_FALCON_IRQSTAT::read(&mut io, Falcon::Gsp)?;
        let irq = Irq {
            halt: stat.halt(),
            swgen0: stat.swgen0(),
        };
        if irq.halt || irq.swgen0 {
            NV_PFALCON_FALCON_IRQSCLR::from_raw(stat.into_raw()).write(&mut io, Falcon::Gsp)?;
        }
        Ok(irq)
    }
}

/// `gsp::regs::Mmio` over the device's channel.
#[derive(Debug)]
pub struct Io<'d, 'k>(&'d Device<'k>);

impl Mmio for Io<'_, '_> {
    fn read32(&mut self, offset: u32) -> Result<u32, MmioError> {
        let ch = self.0.ch;
        self.0
            .with_kernel(|k| MmioPpc::new(k, ch).read32(offset))
            .and_then(|r| r)
    }

    fn write32(&mut self, offset: u32, value: u32) -> Result<(), MmioError> {
        let ch = self.0.ch;
        self.0
            .with_kernel(|k| MmioPpc::new(k, ch).write32(offset, value))
            .and_then(|r| r)
    }
}

/// `gsp::rpc::Clock` over the kernel's clock; waits poll the GSP's interrupt status.
#[derive(Debug)]
pub struct Time<'d, 'k>(&'d Device<'k>);

impl Clock for Time<'_, '_> {
    fn now_ns(&mut self) -> u64 {
        if self.0.is_dead() {
            return u64::MAX;
        }
        // A kernel in use reads as "late", so deadlines expire instead of hanging.
        self.0.with_kernel(|k| k.now_ns()).unwrap_or(u64::MAX)
    }

    fn delay_us(&mut self, us: u32) {
        let until = self.now_ns().saturating_add(u64::from(us) * 1_000);
        let mut io = self.0.io();
        loop {
            // TIMEOUT: bounded by `until`; an unreachable or halted device ends the wait at once.
            match NV_PFALCON_FALCON_IRQSTAT::read(&mut io, Falcon::Gsp) {
                Ok(stat) if stat.halt() => {
                    self.0.mark_dead();
                    return;
                }
                Ok(_) if self.now_ns() < until => {}
                _ => return,
            }
        }
    }
}
