//! VRAM allocation: the framebuffer ranges the device backs, one buddy allocator per window —
//! the general window for kernel objects and non-mappable BOs, and one per client for its
//! CPU-mappable BOs, so a client can map its own VRAM BOs and nobody else's. Every grant is
//! zeroed before it is handed out (no data crosses owners), through gpu-server's mapping of the
//! window.

use alloc_server::buddy::Buddy;
use gpu_api::GpuError;
use pd_core::shm::{ReadWrite, Region};

/// VRAM page size for BOs.
pub const PAGE: u64 = 0x1000;
/// Allocator bitmap words for the general window (enough for 64 MiB: `Buddy::words_needed`).
pub const MAX_WINDOW_WORDS: usize = 640;
/// Allocator bitmap words for a client window (enough for 16 MiB).
pub const MAX_CLIENT_WORDS: usize = 192;

/// One FB range gpu-server can see and allocate from, with `W` words for the allocator's bitmaps
/// (alloc-server's buddy: one definition of the allocator).
#[derive(Debug)]
pub struct Window<const W: usize> {
    fb_base: u64,
    view: Region<ReadWrite>,
    buddy: Buddy,
    meta: [u64; W],
}

impl<const W: usize> Window<W> {
    /// The FB range at `fb_base` that gpu-server sees through `view`.
    ///
    /// # Errors
    /// [`GpuError::Invalid`] when `W` words cannot track the view's pages.
    pub fn new(fb_base: u64, view: Region<ReadWrite>) -> Result<Self, GpuError> {
        let pages = u32::try_from(view.size() as u64 / PAGE).map_err(|_| GpuError::Invalid)?;
        let mut meta = [0u64; W];
        let buddy = Buddy::new(pages, &mut meta).map_err(|_| GpuError::Invalid)?;
        Ok(Self {
            fb_base,
            view,
            buddy,
            meta,
        })
    }

    /// Grant `size` bytes aligned to `align`, zeroed; returns the FB address.
    ///
    /// # Errors
    /// [`GpuError::NoMemory`], or [`GpuError::Invalid`] for a bad size or alignment.
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<u64, GpuError> {
        let pages = u32::try_from(size.div_ceil(PAGE)).map_err(|_| GpuError::NoMemory)?;
        let align = u32::try_from(align.max(PAGE) / PAGE).map_err(|_| GpuError::Invalid)?;
        let first = self
            .buddy
            .alloc(&mut self.meta, pages, align)
            .map_err(|e| match e {
                alloc_server::buddy::BuddyError::NoSpace => GpuError::NoMemory,
                _ => GpuError::Invalid,
            })?;
        let off = u64::from(first) * PAGE;
        let len = usize::try_from(u64::from(pages) * PAGE).map_err(|_| GpuError::Invalid)?;
        let at = usize::try_from(off).map_err(|_| GpuError::Invalid)?;
        self.view.fill(at, len, 0).map_err(|_| GpuError::Device)?;
        Ok(self.fb_base + off)
    }

    /// Return a grant.
    ///
    /// # Errors
    /// [`GpuError::NotFound`] for a range this window did not grant.
    pub fn free(&mut self, fb: u64, size: u64) -> Result<(), GpuError> {
        let off = fb.checked_sub(self.fb_base).ok_or(GpuError::NotFound)?;
        let first = u32::try_from(off / PAGE).map_err(|_| GpuError::NotFound)?;
        let pages = u32::try_from(size.div_ceil(PAGE)).map_err(|_| GpuError::NotFound)?;
        self.buddy
            .free(&mut self.meta, first, pages)
            .map_err(|_| GpuError::NotFound)
    }

    /// Whether `fb..fb+len` lies in this window.
    pub fn contains(&self, fb: u64, len: u64) -> bool {
        fb >= self.fb_base && fb.saturating_add(len) <= self.fb_base + self.view.size() as u64
    }

    /// Write `bytes` at FB address `fb` (inside the window).
    ///
    /// # Errors
    /// [`GpuError::Invalid`] outside the window.
    pub fn write(&self, fb: u64, bytes: &[u8]) -> Result<(), GpuError> {
        let off = fb
            .checked_sub(self.fb_base)
            .and_then(|o| usize::try_from(o).ok())
            .ok_or(GpuError::Invalid)?;
        self.view
            .write_bytes(off, bytes)
            .map_err(|_| GpuError::Invalid)
    }

    /// Read the `u32` at FB address `fb` (inside the window).
    ///
    /// # Errors
    /// [`GpuError::Invalid`] outside the window.
    pub fn read_u32(&self, fb: u64) -> Result<u32, GpuError> {
        let off = fb
            .checked_sub(self.fb_base)
            .and_then(|o| usize::try_from(o).ok())
            .ok_or(GpuError::Invalid)?;
        self.view.read::<u32>(off).map_err(|_| GpuError::Invalid)
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        u64::from(self.buddy.pages() - self.buddy.free_pages()) * PAGE
    }

    /// The FB base.
    pub fn fb_base(&self) -> u64 {
        self.fb_base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_capacities_cover_the_windows_of_system_xml() {
        assert!(Buddy::words_needed(64 << 20 >> 12) <= MAX_WINDOW_WORDS);
        assert!(Buddy::words_needed(16 << 20 >> 12) <= MAX_CLIENT_WORDS);
    }
}
