//! One DMA pool: its three bases (owner's vaddr, server's mapping, device address), its buddy
//! free-block bitmaps, its counters, and zeroing through the server's read-write view.
//!
//! Invariant: a pool's free memory is zero, except what its owner or the device wrote there
//! itself (both may write anywhere in the region; that only ever affects the owner's own data).
//! It is established by scrubbing the pool's free memory when the server starts (a restarted
//! server finds its regions dirty; buffers it adopted from its journal keep their contents) and
//! the whole pool when the owner is reclaimed, and kept by zeroing every buffer as it is freed.
//! So a buffer is zero when it is handed out and no data crosses owners.

use crate::buddy::{Buddy, BuddyError};
use crate::config::PoolSpec;
use alloc_api::{AllocError, ClientId, PoolId, PoolUsage, PAGE_SIZE};
use pd_core::shm::{ReadWrite, Region};

/// A configured pool.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) name: &'static str,
    pub(crate) owner: ClientId,
    owner_vaddr: u64,
    device_base: u64,
    memory: Region<ReadWrite>,
    /// Where this pool's bitmap words start in the server's shared word array.
    words_start: usize,
    buddy: Buddy,
    pub(crate) live_buffers: u32,
    pub(crate) used_pages: u32,
    allocs: u64,
    releases: u64,
}

impl From<BuddyError> for AllocError {
    fn from(e: BuddyError) -> Self {
        match e {
            BuddyError::NoSpace => Self::OutOfMemory,
            BuddyError::BadRequest => Self::BadSize,
            BuddyError::TooManyPages | BuddyError::NotAllocated | BuddyError::Corrupt => {
                Self::Internal
            }
        }
    }
}

/// Bytes in `pages` pages.
pub(crate) fn bytes(pages: u32) -> u64 {
    u64::from(pages) * PAGE_SIZE
}

impl Pool {
    /// The pool `spec` describes, owned by `owner`, its bitmaps at `words[words_start..]`, all
    /// free but not yet scrubbed ([`Pool::rebuild`] does). The spec was checked by the server's
    /// constructor.
    pub(crate) fn new(
        spec: PoolSpec,
        owner: ClientId,
        words: &mut [u64],
        words_start: usize,
    ) -> Result<Self, BuddyError> {
        let pages = u64::try_from(spec.memory.size())
            .ok()
            .and_then(|size| u32::try_from(size / PAGE_SIZE).ok())
            .ok_or(BuddyError::TooManyPages)?;
        let mine = words
            .get_mut(words_start..)
            .ok_or(BuddyError::TooManyPages)?;
        let buddy = Buddy::new(pages, mine)?;
        Ok(Self {
            name: spec.name,
            owner,
            owner_vaddr: spec.owner_vaddr,
            device_base: spec.device_base,
            memory: spec.memory,
            words_start,
            buddy,
            live_buffers: 0,
            used_pages: 0,
            allocs: 0,
            releases: 0,
        })
    }

    /// Start this life with exactly `used` (first page and pages, ascending, not overlapping)
    /// allocated, counted as this life's allocations, and every other page zeroed.
    pub(crate) fn rebuild(
        &mut self,
        words: &mut [u64],
        used: &[(u32, u32)],
    ) -> Result<(), AllocError> {
        let pages = self.pages();
        self.buddy = Buddy::with_used(pages, self.words(words)?, used.iter().copied())?;
        // CAST: at most MAX_BUFFERS ranges.
        self.live_buffers = used.len() as u32;
        self.used_pages = pages - self.buddy.free_pages();
        self.allocs = u64::from(self.live_buffers);
        self.releases = 0;
        let mut at = 0;
        for &(first, n) in used.iter().chain(core::iter::once(&(pages, 0))) {
            if first > at {
                self.zero(at, first - at)?;
            }
            at = first + n;
        }
        Ok(())
    }

    pub(crate) fn pages(&self) -> u32 {
        self.buddy.pages()
    }

    fn words<'a>(&self, words: &'a mut [u64]) -> Result<&'a mut [u64], AllocError> {
        words
            .get_mut(self.words_start..)
            .ok_or(AllocError::Internal)
    }

    /// Carve `pages` pages aligned to `align_pages`; returns the first page.
    pub(crate) fn alloc(
        &mut self,
        words: &mut [u64],
        pages: u32,
        align_pages: u32,
    ) -> Result<u32, AllocError> {
        let first = self.buddy.alloc(self.words(words)?, pages, align_pages)?;
        self.live_buffers += 1;
        self.used_pages += pages;
        self.allocs += 1;
        Ok(first)
    }

    /// Zero a buffer (unless the caller scrubs the whole pool afterwards) and return its pages.
    pub(crate) fn release(
        &mut self,
        words: &mut [u64],
        first: u32,
        pages: u32,
        zero: bool,
    ) -> Result<(), AllocError> {
        if zero {
            self.zero(first, pages)?;
        }
        self.buddy.free(self.words(words)?, first, pages)?;
        self.live_buffers = self.live_buffers.saturating_sub(1);
        self.used_pages = self.used_pages.saturating_sub(pages);
        self.releases += 1;
        Ok(())
    }

    fn zero(&self, first: u32, pages: u32) -> Result<(), AllocError> {
        let at = usize::try_from(self.offset(first)).map_err(|_| AllocError::Internal)?;
        let len = usize::try_from(bytes(pages)).map_err(|_| AllocError::Internal)?;
        self.memory
            .fill(at, len, 0)
            .map_err(|_| AllocError::Internal)
    }

    /// Zero the whole region (owner reclaimed).
    pub(crate) fn scrub(&self) -> Result<(), AllocError> {
        self.zero(0, self.pages())
    }

    /// Byte offset of `page` in the pool.
    pub(crate) fn offset(&self, page: u32) -> u64 {
        bytes(page)
    }

    /// Device address of `page`.
    pub(crate) fn device_addr(&self, page: u32) -> u64 {
        self.device_base + self.offset(page)
    }

    /// Free pages recounted from the bitmaps, every invariant checked (for the audit).
    pub(crate) fn count_free(&self, words: &[u64]) -> Result<u32, BuddyError> {
        self.buddy
            .count_free(words.get(self.words_start..).ok_or(BuddyError::Corrupt)?)
    }

    pub(crate) fn usage(&self, id: PoolId) -> PoolUsage {
        PoolUsage {
            pool: id.index(),
            owner: self.owner.index(),
            live_buffers: self.live_buffers,
            size: bytes(self.pages()),
            used: bytes(self.used_pages),
            largest_free: bytes(self.buddy.largest_free()),
            device_base: self.device_base,
            owner_vaddr: self.owner_vaddr,
            allocs: self.allocs,
            releases: self.releases,
            ..PoolUsage::default()
        }
    }
}
