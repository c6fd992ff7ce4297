//! The monolithic composition: every PD of `system.xml` in one process, built from the same
//! program table (`pd_programs::PROGRAMS`) and server crates as the isolated system, with a
//! protected procedure call as a plain function call (`pd_direct`). It is the baseline of the
//! isolation campaign: the same code with nothing between the PDs, so one fault anywhere ends the
//! whole system.
//!
//! - [`layout`]: every region mapped once at the address its PDs expect (`system.xml` keeps one
//!   address per region so that this works);
//! - [`platform`]: the start-up nest and the event loop on `pd_direct::Composition`;
//! - `campaign` (feature `fault-injection`): the fault campaign's client program and its program
//!   tables for both compositions (`mono-campaign --campaign`, and the `isolated` binary on the hosted
//!   runtime).
//!
//! The seL4 variant (issue 13) keeps the GSP model in its own PD: the composition would then hold
//! every PD but the model, and its routes to the model become real channels; nothing here assumes
//! that every route stays inside the process beyond the hosted entry point in `main.rs`.
//!
//! Trust: none between PDs, by design. The process trusts its command line and `system.xml`.
#![deny(unsafe_code)]

#[cfg(feature = "fault-injection")]
pub mod campaign;
pub mod cli;
pub mod layout;
pub mod platform;

pub use platform::{Config, Outcome};
