//! What `drm-shim` asks of `gpu-server`: the [`GpuOps`] trait, its types and errors, and the PPC
//! encoding of it ([`ppc`]).
//!
//! The trait is the seam between the two servers. In the isolated system drm-shim holds a
//! [`ppc::GpuClient`] (each call is one PPC to the `gpu` PD, bulk arguments in the `drm_gpu`
//! region); in the monolithic composition it holds the gpu-server itself, which implements
//! [`GpuOps`] directly — the same code on both sides, only the transport differs.
//!
//! Trust: gpu-server trusts drm-shim (its only caller, like sDDF's virtualiser) to say which client
//! a context belongs to, and checks everything else: handles are per context, ranges and sizes
//! are validated. Restart behaviour: after gpu-server restarts, every context id minted by the
//! previous instance fails with [`GpuError::ContextLost`] (ids carry the server's generation);
//! drm-shim turns that into `ENODEV` and the client opens a new file.
#![no_std]
#![deny(unsafe_code)]

pub mod ppc;

/// Which client PD a context serves (0-based, in the order of drm-shim's client channels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(pub u8);

/// A GPU context: one RM client + VA space + channels, owned by one DRM file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtxId(pub u32);

/// A buffer object of a context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BoId(pub u32);

/// A GPFIFO channel of a context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChanId(pub u32);

/// Why gpu-server refused. Discriminants start at 1 (0 = success on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum GpuError {
    /// The context belongs to a previous gpu-server or gsp instance (restart): start over.
    ContextLost = 1,
    /// No such context, BO or channel in this context.
    NotFound = 2,
    /// Out of VRAM, DMA memory, table space or quota.
    NoMemory = 3,
    /// A bad size, alignment, range, flag or domain.
    Invalid = 4,
    /// The VA space is not initialised yet (VM_BIND/EXEC/channel before VM_INIT).
    NoVaSpace = 5,
    /// The VA space was already initialised.
    AlreadyInitialised = 6,
    /// The range overlaps a mapping or the kernel-managed area.
    RangeBusy = 7,
    /// The GPU or its firmware failed the operation.
    Device = 8,
    /// The GPU is not up (gsp still booting or failed).
    NotReady = 9,
    /// The operation would block and the caller asked not to.
    Busy = 10,
}

impl GpuError {
    /// Decode a wire value.
    pub fn from_wire(v: u64) -> Self {
        match v {
            1 => Self::ContextLost,
            2 => Self::NotFound,
            3 => Self::NoMemory,
            4 => Self::Invalid,
            5 => Self::NoVaSpace,
            6 => Self::AlreadyInitialised,
            7 => Self::RangeBusy,
            9 => Self::NotReady,
            10 => Self::Busy,
            _ => Self::Device,
        }
    }
}

/// What drm-shim reports through GETPARAM / `NV_DEVICE_V0_INFO`, fixed once the GPU is up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// PCI vendor id (0x10de).
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// Chipset from BOOT_42 (e.g. 0x172 for GA102).
    pub chipset: u32,
    /// Framebuffer (VRAM) size in bytes, as the GSP reported it.
    pub fb_size: u64,
    /// Size of the CPU-visible VRAM aperture (BAR1) in bytes.
    pub vram_bar_size: u64,
    /// Graphics units (GPCs/TPCs) as nouveau's GRAPH_UNITS reports them.
    pub graph_units: u64,
    /// Most push buffers one EXEC may carry.
    pub exec_push_max: u32,
}

/// What `bo_new` placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoDesc {
    /// The BO's id in its context.
    pub id: BoId,
    /// Its size (rounded up to the page size).
    pub size: u64,
    /// The nouveau domain bits it actually lives in.
    pub domain: u32,
    /// Where the owning client sees it mapped (its VRAM window or DMA pool), or 0 when it is not
    /// CPU-mappable.
    pub map_addr: u64,
}

/// One push buffer of an EXEC: GPU VA and length in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Push {
    /// GPU virtual address of the push buffer.
    pub va: u64,
    /// Length in bytes.
    pub len: u32,
    /// `DRM_NOUVEAU_EXEC_PUSH_*` flags.
    pub flags: u32,
}

/// A fence: a channel and the sequence number its semaphore reaches when the job is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The channel the job ran on.
    pub chan: ChanId,
    /// The semaphore value that marks completion.
    pub seqno: u64,
}

/// A submitted job: its fence, and whether the GPU had already completed it when `exec` returned
/// (a short job can be done before the doorbell write returns). A fence known to be signalled
/// needs no later question (Linux's `dma_fence_is_signaled` checks its flag before asking the
/// driver).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The job's fence.
    pub fence: Fence,
    /// The fence had signalled by the time `exec` returned.
    pub done: bool,
}

/// The operations drm-shim needs. Every id is scoped to its context.
pub trait GpuOps {
    /// The device's fixed parameters.
    ///
    /// # Errors
    /// [`GpuError::NotReady`] until the GSP is up.
    fn device_info(&mut self) -> Result<DeviceInfo, GpuError>;
    /// Bytes of VRAM in use.
    ///
    /// # Errors
    /// [`GpuError::NotReady`].
    fn vram_used(&mut self) -> Result<u64, GpuError>;
    /// The GPU timer (PTIMER) in ns.
    ///
    /// # Errors
    /// [`GpuError::NotReady`].
    fn ptimer_ns(&mut self) -> Result<u64, GpuError>;
    /// Open a context for `client`.
    ///
    /// # Errors
    /// [`GpuError::NoMemory`] when out of contexts or RM objects; [`GpuError::NotReady`].
    fn ctx_open(&mut self, client: ClientId) -> Result<CtxId, GpuError>;
    /// Close a context and free everything it owns.
    ///
    /// # Errors
    /// [`GpuError::NotFound`] / [`GpuError::ContextLost`].
    fn ctx_close(&mut self, ctx: CtxId) -> Result<(), GpuError>;
    /// Create a BO of `size` bytes in `domain` (nouveau domain bits) with `align`.
    ///
    /// # Errors
    /// [`GpuError::Invalid`] for bad domain/size/align; [`GpuError::NoMemory`].
    fn bo_new(
        &mut self,
        ctx: CtxId,
        domain: u32,
        size: u64,
        align: u64,
    ) -> Result<BoDesc, GpuError>;
    /// Free a BO (its mappings go with it).
    ///
    /// # Errors
    /// [`GpuError::NotFound`].
    fn bo_free(&mut self, ctx: CtxId, bo: BoId) -> Result<(), GpuError>;
    /// Whether work still uses the BO (for `GEM_CPU_PREP`).
    ///
    /// # Errors
    /// [`GpuError::NotFound`].
    fn bo_busy(&mut self, ctx: CtxId, bo: BoId) -> Result<bool, GpuError>;
    /// Create the context's VA space, reserving the kernel-managed area.
    ///
    /// # Errors
    /// [`GpuError::AlreadyInitialised`]; [`GpuError::Invalid`] for a bad area.
    fn vm_init(&mut self, ctx: CtxId, kernel_addr: u64, kernel_size: u64) -> Result<(), GpuError>;
    /// Map `range` bytes of `bo` at `bo_offset` to `addr` (or a sparse range when `bo` is None).
    ///
    /// # Errors
    /// [`GpuError::NoVaSpace`], [`GpuError::Invalid`], [`GpuError::RangeBusy`], [`GpuError::NotFound`].
    fn vm_map(
        &mut self,
        ctx: CtxId,
        bo: Option<BoId>,
        addr: u64,
        bo_offset: u64,
        range: u64,
    ) -> Result<(), GpuError>;
    /// Unmap `range` bytes at `addr` (splitting mappings that straddle the edges).
    ///
    /// # Errors
    /// [`GpuError::NoVaSpace`], [`GpuError::Invalid`].
    fn vm_unmap(&mut self, ctx: CtxId, addr: u64, range: u64) -> Result<(), GpuError>;
    /// Allocate a GPFIFO channel (with its copy engine object).
    ///
    /// # Errors
    /// [`GpuError::NoVaSpace`], [`GpuError::NoMemory`], [`GpuError::Device`].
    fn channel_alloc(&mut self, ctx: CtxId) -> Result<ChanId, GpuError>;
    /// Free a channel.
    ///
    /// # Errors
    /// [`GpuError::NotFound`].
    fn channel_free(&mut self, ctx: CtxId, chan: ChanId) -> Result<(), GpuError>;
    /// Submit push buffers on a channel; returns the job's fence and whether it has signalled.
    ///
    /// # Errors
    /// [`GpuError::NotFound`], [`GpuError::Invalid`] (too many pushes, bad lengths), [`GpuError::Device`].
    fn exec(&mut self, ctx: CtxId, chan: ChanId, pushes: &[Push]) -> Result<Submitted, GpuError>;
    /// Whether `fence` has signalled.
    ///
    /// # Errors
    /// [`GpuError::NotFound`] for an unknown channel.
    fn fence_signaled(&mut self, ctx: CtxId, fence: Fence) -> Result<bool, GpuError>;
}
