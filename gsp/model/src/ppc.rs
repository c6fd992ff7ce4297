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
//!
//! On the channel named with [`GspModel::serve_pci_on`] the labels are instead
//! [`pci_api::cfg`]'s config-space accesses to the emulated topology ([`crate::pci`]).
use crate::pci::PciEffect;
use crate::{Fault, GspModel};
use gsp::regs::{Mmio, MmioError};
use pd_core::{Channel, ChannelSet, Handler, Kernel, MessageInfo};

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

impl GspModel<'_> {
    /// A `pci_api::cfg` request on the `pci` channel, with its device-side effects.
    fn config_access(&mut self, k: &mut dyn Kernel, msg: MessageInfo) -> MessageInfo {
        let Some(pci) = self.pci.as_mut() else {
            return pci_api::cfg::ConfigRequest::reply(
                Err(pci_api::cfg::ConfigError::Transport),
                k.mrs(),
            );
        };
        let (reply, effect) = pci.serve(k, msg);
        match effect {
            PciEffect::Bars(bars) => self.set_bars(bars),
            PciEffect::Flr => {
                log::warn!("gsp_model: function-level reset");
                self.reset();
            }
            PciEffect::None => {}
        }
        reply
    }
}

/// The model PD's event loop entry points: PPCs are served, notifications (which a device never
/// expects) are logged and ignored.
impl Handler for GspModel<'_> {
    fn notified(&mut self, k: &mut dyn Kernel, channels: ChannelSet) {
        log::warn!(
            "{}: unexpected notification from {channels:?} ignored",
            k.pd_name()
        );
    }

    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        GspModel::protected(self, k, ch, msg)
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
        if Some(ch) == self.pci_channel {
            return self.config_access(k, msg);
        }
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

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::phys::{FbLayout, Memory};
    use crate::ModelConfig;
    use gsp::chip::Chipset;
    use gsp::regs::{NV_PGSP_QUEUE_HEAD, NV_PMC_BOOT_42};
    use pci_api::cfg::ConfigClient;
    use pci_api::{Bdf, Width};
    use pd_core::{IpcError, MessageRegisters};
    use std::vec;

    /// A caller whose PPCs land in the model's `protected` (one register file for both ends, as
    /// the PPC copy makes it look).
    struct Loopback<'m, 'a> {
        model: &'m mut GspModel<'a>,
        mrs: MessageRegisters,
        now: u64,
    }

    struct Callee<'r> {
        mrs: &'r mut MessageRegisters,
        now: u64,
    }

    impl Kernel for Callee<'_> {
        fn pd_name(&self) -> &str {
            "gsp_model"
        }
        fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
            Err(IpcError::NoNotifyRight)
        }
        fn ppcall(&mut self, _: Channel, _: MessageInfo) -> Result<MessageInfo, IpcError> {
            Err(IpcError::NoPpcRight)
        }
        fn mrs(&mut self) -> &mut MessageRegisters {
            self.mrs
        }
        fn now_ns(&self) -> u64 {
            self.now
        }
    }

    impl Kernel for Loopback<'_, '_> {
        fn pd_name(&self) -> &str {
            "gsp"
        }
        fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
            Ok(())
        }
        fn ppcall(&mut self, ch: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
            let mut callee = Callee {
                mrs: &mut self.mrs,
                now: self.now,
            };
            Ok(self.model.protected(&mut callee, ch, msg))
        }
        fn mrs(&mut self) -> &mut MessageRegisters {
            &mut self.mrs
        }
        fn now_ns(&self) -> u64 {
            self.now
        }
    }

    #[test]
    fn mmio_config_and_fault_knobs_over_ppc() {
        let mem = Memory::new(FbLayout {
            reported_size: 1 << 30,
        });
        let mut buf = vec![0u8; 0x1_0000];
        let mut model = GspModel::new(ModelConfig::new(Chipset::AD102), mem, &[], &mut buf);
        let (mmio_ch, pci_ch) = (Channel::new(2), Channel::new(1));
        model.serve_pci_on(pci_ch);
        let mut k = Loopback {
            model: &mut model,
            mrs: MessageRegisters::default(),
            now: 5_000,
        };
        {
            let mut io = MmioPpc::new(&mut k, mmio_ch);
            let b42 = NV_PMC_BOOT_42::read(&mut io).unwrap();
            assert_eq!(b42.chipset(), Ok(Chipset::AD102));
            assert_eq!(io.read32(3), Err(MmioError::Unaligned));
            assert_eq!(io.write32(0x0100_0000, 0), Err(MmioError::OutOfRange));
            NV_PGSP_QUEUE_HEAD::default().write(&mut io, 0).unwrap();
        }
        // Config space on the pci channel: the host bridge is QEMU's.
        let cfg = ConfigClient::new(pci_ch);
        let host = Bdf::new(0, 0, 0).unwrap();
        assert_eq!(cfg.read(&mut k, host, 0, Width::U16), Ok(0x1b36));
        // A knob over the wire; a bad one is refused.
        k.mrs.set(0, 7);
        assert_eq!(
            k.ppcall(mmio_ch, MessageInfo::new(LABEL_FAULT, 2))
                .unwrap()
                .label(),
            0
        );
        k.mrs.set(0, 77);
        assert_eq!(
            k.ppcall(mmio_ch, MessageInfo::new(LABEL_FAULT, 2))
                .unwrap()
                .label(),
            REPLY_BAD_REQUEST
        );
        assert_eq!(
            k.ppcall(mmio_ch, MessageInfo::new(0x99, 0))
                .unwrap()
                .label(),
            REPLY_BAD_REQUEST
        );
        assert_eq!(k.model.fault_knob(), Fault::SpuriousEvents);
        assert_eq!(k.model.bar.now_ns, 5_000);
    }
}
