//! The layouts of the pages the runtime shares with PDs. Both are made only of atomics, so a peer
//! scribbling on them can confuse the protocol (and is then answered with errors) but can never
//! cause undefined behaviour in the other process.
//!
//! - A **channel page** exists per declared channel and is mapped only into its two end PDs (and
//!   the runtime): per-end doorbell words and the PPC slot. An undeclared channel has no page, so a
//!   PD cannot reach a PD it has no channel to.
//! - A **control page** exists per PD and is shared only with the runtime: fault reports about the
//!   PD's children, its requests to restart or stop them, its verdict, and the address of its own
//!   last memory fault.

use pd_core::MSG_REGS;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// Doorbell bit: a notification is pending (they coalesce).
pub const NOTIFY: u32 = 1;
/// Doorbell bit: a PPC is waiting in the slot.
pub const CALL: u32 = 1 << 1;
/// Control doorbell bit: a child fault report is pending.
pub const FAULT: u32 = 1 << 2;
/// Set by a waiter before it sleeps on a word: whoever changes the word must `futex_wake` it.
pub const WAITING: u32 = 1 << 31;

/// One channel's shared page.
#[repr(C)]
#[derive(Debug)]
pub struct ChannelPage {
    /// Doorbell of each end, indexed like the `end`s in system.xml: [`NOTIFY`] | [`CALL`] |
    /// [`WAITING`]. The other end rings it; the owner consumes it.
    pub doorbell: [AtomicU32; 2],
    /// Set by the runtime while the PD at that end is stopped for good: calls fail at once.
    pub stopped: [AtomicU32; 2],
    /// The PPC slot's state word: `seq << 3 | phase`, plus [`WAITING`] (see `channel`).
    pub state: AtomicU32,
    /// Message register count of the request, then of the reply.
    pub count: AtomicU32,
    /// Label of the request, then of the reply.
    pub label: AtomicU64,
    /// When the pending call was made (`CLOCK_MONOTONIC` ns), for the runtime's watchdog.
    pub called_at: AtomicU64,
    /// Message registers: the request's, then the reply's.
    pub mrs: [AtomicU64; MSG_REGS],
}

/// A child's fault report, written by the runtime for the parent.
#[repr(C)]
#[derive(Debug)]
pub struct FaultRecord {
    /// The `FaultKind` code (see `fault::encode`).
    pub kind: AtomicU32,
    /// Whether `arg` carries a value (a `VmFault` address may be unknown).
    pub has_arg: AtomicU32,
    /// Address, signal number, exit status or label.
    pub arg: AtomicU64,
}

/// One slot per possible child id (`pd_core::MAX_CHANNELS`).
pub const CHILD_SLOTS: usize = pd_core::MAX_CHANNELS as usize;

/// A parent's request about a child, in [`ControlPage::child_cmd`].
pub const CMD_RESTART: u32 = 1;
/// Stop the child for good.
pub const CMD_STOP: u32 = 2;

/// Verdict word values: none yet, passed, failed.
pub const VERDICT_PASS: u32 = 1;
/// The workload failed.
pub const VERDICT_FAIL: u32 = 2;

/// One PD's control page, shared with the runtime only.
#[repr(C)]
#[derive(Debug)]
pub struct ControlPage {
    /// The PD's doorbell from the runtime: [`FAULT`] | [`WAITING`].
    pub event: AtomicU32,
    /// The PD's verdict: 0, [`VERDICT_PASS`] or [`VERDICT_FAIL`].
    pub verdict: AtomicU32,
    /// The PD's own last SIGSEGV/SIGBUS address, with bit 63 set once written.
    pub fault_addr: AtomicU64,
    /// Bit *i*: child *i* has an unread fault report.
    pub faults_pending: AtomicU64,
    /// Fault reports, by child id.
    pub child_fault: [FaultRecord; CHILD_SLOTS],
    /// Requests to the runtime, by child id: 0, [`CMD_RESTART`] or [`CMD_STOP`].
    pub child_cmd: [AtomicU32; CHILD_SLOTS],
}

const _: () = assert!(std::mem::size_of::<ChannelPage>() <= 4096);
const _: () = assert!(std::mem::size_of::<ControlPage>() <= 4096);

/// The size of every shared page.
pub const PAGE: usize = 4096;
