//! A GPU context: one RM client tree, one VA space with its page tables, the BOs and channels of
//! one DRM file. Ids are slot indices + 1 within the context.

use crate::channel::Chan;
use crate::deps::DmaBuf;
use crate::pt::PageTables;
use crate::vm::VaSpace;
use gpu_api::{BoId, ChanId, ClientId, CtxId, GpuError};

/// BOs per context (user BOs plus the kernel objects of its channels).
pub const MAX_BOS: usize = 64;
/// Channels per context.
pub const MAX_CHANS: usize = 4;

/// Which VRAM window a BO was carved from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Win {
    /// The general window (kernel objects, non-mappable BOs).
    General,
    /// The owning client's CPU-mappable window.
    Client,
}

/// Where a BO's memory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// VRAM at FB address `fb`.
    Vram {
        /// FB address.
        fb: u64,
        /// Its window.
        win: Win,
    },
    /// System memory from the client's DMA pool (GART).
    Gart(DmaBuf),
}

/// A buffer object.
#[derive(Clone, Copy, Debug)]
pub struct Bo {
    /// Bytes (page multiple).
    pub size: u64,
    /// nouveau domain bits it lives in.
    pub domain: u32,
    /// Where.
    pub place: Place,
    /// Where the owning client sees it (0: not CPU-mappable).
    pub map_addr: u64,
    /// A kernel object of a channel (not visible to the client).
    pub kernel: bool,
}

/// RM handles of a context's object tree.
#[derive(Clone, Copy, Debug)]
pub struct RmHandles {
    /// The root client.
    pub client: u32,
    /// The device.
    pub device: u32,
    /// The subdevice.
    pub subdevice: u32,
    /// The VA space (once VM_INIT allocated it).
    pub vaspace: Option<u32>,
}

/// Handles within a client's tree (RM handles are per client).
pub mod handle {
    /// The device object.
    pub const DEVICE: u32 = 0xde00_0001;
    /// The subdevice object.
    pub const SUBDEVICE: u32 = 0x5d00_0001;
    /// The VA space object.
    pub const VASPACE: u32 = 0x9a00_0001;
    /// Channel `i`'s object.
    pub const fn channel(i: u32) -> u32 {
        0xc400_0000 | i
    }
    /// Channel `i`'s copy-engine object.
    pub const fn copy(i: u32) -> u32 {
        0xce00_0000 | i
    }
}

/// One context.
#[derive(Debug)]
pub struct Ctx {
    /// Its id (carries the server generation).
    pub id: CtxId,
    /// The client it serves.
    pub client: ClientId,
    /// RM object handles.
    pub rm: RmHandles,
    /// The VA space, after VM_INIT.
    pub va: Option<VaSpace>,
    /// Its page tables, after VM_INIT.
    pub pt: Option<PageTables>,
    /// Next free address in the kernel-managed area.
    pub kva_next: u64,
    /// BOs by slot.
    pub bos: [Option<Bo>; MAX_BOS],
    /// Channels by slot.
    pub chans: [Option<Chan>; MAX_CHANS],
}

impl Ctx {
    /// A context with no objects yet.
    pub fn new(id: CtxId, client: ClientId, rm: RmHandles) -> Self {
        Self {
            id,
            client,
            rm,
            va: None,
            pt: None,
            kva_next: 0,
            bos: [None; MAX_BOS],
            chans: [None; MAX_CHANS],
        }
    }

    /// Store a BO; its id.
    ///
    /// # Errors
    /// [`GpuError::NoMemory`] when the table is full.
    pub fn add_bo(&mut self, bo: Bo) -> Result<BoId, GpuError> {
        let i = self
            .bos
            .iter()
            .position(Option::is_none)
            .ok_or(GpuError::NoMemory)?;
        if let Some(s) = self.bos.get_mut(i) {
            *s = Some(bo);
        }
        // CAST: i < MAX_BOS.
        Ok(BoId(i as u32 + 1))
    }

    fn slot(id: u32) -> Option<usize> {
        usize::try_from(id).ok()?.checked_sub(1)
    }

    /// The user BO `id` (kernel objects are not reachable by id from outside).
    ///
    /// # Errors
    /// [`GpuError::NotFound`].
    pub fn bo(&self, id: BoId) -> Result<&Bo, GpuError> {
        self.any_bo(id)
            .filter(|b| !b.kernel)
            .ok_or(GpuError::NotFound)
    }

    /// Any BO `id`, kernel objects included.
    pub fn any_bo(&self, id: BoId) -> Option<&Bo> {
        self.bos.get(Self::slot(id.0)?)?.as_ref()
    }

    /// Remove BO `id`.
    pub fn take_bo(&mut self, id: BoId) -> Option<Bo> {
        self.bos.get_mut(Self::slot(id.0)?)?.take()
    }

    /// Channel `id`.
    ///
    /// # Errors
    /// [`GpuError::NotFound`].
    pub fn chan(&mut self, id: ChanId) -> Result<&mut Chan, GpuError> {
        Self::slot(id.0)
            .and_then(|i| self.chans.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or(GpuError::NotFound)
    }

    /// Carve `len` bytes (page aligned) of the kernel-managed VA area.
    ///
    /// # Errors
    /// [`GpuError::NoVaSpace`] before VM_INIT, [`GpuError::NoMemory`] when the area is full.
    pub fn kva(&mut self, len: u64) -> Result<u64, GpuError> {
        let (base, size) = self.va.as_ref().ok_or(GpuError::NoVaSpace)?.kernel_area();
        let start = self.kva_next.max(base);
        let end = start.checked_add(len).ok_or(GpuError::NoMemory)?;
        if end > base + size {
            return Err(GpuError::NoMemory);
        }
        self.kva_next = end;
        Ok(start)
    }
}
