//! The DRM-compatible front end (no_std): clients speak the nouveau (and nova) DRM uAPI byte for
//! byte, the shim turns each ioctl into [`gpu_api::GpuOps`] calls.
//!
//! Protocol: see `drm_api::transport` (argument block in the client's ioctl buffer, one PPC per
//! ioctl, errno in the reply label). The shim keeps, per DRM file, the handle namespaces a Linux
//! `drm_file` keeps (GEM handles, syncobjs, channels): a handle means nothing outside the file that
//! got it, and a file belongs to one client PD. Every error path answers the errno Linux's driver
//! answers there ([`drm_api::errno`]).
//!
//! Trust: clients are hostile. Every request number, size, flag, handle, range and user pointer is
//! checked before use; nothing a client sends can make the shim panic (fuzzed: [`fuzz`]).
//! gpu-server is trusted to do what it says; when it (or gsp) restarts, the contexts it held are
//! gone and the files that used them answer `ENODEV` until closed.
#![no_std]
#![deny(unsafe_code)]

mod core_ioctl;
mod file;
pub mod fuzz;
mod handles;
mod nouveau;
mod nova;
mod nvif;
mod sync;
pub mod user;

use drm_api::errno::Errno;
use drm_api::transport::{self, op};
use file::{File, Personality};
use gpu_api::{ClientId, DeviceInfo, GpuError, GpuOps};
use pd_core::trace::{TraceEvent, TraceRing};
use pd_core::{MessageInfo, MessageRegisters};
use user::UserMem;

/// DRM files open at once, over all clients.
pub const MAX_FILES: usize = 8;

/// What the shim records at each decision worth knowing about later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trace {
    /// A request was refused with this errno (request number, errno).
    Refused(u32, u32),
    /// A file was opened for a client.
    Opened(u8),
    /// A file lost its GPU context (gpu or gsp restarted).
    ContextLost(u8),
    /// A client restarted; its files were closed.
    ClientReset(u8),
}

impl TraceEvent for Trace {
    const KINDS: usize = 4;
    fn kind(&self) -> usize {
        match self {
            Trace::Refused(..) => 0,
            Trace::Opened(_) => 1,
            Trace::ContextLost(_) => 2,
            Trace::ClientReset(_) => 3,
        }
    }
    fn kind_name(kind: usize) -> &'static str {
        ["refused", "opened", "context-lost", "client-reset"]
            .get(kind)
            .copied()
            .unwrap_or("?")
    }
}

/// Map a gpu-server error to the errno Linux's nouveau returns in the same situation.
pub(crate) fn errno_of(e: GpuError) -> Errno {
    match e {
        GpuError::ContextLost | GpuError::NotReady => Errno::ENODEV,
        GpuError::NotFound => Errno::ENOENT,
        GpuError::NoMemory => Errno::ENOMEM,
        GpuError::Invalid => Errno::EINVAL,
        GpuError::NoVaSpace => Errno::ENOSYS,
        GpuError::AlreadyInitialised => Errno::EEXIST,
        GpuError::RangeBusy => Errno::ENOSPC,
        GpuError::Device => Errno::EIO,
        GpuError::Busy => Errno::EBUSY,
    }
}

/// The shim's state: open files and the device's fixed parameters.
#[derive(Debug)]
pub struct Shim {
    files: [Option<File>; MAX_FILES],
    device: Option<DeviceInfo>,
    trace: TraceRing<Trace, 32, 4>,
}

impl Default for Shim {
    fn default() -> Self {
        Self::new()
    }
}

impl Shim {
    /// A shim with no open files.
    pub fn new() -> Self {
        Self {
            files: core::array::from_fn(|_| None),
            device: None,
            trace: TraceRing::new(),
        }
    }

    /// The trace ring (dumped on exit by the hosted runtime, read by tests).
    pub fn trace(&self) -> &TraceRing<Trace, 32, 4> {
        &self.trace
    }

    /// Number of files open for `client`.
    pub fn open_files(&self, client: ClientId) -> usize {
        self.files
            .iter()
            .flatten()
            .filter(|f| f.client == client)
            .count()
    }

    /// One PPC from `client`: `OPEN`, `CLOSE` or an ioctl (see `drm_api::transport`). The reply
    /// label is 0 or an errno; `mrs` carry the reply registers.
    pub fn handle(
        &mut self,
        gpu: &mut dyn GpuOps,
        client: ClientId,
        mem: &UserMem<'_>,
        msg: MessageInfo,
        mrs: &mut MessageRegisters,
    ) -> MessageInfo {
        let label = msg.label();
        let result = match label {
            op::OPEN => self.open(gpu, client, mrs.get(0)).map(|id| {
                mrs.set(0, id);
            }),
            op::CLOSE => self.close(gpu, client, mrs.get(0)),
            req => match (u32::try_from(req), usize::try_from(mrs.get(1))) {
                (Ok(req), Ok(arg_at)) => self.ioctl(gpu, client, mrs.get(0), req, mem, arg_at),
                _ => Err(Errno::EINVAL),
            },
        };
        if let Err(e) = result {
            // CAST: labels that are not u32 were refused above; keep the low bits for the trace.
            self.trace.record(Trace::Refused(label as u32, e.0));
        }
        transport::reply(result)
    }

    fn open(
        &mut self,
        gpu: &mut dyn GpuOps,
        client: ClientId,
        personality: u64,
    ) -> Result<u64, Errno> {
        let personality = Personality::from_wire(personality).ok_or(Errno::EINVAL)?;
        let slot = self
            .files
            .iter()
            .position(Option::is_none)
            .ok_or(Errno::EMFILE)?;
        if self.device.is_none() {
            self.device = Some(gpu.device_info().map_err(errno_of)?);
        }
        let ctx = gpu.ctx_open(client).map_err(errno_of)?;
        if let Some(s) = self.files.get_mut(slot) {
            *s = Some(File::new(client, ctx, personality));
        }
        self.trace.record(Trace::Opened(client.0));
        // CAST: slot < MAX_FILES.
        Ok(slot as u64 + 1)
    }

    fn file_index(&self, client: ClientId, id: u64) -> Result<usize, Errno> {
        let i = usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .ok_or(Errno::EBADF)?;
        match self.files.get(i) {
            Some(Some(f)) if f.client == client => Ok(i),
            _ => Err(Errno::EBADF),
        }
    }

    fn close(&mut self, gpu: &mut dyn GpuOps, client: ClientId, id: u64) -> Result<(), Errno> {
        let i = self.file_index(client, id)?;
        if let Some(mut f) = self.files.get_mut(i).and_then(Option::take) {
            f.release(gpu);
        }
        Ok(())
    }

    /// The supervisor restarted `client`: close every file it had (its GPU objects are freed).
    pub fn client_restarted(&mut self, gpu: &mut dyn GpuOps, client: ClientId) {
        for slot in self.files.iter_mut() {
            if slot.as_ref().is_some_and(|f| f.client == client) {
                if let Some(mut f) = slot.take() {
                    f.release(gpu);
                }
            }
        }
        self.trace.record(Trace::ClientReset(client.0));
    }

    /// gpu-server (or gsp) restarted: every context is gone, every file answers `ENODEV` until it is
    /// closed, and the device parameters are read again on the next open.
    pub fn gpu_restarted(&mut self) {
        for f in self.files.iter_mut().flatten() {
            f.lost = true;
            self.trace.record(Trace::ContextLost(f.client.0));
        }
        self.device = None;
    }

    fn ioctl(
        &mut self,
        gpu: &mut dyn GpuOps,
        client: ClientId,
        file: u64,
        req: u32,
        mem: &UserMem<'_>,
        arg_at: usize,
    ) -> Result<(), Errno> {
        let i = self.file_index(client, file)?;
        let device = self.device.unwrap_or_default();
        let f = self
            .files
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or(Errno::EBADF)?;
        if f.lost {
            return Err(Errno::ENODEV);
        }
        let mut cx = Call {
            gpu,
            mem,
            arg_at,
            device,
            file: f,
        };
        let result = match core_ioctl::dispatch(&mut cx, req) {
            Some(r) => r,
            None => match cx.file.personality {
                Personality::Nouveau => nouveau::dispatch(&mut cx, req),
                Personality::Nova => nova::dispatch(&mut cx, req),
            },
        };
        if result == Err(Errno::ENODEV) {
            cx.file.lost = true;
            self.trace.record(Trace::ContextLost(client.0));
        }
        result
    }
}

/// Everything one ioctl handler needs.
pub(crate) struct Call<'a, 'm> {
    gpu: &'a mut dyn GpuOps,
    mem: &'a UserMem<'m>,
    arg_at: usize,
    device: DeviceInfo,
    file: &'a mut File,
}

impl Call<'_, '_> {
    /// Read the argument block.
    fn arg<T: zerocopy::FromBytes + zerocopy::IntoBytes>(&self) -> Result<T, Errno> {
        self.mem.arg(self.arg_at)
    }

    /// Write the argument block back.
    fn put<T: zerocopy::IntoBytes + zerocopy::Immutable>(&self, v: &T) -> Result<(), Errno> {
        self.mem.put_arg(self.arg_at, v)
    }
}

/// The request's size and direction must be exactly the ones of the ioctl with that number.
pub(crate) fn check_request(req: u32, expected: u32) -> Result<(), Errno> {
    if req == expected {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}
