//! Reading one function: identity, capabilities, BAR sizes and (for bridges) bus numbers and
//! windows as found. Used by enumeration and by `cargo xtask lspci` on replayed dumps.

use crate::bar::{self, Bar, BarError, Bars, Rom};
use crate::caps::{self, Cap, CapList, ExtCapList, Msi, Msix, Pcie, Walked};
use crate::config::{ConfigError, ConfigSpace};
use crate::regs::{self, cap, ext};
use pci_api::{BarKind, Bdf};

/// An address range, both ends inclusive (how bridges express windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First address.
    pub base: u64,
    /// Last address.
    pub limit: u64,
}

impl Range {
    /// Bytes covered.
    pub fn size(&self) -> u64 {
        self.limit.wrapping_sub(self.base).wrapping_add(1)
    }
}

/// A PCI-to-PCI bridge's bus numbers and forwarding windows (PCI-to-PCI Bridge 1.2 §3.2.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeInfo {
    /// Bus the bridge sits on.
    pub primary: u8,
    /// Bus directly below it.
    pub secondary: u8,
    /// Highest bus below it.
    pub subordinate: u8,
    /// I/O window (`None` = closed).
    pub io: Option<Range>,
    /// Non-prefetchable memory window (32-bit).
    pub mem: Option<Range>,
    /// Prefetchable memory window.
    pub pref: Option<Range>,
    /// The I/O window decodes 32-bit addresses.
    pub io32: bool,
    /// The prefetchable window decodes 64-bit addresses.
    pub pref64: bool,
}

/// What the server made of a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Found and usable.
    Ok,
    /// Its BARs could not be sized; it is left as found and never granted.
    BarsUnreadable(BarError),
    /// A bridge left unnumbered: no bus numbers were left.
    NoBusNumber,
    /// A bridge not descended into: the tree is deeper than the server's stack.
    TooDeep,
    /// Its resources did not fit the windows (or a bridge above it was refused): decoding off.
    Refused,
}

/// One function, as probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// Its address.
    pub bdf: Bdf,
    /// Index (in the server's table) of the bridge above it; `None` on the root bus.
    pub parent: Option<u16>,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Class code (base, sub, prog-if).
    pub class: u32,
    /// Revision id.
    pub revision: u8,
    /// Header type byte, multi-function bit included.
    pub header_type: u8,
    /// Command register as found.
    pub command: u16,
    /// Bytes of configuration space (256, or 4096 for PCIe functions with extended space).
    pub cfg_size: u16,
    /// BARs.
    pub bars: Bars,
    /// Expansion ROM.
    pub rom: Option<Rom>,
    /// Legacy capabilities in list order.
    pub caps: CapList,
    /// How the legacy walk ended.
    pub caps_walk: Walked,
    /// Extended capabilities in list order.
    pub ext_caps: ExtCapList,
    /// How the extended walk ended.
    pub ext_walk: Walked,
    /// MSI, if present.
    pub msi: Option<Msi>,
    /// MSI-X, if present and decodable.
    pub msix: Option<Msix>,
    /// Whether the MSI-X table and PBA lie inside implemented memory BARs.
    pub msix_fits: bool,
    /// PCI Express capability, if present.
    pub pcie: Option<Pcie>,
    /// The ARI capability, if present.
    pub ari: Option<Cap>,
    /// Bus numbers and windows (type 1 headers).
    pub bridge: Option<BridgeInfo>,
    /// What the server made of it.
    pub state: State,
}

impl Function {
    /// Header type without the multi-function bit.
    pub fn header(&self) -> u8 {
        self.header_type & 0x7f
    }

    /// Whether this is a PCI-to-PCI bridge (type 1 header).
    pub fn is_bridge(&self) -> bool {
        self.header() == regs::HEADER_BRIDGE
    }

    /// Whether function 0 says there are more functions.
    pub fn is_multi_function(&self) -> bool {
        self.header_type & regs::HEADER_MULTI_FUNCTION != 0
    }

    /// The implemented BARs.
    pub fn bars(&self) -> impl Iterator<Item = &Bar> {
        self.bars.iter().flatten()
    }
}

/// Probe `bdf`: `Ok(None)` when nothing answers (vendor id all ones, or 0).
///
/// Sizing restores every BAR; a sizing failure is recorded in [`Function::state`], a malformed
/// capability list in [`Function::caps_walk`]/[`Function::ext_walk`].
///
/// # Errors
/// A configuration access failing outside BAR sizing and capability walks.
pub fn probe<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
) -> Result<Option<Function>, ConfigError> {
    let id = cfg.read32(bdf, regs::VENDOR_ID)?;
    let vendor = lo16(id);
    if vendor == 0xffff || vendor == 0 {
        return Ok(None);
    }
    let cmd_status = cfg.read32(bdf, regs::COMMAND)?;
    let class_rev = cfg.read32(bdf, regs::REVISION)?;
    let header_type = byte(cfg.read32(bdf, regs::CACHE_LINE)?, 2);
    let (command, status) = (lo16(cmd_status), hi16(cmd_status));
    let mut f = Function {
        bdf,
        parent: None,
        vendor,
        device: hi16(id),
        class: class_rev >> 8,
        revision: byte(class_rev, 0),
        header_type,
        command,
        cfg_size: 256,
        bars: [None; 6],
        rom: None,
        caps: CapList::new(),
        caps_walk: Walked::default(),
        ext_caps: ExtCapList::new(),
        ext_walk: Walked::default(),
        msi: None,
        msix: None,
        msix_fits: false,
        pcie: None,
        ari: None,
        bridge: None,
        state: State::Ok,
    };
    let head = caps::legacy_head(cfg, bdf, status)?;
    f.caps_walk = caps::walk_legacy(cfg, bdf, head, &mut f.caps);
    decode_legacy(cfg, &mut f);
    if f.pcie.is_some() {
        // PCIe functions have 4 KiB unless 0x100 answers all ones or aliases dword 0 (as
        // conventional devices behind some host bridges do); Linux's pci_cfg_space_size().
        let first = cfg.read32(bdf, 0x100)?;
        if first != u32::MAX && first != id {
            f.cfg_size = 4096;
            f.ext_walk = caps::walk_extended(cfg, bdf, first, &mut f.ext_caps);
            f.ari = f.ext_caps.iter().find(|c| c.id == ext::ARI).copied();
        }
    }
    match bar::size_bars(cfg, bdf, f.header(), command) {
        Ok((bars, rom)) => {
            f.bars = bars;
            f.rom = rom;
        }
        Err(e) => f.state = State::BarsUnreadable(e),
    }
    f.msix_fits = f.msix.is_some_and(|m| msix_fits(&m, &f.bars));
    if f.is_bridge() {
        f.bridge = Some(bridge_info(cfg, bdf)?);
    }
    Ok(Some(f))
}

fn decode_legacy<C: ConfigSpace + ?Sized>(cfg: &mut C, f: &mut Function) {
    for c in f.caps.iter() {
        let problem = match c.id {
            cap::MSI => {
                f.msi = Some(caps::msi(c));
                None
            }
            cap::MSIX => caps::msix(cfg, f.bdf, c).map(|m| f.msix = Some(m)).err(),
            cap::EXP => caps::pcie(cfg, f.bdf, c).map(|p| f.pcie = Some(p)).err(),
            _ => None,
        };
        if let (Some(e), None) = (problem, f.caps_walk.error) {
            f.caps_walk.error = Some(e);
        }
    }
}

/// Whether the MSI-X table and PBA lie inside implemented memory BARs.
fn msix_fits(m: &Msix, bars: &Bars) -> bool {
    let inside = |r: caps::BarRegion, len: u64| {
        bars.get(usize::from(r.bir))
            .copied()
            .flatten()
            .is_some_and(|b| {
                b.kind != BarKind::Io
                    && u64::from(r.offset)
                        .checked_add(len)
                        .is_some_and(|end| end <= b.size)
            })
    };
    inside(m.table, m.table_bytes()) && inside(m.pba, m.pba_bytes())
}

/// Decode a bridge's bus numbers and windows as currently programmed.
///
/// # Errors
/// A configuration access failing.
pub fn bridge_info<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
) -> Result<BridgeInfo, ConfigError> {
    let buses = cfg.read32(bdf, regs::PRIMARY_BUS)?;
    let io = cfg.read32(bdf, regs::IO_BASE)?;
    let mem = cfg.read32(bdf, regs::MEMORY_BASE)?;
    let pref = cfg.read32(bdf, regs::PREF_MEMORY_BASE)?;
    let io32 = io & 0xf == 1;
    let pref64 = pref & 0xf == 1;
    let (io_hi, pref_hi) = (
        if io32 {
            cfg.read32(bdf, regs::IO_BASE_UPPER16)?
        } else {
            0
        },
        if pref64 {
            (
                cfg.read32(bdf, regs::PREF_BASE_UPPER32)?,
                cfg.read32(bdf, regs::PREF_LIMIT_UPPER32)?,
            )
        } else {
            (0, 0)
        },
    );
    let window = |base: u64, limit: u64| (base <= limit).then_some(Range { base, limit });
    Ok(BridgeInfo {
        primary: byte(buses, 0),
        secondary: byte(buses, 1),
        subordinate: byte(buses, 2),
        io: window(
            u64::from(lo16(io_hi)) << 16 | u64::from(io & 0xf0) << 8,
            u64::from(hi16(io_hi)) << 16 | u64::from(io >> 8 & 0xf0) << 8 | 0xfff,
        ),
        mem: window(
            u64::from(mem & 0xfff0) << 16,
            u64::from(mem >> 16 & 0xfff0) << 16 | 0xf_ffff,
        ),
        pref: window(
            u64::from(pref_hi.0) << 32 | u64::from(pref & 0xfff0) << 16,
            u64::from(pref_hi.1) << 32 | u64::from(pref >> 16 & 0xfff0) << 16 | 0xf_ffff,
        ),
        io32,
        pref64,
    })
}

fn lo16(v: u32) -> u16 {
    // CAST: masked to 16 bits.
    (v & 0xffff) as u16
}

fn hi16(v: u32) -> u16 {
    lo16(v >> 16)
}

fn byte(v: u32, i: usize) -> u8 {
    v.to_le_bytes().get(i).copied().unwrap_or(0)
}
