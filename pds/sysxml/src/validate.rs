//! Rules that relate elements to each other, as the Microkit 2.3.0 tool checks them after reading
//! the whole description (`tool/microkit/src/sdf.rs`, `parse` and `check_maps`). Each error points
//! at the element that breaks the rule: the second of two duplicates, the end naming an unknown
//! PD, the map that overlaps an earlier one. Messages keep the tool's wording where it has one.

use crate::{End, Error, Map, Pd, System, MAX_PDS};
use std::collections::HashSet;

/// Mappings must end below this address. The real limit is the board's user vspace top minus the
/// PD's stack; this bound sits below it on every seL4 configuration the stack targets and below the
/// top of Linux's 47-bit user address space, where the hosted runtime maps regions at the same
/// vaddrs. Stricter than the tool, on purpose: one description must work on both.
pub const MAP_VADDR_END: u64 = 0x7fff_0000_0000;

/// The PD name the Microkit monitor owns.
const MONITOR_PD_NAME: &str = "monitor";

pub(crate) fn validate(sys: &System) -> Result<(), Error> {
    pd_names(sys)?;
    region_names(sys)?;
    child_ids(sys)?;
    channels(sys)?;
    irq_numbers(sys)?;
    for pd in &sys.pds {
        maps(sys, pd)?;
        setvars(sys, pd)?;
    }
    physical_ranges(sys)
}

fn pd_error(pd: &Pd, message: String) -> Error {
    Error::at(pd.line, pd.column, "protection_domain", message)
}

fn pd_names(sys: &System) -> Result<(), Error> {
    let first = sys.pds.first().ok_or_else(|| {
        Error::at(
            1,
            1,
            "system",
            "at least one protection domain must be defined",
        )
    })?;
    if sys.pds.len() > MAX_PDS {
        let message = format!(
            "too many protection domains ({}) defined. Maximum is {MAX_PDS}.",
            sys.pds.len()
        );
        return Err(pd_error(first, message));
    }
    let mut seen = HashSet::new();
    for pd in &sys.pds {
        if pd.name == MONITOR_PD_NAME {
            let message = "the PD name 'monitor' is reserved for the Microkit Monitor";
            return Err(pd_error(pd, message.into()));
        }
        if !seen.insert(pd.name.as_str()) {
            return Err(pd_error(
                pd,
                format!("duplicate protection domain name '{}'", pd.name),
            ));
        }
    }
    Ok(())
}

fn region_names(sys: &System) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for mr in &sys.regions {
        if !seen.insert(mr.name.as_str()) {
            let message = format!("duplicate memory region name '{}'", mr.name);
            return Err(Error::at(mr.line, mr.column, "memory_region", message));
        }
    }
    Ok(())
}

fn child_ids(sys: &System) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for pd in &sys.pds {
        let (Some(parent), Some(id)) = (pd.parent, pd.id) else {
            continue;
        };
        if !seen.insert((parent, id)) {
            let parent_name = sys.pds.get(parent).map_or("?", |p| p.name.as_str());
            let message = format!("duplicate id: {id} in protection domain: '{parent_name}'");
            return Err(pd_error(pd, message));
        }
    }
    Ok(())
}

/// Channel ends naming PDs, the id space each PD shares between its irqs and channel ends, and
/// the PPC priority rule.
fn channels(sys: &System) -> Result<(), Error> {
    let mut ids: HashSet<(&str, u8)> = HashSet::new();
    for pd in &sys.pds {
        for irq in &pd.irqs {
            if !ids.insert((pd.name.as_str(), irq.id)) {
                let message = format!(
                    "duplicate channel id: {} in protection domain: '{}'",
                    irq.id, pd.name
                );
                return Err(Error::at(irq.line, irq.column, "irq", message));
            }
        }
    }
    for ch in &sys.channels {
        let mut end_pd = |end: &End| {
            let pd = sys.pd(&end.pd).ok_or_else(|| {
                Error::at(
                    end.line,
                    end.column,
                    "end",
                    format!("invalid PD name '{}'", end.pd),
                )
            })?;
            if !ids.insert((&pd.name, end.id)) {
                let message = format!(
                    "duplicate channel id: {} in protection domain: '{}'",
                    end.id, pd.name
                );
                return Err(Error::at(end.line, end.column, "end", message));
            }
            Ok(pd)
        };
        let [a, b] = &ch.ends;
        let (pd_a, pd_b) = (end_pd(a)?, end_pd(b)?);
        for (end, caller, callee) in [(a, pd_a, pd_b), (b, pd_b, pd_a)] {
            if end.pp && caller.priority >= callee.priority {
                let message = format!(
                    "PPCs must be to protection domains of strictly higher priorities; channel \
                     with PPC exists from pd {} (priority: {}) to pd {} (priority: {})",
                    caller.name, caller.priority, callee.name, callee.priority
                );
                return Err(Error::at(ch.line, ch.column, "channel", message));
            }
        }
    }
    Ok(())
}

/// An interrupt goes to one PD only.
fn irq_numbers(sys: &System) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for pd in &sys.pds {
        for irq in &pd.irqs {
            if !seen.insert(irq.irq) {
                let message = format!(
                    "duplicate irq: {} in protection domain: '{}'",
                    irq.irq, pd.name
                );
                return Err(Error::at(irq.line, irq.column, "irq", message));
            }
        }
    }
    Ok(())
}

fn map_error(map: &Map, message: String) -> Error {
    Error::at(map.line, map.column, "map", message)
}

/// The tool's `check_maps`: known region, vaddr aligned to the region's page size, in range, and no
/// two mappings of one PD overlapping.
fn maps(sys: &System, pd: &Pd) -> Result<(), Error> {
    let mut placed: Vec<(&str, u64, u64)> = Vec::new();
    for map in &pd.maps {
        let mr = sys.region(&map.mr).ok_or_else(|| {
            map_error(
                map,
                format!("invalid memory region name '{}' on 'map'", map.mr),
            )
        })?;
        let page_size = mr.page_size.unwrap_or(crate::PAGE_SIZES[0]);
        if !map.vaddr.is_multiple_of(page_size) {
            let message = format!(
                "invalid vaddr alignment on 'map': {:#x} is not a multiple of the page size \
                 {page_size:#x} of '{}'",
                map.vaddr, mr.name
            );
            return Err(map_error(map, message));
        }
        let start = map.vaddr;
        let end = start
            .checked_add(mr.size)
            .filter(|&end| end <= MAP_VADDR_END)
            .ok_or_else(|| {
                map_error(
                    map,
                    format!(
                        "map for '{}' at {start:#x} (size {:#x}) exceeds valid address space \
                         [0x0..{MAP_VADDR_END:#x})",
                        mr.name, mr.size
                    ),
                )
            })?;
        if let Some((other, o_start, o_end)) =
            placed.iter().find(|&&(_, s, e)| start < e && s < end)
        {
            let message = format!(
                "map for '{}' has virtual address range [{start:#x}..{end:#x}) which overlaps with \
                 map for '{other}' [{o_start:#x}..{o_end:#x}) in protection domain '{}'",
                mr.name, pd.name
            );
            return Err(map_error(map, message));
        }
        placed.push((&mr.name, start, end));
    }
    Ok(())
}

/// Every symbol a PD's image receives is set once (the tool's `checked_add_setvar`), and a
/// `region_paddr` names a region.
fn setvars(sys: &System, pd: &Pd) -> Result<(), Error> {
    let pd_index = sys.pd_index(&pd.name);
    let mut symbols = HashSet::new();
    let mut add = |symbol: Option<&str>, line: u32, column: u32, element: &str| match symbol {
        Some(s) if !symbols.insert(s.to_owned()) => Err(Error::at(
            line,
            column,
            element,
            format!("setvar on symbol '{s}' already exists"),
        )),
        _ => Ok(()),
    };
    for map in &pd.maps {
        add(map.setvar_vaddr.as_deref(), map.line, map.column, "map")?;
        add(map.setvar_size.as_deref(), map.line, map.column, "map")?;
    }
    for irq in &pd.irqs {
        add(irq.setvar_id.as_deref(), irq.line, irq.column, "irq")?;
    }
    for setvar in &pd.setvars {
        add(Some(&setvar.symbol), setvar.line, setvar.column, "setvar")?;
        if sys.region(&setvar.region_paddr).is_none() {
            let message = format!(
                "invalid memory region name '{}' on 'setvar'",
                setvar.region_paddr
            );
            return Err(Error::at(setvar.line, setvar.column, "setvar", message));
        }
    }
    for (_, child) in pd_index.into_iter().flat_map(|i| sys.children_of(i)) {
        let symbol = child.setvar_id.as_deref();
        add(symbol, child.line, child.column, "protection_domain")?;
    }
    for (own, _) in sys.channels_of(&pd.name) {
        add(own.setvar_id.as_deref(), own.line, own.column, "end")?;
    }
    Ok(())
}

/// Regions with a physical address must not overlap each other.
fn physical_ranges(sys: &System) -> Result<(), Error> {
    let mut placed: Vec<(&str, u64, u64)> = Vec::new();
    for mr in &sys.regions {
        let Some(start) = mr.phys_addr else {
            continue;
        };
        let end = start.checked_add(mr.size).ok_or_else(|| {
            let message = format!(
                "memory region '{}' physical address range overflows",
                mr.name
            );
            Error::at(mr.line, mr.column, "memory_region", message)
        })?;
        if let Some((other, o_start, o_end)) =
            placed.iter().find(|&&(_, s, e)| start < e && s < end)
        {
            let message = format!(
                "memory region '{}' physical address range [{start:#x}..{end:#x}) overlaps with \
                 another memory region '{other}' [{o_start:#x}..{o_end:#x})",
                mr.name
            );
            return Err(Error::at(mr.line, mr.column, "memory_region", message));
        }
        placed.push((&mr.name, start, end));
    }
    Ok(())
}
