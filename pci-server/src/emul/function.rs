//! One emulated PCI function: its configuration bytes plus the rules hardware applies to writes.

use super::EmuError;
use crate::caps::{self, Cap};
use crate::config::{ConfigError, ConfigSpace};
use crate::regs::{self, cap, ext};
use pci_api::{Bdf, Width};

/// Bytes in a PCIe function's configuration space.
pub const CFG_SIZE: usize = 4096;
/// Bytes in the legacy (PCI 3.0) configuration space.
pub const LEGACY_SIZE: usize = 256;

/// A BAR to emulate: its kind and size (a power of two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmuBar {
    /// I/O ports (at least 4 bytes).
    Io {
        /// Size in bytes.
        size: u32,
    },
    /// 32-bit memory (at least 16 bytes).
    Mem32 {
        /// Size in bytes.
        size: u32,
        /// Prefetchable.
        prefetchable: bool,
    },
    /// 64-bit memory; takes this BAR slot and the next.
    Mem64 {
        /// Size in bytes.
        size: u64,
        /// Prefetchable.
        prefetchable: bool,
    },
}

/// BAR sizes to give a function built from a dump (a dump shows current values, not sizes).
/// `None` leaves the register read-only, so sizing it reads back its current address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BarSizes {
    /// Size of BAR 0..6 (for a 64-bit BAR, at the index of its low half).
    pub bars: [Option<u64>; 6],
    /// Size of the expansion ROM.
    pub rom: Option<u64>,
}

/// The PCIe device/port type of an emulated function's PCIe capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcieType {
    /// An endpoint (a GPU, its audio function).
    Endpoint,
    /// A root port of the root complex.
    RootPort,
    /// The upstream port of a switch.
    Upstream,
    /// A downstream port of a switch.
    Downstream,
}

/// One emulated function.
///
/// Writes follow hardware rules: a per-byte write mask (read-only ids and class, BAR address bits
/// above the BAR's size, bridge bus numbers and windows, the control bits of PM/MSI/MSI-X/PCIe
/// capabilities), write-one-to-clear status bits, and nothing beyond the function's size (a
/// 256-byte function reads all ones at 0x100 and up, as a conventional PCI device behind ECAM).
#[derive(Clone)]
pub struct EmuFunction {
    data: [u8; CFG_SIZE],
    wmask: [u8; CFG_SIZE],
    w1c: [u8; LEGACY_SIZE],
    size: u16,
    /// Offset of the last legacy capability (0 = none yet).
    cap_tail: u16,
    /// Next free offset for a legacy capability.
    cap_free: u16,
    /// Offset of the last extended capability (0 = none yet).
    ext_tail: u16,
    /// Next free offset for an extended capability.
    ext_free: u16,
    /// Offset of the PCIe capability (0 = none).
    pcie: u16,
}

impl core::fmt::Debug for EmuFunction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EmuFunction")
            .field("vendor", &self.peek(0, Width::U16))
            .field("device", &self.peek(2, Width::U16))
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl EmuFunction {
    fn blank(vendor: u16, device: u16, class: u32, header_type: u8) -> Self {
        let mut f = Self {
            data: [0; CFG_SIZE],
            wmask: [0; CFG_SIZE],
            w1c: [0; LEGACY_SIZE],
            size: 4096,
            cap_tail: 0,
            cap_free: 0x40,
            ext_tail: 0,
            ext_free: 0x100,
            pcie: 0,
        };
        f.set(0, Width::U16, u32::from(vendor));
        f.set(2, Width::U16, u32::from(device));
        f.set(regs::REVISION, Width::U32, (class & 0xff_ffff) << 8 | 0xa1);
        f.set(regs::HEADER_TYPE, Width::U8, u32::from(header_type));
        if header_type == regs::HEADER_BRIDGE {
            // 32-bit I/O and 64-bit prefetchable windows (capability nibbles, read-only).
            f.set(regs::IO_BASE, Width::U16, 0x0101);
            f.set(regs::PREF_MEMORY_BASE, Width::U32, 0x0001_0001);
        } else {
            f.set(regs::INTERRUPT_LINE + 1, Width::U8, 1);
        }
        f.header_masks();
        f
    }

    /// An endpoint (header type 0) with `class` (base, sub, prog-if; 24 bits), 4 KiB config space.
    pub fn endpoint(vendor: u16, device: u16, class: u32) -> Self {
        Self::blank(vendor, device, class, regs::HEADER_NORMAL)
    }

    /// A host bridge (class 0x0600, header type 0), 256 bytes of config space.
    pub fn host_bridge(vendor: u16, device: u16) -> Self {
        let mut f = Self::blank(vendor, device, 0x06_00_00, regs::HEADER_NORMAL);
        f.size = 256;
        f
    }

    /// A PCI-to-PCI bridge (class 0x0604, header type 1) with 32-bit I/O and 64-bit prefetchable
    /// windows; add [`EmuFunction::pcie`] to make it a root or switch port.
    pub fn bridge(vendor: u16, device: u16) -> Self {
        Self::blank(vendor, device, 0x06_04_00, regs::HEADER_BRIDGE)
    }

    /// A function from a dump (`lspci -xxx`: 64 or 256 bytes; `-xxxx`: 4096), with BAR sizes
    /// from elsewhere (lspci -v's `[size=]`), since a dump holds only current values. Write masks
    /// follow from the header type, the BARs and the capabilities the dump contains.
    ///
    /// # Errors
    /// [`EmuError::BadDump`] for a length that is not a multiple of 4 in 64..=4096;
    /// [`EmuError::BadBar`] for a size that is not a power of two, too small for its kind, or
    /// that the current address is not aligned to.
    pub fn from_dump(bytes: &[u8], sizes: &BarSizes) -> Result<Self, EmuError> {
        if bytes.len() < 64 || bytes.len() > CFG_SIZE || bytes.len() % 4 != 0 {
            return Err(EmuError::BadDump);
        }
        let mut f = Self::blank(0, 0, 0, 0);
        f.wmask = [0; CFG_SIZE];
        f.w1c = [0; LEGACY_SIZE];
        f.data = [0; CFG_SIZE];
        if let Some(dst) = f.data.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        f.size = u16::try_from(bytes.len()).map_err(|_| EmuError::BadDump)?;
        f.header_masks();
        f.dump_bar_masks(sizes)?;
        f.dump_cap_masks();
        Ok(f)
    }

    /// Mark function 0 of a multi-function device (header type bit 7).
    pub fn multi_function(&mut self) -> &mut Self {
        let h = self.peek(regs::HEADER_TYPE, Width::U8);
        self.set(
            regs::HEADER_TYPE,
            Width::U8,
            h | u32::from(regs::HEADER_MULTI_FUNCTION),
        );
        self
    }

    /// Set the subsystem ids (type 0 only).
    pub fn subsystem(&mut self, vendor: u16, device: u16) -> &mut Self {
        self.set(
            regs::SUBSYSTEM_VENDOR,
            Width::U32,
            u32::from(vendor) | u32::from(device) << 16,
        );
        self
    }

    /// Limit the configuration space to 256 bytes (a conventional PCI device): reads at 0x100 and
    /// above then return all ones.
    pub fn legacy_only(&mut self) -> &mut Self {
        self.size = 256;
        self
    }

    /// Implement BAR `index` as `bar`.
    ///
    /// # Errors
    /// [`EmuError::BadBar`] for an index past the header's BARs (6 for type 0, 2 for type 1), a
    /// 64-bit BAR in the last slot, or a size that is not a power of two or below the minimum.
    pub fn bar(&mut self, index: u8, bar: EmuBar) -> Result<&mut Self, EmuError> {
        let n = self.bar_count();
        let slots = if matches!(bar, EmuBar::Mem64 { .. }) {
            2
        } else {
            1
        };
        if index + slots > n {
            return Err(EmuError::BadBar);
        }
        let off = regs::BAR0 + 4 * u16::from(index);
        match bar {
            EmuBar::Io { size } => {
                check_size(u64::from(size), 4)?;
                self.set(off, Width::U32, regs::BAR_IO);
                self.set_mask(off, Width::U32, !(size - 1) & regs::BAR_IO_MASK);
            }
            EmuBar::Mem32 { size, prefetchable } => {
                check_size(u64::from(size), 16)?;
                self.set(
                    off,
                    Width::U32,
                    if prefetchable { regs::BAR_PREFETCH } else { 0 },
                );
                self.set_mask(off, Width::U32, !(size - 1) & regs::BAR_MEM_MASK);
            }
            EmuBar::Mem64 { size, prefetchable } => {
                check_size(size, 16)?;
                let flags =
                    regs::BAR_MEM_TYPE_64 << 1 | if prefetchable { regs::BAR_PREFETCH } else { 0 };
                self.set(off, Width::U32, flags);
                self.mem64_masks(off, size);
            }
        }
        Ok(self)
    }

    /// Implement the expansion ROM BAR with `size` bytes (at least 2 KiB).
    ///
    /// # Errors
    /// [`EmuError::BadBar`] when `size` is not a power of two of at least 2 KiB.
    pub fn rom(&mut self, size: u32) -> Result<&mut Self, EmuError> {
        check_size(u64::from(size), 2048)?;
        let off = self.rom_offset();
        self.set_mask(off, Width::U32, (!(size - 1) & regs::ROM_ADDRESS_MASK) | 1);
        Ok(self)
    }

    /// Append a power-management capability.
    ///
    /// # Errors
    /// [`EmuError::NoRoom`] when the legacy space is full.
    pub fn pm(&mut self) -> Result<&mut Self, EmuError> {
        let at = self.add_cap(cap::PM, 8)?;
        self.set(at + 2, Width::U16, 0x0003);
        self.cap_masks(cap::PM, at);
        Ok(self)
    }

    /// Append an MSI capability able to request `2^log2_vectors` vectors, with 64-bit addresses.
    ///
    /// # Errors
    /// [`EmuError::NoRoom`]; [`EmuError::BadBar`] for `log2_vectors > 5`.
    pub fn msi(&mut self, log2_vectors: u8) -> Result<&mut Self, EmuError> {
        if log2_vectors > 5 {
            return Err(EmuError::BadBar);
        }
        let at = self.add_cap(cap::MSI, 0x0e)?;
        self.set(
            at + regs::MSI_FLAGS,
            Width::U16,
            u32::from(regs::MSI_FLAGS_64BIT) | u32::from(log2_vectors) << 1,
        );
        self.cap_masks(cap::MSI, at);
        Ok(self)
    }

    /// Append an MSI-X capability: `entries` vectors, table at `table.1` in BAR `table.0`, pending
    /// bits at `pba.1` in BAR `pba.0`.
    ///
    /// # Errors
    /// [`EmuError::NoRoom`]; [`EmuError::BadBar`] for 0 or more than 2048 entries, a BIR over 5
    /// or an offset that is not 8-byte aligned.
    pub fn msix(
        &mut self,
        entries: u16,
        table: (u8, u32),
        pba: (u8, u32),
    ) -> Result<&mut Self, EmuError> {
        if entries == 0 || entries > 2048 || table.0 > 5 || pba.0 > 5 || (table.1 | pba.1) & 7 != 0
        {
            return Err(EmuError::BadBar);
        }
        let at = self.add_cap(cap::MSIX, 12)?;
        self.set(at + regs::MSIX_FLAGS, Width::U16, u32::from(entries - 1));
        self.set(
            at + regs::MSIX_TABLE,
            Width::U32,
            table.1 | u32::from(table.0),
        );
        self.set(at + regs::MSIX_PBA, Width::U32, pba.1 | u32::from(pba.0));
        self.cap_masks(cap::MSIX, at);
        Ok(self)
    }

    /// Append a vendor-specific capability of `len` bytes (at least 3).
    ///
    /// # Errors
    /// [`EmuError::NoRoom`].
    pub fn vendor_cap(&mut self, len: u8) -> Result<&mut Self, EmuError> {
        let at = self.add_cap(cap::VNDR, u16::from(len.max(3)))?;
        self.set(at + 2, Width::U8, u32::from(len));
        Ok(self)
    }

    /// Append a PCIe capability (version 2) of type `kind`; a port with `ari_forwarding` offers
    /// ARI forwarding (DevCap2 bit 5), which software may then enable in DevCtl2.
    ///
    /// # Errors
    /// [`EmuError::NoRoom`].
    pub fn pcie(&mut self, kind: PcieType, ari_forwarding: bool) -> Result<&mut Self, EmuError> {
        let at = self.add_cap(cap::EXP, 0x3c)?;
        let port = match kind {
            PcieType::Endpoint => regs::port::ENDPOINT,
            PcieType::RootPort => regs::port::ROOT_PORT,
            PcieType::Upstream => regs::port::UPSTREAM,
            PcieType::Downstream => regs::port::DOWNSTREAM,
        };
        self.set(at + regs::EXP_FLAGS, Width::U16, u32::from(port) << 4 | 2);
        if ari_forwarding {
            self.set(at + regs::EXP_DEVCAP2, Width::U32, regs::EXP_DEVCAP2_ARI);
        }
        self.pcie = at;
        self.cap_masks(cap::EXP, at);
        Ok(self)
    }

    /// Advertise Function Level Reset in the PCIe capability (DevCap bit 28): writing Initiate
    /// FLR (DevCtl bit 15) then resets the function ([`EmuFunction::write`]).
    ///
    /// # Errors
    /// [`EmuError::NoRoom`] when the function has no PCIe capability yet.
    pub fn flr(&mut self) -> Result<&mut Self, EmuError> {
        if self.pcie == 0 {
            return Err(EmuError::NoRoom);
        }
        let at = self.pcie + regs::EXP_DEVCAP;
        let devcap = self.peek(at, Width::U32);
        self.set(at, Width::U32, devcap | regs::EXP_DEVCAP_FLR);
        Ok(self)
    }

    /// Whether a write of `value` at `offset` sets Initiate FLR on a function that can reset.
    fn initiates_flr(&self, offset: u16, width: Width, value: u32) -> bool {
        if self.pcie == 0
            || self.peek(self.pcie + regs::EXP_DEVCAP, Width::U32) & regs::EXP_DEVCAP_FLR == 0
        {
            return false;
        }
        // Bit 15 of DevCtl is bit 7 of its second byte.
        let byte = self.pcie + regs::EXP_DEVCTL + 1;
        (offset..offset + width.bytes()).contains(&byte)
            && (value >> (8 * u32::from(byte - offset))) & 0x80 != 0
    }

    /// A function-level reset: what software configured goes back to its reset value — the
    /// command register, the BARs and expansion ROM address, device control — while read-only
    /// bits (ids, BAR types) stay. The rest of the state a real reset clears is not modelled.
    fn function_reset(&mut self) {
        let bridge =
            self.peek(regs::HEADER_TYPE, Width::U8) & 0x7f == u32::from(regs::HEADER_BRIDGE);
        let (bars, rom) = if bridge {
            (8, regs::ROM_TYPE1)
        } else {
            (24, regs::ROM_TYPE0)
        };
        let ranges = [
            (regs::COMMAND, 2),
            (regs::BAR0, bars),
            (rom, 4),
            (self.pcie + regs::EXP_DEVCTL, 2),
        ];
        for (start, len) in ranges {
            for at in usize::from(start)..usize::from(start) + len {
                let m = self.wmask.get(at).copied().unwrap_or(0);
                if let Some(b) = self.data.get_mut(at) {
                    *b &= !m;
                }
            }
        }
    }

    /// Append an extended capability `id` of `len` bytes (header included, zero body).
    ///
    /// # Errors
    /// [`EmuError::NoRoom`] when the function has no extended space or it is full.
    pub fn ext_cap(&mut self, id: u16, len: u16) -> Result<&mut Self, EmuError> {
        self.add_ext(id, len)?;
        Ok(self)
    }

    /// Append an ARI capability whose next function number is `next` (0 = last).
    ///
    /// # Errors
    /// [`EmuError::NoRoom`].
    pub fn ari(&mut self, next: u8) -> Result<&mut Self, EmuError> {
        let at = self.add_ext(ext::ARI, 8)?;
        self.set(at + ext::ARI_CAP, Width::U16, u32::from(next) << 8);
        self.ext_masks(ext::ARI, at);
        Ok(self)
    }

    /// Overwrite raw bytes (malformed capability lists, odd firmware), masks unchanged.
    ///
    /// # Errors
    /// [`EmuError::BadDump`] when the bytes leave the configuration space.
    pub fn poke(&mut self, offset: u16, bytes: &[u8]) -> Result<&mut Self, EmuError> {
        let start = usize::from(offset);
        let dst = self
            .data
            .get_mut(start..start + bytes.len())
            .ok_or(EmuError::BadDump)?;
        dst.copy_from_slice(bytes);
        Ok(self)
    }

    /// The function's configuration bytes (as much as it implements).
    pub fn bytes(&self) -> &[u8] {
        self.data
            .get(..usize::from(self.size))
            .unwrap_or(&self.data)
    }

    /// A hardware read: all ones beyond the function's size.
    pub fn read(&self, offset: u16, width: Width) -> u32 {
        if u32::from(offset) + u32::from(width.bytes()) > u32::from(self.size) {
            return width.mask();
        }
        self.peek(offset, width)
    }

    /// A hardware write: masked, write-one-to-clear honoured, dropped beyond the function's size;
    /// Initiate FLR on a function with [`EmuFunction::flr`] resets it.
    pub fn write(&mut self, offset: u16, width: Width, value: u32) {
        if u32::from(offset) + u32::from(width.bytes()) > u32::from(self.size) {
            return;
        }
        if self.initiates_flr(offset, width, value) {
            self.function_reset();
            return;
        }
        for i in 0..usize::from(width.bytes()) {
            let at = usize::from(offset) + i;
            // CAST: one byte of the value.
            let v = (value >> (8 * i)) as u8;
            let m = self.wmask.get(at).copied().unwrap_or(0);
            let c = self.w1c.get(at).copied().unwrap_or(0);
            if let Some(b) = self.data.get_mut(at) {
                *b = ((*b & !m) | (v & m)) & !(v & c);
            }
        }
    }

    /// Whether this function's PCIe port forwards ARI function numbers (DevCtl2 bit 5 set).
    pub(super) fn ari_forwarding(&self) -> bool {
        self.pcie != 0
            && self.peek(self.pcie + regs::EXP_DEVCTL2, Width::U16)
                & u32::from(regs::EXP_DEVCTL2_ARI)
                != 0
    }

    /// Whether this function is a PCIe root or downstream port (only device 0 lies below it).
    pub(super) fn is_downstream_port(&self) -> bool {
        if self.pcie == 0 {
            return false;
        }
        // CAST: bits 7:4 of a 16-bit value.
        let t = (self.peek(self.pcie + regs::EXP_FLAGS, Width::U16) >> 4 & 0xf) as u8;
        t == regs::port::ROOT_PORT || t == regs::port::DOWNSTREAM
    }

    /// Whether this is a type 1 header (a bridge).
    pub(super) fn is_bridge(&self) -> bool {
        self.peek(regs::HEADER_TYPE, Width::U8) & 0x7f == u32::from(regs::HEADER_BRIDGE)
    }

    /// Secondary and subordinate bus numbers (bridges).
    pub(super) fn bus_range(&self) -> (u8, u8) {
        // CAST: single bytes.
        (
            self.peek(regs::SECONDARY_BUS, Width::U8) as u8,
            self.peek(regs::SUBORDINATE_BUS, Width::U8) as u8,
        )
    }

    fn peek(&self, offset: u16, width: Width) -> u32 {
        let at = usize::from(offset);
        (0..usize::from(width.bytes())).fold(0, |acc, i| {
            acc | u32::from(self.data.get(at + i).copied().unwrap_or(0xff)) << (8 * i)
        })
    }

    fn set(&mut self, offset: u16, width: Width, value: u32) {
        let at = usize::from(offset);
        for i in 0..usize::from(width.bytes()) {
            if let Some(b) = self.data.get_mut(at + i) {
                // CAST: one byte of the value.
                *b = (value >> (8 * i)) as u8;
            }
        }
    }

    fn set_mask(&mut self, offset: u16, width: Width, mask: u32) {
        let at = usize::from(offset);
        for i in 0..usize::from(width.bytes()) {
            if let Some(b) = self.wmask.get_mut(at + i) {
                // CAST: one byte of the mask.
                *b = (mask >> (8 * i)) as u8;
            }
        }
    }

    fn set_w1c(&mut self, offset: u16, width: Width, mask: u32) {
        let at = usize::from(offset);
        for i in 0..usize::from(width.bytes()) {
            if let Some(b) = self.w1c.get_mut(at + i) {
                // CAST: one byte of the mask.
                *b = (mask >> (8 * i)) as u8;
            }
        }
    }

    fn bar_count(&self) -> u8 {
        if self.is_bridge() {
            2
        } else {
            6
        }
    }

    fn rom_offset(&self) -> u16 {
        if self.is_bridge() {
            regs::ROM_TYPE1
        } else {
            regs::ROM_TYPE0
        }
    }

    fn mem64_masks(&mut self, off: u16, size: u64) {
        let mask = !(size - 1);
        // CAST: low and high halves of the 64-bit mask.
        self.set_mask(off, Width::U32, (mask as u32) & regs::BAR_MEM_MASK);
        self.set_mask(off + 4, Width::U32, (mask >> 32) as u32);
    }

    /// Masks of the standard header registers (PCI 3.0 §6.2, PCI-to-PCI Bridge 1.2 §3.2).
    fn header_masks(&mut self) {
        let rw_cmd = regs::CMD_IO
            | regs::CMD_MEMORY
            | regs::CMD_MASTER
            | regs::CMD_PARITY
            | regs::CMD_SERR
            | regs::CMD_INTX_DISABLE;
        self.set_mask(regs::COMMAND, Width::U16, u32::from(rw_cmd));
        self.set_w1c(regs::STATUS, Width::U16, u32::from(regs::STATUS_W1C));
        self.set_mask(regs::CACHE_LINE, Width::U16, 0xffff);
        self.set_mask(regs::INTERRUPT_LINE, Width::U8, 0xff);
        if !self.is_bridge() {
            return;
        }
        self.set_mask(regs::PRIMARY_BUS, Width::U32, 0xffff_ffff);
        self.set_mask(regs::IO_BASE, Width::U16, 0xf0f0);
        self.set_w1c(regs::SEC_STATUS, Width::U16, u32::from(regs::STATUS_W1C));
        self.set_mask(regs::MEMORY_BASE, Width::U32, 0xfff0_fff0);
        self.set_mask(regs::PREF_MEMORY_BASE, Width::U32, 0xfff0_fff0);
        if self.peek(regs::PREF_MEMORY_BASE, Width::U8) & 0xf == 1 {
            self.set_mask(regs::PREF_BASE_UPPER32, Width::U32, 0xffff_ffff);
            self.set_mask(regs::PREF_LIMIT_UPPER32, Width::U32, 0xffff_ffff);
        }
        if self.peek(regs::IO_BASE, Width::U8) & 0xf == 1 {
            self.set_mask(regs::IO_BASE_UPPER16, Width::U32, 0xffff_ffff);
        }
        self.set_mask(regs::BRIDGE_CONTROL, Width::U16, 0x0fff);
    }

    fn dump_bar_masks(&mut self, sizes: &BarSizes) -> Result<(), EmuError> {
        let mut i = 0u8;
        while i < self.bar_count() {
            let off = regs::BAR0 + 4 * u16::from(i);
            let v = self.peek(off, Width::U32);
            let size = sizes.bars.get(usize::from(i)).copied().flatten();
            let is64 = v & regs::BAR_IO == 0 && (v >> 1) & 3 == regs::BAR_MEM_TYPE_64;
            let hi = if is64 {
                self.peek(off + 4, Width::U32)
            } else {
                0
            };
            let addr = u64::from(hi) << 32
                | u64::from(
                    v & if v & regs::BAR_IO != 0 {
                        regs::BAR_IO_MASK
                    } else {
                        regs::BAR_MEM_MASK
                    },
                );
            if let Some(size) = size {
                let min = if v & regs::BAR_IO != 0 { 4 } else { 16 };
                check_size(size, min)?;
                if addr & (size - 1) != 0 || (!is64 && size > 1 << 31) {
                    return Err(EmuError::BadBar);
                }
                if is64 {
                    self.mem64_masks(off, size);
                } else {
                    let low = if v & regs::BAR_IO != 0 {
                        regs::BAR_IO_MASK
                    } else {
                        regs::BAR_MEM_MASK
                    };
                    // CAST: size is at most 2 GiB here (checked).
                    self.set_mask(off, Width::U32, !(size as u32 - 1) & low);
                }
            }
            i += if is64 { 2 } else { 1 };
        }
        if let Some(size) = sizes.rom {
            check_size(size, 2048)?;
            let off = self.rom_offset();
            let addr = u64::from(self.peek(off, Width::U32) & regs::ROM_ADDRESS_MASK);
            if size > 1 << 31 || addr & (size - 1) != 0 {
                return Err(EmuError::BadBar);
            }
            // CAST: size is at most 2 GiB (checked).
            self.set_mask(
                off,
                Width::U32,
                (!(size as u32 - 1) & regs::ROM_ADDRESS_MASK) | 1,
            );
        }
        Ok(())
    }

    fn dump_cap_masks(&mut self) {
        let mut legacy = caps::CapList::new();
        let mut extended = caps::ExtCapList::new();
        let mut view = Single(self);
        let status = view.read16(Bdf::default(), regs::STATUS).unwrap_or(0);
        let head = caps::legacy_head(&mut view, Bdf::default(), status).unwrap_or(0);
        caps::walk_legacy(&mut view, Bdf::default(), head, &mut legacy);
        if self.size > 256 {
            let first = view.read32(Bdf::default(), 0x100).unwrap_or(u32::MAX);
            caps::walk_extended(&mut view, Bdf::default(), first, &mut extended);
        }
        for c in legacy.iter().copied() {
            if c.id == cap::EXP {
                self.pcie = c.offset;
            }
            self.cap_masks(c.id, c.offset);
        }
        for Cap { id, offset, .. } in extended.iter().copied() {
            self.ext_masks(id, offset);
        }
    }

    /// Write rules of a legacy capability's control registers (PCI PM 1.2 §3.2, PCI 3.0 §6.8,
    /// PCIe 6.0 §7.5.3).
    fn cap_masks(&mut self, id: u16, at: u16) {
        match id {
            cap::PM => {
                self.set_mask(at + 4, Width::U16, 0x0103);
                self.set_w1c(at + 4, Width::U16, 0x8000);
            }
            cap::MSI => {
                // CAST: a 16-bit read.
                let flags = self.peek(at + regs::MSI_FLAGS, Width::U16) as u16;
                self.set_mask(
                    at + regs::MSI_FLAGS,
                    Width::U16,
                    u32::from(regs::MSI_FLAGS_ENABLE | regs::MSI_FLAGS_QSIZE),
                );
                self.set_mask(at + 4, Width::U32, 0xffff_fffc);
                let data = if flags & regs::MSI_FLAGS_64BIT != 0 {
                    self.set_mask(at + 8, Width::U32, 0xffff_ffff);
                    at + 0xc
                } else {
                    at + 8
                };
                self.set_mask(data, Width::U16, 0xffff);
                if flags & regs::MSI_FLAGS_MASKBIT != 0 {
                    self.set_mask(data + 4, Width::U32, 0xffff_ffff);
                }
            }
            cap::MSIX => {
                self.set_mask(
                    at + regs::MSIX_FLAGS,
                    Width::U16,
                    u32::from(regs::MSIX_FLAGS_ENABLE | regs::MSIX_FLAGS_MASKALL),
                );
            }
            cap::EXP => {
                self.set_mask(at + 8, Width::U16, 0x7fff);
                self.set_w1c(at + 0xa, Width::U16, 0x000f);
                self.set_mask(at + 0x10, Width::U16, 0x0ffb);
                self.set_w1c(at + 0x12, Width::U16, 0xc000);
                if self.peek(at + regs::EXP_FLAGS, Width::U16) & 0xf >= 2 {
                    let ari =
                        self.peek(at + regs::EXP_DEVCAP2, Width::U32) & regs::EXP_DEVCAP2_ARI != 0;
                    let mask = 0x041f
                        | if ari {
                            u32::from(regs::EXP_DEVCTL2_ARI)
                        } else {
                            0
                        };
                    self.set_mask(at + regs::EXP_DEVCTL2, Width::U16, mask);
                }
            }
            _ => {}
        }
    }

    /// Write rules of extended capabilities the server touches (ARI control, PCIe 6.0 §7.8.8).
    fn ext_masks(&mut self, id: u16, at: u16) {
        if id == ext::ARI {
            self.set_mask(at + 6, Width::U16, 0x0073);
        }
    }

    fn add_cap(&mut self, id: u16, len: u16) -> Result<u16, EmuError> {
        let at = self.cap_free;
        if at + len > 256 {
            return Err(EmuError::NoRoom);
        }
        self.set(at, Width::U16, u32::from(id));
        if self.cap_tail == 0 {
            self.set(regs::CAP_PTR, Width::U8, u32::from(at));
            let status = self.peek(regs::STATUS, Width::U16);
            self.set(
                regs::STATUS,
                Width::U16,
                status | u32::from(regs::STATUS_CAP_LIST),
            );
        } else {
            self.set(self.cap_tail + 1, Width::U8, u32::from(at));
        }
        self.cap_tail = at;
        self.cap_free = (at + len + 3) & !3;
        Ok(at)
    }

    fn add_ext(&mut self, id: u16, len: u16) -> Result<u16, EmuError> {
        let at = self.ext_free;
        if self.size <= 256 || usize::from(at) + usize::from(len) > CFG_SIZE {
            return Err(EmuError::NoRoom);
        }
        self.set(at, Width::U32, u32::from(id) | 1 << 16);
        if self.ext_tail != 0 {
            let prev = self.peek(self.ext_tail, Width::U32);
            self.set(
                self.ext_tail,
                Width::U32,
                (prev & 0x000f_ffff) | u32::from(at) << 20,
            );
        }
        self.ext_tail = at;
        self.ext_free = (at + len + 3) & !3;
        Ok(at)
    }
}

fn check_size(size: u64, min: u64) -> Result<(), EmuError> {
    if size.is_power_of_two() && size >= min {
        Ok(())
    } else {
        Err(EmuError::BadBar)
    }
}

/// One function seen as a whole configuration space (every address reaches it), so the crate's
/// capability walks can run over a function's bytes.
struct Single<'a>(&'a EmuFunction);

impl ConfigSpace for Single<'_> {
    fn read(&mut self, _bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
        Ok(self.0.read(offset, width))
    }

    fn write(
        &mut self,
        _bdf: Bdf,
        _offset: u16,
        _width: Width,
        _value: u32,
    ) -> Result<(), ConfigError> {
        Ok(())
    }
}
