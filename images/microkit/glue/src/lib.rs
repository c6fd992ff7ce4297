//! The seL4 platform of the PD programming model: `pd-core`'s [`Kernel`](pd_core::Kernel) and
//! [`Handler`](pd_core::Handler) on rust-sel4's `sel4-microkit`, so the server crates and the PD
//! modules of `pd-programs` run on seL4 unchanged.
//!
//! Role: each program image of `system.xml` is a thin binary that names its PD module's `init`
//! in [`protection_domain!`]. This crate then
//! - implements [`Kernel`](pd_core::Kernel) on Microkit's channels ([`Sel4Kernel`]): notify and
//!   PPC check the channel masks the Microkit tool patched in, so an undeclared channel is an
//!   [`IpcError`](pd_core::IpcError), never a capability fault;
//! - runs Microkit's event loop ([`Adapter`], a `sel4_microkit::Handler`) and forwards
//!   `notified`, `protected` and, in a parent, `fault` to the PD's handler;
//! - restarts a faulted child on the parent's request (Microkit's `microkit_pd_restart`) at a
//!   *warm* entry point, which rebuilds the PD with its `init` and answers a caller left waiting by
//!   the fault with [`PEER_FAULTED_LABEL`] (its `ppcall` returns `IpcError::PeerFaulted`);
//! - logs through `log` to the kernel's debug console, every line prefixed with the PD's name;
//! - hands out the physical addresses `system.xml`'s `setvar region_paddr` gave the PD
//!   (`Kernel::region_paddr`), and can fault a PD on its Nth PPC for the demo (`fault`);
//! - with feature `fault-injection` (the fault campaign's image only), runs each PD behind
//!   `pd_core::faults::Faulty` with the plan xtask wrote into the image ([`fault_plan`]).
//!
//! Not provided: `Kernel::set_timeout` (no timer driver in the image; callers act at once).
//! Protocol: Microkit 2.3.0's (channel ids are badges; PPC message registers are copied; a
//! fault of a child arrives at its parent as a fault message). Trust: the glue trusts the
//! Microkit tool's patched symbols and the kernel; everything a peer sends is passed to the
//! handler unchecked except the channel id, as on every platform.
#![no_std]
#![deny(unsafe_code)]
#![feature(used_with_arg)]

mod adapter;
mod clock;
mod composed;
mod console;
mod fault;
mod heap;
mod kernel;
mod restart;
mod system;
mod uart;

pub use adapter::Adapter;
pub use composed::{Start, Stopped};
pub use kernel::Sel4Kernel;
pub use restart::PEER_FAULTED_LABEL;
pub use system::{region_paddr, region_paddr_of, setvar};

/// The fault campaign's plan for this image (see `fault`), for the campaign client's `init`.
#[cfg(feature = "fault-injection")]
pub fn fault_plan() -> Option<&'static str> {
    fault::plan()
}

#[doc(hidden)]
pub use sel4_microkit as __sel4_microkit;

/// A PD's stack (rust-sel4's own stack, reset on every restart). Generous because a server's
/// state is built on it before it moves into the [`Adapter`].
pub const STACK_SIZE: usize = 0x8_0000;

/// Declares the PD's entry point: `init` (a `fn(&mut dyn pd_core::Kernel) -> H` with
/// `H: pd_core::Handler`) builds the PD's handler, on the first start and on every restart.
///
/// ```ignore
/// pd_sel4::protection_domain!(pd_programs::pci::init);
/// ```
#[macro_export]
macro_rules! protection_domain {
    ($init:path) => {
        $crate::protection_domain!($init, stack_size = $crate::STACK_SIZE);
    };
    ($init:path, stack_size = $stack:expr) => {
        $crate::__sel4_microkit::declare_protection_domain! {
            init = || $crate::Adapter::start($init),
            stack_size = $stack,
        }
    };
}

/// Declares the entry point of a PD composed of several: `start` (a [`Start`], pd-programs'
/// `drivers::start`) builds them and runs the event loop, on the first start and on every
/// restart. Its stack holds every composed PD's state, so it is four times a PD's.
///
/// ```ignore
/// pd_sel4::composed_protection_domain!(pd_programs::drivers::start);
/// ```
#[macro_export]
macro_rules! composed_protection_domain {
    ($start:path) => {
        $crate::__sel4_microkit::declare_protection_domain! {
            init = || $crate::__composed_start($start),
            stack_size = 4 * $crate::STACK_SIZE,
        }
    };
}

#[doc(hidden)]
pub use composed::start as __composed_start;
