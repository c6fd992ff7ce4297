//! The layouts of the pages the runtime shares with PDs. Both are made only of atomics, so a peer
//! scribbling on them can confuse the protocol (and is then answered with errors) but can never
//! cause undefined behaviour in the other process.
//!
//! - A **channel page** exists per declared channel and is mapped only into its two end PDs (and
//!   the runtime): per-end notification words and the PPC slot. An undeclared channel has no page, so a
//!   PD cannot reach a PD it has no channel to.
//! - A **control page** exists per PD and is shared only with the runtime: fault reports about the
//!   PD's children, its requests to restart or stop them, its verdict, and the address of its own
//!   last memory fault.

use pd_core::MSG_REGS;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// A notification word counts notifications in these bits (modulo 2^30); the receiver remembers
/// the last count it saw, so notifications coalesce and receiving needs no atomic write.
pub const NOTIFY_COUNT: u32 = (1 << 30) - 1;
/// Control word bit: a child fault report is pending.
pub const FAULT: u32 = 1;
/// Set by a waiter before it sleeps on a word: whoever replaces the word must `futex_wake` it.
pub const WAITING: u32 = 1 << 31;

/// One channel's shared page.
///
/// The notification words, the slot header and the first 5 message registers share the first
/// cache line, so a short PPC moves one line each way, as a hand-written ping-pong would.
#[repr(C)]
#[derive(Debug)]
pub struct ChannelPage {
    /// Notifications to each end, indexed like the `end`s in system.xml: a count
    /// ([`NOTIFY_COUNT`]) plus [`WAITING`]. The other end increments it.
    pub notify: [AtomicU32; 2],
    /// The PPC slot's state word: `seq << 3 | phase`, plus [`WAITING`] (see `channel`). The
    /// callee waits on it for calls, the caller for the reply.
    pub state: AtomicU32,
    /// Reserved (keeps `tag` 8-byte aligned).
    pub reserved: AtomicU32,
    /// The message tag of the request, then of the reply: `label << 7 | count` (a 52-bit label,
    /// at most 64 registers), one word so that it is written and read at once.
    pub tag: AtomicU64,
    /// Message registers: the request's, then the reply's.
    pub mrs: [AtomicU64; MSG_REGS],
    /// Set by the runtime while the PD at that end is stopped for good: calls fail at once.
    pub stopped: [AtomicU32; 2],
}

const _: () = assert!(std::mem::offset_of!(ChannelPage, mrs) == 24);

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
    /// 1 once the PD's `init` returned and its event loop runs (set by the PD, cleared by the
    /// runtime before each start). Until then it serves no call, and, as on Microkit, a caller
    /// simply waits: the watchdog does not time calls to it (a driver's `init` may take long,
    /// e.g. gsp booting the GPU).
    pub running: AtomicU32,
}

const _: () = assert!(std::mem::size_of::<ChannelPage>() <= 4096);
const _: () = assert!(std::mem::size_of::<ControlPage>() <= 4096);

/// The size of every shared page.
pub const PAGE: usize = 4096;
