//! A strict simulated NVIDIA GPU that speaks the GSP firmware's side of the protocol (no_std).
//!
//! No one can run this stack on a real GPU inside QEMU, so the driver needs a device to talk to.
//! This crate is that device, as the driver sees it: physical memory reached only through
//! platform-supplied windows ([`phys`]), an RM object tree ([`rm`]) and channels whose GPFIFO and
//! push buffers are fetched through the driver's own page tables and executed by a copy engine
//! ([`fifo`]).
//!
//! It is *strict*: everything the driver does is checked against the protocol, and a deviation
//! is a descriptive error (`gsp_model: ...` in the log, an NV_STATUS, or a channel error event),
//! never tolerated and never a panic. A driver that works against it is right, not merely lucky.
//!
//! Trust: the driver is the peer under test. Every address, handle, size and index it hands over
//! is validated before use; the model never dereferences a driver pointer.
#![no_std]
#![deny(unsafe_code)]

pub mod bar0;
pub mod boot;
pub mod fifo;
pub mod phys;
pub mod rm;
