//! [`Adapter`]: a pd-core handler driven by Microkit's event loop.

use core::convert::Infallible;

#[cfg(feature = "fault-injection")]
use pd_core::Kernel as _;
use pd_core::{Channel, ChannelSet, Child, Handler, MessageInfo, MSG_REGS};
use sel4_microkit::Never;

use crate::{console, fault, restart, Sel4Kernel};

/// Microkit's fixed capability slots in every PD (libmicrokit `INPUT_CAP`, `REPLY_CAP`,
/// `MONITOR_EP`).
const INPUT: sel4::cap::Endpoint = sel4::Cap::from_bits(1);
const REPLY: sel4::cap::Reply = sel4::Cap::from_bits(4);
const MONITOR: sel4::cap::Endpoint = sel4::Cap::from_bits(5);

/// Badge bits that tell a PPC and a child's fault from notifications (libmicrokit
/// `BADGE_ENDPOINT_BIT`, `BADGE_FAULT_BIT`); the other bits are the channel or child id.
const ENDPOINT_BIT: u32 = 63;
const FAULT_BIT: u32 = 62;

/// A PD: its pd-core handler `H` and the kernel interface it is handed.
#[derive(Debug)]
pub struct Adapter<H> {
    handler: H,
    pd: Pd,
}

/// What the event loop keeps besides the handler.
#[derive(Debug)]
struct Pd {
    kernel: Sel4Kernel,
    /// PPCs served by this instance.
    calls: usize,
    /// The PPC to fault on (see `fault::inject`); 0 for never.
    inject_at: usize,
}

impl<H: Handler> Adapter<H> {
    /// Build the PD with `init`; called by [`protection_domain!`](crate::protection_domain) on
    /// every start, cold or warm.
    pub fn start(init: impl FnOnce(&mut dyn pd_core::Kernel) -> H) -> Self {
        console::init();
        let mut kernel = Sel4Kernel::new();
        core::hint::black_box(restart::warm_entry());
        if restart::is_warm() {
            log::info!("restarted by its parent: init again, shared regions are dirty");
        } else {
            log::info!("started on seL4");
        }
        let handler = init(&mut kernel);
        let inject_at = if restart::is_warm() {
            0
        } else {
            fault::inject_after()
        };
        Self {
            handler,
            pd: Pd {
                kernel,
                calls: 0,
                inject_at,
            },
        }
    }
}

/// What the loop does before its first receive.
enum First {
    /// Cold start of a passive PD: ask the monitor to take the scheduling context, and wait.
    BecomePassive,
    /// Warm start: answer a caller the fault left waiting, and wait.
    ReplyPeerFaulted,
    /// Cold start of an active PD: wait.
    Wait,
}

impl Pd {
    fn on_notified(&mut self, handler: &mut dyn Handler, channels: ChannelSet) {
        handler.notified(&mut self.kernel, channels);
    }

    fn on_protected(
        &mut self,
        handler: &mut dyn Handler,
        channel: usize,
        tag: &sel4::MessageInfo,
    ) -> sel4::MessageInfo {
        self.calls = self.calls.saturating_add(1);
        if self.calls == self.inject_at {
            fault::inject(self.calls);
        }
        let count = tag.length().min(MSG_REGS);
        self.kernel.load_mrs(count);
        // CAST: a seL4 word is 64 bits on every target this crate builds for.
        let msg = MessageInfo::new(tag.label() as u64, count);
        let reply = match Channel::try_new(channel as u64) {
            Ok(ch) => handler.protected(&mut self.kernel, ch, msg),
            Err(_) => MessageInfo::new(u64::MAX, 0),
        };
        self.kernel.store_mrs(reply.count());
        // CAST: as above.
        sel4::MessageInfo::new(reply.label() as sel4::Word, 0, 0, reply.count())
    }

    fn on_fault(
        &mut self,
        handler: &mut dyn Handler,
        child: usize,
        msg: &sel4_microkit::MessageInfo,
    ) {
        let kind = fault::kind(msg);
        match Child::try_new(child as u64) {
            Ok(child) => handler.fault(&mut self.kernel, child, kind),
            Err(_) => log::error!("fault from an impossible child id {child}"),
        }
    }
}

impl<H: Handler> sel4_microkit::Handler for Adapter<H> {
    type Error = Infallible;

    fn notified(&mut self, channels: sel4_microkit::ChannelSet) -> Result<(), Infallible> {
        let set = channels.iter().fold(ChannelSet::EMPTY, |set, ch| {
            // CAST: usize is 64 bits on every target this crate builds for.
            match Channel::try_new(ch.index() as u64) {
                Ok(ch) => set.with(ch),
                Err(_) => set,
            }
        });
        self.pd.on_notified(&mut self.handler, set);
        Ok(())
    }

    fn protected(
        &mut self,
        channel: sel4_microkit::Channel,
        msg_info: sel4_microkit::MessageInfo,
    ) -> Result<sel4_microkit::MessageInfo, Infallible> {
        let reply = self
            .pd
            .on_protected(&mut self.handler, channel.index(), msg_info.inner());
        Ok(sel4_microkit::MessageInfo::from_inner(reply))
    }

    /// Never resumes the faulting thread where it faulted: the handler restarts or stops it.
    fn fault(
        &mut self,
        child: sel4_microkit::Child,
        msg_info: sel4_microkit::MessageInfo,
    ) -> Result<Option<sel4_microkit::MessageInfo>, Infallible> {
        self.pd
            .on_fault(&mut self.handler, child.index(), &msg_info);
        Ok(None)
    }

    /// Microkit's event loop, as rust-sel4's default, plus the warm start's first reply (see
    /// `restart`). It replaces the default because that one has no way to answer a caller that a
    /// fault left waiting, and would ask the monitor to make a restarted passive PD passive again.
    fn run(&mut self) -> Result<Never, Infallible> {
        let Self { handler, pd } = self;
        let handler: &mut dyn Handler = handler;
        // The fault campaign's injector in front of the handler, when the image's plan names
        // this PD (its `init` ran first, as on the hosted platform).
        #[cfg(feature = "fault-injection")]
        let mut faulty;
        #[cfg(feature = "fault-injection")]
        let handler: &mut dyn Handler = match fault::injector(pd.kernel.pd_name()) {
            Some(inj) => {
                faulty = pd_core::faults::Faulty::new(handler, inj);
                &mut faulty
            }
            None => handler,
        };
        let mut first = Some(if restart::is_warm() {
            First::ReplyPeerFaulted
        } else if sel4_microkit::pd_is_passive() {
            First::BecomePassive
        } else {
            First::Wait
        });
        let mut reply: Option<sel4::MessageInfo> = None;
        loop {
            let (tag, badge) = match (first.take(), reply.take()) {
                (Some(First::BecomePassive), _) => MONITOR.nb_send_recv(
                    sel4::MessageInfoBuilder::default().build(),
                    INPUT.cast::<sel4::cap_type::Unspecified>(),
                    REPLY,
                ),
                (Some(First::ReplyPeerFaulted), _) => {
                    // CAST: as above.
                    let label = restart::PEER_FAULTED_LABEL as sel4::Word;
                    INPUT.reply_recv(sel4::MessageInfo::new(label, 0, 0, 0), REPLY)
                }
                (Some(First::Wait), _) | (None, None) => INPUT.recv(REPLY),
                (None, Some(tag)) => INPUT.reply_recv(tag, REPLY),
            };
            // CAST: a badge is a 64-bit word; the id below the flag bit fits usize.
            if let Some(channel) = strip(badge, ENDPOINT_BIT) {
                reply = Some(pd.on_protected(handler, channel as usize, &tag));
            } else if let Some(child) = strip(badge, FAULT_BIT) {
                let msg = sel4_microkit::MessageInfo::from_inner(tag);
                pd.on_fault(handler, child as usize, &msg);
            } else {
                pd.on_notified(handler, ChannelSet::from_bits(badge as u64));
            }
        }
    }
}

/// The badge without flag `bit`, if the flag is set.
fn strip(badge: sel4::Badge, bit: u32) -> Option<sel4::Badge> {
    let flag = 1 << bit;
    (badge & flag != 0).then_some(badge & !flag)
}
