//! [`Sel4Kernel`]: pd-core's [`Kernel`] on Microkit channels.
//!
//! Channel rights come from the masks the Microkit tool patches into every PD
//! (`microkit_notifications`, `microkit_pps`, `microkit_irqs`): a channel whose bit is clear has no
//! capability in the PD's CSpace, so it is refused here with an [`IpcError`] and a log line
//! instead of a capability fault. Message registers live in the PD (pd-core's
//! [`MessageRegisters`]) and are copied to and from the IPC buffer at the PPC boundary, the
//! same copy Microkit's kernel path does.
#![allow(unsafe_code)]

use pd_core::{Channel, Child, IpcError, Kernel, MessageInfo, MessageRegisters, Verdict, MSG_REGS};

use crate::clock;
use crate::restart::{self, PEER_FAULTED_LABEL as PEER_FAULTED};

// The channel masks, defined (and kept) by `sel4-microkit-base`, patched by the Microkit tool.
unsafe extern "C" {
    static microkit_notifications: usize;
    static microkit_pps: usize;
    static microkit_irqs: usize;
}

/// Which channel masks a right is checked against.
#[derive(Clone, Copy, Debug)]
enum Right {
    Notify,
    Ppc,
    Irq,
}

impl Right {
    fn mask(self) -> usize {
        // SAFETY: the statics are plain words that the Microkit tool patched into the image
        // before boot; nothing writes them at run time.
        unsafe {
            match self {
                Self::Notify => core::ptr::read_volatile(&raw const microkit_notifications),
                Self::Ppc => core::ptr::read_volatile(&raw const microkit_pps),
                Self::Irq => core::ptr::read_volatile(&raw const microkit_irqs),
            }
        }
    }

    fn allows(self, ch: Channel) -> bool {
        self.mask() & (1usize << ch.index()) != 0
    }
}

/// The calling PD's kernel interface on seL4 Microkit.
#[derive(Debug)]
pub struct Sel4Kernel {
    name: &'static str,
    mrs: MessageRegisters,
}

impl Sel4Kernel {
    /// The kernel of the PD this image runs as.
    pub(crate) fn new() -> Self {
        Self {
            name: sel4_microkit::pd_name().unwrap_or("?"),
            mrs: MessageRegisters::default(),
        }
    }

    /// Copy the first `count` IPC-buffer message registers in (a PPC arrived).
    pub(crate) fn load_mrs(&mut self, count: usize) {
        let n = count.min(MSG_REGS);
        sel4_microkit::with_msg_regs(|regs| {
            if let (Some(dst), Some(src)) = (self.mrs.as_mut_slice().get_mut(..n), regs.get(..n)) {
                dst.copy_from_slice(src);
            }
        });
    }

    /// Copy the first `count` message registers out to the IPC buffer (a reply or a call).
    pub(crate) fn store_mrs(&self, count: usize) {
        let n = count.min(MSG_REGS);
        sel4_microkit::with_msg_regs_mut(|regs| {
            if let (Some(dst), Some(src)) = (regs.get_mut(..n), self.mrs.as_slice().get(..n)) {
                dst.copy_from_slice(src);
            }
        });
    }

    /// Why `right` is refused on `ch`: a channel the PD has with another right is declared.
    fn refuse(&self, ch: Channel, right: Right, error: IpcError) -> IpcError {
        let declared = [Right::Notify, Right::Ppc, Right::Irq]
            .iter()
            .any(|r| r.allows(ch));
        let error = if declared {
            error
        } else {
            IpcError::UndeclaredChannel
        };
        log::warn!("{}: {right:?} on {ch:?} refused: {error}", self.name);
        error
    }
}

/// Microkit's channel index for a pd-core channel.
fn microkit_channel(ch: Channel) -> sel4_microkit::Channel {
    sel4_microkit::Channel::new(usize::from(ch.index()))
}

impl Kernel for Sel4Kernel {
    fn pd_name(&self) -> &str {
        self.name
    }

    fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
        if !Right::Notify.allows(ch) {
            return Err(self.refuse(ch, Right::Notify, IpcError::NoNotifyRight));
        }
        microkit_channel(ch).notify();
        Ok(())
    }

    fn ppcall(&mut self, ch: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        if !Right::Ppc.allows(ch) {
            return Err(self.refuse(ch, Right::Ppc, IpcError::NoPpcRight));
        }
        self.store_mrs(msg.count());
        let reply =
            microkit_channel(ch).pp_call(sel4_microkit::MessageInfo::new(msg.label(), msg.count()));
        let count = reply.count().min(MSG_REGS);
        self.load_mrs(count);
        // CAST: a seL4 word is 64 bits on every target this crate builds for.
        let label = reply.label() as u64;
        if label == PEER_FAULTED {
            return Err(IpcError::PeerFaulted);
        }
        Ok(MessageInfo::new(label, count))
    }

    fn mrs(&mut self) -> &mut MessageRegisters {
        &mut self.mrs
    }

    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError> {
        if !Right::Irq.allows(ch) {
            return Err(self.refuse(ch, Right::Irq, IpcError::UndeclaredChannel));
        }
        microkit_channel(ch)
            .irq_ack()
            .map_err(|_| IpcError::UndeclaredChannel)
    }

    fn restart_child(&mut self, child: Child) -> Result<(), IpcError> {
        restart::restart_child(child)
    }

    fn stop_child(&mut self, child: Child) -> Result<(), IpcError> {
        restart::stop_child(child)
    }

    /// The `setvar region_paddr` value the Microkit tool patched in (see `system`).
    fn region_paddr(&self, region: &str) -> Option<u64> {
        crate::system::region_paddr(region)
    }

    fn now_ns(&self) -> u64 {
        clock::now_ns()
    }

    fn yield_now(&mut self) {
        sel4::r#yield();
    }

    /// On seL4 nobody collects verdicts: the line goes to the console, where `cargo xtask qemu`
    /// and the image test read it.
    fn report_verdict(&mut self, verdict: Verdict) -> Result<(), IpcError> {
        match verdict {
            Verdict::Pass => log::info!("verdict PASS"),
            Verdict::Fail => log::error!("verdict FAIL"),
        }
        Ok(())
    }
}
