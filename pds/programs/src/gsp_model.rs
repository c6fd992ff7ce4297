//! The GSP model PD (the simulated GPU). Placeholder until gsp-model plugs in: answers echo. A
//! device: it never calls anyone.
pub mod pci_bus;

use crate::relay::Relay;
use pd_core::{Handler, Kernel};

/// Build the model PD.
pub fn init(k: &mut dyn Kernel) -> impl Handler {
    pci_bus::WithPciBus::new(pci_bus::CHIP, Relay::new(k, &[]))
}
