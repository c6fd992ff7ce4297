//! The GSP model PD (the simulated GPU). Placeholder until gsp-model plugs in: answers echo. A
//! device: it never calls anyone.
use crate::relay::Relay;
use pd_core::{Handler, Kernel};

/// Build the model PD.
pub fn init(k: &mut dyn Kernel) -> impl Handler {
    Relay::new(k, &[])
}
