//! The product system in one process (pd-direct, routes from system.xml) with only the PDs a test
//! starts, and a status page the test writes as the supervisor would.
#![allow(dead_code)]

use pd_core::shm::{ReadWrite, Region};
use pd_core::Child;
use pd_direct::{Composition, Slot};
use pd_programs::status::{self, PdState, PdStatus};
use pd_programs::sys::system;

/// PDs in system.xml.
pub const N: usize = system::PDS.len();

/// The composition type of these tests.
pub type System<'h> = Composition<'h, 'static, N>;

/// PD `name`'s index in the composition.
pub fn idx(name: &str) -> usize {
    system::PDS.iter().position(|p| p.name == name).unwrap()
}

fn clock() -> u64 {
    0
}

/// Every PD vacant: calls to one fail until the test puts its handler in.
pub fn vacant() -> System<'static> {
    let slots = core::array::from_fn(|i| {
        let pd = &system::PDS[i];
        Slot::vacant(pd.name, pd.priority)
    });
    Composition::new(slots, system::ROUTES, clock)
}

/// A status page as the supervisor publishes it at boot: every child at generation 1, running.
pub fn status_page() -> Region<ReadWrite> {
    let page = Region::from_static(vec![0u8; 0x1000].leak());
    status::reset(&page).unwrap();
    for id in 1..=8 {
        set(&page, Child::new(id), 1, PdState::Running);
    }
    page
}

/// Publish `child` at `generation` in `state`.
pub fn set(page: &Region<ReadWrite>, child: Child, generation: u32, state: PdState) {
    let s = PdStatus {
        generation,
        state: state as u32,
        restarts: generation - 1,
        last_fault: 0,
    };
    status::write(page, child, &s).unwrap();
}
