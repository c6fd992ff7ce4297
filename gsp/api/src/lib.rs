//! Requests gpu-server sends to the gsp PD: wire types, errors, client stub.
//!
//! The gsp PD owns the GPU's firmware: it boots the GSP, then serves RM requests on behalf of
//! gpu-server — allocate, control and free RM objects (`GSP_RM_ALLOC`, `GSP_RM_CONTROL`, `FREE`),
//! the static information GSP-RM reported at boot, the firmware's health (crash reporting), and
//! the events GSP-RM raised (robust-channel errors, MMU faults, posted events, Xids).
//!
//! [`GspOps`] is the seam: the gsp server implements it; [`GspClient`] implements the same calls
//! as one PPC each over a channel (label = [`Op`], arguments and results in message registers;
//! [`serve`] is the callee's decoder, so the protocol has one definition); the monolithic
//! composition calls the server directly.
//!
//! Trust: the gsp PD checks every length and handle-sized field a caller sends (GSP-RM checks the
//! handles themselves); a caller trusts the gsp PD's replies to be well-formed but checks sizes.
//!
//! Restart behaviour: when the gsp PD (or the GSP) restarts, every RM object is gone. [`Health`]
//! carries a `generation` that changes with each boot; a caller that sees it change must treat
//! all its RM handles as lost (gpu-server reports `ContextLost`). RM alloc/free are not
//! idempotent and are never retried behind the caller's back; [`GspOps::static_info`] and
//! [`GspOps::health`] are, and may be.
#![no_std]
#![deny(unsafe_code)]

mod client;
mod codec;

pub use client::GspClient;
pub use codec::{serve, Op, MAX_INLINE_PARAMS};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Why a request failed. Discriminants start at 1 (0 = success on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum GspError {
    /// The GSP is still booting.
    NotReady = 1,
    /// The GSP firmware crashed or failed to boot; see [`GspOps::health`].
    Crashed = 2,
    /// GSP-RM refused the request with this NV_STATUS.
    Rm {
        /// The NV_STATUS.
        status: u32,
    } = 3,
    /// The GSP did not answer in time.
    Timeout = 4,
    /// Parameters larger than [`MAX_INLINE_PARAMS`] (or than the reply buffer).
    TooLarge = 5,
    /// A malformed request (unknown operation, inconsistent sizes).
    BadRequest = 6,
    /// The message queues to the GSP broke (a protocol violation by the firmware).
    Queue = 7,
    /// The gsp PD could not be reached (it faulted or restarted during the call).
    Unreachable = 8,
}

impl GspError {
    /// The wire code (the reply label).
    pub const fn code(self) -> u64 {
        match self {
            Self::NotReady => 1,
            Self::Crashed => 2,
            Self::Rm { .. } => 3,
            Self::Timeout => 4,
            Self::TooLarge => 5,
            Self::BadRequest => 6,
            Self::Queue => 7,
            Self::Unreachable => 8,
        }
    }

    /// The error for wire code `code`, with `status` for [`GspError::Rm`]; an unknown code is
    /// [`GspError::BadRequest`] (the peer spoke another protocol).
    pub const fn from_code(code: u64, status: u32) -> Self {
        match code {
            1 => Self::NotReady,
            2 => Self::Crashed,
            3 => Self::Rm { status },
            4 => Self::Timeout,
            5 => Self::TooLarge,
            7 => Self::Queue,
            8 => Self::Unreachable,
            _ => Self::BadRequest,
        }
    }
}

/// An RM allocation request (`rpc_gsp_rm_alloc_v03_00` without the parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RmAlloc {
    /// Client handle.
    pub client: u32,
    /// Parent handle.
    pub parent: u32,
    /// New object's handle.
    pub object: u32,
    /// Class.
    pub class: u32,
    /// Allocation flags.
    pub flags: u32,
}

/// An RM control request (`rpc_gsp_rm_control_v03_00` without the parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RmControl {
    /// Client handle.
    pub client: u32,
    /// Object handle.
    pub object: u32,
    /// Control command.
    pub cmd: u32,
    /// Control flags.
    pub flags: u32,
}

/// What GSP-RM reported at boot (from `GspStaticConfigInfo`), as gpu-server needs it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StaticInfo {
    /// Framebuffer size in bytes (`fb_length`).
    pub fb_length: u64,
    /// BAR1 page directory base (`bar1PdeBase`).
    pub bar1_pde_base: u64,
    /// BAR2 page directory base (`bar2PdeBase`).
    pub bar2_pde_base: u64,
    /// GSP-RM's internal client handle (`hInternalClient`).
    pub internal_client: u32,
    /// Its device handle (`hInternalDevice`).
    pub internal_device: u32,
    /// Its subdevice handle (`hInternalSubdevice`).
    pub internal_subdevice: u32,
    /// Chipset code (`architecture << 4 | implementation`).
    pub chipset: u32,
    /// Marketing name, NUL-padded (`gpuNameString`).
    pub gpu_name: [u8; 64],
}
const _: () = assert!(core::mem::size_of::<StaticInfo>() == 104);
const _: () = assert!(core::mem::offset_of!(StaticInfo, internal_client) == 24);
const _: () = assert!(core::mem::offset_of!(StaticInfo, gpu_name) == 40);

/// The firmware's state, as [`Health::state`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum GspState {
    /// Booting: requests get [`GspError::NotReady`].
    Booting = 1,
    /// Up and serving.
    Running = 2,
    /// Crashed after boot (see [`CrashCause`]); a restart is pending.
    Crashed = 3,
    /// Boot failed (see [`Health::boot_step`] and [`Health::boot_error`]).
    BootFailed = 4,
}

/// Why the firmware is considered crashed, as [`Health::crash`] (0 = none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum CrashCause {
    /// The GSP falcon halted (IRQSTAT HALT).
    Halted = 1,
    /// GSP-RM sent OS_ERROR_LOG with a fatal Xid.
    OsErrorLog = 2,
    /// An RPC got no reply in time.
    Timeout = 3,
    /// The message queues broke (bad pointers, persistent garbage).
    QueueBroken = 4,
}

/// The firmware's health: state, boot generation, crash report.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Health {
    /// [`GspState`] value.
    pub state: u32,
    /// Changes with every boot: RM handles of another generation are gone.
    pub generation: u32,
    /// [`CrashCause`] value, 0 when none.
    pub crash: u32,
    /// The last Xid GSP-RM reported (OS_ERROR_LOG `exceptType`), 0 when none.
    pub last_xid: u32,
    /// The boot step that failed (`gsp::boot::State` number), 0 when none.
    pub boot_step: u32,
    /// The failed step's error code, 0 when none.
    pub boot_error: u32,
    /// Messages from the GSP rejected and skipped by the queue since boot.
    pub rejected_messages: u32,
    /// Events dropped because the event queue was full.
    pub dropped_events: u32,
}
const _: () = assert!(core::mem::size_of::<Health>() == 32);

/// The kind of a [`GspEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum EventKind {
    /// RC_TRIGGERED: channel `chid` on `engine` hit robust-channel error `except_type`.
    RcTriggered = 1,
    /// MMU_FAULT_QUEUED: faults wait in the fault buffer.
    MmuFaultQueued = 2,
    /// POST_EVENT: notifier `notify_index` of event object `h_event` in client `h_client`.
    PostEvent = 3,
    /// OS_ERROR_LOG: Xid `except_type` on channel `chid`.
    OsErrorLog = 4,
}

/// `TryFrom<u32>` for a fieldless `repr(u32)` enum: the value, or the unknown number back.
macro_rules! u32_enum {
    ($t:ident: $($v:ident),+) => {
        impl TryFrom<u32> for $t {
            type Error = u32;
            fn try_from(v: u32) -> Result<Self, u32> {
                [$(Self::$v),+].into_iter().find(|e| *e as u32 == v).ok_or(v)
            }
        }
    };
}

u32_enum!(GspState: Booting, Running, Crashed, BootFailed);
u32_enum!(CrashCause: Halted, OsErrorLog, Timeout, QueueBroken);
u32_enum!(EventKind: RcTriggered, MmuFaultQueued, PostEvent, OsErrorLog);

/// An event GSP-RM raised, queued by the gsp PD for gpu-server (which it notifies).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GspEvent {
    /// [`EventKind`] value.
    pub kind: u32,
    /// Channel id (RC, Xid).
    pub chid: u32,
    /// Engine (RC: NV2080_ENGINE_TYPE).
    pub engine: u32,
    /// Exception type / Xid (RC, Xid).
    pub except_type: u32,
    /// Client handle (POST_EVENT).
    pub h_client: u32,
    /// Event object handle (POST_EVENT).
    pub h_event: u32,
    /// Notifier index (POST_EVENT).
    pub notify_index: u32,
    /// Event data word (POST_EVENT).
    pub data: u32,
    /// Faulting address (RC with an MMU fault).
    pub fault_addr: u64,
}
const _: () = assert!(core::mem::size_of::<GspEvent>() == 40);

/// What the gsp PD does for its callers; [`GspClient`] is the PPC form, the gsp server the real
/// one.
pub trait GspOps {
    /// Allocate an RM object; `params` go to GSP-RM and are overwritten with what it returns.
    ///
    /// # Errors
    /// [`GspError::Rm`] with GSP-RM's status, [`GspError::TooLarge`], [`GspError::NotReady`],
    /// [`GspError::Crashed`], [`GspError::Timeout`].
    fn rm_alloc(&mut self, req: &RmAlloc, params: &mut [u8]) -> Result<(), GspError>;

    /// Run an RM control; `params` are sent and overwritten with GSP-RM's reply.
    ///
    /// # Errors
    /// As [`GspOps::rm_alloc`].
    fn rm_control(&mut self, req: &RmControl, params: &mut [u8]) -> Result<(), GspError>;

    /// Free RM object `object` (and its subtree) of `client`.
    ///
    /// # Errors
    /// As [`GspOps::rm_alloc`].
    fn rm_free(&mut self, client: u32, parent: u32, object: u32) -> Result<(), GspError>;

    /// The static information of the current boot.
    ///
    /// # Errors
    /// [`GspError::NotReady`], [`GspError::Crashed`].
    fn static_info(&mut self) -> Result<StaticInfo, GspError>;

    /// The firmware's health (never fails: it is how failures are reported).
    fn health(&mut self) -> Health;

    /// The oldest queued event, if any.
    fn next_event(&mut self) -> Option<GspEvent>;
}
