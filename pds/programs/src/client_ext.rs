//! The external client slot (`client2`): in hosted mode an outside Linux process will attach to it
//! (issue 11). Until then it idles, holding its channel to drm and its regions.
use pd_core::{Handler, Kernel};

/// A PD that expects nothing.
#[derive(Debug)]
pub struct Idle;

impl Handler for Idle {}

/// Build the slot.
pub fn init(k: &mut dyn Kernel) -> Idle {
    log::info!(
        "{}: external client slot, idle until a process attaches",
        k.pd_name()
    );
    Idle
}
