//! Wire types, errors and client stubs of the PCI server.
//!
//! Two protocols live here, so each has one definition shared by both of its ends:
//!
//! - [`service`]: what a function driver (gsp, gpu) asks the `pci` PD over PPC: list the devices,
//!   claim one the policy allows, read its configuration space, write the few registers a driver
//!   needs, and learn where its BARs were placed. [`PciClient`] is the caller's stub.
//! - [`cfg`]: configuration-space accesses that `pci` makes to a *device model* over PPC in hosted
//!   mode (the GSP model PD presents an emulated PCIe topology). [`cfg::ConfigClient`] is the
//!   caller's stub (used by `pci`), [`cfg::ConfigRequest::decode`] the callee's decoder.
//!
//! Encoding: the PPC label is the operation, arguments and results travel in message registers; the
//! reply label is 0 for success or the error's discriminant. Trust: both decoders treat every label
//! and register as hostile and check ranges before building a typed value.
//!
//! Restart behaviour (house rule 11): `pci` keeps no state a client could lose silently. If `pci`
//! restarts, it re-enumerates and every claim is gone: the next call on a claimed device answers
//! [`PciError::NotClaimed`] and the client claims again. `list`, `read_config` and `bar` are
//! idempotent and may be retried after [`PciError::Transport`]; `claim` may be retried too (a
//! second claim by the same client answers [`PciError::AlreadyClaimed`], which the caller can treat
//! as success).
#![no_std]
#![deny(unsafe_code)]

mod bdf;
pub mod cfg;
pub mod service;

pub use bdf::{Bdf, Width};
pub use service::{BarKind, BarPlacement, DeviceEntry, DeviceFlags, PciClient, PciError, Request};
