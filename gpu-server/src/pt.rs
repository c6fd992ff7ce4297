//! Writes a context's page tables in the GPU's own format (MMU v2, `gsp::mmu`), which the GSP
//! (model) walks. Tables live in system memory (the `gpu_dma` pool), one 4 KiB page each,
//! allocated as the tree grows; every mapping uses 4 KiB pages through the small page tables.
//!
//! Sparse pages get `Pte::SPARSE`, unmapped pages `Pte::INVALID`; clearing a page whose tables
//! were never created allocates nothing.

use gpu_api::GpuError;
use gsp::mmu::{DualPde, Level, Pde, Pte, Target};
use heapless::FnvIndexMap;

/// Table pages one context may hold (4 KiB each).
pub const MAX_TABLES: usize = 64;

/// Memory for page tables: zeroed 4 KiB pages the GPU can read at a physical address.
pub trait TableMemory {
    /// The aperture the table pages are in.
    fn target(&self) -> Target;
    /// A zeroed, 4 KiB-aligned page; its physical address.
    ///
    /// # Errors
    /// [`GpuError::NoMemory`].
    fn alloc_table(&mut self) -> Result<u64, GpuError>;
    /// Give a page back.
    fn free_table(&mut self, addr: u64);
    /// Write the little-endian `u64` at physical `addr`.
    ///
    /// # Errors
    /// [`GpuError::Device`] when `addr` is not a table page.
    fn write_u64(&mut self, addr: u64, value: u64) -> Result<(), GpuError>;
}

/// The levels below the root, with the VA bits that select each one's table.
const LOWER: [(Level, Level); 4] = [
    (Level::Pd3, Level::Pd2),
    (Level::Pd2, Level::Pd1),
    (Level::Pd1, Level::Pd0),
    (Level::Pd0, Level::PtSmall),
];

/// One context's page-table tree.
#[derive(Debug)]
pub struct PageTables {
    root: u64,
    /// (child level, VA >> parent's shift) -> table address.
    tables: FnvIndexMap<(u8, u64), u64, MAX_TABLES>,
}

fn level_id(l: Level) -> u8 {
    match l {
        Level::Pd3 => 0,
        Level::Pd2 => 1,
        Level::Pd1 => 2,
        Level::Pd0 => 3,
        Level::PtBig => 4,
        Level::PtSmall => 5,
    }
}

impl PageTables {
    /// A tree with an empty root (PD3).
    ///
    /// # Errors
    /// [`GpuError::NoMemory`].
    pub fn new(mem: &mut dyn TableMemory) -> Result<Self, GpuError> {
        Ok(Self {
            root: mem.alloc_table()?,
            tables: FnvIndexMap::new(),
        })
    }

    /// The root, as handed to RM (`NV0080_CTRL_CMD_DMA_SET_PAGE_DIRECTORY`).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The table of `child` level covering `va`, created (and linked from its parent) when
    /// `create`; `None` when it doesn't exist and `create` is false.
    fn table(
        &mut self,
        mem: &mut dyn TableMemory,
        va: u64,
        upto: Level,
        create: bool,
    ) -> Result<Option<u64>, GpuError> {
        let mut parent = self.root;
        for (plevel, child) in LOWER {
            let key = (level_id(child), va >> plevel.shift());
            let addr = match self.tables.get(&key) {
                Some(a) => *a,
                None if !create => return Ok(None),
                None => {
                    let a = mem.alloc_table()?;
                    if self.tables.insert(key, a).is_err() {
                        mem.free_table(a);
                        return Err(GpuError::NoMemory);
                    }
                    let entry = parent + plevel.entry_offset(va);
                    let t = mem.target();
                    if plevel == Level::Pd0 {
                        let d =
                            DualPde::tables(None, Some((t, a))).map_err(|_| GpuError::Device)?;
                        mem.write_u64(entry, d.big)?;
                        mem.write_u64(entry + 8, d.small)?;
                    } else {
                        mem.write_u64(entry, Pde::table(t, a).map_err(|_| GpuError::Device)?.0)?;
                    }
                    a
                }
            };
            if child == upto {
                return Ok(Some(addr));
            }
            parent = addr;
        }
        Ok(None)
    }

    /// Set the 4 KiB PTE for `va`. Writing `Pte::INVALID` where no table exists is a no-op.
    ///
    /// # Errors
    /// [`GpuError::NoMemory`] when a table can't be allocated; [`GpuError::Invalid`] beyond 49 bits.
    pub fn set(&mut self, mem: &mut dyn TableMemory, va: u64, pte: Pte) -> Result<(), GpuError> {
        if va >> gsp::mmu::VA_BITS != 0 {
            return Err(GpuError::Invalid);
        }
        let create = pte != Pte::INVALID;
        match self.table(mem, va, Level::PtSmall, create)? {
            Some(pt) => mem.write_u64(pt + Level::PtSmall.entry_offset(va), pte.0),
            None => Ok(()),
        }
    }

    /// Free every table (the context is going away).
    pub fn release(&mut self, mem: &mut dyn TableMemory) {
        for (_, a) in self.tables.iter() {
            mem.free_table(*a);
        }
        self.tables.clear();
        mem.free_table(self.root);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use gsp::mmu::{translate, PageSize, PageTableMemory, PteFlags, Translation};
    use std::collections::BTreeMap;
    use std::vec::Vec;

    /// Table pages in a map of physical page -> 512 words.
    #[derive(Default)]
    struct Mem {
        pages: BTreeMap<u64, [u64; 512]>,
        next: u64,
        freed: Vec<u64>,
    }
    impl TableMemory for Mem {
        fn target(&self) -> Target {
            Target::SysCoherent
        }
        fn alloc_table(&mut self) -> Result<u64, GpuError> {
            self.next += 0x1000;
            let a = 0x1_0000_0000 + self.next;
            self.pages.insert(a, [0; 512]);
            Ok(a)
        }
        fn free_table(&mut self, a: u64) {
            self.freed.push(a);
        }
        fn write_u64(&mut self, a: u64, v: u64) -> Result<(), GpuError> {
            let p = self.pages.get_mut(&(a & !0xfff)).ok_or(GpuError::Device)?;
            p[((a & 0xfff) / 8) as usize] = v;
            Ok(())
        }
    }
    impl PageTableMemory for Mem {
        type Error = ();
        fn read_u64(&mut self, _: Target, a: u64) -> Result<u64, ()> {
            self.pages
                .get(&(a & !0xfff))
                .map(|p| p[((a & 0xfff) / 8) as usize])
                .ok_or(())
        }
    }

    #[test]
    fn what_the_writer_writes_the_walker_reads() {
        let mut mem = Mem::default();
        let mut pt = PageTables::new(&mut mem).unwrap();
        let pte = |a| Pte::page(Target::Vram, a, PageSize::K4, PteFlags::default()).unwrap();
        for (va, pa) in [
            (0x10_0000, 0x20_0000),
            (0x10_1000, 0x7000),
            (0x7fff_ffff_f000, 0x3000),
        ] {
            pt.set(&mut mem, va, pte(pa)).unwrap();
            match translate(&mut mem, (Target::SysCoherent, pt.root()), va + 0x10).unwrap() {
                Translation::Mapped {
                    target, phys, page, ..
                } => {
                    assert_eq!(
                        (target, phys, page),
                        (Target::Vram, pa + 0x10, PageSize::K4)
                    );
                }
                t => panic!("{t:?}"),
            }
        }
        pt.set(&mut mem, 0x10_2000, Pte::SPARSE).unwrap();
        assert_eq!(
            translate(&mut mem, (Target::SysCoherent, pt.root()), 0x10_2000).unwrap(),
            Translation::Sparse
        );
        pt.set(&mut mem, 0x10_0000, Pte::INVALID).unwrap();
        assert!(translate(&mut mem, (Target::SysCoherent, pt.root()), 0x10_0000).is_err());
        let tables = mem.pages.len();
        pt.set(&mut mem, 0x4000_0000_0000, Pte::INVALID).unwrap();
        assert_eq!(
            mem.pages.len(),
            tables,
            "clearing an absent page allocates nothing"
        );
        assert_eq!(pt.set(&mut mem, 1 << 49, pte(0)), Err(GpuError::Invalid));
        pt.release(&mut mem);
        assert_eq!(mem.freed.len(), tables);
    }
}
