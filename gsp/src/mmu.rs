//! GPU page-table formats, MMU version 2 (Pascal through Ada: Turing TU10x, Ampere GA10x and Ada
//! AD10x all use it), one definition shared by gpu-server (which *writes* page tables) and the
//! GSP model (which *walks* them).
//!
//! Sources (bit positions are NVIDIA's, names kept so they grep):
//! - OpenRM `src/common/inc/swref/published/pascal/gp100/dev_mmu.h`: `NV_MMU_VER2_PDE_*`
//!   (aperture 2:1, VOL 3, ADDRESS_SYS 53:8, ADDRESS_VID 32:8, shift 12), `NV_MMU_VER2_DUAL_PDE_*`
//!   (big: aperture 2:1, VOL 3, address 53:4 shift 8; small: aperture 66:65, VOL 67, address
//!   117:72 shift 12; 16 bytes), `NV_MMU_VER2_PTE_*` (VALID 0, aperture 2:1 with VIDEO = 0,
//!   VOL 3, ENCRYPTED 4, PRIVILEGE 5, READ_ONLY 6, ATOMIC_DISABLE 7, ADDRESS_SYS 53:8,
//!   ADDRESS_VID 32:8, peer id 35:33, COMPTAGLINE 53:36, KIND 63:56).
//! - nouveau `drivers/gpu/drm/nouveau/nvkm/subdev/mmu/vmmgp100.c`: the level geometry
//!   (`gp100_vmm_desc_12` / `gp100_vmm_desc_16`), `gp100_vmm_pde` (PDE = addr >> 4 | aperture,
//!   VOL for coherent system memory), a PD0 entry with bit 0 set is a 2 MiB PTE
//!   (`gp100_vmm_pd0_pte`), "VALID_FALSE + VOL" = sparse (`gp100_vmm_pgt_sparse`,
//!   `gp100_vmm_pd0_sparse`) and "VALID_FALSE + PRIV" in a 64 KiB PTE = ignore the 4 KiB PTEs
//!   below it (`gp100_vmm_lpt_invalid`).
//!
//! A 49-bit GPU virtual address splits like this (nouveau `gp100_vmm.page[]`):
//!
//! | level | VA bits | entries | entry | table |
//! |---|---|---|---|---|
//! | PD3 | 48:47 | 4 | 8 B | 32 B |
//! | PD2 | 46:38 | 512 | 8 B | 4 KiB |
//! | PD1 | 37:29 | 512 | 8 B | 4 KiB |
//! | PD0 | 28:21 | 256 | 16 B (dual) | 4 KiB |
//! | PT, 64 KiB pages | 20:16 | 32 | 8 B | 256 B |
//! | PT, 4 KiB pages | 20:12 | 512 | 8 B | 4 KiB |
//!
//! A PD0 entry is either a 2 MiB PTE (bit 0 set) or a pair of page-table pointers (64 KiB "big"
//! table in the low half, 4 KiB "small" table in the high half). Where both exist, a valid big
//! PTE wins, a big PTE of zero defers to the small table, and a big PTE with only PRIV set means
//! "unmapped, do not look at the small table".
//!
//! Trust: everything decoded here may come from a peer; decoding never panics and reports
//! malformed entries as [`MmuError`].

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Width of a GPU virtual address (PD3 covers bits 48:47).
pub const VA_BITS: u32 = 49;

/// Where a page-table entry points (the aperture field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Video memory (the GPU's framebuffer).
    Vram,
    /// System memory, snooped (`SYSTEM_COHERENT_MEMORY`).
    SysCoherent,
    /// System memory, not snooped (`SYSTEM_NON_COHERENT_MEMORY`).
    SysNonCoherent,
}

impl Target {
    /// The widest address the entry's address field can hold for this aperture: ADDRESS_VID is
    /// bits 32:8 (25 bits of 4 KiB frames, 128 GiB), ADDRESS_SYS bits 53:8 (46 bits).
    pub const fn max_address(self) -> u64 {
        match self {
            Self::Vram => 1 << (25 + 12),
            Self::SysCoherent | Self::SysNonCoherent => 1 << (46 + 12),
        }
    }
}

/// The three page sizes MMU v2 maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB, from a small page table.
    K4,
    /// 64 KiB, from a big page table (the only big page size VER2 uses on Turing and later).
    K64,
    /// 2 MiB, a PTE stored directly in PD0.
    M2,
}

impl PageSize {
    /// log2 of the size.
    pub const fn shift(self) -> u32 {
        match self {
            Self::K4 => 12,
            Self::K64 => 16,
            Self::M2 => 21,
        }
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        1 << self.shift()
    }
}

/// One level of the page-table tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Root page directory, VA bits 48:47.
    Pd3,
    /// VA bits 46:38.
    Pd2,
    /// VA bits 37:29.
    Pd1,
    /// Dual page directory, VA bits 28:21.
    Pd0,
    /// Page table of 64 KiB pages, VA bits 20:16.
    PtBig,
    /// Page table of 4 KiB pages, VA bits 20:12.
    PtSmall,
}

impl Level {
    /// The lowest VA bit this level indexes.
    pub const fn shift(self) -> u32 {
        match self {
            Self::Pd3 => 47,
            Self::Pd2 => 38,
            Self::Pd1 => 29,
            Self::Pd0 => 21,
            Self::PtBig => 16,
            Self::PtSmall => 12,
        }
    }

    /// How many VA bits this level indexes.
    pub const fn bits(self) -> u32 {
        match self {
            Self::Pd3 => 2,
            Self::Pd2 | Self::Pd1 | Self::PtSmall => 9,
            Self::Pd0 => 8,
            Self::PtBig => 5,
        }
    }

    /// Entries in one table of this level.
    pub const fn entries(self) -> u64 {
        1 << self.bits()
    }

    /// Bytes per entry (PD0 entries are dual, 16 bytes).
    pub const fn entry_size(self) -> u64 {
        match self {
            Self::Pd0 => 16,
            _ => 8,
        }
    }

    /// Bytes of one table of this level (also its required alignment, at most 4 KiB).
    pub const fn table_size(self) -> u64 {
        self.entries() * self.entry_size()
    }

    /// The entry index `va` selects in a table of this level.
    pub const fn index(self, va: u64) -> u64 {
        (va >> self.shift()) & (self.entries() - 1)
    }

    /// Byte offset of `va`'s entry inside a table of this level.
    pub const fn entry_offset(self, va: u64) -> u64 {
        self.index(va) * self.entry_size()
    }

    /// Bytes of VA one entry of this level covers.
    pub const fn coverage(self) -> u64 {
        1 << self.shift()
    }
}

/// Why an entry could not be encoded or decoded. Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MmuError {
    /// The address is not aligned as the field or the page size requires.
    Misaligned {
        /// The address.
        addr: u64,
        /// The alignment it needs.
        align: u64,
    } = 1,
    /// The address does not fit the aperture's address field.
    AddressTooWide {
        /// The address.
        addr: u64,
    } = 2,
    /// The virtual address has bits at or above bit 49.
    VaOutOfRange {
        /// The virtual address.
        va: u64,
    } = 3,
    /// The entry uses the PEER aperture, which nothing in this stack maps.
    PeerAperture = 4,
    /// A video-memory entry has peer-id bits (35:33) set.
    PeerBitsInVram = 5,
    /// A PDE is malformed: a valid aperture with the IS_PTE bit set outside PD0.
    PteBitInPde = 6,
}

impl core::fmt::Display for MmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Misaligned { addr, align } => {
                write!(f, "address {addr:#x} not {align:#x}-aligned")
            }
            Self::AddressTooWide { addr } => {
                write!(f, "address {addr:#x} too wide for its aperture")
            }
            Self::VaOutOfRange { va } => write!(f, "GPU VA {va:#x} beyond 49 bits"),
            Self::PeerAperture => write!(f, "PEER aperture is not mapped by this stack"),
            Self::PeerBitsInVram => write!(f, "video-memory entry with peer-id bits set"),
            Self::PteBitInPde => write!(f, "PDE with bit 0 (IS_PTE/VALID) set"),
        }
    }
}

const APERTURE_SHIFT: u32 = 1;
const APERTURE_MASK: u64 = 0b11 << APERTURE_SHIFT;
const BIT_VALID: u64 = 1 << 0;
const BIT_VOL: u64 = 1 << 3;
const BIT_ENCRYPTED: u64 = 1 << 4;
const BIT_PRIVILEGE: u64 = 1 << 5;
const BIT_READ_ONLY: u64 = 1 << 6;
const BIT_ATOMIC_DISABLE: u64 = 1 << 7;
/// ADDRESS_SYS 53:8 / ADDRESS_VID 32:8, frame number (address >> 12) placed at bit 8.
const ADDR_SHIFT: u32 = 8;
const ADDR_SYS_MASK: u64 = ((1 << 46) - 1) << ADDR_SHIFT;
const ADDR_VID_MASK: u64 = ((1 << 25) - 1) << ADDR_SHIFT;
/// NV_MMU_VER2_PTE_ADDRESS_VID_PEER 35:33.
const VID_PEER_MASK: u64 = 0b111 << 33;
/// NV_MMU_VER2_DUAL_PDE_ADDRESS_BIG_*: field starts at bit 4 and holds address >> 8.
const BIG_ADDR_SHIFT: u32 = 4;
const BIG_SYS_MASK: u64 = ((1 << 50) - 1) << BIG_ADDR_SHIFT;
const BIG_VID_MASK: u64 = ((1 << 29) - 1) << BIG_ADDR_SHIFT;
const KIND_SHIFT: u32 = 56;

/// PDE aperture codes (`NV_MMU_VER2_PDE_APERTURE_*`): 0 means invalid.
const fn pde_aperture(t: Target) -> u64 {
    match t {
        Target::Vram => 1,
        Target::SysCoherent => 2,
        Target::SysNonCoherent => 3,
    }
}

/// PTE aperture codes (`NV_MMU_VER2_PTE_APERTURE_*`): VIDEO is 0, PEER 1.
const fn pte_aperture(t: Target) -> u64 {
    match t {
        Target::Vram => 0,
        Target::SysCoherent => 2,
        Target::SysNonCoherent => 3,
    }
}

/// `align` is a power of two.
fn check_addr(target: Target, addr: u64, align: u64) -> Result<(), MmuError> {
    if addr & (align - 1) != 0 {
        return Err(MmuError::Misaligned { addr, align });
    }
    if addr >= target.max_address() {
        return Err(MmuError::AddressTooWide { addr });
    }
    Ok(())
}

/// The frame-number field at bits 53:8 (system) or 32:8 (video, peer bits must be clear).
fn decode_frame(raw: u64, target: Target) -> Result<u64, MmuError> {
    match target {
        Target::Vram => {
            if raw & VID_PEER_MASK != 0 {
                return Err(MmuError::PeerBitsInVram);
            }
            Ok(((raw & ADDR_VID_MASK) >> ADDR_SHIFT) << 12)
        }
        Target::SysCoherent | Target::SysNonCoherent => {
            Ok(((raw & ADDR_SYS_MASK) >> ADDR_SHIFT) << 12)
        }
    }
}

/// What a directory entry (PD3, PD2, PD1, or one half of a PD0 entry) says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directory {
    /// Nothing below: an access faults.
    Invalid,
    /// Sparse (aperture invalid, VOL set): reads return zero, writes are dropped.
    Sparse,
    /// The next-level table is at `addr` in `target`.
    Table {
        /// Aperture of the next table.
        target: Target,
        /// Its physical address.
        addr: u64,
    },
}

/// A PD3, PD2 or PD1 entry (`NV_MMU_VER2_PDE`, 8 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pde(pub u64);

impl Pde {
    /// An invalid entry.
    pub const INVALID: Self = Self(0);
    /// A sparse entry (VALID_FALSE + VOL).
    pub const SPARSE: Self = Self(BIT_VOL);

    /// An entry pointing at the next-level table at `addr` (4 KiB aligned) in `target`. Coherent
    /// system memory is marked volatile, as nouveau's `gp100_vmm_pde` does.
    ///
    /// # Errors
    /// [`MmuError::Misaligned`] or [`MmuError::AddressTooWide`].
    pub fn table(target: Target, addr: u64) -> Result<Self, MmuError> {
        check_addr(target, addr, 1 << 12)?;
        let vol = if target == Target::SysCoherent {
            BIT_VOL
        } else {
            0
        };
        Ok(Self(
            (addr >> 4) | (pde_aperture(target) << APERTURE_SHIFT) | vol,
        ))
    }

    /// Decode the entry.
    ///
    /// # Errors
    /// [`MmuError::PteBitInPde`] when bit 0 is set (only PD0 holds PTEs),
    /// [`MmuError::PeerBitsInVram`] for a video-memory entry with peer bits.
    pub fn decode(self) -> Result<Directory, MmuError> {
        if self.0 & BIT_VALID != 0 {
            return Err(MmuError::PteBitInPde);
        }
        decode_directory(self.0, false)
    }
}

/// Decode a directory half: aperture at 2:1, VOL at 3, and the address field of a normal PDE
/// (`big == false`) or of a dual PDE's big half (`big == true`, bits 53:4 holding addr >> 8).
fn decode_directory(raw: u64, big: bool) -> Result<Directory, MmuError> {
    let target = match (raw & APERTURE_MASK) >> APERTURE_SHIFT {
        1 => Target::Vram,
        2 => Target::SysCoherent,
        3 => Target::SysNonCoherent,
        _ if raw & BIT_VOL != 0 => return Ok(Directory::Sparse),
        _ => return Ok(Directory::Invalid),
    };
    let addr = if big {
        let mask = if target == Target::Vram {
            BIG_VID_MASK
        } else {
            BIG_SYS_MASK
        };
        if target == Target::Vram && raw & VID_PEER_MASK != 0 {
            return Err(MmuError::PeerBitsInVram);
        }
        ((raw & mask) >> BIG_ADDR_SHIFT) << 8
    } else {
        decode_frame(raw, target)?
    };
    Ok(Directory::Table { target, addr })
}

/// A PD0 entry (`NV_MMU_VER2_DUAL_PDE`, 16 bytes, little-endian halves).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct DualPde {
    /// Bits 63:0: the big (64 KiB) page-table pointer, or a 2 MiB PTE when bit 0 is set.
    pub big: u64,
    /// Bits 127:64: the small (4 KiB) page-table pointer.
    pub small: u64,
}

// dev_mmu.h: NV_MMU_VER2_DUAL_PDE__SIZE 16; the small half starts at bit 64.
const _: () = assert!(core::mem::size_of::<DualPde>() == 16);
const _: () = assert!(core::mem::offset_of!(DualPde, big) == 0);
const _: () = assert!(core::mem::offset_of!(DualPde, small) == 8);

/// What a PD0 entry says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pd0 {
    /// A 2 MiB page (the low half is a PTE with VALID set).
    Page(Pte),
    /// Page-table pointers: big (64 KiB pages) and small (4 KiB pages).
    Tables {
        /// The low half.
        big: Directory,
        /// The high half.
        small: Directory,
    },
}

impl DualPde {
    /// An invalid entry.
    pub const INVALID: Self = Self { big: 0, small: 0 };
    /// A sparse entry (VALID_FALSE + VOL_BIG, nouveau `gp100_vmm_pd0_sparse`).
    pub const SPARSE: Self = Self {
        big: BIT_VOL,
        small: 0,
    };

    /// An entry holding a 2 MiB PTE (build it with [`Pte::page`] and [`PageSize::M2`]).
    pub const fn page(pte: Pte) -> Self {
        Self {
            big: pte.0,
            small: 0,
        }
    }

    /// An entry pointing at a big page table (256-byte aligned) and/or a small one (4 KiB
    /// aligned); `None` leaves that half invalid.
    ///
    /// # Errors
    /// [`MmuError::Misaligned`] or [`MmuError::AddressTooWide`].
    pub fn tables(
        big: Option<(Target, u64)>,
        small: Option<(Target, u64)>,
    ) -> Result<Self, MmuError> {
        let mut e = Self::INVALID;
        if let Some((t, addr)) = big {
            check_addr(t, addr, Level::PtBig.table_size())?;
            let vol = if t == Target::SysCoherent { BIT_VOL } else { 0 };
            e.big = ((addr >> 8) << BIG_ADDR_SHIFT) | (pde_aperture(t) << APERTURE_SHIFT) | vol;
        }
        if let Some((t, addr)) = small {
            e.small = Pde::table(t, addr)?.0;
        }
        Ok(e)
    }

    /// Decode the entry.
    ///
    /// # Errors
    /// [`MmuError`] for a malformed 2 MiB PTE or pointer.
    pub fn decode(self) -> Result<Pd0, MmuError> {
        if self.big & BIT_VALID != 0 {
            return Ok(Pd0::Page(Pte(self.big)));
        }
        Ok(Pd0::Tables {
            big: decode_directory(self.big, true)?,
            small: Pde(self.small).decode()?,
        })
    }
}

/// Attributes of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PteFlags {
    /// READ_ONLY (bit 6): writes fault.
    pub read_only: bool,
    /// PRIVILEGE (bit 5): only privileged contexts may access.
    pub privileged: bool,
    /// VOL (bit 3): bypass the L2 (nouveau sets it for system memory).
    pub volatile: bool,
    /// ATOMIC_DISABLE (bit 7).
    pub atomic_disable: bool,
    /// ENCRYPTED (bit 4).
    pub encrypted: bool,
    /// KIND (63:56): 0 is pitch (linear); compressed kinds need VRAM and comptags.
    pub kind: u8,
}

/// What a PTE says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PteState {
    /// Unmapped: an access faults.
    Invalid,
    /// Sparse (VALID_FALSE + VOL): reads return zero, writes are dropped.
    Sparse,
    /// In a big page table only: unmapped, and the small table must not be consulted
    /// (VALID_FALSE + PRIV).
    IgnoreSmall,
    /// Mapped.
    Valid {
        /// Aperture of the page.
        target: Target,
        /// Physical address of the page.
        addr: u64,
        /// Its attributes.
        flags: PteFlags,
    },
}

/// A page-table entry (`NV_MMU_VER2_PTE`, 8 bytes), also the low half of a 2 MiB PD0 entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pte(pub u64);

impl Pte {
    /// An invalid entry.
    pub const INVALID: Self = Self(0);
    /// A sparse entry (VALID_FALSE + VOL, nouveau `gp100_vmm_pgt_sparse`).
    pub const SPARSE: Self = Self(BIT_VOL);
    /// A big-page entry that hides the small table below it (VALID_FALSE + PRIV, nouveau
    /// `gp100_vmm_lpt_invalid`).
    pub const IGNORE_SMALL: Self = Self(BIT_PRIVILEGE);

    /// A valid entry mapping the page of `size` at `addr` in `target`.
    ///
    /// # Errors
    /// [`MmuError::Misaligned`] when `addr` is not aligned to the page size,
    /// [`MmuError::AddressTooWide`] when it does not fit the aperture.
    pub fn page(
        target: Target,
        addr: u64,
        size: PageSize,
        flags: PteFlags,
    ) -> Result<Self, MmuError> {
        check_addr(target, addr, size.bytes())?;
        let mut v = BIT_VALID | (pte_aperture(target) << APERTURE_SHIFT) | (addr >> 4);
        v |= u64::from(flags.kind) << KIND_SHIFT;
        for (on, bit) in [
            (flags.volatile, BIT_VOL),
            (flags.encrypted, BIT_ENCRYPTED),
            (flags.privileged, BIT_PRIVILEGE),
            (flags.read_only, BIT_READ_ONLY),
            (flags.atomic_disable, BIT_ATOMIC_DISABLE),
        ] {
            if on {
                v |= bit;
            }
        }
        Ok(Self(v))
    }

    /// Decode the entry.
    ///
    /// # Errors
    /// [`MmuError::PeerAperture`] for a valid PEER entry, [`MmuError::PeerBitsInVram`] for a
    /// video-memory entry with peer bits.
    pub fn decode(self) -> Result<PteState, MmuError> {
        let v = self.0;
        if v & BIT_VALID == 0 {
            return Ok(if v & BIT_VOL != 0 {
                PteState::Sparse
            } else if v & BIT_PRIVILEGE != 0 {
                PteState::IgnoreSmall
            } else {
                PteState::Invalid
            });
        }
        let target = match (v & APERTURE_MASK) >> APERTURE_SHIFT {
            0 => Target::Vram,
            2 => Target::SysCoherent,
            3 => Target::SysNonCoherent,
            _ => return Err(MmuError::PeerAperture),
        };
        let flags = PteFlags {
            read_only: v & BIT_READ_ONLY != 0,
            privileged: v & BIT_PRIVILEGE != 0,
            volatile: v & BIT_VOL != 0,
            atomic_disable: v & BIT_ATOMIC_DISABLE != 0,
            encrypted: v & BIT_ENCRYPTED != 0,
            // CAST: shifting a u64 right by 56 leaves 8 bits.
            kind: (v >> KIND_SHIFT) as u8,
        };
        Ok(PteState::Valid {
            target,
            addr: decode_frame(v, target)?,
            flags,
        })
    }
}

/// Physical memory as the page-table walker reads it.
pub trait PageTableMemory {
    /// Why a read failed (e.g. the address is not backed).
    type Error;

    /// Read the little-endian `u64` at `addr` in `target`.
    ///
    /// # Errors
    /// Whatever the memory reports for an unbacked or out-of-range address.
    fn read_u64(&mut self, target: Target, addr: u64) -> Result<u64, Self::Error>;
}

/// Where a virtual address lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Translation {
    /// A mapped page.
    Mapped {
        /// Aperture of the page.
        target: Target,
        /// Physical address of the byte `va` names.
        phys: u64,
        /// The page size that mapped it.
        page: PageSize,
        /// The PTE's attributes.
        flags: PteFlags,
    },
    /// A sparse range: reads return zero, writes are dropped.
    Sparse,
}

impl Translation {
    /// Bytes from the translated address to the end of its page (a sparse range counts as 4 KiB
    /// granules), so a caller can copy page by page.
    pub fn bytes_to_page_end(&self, va: u64) -> u64 {
        let size = match self {
            Self::Mapped { page, .. } => page.bytes(),
            Self::Sparse => PageSize::K4.bytes(),
        };
        size - (va & (size - 1))
    }
}

/// Why a walk failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError<E> {
    /// Reading a table failed (unbacked memory): the physical address that was read.
    Memory {
        /// The table entry's aperture.
        target: Target,
        /// The table entry's address.
        addr: u64,
        /// The memory's error.
        err: E,
    },
    /// No mapping: the level whose entry was invalid.
    NotMapped {
        /// The level.
        level: Level,
    },
    /// A malformed entry at `level`.
    Malformed {
        /// The level.
        level: Level,
        /// What is wrong with it.
        err: MmuError,
    },
    /// The VA is beyond 49 bits.
    VaOutOfRange,
}

fn read_entry<M: PageTableMemory>(
    mem: &mut M,
    target: Target,
    addr: u64,
) -> Result<u64, WalkError<M::Error>> {
    mem.read_u64(target, addr)
        .map_err(|err| WalkError::Memory { target, addr, err })
}

fn leaf<E>(
    pte: Pte,
    level: Level,
    page: PageSize,
    va: u64,
) -> Result<Option<Translation>, WalkError<E>> {
    match pte
        .decode()
        .map_err(|err| WalkError::Malformed { level, err })?
    {
        PteState::Valid {
            target,
            addr,
            flags,
        } => Ok(Some(Translation::Mapped {
            target,
            phys: addr | (va & (page.bytes() - 1)),
            page,
            flags,
        })),
        PteState::Sparse => Ok(Some(Translation::Sparse)),
        // A 2 MiB or 4 KiB PTE with PRIV alone is simply invalid.
        PteState::Invalid | PteState::IgnoreSmall => Ok(None),
    }
}

/// Translate `va` by walking the tables rooted at the PD3 at `root` (as the driver registered
/// it, e.g. with `NV0080_CTRL_CMD_DMA_SET_PAGE_DIRECTORY`).
///
/// # Errors
/// [`WalkError::NotMapped`] for an invalid entry, [`WalkError::Malformed`] for a bad one,
/// [`WalkError::Memory`] when a table read fails, [`WalkError::VaOutOfRange`] past 49 bits.
pub fn translate<M: PageTableMemory>(
    mem: &mut M,
    root: (Target, u64),
    va: u64,
) -> Result<Translation, WalkError<M::Error>> {
    if va >> VA_BITS != 0 {
        return Err(WalkError::VaOutOfRange);
    }
    let (mut target, mut table) = root;
    for level in [Level::Pd3, Level::Pd2, Level::Pd1] {
        let raw = read_entry(mem, target, table.wrapping_add(level.entry_offset(va)))?;
        match Pde(raw)
            .decode()
            .map_err(|err| WalkError::Malformed { level, err })?
        {
            Directory::Table { target: t, addr } => (target, table) = (t, addr),
            Directory::Sparse => return Ok(Translation::Sparse),
            Directory::Invalid => return Err(WalkError::NotMapped { level }),
        }
    }
    let at = table.wrapping_add(Level::Pd0.entry_offset(va));
    let dual = DualPde {
        big: read_entry(mem, target, at)?,
        small: read_entry(mem, target, at.wrapping_add(8))?,
    };
    let (big, small) = match dual.decode().map_err(|err| WalkError::Malformed {
        level: Level::Pd0,
        err,
    })? {
        Pd0::Page(pte) => {
            return leaf(pte, Level::Pd0, PageSize::M2, va)?
                .ok_or(WalkError::NotMapped { level: Level::Pd0 });
        }
        Pd0::Tables { big, small } => (big, small),
    };
    if big == Directory::Sparse {
        return Ok(Translation::Sparse);
    }
    if let Directory::Table { target: t, addr } = big {
        let raw = read_entry(mem, t, addr.wrapping_add(Level::PtBig.entry_offset(va)))?;
        let pte = Pte(raw);
        match pte.decode().map_err(|err| WalkError::Malformed {
            level: Level::PtBig,
            err,
        })? {
            PteState::Valid { .. } | PteState::Sparse => {
                if let Some(tr) = leaf(pte, Level::PtBig, PageSize::K64, va)? {
                    return Ok(tr);
                }
            }
            PteState::IgnoreSmall => {
                return Err(WalkError::NotMapped {
                    level: Level::PtBig,
                })
            }
            // A zero big PTE defers to the small table.
            PteState::Invalid => {}
        }
    }
    match small {
        Directory::Table { target: t, addr } => {
            let raw = read_entry(mem, t, addr.wrapping_add(Level::PtSmall.entry_offset(va)))?;
            leaf(Pte(raw), Level::PtSmall, PageSize::K4, va)?.ok_or(WalkError::NotMapped {
                level: Level::PtSmall,
            })
        }
        Directory::Sparse => Ok(Translation::Sparse),
        Directory::Invalid => Err(WalkError::NotMapped {
            level: if matches!(big, Directory::Table { .. }) {
                Level::PtBig
            } else {
                Level::Pd0
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::collections::HashMap;

    /// Sparse test memory: (target, 8-byte-aligned address) -> word; unbacked reads fail.
    #[derive(Default)]
    struct Mem(HashMap<(u8, u64), u64>);

    fn key(t: Target) -> u8 {
        match t {
            Target::Vram => 0,
            Target::SysCoherent => 1,
            Target::SysNonCoherent => 2,
        }
    }

    impl Mem {
        fn put(&mut self, t: Target, addr: u64, v: u64) {
            self.0.insert((key(t), addr), v);
        }
        fn zero_table(&mut self, t: Target, addr: u64, level: Level) {
            for i in 0..level.table_size() / 8 {
                self.put(t, addr + i * 8, 0);
            }
        }
    }

    impl PageTableMemory for Mem {
        type Error = u64;
        fn read_u64(&mut self, t: Target, addr: u64) -> Result<u64, u64> {
            self.0.get(&(key(t), addr)).copied().ok_or(addr)
        }
    }

    #[test]
    fn level_geometry_matches_nouveau_desc() {
        // gp100_vmm_desc_12/16: bits and entry sizes; coverage = 1 << shift.
        assert_eq!(Level::Pd3.table_size(), 0x20);
        assert_eq!(Level::Pd2.table_size(), 0x1000);
        assert_eq!(Level::Pd0.table_size(), 0x1000);
        assert_eq!(Level::PtBig.table_size(), 0x100);
        assert_eq!(Level::PtSmall.table_size(), 0x1000);
        let va = 0x1_2345_6789_a000u64;
        assert_eq!(Level::Pd3.index(va), (va >> 47) & 3);
        assert_eq!(Level::Pd0.entry_offset(va), ((va >> 21) & 0xff) * 16);
        assert_eq!(Level::PtBig.index(va), (va >> 16) & 0x1f);
    }

    #[test]
    fn encodings_match_nouveau_formulas() {
        // gp100_vmm_pde: VRAM = addr >> 4 | 1 << 1; HOST = addr >> 4 | 2 << 1 | VOL.
        assert_eq!(
            Pde::table(Target::Vram, 0x1234_5000).unwrap().0,
            0x0123_4502
        );
        assert_eq!(
            Pde::table(Target::SysCoherent, 0x8_0000_1000).unwrap().0,
            0x8000_0100 | 4 | 8
        );
        // gp100_vmm_valid: PTE = addr >> 4 | VALID | aper << 1 | vol << 3 | ro << 6 | kind << 56.
        let f = PteFlags {
            read_only: true,
            volatile: true,
            kind: 0x7a,
            ..PteFlags::default()
        };
        let pte = Pte::page(Target::SysNonCoherent, 0x4000_0000, PageSize::K4, f).unwrap();
        assert_eq!(
            pte.0,
            0x7a00_0000_0400_0000 | 1 | (3 << 1) | (1 << 3) | (1 << 6)
        );
        // A 64 KiB table in the big half is 256-byte aligned: same addr >> 4 encoding.
        let d = DualPde::tables(Some((Target::Vram, 0x10_0100)), None).unwrap();
        assert_eq!(d.big, 0x1_0010 | 2);
    }

    #[test]
    fn encode_rejects_bad_addresses() {
        assert_eq!(
            Pde::table(Target::Vram, 0x1001),
            Err(MmuError::Misaligned {
                addr: 0x1001,
                align: 0x1000
            })
        );
        assert_eq!(
            Pde::table(Target::Vram, 1 << 37),
            Err(MmuError::AddressTooWide { addr: 1 << 37 })
        );
        assert!(Pte::page(Target::Vram, 0x1_0000, PageSize::M2, PteFlags::default()).is_err());
        assert!(DualPde::tables(None, Some((Target::Vram, 0x80))).is_err());
    }

    #[test]
    fn decode_roundtrips_and_rejects_malformed() {
        for t in [Target::Vram, Target::SysCoherent, Target::SysNonCoherent] {
            let addr = 0x1_2345_6000 & (t.max_address() - 1);
            assert_eq!(
                Pde::table(t, addr).unwrap().decode(),
                Ok(Directory::Table { target: t, addr })
            );
            let f = PteFlags {
                privileged: true,
                atomic_disable: true,
                encrypted: true,
                ..PteFlags::default()
            };
            assert_eq!(
                Pte::page(t, addr, PageSize::K4, f).unwrap().decode(),
                Ok(PteState::Valid {
                    target: t,
                    addr,
                    flags: f
                })
            );
        }
        assert_eq!(Pde::SPARSE.decode(), Ok(Directory::Sparse));
        assert_eq!(Pde(1).decode(), Err(MmuError::PteBitInPde));
        assert_eq!(Pte(1 | (1 << 1)).decode(), Err(MmuError::PeerAperture));
        assert_eq!(Pte(1 | (1 << 33)).decode(), Err(MmuError::PeerBitsInVram));
        assert_eq!(Pte::IGNORE_SMALL.decode(), Ok(PteState::IgnoreSmall));
        assert_eq!(
            DualPde::SPARSE.decode(),
            Ok(Pd0::Tables {
                big: Directory::Sparse,
                small: Directory::Invalid
            })
        );
    }

    /// Build PD3 -> PD2 -> PD1 -> PD0 for `va` in VRAM at fixed addresses; returns the PD0 address.
    fn directories(m: &mut Mem, va: u64) -> u64 {
        let (pd3, pd2, pd1, pd0) = (0x1000u64, 0x2000u64, 0x3000u64, 0x4000u64);
        m.zero_table(Target::Vram, pd3, Level::Pd3);
        for (t, l) in [(pd2, Level::Pd2), (pd1, Level::Pd1), (pd0, Level::Pd0)] {
            m.zero_table(Target::Vram, t, l);
        }
        m.put(
            Target::Vram,
            pd3 + Level::Pd3.entry_offset(va),
            Pde::table(Target::Vram, pd2).unwrap().0,
        );
        m.put(
            Target::Vram,
            pd2 + Level::Pd2.entry_offset(va),
            Pde::table(Target::Vram, pd1).unwrap().0,
        );
        m.put(
            Target::Vram,
            pd1 + Level::Pd1.entry_offset(va),
            Pde::table(Target::Vram, pd0).unwrap().0,
        );
        pd0
    }

    fn put_dual(m: &mut Mem, pd0: u64, va: u64, d: DualPde) {
        let at = pd0 + Level::Pd0.entry_offset(va);
        m.put(Target::Vram, at, d.big);
        m.put(Target::Vram, at + 8, d.small);
    }

    #[test]
    fn walks_4k_64k_and_2m_pages() {
        let root = (Target::Vram, 0x1000);
        let va = 0x7f_1234_5678u64;
        let mut m = Mem::default();
        let pd0 = directories(&mut m, va);
        // 2 MiB page.
        let big_page = Pte::page(
            Target::SysCoherent,
            0x4000_0000,
            PageSize::M2,
            PteFlags::default(),
        )
        .unwrap();
        put_dual(&mut m, pd0, va, DualPde::page(big_page));
        assert_eq!(
            translate(&mut m, root, va),
            Ok(Translation::Mapped {
                target: Target::SysCoherent,
                phys: 0x4000_0000 | (va & 0x1f_ffff),
                page: PageSize::M2,
                flags: PteFlags::default()
            })
        );
        // Both tables: the 64 KiB PTE wins where valid, a zero one defers to the 4 KiB table.
        let (lpt, spt) = (0x5000u64, 0x6000u64);
        m.zero_table(Target::Vram, lpt, Level::PtBig);
        m.zero_table(Target::SysNonCoherent, spt, Level::PtSmall);
        put_dual(
            &mut m,
            pd0,
            va,
            DualPde::tables(
                Some((Target::Vram, lpt)),
                Some((Target::SysNonCoherent, spt)),
            )
            .unwrap(),
        );
        let small = Pte::page(
            Target::SysNonCoherent,
            0x9000,
            PageSize::K4,
            PteFlags::default(),
        )
        .unwrap();
        m.put(
            Target::SysNonCoherent,
            spt + Level::PtSmall.entry_offset(va),
            small.0,
        );
        let tr = translate(&mut m, root, va).unwrap();
        assert!(
            matches!(tr, Translation::Mapped { phys, page: PageSize::K4, .. } if phys == 0x9000 | (va & 0xfff))
        );
        assert_eq!(tr.bytes_to_page_end(va), 0x1000 - (va & 0xfff));
        let lpte = Pte::page(Target::Vram, 0x20_0000, PageSize::K64, PteFlags::default()).unwrap();
        m.put(Target::Vram, lpt + Level::PtBig.entry_offset(va), lpte.0);
        assert!(matches!(
            translate(&mut m, root, va),
            Ok(Translation::Mapped { phys, page: PageSize::K64, .. }) if phys == 0x20_0000 | (va & 0xffff)
        ));
        // PRIV-only big PTE hides the small one.
        m.put(
            Target::Vram,
            lpt + Level::PtBig.entry_offset(va),
            Pte::IGNORE_SMALL.0,
        );
        assert_eq!(
            translate(&mut m, root, va),
            Err(WalkError::NotMapped {
                level: Level::PtBig
            })
        );
        m.put(
            Target::Vram,
            lpt + Level::PtBig.entry_offset(va),
            Pte::SPARSE.0,
        );
        assert_eq!(translate(&mut m, root, va), Ok(Translation::Sparse));
    }

    #[test]
    fn walk_reports_faults_not_panics() {
        let root = (Target::Vram, 0x1000);
        let va = 0x20_0000u64;
        let mut m = Mem::default();
        assert_eq!(
            translate(&mut m, root, 1 << 49),
            Err(WalkError::VaOutOfRange)
        );
        // Unbacked root.
        assert!(matches!(
            translate(&mut m, root, va),
            Err(WalkError::Memory { addr: 0x1000, .. })
        ));
        let pd0 = directories(&mut m, va);
        assert_eq!(
            translate(&mut m, root, va),
            Err(WalkError::NotMapped { level: Level::Pd0 })
        );
        // A small table pointer into unbacked memory.
        put_dual(
            &mut m,
            pd0,
            va,
            DualPde::tables(None, Some((Target::Vram, 0xdead_0000))).unwrap(),
        );
        assert!(
            matches!(translate(&mut m, root, va), Err(WalkError::Memory { addr, .. }) if addr == 0xdead_0000 + Level::PtSmall.entry_offset(va))
        );
        // An invalid 4 KiB PTE and a malformed one.
        m.zero_table(Target::Vram, 0xdead_0000, Level::PtSmall);
        assert_eq!(
            translate(&mut m, root, va),
            Err(WalkError::NotMapped {
                level: Level::PtSmall
            })
        );
        m.put(
            Target::Vram,
            0xdead_0000 + Level::PtSmall.entry_offset(va),
            1 | (1 << 1),
        );
        assert_eq!(
            translate(&mut m, root, va),
            Err(WalkError::Malformed {
                level: Level::PtSmall,
                err: MmuError::PeerAperture
            })
        );
        // A PDE with bit 0 set in PD2.
        m.put(Target::Vram, 0x2000 + Level::Pd2.entry_offset(va), 1);
        assert_eq!(
            translate(&mut m, root, va),
            Err(WalkError::Malformed {
                level: Level::Pd2,
                err: MmuError::PteBitInPde
            })
        );
    }
}
