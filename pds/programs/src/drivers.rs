//! `drivers.elf`: the monolithic seL4 image's one driver PD, which runs the five driver PDs of
//! `system.xml` ([`MERGED`]) in one address space, as pds/mono does on Linux: the same PD
//! modules of this crate on [`pd_direct::Composition`], so a PPC between two of them is a direct
//! call. Everything else (the GSP model, which is the device in both images; the supervisor; the
//! clients) stays its own PD and is reached over real Microkit channels.
//!
//! Channels: a channel between two merged PDs disappears (it is a [`Route`] of the composition).
//! A channel with one merged end becomes a channel of `drivers`, whose id is the position of its
//! route in [`system::ROUTES`] among those that cross ([`channel`], [`route`]); `cargo xtask
//! bench sel4` derives the image's channels with the same function. Outside PDs sit in the
//! composition as proxies: a call or notification to one goes out over `drivers`' channel, and a
//! call or notification that comes in is made by the outside PD's proxy on its own end.
//!
//! Start-up as pds/mono ([`crate::nest`]): callees first ([`MERGED`] is in priority order), each `init` on the
//! stack of the one before, the innermost level hands the composition to the platform's event
//! loop. No fault is contained: a fault anywhere in the five is the whole PD's, and its parent
//! (the supervisor, which sees it as child `pci`'s id) restarts all five together.
//! Trust: as the servers trust each other in pds/mono; outside PDs only through their channels.

use core::cell::RefCell;

use crate::nest::{self, Comp, Nest, Step, N};
use crate::sys::{self, system};
use crate::Platform;
use pd_core::{Channel, ChannelSet, Handler, Kernel, MessageInfo, MessageRegisters};
use pd_direct::{Composition, Paddr, Route, Slot};

/// The PD's name and program image in the monolithic image.
pub const NAME: &str = "drivers";
/// Its program image.
pub const IMAGE: &str = "drivers.elf";

/// The PDs merged, in start order: highest priority first, so an `init` finds its callees.
pub const MERGED: [&str; 5] = [
    sys::pci::NAME,
    sys::alloc::NAME,
    sys::gsp::NAME,
    sys::gpu::NAME,
    sys::drm::NAME,
];

/// The reply to a call that could not be made (pd-core's "refused" label).
const REFUSED: MessageInfo = MessageInfo::new(u64::MAX, 0);

/// Whether PD `pd` (index into `system::PDS`) is one of [`MERGED`].
pub fn is_merged(pd: usize) -> bool {
    system::PDS
        .get(pd)
        .is_some_and(|d| MERGED.contains(&d.name))
}

/// The routes from a merged PD to an outside one, in `system::ROUTES` order.
fn crossing() -> impl Iterator<Item = &'static Route> {
    system::ROUTES
        .iter()
        .filter(|r| is_merged(r.from) && !is_merged(r.to))
}

/// `drivers`' channel for merged PD `pd`'s end `ch` of a channel to an outside PD; `None` for a
/// channel between two merged PDs or one that does not exist.
pub fn channel(pd: usize, ch: Channel) -> Option<Channel> {
    let i = crossing().position(|r| r.from == pd && r.ch == ch)?;
    Channel::try_new(u64::try_from(i).ok()?).ok()
}

/// The route (merged end first) that `drivers`' channel `ch` stands for.
pub fn route(ch: Channel) -> Option<&'static Route> {
    crossing().nth(usize::from(ch.index()))
}

/// Copy the first `count` registers of `from` into `to`.
fn copy(to: &mut MessageRegisters, from: &mut MessageRegisters, count: usize) {
    let n = count.min(pd_core::MSG_REGS);
    if let (Some(to), Some(from)) = (to.as_mut_slice().get_mut(..n), from.as_slice().get(..n)) {
        to.copy_from_slice(from);
    }
}

/// Microkit's channel ids per PD (0..=61).
const CHANNELS: usize = 62;

/// [`route`] and its inverse as tables, built once: the per-event lookups are then an index,
/// not a walk over `system::ROUTES` comparing PD names.
struct Wiring {
    /// `drivers`' channel -> the route it stands for (merged end first).
    inbound: [Option<&'static Route>; CHANNELS],
    /// Outside PD, its end -> `drivers`' channel.
    outbound: [[Option<Channel>; CHANNELS]; N],
}

impl Wiring {
    fn new() -> Self {
        let mut w = Self {
            inbound: [None; CHANNELS],
            outbound: [[None; CHANNELS]; N],
        };
        for (i, r) in crossing().enumerate() {
            let Some(ch) = u64::try_from(i).ok().and_then(|i| Channel::try_new(i).ok()) else {
                break;
            };
            if let Some(slot) = w.inbound.get_mut(i) {
                *slot = Some(r);
            }
            let out = w.outbound.get_mut(r.to);
            if let Some(slot) = out.and_then(|o| o.get_mut(usize::from(r.to_ch.index()))) {
                *slot = Some(ch);
            }
        }
        w
    }

    fn route(&self, ch: Channel) -> Option<&'static Route> {
        *self.inbound.get(usize::from(ch.index()))?
    }

    /// `drivers`' channel for outside PD `pd`'s end `ch`.
    fn out(&self, pd: usize, ch: Channel) -> Option<Channel> {
        *self.outbound.get(pd)?.get(usize::from(ch.index()))?
    }
}

/// An outside PD inside the composition: what reaches it leaves over `drivers`' channel.
struct Proxy<'a, 'k> {
    outside: &'a RefCell<&'k mut dyn Kernel>,
    wiring: &'a Wiring,
    /// Its index in `system::PDS`.
    pd: usize,
}

impl Proxy<'_, '_> {
    /// `drivers`' channel for this PD's end `ch`.
    fn out(&self, ch: Channel) -> Option<Channel> {
        self.wiring.out(self.pd, ch)
    }
}

impl Handler for Proxy<'_, '_> {
    fn notified(&mut self, _: &mut dyn Kernel, channels: ChannelSet) {
        let mut outside = self.outside.borrow_mut();
        for ch in channels.iter() {
            let sent = self.out(ch).map(|c| outside.notify(c));
            if !matches!(sent, Some(Ok(()))) {
                log::warn!("drivers: notification to outside PD {} lost", self.pd);
            }
        }
    }

    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        let Some(c) = self.out(ch) else {
            return REFUSED;
        };
        let mut outside = self.outside.borrow_mut();
        copy(outside.mrs(), k.mrs(), msg.count());
        match outside.ppcall(c, msg) {
            Ok(reply) => {
                copy(k.mrs(), outside.mrs(), reply.count());
                reply
            }
            Err(e) => {
                log::error!("drivers: call to outside PD {} failed: {e}", self.pd);
                REFUSED
            }
        }
    }
}

/// The composition once every merged PD runs: the handler of `drivers`' event loop.
struct Drivers<'h, 'w> {
    comp: Comp<'h>,
    wiring: &'w Wiring,
}

impl Drivers<'_, '_> {
    /// Deliver what the last event left pending inside (notifications, timers due now).
    fn pump(&mut self) {
        for _ in 0..64 {
            if self.comp.run_pending(64) + self.comp.run_timers() == 0 {
                return;
            }
        }
    }
}

impl Handler for Drivers<'_, '_> {
    fn notified(&mut self, _: &mut dyn Kernel, channels: ChannelSet) {
        for ch in channels.iter() {
            if let Some(r) = self.wiring.route(ch) {
                let _ = self.comp.kernel(r.to).notify(r.to_ch);
            }
        }
        self.pump();
    }

    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        let Some(r) = self.wiring.route(ch) else {
            return REFUSED;
        };
        copy(self.comp.mrs(r.to), k.mrs(), msg.count());
        let reply = self
            .comp
            .kernel(r.to)
            .ppcall(r.to_ch, msg)
            .unwrap_or(REFUSED);
        copy(k.mrs(), self.comp.mrs(r.to), reply.count());
        self.pump();
        reply
    }
}

/// The owner of `drivers`' start-up nest: the merged PDs in [`MERGED`] order, then the
/// platform's event loop serving [`Drivers`].
struct Owner<'p, 'w> {
    wiring: &'w Wiring,
    platform: RefCell<Option<&'p mut dyn Platform>>,
}

impl Nest for Owner<'_, '_> {
    fn step(&self, at: usize) -> Step<'_> {
        let Some(name) = MERGED.get(at) else {
            return Step::AllStarted;
        };
        match program(name) {
            Some((pd, program)) => Step::Start(pd, program),
            None => {
                log::error!("drivers: no program for {name}");
                Step::Stop
            }
        }
    }

    fn serve(&self, comp: Comp<'_>) {
        let Some(platform) = self.platform.borrow_mut().take() else {
            return;
        };
        log::info!("drivers: {} PDs composed; serving", MERGED.len());
        let mut drivers = Drivers {
            comp,
            wiring: self.wiring,
        };
        drivers.pump();
        platform.run(&mut drivers);
    }
}

/// The index and program of the PD named `name`.
fn program(name: &str) -> Option<(usize, &'static crate::Program)> {
    let pd = system::PDS.iter().position(|d| d.name == name)?;
    let image = system::PDS.get(pd)?.program_image;
    Some((pd, crate::find(crate::PROGRAMS, image)?))
}

/// Run `drivers`: start the merged PDs on `platform` (whose event loop serves `drivers`'
/// channels), calling outside PDs through `outside`, with the platform's `clock` and
/// `setvar region_paddr` table. Returns only when a PD could not start.
pub fn start(
    platform: &mut dyn Platform,
    outside: &mut dyn Kernel,
    clock: fn() -> u64,
    paddr: Paddr,
) {
    let outside = RefCell::new(outside);
    let wiring = Wiring::new();
    let mut proxies: [Proxy<'_, '_>; N] = core::array::from_fn(|pd| Proxy {
        outside: &outside,
        wiring: &wiring,
        pd,
    });
    let mut proxies = proxies.iter_mut();
    let slots: [Slot<'_>; N] = core::array::from_fn(|i| {
        let proxy = proxies.next();
        let (name, priority) = system::PDS
            .get(i)
            .map_or(("?", 0), |d| (d.name, d.priority));
        match proxy {
            Some(p) if !is_merged(i) => Slot::new(name, priority, p),
            _ => Slot::vacant(name, priority),
        }
    });
    let comp = Composition::new(slots, system::ROUTES, clock).with_paddrs(paddr);
    let owner = Owner {
        wiring: &wiring,
        platform: RefCell::new(Some(platform)),
    };
    nest::start(comp, &owner);
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn index(name: &str) -> usize {
        system::PDS.iter().position(|d| d.name == name).unwrap()
    }

    #[test]
    fn merged_pds_start_callees_first() {
        let prio: Vec<u8> = MERGED
            .iter()
            .map(|n| system::PDS[index(n)].priority)
            .collect();
        assert!(prio.windows(2).all(|w| w[0] > w[1]), "{prio:?}");
        assert!(
            !is_merged(index(sys::gsp_model::NAME)),
            "the device stays outside"
        );
        assert!(!is_merged(index(sys::supervisor::NAME)) && !is_merged(index("client0")));
    }

    #[test]
    fn every_crossing_end_gets_its_own_drivers_channel_and_maps_back() {
        let mut ids = Vec::new();
        for r in system::ROUTES {
            let id = channel(r.from, r.ch);
            match (is_merged(r.from), is_merged(r.to)) {
                (true, false) => {
                    let id = id.unwrap();
                    assert_eq!(route(id), Some(r));
                    ids.push(id.index());
                }
                _ => assert_eq!(id, None, "{r:?}"),
            }
        }
        // gsp -> gsp_model, pci -> gsp_model, drm <- client0 ... all distinct, 0..n.
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids, (0..n as u8).collect::<Vec<_>>());
        assert!(n < 62, "Microkit channel ids are 0..=61");
        let gsp_model = channel(index("gsp"), sys::gsp::channels::GSP_MODEL).unwrap();
        assert_eq!(route(gsp_model).unwrap().to, index(sys::gsp_model::NAME));
        assert_eq!(
            channel(index("gsp"), sys::gsp::channels::PCI),
            None,
            "merged: a call"
        );
        assert_eq!(route(Channel::new(61)), None);
    }

    #[test]
    fn the_wiring_tables_agree_with_the_functions() {
        let w = Wiring::new();
        for i in 0..CHANNELS as u8 {
            assert_eq!(w.route(Channel::new(i)), route(Channel::new(i)));
        }
        for r in system::ROUTES {
            // Outside PD r.from's end r.ch leads to merged r.to's end r.to_ch.
            let expected = if is_merged(r.from) {
                None
            } else {
                channel(r.to, r.to_ch)
            };
            assert_eq!(w.out(r.from, r.ch), expected, "{r:?}");
        }
        let mut mrs = (MessageRegisters::default(), MessageRegisters::default());
        mrs.1.set(0, 7);
        mrs.1.set(1, 8);
        copy(&mut mrs.0, &mut mrs.1, 1);
        assert_eq!((mrs.0.get(0), mrs.0.get(1)), (7, 0), "only the prefix");
    }
}
