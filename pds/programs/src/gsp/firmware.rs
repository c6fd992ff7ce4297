//! The `gsp_fw` region: what it holds and how the gsp and model PDs read it.
//!
//! The region holds a *firmware pack*: a [`PackHeader`] at offset 0, then the GSP ELF
//! (`gsp-570.144.bin`) and the RISC-V bootloader (`bootloader-570.144.bin`) of one chip, each at
//! a page-aligned offset the header names, and a line saying where the files came from. Who
//! writes it: on seL4 the Microkit tool (`prefill_path`); in hosted mode the runtime
//! (`hosted --prefill gsp_fw=FILE`; `cargo xtask run` packs the real files from `target/firmware`
//! when `.ci/fetch-firmware` fetched them); and when the region is empty at start the GPU model
//! PD writes its synthetic image into it ([`crate::gsp_model`]), so the system boots on a machine
//! without NVIDIA's firmware package. Nothing writes the region after that.
//!
//! This is a designated `unsafe` module (house rule 13, `fw`): [`region_bytes`] turns the region
//! into an ordinary byte slice, which the ELF parser and the model need (the GSP image is 60 MiB;
//! there is no room to copy it).
//!
//! Trust: the pack comes from the platform's loader; every offset and length in the header is
//! checked against the region before a slice is taken, and the files themselves are parsed by
//! `gsp::elf`, which checks everything again.
#![allow(unsafe_code)]

use crate::sys::RegionDecl;
use core::mem::{offset_of, size_of};
/// The firmware version the pack's files must be (`gsp-<version>.bin`, `bootloader-<version>.bin`).
pub use gsp::boot::FIRMWARE_VERSION;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `GSPFWPK1`: a firmware pack of this layout.
pub const MAGIC: [u8; 8] = *b"GSPFWPK1";
/// Files start on this boundary (the ELF parser needs 8-byte alignment; pages are kinder).
pub const ALIGN: usize = 0x1000;

/// The pack header (our own format; this file is its only definition).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PackHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// Offset of the GSP ELF.
    pub gsp_offset: u64,
    /// Its length.
    pub gsp_len: u64,
    /// Offset of the bootloader.
    pub bootloader_offset: u64,
    /// Its length.
    pub bootloader_len: u64,
    /// The chip the files are for, NUL-padded (`ga102`).
    pub chip: [u8; 16],
    /// Where the files came from, NUL-padded (a path, or `synthetic ...`).
    pub origin: [u8; 72],
}

// Our own layout, pinned here (writers: xtask and the model PD; readers: gsp and the model).
const _: () = assert!(size_of::<PackHeader>() == 128);
const _: () = assert!(offset_of!(PackHeader, gsp_offset) == 8);
const _: () = assert!(offset_of!(PackHeader, bootloader_offset) == 24);
const _: () = assert!(offset_of!(PackHeader, chip) == 40);
const _: () = assert!(offset_of!(PackHeader, origin) == 56);

/// Why a pack could not be read or written. Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PackError {
    /// The region starts with zeros: nobody put firmware there.
    Empty = 1,
    /// The region holds something else.
    BadMagic = 2,
    /// A file lies (partly) outside the region, or overlaps the header or the other file.
    OutOfBounds = 3,
    /// A file offset is not [`ALIGN`]ed.
    Misaligned = 4,
    /// The files do not fit the destination.
    TooLarge = 5,
}

impl core::fmt::Display for PackError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty (no firmware was loaded into it)",
            Self::BadMagic => "not a firmware pack",
            Self::OutOfBounds => "a file lies outside the region",
            Self::Misaligned => "a file is not page aligned",
            Self::TooLarge => "the files do not fit",
        })
    }
}

/// Where the files go in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Offset of the GSP ELF.
    pub gsp: usize,
    /// Its length.
    pub gsp_len: usize,
    /// Offset of the bootloader.
    pub bootloader: usize,
    /// Bytes of the whole pack.
    pub total: usize,
}

impl Layout {
    /// The layout of a pack of a `gsp_len`-byte ELF and a `bootloader_len`-byte bootloader.
    ///
    /// # Errors
    /// [`PackError::TooLarge`] when it would not fit `capacity` bytes.
    pub fn new(gsp_len: usize, bootloader_len: usize, capacity: usize) -> Result<Self, PackError> {
        let gsp = ALIGN;
        let bootloader = gsp
            .checked_add(gsp_len)
            .and_then(|e| e.checked_next_multiple_of(ALIGN))
            .ok_or(PackError::TooLarge)?;
        let total = bootloader
            .checked_add(bootloader_len)
            .filter(|&t| t <= capacity)
            .ok_or(PackError::TooLarge)?;
        Ok(Self {
            gsp,
            gsp_len,
            bootloader,
            total,
        })
    }

    /// The header for this layout.
    pub fn header(&self, chip: &str, origin: &str) -> PackHeader {
        // CAST: usize to u64 is lossless.
        PackHeader {
            magic: MAGIC,
            gsp_offset: self.gsp as u64,
            gsp_len: self.gsp_len as u64,
            bootloader_offset: self.bootloader as u64,
            bootloader_len: (self.total - self.bootloader) as u64,
            chip: text(chip),
            origin: text(origin),
        }
    }
}

/// `s` NUL-padded (cut to fit, keeping a final NUL).
fn text<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (d, b) in out.iter_mut().take(N.saturating_sub(1)).zip(s.bytes()) {
        *d = b;
    }
    out
}

/// A NUL-padded field as text (`?` for bytes that are not UTF-8).
pub fn field(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes
        .get(..end)
        .and_then(|b| core::str::from_utf8(b).ok())
        .unwrap_or("?")
}

/// Write a pack of `gsp` and `bootloader` into `dst`; returns its length.
///
/// # Errors
/// [`PackError::TooLarge`].
pub fn write(
    dst: &mut [u8],
    gsp: &[u8],
    bootloader: &[u8],
    chip: &str,
    origin: &str,
) -> Result<usize, PackError> {
    let sizes = (gsp.len(), bootloader.len());
    write_in_place(dst, sizes, chip, origin, |g, b| {
        g.copy_from_slice(gsp);
        b.copy_from_slice(bootloader);
        Ok(())
    })
}

/// Write a pack whose files `fill` writes in place (given the ELF's and the bootloader's
/// destinations, `sizes.0` and `sizes.1` bytes); returns its length. The rest of the pack is
/// zeroed.
///
/// # Errors
/// [`PackError::TooLarge`], or `fill`'s error.
pub fn write_in_place(
    dst: &mut [u8],
    sizes: (usize, usize),
    chip: &str,
    origin: &str,
    fill: impl FnOnce(&mut [u8], &mut [u8]) -> Result<(), PackError>,
) -> Result<usize, PackError> {
    let l = Layout::new(sizes.0, sizes.1, dst.len())?;
    let out = dst.get_mut(..l.total).ok_or(PackError::TooLarge)?;
    out.fill(0);
    let (head, bootloader) = out.split_at_mut(l.bootloader);
    let gsp = head
        .get_mut(l.gsp..l.gsp + l.gsp_len)
        .ok_or(PackError::TooLarge)?;
    fill(gsp, bootloader)?;
    head.get_mut(..size_of::<PackHeader>())
        .ok_or(PackError::TooLarge)?
        .copy_from_slice(l.header(chip, origin).as_bytes());
    Ok(l.total)
}

/// A pack, read.
#[derive(Clone, Copy, Debug)]
pub struct Pack<'a> {
    /// The header.
    pub header: PackHeader,
    /// The GSP ELF.
    pub gsp: &'a [u8],
    /// The bootloader.
    pub bootloader: &'a [u8],
}

impl Pack<'_> {
    /// The chip the files are for.
    pub fn chip(&self) -> &str {
        field(&self.header.chip)
    }

    /// Where the files came from.
    pub fn origin(&self) -> &str {
        field(&self.header.origin)
    }
}

/// Read the pack in `bytes`.
///
/// # Errors
/// [`PackError::Empty`], [`PackError::BadMagic`], [`PackError::OutOfBounds`],
/// [`PackError::Misaligned`].
pub fn read(bytes: &[u8]) -> Result<Pack<'_>, PackError> {
    let (header, _) = PackHeader::read_from_prefix(bytes).map_err(|_| PackError::OutOfBounds)?;
    if header.magic != MAGIC {
        return Err(if header.magic == [0; 8] {
            PackError::Empty
        } else {
            PackError::BadMagic
        });
    }
    let file = |offset: u64, len: u64| -> Result<core::ops::Range<usize>, PackError> {
        let start = usize::try_from(offset).map_err(|_| PackError::OutOfBounds)?;
        let len = usize::try_from(len).map_err(|_| PackError::OutOfBounds)?;
        if start % ALIGN != 0 {
            return Err(PackError::Misaligned);
        }
        let end = start.checked_add(len).ok_or(PackError::OutOfBounds)?;
        if start < size_of::<PackHeader>() || end > bytes.len() {
            return Err(PackError::OutOfBounds);
        }
        Ok(start..end)
    };
    let g = file(header.gsp_offset, header.gsp_len)?;
    let b = file(header.bootloader_offset, header.bootloader_len)?;
    if g.start < b.end && b.start < g.end {
        return Err(PackError::OutOfBounds);
    }
    Ok(Pack {
        header,
        gsp: bytes.get(g).ok_or(PackError::OutOfBounds)?,
        bootloader: bytes.get(b).ok_or(PackError::OutOfBounds)?,
    })
}

/// The bytes of `decl` (this PD's mapping of `gsp_fw`) as a slice, or an empty slice (logged)
/// when the declaration cannot be a mapping of this PD.
///
/// Sound because nothing writes the region while a slice exists: the loader fills it before
/// any PD runs, or the model PD fills it in its `init` before it answers its first PPC; the
/// model is never restarted (an unsupervised device), and the gsp PD takes its slice only
/// after the model has answered one (the PPC orders the model's writes before it).
pub fn region_bytes(decl: RegionDecl) -> &'static [u8] {
    match (usize::try_from(decl.vaddr), usize::try_from(decl.size)) {
        (Ok(base), Ok(len)) if base != 0 && base % ALIGN == 0 => {
            // CAST: an address the platform mapped the region at.
            let ptr = base as *const u8;
            // SAFETY: the platform maps `decl` at `vaddr..vaddr+size` for the PD's whole life
            // (`crate::regions`), the base is non-null and aligned, and no one writes the
            // region while the slice lives (see above).
            unsafe { core::slice::from_raw_parts(ptr, len) }
        }
        _ => {
            log::error!(
                "region {} at {:#x} cannot be read here",
                decl.name,
                decl.vaddr
            );
            &[]
        }
    }
}

/// `decl` (the model PD's writable mapping of `gsp_fw`) as a mutable slice, for writing the
/// synthetic pack in the model's `init`. `None` (logged) when the mapping is not writable.
///
/// Sound as [`region_bytes`]: the model's `init` is the only writer, runs before any PD may read
/// the region, and drops the slice before it returns.
pub fn region_bytes_mut(decl: RegionDecl) -> Option<&'static mut [u8]> {
    match (usize::try_from(decl.vaddr), usize::try_from(decl.size)) {
        (Ok(base), Ok(len)) if decl.writable && base != 0 && base % ALIGN == 0 => {
            // CAST: an address the platform mapped the region at.
            let ptr = base as *mut u8;
            // SAFETY: mapped writable at `vaddr..vaddr+size` for the PD's life; the model PD
            // calls this once, in `init`, before any other PD can look at the region.
            Some(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
        }
        _ => {
            log::error!("region {} is not writable here", decl.name);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn a_pack_round_trips_and_every_bad_header_is_refused() {
        let mut region = vec![0u8; 0x8000];
        assert_eq!(read(&region).err(), Some(PackError::Empty));
        let gsp = [7u8; 0x1234];
        let n = write(&mut region, &gsp, b"boot", "ga102", "test files").unwrap();
        assert_eq!(n, 0x3004);
        let p = read(&region).unwrap();
        assert!(p.gsp == gsp && p.bootloader == b"boot");
        assert_eq!((p.chip(), p.origin()), ("ga102", "test files"));
        // Each field spoiled in turn.
        let spoil = |edit: &dyn Fn(&mut PackHeader)| {
            let mut r = region.clone();
            let (mut h, _) = PackHeader::read_from_prefix(&r).unwrap();
            edit(&mut h);
            r[..128].copy_from_slice(h.as_bytes());
            read(&r).err()
        };
        assert_eq!(spoil(&|h| h.magic[0] = b'X'), Some(PackError::BadMagic));
        assert_eq!(
            spoil(&|h| h.gsp_offset = 0x1008),
            Some(PackError::Misaligned)
        );
        assert_eq!(spoil(&|h| h.gsp_offset = 0), Some(PackError::OutOfBounds));
        assert_eq!(spoil(&|h| h.gsp_len = 0x7001), Some(PackError::OutOfBounds));
        assert_eq!(
            spoil(&|h| h.gsp_len = u64::MAX),
            Some(PackError::OutOfBounds)
        );
        assert_eq!(
            spoil(&|h| h.bootloader_offset = 0x2000),
            Some(PackError::OutOfBounds)
        );
        assert_eq!(read(&region[..100]).err(), Some(PackError::OutOfBounds));
        // Too large for the destination; long names are cut, not overflowed.
        assert_eq!(
            write(&mut [0u8; 0x2000], &gsp, b"boot", "x", "y"),
            Err(PackError::TooLarge)
        );
        let long = "o".repeat(200);
        write(&mut region, &gsp, b"b", &long, &long).unwrap();
        let p = read(&region).unwrap();
        assert_eq!((p.chip().len(), p.origin().len()), (15, 71));
    }
}
