//! Radix3 map over the firmware image pages (reference section 2; nova-core `firmware/gsp.rs`,
//! nouveau `nvkm_gsp_radix3_sg`).
//!
//! The GSP bootloader finds `.fwimage` through three levels of 4 KiB pages of little-endian u64
//! DMA addresses: level 0 is one page whose entry 0 points at the level-1 page; level-1 entries
//! point at level-2 pages; level-2 entries point at the image pages, in order. `GspFwWprMeta`
//! carries the level-0 address (`sysmemAddrOfRadix3Elf`) and the image length
//! (`sizeOfRadix3Elf`).
//!
//! One level-1 page maps 512 level-2 pages, i.e. 512 × 512 image pages = 1 GiB; like nouveau we
//! build exactly one and refuse larger images ([`Radix3Error::ImageTooLarge`]; the largest real
//! image, 570.144 GA10x, is 61 MiB), so level 0 never needs a second entry.
//!
//! [`build`] writes the tables into caller-provided pages through [`DmaWrite`] (one buffer:
//! level 0, then level 1, then level 2; see [`Geometry`]); [`walk`] and [`translate`] read a map back through [`DmaRead`], as
//! the GSP model does to fetch the image and tests do to check [`build`]. Page addresses come from
//! a [`PageAddrs`], so image and tables may be scattered over several DMA buffers.

use pd_core::shm::{ReadWrite, Region};

/// GSP page size.
pub const PAGE_SIZE: usize = 4096;
/// [`PAGE_SIZE`] as u64.
const PAGE: u64 = 4096;
/// u64 entries per table page.
pub const ENTRIES_PER_PAGE: usize = PAGE_SIZE / 8;

/// Why a radix3 map could not be built or read.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Radix3Error {
    /// The image is empty.
    EmptyImage = 1,
    /// The image needs more than one level-1 page (over 1 GiB).
    ImageTooLarge = 2,
    /// An address source has fewer pages than the map needs.
    NotEnoughPages = 3,
    /// A page address is not 4 KiB aligned.
    Unaligned = 4,
    /// A buffer is shorter than the pages it must hold.
    BufferTooSmall = 5,
    /// Walking: a table entry could not be read (no memory at that address).
    Unreadable = 6,
    /// Walking: a table entry is not a 4 KiB-aligned address.
    BadEntry = 7,
    /// Translating: the offset lies past the image.
    OutOfImage = 8,
}

/// DMA addresses of the 4 KiB pages of one buffer, in order.
pub trait PageAddrs {
    /// Number of pages.
    fn page_count(&self) -> usize;
    /// Address of page `index`, `None` past the end.
    fn page_addr(&self, index: usize) -> Option<u64>;
}

/// A physically contiguous buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contiguous {
    /// DMA address of page 0.
    pub base: u64,
    /// Number of pages.
    pub pages: usize,
}

impl PageAddrs for Contiguous {
    fn page_count(&self) -> usize {
        self.pages
    }
    fn page_addr(&self, index: usize) -> Option<u64> {
        if index >= self.pages {
            return None;
        }
        u64::try_from(index)
            .ok()?
            .checked_mul(PAGE)?
            .checked_add(self.base)
    }
}

/// An explicit list of page addresses.
impl PageAddrs for [u64] {
    fn page_count(&self) -> usize {
        self.len()
    }
    fn page_addr(&self, index: usize) -> Option<u64> {
        self.get(index).copied()
    }
}

/// How many pages a map over an image of a given length takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Image length in bytes.
    pub image_len: u64,
    /// Image pages (the last one zero-padded).
    pub image_pages: usize,
    /// Level-2 pages (512 image pages each).
    pub level2_pages: usize,
}

impl Geometry {
    /// The geometry of a map over `image_len` bytes.
    ///
    /// # Errors
    /// [`Radix3Error::EmptyImage`], [`Radix3Error::ImageTooLarge`].
    pub fn new(image_len: u64) -> Result<Self, Radix3Error> {
        if image_len == 0 {
            return Err(Radix3Error::EmptyImage);
        }
        let image_pages =
            usize::try_from(image_len.div_ceil(PAGE)).map_err(|_| Radix3Error::ImageTooLarge)?;
        let level2_pages = image_pages.div_ceil(ENTRIES_PER_PAGE);
        if level2_pages > ENTRIES_PER_PAGE {
            return Err(Radix3Error::ImageTooLarge);
        }
        Ok(Self {
            image_len,
            image_pages,
            level2_pages,
        })
    }

    /// Pages of the table buffer [`build`] fills: level 0, level 1, then the level-2 pages.
    pub fn table_pages(&self) -> usize {
        2 + self.level2_pages
    }

    /// Bytes of the image buffer: the image rounded up to whole pages.
    pub fn image_buffer_len(&self) -> usize {
        self.image_pages * PAGE_SIZE
    }
}

/// A built map: what `GspFwWprMeta` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Radix3 {
    /// DMA address of the level-0 page (`sysmemAddrOfRadix3Elf`).
    pub level0: u64,
    /// Image length in bytes (`sizeOfRadix3Elf`).
    pub image_len: u64,
}

/// Write access to a DMA buffer the device will read: a plain slice (tests, benches) or a
/// shared-memory [`Region`] (the gsp PD, which never holds a `&mut [u8]` into shared memory).
/// The only failure is a span outside the buffer.
pub trait DmaWrite {
    /// Copy `bytes` to `offset`.
    ///
    /// # Errors
    /// [`OutOfBounds`] when the span leaves the buffer.
    fn write_at(&mut self, offset: usize, bytes: &[u8]) -> Result<(), OutOfBounds>;
    /// Set `len` bytes at `offset` to `byte`.
    ///
    /// # Errors
    /// [`OutOfBounds`] when the span leaves the buffer.
    fn fill_at(&mut self, offset: usize, len: usize, byte: u8) -> Result<(), OutOfBounds>;
}

/// A [`DmaWrite`] span lay outside its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBounds;

impl DmaWrite for [u8] {
    fn write_at(&mut self, offset: usize, bytes: &[u8]) -> Result<(), OutOfBounds> {
        let end = offset.checked_add(bytes.len()).ok_or(OutOfBounds)?;
        self.get_mut(offset..end)
            .ok_or(OutOfBounds)?
            .copy_from_slice(bytes);
        Ok(())
    }
    fn fill_at(&mut self, offset: usize, len: usize, byte: u8) -> Result<(), OutOfBounds> {
        let end = offset.checked_add(len).ok_or(OutOfBounds)?;
        self.get_mut(offset..end).ok_or(OutOfBounds)?.fill(byte);
        Ok(())
    }
}

impl DmaWrite for Region<ReadWrite> {
    fn write_at(&mut self, offset: usize, bytes: &[u8]) -> Result<(), OutOfBounds> {
        self.write_bytes(offset, bytes).map_err(|_| OutOfBounds)
    }
    fn fill_at(&mut self, offset: usize, len: usize, byte: u8) -> Result<(), OutOfBounds> {
        self.fill(offset, len, byte).map_err(|_| OutOfBounds)
    }
}

impl From<OutOfBounds> for Radix3Error {
    fn from(_: OutOfBounds) -> Self {
        Self::BufferTooSmall
    }
}

/// Copy `image` into its DMA buffer `dst` and zero the rest of the last page.
///
/// # Errors
/// [`Radix3Error::EmptyImage`], [`Radix3Error::ImageTooLarge`], [`Radix3Error::BufferTooSmall`].
pub fn stage_image<W: DmaWrite + ?Sized>(
    image: &[u8],
    dst: &mut W,
) -> Result<Geometry, Radix3Error> {
    let geometry =
        Geometry::new(u64::try_from(image.len()).map_err(|_| Radix3Error::ImageTooLarge)?)?;
    let pad = geometry.image_buffer_len() - image.len();
    // Check the whole span first so a short buffer is left untouched.
    dst.fill_at(image.len(), pad, 0)?;
    dst.write_at(0, image)?;
    Ok(geometry)
}

/// Page `index` of `addrs`, which must exist and be 4 KiB aligned.
fn page<A: PageAddrs + ?Sized>(addrs: &A, index: usize) -> Result<u64, Radix3Error> {
    let addr = addrs.page_addr(index).ok_or(Radix3Error::NotEnoughPages)?;
    if addr & (PAGE - 1) != 0 {
        return Err(Radix3Error::Unaligned);
    }
    Ok(addr)
}

/// Write the entries `addrs(first..first + count)` as table pages starting at page `at` of
/// `tables`, each page assembled locally and zero-padded, then copied out whole.
fn fill_table<W: DmaWrite + ?Sized>(
    tables: &mut W,
    at: usize,
    count: usize,
    addr: impl Fn(usize) -> Result<u64, Radix3Error>,
) -> Result<(), Radix3Error> {
    let mut page_buf = [0u8; PAGE_SIZE];
    let mut index = 0;
    for table_page in 0..count.div_ceil(ENTRIES_PER_PAGE).max(1) {
        page_buf.fill(0);
        for slot in page_buf.chunks_exact_mut(8).take(count - index) {
            slot.copy_from_slice(&addr(index)?.to_le_bytes());
            index += 1;
        }
        tables.write_at((at + table_page) * PAGE_SIZE, &page_buf)?;
    }
    Ok(())
}

/// Build the map of an `image_len`-byte image whose pages are at `image`, writing the tables into
/// `tables` ([`Geometry::table_pages`] pages: level 0, level 1, level 2…) whose pages are at
/// `table_addrs`. Unused entries are zeroed, so `tables` may start dirty.
///
/// # Errors
/// [`Geometry::new`]'s errors; [`Radix3Error::NotEnoughPages`] if `image` or `table_addrs` is
/// short; [`Radix3Error::Unaligned`] for a misaligned page address;
/// [`Radix3Error::BufferTooSmall`] if `tables` is short.
pub fn build<I, W, T>(
    image_len: u64,
    image: &I,
    tables: &mut W,
    table_addrs: &T,
) -> Result<Radix3, Radix3Error>
where
    I: PageAddrs + ?Sized,
    W: DmaWrite + ?Sized,
    T: PageAddrs + ?Sized,
{
    let g = Geometry::new(image_len)?;
    if image.page_count() < g.image_pages || table_addrs.page_count() < g.table_pages() {
        return Err(Radix3Error::NotEnoughPages);
    }
    let level0 = page(table_addrs, 0)?;
    // Fail on a short buffer before writing anything.
    tables.fill_at(g.table_pages() * PAGE_SIZE - 1, 1, 0)?;
    fill_table(tables, 0, 1, |_| page(table_addrs, 1))?;
    fill_table(tables, 1, g.level2_pages, |j| page(table_addrs, 2 + j))?;
    fill_table(tables, 2, g.image_pages, |i| page(image, i))?;
    Ok(Radix3 { level0, image_len })
}

/// Read access to DMA memory by address (the model's view of system memory).
pub trait DmaRead {
    /// The little-endian u64 at `addr`, `None` if no memory is there.
    fn read_u64(&mut self, addr: u64) -> Option<u64>;
}

/// Entry `index` of the table page at `table`: an aligned page address.
fn entry(mem: &mut dyn DmaRead, table: u64, index: usize) -> Result<u64, Radix3Error> {
    let at = u64::try_from(index)
        .ok()
        .and_then(|i| i.checked_mul(8))
        .and_then(|o| o.checked_add(table))
        .ok_or(Radix3Error::Unreadable)?;
    let addr = mem.read_u64(at).ok_or(Radix3Error::Unreadable)?;
    if addr & (PAGE - 1) != 0 {
        return Err(Radix3Error::BadEntry);
    }
    Ok(addr)
}

/// Walk `map` and call `visit(page_index, page_addr)` for every image page, in order. Returns the
/// number of pages visited.
///
/// # Errors
/// [`Geometry::new`]'s errors for the map's length; [`Radix3Error::Unreadable`] or
/// [`Radix3Error::BadEntry`] at the first bad table entry.
pub fn walk(
    mem: &mut dyn DmaRead,
    map: Radix3,
    visit: &mut dyn FnMut(usize, u64),
) -> Result<usize, Radix3Error> {
    let g = Geometry::new(map.image_len)?;
    let level1 = entry(mem, map.level0, 0)?;
    let mut index = 0;
    for j in 0..g.level2_pages {
        let level2 = entry(mem, level1, j)?;
        let in_this = (g.image_pages - index).min(ENTRIES_PER_PAGE);
        for k in 0..in_this {
            visit(index, entry(mem, level2, k)?);
            index += 1;
        }
    }
    Ok(index)
}

/// The DMA address of image byte `offset` under `map`.
///
/// # Errors
/// [`Radix3Error::OutOfImage`] past the image; [`walk`]'s entry errors.
pub fn translate(mem: &mut dyn DmaRead, map: Radix3, offset: u64) -> Result<u64, Radix3Error> {
    Geometry::new(map.image_len)?;
    if offset >= map.image_len {
        return Err(Radix3Error::OutOfImage);
    }
    let page_index = usize::try_from(offset / PAGE).map_err(|_| Radix3Error::OutOfImage)?;
    let level1 = entry(mem, map.level0, 0)?;
    let level2 = entry(mem, level1, page_index / ENTRIES_PER_PAGE)?;
    let page = entry(mem, level2, page_index % ENTRIES_PER_PAGE)?;
    Ok(page + offset % PAGE)
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use std::collections::BTreeMap;
    use std::vec;
    use std::vec::Vec;

    use super::*;

    /// System memory for tests: the table buffer at its page addresses.
    pub(crate) struct TableMem<'a> {
        pub pages: BTreeMap<u64, &'a [u8]>,
    }

    impl<'a> TableMem<'a> {
        pub(crate) fn new<A: PageAddrs + ?Sized>(tables: &'a [u8], addrs: &A) -> Self {
            let pages = tables
                .chunks_exact(PAGE_SIZE)
                .enumerate()
                .map(|(i, p)| (addrs.page_addr(i).unwrap(), p))
                .collect();
            Self { pages }
        }
    }

    impl DmaRead for TableMem<'_> {
        fn read_u64(&mut self, addr: u64) -> Option<u64> {
            let page = self.pages.get(&(addr & !(PAGE - 1)))?;
            let off = usize::try_from(addr % PAGE).ok()?;
            Some(u64::from_le_bytes(page.get(off..off + 8)?.try_into().ok()?))
        }
    }

    /// Build over `len` bytes with image pages `image` and check the walk returns them.
    fn roundtrip<A: PageAddrs + ?Sized>(len: u64, image: &A) -> Vec<u64> {
        let g = Geometry::new(len).unwrap();
        let table_addrs = Contiguous {
            base: 0x7_0000_0000,
            pages: g.table_pages(),
        };
        let mut tables = vec![0xa5u8; g.table_pages() * PAGE_SIZE];
        let map = build(len, image, tables.as_mut_slice(), &table_addrs).unwrap();
        assert_eq!(map.level0, 0x7_0000_0000);
        let mut mem = TableMem::new(&tables, &table_addrs);
        let mut seen = Vec::new();
        let n = walk(&mut mem, map, &mut |i, a| {
            assert_eq!(i, seen.len());
            seen.push(a);
        })
        .unwrap();
        assert_eq!(n, g.image_pages);
        for (i, a) in seen.iter().enumerate() {
            assert_eq!(Some(*a), image.page_addr(i));
            let off = i as u64 * PAGE + 5;
            if off < len {
                assert_eq!(translate(&mut mem, map, off), Ok(a + 5));
            }
        }
        seen
    }

    #[test]
    fn geometry_counts_pages() {
        let g = Geometry::new(1).unwrap();
        assert_eq!((g.image_pages, g.level2_pages, g.table_pages()), (1, 1, 3));
        let g = Geometry::new(512 * 4096).unwrap();
        assert_eq!((g.image_pages, g.level2_pages), (512, 1));
        let g = Geometry::new(512 * 4096 + 1).unwrap();
        assert_eq!((g.image_pages, g.level2_pages), (513, 2));
        // 570.144 GA10x .fwimage: 0x3c99000 bytes = 15513 pages = 31 level-2 pages.
        let g = Geometry::new(0x3c9_9000).unwrap();
        assert_eq!((g.image_pages, g.level2_pages), (15513, 31));
        assert_eq!(Geometry::new(0), Err(Radix3Error::EmptyImage));
        assert!(Geometry::new(512 * 512 * 4096).is_ok());
        assert_eq!(
            Geometry::new(512 * 512 * 4096 + 1),
            Err(Radix3Error::ImageTooLarge)
        );
    }

    #[test]
    fn contiguous_and_scattered_images_walk_back() {
        let len = 1300 * 4096 + 17;
        let contiguous = Contiguous {
            base: 0x1_0000_0000,
            pages: 1301,
        };
        roundtrip(len, &contiguous);
        // Scattered pages, in a scrambled order (multiplicative permutation mod a prime).
        let scattered: Vec<u64> = (0..1301u64).map(|i| ((i * 7919) % 1303) << 12).collect();
        roundtrip(len, scattered.as_slice());
    }

    #[test]
    fn unused_entries_are_zeroed() {
        let image = Contiguous {
            base: 0x10_0000,
            pages: 3,
        };
        let addrs = Contiguous { base: 0, pages: 3 };
        let mut tables = vec![0xffu8; 3 * PAGE_SIZE];
        build(3 * 4096, &image, tables.as_mut_slice(), &addrs).unwrap();
        let words: Vec<u64> = tables
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(words[0], 0x1000);
        assert!(words[1..512].iter().all(|w| *w == 0));
        assert_eq!(words[512], 0x2000);
        assert!(words[513..1024].iter().all(|w| *w == 0));
        assert_eq!(&words[1024..1027], &[0x10_0000, 0x10_1000, 0x10_2000]);
        assert!(words[1027..].iter().all(|w| *w == 0));
    }

    #[test]
    fn build_errors() {
        let image = Contiguous { base: 0, pages: 2 };
        let addrs = Contiguous {
            base: 0x9000,
            pages: 3,
        };
        let mut tables = vec![0u8; 3 * PAGE_SIZE];
        assert_eq!(
            build(3 * 4096, &image, tables.as_mut_slice(), &addrs),
            Err(Radix3Error::NotEnoughPages)
        );
        let short = Contiguous {
            base: 0x9000,
            pages: 2,
        };
        assert_eq!(
            build(4096, &image, tables.as_mut_slice(), &short),
            Err(Radix3Error::NotEnoughPages)
        );
        assert_eq!(
            build(4096, &image, &mut tables[..2 * PAGE_SIZE], &addrs),
            Err(Radix3Error::BufferTooSmall)
        );
        let odd = [0x1234u64];
        assert_eq!(
            build(4096, odd.as_slice(), tables.as_mut_slice(), &addrs),
            Err(Radix3Error::Unaligned)
        );
        let odd_tables = Contiguous {
            base: 0x9008,
            pages: 3,
        };
        assert_eq!(
            build(4096, &image, tables.as_mut_slice(), &odd_tables),
            Err(Radix3Error::Unaligned)
        );
        assert_eq!(
            build(0, &image, tables.as_mut_slice(), &addrs),
            Err(Radix3Error::EmptyImage)
        );
    }

    #[test]
    fn walk_reports_bad_tables() {
        let image = Contiguous {
            base: 0x40_0000,
            pages: 2,
        };
        let addrs = Contiguous {
            base: 0x9000,
            pages: 3,
        };
        let mut tables = vec![0u8; 3 * PAGE_SIZE];
        let map = build(2 * 4096, &image, tables.as_mut_slice(), &addrs).unwrap();
        // A level-2 entry that is not page aligned.
        tables[2 * PAGE_SIZE + 8] = 0x08;
        let mut mem = TableMem::new(&tables, &addrs);
        assert_eq!(
            walk(&mut mem, map, &mut |_, _| {}),
            Err(Radix3Error::BadEntry)
        );
        // A level-0 that points nowhere.
        let lost = Radix3 {
            level0: 0x100_0000,
            image_len: 4096,
        };
        assert_eq!(
            walk(&mut mem, lost, &mut |_, _| {}),
            Err(Radix3Error::Unreadable)
        );
        assert_eq!(
            translate(&mut mem, map, 2 * 4096),
            Err(Radix3Error::OutOfImage)
        );
        assert_eq!(translate(&mut mem, map, 17), Ok(0x40_0011));
    }

    #[test]
    fn stage_image_pads_the_last_page() {
        let image: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let mut dst = vec![0xeeu8; 3 * PAGE_SIZE];
        let g = stage_image(&image, dst.as_mut_slice()).unwrap();
        assert_eq!(g.image_pages, 2);
        assert_eq!(&dst[..5000], &image[..]);
        assert!(dst[5000..8192].iter().all(|b| *b == 0));
        assert!(dst[8192..].iter().all(|b| *b == 0xee));
        assert_eq!(
            stage_image(&image, &mut dst[..8191]),
            Err(Radix3Error::BufferTooSmall)
        );
        assert_eq!(
            stage_image(&[], dst.as_mut_slice()),
            Err(Radix3Error::EmptyImage)
        );
    }
}
