//! Parse and validate Microkit system descriptions (`system.xml`), with line-numbered errors.
//!
//! Role: `system.xml` is the one source of truth of the system. This crate turns it into a
//! [`System`] that three consumers share: the hosted runtime (which enforces it), the code
//! generator of `pd-programs` ([`codegen`]) and the seL4 image build ([`System::to_sdf`] after
//! [`merge_board`]). It is build and host tooling, so it uses `std`.
//!
//! Schema: the Microkit **2.3.0** SDF exactly as its tool (`tool/microkit/src/sdf.rs`) parses
//! it, restricted to what this stack uses: `memory_region`, `protection_domain` (nested for
//! children), `program_image`, `map`, `setvar`, `irq` (Arm/RISC-V form) and `channel`/`end`.
//! Anything else the real tool accepts (`virtual_machine`, `cspace`, `domains`, `ioport`, `smc`,
//! `cpu`, ...) is refused with a clear error rather than silently ignored, so a description that
//! passes here means the same thing to the real tool. Where this crate is stricter than the tool
//! it says so on the check.
//!
//! In 2.3.0 a channel end's `pp="true"` marks the *caller*: the PD at that end may call the other
//! one, which must have a strictly higher priority.
//!
//! Trust: the input is written by the system's author, not by a peer; still, no input makes this
//! crate panic: every problem is an [`Error`] naming the file, line, column and element.

use std::fmt;
use std::path::Path;

pub use board::merge_board;

pub mod board;
pub mod codegen;
mod parse;
mod sdf;
mod validate;

#[cfg(test)]
mod tests;

/// The page sizes the Microkit tool accepts on every architecture (4 KiB and 2 MiB).
pub const PAGE_SIZES: [u64; 2] = [0x1000, 0x20_0000];

/// The highest channel (and irq, and child) id Microkit 2.3.0 accepts (`PD_MAX_ID`): two badge
/// bits are reserved, so ids are 0..=61.
pub const MAX_ID: u8 = 61;

/// Highest priority a PD may have (255 is the Microkit monitor's).
pub const MAX_PRIORITY: u8 = 254;

/// Microkit 2.3.0 refuses more protection domains than this (`MAX_PDS`).
pub const MAX_PDS: usize = 63;

/// Where hosted mode starts handing out fake physical addresses (4 GiB, so no fake address looks
/// like a small integer or a null-ish pointer).
pub const FAKE_PHYS_START: u64 = 0x1_0000_0000;

/// The alignment of every fake physical base: at least a large page, so the model can treat a DMA
/// region as huge-page backed whatever its declared page size.
pub const FAKE_PHYS_ALIGN: u64 = 0x20_0000;

/// A parsed and validated system description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct System {
    /// Every protection domain, parents before their children (depth first, document order), as
    /// the Microkit tool flattens them.
    pub pds: Vec<Pd>,
    /// Every `memory_region`, in document order.
    pub regions: Vec<MemoryRegion>,
    /// Every `channel`, in document order.
    pub channels: Vec<ChannelDecl>,
}

/// A `protection_domain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pd {
    /// Unique name.
    pub name: String,
    /// Scheduling priority, 0..=254 (default 0).
    pub priority: u8,
    /// Whether the PD gives up its scheduling context after `init` (it runs only on PPCs).
    pub passive: bool,
    /// `budget` in microseconds, if declared (the tool defaults it to 1000).
    pub budget: Option<u64>,
    /// `period` in microseconds, if declared (the tool defaults it to the budget).
    pub period: Option<u64>,
    /// `stack_size` in bytes, if declared (the tool defaults it to 8 KiB).
    pub stack_size: Option<u64>,
    /// The `path` of its `program_image`.
    pub program_image: String,
    /// Its `map` elements, in document order.
    pub maps: Vec<Map>,
    /// Its `setvar` elements (`region_paddr` form), in document order.
    pub setvars: Vec<SetVar>,
    /// Index of the parent PD in [`System::pds`], for a child.
    pub parent: Option<usize>,
    /// The child id (its `id` attribute), for a child.
    pub id: Option<u8>,
    /// The child's `setvar_id` attribute (the parent's symbol that receives the id), for a child.
    pub setvar_id: Option<String>,
    /// Its `irq` elements.
    pub irqs: Vec<Irq>,
    /// Line of the element (1-based).
    pub line: u32,
    /// Column of the element (1-based).
    pub column: u32,
}

/// A `map` of a memory region into a PD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    /// The memory region's name.
    pub mr: String,
    /// Where the region appears in the PD.
    pub vaddr: u64,
    /// Access rights (default `rw`).
    pub perms: Perms,
    /// Whether the mapping is cacheable (default true).
    pub cached: bool,
    /// Symbol that receives `vaddr`.
    pub setvar_vaddr: Option<String>,
    /// Symbol that receives the region's size.
    pub setvar_size: Option<String>,
    /// Line of the element (1-based).
    pub line: u32,
    /// Column of the element (1-based).
    pub column: u32,
}

/// Access rights of a mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Perms {
    /// Readable.
    pub r: bool,
    /// Writable (never alone: the kernel refuses write-only mappings).
    pub w: bool,
    /// Executable.
    pub x: bool,
}

impl Perms {
    /// Read and write, the default when `perms` is absent.
    pub const RW: Self = Self {
        r: true,
        w: true,
        x: false,
    };
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (set, c) in [(self.r, "r"), (self.w, "w"), (self.x, "x")] {
            if set {
                f.write_str(c)?;
            }
        }
        Ok(())
    }
}

/// A `memory_region`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Unique name.
    pub name: String,
    /// Size in bytes, a multiple of the page size.
    pub size: u64,
    /// Declared `page_size` (0x1000 or 0x200000); see [`System::effective_page_size`].
    pub page_size: Option<u64>,
    /// Declared physical address (device memory, or merged in from a board file).
    pub phys_addr: Option<u64>,
    /// File the Microkit tool copies into the region.
    pub prefill_path: Option<String>,
    /// Line of the element (1-based).
    pub line: u32,
    /// Column of the element (1-based).
    pub column: u32,
}

/// A `channel` between two PDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelDecl {
    /// Its two `end`s, in document order.
    pub ends: [End; 2],
    /// Line of the element (1-based).
    pub line: u32,
    /// Column of the element (1-based).
    pub column: u32,
}

/// One `end` of a channel: how the channel looks from the PD named `pd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct End {
    /// The PD at this end.
    pub pd: String,
    /// The channel id in that PD, 0..=61.
    pub id: u8,
    /// Whether this PD may call (PPC) the other end (Microkit 2.3.0 meaning; default false).
    pub pp: bool,
    /// Whether this PD may notify the other end (default true).
    pub notify: bool,
    /// Symbol that receives `id`.
    pub setvar_id: Option<String>,
    /// Line of the element (1-based).
    pub line: u32,
    /// Column of the element (1-based).
    pub column: u32,
}

/// A `setvar` with `region_paddr`: the symbol receives the region's physical address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetVar {
    /// The symbol in the PD's image.
    pub symbol: String,
    /// The memory region whose physical address it receives.
    pub region_paddr: String,
    /// Line of the element (1-based).
    pub line: u32,
    /// Column of the element (1-based).
    pub column: u32,
}

/// An `irq` (Arm/RISC-V form): interrupt `irq` delivered as a notification on channel `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Irq {
    /// The channel id it arrives on, shared with the PD's channel ids.
    pub id: u8,
    /// The hardware interrupt number.
    pub irq: u64,
    /// The declared trigger (the tool defaults to level).
    pub trigger: Option<Trigger>,
    /// Symbol that receives `id`.
    pub setvar_id: Option<String>,
    /// Line of the element (1-based).
    pub line: u32,
    /// Column of the element (1-based).
    pub column: u32,
}

/// Interrupt trigger mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Level triggered (the default).
    Level,
    /// Edge triggered.
    Edge,
}

impl Trigger {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Level => "level",
            Self::Edge => "edge",
        }
    }
}

/// Why a description was refused: where, on which element, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The file's name as shown to the user (`system.xml` unless loaded from another path).
    pub file: String,
    /// Line, 1-based (0 when the problem has no single place, e.g. an unreadable file).
    pub line: u32,
    /// Column, 1-based (0 when there is no place).
    pub column: u32,
    /// The XML element at fault (`map`, `end`, ...).
    pub element: String,
    /// What is wrong, naming the offending values.
    pub message: String,
}

impl Error {
    /// An error at an element of `system.xml`.
    pub(crate) fn at(line: u32, column: u32, element: &str, message: impl Into<String>) -> Self {
        Self {
            file: "system.xml".into(),
            line,
            column,
            element: element.into(),
            message: message.into(),
        }
    }

    /// The same error attributed to another file name.
    #[must_use]
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = file.into();
        self
    }
}

impl fmt::Display for Error {
    /// `system.xml:LINE:COL: <element>: message`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: <{}>: {}",
            self.file, self.line, self.column, self.element, self.message
        )
    }
}

impl std::error::Error for Error {}

/// Parse and validate a system description.
///
/// # Errors
/// The first problem found, with its line: malformed XML, an unknown element or attribute, a bad
/// value, or a broken cross-reference rule (see the `validate` module).
pub fn parse(text: &str) -> Result<System, Error> {
    let system = parse::parse(text)?;
    system.validate()?;
    Ok(system)
}

/// Read, parse and validate a system description file; errors carry the file's name.
///
/// # Errors
/// As [`parse`], or the file cannot be read (line 0).
pub fn load(path: &Path) -> Result<System, Error> {
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::at(
            0,
            0,
            "system",
            format!("cannot read {}: {e}", path.display()),
        )
        .in_file(&file)
    })?;
    parse(&text).map_err(|e| e.in_file(file))
}

impl System {
    /// The PD named `name`.
    pub fn pd(&self, name: &str) -> Option<&Pd> {
        self.pds.iter().find(|pd| pd.name == name)
    }

    /// The index of the PD named `name` in [`System::pds`].
    pub fn pd_index(&self, name: &str) -> Option<usize> {
        self.pds.iter().position(|pd| pd.name == name)
    }

    /// The memory region named `name`.
    pub fn region(&self, name: &str) -> Option<&MemoryRegion> {
        self.regions.iter().find(|mr| mr.name == name)
    }

    /// Every channel of the PD named `pd_name`, as (its own end, the peer's end). A channel from a
    /// PD to itself appears twice, once from each end.
    pub fn channels_of<'a>(&'a self, pd_name: &'a str) -> impl Iterator<Item = (&'a End, &'a End)> {
        self.channels.iter().flat_map(move |ch| {
            let [a, b] = &ch.ends;
            let first = (a.pd == pd_name).then_some((a, b));
            let second = (b.pd == pd_name).then_some((b, a));
            first.into_iter().chain(second)
        })
    }

    /// The direct children of the PD at `pd_index`, as (index, PD).
    pub fn children_of(&self, pd_index: usize) -> impl Iterator<Item = (usize, &Pd)> {
        self.pds
            .iter()
            .enumerate()
            .filter(move |(_, pd)| pd.parent == Some(pd_index))
    }

    /// The page size the Microkit tool will use for `region`: the declared one, else (like the
    /// tool's optimisation pass) the largest page size that divides the size and aligns every
    /// vaddr the region is mapped at and its physical address, if any.
    pub fn effective_page_size(&self, region: &MemoryRegion) -> u64 {
        if let Some(page_size) = region.page_size {
            return page_size;
        }
        let maps = self.pds.iter().flat_map(|pd| pd.maps.iter());
        let mut addrs = maps.filter(|m| m.mr == region.name).map(|m| m.vaddr);
        let [small, large] = PAGE_SIZES;
        let aligned = region.size.is_multiple_of(large)
            && region.phys_addr.is_none_or(|p| p.is_multiple_of(large))
            && addrs.all(|a| a.is_multiple_of(large));
        if aligned {
            large
        } else {
            small
        }
    }

    /// The physical base hosted mode gives every region, parallel to [`System::regions`].
    ///
    /// A declared `phys_addr` is kept. The others are laid out in document order from
    /// [`FAKE_PHYS_START`], each aligned to the larger of its page size and [`FAKE_PHYS_ALIGN`],
    /// skipping over every declared range, so the addresses are stable as long as the regions
    /// before a region do not change, and no two regions overlap.
    pub fn fake_phys_bases(&self) -> Vec<u64> {
        let declared: Vec<(u64, u64)> = self
            .regions
            .iter()
            .filter_map(|mr| mr.phys_addr.map(|p| (p, p.saturating_add(mr.size))))
            .collect();
        let mut cursor = FAKE_PHYS_START;
        self.regions
            .iter()
            .map(|mr| {
                if let Some(p) = mr.phys_addr {
                    return p;
                }
                let align = self.effective_page_size(mr).max(FAKE_PHYS_ALIGN);
                let mut base = align_up(cursor, align);
                // Each pass moves past one declared range, so `declared.len()` passes suffice;
                // the bound also ends the loop when addresses saturate at the top of the space
                // (possible only in a `System` that was never validated).
                for _ in 0..declared.len() {
                    let overlap = declared
                        .iter()
                        .find(|&&(start, end)| base < end && start < base.saturating_add(mr.size));
                    match overlap {
                        Some(&(_, end)) => base = align_up(end, align),
                        None => break,
                    }
                }
                cursor = base.saturating_add(mr.size);
                base
            })
            .collect()
    }

    /// The physical base hosted mode gives the region named `region_name` (see
    /// [`System::fake_phys_bases`]); 0 for a name that is not a region.
    pub fn fake_phys_base(&self, region_name: &str) -> u64 {
        let index = self.regions.iter().position(|mr| mr.name == region_name);
        index
            .and_then(|i| self.fake_phys_bases().get(i).copied())
            .unwrap_or(0)
    }

    /// Check every cross-element rule of the Microkit tool (see the `validate` module). [`parse`]
    /// already does; call it again after changing a `System`, e.g. after [`merge_board`].
    ///
    /// # Errors
    /// The first broken rule, at the element that breaks it.
    pub fn validate(&self) -> Result<(), Error> {
        validate::validate(self)
    }

    /// The description as a Microkit 2.3.0 SDF document for the Microkit tool, with every value
    /// this `System` holds (including physical addresses merged from a board file). Parsing it
    /// gives this `System` back, positions aside.
    pub fn to_sdf(&self) -> String {
        sdf::to_sdf(self)
    }
}

/// An SDF number: decimal, or hexadecimal with `0x`; underscores are ignored (the tool's
/// `sdf_parse_number`).
fn parse_number(text: &str) -> Result<u64, std::num::ParseIntError> {
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse(),
    }
}

/// `value` rounded up to a multiple of `align` (a power of two), saturating at the top.
fn align_up(value: u64, align: u64) -> u64 {
    let mask = align.saturating_sub(1);
    value.saturating_add(mask) & !mask
}
