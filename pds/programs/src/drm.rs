//! The drm PD. Placeholder until drm-shim plugs in: relays echo to gpu, checking each request
//! against the first words of the calling client's ioctl buffer.
use crate::regions::ro;
use crate::relay::Relay;
use crate::sys::drm::{channels, regions};
use pd_core::{Channel, Handler, Kernel};

const DOWNSTREAM: &[Channel] = &[channels::GPU];

/// Build the drm PD.
pub fn init(k: &mut dyn Kernel) -> impl Handler {
    Relay::with_shared(
        k,
        DOWNSTREAM,
        [
            (channels::CLIENT0, ro(regions::CLIENT0_IOCTL)),
            (channels::CLIENT1, ro(regions::CLIENT1_IOCTL)),
            (channels::CLIENT2, ro(regions::CLIENT2_IOCTL)),
        ],
    )
}
