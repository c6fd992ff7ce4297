//! Enumeration: find every function below the host bridge and number the buses (on seL4 nothing
//! ran before us, so no firmware did it).
//!
//! Depth-first over buses, breadth-first within one: a bus's functions are all probed first (and
//! stale bus numbers left by a previous run cleared from its bridges, so no two bridges ever claim
//! the same bus), then each bridge in turn gets the next bus number as its secondary bus, a
//! subordinate of 0xff while its subtree is scanned, and the highest bus found below it once the
//! subtree is done (Linux's `pci_scan_bridge` does the same). Below a root or switch downstream
//! port only device 0 is probed (a PCIe link has one device), and if that device has an ARI
//! capability and the port can forward ARI, the port's ARI forwarding is enabled and the
//! functions are followed through ARI's next-function numbers.
//!
//! Everything is bounded: an explicit stack of [`MAX_DEPTH`] frames instead of recursion, a table
//! of [`MAX_FUNCTIONS`], bus numbers up to 255. Running out of any is a typed outcome: a
//! [`State`] on the bridge concerned, or [`EnumError::TableFull`].

use crate::config::{ConfigError, ConfigSpace};
use crate::probe::{self, Function, State};
use crate::regs;
use core::fmt;
use pci_api::Bdf;

/// Most functions the server tracks.
pub const MAX_FUNCTIONS: usize = 64;
/// Deepest bridge nesting the scan descends (root bus = depth 1).
pub const MAX_DEPTH: usize = 16;

/// The functions found, parents before children.
pub type FunctionTable = heapless::Vec<Function, MAX_FUNCTIONS>;

/// Why enumeration stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnumError {
    /// The function table is full; `at` and everything after it were not recorded. Bridges
    /// already numbered keep consistent bus ranges.
    TableFull {
        /// The first function not recorded.
        at: Bdf,
    },
    /// A configuration access failed (the backend is gone).
    Access(ConfigError),
}

impl fmt::Display for EnumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TableFull { at } => write!(f, "function table full ({MAX_FUNCTIONS}) at {at}"),
            Self::Access(e) => write!(f, "{e}"),
        }
    }
}

impl From<ConfigError> for EnumError {
    fn from(e: ConfigError) -> Self {
        Self::Access(e)
    }
}

/// What a scan covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Buses scanned.
    pub buses: u16,
    /// Highest bus number assigned.
    pub last_bus: u8,
}

/// How the devices of one bus are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A conventional bus (or a switch's internal bus): 32 devices, 8 functions each.
    Conventional,
    /// The link below a root or downstream port: device 0 only (or ARI functions).
    Link,
}

/// One bus being worked through: its functions are `table[lo..hi]`; bridges before `cursor` are
/// done.
#[derive(Clone, Copy, Debug)]
struct Frame {
    bus: u8,
    bridge: Option<usize>,
    hi: usize,
    cursor: usize,
}

/// Enumerate from `root_bus` into `table` (emptied first), numbering buses from `root_bus + 1`.
///
/// # Errors
/// [`EnumError::TableFull`] (the table holds what was found, bus ranges are consistent);
/// [`EnumError::Access`] when configuration space stops answering.
pub fn enumerate<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    root_bus: u8,
    table: &mut FunctionTable,
) -> Result<ScanStats, EnumError> {
    table.clear();
    let mut stats = ScanStats {
        buses: 1,
        last_bus: root_bus,
    };
    let mut stack: heapless::Vec<Frame, MAX_DEPTH> = heapless::Vec::new();
    scan_bus(cfg, root_bus, None, Mode::Conventional, table)?;
    // PANIC-free: the stack is empty, so the push cannot fail; ignoring the result is safe.
    let _ = stack.push(Frame {
        bus: root_bus,
        bridge: None,
        hi: table.len(),
        cursor: 0,
    });
    while let Some(top) = stack.last_mut() {
        let next = (top.cursor..top.hi).find(|&i| {
            table
                .get(i)
                .is_some_and(|f| f.is_bridge() && f.state == State::Ok)
        });
        let Some(i) = next else {
            if let Some(Frame {
                bridge: Some(b), ..
            }) = stack.pop()
            {
                close_bridge(cfg, table, b, stats.last_bus)?;
            }
            continue;
        };
        top.cursor = i + 1;
        let parent_bus = top.bus;
        let Some(bdf) = table.get(i).map(|f| f.bdf) else {
            continue;
        };
        if stack.is_full() {
            log::warn!("pci: {bdf} bridge not scanned: deeper than {MAX_DEPTH} levels");
            set_state(table, i, State::TooDeep);
            continue;
        }
        let Some(secondary) = stats.last_bus.checked_add(1) else {
            log::warn!("pci: {bdf} bridge not scanned: bus numbers exhausted");
            set_state(table, i, State::NoBusNumber);
            continue;
        };
        stats.last_bus = secondary;
        stats.buses += 1;
        open_bridge(cfg, table, i, parent_bus, secondary)?;
        let link = table
            .get(i)
            .and_then(|f| f.pcie)
            .is_some_and(|p| p.is_downstream_port());
        let mode = if link { Mode::Link } else { Mode::Conventional };
        let lo = table.len();
        if let Err(e) = scan_bus(cfg, secondary, Some(i), mode, table) {
            // Leave every open bridge with a consistent range before giving up.
            close_bridge(cfg, table, i, stats.last_bus)?;
            while let Some(f) = stack.pop() {
                if let Some(b) = f.bridge {
                    close_bridge(cfg, table, b, stats.last_bus)?;
                }
            }
            return Err(e);
        }
        // PANIC-free: not full (checked above).
        let _ = stack.push(Frame {
            bus: secondary,
            bridge: Some(i),
            hi: table.len(),
            cursor: lo,
        });
    }
    Ok(stats)
}

fn set_state(table: &mut FunctionTable, i: usize, state: State) {
    if let Some(f) = table.get_mut(i) {
        f.state = state;
    }
}

/// Give bridge `i` its bus numbers, subordinate 0xff while its subtree is scanned.
fn open_bridge<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    table: &mut FunctionTable,
    i: usize,
    primary: u8,
    secondary: u8,
) -> Result<(), ConfigError> {
    let Some(f) = table.get_mut(i) else {
        return Ok(());
    };
    let buses = u32::from(primary) | u32::from(secondary) << 8 | 0xff << 16;
    cfg.write32(f.bdf, regs::PRIMARY_BUS, buses)?;
    if let Some(b) = f.bridge.as_mut() {
        (b.primary, b.secondary, b.subordinate) = (primary, secondary, 0xff);
    }
    Ok(())
}

/// Set bridge `i`'s subordinate bus to the last bus found below it.
fn close_bridge<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    table: &mut FunctionTable,
    i: usize,
    last: u8,
) -> Result<(), ConfigError> {
    let Some(f) = table.get_mut(i) else {
        return Ok(());
    };
    cfg.write8(f.bdf, regs::SUBORDINATE_BUS, last)?;
    if let Some(b) = f.bridge.as_mut() {
        b.subordinate = last;
    }
    Ok(())
}

/// Probe one function and record it.
fn record<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    parent: Option<usize>,
    table: &mut FunctionTable,
) -> Result<Option<usize>, EnumError> {
    let Some(mut f) = probe::probe(cfg, bdf)? else {
        return Ok(None);
    };
    f.parent = parent.and_then(|p| u16::try_from(p).ok());
    table
        .push(f)
        .map_err(|_| EnumError::TableFull { at: bdf })?;
    Ok(Some(table.len() - 1))
}

/// Probe every function on `bus` into `table`, then clear stale bus numbers of its bridges.
fn scan_bus<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bus: u8,
    parent: Option<usize>,
    mode: Mode,
    table: &mut FunctionTable,
) -> Result<(), EnumError> {
    let lo = table.len();
    let devices = if mode == Mode::Link { 1 } else { 32 };
    for dev in 0..devices {
        let Some(bdf) = Bdf::new(bus, dev, 0) else {
            continue;
        };
        let Some(first) = record(cfg, bdf, parent, table)? else {
            continue;
        };
        if mode == Mode::Link && try_ari(cfg, bus, parent, first, table)? {
            break;
        }
        if table.get(first).is_some_and(Function::is_multi_function) {
            for func in 1..8 {
                if let Some(bdf) = Bdf::new(bus, dev, func) {
                    record(cfg, bdf, parent, table)?;
                }
            }
        }
    }
    for i in lo..table.len() {
        let Some(f) = table.get_mut(i) else { continue };
        match f.bridge.as_mut() {
            Some(b) if b.secondary != 0 || b.subordinate != 0 => {
                cfg.write32(f.bdf, regs::PRIMARY_BUS, u32::from(bus))?;
                (b.primary, b.secondary, b.subordinate) = (bus, 0, 0);
            }
            _ => {}
        }
    }
    Ok(())
}

/// If function 0 at `table[first]` has ARI and its port forwards ARI, enable forwarding and
/// record the rest of the functions by following next-function numbers (strictly increasing,
/// so the chain ends). Returns whether ARI was used.
fn try_ari<C: ConfigSpace + ?Sized>(
    cfg: &mut C,
    bus: u8,
    parent: Option<usize>,
    first: usize,
    table: &mut FunctionTable,
) -> Result<bool, EnumError> {
    let Some(port) = parent.and_then(|p| table.get(p)) else {
        return Ok(false);
    };
    let (Some(pcie), Some(ari)) = (port.pcie, table.get(first).and_then(|f| f.ari)) else {
        return Ok(false);
    };
    if !pcie.ari_forwarding {
        return Ok(false);
    }
    let port_bdf = port.bdf;
    let ctl = cfg.read16(port_bdf, pcie.cap + regs::EXP_DEVCTL2)?;
    cfg.write16(
        port_bdf,
        pcie.cap + regs::EXP_DEVCTL2,
        ctl | regs::EXP_DEVCTL2_ARI,
    )?;
    let mut current = 0u8;
    let mut cap = ari;
    let mut at = Bdf::from_ari(bus, 0);
    loop {
        let next = crate::caps::ari_next(cfg, at, &cap)?;
        if next <= current {
            break;
        }
        current = next;
        at = Bdf::from_ari(bus, next);
        let Some(i) = record(cfg, at, parent, table)? else {
            break;
        };
        match table.get(i).and_then(|f| f.ari) {
            Some(c) => cap = c,
            None => break,
        }
    }
    Ok(true)
}
