//! How a client PD hands an ioctl to `drm-shim`: the argument block (and any arrays it points to)
//! go in the client's own shared ioctl buffer (`clientN_ioctl` in system.xml, mapped into that
//! client and `drm` only), then one PPC carries the request number.
//!
//! User pointers inside argument structs (`op_ptr`, `push_ptr`, `handles`, ...) are *client
//! virtual addresses*, exactly as on Linux; the only user memory the shim can reach is the
//! client's ioctl buffer, so it translates a pointer by that buffer's address in the client (from
//! system.xml) and refuses anything outside it with `EFAULT` — `copy_from_user` semantics.
//!
//! PPC: label = request number (or one of the [`op`] codes), mr0 = file id, mr1 = offset of the
//! argument block in the buffer. Reply: label 0 = success, otherwise the positive errno; mr0 of an
//! `OPEN` reply is the new file id. Restart behaviour: when `gpu` or `gsp` restarts, every open
//! file of every client gets `ENODEV` until it is closed and a new one opened (idempotent
//! operations are not retried behind the client's back: GPU state is gone).

use crate::errno::Errno;
use pd_core::shm::{ReadWrite, Region};
use pd_core::{Channel, Kernel, MessageInfo};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Non-ioctl operations; real ioctl numbers always have a non-zero type byte, these never do.
pub mod op {
    /// Open a DRM file (like `open("/dev/dri/renderD128")`); reply mr0 = file id.
    pub const OPEN: u64 = 1;
    /// Close a DRM file: every object it owns is freed.
    pub const CLOSE: u64 = 2;
}

/// Where the argument block goes in the buffer; arrays follow from [`ARRAYS_OFFSET`].
pub const ARG_OFFSET: usize = 0;
/// Start of the area for arrays that arguments point to.
pub const ARRAYS_OFFSET: usize = 0x100;

/// A DRM file of this client, as `drm-shim` numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId(pub u64);

/// Encode a reply: 0 or an errno.
pub fn reply(result: Result<(), Errno>) -> MessageInfo {
    MessageInfo::new(result.err().map_or(0, |e| u64::from(e.0)), 1)
}

/// Decode a reply label.
pub fn result_of(label: u64) -> Result<(), Errno> {
    match label {
        0 => Ok(()),
        // CAST: errnos are small; anything that does not fit is reported as EIO.
        e => Err(Errno(u32::try_from(e).unwrap_or(Errno::EIO.0))),
    }
}

/// The client side: a channel to `drm-shim` and this client's ioctl buffer.
#[derive(Debug)]
pub struct DrmClient {
    ch: Channel,
    buf: Region<ReadWrite>,
    next_array: usize,
}

impl DrmClient {
    /// A client that calls `drm` over `ch` through the ioctl buffer `buf` (mapped at `buf.vaddr()`).
    pub fn new(ch: Channel, buf: Region<ReadWrite>) -> Self {
        Self {
            ch,
            buf,
            next_array: ARRAYS_OFFSET,
        }
    }

    fn call(&mut self, k: &mut dyn Kernel, label: u64, file: u64) -> Result<u64, Errno> {
        k.mrs().set(0, file);
        // CAST: ARG_OFFSET is a small constant.
        k.mrs().set(1, ARG_OFFSET as u64);
        let reply = k
            .ppcall(self.ch, MessageInfo::new(label, 2))
            .map_err(|_| Errno::ENODEV)?;
        result_of(reply.label())?;
        Ok(k.mrs().get(0))
    }

    /// Open a DRM file.
    ///
    /// # Errors
    /// `ENODEV` when the shim is unreachable or the GPU is not up; `ENOMEM` when out of files.
    pub fn open(&mut self, k: &mut dyn Kernel) -> Result<FileId, Errno> {
        self.call(k, op::OPEN, 0).map(FileId)
    }

    /// Close a DRM file (frees everything it owns).
    ///
    /// # Errors
    /// `ENOENT` for an unknown file.
    pub fn close(&mut self, k: &mut dyn Kernel, file: FileId) -> Result<(), Errno> {
        self.call(k, op::CLOSE, file.0).map(|_| ())
    }

    /// Place `data` in the buffer's array area for the next ioctl and return its user pointer.
    /// The area is reused by every ioctl: place arrays after the last ioctl before the one that
    /// points to them.
    ///
    /// # Errors
    /// `ENOMEM` when the buffer is full.
    pub fn put_array<T: IntoBytes + Immutable + ?Sized>(&mut self, data: &T) -> Result<u64, Errno> {
        let bytes = data.as_bytes();
        let at = self.next_array;
        self.buf.write_bytes(at, bytes).map_err(|_| Errno::ENOMEM)?;
        self.next_array = at.saturating_add(bytes.len()).saturating_add(7) & !7;
        // CAST: usize to u64 is lossless on every supported target.
        Ok((self.buf.vaddr() + at) as u64)
    }

    /// Read back an array the shim wrote (e.g. after `SYNCOBJ_CREATE` via a pointer).
    ///
    /// # Errors
    /// `EFAULT` when `user_ptr..+len` is not inside the buffer.
    pub fn get_array(&self, user_ptr: u64, out: &mut [u8]) -> Result<(), Errno> {
        let off = usize::try_from(user_ptr)
            .ok()
            .and_then(|p| p.checked_sub(self.buf.vaddr()));
        let off = off.ok_or(Errno::EFAULT)?;
        self.buf.read_bytes(off, out).map_err(|_| Errno::EFAULT)
    }

    /// Issue ioctl `request` on `file` with argument `arg` (read back on return, as Linux does).
    ///
    /// # Errors
    /// The errno the shim returned; `ENODEV` when the shim is unreachable.
    pub fn ioctl<T: IntoBytes + FromBytes + Immutable>(
        &mut self,
        k: &mut dyn Kernel,
        file: FileId,
        request: u32,
        arg: &mut T,
    ) -> Result<(), Errno> {
        let result = self
            .buf
            .write(ARG_OFFSET, arg)
            .map_err(|_| Errno::EFAULT)
            .and_then(|()| self.call(k, u64::from(request), file.0).map(|_| ()))
            .and_then(|()| self.buf.read::<T>(ARG_OFFSET).map_err(|_| Errno::EFAULT));
        self.next_array = ARRAYS_OFFSET;
        *arg = result?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_labels_round_trip() {
        assert_eq!(result_of(reply(Ok(())).label()), Ok(()));
        assert_eq!(
            result_of(reply(Err(Errno::ENOSYS)).label()),
            Err(Errno::ENOSYS)
        );
        assert_eq!(result_of(u64::MAX), Err(Errno::EIO));
    }
}
