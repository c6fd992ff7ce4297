//! Base address registers: decode and size (PCI 3.0 §6.2.5.1).
//!
//! Sizing writes all ones and reads back which address bits stuck, so for a moment the BAR holds
//! a bogus address. Two rules keep that harmless: decoding (memory and I/O enable) is off while
//! it happens, and every register written is put back, on the error paths too, before the command
//! register is restored. The caller gets either every BAR sized or a [`BarError`], never a device
//! left with a half-written 64-bit BAR or decoding turned off behind its back.

use crate::config::{ConfigError, ConfigSpace};
use crate::regs;
use core::fmt;
use pci_api::{BarKind, Bdf};

/// One implemented BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Index (0..6; a 64-bit BAR has the index of its low half).
    pub index: u8,
    /// Address space.
    pub kind: BarKind,
    /// Prefetchable memory.
    pub prefetchable: bool,
    /// Size in bytes (a power of two).
    pub size: u64,
    /// The address: as found before assignment, as programmed after.
    pub addr: u64,
    /// Whether the server placed it.
    pub assigned: bool,
}

impl Bar {
    /// `io`, `mem32`, `pref32`, `mem64` or `pref64`.
    pub fn kind_name(&self) -> &'static str {
        match (self.kind, self.prefetchable) {
            (BarKind::Io, _) => "io",
            (BarKind::Mem32, false) => "mem32",
            (BarKind::Mem32, true) => "pref32",
            (BarKind::Mem64, false) => "mem64",
            (BarKind::Mem64, true) => "pref64",
        }
    }
}

impl fmt::Display for Bar {
    /// `256 MiB pref64`, `16 MiB mem32`, `128 B io`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", Size(self.size), self.kind_name())
    }
}

/// The expansion ROM BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rom {
    /// Size in bytes.
    pub size: u64,
    /// Address as found.
    pub addr: u64,
    /// ROM decoding enabled (bit 0).
    pub enabled: bool,
}

/// The BARs of one function.
pub type Bars = [Option<Bar>; 6];

/// A byte count printed the way people read sizes (`16 MiB`, `128 B`, `1 GiB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let mut v = self.0;
        let mut unit = 0;
        while v >= 1024 && v % 1024 == 0 && unit + 1 < UNITS.len() {
            v /= 1024;
            unit += 1;
        }
        write!(f, "{v} {}", UNITS.get(unit).copied().unwrap_or("B"))
    }
}

/// Why a function's BARs could not be sized. Its registers are as they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarError {
    /// A 64-bit BAR in the last slot has no upper half.
    Mem64InLastSlot {
        /// The BAR.
        index: u8,
    },
    /// Memory type 0b11 is reserved.
    ReservedType {
        /// The BAR.
        index: u8,
    },
    /// The BAR reads all ones: the function stopped answering.
    DeviceGone {
        /// The BAR.
        index: u8,
    },
    /// A configuration access failed (restoring was still attempted).
    Access(ConfigError),
}

impl fmt::Display for BarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mem64InLastSlot { index } => {
                write!(f, "BAR{index} is 64-bit but has no upper half")
            }
            Self::ReservedType { index } => write!(f, "BAR{index} has reserved memory type 3"),
            Self::DeviceGone { index } => write!(f, "BAR{index} reads all ones: device gone"),
            Self::Access(e) => write!(f, "{e}"),
        }
    }
}

impl From<ConfigError> for BarError {
    fn from(e: ConfigError) -> Self {
        Self::Access(e)
    }
}

/// Registers currently holding sizing ones, with the values to put back.
type Pending = heapless::Vec<(u16, u32), 2>;

/// Decode and size the BARs and the expansion ROM of `bdf`, whose header type (bits 6:0) is
/// `header` and command register `command`. Type 0 has six BARs, type 1 two, others none.
///
/// # Errors
/// [`BarError`]; every register touched has been restored (best effort if the access path
/// itself failed).
pub fn size_bars<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    header: u8,
    command: u16,
) -> Result<(Bars, Option<Rom>), BarError> {
    let (count, rom_reg) = match header {
        regs::HEADER_NORMAL => (6, Some(regs::ROM_TYPE0)),
        regs::HEADER_BRIDGE => (2, Some(regs::ROM_TYPE1)),
        _ => (0, None),
    };
    let decode = command & (regs::CMD_IO | regs::CMD_MEMORY);
    if decode != 0 {
        cfg.write16(bdf, regs::COMMAND, command & !decode)?;
    }
    let mut pending = Pending::new();
    let result = size_all(cfg, bdf, count, rom_reg, &mut pending);
    let mut restored = restore(cfg, bdf, &mut pending);
    if decode != 0 {
        restored = restored.and(cfg.write16(bdf, regs::COMMAND, command));
    }
    let sized = result?;
    restored?;
    Ok(sized)
}

fn restore<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    pending: &mut Pending,
) -> Result<(), ConfigError> {
    let mut result = Ok(());
    // Put every register back even if one write fails.
    for (reg, value) in pending.iter() {
        result = result.and(cfg.write32(bdf, *reg, *value));
    }
    pending.clear();
    result
}

/// Write all ones to `reg`, remembering `orig`, and read back.
fn probe_reg<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    reg: u16,
    orig: u32,
    ones: u32,
    pending: &mut Pending,
) -> Result<u32, BarError> {
    // PANIC-free: at most two registers are pending at once (a 64-bit pair), the capacity.
    pending
        .push((reg, orig))
        .map_err(|_| BarError::Access(ConfigError::BadRequest))?;
    cfg.write32(bdf, reg, ones)?;
    Ok(cfg.read32(bdf, reg)?)
}

/// Drop pending entries whose register still holds its original value (hardwired BARs), so the
/// restore writes only what changed.
fn settle(pending: &mut Pending, reg: u16, readback: u32) {
    if let Some(pos) = pending
        .iter()
        .position(|&(r, orig)| r == reg && orig == readback)
    {
        pending.swap_remove(pos);
    }
}

fn size_all<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    count: u8,
    rom_reg: Option<u16>,
    pending: &mut Pending,
) -> Result<(Bars, Option<Rom>), BarError> {
    let mut bars: Bars = [None; 6];
    let mut i = 0u8;
    while i < count {
        let reg = regs::BAR0 + 4 * u16::from(i);
        let orig = cfg.read32(bdf, reg)?;
        if orig == u32::MAX {
            return Err(BarError::DeviceGone { index: i });
        }
        let (kind, pref) = if orig & regs::BAR_IO != 0 {
            (BarKind::Io, false)
        } else {
            match orig >> 1 & 3 {
                0 | 1 => (BarKind::Mem32, orig & regs::BAR_PREFETCH != 0),
                2 => (BarKind::Mem64, orig & regs::BAR_PREFETCH != 0),
                _ => return Err(BarError::ReservedType { index: i }),
            }
        };
        let (addr, mask) = match kind {
            BarKind::Io => {
                let rb = probe_reg(cfg, bdf, reg, orig, u32::MAX, pending)?;
                settle(pending, reg, rb);
                (
                    u64::from(orig & regs::BAR_IO_MASK),
                    u64::from(rb & regs::BAR_IO_MASK),
                )
            }
            BarKind::Mem32 => {
                let rb = probe_reg(cfg, bdf, reg, orig, u32::MAX, pending)?;
                settle(pending, reg, rb);
                (
                    u64::from(orig & regs::BAR_MEM_MASK),
                    u64::from(rb & regs::BAR_MEM_MASK),
                )
            }
            BarKind::Mem64 => {
                if i + 1 >= count {
                    return Err(BarError::Mem64InLastSlot { index: i });
                }
                let orig_hi = cfg.read32(bdf, reg + 4)?;
                let lo = probe_reg(cfg, bdf, reg, orig, u32::MAX, pending)?;
                let hi = probe_reg(cfg, bdf, reg + 4, orig_hi, u32::MAX, pending)?;
                settle(pending, reg, lo);
                settle(pending, reg + 4, hi);
                let addr = u64::from(orig_hi) << 32 | u64::from(orig & regs::BAR_MEM_MASK);
                (
                    addr,
                    u64::from(hi) << 32 | u64::from(lo & regs::BAR_MEM_MASK),
                )
            }
        };
        restore(cfg, bdf, pending)?;
        // The size is the lowest address bit that stuck; no bit means "not implemented".
        if mask != 0 {
            if let Some(slot) = bars.get_mut(usize::from(i)) {
                *slot = Some(Bar {
                    index: i,
                    kind,
                    prefetchable: pref,
                    size: mask & mask.wrapping_neg(),
                    addr,
                    assigned: false,
                });
            }
        }
        i += if kind == BarKind::Mem64 { 2 } else { 1 };
    }
    let rom = match rom_reg {
        Some(reg) => size_rom(cfg, bdf, reg, pending)?,
        None => None,
    };
    Ok((bars, rom))
}

fn size_rom<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    reg: u16,
    pending: &mut Pending,
) -> Result<Option<Rom>, BarError> {
    let orig = cfg.read32(bdf, reg)?;
    // Writing the address mask with bit 0 clear keeps ROM decoding off while sizing.
    let rb = probe_reg(cfg, bdf, reg, orig, regs::ROM_ADDRESS_MASK, pending)?;
    settle(pending, reg, rb);
    restore(cfg, bdf, pending)?;
    let mask = u64::from(rb & regs::ROM_ADDRESS_MASK);
    Ok((mask != 0).then(|| Rom {
        size: mask & mask.wrapping_neg(),
        addr: u64::from(orig & regs::ROM_ADDRESS_MASK),
        enabled: orig & 1 != 0,
    }))
}
