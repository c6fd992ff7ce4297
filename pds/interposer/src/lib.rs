//! `libdrm_interposer.so`: run an unmodified Linux DRM program (libdrm, libdrm_nouveau, or raw
//! ioctls) against an external client slot of the hosted system, with
//! `LD_PRELOAD=libdrm_interposer.so HOSTED_DRM_SOCKET=<slot socket> program`.
//!
//! - [`hooks`]: the exported `open`/`openat`/`ioctl`/`mmap`/`close` (render nodes go to the slot,
//!   everything else to libc untouched);
//! - [`slot`]: attaching to the slot (`drm_api::external`: a hello carrying the slot's region
//!   descriptors, then one frame per PPC) and the DRM transport over it;
//! - [`marshal`]: copying an ioctl's argument block and the arrays it points to into the slot's
//!   ioctl buffer, translating user pointers to the slot's addresses and back;
//! - [`sys`]: the unsafe edges (libc's real functions, raw caller memory, `SCM_RIGHTS`, `mmap`).
//!
//! BO mappings are mappings of the slot's own regions (its VRAM window, its DMA pool), received as
//! descriptors when attaching: the program writes the memory the GPU side sees, not a copy.
//!
//! Trust: the library runs inside the client program and trusts it as libc would (a bad pointer
//! faults the program). It does not trust the slot's replies beyond their shape; the slot does not
//! trust the library at all (the shim checks every request, the runtime every call).
#![deny(unsafe_code)]

#[cfg(not(test))]
pub mod hooks;
pub mod marshal;
pub mod slot;
pub mod sys;

#[cfg(test)]
#[path = "../tests/loopback/mod.rs"]
mod loopback;
