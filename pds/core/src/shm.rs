//! Typed views of shared memory regions (rust-sel4's `SharedMemoryRef` idea).
//!
//! A region is shared with at least one other, untrusted PD (or a device), so nothing here ever
//! hands out a `&T` or `&[u8]` into it: values are *copied* in and out, once, with the bounds of
//! the region checked first. A peer can change bytes at any time; what we copied is what we check
//! and use (no time-of-check/time-of-use gap). Access rights are in the type: a `Region<ReadOnly>`
//! has no write methods.
#![allow(unsafe_code)]

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{fence, Ordering};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Marker: the region is mapped `r`.
#[derive(Debug, Clone, Copy)]
pub enum ReadOnly {}
/// Marker: the region is mapped `rw`.
#[derive(Debug, Clone, Copy)]
pub enum ReadWrite {}

/// An access right, sealed to [`ReadOnly`] and [`ReadWrite`].
pub trait Access: sealed::Sealed {}
impl Access for ReadOnly {}
impl Access for ReadWrite {}
mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ReadOnly {}
    impl Sealed for super::ReadWrite {}
}

/// Why a region access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// `offset + len` falls outside the region (or overflows).
    OutOfBounds {
        /// Requested offset.
        offset: usize,
        /// Requested length.
        len: usize,
        /// The region's size.
        size: usize,
    },
    /// The offset is not aligned as the access requires.
    Misaligned,
}

impl core::fmt::Display for RegionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::OutOfBounds { offset, len, size } => {
                write!(
                    f,
                    "access {offset:#x}+{len:#x} outside region of {size:#x} bytes"
                )
            }
            Self::Misaligned => write!(f, "misaligned access"),
        }
    }
}

/// A mapped region of `size` bytes at `base`, with access right `A`.
#[derive(Debug)]
pub struct Region<A: Access> {
    base: NonNull<u8>,
    size: usize,
    _access: PhantomData<A>,
}

// SAFETY: a Region is a (pointer, size) pair to memory that stays mapped for the PD's lifetime;
// every access is a bounds-checked copy, so moving the view between threads is sound.
unsafe impl<A: Access> Send for Region<A> {}

impl<A: Access> Region<A> {
    /// A view of `size` bytes at `base`.
    ///
    /// # Safety
    /// `base..base+size` must be mapped (with at least right `A`) for as long as the view lives,
    /// and nothing in this PD may hold a Rust reference into it.
    pub const unsafe fn new(base: NonNull<u8>, size: usize) -> Self {
        Self {
            base,
            size,
            _access: PhantomData,
        }
    }

    /// A second view of the same memory (another PD's mapping, in tests or in the monolithic
    /// composition). Sound because a view never hands out references, only copies.
    pub fn alias(&self) -> Self {
        Self {
            base: self.base,
            size: self.size,
            _access: PhantomData,
        }
    }

    /// The region's size in bytes.
    pub const fn size(&self) -> usize {
        self.size
    }

    /// The address this PD sees the region at.
    pub fn vaddr(&self) -> usize {
        self.base.as_ptr() as usize
    }

    fn check(&self, offset: usize, len: usize) -> Result<*mut u8, RegionError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => {
                // SAFETY: offset + len <= size, so the pointer stays inside the mapping.
                Ok(unsafe { self.base.as_ptr().add(offset) })
            }
            _ => Err(RegionError::OutOfBounds {
                offset,
                len,
                size: self.size,
            }),
        }
    }

    /// Copy `dst.len()` bytes out of the region at `offset`.
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] when the span leaves the region.
    pub fn read_bytes(&self, offset: usize, dst: &mut [u8]) -> Result<(), RegionError> {
        let src = self.check(offset, dst.len())?;
        fence(Ordering::Acquire);
        // SAFETY: src..src+len is inside the mapping (checked); dst is a distinct Rust buffer.
        unsafe { core::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Copy a `T` out of the region at `offset` (any alignment).
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] when the value would leave the region.
    pub fn read<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T, RegionError> {
        let mut v = T::new_zeroed();
        self.read_bytes(offset, v.as_mut_bytes())?;
        Ok(v)
    }

    /// Atomically load the aligned `u32` at `offset` (ring indices, doorbells, futex words).
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] or [`RegionError::Misaligned`].
    pub fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, RegionError> {
        Ok(self.atomic_u32(offset)?.load(order))
    }

    /// Atomically load the aligned `u64` at `offset`.
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] or [`RegionError::Misaligned`].
    pub fn load_u64(&self, offset: usize, order: Ordering) -> Result<u64, RegionError> {
        Ok(self.atomic_u64(offset)?.load(order))
    }

    fn atomic_u32(&self, offset: usize) -> Result<&core::sync::atomic::AtomicU32, RegionError> {
        let p = self.check(offset, 4)?;
        if p.align_offset(4) != 0 {
            return Err(RegionError::Misaligned);
        }
        // SAFETY: in bounds and aligned; atomics tolerate concurrent access by the peer.
        Ok(unsafe { &*(p as *const core::sync::atomic::AtomicU32) })
    }

    fn atomic_u64(&self, offset: usize) -> Result<&core::sync::atomic::AtomicU64, RegionError> {
        let p = self.check(offset, 8)?;
        if p.align_offset(8) != 0 {
            return Err(RegionError::Misaligned);
        }
        // SAFETY: in bounds and aligned; atomics tolerate concurrent access by the peer.
        Ok(unsafe { &*(p as *const core::sync::atomic::AtomicU64) })
    }
}

impl Region<ReadWrite> {
    /// A view of memory this PD owns for good (a static buffer; in tests, a leaked `Vec`).
    pub fn from_static(buf: &'static mut [u8]) -> Self {
        let size = buf.len();
        // SAFETY: the buffer lives forever and the `&'static mut` is consumed, so nothing else in
        // this PD holds a reference into it.
        unsafe { Self::new(NonNull::from(buf).cast(), size) }
    }

    /// Copy `src` into the region at `offset`.
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] when the span leaves the region.
    pub fn write_bytes(&self, offset: usize, src: &[u8]) -> Result<(), RegionError> {
        let dst = self.check(offset, src.len())?;
        // SAFETY: dst..dst+len is inside the mapping (checked); src is a distinct Rust buffer.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        fence(Ordering::Release);
        Ok(())
    }

    /// Copy `value` into the region at `offset` (any alignment).
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] when the value would leave the region.
    pub fn write<T: IntoBytes + Immutable>(
        &self,
        offset: usize,
        value: &T,
    ) -> Result<(), RegionError> {
        self.write_bytes(offset, value.as_bytes())
    }

    /// Fill `len` bytes at `offset` with `byte` (zero-on-free, scrubbing a dirty region).
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] when the span leaves the region.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), RegionError> {
        let dst = self.check(offset, len)?;
        // SAFETY: dst..dst+len is inside the mapping (checked).
        unsafe { core::ptr::write_bytes(dst, byte, len) };
        fence(Ordering::Release);
        Ok(())
    }

    /// Copy `len` bytes inside the region from `src` to `dst` (ranges may overlap).
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] when either span leaves the region.
    pub fn copy_within(&self, src: usize, dst: usize, len: usize) -> Result<(), RegionError> {
        let s = self.check(src, len)?;
        let d = self.check(dst, len)?;
        // SAFETY: both spans are inside the mapping (checked); `copy` allows overlap.
        unsafe { core::ptr::copy(s, d, len) };
        fence(Ordering::Release);
        Ok(())
    }

    /// Atomically store the aligned `u32` at `offset`.
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] or [`RegionError::Misaligned`].
    pub fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), RegionError> {
        self.atomic_u32(offset)?.store(value, order);
        Ok(())
    }

    /// Atomically store the aligned `u64` at `offset`.
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] or [`RegionError::Misaligned`].
    pub fn store_u64(&self, offset: usize, value: u64, order: Ordering) -> Result<(), RegionError> {
        self.atomic_u64(offset)?.store(value, order);
        Ok(())
    }

    /// A read-only view of the same memory (to hand to code that must not write).
    pub fn read_only(&self) -> Region<ReadOnly> {
        Region {
            base: self.base,
            size: self.size,
            _access: PhantomData,
        }
    }

    /// A read-write view of `len` bytes at `offset`.
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] when the span leaves the region.
    pub fn subregion(&self, offset: usize, len: usize) -> Result<Region<ReadWrite>, RegionError> {
        let p = self.check(offset, len)?;
        // PANIC-free: `check` returned a pointer derived from a NonNull base plus an in-bounds
        // offset, which cannot be null.
        let base = NonNull::new(p).ok_or(RegionError::OutOfBounds {
            offset,
            len,
            size: self.size,
        })?;
        Ok(Region {
            base,
            size: len,
            _access: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    fn region(buf: &mut [u8]) -> Region<ReadWrite> {
        // SAFETY: the test buffer outlives the view and is not otherwise borrowed during use.
        unsafe { Region::new(NonNull::new(buf.as_mut_ptr()).unwrap(), buf.len()) }
    }

    #[test]
    fn copies_in_and_out_and_checks_bounds() {
        let mut buf = vec![0u8; 64];
        let r = region(&mut buf);
        r.write(8, &0x1122_3344_5566_7788u64).unwrap();
        assert_eq!(r.read::<u64>(8).unwrap(), 0x1122_3344_5566_7788);
        assert_eq!(r.read::<u32>(9).unwrap(), 0x4455_6677); // little-endian bytes 9..13
        assert!(matches!(
            r.read::<u64>(60),
            Err(RegionError::OutOfBounds { .. })
        ));
        assert!(matches!(
            r.write_bytes(usize::MAX, &[1]),
            Err(RegionError::OutOfBounds { .. })
        ));
        assert_eq!(r.load_u32(4, Ordering::Relaxed), Ok(0));
        assert_eq!(
            r.load_u32(5, Ordering::Relaxed),
            Err(RegionError::Misaligned)
        );
        r.fill(0, 64, 0xff).unwrap();
        assert_eq!(r.read::<u8>(63).unwrap(), 0xff);
        let sub = r.subregion(16, 16).unwrap();
        assert!(sub.read::<u64>(9).is_err());
        assert!(r.subregion(60, 8).is_err());
    }
}
