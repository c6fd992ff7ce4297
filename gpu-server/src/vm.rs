//! A context's GPU virtual address space, managed like Linux's GPUVM (`drm_gpuvm_sm_map` /
//! `sm_unmap`): mappings of BO ranges that a new MAP or an UNMAP splits at its edges, adjacent
//! pieces of the same BO merged back, sparse regions (reads zero, writes dropped) that mappings
//! may sit inside, and the kernel-managed area VM_INIT reserves (user binds may not touch it).
//!
//! This module only keeps the bookkeeping; [`VaSpace::map`]/[`VaSpace::unmap`] return the range
//! whose page-table entries must be rewritten, and [`VaSpace::backing`] says what each page is.

use gpu_api::{BoId, GpuError};
use heapless::Vec;

/// GPU page size the VA space is managed in.
pub const PAGE: u64 = 0x1000;
/// Mappings per context.
pub const MAX_MAPPINGS: usize = 128;
/// Sparse regions per context.
pub const MAX_SPARSE: usize = 16;
/// Top of the user VA space (nouveau's `NOUVEAU_VA_SPACE_END`, 1 << 47).
pub const VA_END: u64 = 1 << 47;
/// The kernel-managed area must lie below 2^40: GPFIFO entries and host semaphores, which
/// gpu-server places there, carry 40 address bits (`clc36f.h` `GP_ENTRY0/1`, `SEMAPHOREA/B`).
pub const KERNEL_VA_END: u64 = 1 << 40;

/// A BO range mapped at `va`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Start address.
    pub va: u64,
    /// Length in bytes.
    pub len: u64,
    /// The BO.
    pub bo: BoId,
    /// Offset in the BO of the first byte.
    pub offset: u64,
}

impl Mapping {
    fn end(&self) -> u64 {
        self.va + self.len
    }
}

/// What backs one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Nothing: an access faults.
    None,
    /// Inside a sparse region and not mapped.
    Sparse,
    /// `bo` at `offset`.
    Bo {
        /// The BO.
        bo: BoId,
        /// Offset of the page in the BO.
        offset: u64,
    },
}

/// A VA space.
#[derive(Debug, Default)]
pub struct VaSpace {
    kernel: (u64, u64),
    maps: Vec<Mapping, MAX_MAPPINGS>,
    sparse: Vec<(u64, u64), MAX_SPARSE>,
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0 + b.1 && b.0 < a.0 + a.1
}

/// Check a user range: page aligned, non-empty, below [`VA_END`].
fn check_range(va: u64, len: u64) -> Result<(), GpuError> {
    let end = va.checked_add(len).ok_or(GpuError::Invalid)?;
    if len == 0 || !va.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) || end > VA_END {
        return Err(GpuError::Invalid);
    }
    Ok(())
}

impl VaSpace {
    /// A VA space whose `[kernel_addr, +kernel_size)` belongs to the kernel (gpu-server).
    ///
    /// # Errors
    /// [`GpuError::Invalid`] for a misaligned area or one beyond the VA space.
    pub fn new(kernel_addr: u64, kernel_size: u64) -> Result<Self, GpuError> {
        if kernel_size != 0 {
            check_range(kernel_addr, kernel_size)?;
            if kernel_addr + kernel_size > KERNEL_VA_END {
                return Err(GpuError::Invalid);
            }
        }
        Ok(Self {
            kernel: (kernel_addr, kernel_size),
            maps: Vec::new(),
            sparse: Vec::new(),
        })
    }

    /// The kernel-managed area.
    pub fn kernel_area(&self) -> (u64, u64) {
        self.kernel
    }

    fn check_user(&self, va: u64, len: u64) -> Result<(), GpuError> {
        check_range(va, len)?;
        if self.kernel.1 != 0 && overlaps((va, len), self.kernel) {
            return Err(GpuError::Invalid);
        }
        Ok(())
    }

    /// Map `len` bytes of `bo` from `offset` at `va` (a user bind). Existing mappings under the
    /// range are replaced (split at the edges). Returns the range whose entries changed.
    ///
    /// # Errors
    /// [`GpuError::Invalid`] for a bad range, [`GpuError::NoMemory`] when out of mapping slots
    /// (the VA space is unchanged then).
    pub fn map(
        &mut self,
        bo: BoId,
        offset: u64,
        va: u64,
        len: u64,
    ) -> Result<(u64, u64), GpuError> {
        self.check_user(va, len)?;
        self.insert(Mapping {
            va,
            len,
            bo,
            offset,
        })
    }

    /// Map into the kernel-managed area (gpu-server's own objects: GPFIFO rings, fence pages).
    ///
    /// # Errors
    /// [`GpuError::Invalid`] when the range is not inside the kernel area.
    pub fn map_kernel(
        &mut self,
        bo: BoId,
        offset: u64,
        va: u64,
        len: u64,
    ) -> Result<(u64, u64), GpuError> {
        check_range(va, len)?;
        let (k, ks) = self.kernel;
        if va < k || va + len > k + ks {
            return Err(GpuError::Invalid);
        }
        self.insert(Mapping {
            va,
            len,
            bo,
            offset,
        })
    }

    fn insert(&mut self, m: Mapping) -> Result<(u64, u64), GpuError> {
        let saved = self.maps.clone();
        let result = self.punch(m.va, m.len).and_then(|()| {
            let at = self
                .maps
                .iter()
                .position(|x| x.va > m.va)
                .unwrap_or(self.maps.len());
            self.maps.insert(at, m).map_err(|_| GpuError::NoMemory)
        });
        if let Err(e) = result {
            self.maps = saved;
            return Err(e);
        }
        self.merge();
        Ok((m.va, m.len))
    }

    /// Remove `[va, va+len)` from every mapping, splitting those that straddle an edge.
    fn punch(&mut self, va: u64, len: u64) -> Result<(), GpuError> {
        let end = va + len;
        let mut out: Vec<Mapping, MAX_MAPPINGS> = Vec::new();
        for m in self.maps.iter() {
            if !overlaps((m.va, m.len), (va, len)) {
                out.push(*m).map_err(|_| GpuError::NoMemory)?;
                continue;
            }
            if m.va < va {
                out.push(Mapping {
                    len: va - m.va,
                    ..*m
                })
                .map_err(|_| GpuError::NoMemory)?;
            }
            if m.end() > end {
                let cut = end - m.va;
                out.push(Mapping {
                    va: end,
                    len: m.end() - end,
                    bo: m.bo,
                    offset: m.offset + cut,
                })
                .map_err(|_| GpuError::NoMemory)?;
            }
        }
        self.maps = out;
        Ok(())
    }

    /// Join neighbours that continue the same BO contiguously.
    fn merge(&mut self) {
        let mut i = 0;
        while i + 1 < self.maps.len() {
            let (Some(a), Some(b)) = (self.maps.get(i).copied(), self.maps.get(i + 1).copied())
            else {
                break;
            };
            if a.end() == b.va && a.bo == b.bo && a.offset + a.len == b.offset {
                if let Some(x) = self.maps.get_mut(i) {
                    x.len += b.len;
                }
                self.maps.remove(i + 1);
            } else {
                i += 1;
            }
        }
    }

    /// Reserve a sparse region (a `VM_BIND` MAP with the SPARSE flag).
    ///
    /// # Errors
    /// [`GpuError::Invalid`] for a bad range, [`GpuError::RangeBusy`] when it overlaps another
    /// sparse region, [`GpuError::NoMemory`] when out of slots.
    pub fn map_sparse(&mut self, va: u64, len: u64) -> Result<(u64, u64), GpuError> {
        self.check_user(va, len)?;
        if self.sparse.iter().any(|r| overlaps(*r, (va, len))) {
            return Err(GpuError::RangeBusy);
        }
        self.sparse
            .push((va, len))
            .map_err(|_| GpuError::NoMemory)?;
        Ok((va, len))
    }

    /// Unmap `[va, va+len)`. A range equal to a sparse region removes the region too (nouveau:
    /// sparse regions are unmapped whole). Returns the range whose entries changed.
    ///
    /// # Errors
    /// [`GpuError::Invalid`] for a bad range, [`GpuError::NoMemory`] when splitting needs a slot
    /// that isn't there (the VA space is unchanged then).
    pub fn unmap(&mut self, va: u64, len: u64) -> Result<(u64, u64), GpuError> {
        self.check_user(va, len)?;
        let saved = self.maps.clone();
        if let Err(e) = self.punch(va, len) {
            self.maps = saved;
            return Err(e);
        }
        self.sparse.retain(|r| *r != (va, len));
        Ok((va, len))
    }

    /// Drop every mapping of `bo` (the BO is being freed). Returns the ranges that changed.
    pub fn unmap_bo(&mut self, bo: BoId) -> Vec<(u64, u64), MAX_MAPPINGS> {
        let mut gone = Vec::new();
        for m in self.maps.iter().filter(|m| m.bo == bo) {
            let _ = gone.push((m.va, m.len));
        }
        self.maps.retain(|m| m.bo != bo);
        gone
    }

    /// Whether `bo` is mapped anywhere.
    pub fn maps_bo(&self, bo: BoId) -> bool {
        self.maps.iter().any(|m| m.bo == bo)
    }

    /// What backs the page at `va`.
    pub fn backing(&self, va: u64) -> Backing {
        if let Some(m) = self.maps.iter().find(|m| m.va <= va && va < m.end()) {
            return Backing::Bo {
                bo: m.bo,
                offset: m.offset + (va - m.va),
            };
        }
        if self.sparse.iter().any(|r| r.0 <= va && va < r.0 + r.1) {
            return Backing::Sparse;
        }
        Backing::None
    }

    /// The mappings, in address order.
    pub fn mappings(&self) -> &[Mapping] {
        &self.maps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = PAGE;

    #[test]
    fn map_splits_what_it_covers_and_merges_contiguous_pieces() {
        let mut v = VaSpace::new(0, 0x10_0000).unwrap();
        v.map(BoId(1), 0, 0x100_000, 8 * K).unwrap();
        // Remap the middle two pages to BO 2: BO 1 splits around it.
        v.map(BoId(2), 0, 0x100_000 + 3 * K, 2 * K).unwrap();
        let m = v.mappings();
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].va, m[0].len, m[0].offset), (0x100_000, 3 * K, 0));
        assert_eq!(
            (m[2].va, m[2].len, m[2].offset),
            (0x100_000 + 5 * K, 3 * K, 5 * K)
        );
        assert_eq!(
            v.backing(0x100_000 + 4 * K),
            Backing::Bo {
                bo: BoId(2),
                offset: K
            }
        );
        // Map BO 1's middle back: the three pieces merge into one.
        v.map(BoId(1), 3 * K, 0x100_000 + 3 * K, 2 * K).unwrap();
        assert_eq!(
            v.mappings(),
            &[Mapping {
                va: 0x100_000,
                len: 8 * K,
                bo: BoId(1),
                offset: 0
            }]
        );
    }

    #[test]
    fn unmap_splits_at_edges_and_sparse_regions_show_through() {
        let mut v = VaSpace::new(0, 0).unwrap();
        v.map_sparse(0x200_000, 16 * K).unwrap();
        assert_eq!(v.map_sparse(0x200_000 + K, K), Err(GpuError::RangeBusy));
        v.map(BoId(7), 0, 0x200_000, 4 * K).unwrap();
        v.unmap(0x200_000 + K, 2 * K).unwrap();
        assert_eq!(v.mappings().len(), 2);
        assert_eq!(v.backing(0x200_000 + K), Backing::Sparse);
        assert_eq!(
            v.backing(0x200_000 + 3 * K),
            Backing::Bo {
                bo: BoId(7),
                offset: 3 * K
            }
        );
        v.unmap(0x200_000, 16 * K).unwrap();
        assert_eq!(
            v.backing(0x200_000 + 5 * K),
            Backing::None,
            "region unmapped whole"
        );
        assert!(v.mappings().is_empty());
    }

    #[test]
    fn user_binds_stay_out_of_the_kernel_area_and_need_aligned_ranges() {
        let mut v = VaSpace::new(0x1000_0000, 0x100_0000).unwrap();
        assert_eq!(v.map(BoId(1), 0, 0x1000_0000, K), Err(GpuError::Invalid));
        assert_eq!(
            v.map(BoId(1), 0, 0x0fff_f000, 2 * K),
            Err(GpuError::Invalid)
        );
        assert_eq!(v.map(BoId(1), 0, 0x123, K), Err(GpuError::Invalid));
        assert_eq!(v.map(BoId(1), 0, VA_END - K, 2 * K), Err(GpuError::Invalid));
        assert_eq!(
            v.map(BoId(1), 0, u64::MAX - K + 1, K),
            Err(GpuError::Invalid)
        );
        assert!(v.map_kernel(BoId(1), 0, 0x1000_0000, K).is_ok());
        assert_eq!(VaSpace::new(0x10, K).unwrap_err(), GpuError::Invalid);
        assert_eq!(
            VaSpace::new(0x7f00_0000_0000, 0x1000_0000).unwrap_err(),
            GpuError::Invalid,
            "above 2^40"
        );
    }

    #[test]
    fn running_out_of_slots_leaves_the_space_unchanged() {
        let mut v = VaSpace::new(0, 0).unwrap();
        for i in 0..MAX_MAPPINGS as u64 {
            // Different BOs with gaps between them: nothing merges.
            v.map(BoId(i as u32), 0, 0x100_000 + i * 4 * K, 2 * K)
                .unwrap();
        }
        assert_eq!(v.map(BoId(999), 0, 0x900_0000, K), Err(GpuError::NoMemory));
        // Unmapping the middle of a mapping splits it in two: one slot more than there is.
        assert_eq!(
            v.unmap(0x100_000 + K, K).map(|_| ()),
            Ok(()),
            "the tail page needs no new slot"
        );
        assert_eq!(v.mappings().len(), MAX_MAPPINGS);
        let before = v.mappings().to_vec();
        v.map(BoId(500), 0, 0x100_000 + 4 * K, K).unwrap_err();
        assert_eq!(v.mappings(), &before[..], "a failed map changes nothing");
    }
}
