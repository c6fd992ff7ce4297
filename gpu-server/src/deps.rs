//! What gpu-server needs from its peers, as traits the PD glue implements with PPC client stubs
//! (gsp-api, alloc-api, MMIO through the device) and tests implement with fakes. [`Peers`] bundles
//! them: on a PD they all go through the one `Kernel`, so one object serves all three.

use gpu_api::{ClientId, GpuError};
use gsp::regs::Mmio;

/// Everything gpu-server calls out to.
pub trait Peers: Rm + Dma + Mmio {}
impl<T: Rm + Dma + Mmio> Peers for T {}

/// RM objects in the GSP, through the gsp PD (`GSP_RM_ALLOC`, `GSP_RM_CONTROL`, `FREE`).
pub trait Rm {
    /// Allocate `object` of `class` under `parent` in `client`'s tree with `params`.
    ///
    /// # Errors
    /// [`GpuError::Device`] for an RM failure (NV_STATUS), [`GpuError::ContextLost`] when the
    /// gsp restarted.
    fn rm_alloc(
        &mut self,
        client: u32,
        parent: u32,
        object: u32,
        class: u32,
        params: &[u8],
    ) -> Result<(), GpuError>;
    /// Run control `cmd` on `object`; `params` are sent and overwritten with RM's reply.
    ///
    /// # Errors
    /// As [`Rm::rm_alloc`].
    fn rm_control(
        &mut self,
        client: u32,
        object: u32,
        cmd: u32,
        params: &mut [u8],
    ) -> Result<(), GpuError>;
    /// Free `object` (and its subtree).
    ///
    /// # Errors
    /// As [`Rm::rm_alloc`].
    fn rm_free(&mut self, client: u32, parent: u32, object: u32) -> Result<(), GpuError>;
}

/// Whose pool a DMA buffer comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// gpu-server's own pool (`gpu_dma`): page tables and other kernel objects.
    Server,
    /// A client's pool (`clientN_dma`), for its GART BOs, so only that client can map them.
    Client(ClientId),
}

/// A DMA buffer as alloc-server granted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaBuf {
    /// alloc-server's handle.
    pub handle: u64,
    /// Offset in the pool.
    pub offset: u64,
    /// Device (physical) address.
    pub dev_addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// DMA memory, through alloc-server (zeroed when granted, reclaimed when a PD restarts).
pub trait Dma {
    /// Allocate `size` bytes aligned to `align` from `pool`.
    ///
    /// # Errors
    /// [`GpuError::NoMemory`] when the pool or quota is exhausted.
    fn dma_alloc(&mut self, pool: Pool, size: u64, align: u64) -> Result<DmaBuf, GpuError>;
    /// Give a buffer back (alloc-server checks the handle and the offset together).
    ///
    /// # Errors
    /// [`GpuError::NotFound`] for a buffer alloc-server doesn't know.
    fn dma_free(&mut self, pool: Pool, buf: DmaBuf) -> Result<(), GpuError>;
}
