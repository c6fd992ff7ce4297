//! The protection-domain programming model, shared by every platform.
//!
//! It mirrors seL4 Microkit (and rust-sel4's `sel4_microkit::Handler`): a PD is built once by its
//! `init` function, then the platform's event loop calls [`Handler::notified`] for coalesced
//! notifications, [`Handler::protected`] for protected procedure calls (PPC) and, in a parent,
//! [`Handler::fault`] when a child faults. Everything a PD may do to the outside world goes through
//! the [`Kernel`] it is handed: notify or call a channel, read and write message registers, restart a
//! child. Three platforms implement [`Kernel`]:
//!
//! - hosted (`pds/hosted`): each PD is a Linux process; the runtime enforces `system.xml`;
//! - seL4 (`images/microkit`): `sel4-microkit`, the kernel enforces `system.xml`;
//! - direct (the monolithic composition): PPCs become direct calls into the callee's handler.
//!
//! Server crates depend only on this crate and never on a platform, so they run unchanged on all
//! three. Trust: a handler must treat every message register and every byte of a shared region as
//! hostile input; the platform guarantees only that channel ids and mappings are the declared ones.
#![no_std]
#![deny(unsafe_code)]

#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod hash;
mod message;
pub mod shm;
pub mod trace;

pub use message::{MessageInfo, MessageRegisters, MSG_REGS};

use core::fmt;

/// Microkit 2.3.0 allows channel (and child) ids 0..=61 per PD (`PD_MAX_ID = 61` in its tool).
pub const MAX_CHANNELS: u8 = 62;

/// A channel end of the calling PD, by its `id` in `system.xml`.
///
/// PD code never writes the number: constants are generated from `system.xml` (see `pd-programs`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Channel(u8);

impl Channel {
    /// A channel id known at build time (generated code). Fails to compile for an id over 61 when
    /// used in a `const`.
    pub const fn new(id: u8) -> Self {
        assert!(id < MAX_CHANNELS, "Microkit channel ids are 0..=61");
        Self(id)
    }

    /// A channel id that came from outside (a message, a table).
    ///
    /// # Errors
    /// [`IpcError::BadChannel`] when `id` is not a valid Microkit channel id.
    pub const fn try_new(id: u64) -> Result<Self, IpcError> {
        if id < MAX_CHANNELS as u64 {
            // CAST: checked just above to be below 62.
            Ok(Self(id as u8))
        } else {
            Err(IpcError::BadChannel)
        }
    }

    /// The id as written in `system.xml`.
    pub const fn index(self) -> u8 {
        self.0
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ch{}", self.0)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A child PD of the calling PD, by the `id` attribute of its nested `protection_domain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Child(u8);

impl Child {
    /// A child id known at build time (generated code).
    pub const fn new(id: u8) -> Self {
        assert!(id < MAX_CHANNELS, "Microkit child ids are 0..=61");
        Self(id)
    }

    /// # Errors
    /// [`IpcError::BadChannel`] when `id` is not a valid Microkit child id.
    pub const fn try_new(id: u64) -> Result<Self, IpcError> {
        if id < MAX_CHANNELS as u64 {
            // CAST: checked just above to be below 62.
            Ok(Self(id as u8))
        } else {
            Err(IpcError::BadChannel)
        }
    }

    /// The id as written in `system.xml`.
    pub const fn index(self) -> u8 {
        self.0
    }
}

/// The set of channels whose notifications were coalesced into one `notified` call.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelSet(u64);

impl ChannelSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);

    /// A set from the platform's bitmask (bit *i* = channel *i*); bits 62.. are dropped.
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits & ((1u64 << MAX_CHANNELS) - 1))
    }

    /// The bitmask, bit *i* = channel *i*.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether `ch` is in the set.
    pub const fn contains(self, ch: Channel) -> bool {
        self.0 & (1u64 << ch.0) != 0
    }

    /// The set with `ch` added.
    #[must_use]
    pub const fn with(self, ch: Channel) -> Self {
        Self(self.0 | (1u64 << ch.0))
    }

    /// Whether no channel is in the set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The channels in ascending order.
    pub fn iter(self) -> impl Iterator<Item = Channel> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            // CAST: trailing_zeros of a non-zero u64 below 2^62 is at most 61.
            let i = bits.trailing_zeros() as u8;
            bits &= bits - 1;
            Some(Channel(i))
        })
    }
}

impl fmt::Debug for ChannelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Why an IPC operation failed. Discriminants start at 1: 0 means success on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum IpcError {
    /// The channel id is not declared for this PD in `system.xml`.
    UndeclaredChannel = 1,
    /// The channel exists but this PD's end has no `pp="true"`: it may not call over it.
    NoPpcRight = 2,
    /// The channel exists but this PD's end has `notify="false"`.
    NoNotifyRight = 3,
    /// The id is outside 0..=61.
    BadChannel = 4,
    /// The callee died (or was restarted) while the call was in flight; its state is gone.
    PeerFaulted = 5,
    /// The callee did not answer within the platform's watchdog deadline and was treated as faulted.
    Timeout = 6,
    /// The operation needs a child that this PD does not have.
    NotAChild = 7,
    /// The platform cannot do this (e.g. restart on a platform without supervision).
    Unsupported = 8,
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::UndeclaredChannel => "channel not declared for this PD in system.xml",
            Self::NoPpcRight => "channel end has no pp right",
            Self::NoNotifyRight => "channel end has notify=\"false\"",
            Self::BadChannel => "channel id out of range",
            Self::PeerFaulted => "peer faulted during the call",
            Self::Timeout => "peer missed its deadline",
            Self::NotAChild => "not a child of this PD",
            Self::Unsupported => "not supported on this platform",
        };
        f.write_str(s)
    }
}

/// What happened to a child, as its parent's `fault` handler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A memory access outside the child's mappings (seL4 VM fault; hosted SIGSEGV/SIGBUS).
    VmFault {
        /// The faulting address, where the platform knows it.
        addr: Option<u64>,
    },
    /// The child aborted (a Rust panic with `panic = "abort"`, `abort()`; hosted SIGABRT).
    Abort,
    /// The child was killed by a signal (hosted only), with its number.
    Signal(i32),
    /// The child exited on its own, which a PD never does (hosted only), with its status.
    Exited(i32),
    /// The child stopped answering within its deadline (watchdog).
    Watchdog,
    /// A user exception or capability fault (seL4), with the fault label.
    Other(u64),
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VmFault { addr: Some(a) } => write!(f, "vm fault at {a:#x}"),
            Self::VmFault { addr: None } => write!(f, "vm fault"),
            Self::Abort => write!(f, "abort"),
            Self::Signal(s) => write!(f, "killed by signal {s}"),
            Self::Exited(s) => write!(f, "exited with status {s}"),
            Self::Watchdog => write!(f, "missed its watchdog deadline"),
            Self::Other(l) => write!(f, "fault label {l:#x}"),
        }
    }
}

/// The calling PD's view of the kernel: the only way a PD reaches anything outside itself.
///
/// Message registers are per PD (like the IPC buffer): [`Kernel::ppcall`] sends the first
/// `msg.count()` registers and overwrites them with the callee's reply registers.
pub trait Kernel {
    /// The PD's name from `system.xml`.
    fn pd_name(&self) -> &str;

    /// Notify the PD at the other end of `ch`. Never blocks; notifications coalesce.
    ///
    /// # Errors
    /// [`IpcError::UndeclaredChannel`] or [`IpcError::NoNotifyRight`]; the platform logs the attempt.
    fn notify(&mut self, ch: Channel) -> Result<(), IpcError>;

    /// Protected procedure call to the (strictly higher-priority) PD at the other end of `ch`.
    /// Blocks until its `protected` returns.
    ///
    /// # Errors
    /// [`IpcError::UndeclaredChannel`], [`IpcError::NoPpcRight`], or [`IpcError::PeerFaulted`] /
    /// [`IpcError::Timeout`] when the callee died or hung during the call.
    fn ppcall(&mut self, ch: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError>;

    /// The message registers (inputs of the current `protected`, outputs of the last `ppcall`).
    fn mrs(&mut self) -> &mut MessageRegisters;

    /// Acknowledge an interrupt delivered on `ch`.
    ///
    /// # Errors
    /// [`IpcError::UndeclaredChannel`] when `ch` is not an interrupt of this PD.
    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError> {
        let _ = ch;
        Err(IpcError::Unsupported)
    }

    /// Restart a faulted child from its entry point (Microkit `microkit_pd_restart`): `init` runs
    /// again with the same regions, which must be treated as dirty.
    ///
    /// # Errors
    /// [`IpcError::NotAChild`] when `child` is not a child of this PD.
    fn restart_child(&mut self, child: Child) -> Result<(), IpcError> {
        let _ = child;
        Err(IpcError::Unsupported)
    }

    /// Stop a child for good (Microkit `microkit_pd_stop`).
    ///
    /// # Errors
    /// [`IpcError::NotAChild`] when `child` is not a child of this PD.
    fn stop_child(&mut self, child: Child) -> Result<(), IpcError> {
        let _ = child;
        Err(IpcError::Unsupported)
    }

    /// The physical address of memory region `region` as `system.xml` tells it to this PD
    /// (`<setvar symbol=".." region_paddr="region">`): on seL4 the value the Microkit tool patched
    /// into the symbol. `None` where the platform has no physical addresses of its own (hosted,
    /// monolithic: callers use the generated fake base, `pd_programs::phys`) or gave this PD none
    /// for `region`.
    fn region_paddr(&self, region: &str) -> Option<u64> {
        let _ = region;
        None
    }

    /// A monotonic clock in nanoseconds (hosted: CLOCK_MONOTONIC; seL4: the generic timer or TSC).
    fn now_ns(&self) -> u64;

    /// Arm this PD's one-shot timer: [`Handler::timeout`] runs once [`Kernel::now_ns`] reaches
    /// `at_ns`; a later call replaces the deadline. For waiting without blocking, e.g. a
    /// supervisor's restart throttle.
    ///
    /// # Errors
    /// [`IpcError::Unsupported`] where PDs have no timer (seL4 without a timer driver): the caller
    /// must act at once instead.
    fn set_timeout(&mut self, at_ns: u64) -> Result<(), IpcError> {
        let _ = at_ns;
        Err(IpcError::Unsupported)
    }

    /// Give up the rest of this PD's time slice: PDs of its priority that are ready run before it
    /// goes on (seL4: `seL4_Yield`; hosted: `sched_yield`; where PDs are function calls, nothing).
    /// A workload that calls the drivers back to back needs it between jobs: on seL4 its time
    /// slice mostly runs out inside the passive drm, which runs on the caller's budget at drm's
    /// priority and continues at once, so a peer of the same priority can wait for hundreds of
    /// milliseconds (seen in the fault campaign: 2 jobs to the other client's 618 in 1.5 s).
    fn yield_now(&mut self) {}

    /// Report a workload PD's final verdict. Hosted runtime and tests only: `cargo xtask run` exits
    /// 0 once every workload PD has passed. The seL4 image prints the verdict on serial instead.
    ///
    /// # Errors
    /// [`IpcError::Unsupported`] where nobody collects verdicts.
    fn report_verdict(&mut self, verdict: Verdict) -> Result<(), IpcError> {
        let _ = verdict;
        Err(IpcError::Unsupported)
    }
}

/// A workload PD's outcome (see [`Kernel::report_verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The workload ran to the end and every check held.
    Pass,
    /// The workload gave up or a check failed.
    Fail,
}

/// The application-specific part of a PD's event loop (Microkit's entry points).
///
/// The defaults log the unexpected event and refuse it, so a PD implements only what it expects;
/// unlike rust-sel4's defaults they do not panic, because a peer can always send the unexpected.
pub trait Handler {
    /// One or more notifications arrived (coalesced, Microkit semantics).
    fn notified(&mut self, k: &mut dyn Kernel, channels: ChannelSet) {
        log::warn!(
            "{}: unexpected notification from {:?}",
            k.pd_name(),
            channels
        );
    }

    /// A PPC arrived on `ch`; the arguments are in `k.mrs()`, and the reply goes there too.
    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        log::warn!(
            "{}: unexpected PPC on {ch:?} label {:#x}",
            k.pd_name(),
            msg.label()
        );
        MessageInfo::new(u64::MAX, 0)
    }

    /// A child faulted. The parent decides: `k.restart_child`, `k.stop_child`, or leave it.
    fn fault(&mut self, k: &mut dyn Kernel, child: Child, kind: FaultKind) {
        log::error!(
            "{}: child {child:?} faulted ({kind}) and has no fault handler",
            k.pd_name()
        );
    }

    /// The timer armed with [`Kernel::set_timeout`] expired.
    fn timeout(&mut self, k: &mut dyn Kernel) {
        log::warn!("{}: unexpected timeout", k.pd_name());
    }

    /// What this PD holds of the system's shared memory now, for leak checks (the fault
    /// campaign compares it before and after faults). `None`: the PD hands out no such memory.
    fn usage(&self) -> Option<Usage> {
        None
    }
}

/// Device-visible memory a server holds on behalf of others (see [`Handler::usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// 4 KiB pages of DMA pools granted and not yet freed or reclaimed (alloc-server).
    pub dma_pages: u64,
    /// 4 KiB pages of VRAM granted and not yet freed or reclaimed (gpu-server).
    pub vram_pages: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_set_iterates_in_order_and_drops_high_bits() {
        let s = ChannelSet::from_bits(u64::MAX);
        assert_eq!(s.iter().count(), 62);
        let s = ChannelSet::EMPTY
            .with(Channel::new(5))
            .with(Channel::new(0));
        let v: heapless_free::Vec3 = s.iter().map(|c| c.index()).collect();
        assert_eq!(v.0, [0, 5, 255]);
        assert!(s.contains(Channel::new(5)) && !s.contains(Channel::new(6)));
    }

    #[test]
    fn ids_from_outside_are_checked() {
        assert_eq!(Channel::try_new(62), Err(IpcError::BadChannel));
        assert_eq!(Channel::try_new(61).map(Channel::index), Ok(61));
        assert_eq!(Child::try_new(u64::MAX), Err(IpcError::BadChannel));
    }

    #[test]
    fn message_info_clamps_and_registers_ignore_out_of_range() {
        let m = MessageInfo::new(u64::MAX, 1000);
        assert_eq!(m.count(), MSG_REGS);
        assert_eq!(m.label(), MessageInfo::LABEL_MASK);
        let mut mrs = MessageRegisters::default();
        mrs.set(3, 7);
        mrs.set(MSG_REGS, 9);
        assert_eq!((mrs.get(3), mrs.get(MSG_REGS)), (7, 0));
        let mut other = MessageRegisters::default();
        other.copy_prefix(&mrs, 3);
        assert_eq!(other.get(3), 0);
        other.copy_prefix(&mrs, 4);
        assert_eq!(other.get(3), 7);
    }

    /// A tiny fixed collector so the test needs no allocator.
    mod heapless_free {
        pub struct Vec3(pub [u8; 3]);
        impl FromIterator<u8> for Vec3 {
            fn from_iter<I: IntoIterator<Item = u8>>(it: I) -> Self {
                let mut a = [255u8; 3];
                for (slot, v) in a.iter_mut().zip(it) {
                    *slot = v;
                }
                Vec3(a)
            }
        }
    }
}
