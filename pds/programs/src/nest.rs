//! The start-up nest of a composition (pds/mono on Linux, [`crate::drivers`] on seL4): several
//! PDs of `system.xml` on one [`pd_direct::Composition`], started as Microkit starts them.
//!
//! Each PD's `init` runs once, may call the PDs already started, and hands its handler to the
//! platform's event loop ([`Platform::run`]). A program's `start` keeps that handler on its own
//! stack frame, so the next PD is started from inside that `run`: the stack nests one [`Level`]
//! per PD, each adds its handler to the composition ([`Composition::with_handler`]), and the
//! innermost, with every handler in place, hands the composition to the owner ([`Nest::serve`]).
//! The owner says which PD starts at each level, in an order where callees come first.

use crate::sys::system;
use crate::{Platform, Program};
use pd_core::{Channel, Handler, IpcError, Kernel, MessageInfo, MessageRegisters, Verdict};
use pd_direct::{Composition, PdKernel};

/// The composition's size: every PD of the system has a slot.
pub const N: usize = system::PDS.len();

/// A composition of the system's PDs.
pub type Comp<'h> = Composition<'h, 'static, N>;

/// What the owner of a nest says at level `at`.
#[derive(Debug)]
pub enum Step<'p> {
    /// Start PD `.0` (index into `system::PDS`) with program `.1`.
    Start(usize, &'p Program),
    /// Every PD has started.
    AllStarted,
    /// Stop starting (the owner logged or recorded why).
    Stop,
}

/// The owner of a nest: which PDs start, and what happens once they all run.
pub trait Nest {
    /// The PD to start at level `at` (0 first).
    fn step(&self, at: usize) -> Step<'_>;

    /// Every PD has started: serve with the composition until the owner is done.
    fn serve(&self, comp: Comp<'_>);

    /// Run `go` with PD `pd`'s handler as the owner wants it run (pds/mono: behind the fault
    /// injector when there is a plan).
    fn wrap(&self, pd: usize, handler: &mut dyn Handler, go: &mut dyn FnMut(&mut dyn Handler)) {
        let _ = pd;
        go(handler);
    }

    /// Something completed (a call, a start): for a watchdog that counts progress.
    fn progress(&self) {}
}

/// Start the nest: PD `nest.step(0)` on `comp`. Returns once the innermost level's
/// [`Nest::serve`] returned, or when a level stopped.
pub fn start(comp: Comp<'_>, nest: &dyn Nest) {
    let Step::Start(pd, program) = nest.step(0) else {
        return;
    };
    let mut level = Level {
        comp: Some(comp),
        me: pd,
        at: 0,
        nest,
        spare: MessageRegisters::default(),
    };
    (program.start)(&mut level);
}

/// One level of the nest: PD `me` being started.
struct Level<'h, 'p> {
    comp: Option<Comp<'h>>,
    me: usize,
    /// This level's position in the owner's start order.
    at: usize,
    nest: &'p dyn Nest,
    /// Registers when the composition is gone (never for a PD being started).
    spare: MessageRegisters,
}

impl<'h> Level<'h, '_> {
    fn view(&mut self) -> Result<PdKernel<'_, 'h, 'static, N>, IpcError> {
        let me = self.me;
        self.comp
            .as_mut()
            .map(|c| c.kernel(me))
            .ok_or(IpcError::Unsupported)
    }
}

impl Kernel for Level<'_, '_> {
    fn pd_name(&self) -> &str {
        system::PDS.get(self.me).map_or("?", |d| d.name)
    }
    fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
        self.view()?.notify(ch)
    }
    fn ppcall(&mut self, ch: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        let r = self.view()?.ppcall(ch, msg);
        self.nest.progress();
        r
    }
    fn mrs(&mut self) -> &mut MessageRegisters {
        let me = self.me;
        match self.comp.as_mut() {
            Some(c) => c.mrs(me),
            None => &mut self.spare,
        }
    }
    fn region_paddr(&self, region: &str) -> Option<u64> {
        self.comp.as_ref()?.region_paddr(self.me, region)
    }
    fn now_ns(&self) -> u64 {
        self.comp.as_ref().map_or(0, Composition::now_ns)
    }
    fn set_timeout(&mut self, at_ns: u64) -> Result<(), IpcError> {
        self.view()?.set_timeout(at_ns)
    }
    fn report_verdict(&mut self, verdict: Verdict) -> Result<(), IpcError> {
        self.view()?.report_verdict(verdict)
    }
}

impl Platform for Level<'_, '_> {
    fn kernel(&mut self) -> &mut dyn Kernel {
        self
    }

    fn run(&mut self, handler: &mut dyn Handler) {
        let (mut comp, me, at, nest) = (self.comp.take(), self.me, self.at, self.nest);
        nest.wrap(me, handler, &mut |handler| {
            let Some(comp) = comp.take() else {
                return;
            };
            let comp = comp.with_handler(me, handler);
            nest.progress();
            match nest.step(at + 1) {
                Step::Start(pd, program) => {
                    let mut level = Level {
                        comp: Some(comp),
                        me: pd,
                        at: at + 1,
                        nest,
                        spare: MessageRegisters::default(),
                    };
                    (program.start)(&mut level);
                }
                Step::AllStarted => nest.serve(comp),
                Step::Stop => {}
            }
        });
    }
}
