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

    /// Copy `dst.len()` bytes out of the region at `offset`, as [`Region::read_bytes`], and
    /// return the [`xor_words`] of the bytes copied: each byte is read from the region once, and
    /// the value returned is computed from exactly the bytes that landed in `dst` (a receiver
    /// that copies, then checks a checksum, checks what it will use).
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] when the span leaves the region (nothing is copied).
    pub fn read_bytes_xor(&self, offset: usize, dst: &mut [u8]) -> Result<u64, RegionError> {
        let src = self.check(offset, dst.len())?;
        fence(Ordering::Acquire);
        // SAFETY: src..src+len is inside the mapping (checked); dst is a distinct Rust buffer of
        // that length.
        Ok(unsafe { xor::run::<true>(src, dst.as_mut_ptr(), dst.len()) })
    }

    /// The [`xor_words`] of `len` bytes of the region at `offset`, read once, in place, copied
    /// nowhere (a device that reads a message where it lies, over DMA, to validate it).
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] when the span leaves the region.
    pub fn xor_bytes(&self, offset: usize, len: usize) -> Result<u64, RegionError> {
        let src = self.check(offset, len)?;
        fence(Ordering::Acquire);
        // SAFETY: src..src+len is inside the mapping (checked); nothing is written.
        Ok(unsafe { xor::run::<false>(src, core::ptr::null_mut(), len) })
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

    /// Copy `src` into the region at `offset`, as [`Region::write_bytes`], and return the
    /// [`xor_words`] of `src`: one pass over the bytes instead of a copy and a checksum.
    ///
    /// # Errors
    /// [`RegionError::OutOfBounds`] when the span leaves the region (nothing is written).
    pub fn write_bytes_xor(&self, offset: usize, src: &[u8]) -> Result<u64, RegionError> {
        let dst = self.check(offset, src.len())?;
        // SAFETY: dst..dst+len is inside the mapping (checked); src is a distinct Rust buffer of
        // that length.
        let x = unsafe { xor::run::<true>(src.as_ptr(), dst, src.len()) };
        fence(Ordering::Release);
        Ok(x)
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

/// The XOR of `bytes` taken as little-endian `u64` words from its start: byte `i` lands in bits
/// `8 * (i % 8)`, a short last word is zero-padded. The same value [`Region::read_bytes_xor`],
/// [`Region::write_bytes_xor`] and [`Region::xor_bytes`] return for what they copy or read.
///
/// Bytes that sit at word phase `p` of a longer stream (their first byte at a stream offset with
/// `offset % 8 == p`) contribute `xor_words(bytes).rotate_left(8 * p)` to the stream's value:
/// that is how a checksum over a whole message is put together from pieces copied separately.
pub fn xor_words(bytes: &[u8]) -> u64 {
    // SAFETY: `bytes` is readable for its length; nothing is written.
    unsafe { xor::run::<false>(bytes.as_ptr(), core::ptr::null_mut(), bytes.len()) }
}

/// The one kernel behind [`xor_words`] and the fused region copies: read each byte once, store
/// it (when copying) and fold it into independent accumulators (a single running XOR would be
/// a serial dependency chain; 128 bytes of lanes per step keep up with the loads). x86_64 with SSE2
/// picks the widest vectors the CPU has; elsewhere the portable kernel works in aligned words
/// (NEON assembly on aarch64). rust-sel4's x86_64 targets are soft-float, with SSE off, and get
/// the portable kernel too.
mod xor {
    /// Bytes per main-loop block.
    const BLOCK: usize = 128;

    /// XOR (and with `COPY`, copy to `dst`) `len` bytes from `src`; the value of
    /// [`super::xor_words`].
    ///
    /// # Safety
    /// `src` is readable for `len` bytes; with `COPY`, `dst` is writable for `len` bytes and
    /// does not overlap `src` (without `COPY`, `dst` is not used).
    pub(super) unsafe fn run<const COPY: bool>(src: *const u8, dst: *mut u8, len: usize) -> u64 {
        if len < 2 * BLOCK {
            // Headers and small messages: not worth a vector setup.
            // SAFETY: the caller's contract.
            return u64::from_le(unsafe { words::<COPY>(src, dst, len) });
        }
        // Align the stores (without COPY, the loads) to a cache line, the widest vector: an
        // access that splits a cache line costs about two, and ring payloads start at odd
        // multiples of 8.
        let anchor = if COPY { dst as usize } else { src as usize };
        let head = (anchor.wrapping_neg() % 64).min(len);
        let body = (len - head) - (len - head) % BLOCK;
        let (mid, tail) = (head, head + body);
        // SAFETY: the three spans [0, head), [head, tail), [tail, len) are inside both buffers
        // (caller); `dst` is only offset with `wrapping_add` (it may be null without COPY).
        let (x_head, x_rest) = unsafe {
            (
                words::<COPY>(src, dst, head),
                blocks::<COPY>(src.add(mid), dst.wrapping_add(mid), body)
                    ^ words::<COPY>(src.add(tail), dst.wrapping_add(tail), len - tail),
            )
        };
        // The words were loaded native-endian (XOR commutes with the byte swap); the rest
        // starts at word phase `head % 8` (body is a multiple of 8).
        // CAST: head % 8 < 8.
        u64::from_le(x_head) ^ u64::from_le(x_rest).rotate_left(8 * (head % 8) as u32)
    }

    /// Whole words, then a zero-padded last word, as a native-endian XOR from phase 0.
    ///
    /// # Safety
    /// As [`run`].
    unsafe fn words<const COPY: bool>(src: *const u8, dst: *mut u8, len: usize) -> u64 {
        let mut x = 0;
        let mut i = 0;
        while i + 8 <= len {
            // SAFETY: i + 8 <= len, inside both buffers.
            unsafe {
                let w = core::ptr::read_unaligned(src.add(i).cast::<u64>());
                if COPY {
                    core::ptr::write_unaligned(dst.add(i).cast::<u64>(), w);
                }
                x ^= w;
            }
            i += 8;
        }
        // `i` is a multiple of 8, so the tail's byte k is the last word's byte k.
        let mut w = [0u8; 8];
        for (k, b) in w.iter_mut().take(len - i).enumerate() {
            // SAFETY: i + k < len, inside both buffers.
            unsafe {
                *b = src.add(i + k).read();
                if COPY {
                    dst.add(i + k).write(*b);
                }
            }
        }
        x ^ u64::from_ne_bytes(w)
    }

    /// `len` (a multiple of [`BLOCK`]) bytes with the widest kernel this CPU runs.
    ///
    /// # Safety
    /// As [`run`].
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    unsafe fn blocks<const COPY: bool>(src: *const u8, dst: *mut u8, len: usize) -> u64 {
        match cpu::level() {
            // SAFETY: the CPU and the OS support AVX-512F (checked); the caller's contract.
            cpu::Level::Avx512 => unsafe { blocks_avx512::<COPY>(src, dst, len) },
            // SAFETY: the CPU and the OS support AVX2 (checked); the caller's contract.
            cpu::Level::Avx2 => unsafe { blocks_avx2::<COPY>(src, dst, len) },
            // SAFETY: the caller's contract.
            cpu::Level::Sse2 => unsafe { blocks_sse2::<COPY>(src, dst, len) },
        }
    }

    /// A kernel over `len` (a multiple of [`BLOCK`]) bytes in vectors of type `$v`: per vector
    /// one load, with `COPY` one store, and an XOR into one of `BLOCK / size_of::<$v>()`
    /// independent accumulators.
    ///
    /// # Safety (of the generated function)
    /// As [`run`], and the CPU must have the function's target features.
    macro_rules! kernel {
        ($(#[$attr:meta])* $name:ident: $v:ty, $load:path, $store:path, $xor:path) => {
            $(#[$attr])*
            pub(super) unsafe fn $name<const COPY: bool>(
                src: *const u8,
                dst: *mut u8,
                len: usize,
            ) -> u64 {
                const W: usize = core::mem::size_of::<$v>();
                // SAFETY: all-zero bits are a valid vector.
                let mut acc: [$v; BLOCK / W] = [unsafe { core::mem::zeroed() }; BLOCK / W];
                let mut i = 0;
                while i < len {
                    for (k, a) in acc.iter_mut().enumerate() {
                        // SAFETY: i + W * (k + 1) <= len: in bounds of both buffers (caller);
                        // the accesses may be unaligned; the target features are there (caller).
                        unsafe {
                            let v = $load(src.add(i + W * k).cast::<$v>());
                            if COPY {
                                $store(dst.add(i + W * k).cast::<$v>(), v);
                            }
                            *a = $xor(*a, v);
                        }
                    }
                    i += BLOCK;
                }
                let mut out = [0u64; W / 8];
                // SAFETY: `out` is W writable bytes; the target features are there (caller).
                unsafe {
                    let mut v = core::mem::zeroed();
                    for &a in &acc {
                        v = $xor(v, a);
                    }
                    $store(out.as_mut_ptr().cast::<$v>(), v);
                }
                out.iter().fold(0, |s, w| s ^ w)
            }
        };
    }

    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    use core::arch::x86_64::{
        __m128i, __m256i, __m512i, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_xor_si256,
        _mm512_loadu_si512, _mm512_storeu_si512, _mm512_xor_si512, _mm_loadu_si128,
        _mm_storeu_si128, _mm_xor_si128,
    };

    kernel!(
        /// AVX-512F: what glibc's `memcpy` uses where the CPU has it, so the fused copy keeps
        /// pace with the `memcpy` it is measured against (`cargo xtask bench gspq`).
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        #[target_feature(enable = "avx512f")]
        blocks_avx512: __m512i, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_xor_si512
    );
    kernel!(
        /// AVX2: reading from L2 it moves twice the bytes per load of SSE2 (validating a 256 KiB
        /// payload in place is 25% faster).
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        #[target_feature(enable = "avx2")]
        blocks_avx2: __m256i, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_xor_si256
    );
    kernel!(
        /// SSE2, which every x86_64 CPU has.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        blocks_sse2: __m128i, _mm_loadu_si128, _mm_storeu_si128, _mm_xor_si128
    );

    /// Plain `u64`s, only ever accessed aligned: the kernel elsewhere, and the reference the
    /// vector ones are tested against. rust-sel4's aarch64 target has `+strict-align`, where an
    /// unaligned `u64` access compiles to eight byte accesses and shifts (a 256 KiB RPC cost
    /// seven instructions a byte). `run` (the outer one) aligns the anchor to a cache line; when
    /// the source is at another word phase than the destination, `memcpy` (which shifts whole
    /// words into place) copies a chunk and the checksum is taken from the aligned copy.
    #[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
    pub(super) mod portable {
        #[cfg(not(target_arch = "aarch64"))]
        use super::BLOCK;
        #[cfg(not(target_arch = "aarch64"))]
        use core::ops::BitXor;

        kernel!(
            /// Plain `u64`s, aligned: the main loop of [`run`].
            #[cfg(not(target_arch = "aarch64"))]
            aligned: u64, core::ptr::read, core::ptr::write, u64::bitxor
        );

        #[cfg(target_arch = "aarch64")]
        use neon::aligned;

        /// The main loop of [`run`] on aarch64, in assembly: under `+strict-align` LLVM splits
        /// every vector access it cannot prove 16-byte aligned into byte accesses, and its
        /// auto-vectorised `u64` loop goes through the stack. `LD1`/`ST1` of `.2d` elements need
        /// only 8-byte alignment (the element size), which [`run`] guarantees.
        #[cfg(target_arch = "aarch64")]
        mod neon {
            use core::arch::asm;

            /// As the `kernel!` functions, 64 bytes a step in four 128-bit accumulators.
            ///
            /// # Safety
            /// As [`super::super::run`]; `len` is a multiple of 64; `src` (and with `COPY`,
            /// `dst`) is 8-byte aligned.
            pub(super) unsafe fn aligned<const COPY: bool>(
                src: *const u8,
                dst: *mut u8,
                len: usize,
            ) -> u64 {
                if len == 0 {
                    return 0;
                }
                let (lo, hi): (u64, u64);
                // The loop, with `COPY` a store after each load.
                macro_rules! xor_loop {
                    ($($store:literal)?; $($operand:tt)*) => {
                        asm!(
                            "movi v4.2d, #0", "movi v5.2d, #0", "movi v6.2d, #0", "movi v7.2d, #0",
                            "2:",
                            "ld1 {{v0.2d, v1.2d, v2.2d, v3.2d}}, [{src}], #64",
                            $($store,)?
                            "eor v4.16b, v4.16b, v0.16b", "eor v5.16b, v5.16b, v1.16b",
                            "eor v6.16b, v6.16b, v2.16b", "eor v7.16b, v7.16b, v3.16b",
                            "subs {n}, {n}, #64",
                            "b.ne 2b",
                            "eor v4.16b, v4.16b, v5.16b", "eor v6.16b, v6.16b, v7.16b",
                            "eor v4.16b, v4.16b, v6.16b",
                            "mov {lo}, v4.d[0]", "mov {hi}, v4.d[1]",
                            src = inout(reg) src => _, n = inout(reg) len => _,
                            lo = out(reg) lo, hi = out(reg) hi,
                            $($operand)*
                            out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                            out("v4") _, out("v5") _, out("v6") _, out("v7") _,
                            options(nostack),
                        )
                    };
                }
                // SAFETY: the loop reads (and with COPY writes) exactly `len` bytes from `src` (to
                // `dst`), in bounds and aligned as the caller promised; it touches no stack and only
                // the registers named.
                unsafe {
                    if COPY {
                        xor_loop!("st1 {{v0.2d, v1.2d, v2.2d, v3.2d}}, [{dst}], #64"; dst = inout(reg) dst => _,);
                    } else {
                        xor_loop!(;);
                    }
                }
                lo ^ hi
            }
        }

        /// Bytes [`run`] copies with `memcpy` before checksumming them where they landed, when
        /// source and destination are at different word phases: a multiple of
        /// [`super::BLOCK`], and small enough that the copy is still in the cache when it is
        /// read back.
        const CHUNK: usize = 1024;

        /// `len` (a multiple of [`super::BLOCK`]) bytes, as [`super::run`]'s main part.
        ///
        /// # Safety
        /// As [`super::run`], and the anchor (`dst` with `COPY`, else `src`) is 8-byte aligned.
        pub(in super::super) unsafe fn run<const COPY: bool>(
            src: *const u8,
            dst: *mut u8,
            len: usize,
        ) -> u64 {
            if !COPY || (src as usize) % 8 == (dst as usize) % 8 {
                // SAFETY: both pointers are 8-byte aligned (the anchor by the caller, the other at
                // the same phase); the caller's contract.
                return unsafe { aligned::<COPY>(src, dst, len) };
            }
            let mut x = 0;
            let mut at = 0;
            while at < len {
                let n = (len - at).min(CHUNK);
                // SAFETY: [at, at + n) is inside both buffers, which do not overlap (caller); the
                // copy at `dst + at` is aligned (the anchor is, `at` is a multiple of BLOCK) and
                // `n` a multiple of BLOCK (`len` and CHUNK are).
                x ^= unsafe {
                    core::ptr::copy_nonoverlapping(src.add(at), dst.add(at), n);
                    aligned::<false>(dst.add(at), core::ptr::null_mut(), n)
                };
                at += n;
            }
            x
        }
    }

    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    use portable::run as blocks;

    /// The widest vectors that may be used, found once with CPUID and XGETBV (as `std`'s
    /// `is_x86_feature_detected!` does, which a `no_std` crate cannot use): the CPU must have
    /// them and the OS must save their registers on a switch (XCR0: bits 1-2 for YMM, 5-7 for
    /// ZMM and the mask registers). A kernel that does not enable them (seL4 by default saves
    /// x87 and SSE state only) gets SSE2.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    pub(super) mod cpu {
        use core::arch::x86_64::{__cpuid_count, _xgetbv, CpuidResult};
        use core::sync::atomic::{AtomicU8, Ordering};

        /// A vector width the kernels have.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(in super::super) enum Level {
            Sse2 = 1,
            Avx2 = 2,
            Avx512 = 3,
        }

        /// 0: not looked yet; otherwise a [`Level`].
        static LEVEL: AtomicU8 = AtomicU8::new(0);

        pub(in super::super) fn level() -> Level {
            match LEVEL.load(Ordering::Relaxed) {
                3 => Level::Avx512,
                2 => Level::Avx2,
                1 => Level::Sse2,
                _ => {
                    let found = detect();
                    LEVEL.store(found as u8, Ordering::Relaxed);
                    found
                }
            }
        }

        fn cpuid(leaf: u32) -> CpuidResult {
            // SAFETY: CPUID exists on every x86_64 CPU (safe to call in newer Rust versions).
            #[allow(unused_unsafe)]
            unsafe {
                __cpuid_count(leaf, 0)
            }
        }

        fn detect() -> Level {
            let leaf1 = cpuid(1);
            let (osxsave, avx) = (leaf1.ecx & (1 << 27) != 0, leaf1.ecx & (1 << 28) != 0);
            if !(osxsave && avx) || cpuid(0).eax < 7 {
                return Level::Sse2;
            }
            // SAFETY: OSXSAVE says the OS enabled XSAVE, so XGETBV is available.
            let xcr0 = unsafe { xcr0() };
            let leaf7 = cpuid(7).ebx;
            let (avx2, avx512f) = (leaf7 & (1 << 5) != 0, leaf7 & (1 << 16) != 0);
            match (xcr0 & 0b110 == 0b110, xcr0 & 0b1110_0000 == 0b1110_0000) {
                (true, true) if avx512f => Level::Avx512,
                (true, _) if avx2 => Level::Avx2,
                _ => Level::Sse2,
            }
        }

        /// # Safety
        /// CPUID.1:ECX.OSXSAVE must be set.
        #[target_feature(enable = "xsave")]
        unsafe fn xcr0() -> u64 {
            // SAFETY: the caller checked OSXSAVE.
            unsafe { _xgetbv(0) }
        }
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

    /// The definition: XOR of the little-endian u64 words of the zero-padded bytes.
    fn naive_xor(bytes: &[u8]) -> u64 {
        bytes.chunks(8).fold(0, |x, c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            x ^ u64::from_le_bytes(w)
        })
    }

    fn pattern(n: usize, seed: u64) -> std::vec::Vec<u8> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect()
    }

    #[test]
    fn fused_copies_return_the_word_xor_of_what_they_copied() {
        let mut buf = vec![0u8; 4200];
        let r = region(&mut buf);
        for len in [0, 1, 7, 8, 9, 127, 128, 129, 255, 256, 300, 777, 4099] {
            for offset in [0, 1, 5, 8, 13] {
                let data = pattern(len, (len * 31 + offset) as u64);
                let want = naive_xor(&data);
                r.fill(0, 4200, 0xee).unwrap();
                assert_eq!(r.write_bytes_xor(offset, &data), Ok(want), "{len}@{offset}");
                assert_eq!(r.xor_bytes(offset, len), Ok(want));
                let mut back = vec![0u8; len];
                assert_eq!(r.read_bytes_xor(offset, &mut back), Ok(want));
                assert_eq!(back, data);
                assert_eq!(xor_words(&data), want);
                // Neighbours untouched.
                if offset > 0 {
                    assert_eq!(r.read::<u8>(offset - 1).unwrap(), 0xee);
                }
                assert_eq!(r.read::<u8>(offset + len).unwrap(), 0xee);
            }
        }
    }

    #[test]
    fn fused_copies_check_bounds_and_touch_nothing_outside() {
        let mut buf = vec![7u8; 64];
        let r = region(&mut buf);
        let mut dst = [1u8; 16];
        assert!(matches!(
            r.read_bytes_xor(56, &mut dst),
            Err(RegionError::OutOfBounds { .. })
        ));
        assert_eq!(dst, [1u8; 16]);
        assert!(matches!(
            r.write_bytes_xor(usize::MAX, &[1]),
            Err(RegionError::OutOfBounds { .. })
        ));
        assert!(matches!(
            r.write_bytes_xor(60, &[0; 8]),
            Err(RegionError::OutOfBounds { .. })
        ));
        assert_eq!(r.read::<u64>(56).unwrap(), 0x0707_0707_0707_0707);
        assert!(r.xor_bytes(1, 64).is_err());
        assert_eq!(r.xor_bytes(0, 64), Ok(0));
    }

    #[test]
    fn pieces_at_any_phase_rotate_into_the_whole() {
        let data = pattern(1000, 99);
        let whole = naive_xor(&data);
        for cut in [0, 1, 3, 8, 13, 128, 129, 999, 1000] {
            let (a, b) = data.split_at(cut);
            let phase = (cut % 8) as u32;
            assert_eq!(
                xor_words(a) ^ xor_words(b).rotate_left(8 * phase),
                whole,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn the_portable_kernel_copies_from_every_word_phase() {
        // Sizes around the memcpy chunk; the destination is aligned, as `run` makes it.
        for n in [128, 1024, 1152, 3 * 1024 + 256] {
            for phase in 0..8 {
                let buf = pattern(n + 8, (n + phase) as u64);
                let src = &buf[phase..phase + n];
                let mut dst = vec![0u64; n / 8];
                let out = dst.as_mut_ptr().cast::<u8>();
                // SAFETY: `src` is n readable bytes, `dst` n writable ones, 8-byte aligned,
                // in another buffer.
                let x = unsafe { xor::portable::run::<true>(src.as_ptr(), out, n) };
                assert_eq!(u64::from_le(x), naive_xor(src), "n {n} phase {phase}");
                assert_eq!(dst.as_bytes(), src, "n {n} phase {phase}");
            }
        }
    }

    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[test]
    fn vector_kernels_match_the_portable_one() {
        for seed in 1..50u64 {
            let n = 128 * (seed as usize % 9);
            let src = pattern(n, seed);
            let (mut d1, mut d2, mut d3) = (vec![0u8; n], vec![0u8; n], vec![0u8; n]);
            // SAFETY: distinct buffers of n bytes each.
            let (x1, x2) = unsafe {
                (
                    xor::portable::run::<true>(src.as_ptr(), d1.as_mut_ptr(), n),
                    xor::blocks_sse2::<true>(src.as_ptr(), d2.as_mut_ptr(), n),
                )
            };
            assert_eq!((x1, &d1), (x2, &d2));
            assert_eq!(u64::from_le(x1), naive_xor(&src));
            let level = xor::cpu::level();
            if level != xor::cpu::Level::Sse2 {
                // SAFETY: as above; AVX2 is supported (checked).
                let x3 = unsafe { xor::blocks_avx2::<true>(src.as_ptr(), d3.as_mut_ptr(), n) };
                assert_eq!((x1, &d1), (x3, &d3));
            }
            if level == xor::cpu::Level::Avx512 {
                d3.fill(0);
                // SAFETY: as above; AVX-512F is supported (checked).
                let x4 = unsafe { xor::blocks_avx512::<true>(src.as_ptr(), d3.as_mut_ptr(), n) };
                assert_eq!((x1, &d1), (x4, &d3));
            }
        }
    }
}
