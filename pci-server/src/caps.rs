//! Capability lists: bounded, loop-safe walks and the decoders the server needs.
//!
//! Both lists are linked lists in device-controlled bytes, so every walk assumes the worst: a
//! visited bitmap stops cycles, a pointer into the standard header ends the walk, an entry that
//! reads all ones (past the implemented space) ends it, and nothing walks more entries than fit
//! in the space (48 legacy, 960 extended). A malformed list keeps the entries found before the
//! fault and records a [`CapError`]; entries with id 0 ("null" capabilities that still link on,
//! seen on real hardware) are counted and skipped. No walk panics or loops.

use crate::config::{ConfigError, ConfigSpace};
use crate::regs::{self, cap, ext};
use core::fmt;
use pci_api::Bdf;

/// Most legacy capabilities a function can have: (256 - 64) / 4.
pub const MAX_LEGACY_CAPS: usize = 48;
/// Most extended capabilities the server records per function (the space could hold 960).
pub const MAX_EXT_CAPS: usize = 32;

/// One capability: its id, where it is, and its first dword (id, next pointer and, for legacy
/// capabilities, the 16-bit control register that the decoders need).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    /// Capability id (legacy: 8 bits; extended: 16 bits).
    pub id: u16,
    /// Offset in configuration space.
    pub offset: u16,
    /// The first dword of the capability.
    pub header: u32,
}

/// A legacy capability list.
pub type CapList = heapless::Vec<Cap, MAX_LEGACY_CAPS>;
/// An extended capability list.
pub type ExtCapList = heapless::Vec<Cap, MAX_EXT_CAPS>;

/// How a capability list was malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapError {
    /// The pointer to `at` revisits an entry already walked.
    Cycle {
        /// The entry pointed to a second time.
        at: u16,
    },
    /// The entry at `at` points into the standard header (legacy: below 0x40, extended: below
    /// 0x100).
    IntoHeader {
        /// The entry holding the bad pointer (0x34 for the list head).
        at: u16,
        /// The pointer.
        pointer: u16,
    },
    /// The entry at `at` reads all ones or zero: the list runs past what the function implements,
    /// or a structure there does not fit in the space.
    Truncated {
        /// The offset.
        at: u16,
    },
    /// The server's table is full; entries from `at` on are not recorded.
    TooMany {
        /// The first entry not recorded.
        at: u16,
    },
    /// The configuration access itself failed.
    Access(ConfigError),
}

impl fmt::Display for CapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cycle { at } => write!(f, "cycle back to {at:#x}"),
            Self::IntoHeader { at, pointer } => {
                write!(f, "entry at {at:#x} points into the header ({pointer:#x})")
            }
            Self::Truncated { at } => write!(f, "truncated at {at:#x}"),
            Self::TooMany { at } => write!(f, "too many entries, stopped at {at:#x}"),
            Self::Access(e) => write!(f, "{e}"),
        }
    }
}

/// What a walk found besides the entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Walked {
    /// Null (id 0) entries skipped.
    pub nulls: u16,
    /// Why the walk stopped early, if it did.
    pub error: Option<CapError>,
}

/// A set of dword slots, to stop cycles.
struct Seen<const W: usize>([u64; W]);

impl<const W: usize> Seen<W> {
    /// Mark slot `i`; false if it was already marked (or out of range).
    fn insert(&mut self, i: usize) -> bool {
        match self.0.get_mut(i / 64) {
            Some(w) if *w & 1 << (i % 64) == 0 => {
                *w |= 1 << (i % 64);
                true
            }
            _ => false,
        }
    }
}

/// The head of the legacy list: the capability pointer if the status register says there is one.
///
/// # Errors
/// The configuration access failing.
pub fn legacy_head<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    status: u16,
) -> Result<u8, ConfigError> {
    if status & regs::STATUS_CAP_LIST == 0 {
        return Ok(0);
    }
    cfg.read8(bdf, regs::CAP_PTR)
}

/// Walk the legacy list starting at `head` into `out`.
pub fn walk_legacy<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    head: u8,
    out: &mut CapList,
) -> Walked {
    let mut walked = Walked::default();
    let mut seen = Seen::<1>([0]);
    let mut at = regs::CAP_PTR;
    // The two low bits of every pointer are reserved (PCI 3.0 §6.7): software masks them.
    let mut ptr = u16::from(head & 0xfc);
    // Each iteration marks a new slot of 48, so this ends within 48 rounds.
    while ptr != 0 {
        if ptr < 0x40 {
            walked.error = Some(CapError::IntoHeader { at, pointer: ptr });
            break;
        }
        if !seen.insert(usize::from((ptr - 0x40) / 4)) {
            walked.error = Some(CapError::Cycle { at: ptr });
            break;
        }
        let header = match cfg.read32(bdf, ptr) {
            Ok(h) => h,
            Err(e) => {
                walked.error = Some(CapError::Access(e));
                break;
            }
        };
        if header == u32::MAX {
            walked.error = Some(CapError::Truncated { at: ptr });
            break;
        }
        let id = u16::try_from(header & 0xff).unwrap_or(0);
        if id == 0 {
            walked.nulls += 1;
        } else if out
            .push(Cap {
                id,
                offset: ptr,
                header,
            })
            .is_err()
        {
            walked.error = Some(CapError::TooMany { at: ptr });
            break;
        }
        at = ptr;
        ptr = u16::try_from(header >> 8 & 0xfc).unwrap_or(0);
    }
    walked
}

/// Walk the extended list into `out`, given `first`, the dword at 0x100 (the caller has read it
/// to size the configuration space). A 256-byte function reads all ones there: an empty list.
pub fn walk_extended<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    first: u32,
    out: &mut ExtCapList,
) -> Walked {
    let mut walked = Walked::default();
    let mut seen = Seen::<15>([0; 15]);
    let mut at: u16 = 0x100;
    seen.insert(0);
    let mut header = first;
    // Each iteration moves to a slot not seen before (of 960), so this ends within 960 rounds.
    loop {
        if header == u32::MAX || header == 0 {
            // At the list head this is "no extended capabilities" (PCIe 6.0 §7.6.3); elsewhere
            // a pointer led to nothing.
            if at != 0x100 {
                walked.error = Some(CapError::Truncated { at });
            }
            break;
        }
        let id = u16::try_from(header & 0xffff).unwrap_or(0);
        if id == 0 {
            walked.nulls += 1;
        } else if out
            .push(Cap {
                id,
                offset: at,
                header,
            })
            .is_err()
        {
            walked.error = Some(CapError::TooMany { at });
            break;
        }
        let next = u16::try_from(header >> 20 & 0xffc).unwrap_or(0);
        if next == 0 {
            break;
        }
        if next < 0x100 {
            walked.error = Some(CapError::IntoHeader { at, pointer: next });
            break;
        }
        if !seen.insert(usize::from((next - 0x100) / 4)) {
            walked.error = Some(CapError::Cycle { at: next });
            break;
        }
        at = next;
        header = match cfg.read32(bdf, at) {
            Ok(h) => h,
            Err(e) => {
                walked.error = Some(CapError::Access(e));
                break;
            }
        };
    }
    walked
}

/// A region inside a BAR (MSI-X table or pending-bit array).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarRegion {
    /// BAR indicator register: which BAR (0..=5; 6 and 7 are reserved).
    pub bir: u8,
    /// Offset inside that BAR (8-byte aligned).
    pub offset: u32,
}

impl BarRegion {
    fn from_reg(v: u32) -> Self {
        // CAST: three bits.
        Self {
            bir: (v & 7) as u8,
            offset: v & !7,
        }
    }
}

/// The MSI capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msi {
    /// Where it is.
    pub cap: u16,
    /// MSI enabled.
    pub enabled: bool,
    /// Vectors the function can request (1..=32).
    pub vectors: u8,
    /// 64-bit message address.
    pub is64: bool,
    /// Per-vector masking.
    pub maskable: bool,
}

/// The MSI-X capability (PCIe 6.0 §7.7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msix {
    /// Where it is.
    pub cap: u16,
    /// Table entries (1..=2048).
    pub entries: u16,
    /// Where the vector table is.
    pub table: BarRegion,
    /// Where the pending-bit array is.
    pub pba: BarRegion,
    /// MSI-X enabled.
    pub enabled: bool,
    /// All vectors masked.
    pub masked: bool,
}

impl Msix {
    /// Bytes of the vector table.
    pub fn table_bytes(&self) -> u64 {
        u64::from(self.entries) * regs::MSIX_ENTRY_SIZE
    }

    /// Bytes of the pending-bit array (one bit per entry, in whole qwords).
    pub fn pba_bytes(&self) -> u64 {
        u64::from(self.entries).div_ceil(64) * 8
    }
}

/// The PCI Express capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pcie {
    /// Where it is.
    pub cap: u16,
    /// Device/port type (see [`crate::regs::port`]).
    pub port_type: u8,
    /// Capability version.
    pub version: u8,
    /// A port that can forward ARI function numbers (DevCap2 bit 5).
    pub ari_forwarding: bool,
}

impl Pcie {
    /// Whether only device 0 can sit below this port (root and switch downstream ports: PCIe
    /// links are point to point).
    pub fn is_downstream_port(&self) -> bool {
        self.port_type == regs::port::ROOT_PORT || self.port_type == regs::port::DOWNSTREAM
    }
}

/// Decode MSI from its capability header.
pub fn msi(c: &Cap) -> Msi {
    // CAST: upper 16 bits of the header are the control register.
    let flags = (c.header >> 16) as u16;
    Msi {
        cap: c.offset,
        enabled: flags & regs::MSI_FLAGS_ENABLE != 0,
        vectors: 1 << (flags >> 1 & 7).min(5),
        is64: flags & regs::MSI_FLAGS_64BIT != 0,
        maskable: flags & regs::MSI_FLAGS_MASKBIT != 0,
    }
}

/// Decode MSI-X (two more reads: table and PBA locations).
///
/// # Errors
/// [`CapError::Truncated`] when the 12-byte structure runs past 0xff; [`CapError::Access`].
pub fn msix<C: ConfigSpace + ?Sized>(cfg: &mut C, bdf: Bdf, c: &Cap) -> Result<Msix, CapError> {
    if c.offset + 12 > 0x100 {
        return Err(CapError::Truncated { at: c.offset });
    }
    // CAST: upper 16 bits of the header are the control register.
    let flags = (c.header >> 16) as u16;
    let table = cfg
        .read32(bdf, c.offset + regs::MSIX_TABLE)
        .map_err(CapError::Access)?;
    let pba = cfg
        .read32(bdf, c.offset + regs::MSIX_PBA)
        .map_err(CapError::Access)?;
    Ok(Msix {
        cap: c.offset,
        entries: (flags & regs::MSIX_FLAGS_QSIZE) + 1,
        table: BarRegion::from_reg(table),
        pba: BarRegion::from_reg(pba),
        enabled: flags & regs::MSIX_FLAGS_ENABLE != 0,
        masked: flags & regs::MSIX_FLAGS_MASKALL != 0,
    })
}

/// Decode the PCIe capability (one more read, DevCap2, for version 2 capabilities of ports).
///
/// # Errors
/// [`CapError::Truncated`] when the structure runs past 0xff; [`CapError::Access`].
pub fn pcie<C: ConfigSpace + ?Sized>(cfg: &mut C, bdf: Bdf, c: &Cap) -> Result<Pcie, CapError> {
    // CAST: upper 16 bits of the header are the flags register.
    let flags = (c.header >> 16) as u16;
    // CAST: 4-bit fields.
    let (version, port_type) = ((flags & 0xf) as u8, (flags >> 4 & 0xf) as u8);
    let mut p = Pcie {
        cap: c.offset,
        port_type,
        version,
        ari_forwarding: false,
    };
    if version >= 2 && p.is_downstream_port() {
        if c.offset + regs::EXP_DEVCTL2 + 2 > 0x100 {
            return Err(CapError::Truncated { at: c.offset });
        }
        let devcap2 = cfg
            .read32(bdf, c.offset + regs::EXP_DEVCAP2)
            .map_err(CapError::Access)?;
        p.ari_forwarding = devcap2 & regs::EXP_DEVCAP2_ARI != 0;
    }
    Ok(p)
}

/// The next function number from an ARI capability (0 = last).
///
/// # Errors
/// The configuration access failing.
pub fn ari_next<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    c: &Cap,
) -> Result<u8, ConfigError> {
    Ok(cfg.read16(bdf, c.offset + ext::ARI_CAP)?.to_be_bytes()[0])
}

/// A short name for a legacy capability id (lspci's words where short).
pub fn legacy_name(id: u16) -> &'static str {
    match id {
        cap::PM => "PM",
        0x02 => "AGP",
        cap::VPD => "VPD",
        0x04 => "SlotID",
        cap::MSI => "MSI",
        0x06 => "HotSwap",
        cap::PCIX => "PCI-X",
        0x08 => "HT",
        cap::VNDR => "Vendor",
        0x0a => "Debug",
        0x0b => "CCRC",
        0x0c => "SHPC",
        cap::SSVID => "SSVID",
        0x0e => "AGP3",
        0x0f => "SecDev",
        cap::EXP => "PCIe",
        cap::MSIX => "MSI-X",
        0x12 => "SATA",
        0x13 => "AF",
        0x14 => "EA",
        _ => "?",
    }
}

/// A short name for an extended capability id.
pub fn ext_name(id: u16) -> &'static str {
    match id {
        ext::AER => "AER",
        0x02 | 0x09 => "VC",
        0x03 => "DSN",
        0x04 => "Power",
        0x05 => "RCLink",
        0x08 => "MFVC",
        0x0a => "RCRB",
        0x0b => "Vendor",
        ext::ACS => "ACS",
        ext::ARI => "ARI",
        0x0f => "ATS",
        ext::SRIOV => "SR-IOV",
        0x11 => "MR-IOV",
        0x12 => "Multicast",
        0x13 => "PRI",
        ext::REBAR => "ReBAR",
        0x16 => "DPA",
        0x17 => "TPH",
        0x18 => "LTR",
        0x19 => "SecPCIe",
        0x1a => "PMUX",
        0x1b => "PASID",
        0x1c => "LNR",
        0x1d => "DPC",
        0x1e => "L1SS",
        0x1f => "PTM",
        0x23 => "DVSEC",
        0x25 => "DLF",
        0x26 => "PL16",
        0x27 => "LMR",
        0x2a => "PL32",
        _ => "?",
    }
}
