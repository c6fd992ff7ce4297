//! BAR assignment: place every BAR inside the windows the system configuration reserved (the
//! `pci_mmio` region of `system.xml`), size and program the bridge windows on the way, and refuse
//! (with a log line) a device whose BARs do not fit.
//!
//! Two passes over the table, which holds parents before children:
//! 1. Bottom-up (reverse table order): each bridge packs what sits directly below it, per
//!    resource class (I/O, memory, prefetchable memory): its children's BARs and its child
//!    bridges' windows, largest alignment first, so every item lands aligned with no padding
//!    between equal alignments. The result is the bridge's own window need: size rounded to the
//!    window granularity (1 MiB memory, 4 KiB I/O), alignment that of its largest item.
//! 2. The root bus's items are placed at absolute addresses in the configured windows. If an item
//!    does not fit, the device responsible (the BAR's function, or for a bridge window the
//!    function below it with the largest BAR of that class) is refused and the layout is redone
//!    without it; each round refuses one device, so this ends.
//!
//! Then addresses are handed down (a child's offset plus its parent window's base) and programmed.
//! Prefetchable BARs go to the prefetchable window when one is configured, else to the memory
//! window; non-prefetchable bridge windows and 32-bit BARs must end below 4 GiB. With no I/O
//! window, I/O BARs stay unassigned and I/O decoding off (drivers of modern devices use memory).

use crate::bar::{Bar, Size};
use crate::config::{ConfigError, ConfigSpace};
use crate::enumerate::{FunctionTable, MAX_FUNCTIONS};
use crate::probe::{Function, State};
use crate::regs;
use core::fmt;
use pci_api::BarKind;

/// An address window: `size` bytes from `base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First address.
    pub base: u64,
    /// Bytes.
    pub size: u64,
}

impl Window {
    /// One past the last address (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.end()
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}-{:#x}]", self.base, self.end().saturating_sub(1))
    }
}

/// The windows BARs are assigned from (built by the PD glue from `system.xml`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Windows {
    /// Memory window for non-prefetchable BARs (and prefetchable ones when `pref` is `None`).
    pub mem: Option<Window>,
    /// Prefetchable memory window.
    pub pref: Option<Window>,
    /// I/O port window.
    pub io: Option<Window>,
}

/// A resource class: which bridge window a BAR is forwarded through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Res {
    /// I/O ports.
    Io,
    /// Non-prefetchable memory.
    Mem,
    /// Prefetchable memory.
    Pref,
}

const CLASSES: [Res; 3] = [Res::Io, Res::Mem, Res::Pref];

/// One value per resource class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PerClass<T> {
    io: T,
    mem: T,
    pref: T,
}

impl<T> PerClass<T> {
    fn get(&self, r: Res) -> &T {
        match r {
            Res::Io => &self.io,
            Res::Mem => &self.mem,
            Res::Pref => &self.pref,
        }
    }

    fn get_mut(&mut self, r: Res) -> &mut T {
        match r {
            Res::Io => &mut self.io,
            Res::Mem => &mut self.mem,
            Res::Pref => &mut self.pref,
        }
    }
}

impl Res {
    /// Bridge window granularity (PCI-to-PCI Bridge 1.2 §3.2.5.6, §3.2.5.8).
    fn granularity(self) -> u64 {
        match self {
            Self::Io => 4 << 10,
            Self::Mem | Self::Pref => 1 << 20,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Io => "io",
            Self::Mem => "mem",
            Self::Pref => "pref",
        }
    }
}

impl Windows {
    /// The window of class `r`.
    pub fn get(&self, r: Res) -> Option<Window> {
        match r {
            Res::Io => self.io,
            Res::Mem => self.mem,
            Res::Pref => self.pref,
        }
    }

    /// The class a BAR is assigned from under this configuration: prefetchable BARs use the
    /// prefetchable window if there is one they can address (a 32-bit BAR cannot reach a window
    /// above 4 GiB), else the memory window, which is always correct for prefetchable memory.
    pub fn class_of(&self, bar: &Bar) -> Res {
        let reachable = |w: Window| bar.kind == BarKind::Mem64 || w.end() <= 1 << 32;
        match bar.kind {
            BarKind::Io => Res::Io,
            _ if bar.prefetchable && self.pref.is_some_and(reachable) => Res::Pref,
            _ => Res::Mem,
        }
    }

    /// The window a placed BAR lies in, and its offset there.
    pub fn locate(&self, bar: &Bar) -> Option<(Window, u64)> {
        let w = self.get(self.class_of(bar))?;
        (bar.assigned && w.contains(bar.addr)).then(|| (w, bar.addr - w.base))
    }
}

/// What the assignment did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Functions refused (including those below a refused bridge).
    pub refused: u16,
    /// BARs left unassigned for lack of an I/O window.
    pub io_unassigned: u16,
}

/// Space an item (or a bridge window) needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Need {
    size: u64,
    align: u64,
    /// The item must end at or below this address.
    limit: u64,
}

/// Per function: offsets of its BARs and (bridges) its windows' needs and offsets. Offsets are
/// relative to the parent bridge's window of the same class, absolute on the root bus.
#[derive(Clone, Copy, Debug, Default)]
struct Slots {
    bar: [u64; 6],
    win: PerClass<Need>,
    win_at: PerClass<u64>,
}

#[derive(Clone, Copy, Debug)]
enum Owner {
    Bar { func: usize, index: u8 },
    Window { bridge: usize },
}

#[derive(Clone, Copy, Debug)]
struct Item {
    owner: Owner,
    need: Need,
}

/// Items packed into one window; more than this many is treated as not fitting.
const MAX_ITEMS: usize = 2 * MAX_FUNCTIONS;
type Items = heapless::Vec<Item, MAX_ITEMS>;
type Layout = heapless::Vec<Slots, MAX_FUNCTIONS>;

/// Why a layout round failed: the item that did not fit, where, and the space left there.
struct Misfit {
    item: Item,
    class: Res,
    free: u64,
    /// It would have fit, but not below the 4 GiB its address width allows.
    above_4g: bool,
}

impl Misfit {
    fn new(item: Item, class: Res) -> Self {
        Self {
            item,
            class,
            free: 0,
            above_4g: false,
        }
    }
}

/// Assign every usable function's BARs inside `windows`, program bridge windows and command
/// registers (memory/I/O decoding on where assigned; bus mastering on for bridges, off for
/// endpoints until their driver turns it on).
///
/// # Errors
/// A configuration access failing while programming.
pub fn assign<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    table: &mut FunctionTable,
    windows: &Windows,
) -> Result<Outcome, ConfigError> {
    let mut outcome = Outcome::default();
    let mut layout = Layout::new();
    // Each failed round refuses one more function, so at most MAX_FUNCTIONS + 1 rounds.
    for _ in 0..=MAX_FUNCTIONS {
        match plan(table, windows) {
            Ok(l) => {
                layout = l;
                break;
            }
            Err(m) => {
                outcome.refused += refuse(table, windows, &m);
            }
        }
    }
    program(cfg, table, windows, &layout, &mut outcome)?;
    Ok(outcome)
}

fn usable(f: &Function) -> bool {
    !matches!(f.state, State::Refused | State::BarsUnreadable(_))
}

fn align_up(v: u64, align: u64) -> Option<u64> {
    let a = align.max(1);
    v.checked_add(a - 1).map(|x| x & !(a - 1))
}

/// The items directly below `container` (a bridge index, or `None` for the root bus) of class `r`.
fn collect(
    table: &FunctionTable,
    layout: &Layout,
    windows: &Windows,
    container: Option<usize>,
    r: Res,
) -> Result<Items, Misfit> {
    let mut items = Items::new();
    let overflow = |item: Item| Misfit::new(item, r);
    for (i, f) in table.iter().enumerate() {
        if f.parent.map(usize::from) != container || !usable(f) {
            continue;
        }
        for bar in f.bars() {
            if windows.class_of(bar) != r || (r == Res::Io && windows.io.is_none()) {
                continue;
            }
            let limit = if bar.kind == BarKind::Mem64 {
                u64::MAX
            } else {
                1 << 32
            };
            let item = Item {
                owner: Owner::Bar {
                    func: i,
                    index: bar.index,
                },
                need: Need {
                    size: bar.size,
                    align: bar.size,
                    limit,
                },
            };
            items.push(item).map_err(overflow)?;
        }
        if let Some(need) = layout.get(i).map(|s| *s.win.get(r)).filter(|n| n.size != 0) {
            items
                .push(Item {
                    owner: Owner::Window { bridge: i },
                    need,
                })
                .map_err(overflow)?;
        }
    }
    // Largest alignment first (then largest size): power-of-two items then pack with no holes.
    items.sort_unstable_by(|a, b| {
        b.need
            .align
            .cmp(&a.need.align)
            .then(b.need.size.cmp(&a.need.size))
    });
    Ok(items)
}

fn set_offset(layout: &mut Layout, item: &Item, r: Res, at: u64) {
    match item.owner {
        Owner::Bar { func, index } => {
            if let Some(slot) = layout
                .get_mut(func)
                .and_then(|s| s.bar.get_mut(usize::from(index)))
            {
                *slot = at;
            }
        }
        Owner::Window { bridge } => {
            if let Some(s) = layout.get_mut(bridge) {
                *s.win_at.get_mut(r) = at;
            }
        }
    }
}

/// One layout round: bridge windows bottom-up, then the root bus into the windows.
fn plan(table: &FunctionTable, windows: &Windows) -> Result<Layout, Misfit> {
    let mut layout = Layout::new();
    for _ in 0..table.len() {
        // PANIC-free: the layout has the table's capacity.
        let _ = layout.push(Slots::default());
    }
    for b in (0..table.len()).rev() {
        let Some(bridge) = table
            .get(b)
            .filter(|f| f.is_bridge() && usable(f))
            .and_then(|f| f.bridge)
        else {
            continue;
        };
        for r in CLASSES {
            let items = collect(table, &layout, windows, Some(b), r)?;
            let mut cursor = 0u64;
            let mut need = Need {
                size: 0,
                align: r.granularity(),
                limit: match r {
                    Res::Io if bridge.io32 => 1 << 32,
                    Res::Io => 1 << 16,
                    Res::Mem => 1 << 32,
                    Res::Pref if bridge.pref64 => u64::MAX,
                    Res::Pref => 1 << 32,
                },
            };
            for item in &items {
                let overflow = || Misfit::new(*item, r);
                let at = align_up(cursor, item.need.align).ok_or_else(overflow)?;
                cursor = at.checked_add(item.need.size).ok_or_else(overflow)?;
                need.align = need.align.max(item.need.align);
                need.limit = need.limit.min(item.need.limit);
                set_offset(&mut layout, item, r, at);
            }
            if let Some(first) = items.first() {
                need.size =
                    align_up(cursor, r.granularity()).ok_or_else(|| Misfit::new(*first, r))?;
            }
            if let Some(s) = layout.get_mut(b) {
                *s.win.get_mut(r) = need;
            }
        }
    }
    for r in CLASSES {
        let items = collect(table, &layout, windows, None, r)?;
        let window = windows.get(r);
        let mut cursor = window.map_or(0, |w| w.base);
        for item in &items {
            let free = window.map_or(0, |w| w.end().saturating_sub(cursor));
            let misfit = |above_4g| Misfit {
                free,
                above_4g,
                ..Misfit::new(*item, r)
            };
            let Some(w) = window else {
                return Err(misfit(false));
            };
            let at = align_up(cursor, item.need.align).ok_or(misfit(false))?;
            let stop = at.checked_add(item.need.size).ok_or(misfit(false))?;
            if stop > w.end() {
                return Err(misfit(false));
            }
            if stop > item.need.limit {
                return Err(misfit(true));
            }
            set_offset(&mut layout, item, r, at);
            cursor = stop;
        }
    }
    Ok(layout)
}

/// Whether `j` lies below bridge `b`.
fn below(table: &FunctionTable, mut j: usize, b: usize) -> bool {
    // Parents have smaller indices, so this climbs at most MAX_FUNCTIONS steps.
    for _ in 0..MAX_FUNCTIONS {
        match table.get(j).and_then(|f| f.parent) {
            Some(p) if usize::from(p) == b => return true,
            Some(p) => j = usize::from(p),
            None => return false,
        }
    }
    false
}

/// Refuse the function responsible for a misfit (and everything below it); returns how many.
fn refuse(table: &mut FunctionTable, windows: &Windows, m: &Misfit) -> u16 {
    let (func, index) = match m.item.owner {
        Owner::Bar { func, index } => (func, Some(index)),
        Owner::Window { bridge } => {
            // The largest BAR of this class below the bridge is the one to give up.
            let culprit = table
                .iter()
                .enumerate()
                .filter(|(j, f)| usable(f) && below(table, *j, bridge))
                .flat_map(|(j, f)| {
                    f.bars()
                        .filter(|b| windows.class_of(b) == m.class)
                        .map(move |b| (j, b.index, b.size))
                })
                .max_by_key(|&(_, _, size)| size);
            culprit.map_or((bridge, None), |(j, index, _)| (j, Some(index)))
        }
    };
    if let Some(f) = table.get(func) {
        let bar = index.and_then(|i| f.bars.get(usize::from(i)).copied().flatten());
        match (bar, windows.get(m.class)) {
            (Some(bar), Some(w)) => log::warn!(
                "pci: {} BAR{} ({bar}) does not fit window {} {w} ({} free{}); device refused",
                f.bdf,
                bar.index,
                m.class.name(),
                Size(m.free),
                if m.above_4g {
                    ", but not below 4 GiB"
                } else {
                    ""
                }
            ),
            (Some(bar), None) => {
                log::warn!(
                    "pci: {} BAR{} ({bar}) does not fit: no {} window configured; device refused",
                    f.bdf,
                    bar.index,
                    m.class.name()
                )
            }
            (None, _) => log::warn!("pci: {} bridge window does not fit; bridge refused", f.bdf),
        }
    }
    let mut n = 0;
    for j in 0..table.len() {
        if j == func || below(table, j, func) {
            if let Some(f) = table.get_mut(j) {
                f.state = State::Refused;
                n += 1;
            }
        }
    }
    n
}

/// Hand addresses down and program BARs, bridge windows and command registers.
fn program<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    table: &mut FunctionTable,
    windows: &Windows,
    layout: &Layout,
    outcome: &mut Outcome,
) -> Result<(), ConfigError> {
    // Absolute window bases per bridge, filled in table order (parents first).
    let mut bases: heapless::Vec<PerClass<u64>, MAX_FUNCTIONS> = heapless::Vec::new();
    for i in 0..table.len() {
        let slots = layout.get(i).copied().unwrap_or_default();
        let Some(f) = table.get_mut(i) else { break };
        let above = f
            .parent
            .and_then(|p| bases.get(usize::from(p)))
            .copied()
            .unwrap_or_default();
        let parent_base = |r: Res| *above.get(r);
        let mine = PerClass {
            io: above.io.wrapping_add(slots.win_at.io),
            mem: above.mem.wrapping_add(slots.win_at.mem),
            pref: above.pref.wrapping_add(slots.win_at.pref),
        };
        // PANIC-free: one entry per table row, same capacity.
        let _ = bases.push(mine);
        if !usable(f) {
            let off = f.command & !(regs::CMD_IO | regs::CMD_MEMORY | regs::CMD_MASTER);
            cfg.write16(f.bdf, regs::COMMAND, off)?;
            continue;
        }
        let mut command = f.command & !(regs::CMD_IO | regs::CMD_MEMORY | regs::CMD_MASTER);
        for bar in f.bars.iter_mut().flatten() {
            let r = windows.class_of(bar);
            if r == Res::Io && windows.io.is_none() {
                log::info!(
                    "pci: {} BAR{} ({bar}) left unassigned: no io window",
                    f.bdf,
                    bar.index
                );
                outcome.io_unassigned += 1;
                continue;
            }
            let addr = parent_base(r)
                .wrapping_add(slots.bar.get(usize::from(bar.index)).copied().unwrap_or(0));
            let reg = regs::BAR0 + 4 * u16::from(bar.index);
            // CAST: low and high halves of the address.
            cfg.write32(f.bdf, reg, addr as u32)?;
            if bar.kind == BarKind::Mem64 {
                cfg.write32(f.bdf, reg + 4, (addr >> 32) as u32)?;
            }
            bar.addr = addr;
            bar.assigned = true;
            command |= if r == Res::Io {
                regs::CMD_IO
            } else {
                regs::CMD_MEMORY
            };
        }
        if let Some(b) = f.bridge.as_mut() {
            let win = |r: Res| {
                let (n, base) = (*slots.win.get(r), *mine.get(r));
                (n.size != 0).then(|| crate::probe::Range {
                    base,
                    limit: base.wrapping_add(n.size - 1),
                })
            };
            (b.io, b.mem, b.pref) = (win(Res::Io), win(Res::Mem), win(Res::Pref));
            program_windows(cfg, f.bdf, b)?;
            command |= regs::CMD_MASTER;
            command |= if b.io.is_some() { regs::CMD_IO } else { 0 };
            command |= if b.mem.is_some() || b.pref.is_some() {
                regs::CMD_MEMORY
            } else {
                0
            };
        }
        if command != f.command {
            cfg.write16(f.bdf, regs::COMMAND, command)?;
            f.command = command;
        }
    }
    Ok(())
}

/// Write a bridge's three windows; a closed window has base above limit.
fn program_windows<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: pci_api::Bdf,
    b: &crate::probe::BridgeInfo,
) -> Result<(), ConfigError> {
    // CAST (all below): the register fields are the address bits shifted into 16/32-bit fields.
    let mem = b.mem.map_or(0x0000_fff0, |r| {
        ((r.base >> 16) as u32 & 0xfff0) | ((r.limit >> 16) as u32 & 0xfff0) << 16
    });
    cfg.write32(bdf, regs::MEMORY_BASE, mem)?;
    let pref = b.pref.map_or(0x0000_fff0, |r| {
        ((r.base >> 16) as u32 & 0xfff0) | ((r.limit >> 16) as u32 & 0xfff0) << 16
    });
    cfg.write32(bdf, regs::PREF_MEMORY_BASE, pref)?;
    if b.pref64 {
        let (base, limit) = b
            .pref
            .map_or((0, 0), |r| ((r.base >> 32) as u32, (r.limit >> 32) as u32));
        cfg.write32(bdf, regs::PREF_BASE_UPPER32, base)?;
        cfg.write32(bdf, regs::PREF_LIMIT_UPPER32, limit)?;
    }
    let io = b.io.map_or(0x00f0, |r| {
        ((r.base >> 8) as u16 & 0xf0) | ((r.limit >> 8) as u16 & 0xf0) << 8
    });
    cfg.write16(bdf, regs::IO_BASE, io)?;
    if b.io32 {
        let upper = b.io.map_or(0, |r| {
            (r.base >> 16) as u32 & 0xffff | ((r.limit >> 16) as u32 & 0xffff) << 16
        });
        cfg.write32(bdf, regs::IO_BASE_UPPER16, upper)?;
    }
    Ok(())
}
