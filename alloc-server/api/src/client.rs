//! The typed client stub: RAII DMA buffers whose drop returns them.
//!
//! # Why drop queues instead of freeing
//! Returning a buffer is a PPC, and a PPC needs the `&mut dyn Kernel` that only an event handler
//! holds; `Drop::drop` has none. So a dropped buffer pushes its `(handle, offset)` onto a fixed
//! [`FreeList`], and the client sends the queued frees at the start of its next call (every
//! method of [`DmaClient`] flushes first) or when the server code calls [`DmaClient::flush`] (a
//! good habit at the end of each `protected`/`notified`). [`DmaBuffer::free`] returns a buffer at once
//! and reports the server's answer.
//!
//! The free list lives outside the client, usually in a `static` of the PD (it is `Sync`: its
//! slots are atomics), so a server struct can own both its [`DmaClient`] and its buffers without
//! borrowing itself. It never overflows: a client refuses a new buffer ([`DmaError::FreeListFull`])
//! while as many are outstanding (live or queued) as the list has slots. A buffer that is
//! `mem::forget`-ten stays allocated until its holder is reclaimed.
//!
//! Rejected designs: a guard that borrows the client for the buffer's lifetime (a server could no
//! longer keep the client and its buffers in one struct); freeing in `drop` through a global
//! kernel handle (there is none on seL4, and it would hide a blocking call in a destructor).
//!
//! # Restarts (house rule 11)
//! Allocation is not idempotent, so the stub never retries: a call that fails with
//! [`DmaError::Ipc`] (`PeerFaulted`) is reported. After alloc-server restarts, every handle from
//! before is stale and the pools were scrubbed: the caller must rebuild what it kept in DMA memory.
//! Queued frees of such handles are answered `StaleHandle` and dropped from the list by `flush`.

use crate::cache::{self, Coherence};
use crate::wire::{Allocation, ClientUsage, PoolUsage, Reply, Request};
use crate::{AllocError, ClientId, DmaError, DmaHandle, PoolId};
use core::marker::PhantomData;
use core::mem::{size_of, ManuallyDrop};
use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use pd_core::shm::{ReadWrite, Region, RegionError};
use pd_core::{Channel, Kernel};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// One queued free.
#[derive(Debug)]
pub struct FreeSlot {
    state: AtomicU8,
    handle: AtomicU64,
    offset: AtomicU64,
}

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const FULL: u8 = 2;

impl FreeSlot {
    const fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            handle: AtomicU64::new(0),
            offset: AtomicU64::new(0),
        }
    }
}

/// One request to alloc-server over `ch` and its decoded reply (no free list involved).
///
/// # Errors
/// [`DmaError::Ipc`], [`DmaError::Server`] with the server's refusal, [`DmaError::BadReply`] for
/// a malformed reply.
pub fn call(k: &mut dyn Kernel, ch: Channel, req: Request) -> Result<Reply, DmaError> {
    let info = req.encode(k.mrs());
    let reply = k.ppcall(ch, info)?;
    Reply::decode(req.opcode(), reply, k.mrs())
        .map_err(|e| e.map_or(DmaError::BadReply, DmaError::Server))
}

/// Ask alloc-server over `ch` for `size` bytes of `pool` aligned to `align`: the grant. A reply
/// that arrives garbled (its check word does not match) is [`DmaError::BadReply`], and the grant
/// the server may have made is abandoned, so it is neither used nor lost. Every client of
/// alloc-server allocates through this, with or without a [`DmaClient`].
///
/// # Errors
/// As [`call`].
pub fn grant(
    k: &mut dyn Kernel,
    ch: Channel,
    pool: PoolId,
    size: u64,
    align: u64,
) -> Result<Allocation, DmaError> {
    match call(k, ch, Request::Alloc { pool, size, align }) {
        Ok(Reply::Allocated(a)) => Ok(a),
        Ok(_) | Err(DmaError::BadReply) => {
            abandon(k, ch);
            Err(DmaError::BadReply)
        }
        Err(e) => Err(e),
    }
}

/// A grant's reply was garbled: have the server take the grant back, if it made one (the
/// handle in the reply cannot be trusted, so the free path cannot return it).
fn abandon(k: &mut dyn Kernel, ch: Channel) {
    match call(k, ch, Request::Abandon) {
        Ok(_) => log::warn!("{}: alloc's grant came garbled; abandoned", k.pd_name()),
        Err(DmaError::Server(AllocError::NothingToAbandon)) => {}
        Err(e) => log::error!(
            "{}: alloc's grant came garbled; abandoning it failed: {e}",
            k.pd_name()
        ),
    }
}

/// Where dropped buffers wait to be returned: `FreeList<[FreeSlot; N]>` in a `static`, used as
/// `&FreeList` (the unsized form) by clients and buffers.
#[derive(Debug)]
pub struct FreeList<S: ?Sized = [FreeSlot]> {
    /// Buffers live or queued, at most the number of slots.
    outstanding: AtomicUsize,
    slots: S,
}

impl<const N: usize> FreeList<[FreeSlot; N]> {
    /// An empty list of `N` slots: the most buffers the client may have outstanding at once.
    pub const fn new() -> Self {
        Self {
            outstanding: AtomicUsize::new(0),
            slots: [const { FreeSlot::new() }; N],
        }
    }
}

/// The sized list (a `static`) offers the methods of the unsized one every client holds.
impl<const N: usize> core::ops::Deref for FreeList<[FreeSlot; N]> {
    type Target = FreeList;

    fn deref(&self) -> &FreeList {
        self
    }
}

impl<const N: usize> Default for FreeList<[FreeSlot; N]> {
    fn default() -> Self {
        Self::new()
    }
}

impl FreeList {
    /// Buffers live or waiting in the list.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Frees waiting for the next flush.
    pub fn queued(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state.load(Ordering::Acquire) == FULL)
            .count()
    }

    /// Count one more outstanding buffer, if a slot is guaranteed for its eventual drop.
    fn reserve(&self) -> Result<(), DmaError> {
        let cap = self.slots.len();
        self.outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .map(drop)
            .map_err(|_| DmaError::FreeListFull)
    }

    /// One outstanding buffer is gone for good (freed, refused, or never granted).
    fn unreserve(&self) {
        let _ = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Queue a free. Cannot fail while every outstanding buffer was reserved (at most one slot per
    /// outstanding buffer); should it ever, the buffer stays allocated until its holder restarts.
    fn push(&self, a: &Allocation) {
        for slot in &self.slots {
            if slot
                .state
                .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                slot.handle.store(a.handle.raw(), Ordering::Relaxed);
                slot.offset.store(a.offset, Ordering::Relaxed);
                slot.state.store(FULL, Ordering::Release);
                return;
            }
        }
        log::error!(
            "alloc-api: free list full, buffer {:#x} stays allocated until its holder restarts",
            a.handle.raw()
        );
    }
}

/// The caller's own mapping of a pool: its id, the CPU view of the whole pool, and whether DMA is
/// coherent on this board. Built by the PD glue from `system.xml` (region vaddr and size).
#[derive(Debug)]
pub struct MappedPool {
    /// The pool's id at alloc-server.
    pub id: PoolId,
    /// The caller's read-write view of the whole pool.
    pub view: Region<ReadWrite>,
    /// The board's DMA coherence (see [`crate::cache`]).
    pub coherence: Coherence,
}

/// A typed client of alloc-server over one channel.
#[derive(Debug)]
pub struct DmaClient<'q> {
    ch: Channel,
    frees: &'q FreeList,
}

/// What [`DmaClient::flush`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Buffers the server took back.
    pub freed: usize,
    /// Queued handles the server refused (stale after a server restart, reclaimed): dropped.
    pub rejected: usize,
}

impl<'q> DmaClient<'q> {
    /// A client calling alloc-server over `ch`, queuing dropped buffers on `frees`.
    pub const fn new(ch: Channel, frees: &'q FreeList) -> Self {
        Self { ch, frees }
    }

    fn call(&mut self, k: &mut dyn Kernel, req: Request) -> Result<Reply, DmaError> {
        call(k, self.ch, req)
    }

    /// Send every queued free.
    ///
    /// # Errors
    /// [`DmaError::Ipc`] when a call fails; that free and the ones after it stay queued. A free
    /// the server refuses is not an error here (the handle is dead either way): it is counted in
    /// [`FlushReport::rejected`] and logged.
    pub fn flush(&mut self, k: &mut dyn Kernel) -> Result<FlushReport, DmaError> {
        let mut report = FlushReport::default();
        let frees = self.frees;
        for slot in &frees.slots {
            if slot.state.load(Ordering::Acquire) != FULL {
                continue;
            }
            let handle = DmaHandle::from_raw(slot.handle.load(Ordering::Relaxed));
            let offset = slot.offset.load(Ordering::Relaxed);
            match self.call(k, Request::Free { handle, offset }) {
                Err(DmaError::Ipc(e)) => return Err(DmaError::Ipc(e)),
                Ok(_) => report.freed += 1,
                Err(e) => {
                    log::warn!(
                        "{}: queued free of {:#x} refused by alloc: {e}",
                        k.pd_name(),
                        handle.raw()
                    );
                    report.rejected += 1;
                }
            }
            slot.state.store(EMPTY, Ordering::Release);
            frees.unreserve();
        }
        Ok(report)
    }

    /// Flush, then allocate `size` bytes from `pool` (the common path of every allocation).
    fn alloc_raw(
        &mut self,
        k: &mut dyn Kernel,
        pool: PoolId,
        size: u64,
        align: u64,
    ) -> Result<RawBuffer<'q>, DmaError> {
        self.flush(k)?;
        self.frees.reserve()?;
        let a = grant(k, self.ch, pool, size, align).inspect_err(|_| self.frees.unreserve())?;
        let raw = RawBuffer {
            alloc: a,
            pool,
            frees: self.frees,
        };
        // A reply smaller than asked or misaligned is a broken server; the drop queues its free.
        if a.size < size || a.device_addr % align.max(1) != 0 {
            return Err(DmaError::BadReply);
        }
        Ok(raw)
    }

    /// Allocate one `T` in the caller's own pool, aligned to `align` bytes on the device side
    /// (0 = a page).
    ///
    /// # Errors
    /// [`DmaError::Server`] with the server's refusal (quota, no memory, bad alignment, pool
    /// not granted, ...), [`DmaError::Ipc`], [`DmaError::FreeListFull`], or
    /// [`DmaError::BadReply`] when the server's answer is inconsistent (the buffer is returned).
    pub fn alloc<T: FromBytes + IntoBytes + Immutable>(
        &mut self,
        k: &mut dyn Kernel,
        pool: &MappedPool,
        align: u64,
    ) -> Result<DmaBuffer<'q, T>, DmaError> {
        self.alloc_mapped(k, pool, size_of::<T>(), 1, align)
    }

    /// Allocate `len` consecutive `T`s in the caller's own pool.
    ///
    /// # Errors
    /// As [`DmaClient::alloc`]; `Server(BadSize)` without a call when the size overflows.
    pub fn alloc_slice<T: FromBytes + IntoBytes + Immutable>(
        &mut self,
        k: &mut dyn Kernel,
        pool: &MappedPool,
        len: usize,
        align: u64,
    ) -> Result<DmaBuffer<'q, [T]>, DmaError> {
        let bytes = size_of::<T>()
            .checked_mul(len)
            .ok_or(DmaError::Server(AllocError::BadSize))?;
        self.alloc_mapped(k, pool, bytes, len, align)
    }

    fn alloc_mapped<T: ?Sized>(
        &mut self,
        k: &mut dyn Kernel,
        pool: &MappedPool,
        bytes: usize,
        len: usize,
        align: u64,
    ) -> Result<DmaBuffer<'q, T>, DmaError> {
        // CAST: usize is at most 64 bits on every target.
        let raw = self.alloc_raw(k, pool.id, bytes as u64, align)?;
        let view = usize::try_from(raw.alloc.offset)
            .ok()
            .zip(usize::try_from(raw.alloc.size).ok())
            .and_then(|(off, size)| pool.view.subregion(off, size).ok())
            .ok_or(DmaError::BadReply)?;
        Ok(DmaBuffer {
            raw,
            view,
            coherence: pool.coherence,
            len,
            _type: PhantomData,
        })
    }

    /// Allocate `size` bytes in a pool the caller does not map, on behalf of the pool's owner
    /// (gpu-server's GART buffers for a client: the owner maps them, the device reaches them).
    ///
    /// # Errors
    /// As [`DmaClient::alloc`].
    pub fn alloc_for(
        &mut self,
        k: &mut dyn Kernel,
        pool: PoolId,
        size: u64,
        align: u64,
    ) -> Result<DelegatedBuffer<'q>, DmaError> {
        Ok(DelegatedBuffer(self.alloc_raw(k, pool, size, align)?))
    }

    /// Usage of a pool the caller may allocate from (after flushing, so dropped buffers are gone).
    ///
    /// # Errors
    /// [`DmaError::Server`] (`NoSuchPool`, `NotGranted`) or [`DmaError::Ipc`].
    pub fn pool_usage(&mut self, k: &mut dyn Kernel, pool: PoolId) -> Result<PoolUsage, DmaError> {
        self.flush(k)?;
        match self.call(k, Request::PoolUsage { pool })? {
            Reply::Pool(u) => Ok(u),
            _ => Err(DmaError::BadReply),
        }
    }

    /// Totals of a client (`None`: the caller), which must be the caller or the owner of a pool
    /// the caller may allocate from.
    ///
    /// # Errors
    /// [`DmaError::Server`] (`NoSuchClient`, `NotGranted`) or [`DmaError::Ipc`].
    pub fn client_usage(
        &mut self,
        k: &mut dyn Kernel,
        client: Option<ClientId>,
    ) -> Result<ClientUsage, DmaError> {
        self.flush(k)?;
        match self.call(k, Request::ClientUsage { client })? {
            Reply::Client(u) => Ok(u),
            _ => Err(DmaError::BadReply),
        }
    }
}

/// The part every buffer kind shares: the grant, and the list its drop returns it to.
#[derive(Debug)]
struct RawBuffer<'q> {
    alloc: Allocation,
    pool: PoolId,
    frees: &'q FreeList,
}

impl RawBuffer<'_> {
    fn free(self, client: &mut DmaClient<'_>, k: &mut dyn Kernel) -> Result<(), DmaError> {
        let this = ManuallyDrop::new(self);
        let req = Request::Free {
            handle: this.alloc.handle,
            offset: this.alloc.offset,
        };
        match client.call(k, req) {
            // The call did not happen: keep the free queued so nothing is lost.
            Err(DmaError::Ipc(e)) => {
                this.frees.push(&this.alloc);
                Err(DmaError::Ipc(e))
            }
            r => {
                this.frees.unreserve();
                r.map(drop)
            }
        }
    }
}

impl Drop for RawBuffer<'_> {
    fn drop(&mut self) {
        self.frees.push(&self.alloc);
    }
}

/// A DMA buffer in the caller's own pool, typed as one `T` or a `[T]`, returned on drop.
///
/// The CPU side is a [`Region`] view: values are copied in and out, never borrowed, because the
/// device may write the memory at any time. Call [`DmaBuffer::sync_for_device`] after writing and
/// before telling the device, and [`DmaBuffer::sync_for_cpu`] after the device is done and before
/// reading.
#[derive(Debug)]
pub struct DmaBuffer<'q, T: ?Sized> {
    raw: RawBuffer<'q>,
    view: Region<ReadWrite>,
    coherence: Coherence,
    /// Elements (1 for a single `T`).
    len: usize,
    _type: PhantomData<fn() -> *const T>,
}

impl<T: ?Sized> DmaBuffer<'_, T> {
    /// The grant: handle, offset, device address and (page-rounded) size.
    pub fn allocation(&self) -> Allocation {
        self.raw.alloc
    }

    /// The address the device uses for the first byte.
    pub fn device_addr(&self) -> u64 {
        self.raw.alloc.device_addr
    }

    /// The pool the buffer lives in.
    pub fn pool(&self) -> PoolId {
        self.raw.pool
    }

    /// The whole buffer (page-rounded) as bytes, for ring indices and other atomics.
    pub fn region(&self) -> &Region<ReadWrite> {
        &self.view
    }

    /// Make CPU writes visible to the device (see [`crate::cache`] for what each platform does).
    pub fn sync_for_device(&self) {
        cache::sync_for_device(self.coherence, self.view.vaddr(), self.view.size());
    }

    /// Make device writes visible to the CPU (see [`crate::cache`]).
    pub fn sync_for_cpu(&self) {
        cache::sync_for_cpu(self.coherence, self.view.vaddr(), self.view.size());
    }

    /// Return the buffer now and hear the server's answer (instead of queuing it on drop).
    ///
    /// # Errors
    /// [`DmaError::Server`] when the server refuses (e.g. `Reclaimed` after the owner restarted);
    /// [`DmaError::Ipc`] when the call failed, in which case the free is queued for a later flush.
    pub fn free(self, client: &mut DmaClient<'_>, k: &mut dyn Kernel) -> Result<(), DmaError> {
        self.raw.free(client, k)
    }
}

impl<T: FromBytes + IntoBytes + Immutable> DmaBuffer<'_, T> {
    /// Copy the value out.
    ///
    /// # Errors
    /// Never for a buffer the client built (the view holds a whole `T`); typed for completeness.
    pub fn read(&self) -> Result<T, DmaError> {
        Ok(self.view.read(0)?)
    }

    /// Copy `value` in.
    ///
    /// # Errors
    /// As [`DmaBuffer::read`].
    pub fn write(&self, value: &T) -> Result<(), DmaError> {
        Ok(self.view.write(0, value)?)
    }
}

impl<T: FromBytes + IntoBytes + Immutable> DmaBuffer<'_, [T]> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slice has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Byte offset of elements `first..first+count`, checked against the element count.
    fn span(&self, first: usize, count: usize) -> Result<usize, DmaError> {
        match first.checked_add(count) {
            Some(end) if end <= self.len => Ok(first * size_of::<T>()),
            _ => Err(DmaError::Region(RegionError::OutOfBounds {
                offset: first,
                len: count,
                size: self.len,
            })),
        }
    }

    /// Copy element `i` out.
    ///
    /// # Errors
    /// [`DmaError::Region`] when `i >= len`.
    pub fn get(&self, i: usize) -> Result<T, DmaError> {
        Ok(self.view.read(self.span(i, 1)?)?)
    }

    /// Copy `value` into element `i`.
    ///
    /// # Errors
    /// [`DmaError::Region`] when `i >= len`.
    pub fn set(&self, i: usize, value: &T) -> Result<(), DmaError> {
        Ok(self.view.write(self.span(i, 1)?, value)?)
    }

    /// Copy elements `first..first+dst.len()` out.
    ///
    /// # Errors
    /// [`DmaError::Region`] when the span passes the end.
    pub fn read_into(&self, first: usize, dst: &mut [T]) -> Result<(), DmaError> {
        let at = self.span(first, dst.len())?;
        Ok(self.view.read_bytes(at, dst.as_mut_bytes())?)
    }

    /// Copy `src` into elements `first..first+src.len()`.
    ///
    /// # Errors
    /// [`DmaError::Region`] when the span passes the end.
    pub fn write_from(&self, first: usize, src: &[T]) -> Result<(), DmaError> {
        let at = self.span(first, src.len())?;
        Ok(self.view.write_bytes(at, src.as_bytes())?)
    }
}

/// A buffer allocated in someone else's pool on their behalf (no CPU view here), returned on drop.
#[derive(Debug)]
pub struct DelegatedBuffer<'q>(RawBuffer<'q>);

impl DelegatedBuffer<'_> {
    /// The grant: the owner finds the buffer at `offset` in its own mapping of the pool; the
    /// device at `device_addr`.
    pub fn allocation(&self) -> Allocation {
        self.0.alloc
    }

    /// The pool the buffer lives in.
    pub fn pool(&self) -> PoolId {
        self.0.pool
    }

    /// Return the buffer now (see [`DmaBuffer::free`]).
    ///
    /// # Errors
    /// As [`DmaBuffer::free`].
    pub fn free(self, client: &mut DmaClient<'_>, k: &mut dyn Kernel) -> Result<(), DmaError> {
        self.0.free(client, k)
    }
}
