//! The supervisor PD: parent of every driver and client PD. On a child's fault it applies
//! [`policy::Policy`] (restart, throttled restart, hold, or fail and stop), publishes the result
//! on the status page ([`crate::status`]) and notifies the servers that depend on it, which then
//! reclaim what the old instance owned. It never calls anyone (Hubris' rule: a supervisor must
//! not block on less-trusted PDs): restarts are kernel operations, and dependents learn by
//! notification plus the read-only page.

mod handler;
pub mod policy;

pub use handler::Supervisor;

use crate::sys::{
    self,
    supervisor::{channels, children, regions},
};
use pd_core::{Channel, Kernel};
use policy::{ChildConfig, Limits};

/// Which children restart and which are held (workloads stay down for inspection).
const CHILDREN: &[ChildConfig] = &[
    ChildConfig::restart(children::PCI, sys::pci::NAME),
    ChildConfig::restart(children::ALLOC, sys::alloc::NAME),
    ChildConfig::restart(children::GSP, sys::gsp::NAME),
    ChildConfig::restart(children::GPU, sys::gpu::NAME),
    ChildConfig::restart(children::DRM, sys::drm::NAME),
    ChildConfig::hold(children::CLIENT0, sys::client0::NAME),
    ChildConfig::hold(children::CLIENT1, sys::client1::NAME),
    ChildConfig::hold(children::CLIENT2, sys::client2::NAME),
];

/// The servers told about every status change.
const DEPENDENTS: &[Channel] = &[
    channels::PCI,
    channels::ALLOC,
    channels::GSP,
    channels::GPU,
    channels::DRM,
];

/// The supervisor PD of `system.xml`.
pub fn init(k: &mut dyn Kernel) -> Supervisor {
    let page = crate::regions::rw(regions::STATUS);
    Supervisor::new(k, Limits::default(), CHILDREN, DEPENDENTS, page)
}
