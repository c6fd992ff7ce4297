//! `LibosMemoryRegionInitArgument` (570.144) and the LibOS argument page and log buffers.
//!
//! The GSP's boot address (GSP MBOX0/1) is the DMA address of one 4 KiB page holding an array of
//! `LibosMemoryRegionInitArgument`, in this order: LOGINIT, LOGINTR, LOGRM (three 64 KiB log
//! buffers) and RMARGS (`GSP_ARGUMENTS_CACHED`, padded to 4 KiB); the rest of the page is zero
//! (reference sections 1.5 and 4; nova-core `gsp.rs` `Gsp::new`, OpenRM
//! `kgspSetupLibosInitArgs_IMPL`).
//!
//! Each log buffer holds its own page table: a u64 put pointer at offset 0, then the DMA address
//! of each of its 4 KiB pages from offset 8 (nova-core `LogBuffer`). LibOS requires every region
//! to be physically contiguous and a multiple of 4 KiB (nova-core's note on Turing/GA100).
//!
//! Source of the struct: OpenRM 570.144 `src/nvidia/arch/nvalloc/common/inc/libos_init_args.h`,
//! pinned by `gsp_abi_check.c`; unchanged since 535.113.01.

use core::mem::{offset_of, size_of};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::radix3::{DmaWrite, OutOfBounds, PAGE_SIZE};

/// `LIBOS_MEMORY_REGION_NONE`.
pub const LIBOS_MEMORY_REGION_NONE: u8 = 0;
/// `LIBOS_MEMORY_REGION_CONTIGUOUS`.
pub const LIBOS_MEMORY_REGION_CONTIGUOUS: u8 = 1;
/// `LIBOS_MEMORY_REGION_RADIX3`.
pub const LIBOS_MEMORY_REGION_RADIX3: u8 = 2;
/// `LIBOS_MEMORY_REGION_LOC_NONE`.
pub const LIBOS_MEMORY_REGION_LOC_NONE: u8 = 0;
/// `LIBOS_MEMORY_REGION_LOC_SYSMEM`.
pub const LIBOS_MEMORY_REGION_LOC_SYSMEM: u8 = 1;
/// `LIBOS_MEMORY_REGION_LOC_FB`.
pub const LIBOS_MEMORY_REGION_LOC_FB: u8 = 2;

/// One memory region LibOS is told about.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct LibosMemoryRegionInitArgument {
    /// Region name packed by [`id8`].
    pub id8: u64,
    /// DMA address.
    pub pa: u64,
    /// Size in bytes.
    pub size: u64,
    /// `LIBOS_MEMORY_REGION_*` kind.
    pub kind: u8,
    /// `LIBOS_MEMORY_REGION_LOC_*` location.
    pub loc: u8,
    /// Explicit padding (zero).
    pub padding: [u8; 6],
}

// libos_init_args.h; gsp_abi_check.c (570.144) pins size 32 and these offsets.
const _: () = assert!(size_of::<LibosMemoryRegionInitArgument>() == 32);
const _: () = assert!(offset_of!(LibosMemoryRegionInitArgument, id8) == 0);
const _: () = assert!(offset_of!(LibosMemoryRegionInitArgument, pa) == 8);
const _: () = assert!(offset_of!(LibosMemoryRegionInitArgument, size) == 16);
const _: () = assert!(offset_of!(LibosMemoryRegionInitArgument, kind) == 24);
const _: () = assert!(offset_of!(LibosMemoryRegionInitArgument, loc) == 25);

/// A region name as LibOS ids it: up to 8 ASCII bytes packed big-endian into the low bytes
/// (`"RMARGS"` = 0x524d_4152_4753; nova-core `id8`). Longer names keep their last 8 bytes.
pub const fn id8(name: &str) -> u64 {
    let mut rest = name.as_bytes();
    let mut id = 0u64;
    while let [byte, tail @ ..] = rest {
        id = id << 8 | *byte as u64;
        rest = tail;
    }
    id
}

impl LibosMemoryRegionInitArgument {
    /// A physically contiguous system-memory region (what every boot region is).
    pub const fn sysmem(name: &str, pa: u64, size: u64) -> Self {
        Self {
            id8: id8(name),
            pa,
            size,
            kind: LIBOS_MEMORY_REGION_CONTIGUOUS,
            loc: LIBOS_MEMORY_REGION_LOC_SYSMEM,
            padding: [0; 6],
        }
    }
}

/// Pages in each log buffer (nova-core `RM_LOG_BUFFER_NUM_PAGES`).
pub const LOG_BUFFER_PAGES: usize = 16;
/// Bytes in each log buffer.
pub const LOG_BUFFER_SIZE: usize = LOG_BUFFER_PAGES * PAGE_SIZE;
/// Bytes of the RMARGS region (`GSP_ARGUMENTS_CACHED` padded to a page).
pub const RMARGS_SIZE: usize = PAGE_SIZE;
/// The regions, in the order the argument page lists them.
pub const REGION_NAMES: [&str; 4] = ["LOGINIT", "LOGINTR", "LOGRM", "RMARGS"];

/// DMA addresses of the four regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibosRegions {
    /// Init log buffer ([`LOG_BUFFER_SIZE`]).
    pub loginit: u64,
    /// Interrupt log buffer.
    pub logintr: u64,
    /// RM log buffer.
    pub logrm: u64,
    /// `GSP_ARGUMENTS_CACHED` page ([`RMARGS_SIZE`]).
    pub rmargs: u64,
}

/// Why a LibOS structure could not be written.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibosError {
    /// The destination buffer is shorter than the structure.
    BufferTooSmall = 1,
    /// A region's DMA address is not 4 KiB aligned.
    Unaligned = 2,
    /// A page address of the buffer overflows 64 bits.
    AddressOverflow = 3,
}

impl From<OutOfBounds> for LibosError {
    fn from(_: OutOfBounds) -> Self {
        Self::BufferTooSmall
    }
}

fn check_aligned(pa: u64) -> Result<u64, LibosError> {
    if pa & (PAGE_SIZE as u64 - 1) != 0 {
        return Err(LibosError::Unaligned);
    }
    Ok(pa)
}

/// The argument array for `regions`.
///
/// # Errors
/// [`LibosError::Unaligned`] if a region is not page aligned.
pub fn libos_args(
    regions: &LibosRegions,
) -> Result<[LibosMemoryRegionInitArgument; 4], LibosError> {
    let log = LOG_BUFFER_SIZE as u64;
    Ok([
        LibosMemoryRegionInitArgument::sysmem("LOGINIT", check_aligned(regions.loginit)?, log),
        LibosMemoryRegionInitArgument::sysmem("LOGINTR", check_aligned(regions.logintr)?, log),
        LibosMemoryRegionInitArgument::sysmem("LOGRM", check_aligned(regions.logrm)?, log),
        LibosMemoryRegionInitArgument::sysmem(
            "RMARGS",
            check_aligned(regions.rmargs)?,
            RMARGS_SIZE as u64,
        ),
    ])
}

/// Write the LibOS argument page for `regions` into `page` (4 KiB; unused entries zero). Its DMA
/// address is what goes into GSP MBOX0 (low) / MBOX1 (high).
///
/// # Errors
/// [`LibosError::Unaligned`], [`LibosError::BufferTooSmall`].
pub fn write_libos_args<W: DmaWrite + ?Sized>(
    page: &mut W,
    regions: &LibosRegions,
) -> Result<(), LibosError> {
    let args = libos_args(regions)?;
    page.fill_at(0, PAGE_SIZE, 0)?;
    page.write_at(0, args.as_bytes())?;
    Ok(())
}

/// Initialise a log buffer at DMA address `pa`: zero it, put pointer 0, and its page table (the
/// address of each of its 16 pages) from offset 8.
///
/// # Errors
/// [`LibosError::Unaligned`], [`LibosError::AddressOverflow`], [`LibosError::BufferTooSmall`].
pub fn init_log_buffer<W: DmaWrite + ?Sized>(buf: &mut W, pa: u64) -> Result<(), LibosError> {
    check_aligned(pa)?;
    let mut ptes = [0u64; LOG_BUFFER_PAGES];
    for (i, pte) in (0u64..).zip(ptes.iter_mut()) {
        *pte = i
            .checked_mul(PAGE_SIZE as u64)
            .and_then(|off| pa.checked_add(off))
            .ok_or(LibosError::AddressOverflow)?;
    }
    buf.fill_at(0, LOG_BUFFER_SIZE, 0)?;
    buf.write_at(size_of::<u64>(), ptes.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;

    #[test]
    fn id8_packs_names_big_endian() {
        assert_eq!(id8("RMARGS"), 0x524d_4152_4753);
        assert_eq!(id8("LOGINIT"), 0x4c4f_4749_4e49_54);
        assert_eq!(id8("LOGRM"), 0x4c4f_4752_4d);
        assert_eq!(id8(""), 0);
    }

    #[test]
    fn argument_page_golden_bytes() {
        let regions = LibosRegions {
            loginit: 0x1_0000_0000,
            logintr: 0x1_0001_0000,
            logrm: 0x1_0002_0000,
            rmargs: 0x2_0000_0000,
        };
        let mut page = vec![0xffu8; PAGE_SIZE];
        write_libos_args(page.as_mut_slice(), &regions).unwrap();
        let word = |o: usize| u64::from_le_bytes(page[o..o + 8].try_into().unwrap());
        for (i, (name, pa, size)) in [
            ("LOGINIT", regions.loginit, 0x10000),
            ("LOGINTR", regions.logintr, 0x10000),
            ("LOGRM", regions.logrm, 0x10000),
            ("RMARGS", regions.rmargs, 0x1000),
        ]
        .into_iter()
        .enumerate()
        {
            let e = 32 * i;
            assert_eq!(word(e), id8(name), "{name}");
            assert_eq!(word(e + 8), pa);
            assert_eq!(word(e + 16), size);
            assert_eq!(page[e + 24], LIBOS_MEMORY_REGION_CONTIGUOUS);
            assert_eq!(page[e + 25], LIBOS_MEMORY_REGION_LOC_SYSMEM);
            assert!(page[e + 26..e + 32].iter().all(|b| *b == 0));
        }
        assert!(page[128..].iter().all(|b| *b == 0));
        assert_eq!(
            write_libos_args(&mut page[..100], &regions),
            Err(LibosError::BufferTooSmall)
        );
        let odd = LibosRegions {
            logrm: 0x1_0002_0800,
            ..regions
        };
        assert_eq!(
            write_libos_args(page.as_mut_slice(), &odd),
            Err(LibosError::Unaligned)
        );
    }

    #[test]
    fn log_buffer_maps_itself() {
        let mut buf = vec![0x5au8; LOG_BUFFER_SIZE];
        init_log_buffer(buf.as_mut_slice(), 0x4_0000_0000).unwrap();
        let word = |o: usize| u64::from_le_bytes(buf[o..o + 8].try_into().unwrap());
        assert_eq!(word(0), 0);
        for i in 0..16 {
            assert_eq!(word(8 + 8 * i), 0x4_0000_0000 + 0x1000 * i as u64);
        }
        assert!(buf[8 + 16 * 8..].iter().all(|b| *b == 0));
        assert_eq!(
            init_log_buffer(&mut buf[..LOG_BUFFER_SIZE - 1], 0x4_0000_0000),
            Err(LibosError::BufferTooSmall)
        );
        assert_eq!(
            init_log_buffer(buf.as_mut_slice(), 0x4_0000_0010),
            Err(LibosError::Unaligned)
        );
        assert_eq!(
            init_log_buffer(buf.as_mut_slice(), u64::MAX - 0xfff),
            Err(LibosError::AddressOverflow)
        );
    }
}
