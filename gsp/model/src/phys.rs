//! Physical memory as the simulated GPU reaches it: system memory by bus address (DMA) and its
//! own framebuffer (VRAM) by FB offset, each a table of windows `(physical base, Region)`.
//!
//! The platform supplies the table and that is the whole translation: in-process tests give
//! buffers with made-up bases, hosted mode gives the runtime's fake physical bases of the DMA
//! regions mapped into the model PD, and on seL4 the bases come from `setvar region_paddr`. The
//! model never dereferences an address the driver wrote; it looks it up here, and an address
//! outside every window is a DMA (or MMU) fault reported as [`PhysError`].
//!
//! The framebuffer is built from the `vram` and `clientN_vram` regions, packed from FB offset 0
//! in the order given ([`FbLayout`]); the FB size the GSP reports may be larger, and the
//! unbacked rest faults like any other unmapped address.
use gsp::mmu::{PageTableMemory, Target};
use pd_core::shm::{ReadWrite, Region};

/// Why a physical access failed. Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PhysError {
    /// No window backs `addr..addr+len` (in `target`).
    Unbacked {
        /// The aperture that was accessed.
        target: Target,
        /// First byte of the access.
        addr: u64,
        /// Its length.
        len: u64,
    } = 1,
    /// A new window overlaps an existing one, or wraps the address space.
    Overlap {
        /// Base of the refused window.
        base: u64,
    } = 2,
    /// The window table is full.
    TableFull = 3,
}

impl core::fmt::Display for PhysError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unbacked { target, addr, len } => {
                write!(
                    f,
                    "{target:?} access {addr:#x}+{len:#x} hits no backed window"
                )
            }
            Self::Overlap { base } => write!(f, "window at {base:#x} overlaps another"),
            Self::TableFull => write!(f, "window table full"),
        }
    }
}

/// One backed window.
#[derive(Debug)]
struct Window {
    base: u64,
    region: Region<ReadWrite>,
}

impl Window {
    fn end(&self) -> u64 {
        // CAST: usize to u64 is lossless on the 32- and 64-bit targets we build.
        self.base.saturating_add(self.region.size() as u64)
    }
}

/// A table of up to `N` non-overlapping windows in one address space.
#[derive(Debug)]
pub struct PhysMap<const N: usize> {
    target: Target,
    windows: heapless::Vec<Window, N>,
}

impl<const N: usize> PhysMap<N> {
    /// An empty table for the address space of `target` (used in error reports).
    pub const fn new(target: Target) -> Self {
        Self {
            target,
            windows: heapless::Vec::new(),
        }
    }

    /// Back `base..base+region.size()` with `region`.
    ///
    /// # Errors
    /// [`PhysError::Overlap`] when it overlaps a window or wraps, [`PhysError::TableFull`].
    pub fn add(&mut self, base: u64, region: Region<ReadWrite>) -> Result<(), PhysError> {
        // CAST: usize to u64 is lossless.
        let end = base
            .checked_add(region.size() as u64)
            .ok_or(PhysError::Overlap { base })?;
        if self.windows.iter().any(|w| base < w.end() && w.base < end) {
            return Err(PhysError::Overlap { base });
        }
        self.windows
            .push(Window { base, region })
            .map_err(|_| PhysError::TableFull)
    }

    /// The window holding `addr`, and the offset of `addr` in it.
    fn find(&self, addr: u64) -> Option<(&Window, u64)> {
        self.windows
            .iter()
            .find(|w| addr >= w.base && addr < w.end())
            .map(|w| (w, addr - w.base))
    }

    /// Run `f(window, offset_in_window, range_in_buffer)` over the windows that back
    /// `addr..addr+len`, in order; fails before touching anything if any byte is unbacked.
    fn span(
        &self,
        addr: u64,
        len: usize,
        mut f: impl FnMut(&Region<ReadWrite>, usize, core::ops::Range<usize>),
    ) -> Result<(), PhysError> {
        // CAST: usize to u64 is lossless.
        let unbacked = PhysError::Unbacked {
            target: self.target,
            addr,
            len: len as u64,
        };
        let mut pieces: heapless::Vec<(usize, usize, core::ops::Range<usize>), N> =
            heapless::Vec::new();
        let mut done = 0usize;
        while done < len {
            // CAST: usize to u64 is lossless.
            let at = addr.checked_add(done as u64).ok_or(unbacked)?;
            let (i, off) = self
                .windows
                .iter()
                .position(|w| at >= w.base && at < w.end())
                .and_then(|i| Some((i, at - self.windows.get(i)?.base)))
                .ok_or(unbacked)?;
            let w = self.windows.get(i).ok_or(unbacked)?;
            // CAST: both operands are bounded by the window size, a usize.
            let n = ((w.end() - at) as usize).min(len - done);
            // CAST: off < window size, a usize.
            pieces
                .push((i, off as usize, done..done + n))
                .map_err(|_| unbacked)?;
            done += n;
        }
        for (i, off, range) in pieces {
            if let Some(w) = self.windows.get(i) {
                f(&w.region, off, range);
            }
        }
        Ok(())
    }

    /// Copy `buf.len()` bytes from physical `addr`.
    ///
    /// # Errors
    /// [`PhysError::Unbacked`] when any byte lies outside every window.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), PhysError> {
        let len = buf.len();
        self.span(addr, len, |region, off, range| {
            if let Some(dst) = buf.get_mut(range) {
                // In bounds by construction of `span`; a failure cannot happen and is ignored.
                let _ = region.read_bytes(off, dst);
            }
        })
    }

    /// Copy `buf` to physical `addr`.
    ///
    /// # Errors
    /// [`PhysError::Unbacked`] when any byte lies outside every window (nothing is written).
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), PhysError> {
        self.span(addr, buf.len(), |region, off, range| {
            if let Some(src) = buf.get(range) {
                let _ = region.write_bytes(off, src);
            }
        })
    }

    /// The region view of `addr..addr+len` when a single window backs all of it (for the
    /// message queues, which the queue code reads through a `Region`).
    ///
    /// # Errors
    /// [`PhysError::Unbacked`] when the span is not inside one window.
    pub fn subregion(&self, addr: u64, len: usize) -> Result<Region<ReadWrite>, PhysError> {
        // CAST: usize to u64 is lossless.
        let unbacked = PhysError::Unbacked {
            target: self.target,
            addr,
            len: len as u64,
        };
        let (w, off) = self.find(addr).ok_or(unbacked)?;
        // CAST: off < window size, a usize.
        w.region.subregion(off as usize, len).map_err(|_| unbacked)
    }

    /// Whether every byte of `addr..addr+len` is backed.
    pub fn is_backed(&self, addr: u64, len: u64) -> bool {
        let mut at = addr;
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        while at < end {
            match self.find(at) {
                Some((w, _)) => at = w.end(),
                None => return false,
            }
        }
        true
    }

    /// The windows as `(base, size)`, in the order they were added.
    pub fn windows(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        // CAST: usize to u64 is lossless.
        self.windows
            .iter()
            .map(|w| (w.base, w.region.size() as u64))
    }
}

/// Windows of system memory the model can reach (the DMA regions of `system.xml`).
pub const SYS_WINDOWS: usize = 8;
/// Windows of framebuffer backing (`vram` plus three `clientN_vram`).
pub const FB_WINDOWS: usize = 8;

/// How the framebuffer is backed: the regions packed from FB offset 0 in the order given, and
/// the size the GSP reports (at least the backed total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbLayout {
    /// The FB size reported in `GspStaticConfigInfo::fb_length` and the FB registers.
    pub reported_size: u64,
}

impl FbLayout {
    /// The layout the hosted system uses: 24 GiB reported, the first 112 MiB backed by `vram`
    /// (FB 0x0000000), `client0_vram` (0x4000000), `client1_vram` (0x5000000) and
    /// `client2_vram` (0x6000000) — their sizes in `system.xml` decide the offsets.
    pub const HOSTED: Self = Self {
        reported_size: 24 << 30,
    };
}

/// Everything the GPU can address physically.
#[derive(Debug)]
pub struct Memory {
    /// System memory, by bus address.
    pub sys: PhysMap<SYS_WINDOWS>,
    /// The framebuffer, by FB offset.
    pub fb: PhysMap<FB_WINDOWS>,
    /// The size the GSP reports for the FB.
    pub fb_size: u64,
}

impl Memory {
    /// Empty system memory and a framebuffer of `layout.reported_size` with nothing backed.
    pub const fn new(layout: FbLayout) -> Self {
        Self {
            sys: PhysMap::new(Target::SysCoherent),
            fb: PhysMap::new(Target::Vram),
            fb_size: layout.reported_size,
        }
    }

    /// System memory from `(bus address, region)` windows and a framebuffer packed from `vram`
    /// in order (the PD glue passes the DMA and VRAM regions `system.xml` maps into the model).
    ///
    /// # Errors
    /// As [`PhysMap::add`] and [`Memory::add_vram`].
    pub fn from_regions(
        layout: FbLayout,
        sys: impl IntoIterator<Item = (u64, Region<ReadWrite>)>,
        vram: impl IntoIterator<Item = Region<ReadWrite>>,
    ) -> Result<Self, PhysError> {
        let mut m = Self::new(layout);
        for (base, r) in sys {
            m.sys.add(base, r)?;
        }
        for r in vram {
            m.add_vram(r)?;
        }
        Ok(m)
    }

    /// Back the next FB range with `region`, packed after the previous ones; returns its FB
    /// offset.
    ///
    /// # Errors
    /// [`PhysError::Overlap`] when it would extend past the reported FB size,
    /// [`PhysError::TableFull`].
    pub fn add_vram(&mut self, region: Region<ReadWrite>) -> Result<u64, PhysError> {
        let base = self.fb.windows().map(|(b, s)| b + s).max().unwrap_or(0);
        // CAST: usize to u64 is lossless.
        if base.saturating_add(region.size() as u64) > self.fb_size {
            return Err(PhysError::Overlap { base });
        }
        self.fb.add(base, region)?;
        Ok(base)
    }

    /// Read bytes from `addr` in `target` (both system apertures are the same memory).
    ///
    /// # Errors
    /// [`PhysError::Unbacked`].
    pub fn read(&self, target: Target, addr: u64, buf: &mut [u8]) -> Result<(), PhysError> {
        match target {
            Target::Vram => self.fb.read(addr, buf),
            Target::SysCoherent | Target::SysNonCoherent => self.sys.read(addr, buf),
        }
    }

    /// Write bytes to `addr` in `target`.
    ///
    /// # Errors
    /// [`PhysError::Unbacked`] (nothing written).
    pub fn write(&self, target: Target, addr: u64, buf: &[u8]) -> Result<(), PhysError> {
        match target {
            Target::Vram => self.fb.write(addr, buf),
            Target::SysCoherent | Target::SysNonCoherent => self.sys.write(addr, buf),
        }
    }

    /// Read a little-endian `u32`.
    ///
    /// # Errors
    /// [`PhysError::Unbacked`].
    pub fn read_u32(&self, target: Target, addr: u64) -> Result<u32, PhysError> {
        let mut b = [0u8; 4];
        self.read(target, addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Write a little-endian `u32`.
    ///
    /// # Errors
    /// [`PhysError::Unbacked`].
    pub fn write_u32(&self, target: Target, addr: u64, v: u32) -> Result<(), PhysError> {
        self.write(target, addr, &v.to_le_bytes())
    }
}

impl PageTableMemory for &Memory {
    type Error = PhysError;

    fn read_u64(&mut self, target: Target, addr: u64) -> Result<u64, PhysError> {
        let mut b = [0u8; 8];
        self.read(target, addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    pub(crate) fn leak(len: usize) -> Region<ReadWrite> {
        Region::from_static(vec![0u8; len].leak())
    }

    #[test]
    fn reads_and_writes_span_adjacent_windows_and_fault_outside() {
        let mut m: PhysMap<4> = PhysMap::new(Target::SysCoherent);
        m.add(0x1000, leak(0x1000)).unwrap();
        m.add(0x2000, leak(0x1000)).unwrap();
        m.add(0x8000, leak(0x1000)).unwrap();
        m.write(0x1ffe, &[1, 2, 3, 4]).unwrap();
        let mut b = [0u8; 4];
        m.read(0x1ffe, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        // A span with a hole faults and writes nothing.
        assert_eq!(
            m.write(0x2ffe, &[9; 4]),
            Err(PhysError::Unbacked {
                target: Target::SysCoherent,
                addr: 0x2ffe,
                len: 4
            })
        );
        m.read(0x2ffe, &mut b[..2]).unwrap();
        assert_eq!(&b[..2], &[0, 0]);
        assert!(m.read(u64::MAX - 1, &mut b).is_err());
        assert!(m.is_backed(0x1000, 0x2000) && !m.is_backed(0x1000, 0x2001));
        assert_eq!(
            m.add(0x1800, leak(0x10)),
            Err(PhysError::Overlap { base: 0x1800 })
        );
        assert_eq!(
            m.add(u64::MAX - 4, leak(0x10)),
            Err(PhysError::Overlap { base: u64::MAX - 4 })
        );
        m.add(0x9000, leak(0x10)).unwrap();
        assert_eq!(m.add(0xa000, leak(0x10)), Err(PhysError::TableFull));
        assert!(m.subregion(0x1ff0, 0x10).is_ok() && m.subregion(0x1ff0, 0x20).is_err());
    }

    #[test]
    fn memory_from_the_pd_regions() {
        let m = Memory::from_regions(
            FbLayout::HOSTED,
            [(0x4000_0000, leak(0x1000))],
            [leak(0x2000), leak(0x1000)],
        )
        .unwrap();
        assert_eq!(
            m.fb.windows().collect::<std::vec::Vec<_>>(),
            [(0, 0x2000), (0x2000, 0x1000)]
        );
        assert!(m.sys.is_backed(0x4000_0000, 0x1000));
        assert!(
            Memory::from_regions(FbLayout::HOSTED, [(0, leak(16)), (8, leak(16))], []).is_err()
        );
    }

    #[test]
    fn vram_packs_regions_and_stays_inside_reported_size() {
        let mut mem = Memory::new(FbLayout {
            reported_size: 0x3000,
        });
        assert_eq!(mem.add_vram(leak(0x1000)), Ok(0));
        assert_eq!(mem.add_vram(leak(0x1000)), Ok(0x1000));
        assert_eq!(
            mem.add_vram(leak(0x2000)),
            Err(PhysError::Overlap { base: 0x2000 })
        );
        mem.write_u32(Target::Vram, 0x1ffc, 0xdead_beef).unwrap();
        assert_eq!(mem.read_u32(Target::Vram, 0x1ffc), Ok(0xdead_beef));
        // Reported but unbacked FB faults; system memory is a different space.
        assert!(mem.read_u32(Target::Vram, 0x2000).is_err());
        assert!(mem.read_u32(Target::SysNonCoherent, 0x1ffc).is_err());
    }
}
