//! The gsp PD. Placeholder until the gsp crate plugs in: relays echo to every PD it may call.
use crate::relay::Relay;
use crate::sys::gsp::channels;
use pd_core::{Channel, Handler, Kernel};

const DOWNSTREAM: &[Channel] = &[channels::PCI, channels::ALLOC, channels::GSP_MODEL];

/// Build the gsp PD.
pub fn init(k: &mut dyn Kernel) -> impl Handler {
    Relay::new(k, DOWNSTREAM)
}
