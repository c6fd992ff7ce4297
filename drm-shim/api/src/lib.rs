//! The DRM uAPI that `drm-shim` speaks, byte for byte, and the client side of its channel.
//!
//! - [`ioctl`]: the Linux `_IOC` request encoding (direction, size, type, nr) and the request
//!   numbers, checked against `include/uapi/drm/drm.h`, `nouveau_drm.h` and `nova_drm.h`;
//! - [`uapi`]: the argument structs (`#[repr(C)]`, zerocopy, sizes and offsets pinned);
//! - [`nvif`]: nouveau's NVIF object interface (the `NVIF` ioctl libdrm_nouveau opens devices with);
//! - [`external`]: how an outside Linux process drives a client slot in hosted mode (socket protocol);
//! - [`errno`]: the Linux errno values the shim returns, as Linux does on each error path;
//! - [`transport`]: how a client PD hands an ioctl to `drm-shim` (its shared buffer + one PPC) and
//!   the client stub.
//!
//! Trust: nothing. The shim decodes every request from bytes a client controls; a client learns
//! nothing from this crate that it could not learn from the Linux headers.
#![no_std]
#![deny(unsafe_code)]

pub mod errno;
pub mod external;
pub mod ioctl;
pub mod nvif;
pub mod transport;
pub mod uapi;
