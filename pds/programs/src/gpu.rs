//! The gpu PD. Placeholder until gpu-server plugs in: relays echo to every PD it may call.
use crate::relay::Relay;
use crate::sys::gpu::channels;
use pd_core::{Channel, Handler, Kernel};

const DOWNSTREAM: &[Channel] = &[
    channels::GSP,
    channels::ALLOC,
    channels::PCI,
    channels::GSP_MODEL,
];

/// Build the gpu PD.
pub fn init(k: &mut dyn Kernel) -> impl Handler {
    Relay::new(k, DOWNSTREAM)
}
