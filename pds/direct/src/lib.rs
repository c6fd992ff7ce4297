//! The monolithic platform: all PDs of a system in one address space, a PPC is a direct call into
//! the callee's `protected`, a notification sets a bit that [`Composition::run_pending`] delivers.
//!
//! This is the baseline the isolation campaign compares against: the *same* server crates and PD
//! modules, only the platform differs. The channel table still comes from `system.xml` (as
//! [`Route`]s), so a PD can only reach what it could reach isolated — but nothing enforces memory
//! boundaries, and one fault anywhere takes every PD down with the process, which is the point.
//!
//! Semantics kept from Microkit: message registers are per PD and copied on call and reply; a
//! call needs the pp right on the caller's end; notifications coalesce and are delivered highest
//! priority first. A call into a PD that is itself mid-call (a cycle, which Microkit's priority rule
//! forbids) is refused with [`IpcError::PeerFaulted`] instead of aliasing its state.
//!
//! A whole system starts PD by PD, in the order its `init`s may call each other (callees first):
//! the composition begins with [`Slot::vacant`] PDs (calls to them fail with
//! [`IpcError::PeerFaulted`]) and [`Composition::with_handler`] fills one in as its `init` returns.
//! Each PD has a one-shot timer ([`Kernel::set_timeout`], delivered by [`Composition::run_timers`])
//! and a verdict ([`Kernel::report_verdict`], read with [`Composition::verdict`]).
#![no_std]
#![deny(unsafe_code)]

use pd_core::{
    Channel, ChannelSet, Handler, IpcError, Kernel, MessageInfo, MessageRegisters, Verdict,
};

/// One channel end as seen from `from`: calling or notifying `ch` reaches `to` on `to_ch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Index of the PD owning this end.
    pub from: usize,
    /// Its channel id.
    pub ch: Channel,
    /// Index of the PD at the other end.
    pub to: usize,
    /// The other end's channel id (what the peer's handler sees).
    pub to_ch: Channel,
    /// This end may call the other (`pp="true"`).
    pub pp: bool,
    /// This end may notify the other (`notify`, default true).
    pub notify: bool,
}

/// One PD of the composition.
pub struct Slot<'h> {
    name: &'static str,
    priority: u8,
    handler: Option<&'h mut dyn Handler>,
    mrs: MessageRegisters,
    pending: ChannelSet,
    timeout: Option<u64>,
    verdict: Option<Verdict>,
}

impl core::fmt::Debug for Slot<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Slot")
            .field("name", &self.name)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl<'h> Slot<'h> {
    /// PD `name` with `priority`, whose events go to `handler`.
    pub fn new(name: &'static str, priority: u8, handler: &'h mut dyn Handler) -> Self {
        Self {
            handler: Some(handler),
            ..Self::vacant(name, priority)
        }
    }

    /// PD `name` with `priority` that has not started yet: calls to it fail with
    /// [`IpcError::PeerFaulted`], notifications wait until [`Composition::with_handler`].
    pub fn vacant(name: &'static str, priority: u8) -> Self {
        Self {
            name,
            priority,
            handler: None,
            mrs: MessageRegisters::default(),
            pending: ChannelSet::EMPTY,
            timeout: None,
            verdict: None,
        }
    }
}

/// Every PD of the system, wired by its routes.
#[derive(Debug)]
pub struct Composition<'h, 'r, const N: usize> {
    slots: [Slot<'h>; N],
    routes: &'r [Route],
    clock: fn() -> u64,
    /// Where a PD's `Kernel::region_paddr` asks (PD name, region); `None`: nowhere (hosted).
    paddr: Option<Paddr>,
    /// Registers handed out for an out-of-range PD index (never used by a valid kernel view).
    spare: MessageRegisters,
}

/// The platform's `setvar region_paddr` table, by PD name and region name.
pub type Paddr = fn(pd: &str, region: &str) -> Option<u64>;

impl<'h, 'r, const N: usize> Composition<'h, 'r, N> {
    /// A composition of `slots` (index = PD index in `routes`), with a monotonic `clock` in ns.
    pub fn new(slots: [Slot<'h>; N], routes: &'r [Route], clock: fn() -> u64) -> Self {
        Self {
            slots,
            routes,
            clock,
            paddr: None,
            spare: MessageRegisters::default(),
        }
    }

    /// The composition with every PD's [`Kernel::region_paddr`] answered by `paddr` (with the
    /// PD's own name): the seL4 driver PD passes the addresses the Microkit tool patched in.
    pub fn with_paddrs(self, paddr: Paddr) -> Self {
        Self {
            paddr: Some(paddr),
            ..self
        }
    }

    /// The kernel view of PD `pd`, for calling into the system from outside an event (init code,
    /// a workload driver, a benchmark).
    pub fn kernel(&mut self, pd: usize) -> PdKernel<'_, 'h, 'r, N> {
        PdKernel { comp: self, me: pd }
    }

    /// The composition with PD `pd`'s handler filled in (its `init` returned). Handlers already
    /// in place are kept, now borrowed for the new handler's (shorter) lifetime, and so are every
    /// PD's registers, pending notifications, timer and verdict. An out-of-range `pd` changes
    /// nothing.
    pub fn with_handler<'k>(self, pd: usize, handler: &'k mut dyn Handler) -> Composition<'k, 'r, N>
    where
        'h: 'k,
    {
        let Self {
            slots,
            routes,
            clock,
            paddr,
            spare,
        } = self;
        let mut slots = slots.map(|s| Slot {
            name: s.name,
            priority: s.priority,
            handler: s.handler.map(|h| -> &'k mut dyn Handler { h }),
            mrs: s.mrs,
            pending: s.pending,
            timeout: s.timeout,
            verdict: s.verdict,
        });
        if let Some(slot) = slots.get_mut(pd) {
            slot.handler = Some(handler);
        }
        Composition {
            slots,
            routes,
            clock,
            paddr,
            spare,
        }
    }

    /// PD `pd`'s message registers (a platform's `Kernel::mrs` for code running outside an event).
    pub fn mrs(&mut self, pd: usize) -> &mut MessageRegisters {
        match self.slots.get_mut(pd) {
            Some(s) => &mut s.mrs,
            None => &mut self.spare,
        }
    }

    /// The composition's clock, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        (self.clock)()
    }

    /// PD `pd`'s physical address of `region`, as its `Kernel::region_paddr` answers.
    pub fn region_paddr(&self, pd: usize, region: &str) -> Option<u64> {
        (self.paddr?)(self.slots.get(pd)?.name, region)
    }

    /// The verdict PD `pd` reported, if any.
    pub fn verdict(&self, pd: usize) -> Option<Verdict> {
        self.slots.get(pd).and_then(|s| s.verdict)
    }

    /// The earliest armed timer, in the clock's nanoseconds.
    pub fn next_timeout(&self) -> Option<u64> {
        self.slots.iter().filter_map(|s| s.timeout).min()
    }

    /// Deliver every timer due at the clock's present time, highest priority first; how many. A
    /// PD whose handler is busy (mid-call) or vacant keeps its timer for a later round.
    pub fn run_timers(&mut self) -> usize {
        let now = (self.clock)();
        let mut delivered = 0;
        loop {
            let next = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.handler.is_some() && s.timeout.is_some_and(|t| t <= now))
                .max_by_key(|(_, s)| s.priority)
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let Some(slot) = self.slots.get_mut(i) else {
                break;
            };
            slot.timeout = None;
            let Some(h) = slot.handler.take() else { break };
            h.timeout(&mut PdKernel { comp: self, me: i });
            if let Some(slot) = self.slots.get_mut(i) {
                slot.handler = Some(h);
            }
            delivered += 1;
        }
        delivered
    }

    /// Deliver pending notifications, highest priority first, until none are left or `budget`
    /// deliveries were made. Returns how many were delivered.
    pub fn run_pending(&mut self, budget: usize) -> usize {
        let mut delivered = 0;
        while delivered < budget {
            let next = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.pending.is_empty() && s.handler.is_some())
                .max_by_key(|(_, s)| s.priority)
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let Some(slot) = self.slots.get_mut(i) else {
                break;
            };
            let set = core::mem::replace(&mut slot.pending, ChannelSet::EMPTY);
            let Some(h) = slot.handler.take() else { break };
            h.notified(&mut PdKernel { comp: self, me: i }, set);
            if let Some(slot) = self.slots.get_mut(i) {
                slot.handler = Some(h);
            }
            delivered += 1;
        }
        delivered
    }

    fn route(&self, from: usize, ch: Channel) -> Option<Route> {
        self.routes
            .iter()
            .find(|r| r.from == from && r.ch == ch)
            .copied()
    }
}

/// The [`Kernel`] a PD of the composition is handed.
pub struct PdKernel<'c, 'h, 'r, const N: usize> {
    comp: &'c mut Composition<'h, 'r, N>,
    me: usize,
}

impl<const N: usize> core::fmt::Debug for PdKernel<'_, '_, '_, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PdKernel")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl<const N: usize> Kernel for PdKernel<'_, '_, '_, N> {
    fn pd_name(&self) -> &str {
        self.comp.slots.get(self.me).map_or("?", |s| s.name)
    }

    fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
        let r = self
            .comp
            .route(self.me, ch)
            .ok_or(IpcError::UndeclaredChannel)?;
        if !r.notify {
            return Err(IpcError::NoNotifyRight);
        }
        let peer = self
            .comp
            .slots
            .get_mut(r.to)
            .ok_or(IpcError::UndeclaredChannel)?;
        peer.pending = peer.pending.with(r.to_ch);
        Ok(())
    }

    fn ppcall(&mut self, ch: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        let r = match self.comp.route(self.me, ch) {
            Some(r) => r,
            None => {
                log::warn!("{}: call on undeclared channel {ch:?}", self.pd_name());
                return Err(IpcError::UndeclaredChannel);
            }
        };
        if !r.pp {
            log::warn!("{}: call on {ch:?} without the pp right", self.pd_name());
            return Err(IpcError::NoPpcRight);
        }
        let args = self
            .comp
            .slots
            .get(self.me)
            .map(|s| s.mrs.clone())
            .unwrap_or_default();
        let callee = self
            .comp
            .slots
            .get_mut(r.to)
            .ok_or(IpcError::UndeclaredChannel)?;
        let h = callee.handler.take().ok_or(IpcError::PeerFaulted)?;
        callee.mrs.copy_prefix(&args, msg.count());
        let reply = h.protected(
            &mut PdKernel {
                comp: self.comp,
                me: r.to,
            },
            r.to_ch,
            msg,
        );
        let callee = self.comp.slots.get_mut(r.to).ok_or(IpcError::PeerFaulted)?;
        callee.handler = Some(h);
        let out = callee.mrs.clone();
        if let Some(me) = self.comp.slots.get_mut(self.me) {
            me.mrs.copy_prefix(&out, reply.count());
        }
        Ok(reply)
    }

    fn mrs(&mut self) -> &mut MessageRegisters {
        match self.comp.slots.get_mut(self.me) {
            Some(s) => &mut s.mrs,
            None => &mut self.comp.spare,
        }
    }

    fn now_ns(&self) -> u64 {
        (self.comp.clock)()
    }

    fn region_paddr(&self, region: &str) -> Option<u64> {
        self.comp.region_paddr(self.me, region)
    }

    fn set_timeout(&mut self, at_ns: u64) -> Result<(), IpcError> {
        let slot = self
            .comp
            .slots
            .get_mut(self.me)
            .ok_or(IpcError::Unsupported)?;
        slot.timeout = Some(at_ns);
        Ok(())
    }

    fn report_verdict(&mut self, verdict: Verdict) -> Result<(), IpcError> {
        let slot = self
            .comp
            .slots
            .get_mut(self.me)
            .ok_or(IpcError::Unsupported)?;
        slot.verdict = Some(verdict);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pd_core::Child;

    /// Adds 1 to mr0 and calls onward when it has somewhere to call.
    struct Adder {
        onward: Option<Channel>,
        seen: ChannelSet,
    }
    impl Adder {
        fn new(onward: Option<Channel>) -> Self {
            Self {
                onward,
                seen: ChannelSet::EMPTY,
            }
        }
    }

    impl Handler for Adder {
        fn protected(&mut self, k: &mut dyn Kernel, _: Channel, msg: MessageInfo) -> MessageInfo {
            let v = k.mrs().get(0) + 1;
            k.mrs().set(0, v);
            if let Some(ch) = self.onward {
                return k
                    .ppcall(ch, MessageInfo::new(msg.label(), 1))
                    .unwrap_or(MessageInfo::new(99, 0));
            }
            MessageInfo::new(msg.label(), 1)
        }
        fn notified(&mut self, _: &mut dyn Kernel, channels: ChannelSet) {
            self.seen = ChannelSet::from_bits(self.seen.bits() | channels.bits());
        }
        fn fault(&mut self, _: &mut dyn Kernel, _: Child, _: pd_core::FaultKind) {}
    }

    const ROUTES: &[Route] = &[
        Route {
            from: 0,
            ch: Channel::new(0),
            to: 1,
            to_ch: Channel::new(3),
            pp: true,
            notify: true,
        },
        Route {
            from: 1,
            ch: Channel::new(3),
            to: 0,
            to_ch: Channel::new(0),
            pp: false,
            notify: true,
        },
        Route {
            from: 1,
            ch: Channel::new(1),
            to: 2,
            to_ch: Channel::new(5),
            pp: true,
            notify: false,
        },
        Route {
            from: 2,
            ch: Channel::new(5),
            to: 1,
            to_ch: Channel::new(1),
            pp: false,
            notify: true,
        },
    ];

    #[test]
    fn calls_chain_directly_copying_registers_and_rights_are_checked() {
        let (mut a, mut b, mut c) = (
            Adder::new(None),
            Adder::new(Some(Channel::new(1))),
            Adder::new(None),
        );
        let mut comp = Composition::new(
            [
                Slot::new("a", 1, &mut a),
                Slot::new("b", 2, &mut b),
                Slot::new("c", 3, &mut c),
            ],
            ROUTES,
            || 7,
        );
        let mut k = comp.kernel(0);
        k.mrs().set(0, 40);
        let r = k.ppcall(Channel::new(0), MessageInfo::new(5, 1)).unwrap();
        assert_eq!(
            (r.label(), k.mrs().get(0)),
            (5, 42),
            "b and c each added one"
        );
        assert_eq!(
            k.ppcall(Channel::new(9), r),
            Err(IpcError::UndeclaredChannel)
        );
        let mut kb = comp.kernel(1);
        assert_eq!(
            kb.ppcall(Channel::new(3), r),
            Err(IpcError::NoPpcRight),
            "b may not call a"
        );
        assert_eq!(kb.notify(Channel::new(1)), Err(IpcError::NoNotifyRight));
        assert_eq!(kb.now_ns(), 7);
        assert_eq!(kb.region_paddr("dma"), None, "no table: hosted");
        let mut comp =
            comp.with_paddrs(|pd, region| (pd == "b" && region == "dma").then_some(0x4000));
        assert_eq!(comp.kernel(1).region_paddr("dma"), Some(0x4000));
        assert_eq!(
            comp.kernel(0).region_paddr("dma"),
            None,
            "asked with the PD's own name"
        );
    }

    /// Counts timeouts, re-arms once, reports a verdict on the second.
    #[derive(Default)]
    struct Ticker {
        ticks: u32,
    }
    impl Handler for Ticker {
        fn timeout(&mut self, k: &mut dyn Kernel) {
            self.ticks += 1;
            if self.ticks == 1 {
                k.set_timeout(k.now_ns() + 5).unwrap();
            } else {
                k.report_verdict(Verdict::Pass).unwrap();
            }
        }
    }

    static NOW: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
    fn now() -> u64 {
        NOW.load(core::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn pds_start_one_by_one_and_timers_and_verdicts_work() {
        let mut c = Adder::new(None);
        let comp = Composition::new(
            [
                Slot::vacant("a", 1),
                Slot::vacant("b", 2),
                Slot::vacant("c", 3),
            ],
            ROUTES,
            now,
        );
        let mut comp = comp.with_handler(2, &mut c);
        // b is not started: a call to it fails cleanly, a notification waits for it.
        let mut k = comp.kernel(0);
        assert_eq!(
            k.ppcall(Channel::new(0), MessageInfo::new(1, 1)),
            Err(IpcError::PeerFaulted)
        );
        k.notify(Channel::new(0)).unwrap();
        assert_eq!(comp.run_pending(10), 0);
        let mut b = Adder::new(Some(Channel::new(1)));
        let mut comp = comp.with_handler(1, &mut b);
        comp.mrs(0).set(0, 1);
        let r = comp
            .kernel(0)
            .ppcall(Channel::new(0), MessageInfo::new(1, 1));
        assert_eq!((r.map(|m| m.label()), comp.mrs(0).get(0)), (Ok(1), 3));
        assert_eq!(comp.run_pending(10), 1, "delivered once b started");
        // a's timer: armed by init code, delivered when due, re-armed by the handler.
        let mut a = Ticker::default();
        let mut comp = comp.with_handler(0, &mut a);
        NOW.store(100, core::sync::atomic::Ordering::Relaxed);
        comp.kernel(0).set_timeout(110).unwrap();
        assert_eq!((comp.run_timers(), comp.next_timeout()), (0, Some(110)));
        NOW.store(110, core::sync::atomic::Ordering::Relaxed);
        assert_eq!(comp.run_timers(), 1);
        assert_eq!((comp.next_timeout(), comp.verdict(0)), (Some(115), None));
        NOW.store(200, core::sync::atomic::Ordering::Relaxed);
        assert_eq!(comp.run_timers(), 1);
        assert_eq!(
            (comp.verdict(0), comp.verdict(1), comp.next_timeout()),
            (Some(Verdict::Pass), None, None)
        );
        assert_eq!(comp.verdict(7), None);
    }

    #[test]
    fn notifications_coalesce_and_go_highest_priority_first() {
        let (mut a, mut b, mut c) = (Adder::new(None), Adder::new(None), Adder::new(None));
        let mut comp = Composition::new(
            [
                Slot::new("a", 1, &mut a),
                Slot::new("b", 2, &mut b),
                Slot::new("c", 3, &mut c),
            ],
            ROUTES,
            || 0,
        );
        comp.kernel(0).notify(Channel::new(0)).unwrap();
        comp.kernel(0).notify(Channel::new(0)).unwrap();
        comp.kernel(2).notify(Channel::new(5)).unwrap();
        comp.kernel(1).notify(Channel::new(3)).unwrap();
        assert_eq!(comp.run_pending(10), 2, "b once (coalesced), a once");
        drop(comp);
        assert!(b.seen.contains(Channel::new(3)) && b.seen.contains(Channel::new(1)));
        assert!(a.seen.contains(Channel::new(0)));
    }
}
