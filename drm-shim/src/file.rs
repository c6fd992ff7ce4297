//! One open DRM file: its GPU context and its handle namespaces.

use crate::handles::HandleTable;
use crate::sync::SyncObj;
use gpu_api::{BoDesc, ChanId, ClientId, CtxId, GpuError, GpuOps};

/// GEM handles per file.
pub const MAX_BOS: usize = 64;
/// Syncobjs per file.
pub const MAX_SYNCOBJS: usize = 32;
/// Channels per file.
pub const MAX_CHANNELS: usize = 4;

/// Which uAPI the file speaks (on Linux: which device node was opened).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Personality {
    /// nouveau (`nouveau_drm.h`), the one NVK and libdrm_nouveau use.
    Nouveau,
    /// nova (`nova_drm.h`), not yet a stable uAPI.
    Nova,
}

impl Personality {
    /// Decode the `OPEN` argument: 0 nouveau, 1 nova.
    pub fn from_wire(v: u64) -> Option<Self> {
        match v {
            0 => Some(Self::Nouveau),
            1 => Some(Self::Nova),
            _ => None,
        }
    }
}

/// A buffer object as the file knows it.
#[derive(Clone, Copy, Debug)]
pub struct Bo {
    /// gpu-server's description.
    pub desc: BoDesc,
}

/// An open DRM file.
#[derive(Debug)]
pub struct File {
    /// The client PD it belongs to.
    pub client: ClientId,
    /// Its GPU context.
    pub ctx: CtxId,
    /// Which uAPI it speaks.
    pub personality: Personality,
    /// The context died with a gpu/gsp restart: everything but close answers `ENODEV`.
    pub lost: bool,
    /// `VM_INIT` done.
    pub vm_ready: bool,
    /// GEM handles.
    pub bos: HandleTable<Bo, MAX_BOS>,
    /// Syncobj handles.
    pub syncs: HandleTable<SyncObj, MAX_SYNCOBJS>,
    /// Channel ids as the client sees them (nouveau numbers channels per file).
    pub chans: HandleTable<ChanId, MAX_CHANNELS>,
    /// NVIF objects (device object names) made through the `NVIF` ioctl.
    pub nvif: crate::nvif::Objects,
}

impl File {
    /// A fresh file of `client` over context `ctx`.
    pub fn new(client: ClientId, ctx: CtxId, personality: Personality) -> Self {
        Self {
            client,
            ctx,
            personality,
            lost: false,
            vm_ready: false,
            bos: HandleTable::default(),
            syncs: HandleTable::default(),
            chans: HandleTable::default(),
            nvif: crate::nvif::Objects::default(),
        }
    }

    /// Free everything the file owns on the GPU side. Closing the context frees its BOs, VA space
    /// and channels in gpu-server. A file marked lost is closed too: an `ENODEV` answer does not
    /// prove the context is gone (a slow or restarting peer of gpu's can cause one), and a
    /// context that is gone answers `ContextLost` or `NotFound`, which cost nothing.
    pub fn release(&mut self, gpu: &mut dyn GpuOps) {
        match gpu.ctx_close(self.ctx) {
            Ok(()) => {}
            Err(GpuError::ContextLost | GpuError::NotFound | GpuError::NotReady) if self.lost => {}
            Err(e) => log::warn!("drm: closing context {:?} failed: {e:?}", self.ctx),
        }
        self.bos.drain().for_each(drop);
        self.syncs.drain().for_each(drop);
        self.chans.drain().for_each(drop);
    }
}
