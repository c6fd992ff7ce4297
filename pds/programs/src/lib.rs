//! One thin entry point per PD of `system.xml`, platform-independent.
//!
//! Each PD has a module here with one function, its Microkit `init`:
//!
//! ```ignore
//! /// Build the PD's handler: map regions, read channel ids, construct the server.
//! pub fn init(k: &mut dyn pd_core::Kernel) -> impl pd_core::Handler
//! ```
//!
//! It names channels, children and regions only through the constants generated from
//! `system.xml` ([`sys`]`::<pd>::{channels, children, regions}`), turns regions into typed views
//! with [`regions::rw`] / [`regions::ro`], and forwards `notified`/`protected` to a server crate.
//! `init` may already call other PDs (Microkit allows PPCs from `init`); it runs again, with the
//! same (dirty) regions, each time the PD is restarted.
//!
//! Platforms find a PD's `init` through [`PROGRAMS`], keyed by the `program_image` path of
//! `system.xml`: the hosted runtime looks the image up and calls [`Program::start`] with its
//! [`Platform`]. To plug in a PD, add its module and one [`program!`] line. The seL4 image calls
//! the same `init` functions from its per-PD ELFs.
//!
//! Besides the PDs of `system.xml`: [`drm_job`] (the DRM work a client does, shared by the demo
//! clients and the benchmark), [`bench_client`] (the ioctl benchmark's client PD), [`bench_ipc`]
//! (the seL4 bench image's extra PDs: IPC loops), `campaign_client` (the fault campaign's client
//! PD, feature `fault-injection`), [`status`] (the
//! supervisor's status page), [`deaths`] and [`phys`] (helpers of the servers' PD glue).
#![no_std]
#![deny(unsafe_code)]

pub mod deaths;
pub mod phys;
pub mod regions;
pub mod status;
pub mod supervisor;
pub mod sys;

pub mod alloc;
pub mod bench_client;
pub mod bench_ipc;
#[cfg(feature = "fault-injection")]
pub mod campaign_client;
pub mod client;
pub mod client_ext;
pub mod drivers;
pub mod drm;
pub mod drm_job;
pub mod gpu;
pub mod gsp;
pub mod gsp_model;
pub mod nest;
pub mod pci;

use pd_core::{Handler, Kernel};

/// What a PD's program sees of its platform: the kernel (during `init`), then the event loop.
pub trait Platform {
    /// The kernel, for `init`.
    fn kernel(&mut self) -> &mut dyn Kernel;

    /// Run the Microkit event loop with `handler` (one event at a time) until the platform stops
    /// the PD; hosted PDs run until they are killed.
    fn run(&mut self, handler: &mut dyn Handler);
}

/// Whether the platform waits for a PD's verdict ([`pd_core::Kernel::report_verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A server or driver: runs until the system stops.
    Service,
    /// A workload: the run succeeds once every workload PD has reported [`pd_core::Verdict::Pass`].
    Workload,
}

/// One entry of a program table: a `program_image` and how to start it.
#[derive(Clone, Copy)]
pub struct Program {
    /// The `program_image` path as written in `system.xml` (`gpu.elf`).
    pub image: &'static str,
    /// Whether the platform waits for the PD's verdict.
    pub role: Role,
    /// Calls the module's `init` with `platform.kernel()`, then `platform.run(&mut handler)`.
    pub start: fn(&mut dyn Platform),
}

impl core::fmt::Debug for Program {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Program({}, {:?})", self.image, self.role)
    }
}

/// A [`Program`] entry for `image` whose handler comes from `init`
/// (`fn(&mut dyn Kernel) -> impl Handler`); `Role::Service` unless a role is given.
///
/// ```ignore
/// program!("gpu.elf" => gpu::init),
/// program!("client.elf" => client::init, Role::Workload),
/// ```
#[macro_export]
macro_rules! program {
    ($image:literal => $init:path) => {
        $crate::program!($image => $init, $crate::Role::Service)
    };
    ($image:literal => $init:path, $role:expr) => {
        $crate::Program {
            image: $image,
            role: $role,
            start: |platform: &mut dyn $crate::Platform| {
                let mut handler = $init(platform.kernel());
                platform.run(&mut handler);
            },
        }
    };
}

/// Every program of `system.xml`.
pub const PROGRAMS: &[Program] = &[
    program!("supervisor.elf" => supervisor::init),
    program!("pci.elf" => pci::init),
    program!("alloc.elf" => alloc::init),
    program!("gsp.elf" => gsp::init),
    program!("gpu.elf" => gpu::init),
    program!("drm.elf" => drm::init),
    program!("client.elf" => client::init, Role::Workload),
    program!("client-ext.elf" => client_ext::init),
    program!("gsp-model.elf" => gsp_model::init),
];

/// The program for `image` in `table`.
pub fn find<'a>(table: &'a [Program], image: &str) -> Option<&'a Program> {
    table.iter().find(|p| p.image == image)
}
