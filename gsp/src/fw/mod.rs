//! Firmware-version-specific wire types. Code outside this module uses only [`current`], so a
//! firmware bump is one line. The target is GSP firmware 570.144, the version nova-core uses, whose
//! layouts OpenRM pins in `src/nvidia/interface/gsp_abi_check.c` (see
//! `../shared/reference/gsp-protocol.md`).
pub mod r570_144;

/// The firmware ABI this build speaks.
pub use r570_144 as current;
