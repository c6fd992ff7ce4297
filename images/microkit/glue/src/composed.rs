//! A PD composed of several (pd-programs' `drivers`, the monolithic image's driver PD): its
//! handler is built on the stack of the start-up nest, so the event loop runs a *borrowed*
//! handler ([`pd_programs::Platform::run`]) and never returns to the nest.
//!
//! The composition reaches outside PDs through a second [`Sel4Kernel`] (the kernel is the IPC
//! buffer and the channel masks, so two views of it are one), asks the glue's clock, and gets
//! every merged PD's `setvar region_paddr` by that PD's name: the image's `drivers` PD carries
//! the union of the merged PDs' setvars, under the same symbols.

use pd_core::{Channel, ChannelSet, Child, FaultKind, Handler, Kernel, MessageInfo, Usage};
use pd_programs::Platform;

use crate::{clock, system, Adapter, Sel4Kernel};

/// A composition's start function (`pd_programs::drivers::start`).
pub type Start =
    fn(&mut dyn Platform, &mut dyn Kernel, fn() -> u64, fn(&str, &str) -> Option<u64>);

/// A borrowed handler, as the event loop's.
struct Borrowed<'a>(&'a mut dyn Handler);

impl Handler for Borrowed<'_> {
    fn notified(&mut self, k: &mut dyn Kernel, channels: ChannelSet) {
        self.0.notified(k, channels);
    }
    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        self.0.protected(k, ch, msg)
    }
    fn fault(&mut self, k: &mut dyn Kernel, child: Child, kind: FaultKind) {
        self.0.fault(k, child, kind);
    }
    fn timeout(&mut self, k: &mut dyn Kernel) {
        self.0.timeout(k);
    }
    fn usage(&self) -> Option<Usage> {
        self.0.usage()
    }
}

/// What a composition that stopped serves: nothing (pd-core's defaults refuse and log).
#[derive(Debug)]
pub struct Stopped;

impl Handler for Stopped {}

/// The seL4 platform of a composition's nest.
struct Sel4Platform(Sel4Kernel);

impl Platform for Sel4Platform {
    fn kernel(&mut self) -> &mut dyn Kernel {
        &mut self.0
    }

    fn run(&mut self, handler: &mut dyn Handler) {
        let mut adapter = Adapter::start(|_| Borrowed(handler));
        // The loop never returns: its result type is uninhabited, so it needs no handling.
        #[allow(unused_must_use)]
        sel4_microkit::Handler::run(&mut adapter);
    }
}

/// Start the composition with `start`; returns only if it stopped (a PD had no program).
pub fn start(start: Start) -> Adapter<Stopped> {
    let mut platform = Sel4Platform(Sel4Kernel::new());
    let mut outside = Sel4Kernel::new();
    start(
        &mut platform,
        &mut outside,
        clock::now_ns,
        system::region_paddr_of,
    );
    log::error!("the composition stopped; serving nothing");
    Adapter::start(|_| Stopped)
}
