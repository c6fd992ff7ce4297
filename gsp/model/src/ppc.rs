//! The model PD's protected-procedure-call protocol: how other PDs reach the simulated GPU.
//!
//! The gsp PD does its BAR0 accesses as PPCs ([`MmioPpc`] implements `gsp::regs::Mmio` over
//! them); the fault campaign sets knobs with [`LABEL_FAULT`]. A reply's label is 0 on success,
//! else the `MmioError` discriminant (or [`REPLY_BAD_REQUEST`]). The model never calls anyone.
//!
//! | label | request MRs | reply MRs |
//! |---|---|---|
//! | [`LABEL_READ32`] | 0: offset | 0: value |
//! | [`LABEL_WRITE32`] | 0: offset, 1: value | — |
//! | [`LABEL_FAULT`] | 0: knob code ([`crate::Fault::from_wire`]), 1: argument | — |
use crate::{Fault, GspModel};
use gsp::regs::{Mmio, MmioError};
use pd_core::{Channel, Kernel, MessageInfo};

/// Read a 32-bit register.
pub const LABEL_READ32: u64 = 1;
/// Write a 32-bit register.
pub const LABEL_WRITE32: u64 = 2;
/// Set a fault knob.
pub const LABEL_FAULT: u64 = 3;
/// Reply label for an unknown label or a malformed request.
pub const REPLY_BAD_REQUEST: u64 = 0xff;

fn mmio_error(label: u64) -> MmioError {
    match label {
        1 => MmioError::Unaligned,
        2 => MmioError::OutOfRange,
        4 => MmioError::BadIndex,
        _ => MmioError::Unavailable,
    }
}

/// `gsp::regs::Mmio` over PPCs to the model PD on `ch`.
pub struct MmioPpc<'k> {
    k: &'k mut dyn Kernel,
    ch: Channel,
}

impl core::fmt::Debug for MmioPpc<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MmioPpc")
            .field("ch", &self.ch)
            .finish_non_exhaustive()
    }
}

impl<'k> MmioPpc<'k> {
    /// Accesses through `k` on channel `ch`.
    pub fn new(k: &'k mut dyn Kernel, ch: Channel) -> Self {
        Self { k, ch }
    }

    fn call(&mut self, label: u64, mrs: &[u64]) -> Result<u64, MmioError> {
        for (i, &v) in mrs.iter().enumerate() {
            self.k.mrs().set(i, v);
        }
        let reply = self
            .k
            .ppcall(self.ch, MessageInfo::new(label, mrs.len()))
            .map_err(|_| MmioError::Unavailable)?;
        match reply.label() {
            0 => Ok(self.k.mrs().get(0)),
            l => Err(mmio_error(l)),
        }
    }
}

impl Mmio for MmioPpc<'_> {
    fn read32(&mut self, offset: u32) -> Result<u32, MmioError> {
        // CAST: the model replies with a 32-bit register value.
        self.call(LABEL_READ32, &[u64::from(offset)])
            .map(|v| v as u32)
    }

    fn write32(&mut self, offset: u32, value: u32) -> Result<(), MmioError> {
        self.call(LABEL_WRITE32, &[u64::from(offset), u64::from(value)])
            .map(|_| ())
    }
}

fn error_label(e: MmioError) -> u64 {
    // CAST: MmioError is a fieldless repr(u32) enum; its discriminant is the wire value.
    u64::from(e as u32)
}

impl GspModel<'_> {
    /// Serve one PPC (the model PD's `protected` entry point). Time comes from `k.now_ns()`.
    pub fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        self.tick(k.now_ns());
        let mrs = k.mrs();
        let (a, b) = (mrs.get(0), mrs.get(1));
        let offset = u32::try_from(a).ok();
        let result = match (msg.label(), offset) {
            (LABEL_READ32, Some(o)) if msg.count() >= 1 => self.read32(o).map(|v| {
                k.mrs().set(0, u64::from(v));
                1
            }),
            (LABEL_WRITE32, Some(o)) if msg.count() >= 2 => {
                // A register value is 32 bits; wider values are refused.
                match u32::try_from(b) {
                    Ok(v) => self.write32(o, v).map(|()| 0),
                    Err(_) => return MessageInfo::new(REPLY_BAD_REQUEST, 0),
                }
            }
            (LABEL_FAULT, _) if msg.count() >= 1 => match Fault::from_wire(a, b) {
                Some(f) => {
                    self.set_fault(f);
                    Ok(0)
                }
                None => return MessageInfo::new(REPLY_BAD_REQUEST, 0),
            },
            (label, _) => {
                log::warn!(
                    "gsp_model: bad PPC on {ch:?}: label {label:#x}, {} MRs",
                    msg.count()
                );
                return MessageInfo::new(REPLY_BAD_REQUEST, 0);
            }
        };
        match result {
            Ok(n) => MessageInfo::new(0, n),
            Err(e) => MessageInfo::new(error_label(e), 0),
        }
    }
}
