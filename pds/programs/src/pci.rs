//! The pci PD. Placeholder until pci-server plugs in: relays echo to the device model, where the
//! real server does config-space accesses.
use crate::relay::Relay;
use crate::sys::pci::channels;
use pd_core::{Channel, Handler, Kernel};

const DOWNSTREAM: &[Channel] = &[channels::GSP_MODEL];

/// Build the pci PD.
pub fn init(k: &mut dyn Kernel) -> impl Handler {
    Relay::new(k, DOWNSTREAM)
}
