//! Syncobjs (binary only: `DRM_CAP_SYNCOBJ_TIMELINE` is reported as 0) and the wait/signal lists of
//! `VM_BIND` and `EXEC`.

use crate::Call;
use drm_api::errno::Errno;
use drm_api::uapi::{drm_nouveau_sync, DRM_NOUVEAU_SYNC_SYNCOBJ, DRM_NOUVEAU_SYNC_TYPE_MASK};
use gpu_api::Fence;

/// A syncobj's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncObj {
    /// No fence attached yet.
    Empty,
    /// Signalled (created signalled, or its fence completed).
    Signaled,
    /// Waiting on a GPU job.
    Fence(Fence),
}

impl Call<'_, '_> {
    /// Whether syncobj `handle` has signalled (polling its fence).
    ///
    /// # Errors
    /// `ENOENT` for an unknown handle; `EINVAL` when no fence was ever attached (Linux's answer
    /// without WAIT_FOR_SUBMIT); the GPU's errno when the fence can't be read.
    pub(crate) fn sync_signaled(&mut self, handle: u32) -> Result<bool, Errno> {
        let s = *self.file.syncs.get(handle).ok_or(Errno::ENOENT)?;
        match s {
            SyncObj::Signaled => Ok(true),
            SyncObj::Empty => Err(Errno::EINVAL),
            SyncObj::Fence(f) => {
                let done = self
                    .gpu
                    .fence_signaled(self.file.ctx, f)
                    .map_err(crate::errno_of)?;
                if done {
                    if let Some(s) = self.file.syncs.get_mut(handle) {
                        *s = SyncObj::Signaled;
                    }
                }
                Ok(done)
            }
        }
    }

    /// Check a user array of `count` `drm_nouveau_sync` at `ptr` and return their handles' count;
    /// each must be a binary syncobj of this file.
    fn sync_list(&self, ptr: u64, count: u32) -> Result<usize, Errno> {
        let n = usize::try_from(count).map_err(|_| Errno::EINVAL)?;
        for i in 0..n {
            let s: drm_nouveau_sync = self.mem.read_elem(ptr, i)?;
            if s.flags & DRM_NOUVEAU_SYNC_TYPE_MASK != DRM_NOUVEAU_SYNC_SYNCOBJ
                || s.flags & !DRM_NOUVEAU_SYNC_TYPE_MASK != 0
            {
                return Err(Errno::EINVAL);
            }
            if self.file.syncs.get(s.handle).is_none() {
                return Err(Errno::ENOENT);
            }
        }
        Ok(n)
    }

    /// The job may run only when every wait syncobj has signalled. The GPU (model) completes jobs
    /// before their fence is read, so an unsignalled dependency here means one that will never
    /// signal from our side: refuse rather than block the shim (a PD must answer in bounded time).
    pub(crate) fn wait_list(&mut self, ptr: u64, count: u32) -> Result<(), Errno> {
        let n = self.sync_list(ptr, count)?;
        for i in 0..n {
            let s: drm_nouveau_sync = self.mem.read_elem(ptr, i)?;
            if !self.sync_signaled(s.handle)? {
                return Err(Errno::EAGAIN);
            }
        }
        Ok(())
    }

    /// Validate a signal list before the job runs (so a bad list loses nothing).
    pub(crate) fn check_signal_list(&self, ptr: u64, count: u32) -> Result<(), Errno> {
        self.sync_list(ptr, count).map(|_| ())
    }

    /// Attach `payload` to every syncobj of a (validated) signal list.
    pub(crate) fn signal_list(
        &mut self,
        ptr: u64,
        count: u32,
        payload: SyncObj,
    ) -> Result<(), Errno> {
        let n = usize::try_from(count).map_err(|_| Errno::EINVAL)?;
        for i in 0..n {
            let s: drm_nouveau_sync = self.mem.read_elem(ptr, i)?;
            if let Some(obj) = self.file.syncs.get_mut(s.handle) {
                *obj = payload;
            }
        }
        Ok(())
    }
}
