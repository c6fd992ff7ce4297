//! ECAM: the PCIe enhanced configuration access mechanism (PCIe Base 6.0 §7.2.2). Each function
//! has 4 KiB at `(bus - first_bus) << 20 | dev << 15 | func << 12` inside one memory-mapped region
//! (`pci_ecam` in `system.xml`, mapped uncached).
//!
//! This is the crate's one module with `unsafe`: a configuration access must be a single load or
//! store of exactly its width (a 16-bit write to the command register must not become a
//! read-modify-write of the status register beside it, whose bits are write-one-to-clear), and
//! [`pd_core::shm::Region`] only offers copies and 32/64-bit atomics. So the accesses are volatile
//! pointer operations on the region's mapping, each bounds-checked against the region first.
#![allow(unsafe_code)]

use crate::config::{check_access, ConfigError, ConfigSpace};
use pci_api::{Bdf, Width};
use pd_core::shm::{ReadWrite, Region};

/// Bytes of ECAM per bus (32 devices × 8 functions × 4 KiB).
pub const BUS_STRIDE: usize = 1 << 20;

/// Configuration space through an ECAM window.
#[derive(Debug)]
pub struct Ecam {
    region: Region<ReadWrite>,
    first_bus: u8,
}

impl Ecam {
    /// ECAM covering buses `first_bus..first_bus + region.size() / 1 MiB`. Accesses to buses
    /// outside that range read all ones and drop writes, like a bus nothing answers on.
    pub fn new(region: Region<ReadWrite>, first_bus: u8) -> Self {
        Self { region, first_bus }
    }

    /// The byte offset of an access inside the region, if the region covers it.
    fn locate(&self, bdf: Bdf, offset: u16, width: Width) -> Option<usize> {
        let bus = usize::from(bdf.bus().checked_sub(self.first_bus)?);
        let at = bus * BUS_STRIDE + (usize::from(bdf.devfn()) << 12) + usize::from(offset);
        (at + usize::from(width.bytes()) <= self.region.size()).then_some(at)
    }
}

impl ConfigSpace for Ecam {
    fn read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
        check_access(offset, width, 0)?;
        let Some(at) = self.locate(bdf, offset, width) else {
            return Ok(width.mask());
        };
        let p = self.region.vaddr().wrapping_add(at);
        // SAFETY: `locate` checked at..at+width inside the region, which stays mapped while `self`
        // owns it; `check_access` made `offset` (hence `at`, the region being page aligned)
        // aligned for the width. Volatile: device memory, one access of exactly this width.
        let v = unsafe {
            match width {
                Width::U8 => u32::from(core::ptr::read_volatile(p as *const u8)),
                Width::U16 => u32::from(core::ptr::read_volatile(p as *const u16)),
                Width::U32 => core::ptr::read_volatile(p as *const u32),
            }
        };
        Ok(v)
    }

    fn write(
        &mut self,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError> {
        check_access(offset, width, value)?;
        let Some(at) = self.locate(bdf, offset, width) else {
            return Ok(());
        };
        let p = self.region.vaddr().wrapping_add(at);
        // SAFETY: as in `read`; `check_access` also made `value` fit the width, so the casts
        // below drop only zero bits.
        unsafe {
            match width {
                // CAST: value fits the width (checked).
                Width::U8 => core::ptr::write_volatile(p as *mut u8, value as u8),
                // CAST: value fits the width (checked).
                Width::U16 => core::ptr::write_volatile(p as *mut u16, value as u16),
                Width::U32 => core::ptr::write_volatile(p as *mut u32, value),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::ptr::NonNull;
    use std::vec;

    #[test]
    fn addresses_functions_and_answers_all_ones_outside() {
        // Two buses (2 MiB), starting at bus 4; u64 storage keeps the base 8-aligned.
        let mut buf = vec![0u64; 2 * BUS_STRIDE / 8];
        // SAFETY: the buffer outlives the view and nothing else borrows it while the view is used.
        let region = unsafe {
            Region::new(
                NonNull::new(buf.as_mut_ptr().cast::<u8>()).unwrap(),
                2 * BUS_STRIDE,
            )
        };
        let base = region.vaddr();
        let mut ecam = Ecam::new(region, 4);
        let bdf = Bdf::new(5, 3, 2).unwrap();
        ecam.write32(bdf, 0x10, 0x1234_5678).unwrap();
        ecam.write16(bdf, 0x4, 0xbeef).unwrap();
        ecam.write8(bdf, 0xfff, 0x5a).unwrap();
        let at = BUS_STRIDE + (3 << 15) + (2 << 12);
        let bytes = |o: usize| {
            // SAFETY: reading back the test's own buffer through its base address.
            unsafe { core::ptr::read((base + at + o) as *const u8) }
        };
        assert_eq!(
            [
                bytes(0x10),
                bytes(0x13),
                bytes(0x4),
                bytes(0x5),
                bytes(0xfff)
            ],
            [0x78, 0x12, 0xef, 0xbe, 0x5a]
        );
        assert_eq!(ecam.read16(bdf, 0x12), Ok(0x1234));
        assert_eq!(ecam.read8(bdf, 0xfff), Ok(0x5a));
        // Buses 0..4 and 6.. are not covered: all ones, writes dropped.
        for bus in [3, 6, 255] {
            let b = Bdf::new(bus, 0, 0).unwrap();
            assert_eq!(ecam.read32(b, 0), Ok(0xffff_ffff));
            assert_eq!(ecam.write32(b, 0, 0), Ok(()));
        }
        assert_eq!(ecam.read32(bdf, 0x2), Err(ConfigError::BadOffset));
        assert_eq!(
            ecam.write(bdf, 0x2, Width::U8, 0x100),
            Err(ConfigError::BadWidth)
        );
    }
}
