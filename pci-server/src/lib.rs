//! The PCI server's logic: PCIe enumeration, BAR assignment and capability-gated device grants.
//!
//! Role: the only code that touches configuration space. At `init` it scans from the host bridge
//! ([`enumerate`]), numbering buses itself since nothing ran before it on seL4, sizes every BAR
//! and places it inside the windows `system.xml` reserved ([`assign`]), and logs an
//! `lspci`-style table ([`table`]). Then it hands each device to the one client the policy
//! ([`policy`], built by the PD glue from configuration) allows, over PPC ([`PciServer`], wire
//! protocol in [`pci_api::service`]).
//!
//! Configuration space is reached through [`ConfigSpace`]: [`Ecam`] on seL4, [`PpcConfig`] (PPCs
//! to the device model, [`pci_api::cfg`]) in hosted mode, and the in-memory [`emul`] model in
//! tests, the benchmark and `cargo xtask lspci`; the GSP model PD reuses [`emul`] to present the
//! emulated GPU's topology.
//!
//! Trust: clients and devices are untrusted. Every request register is range-checked, a client
//! reaches only functions it claimed and only the registers a function driver needs; every byte
//! read from a device (capability pointers, BAR read-backs, bus numbers) is bounded before use,
//! and all tables are fixed-size (`heapless`), overflowing into typed errors.
#![no_std]
#![deny(unsafe_code)]

pub mod assign;
pub mod bar;
pub mod caps;
pub mod config;
pub mod dump;
mod ecam;
pub mod emul;
pub mod enumerate;
pub mod fuzz;
pub mod ident;
pub mod policy;
pub mod probe;
pub mod regs;
mod server;
pub mod table;

pub use assign::{Window, Windows};
pub use config::{ConfigError, ConfigPort, ConfigSpace, ModelPort, PpcConfig};
pub use ecam::{Ecam, BUS_STRIDE};
pub use enumerate::{EnumError, FunctionTable, MAX_FUNCTIONS};
pub use policy::{ClientEntry, DeviceMatch, PolicyRule};
pub use probe::{Function, State};
pub use server::{Config, PciServer, Trace, TraceLog};
