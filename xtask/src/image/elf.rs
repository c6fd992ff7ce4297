//! Values the seL4 glue (`images/microkit/glue`) reads from its own image, written into the linked
//! ELFs before the Microkit tool runs (which patches its own symbols the same way).
//!
//! - The glue restarts a faulted child at the child's `pd_sel4_restart_entry`, which only the
//!   linker placed. Each image reserves a table, `pd_sel4_child_entries: [usize; 62]` in `.data`,
//!   indexed by child id; this fills the parent's from `system.xml`'s child ids and the children's
//!   symbols.
//! - `pd_sel4_inject_fault_after` makes a PD fault on its Nth PPC (the demo's injected fault).
//! - `pd_sel4_fault_plan` (fault campaign images only) holds a `pd_core::faults` plan.

use std::collections::BTreeMap;
use std::path::Path;

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection, ObjectSymbol};

/// The symbol of a PD's warm entry point.
const ENTRY: &str = "pd_sel4_restart_entry";
/// The parent's table of its children's warm entries.
const TABLE: &str = "pd_sel4_child_entries";
/// The PPC a PD faults on.
const INJECT: &str = "pd_sel4_inject_fault_after";
/// The fault campaign's plan buffer (NUL-terminated text).
const PLAN: &str = "pd_sel4_fault_plan";
/// Entries in the table (Microkit child ids 0..=61).
const TABLE_LEN: u64 = 62;

/// Fill the restart table of every parent's image in `images` (a directory of the program images
/// named in `system`).
///
/// # Errors
/// An image that cannot be read or written, lacks a symbol, or is the parent image of two PDs
/// whose children differ.
pub fn patch_restart_entries(system: &sysxml::System, images: &Path) -> Result<(), String> {
    let mut tables: BTreeMap<&str, BTreeMap<u8, u64>> = BTreeMap::new();
    for (index, parent) in system.pds.iter().enumerate() {
        let mut table = BTreeMap::new();
        for (_, child) in system.children_of(index) {
            let Some(id) = child.id else { continue };
            let data = read(&images.join(&child.program_image))?;
            let (entry, _) =
                symbol(&data, ENTRY).map_err(|e| format!("{}: {e}", child.program_image))?;
            table.insert(id, entry);
        }
        if table.is_empty() {
            continue;
        }
        match tables.get(parent.program_image.as_str()) {
            Some(other) if *other != table => {
                return Err(format!(
                    "{} is the image of two parents with different children",
                    parent.program_image
                ))
            }
            _ => {
                tables.insert(&parent.program_image, table);
            }
        }
    }
    for (image, table) in tables {
        if table.keys().any(|&id| u64::from(id) >= TABLE_LEN) {
            return Err(format!("{image}: a child id is beyond Microkit's 0..=61"));
        }
        let words: Vec<(u64, u64)> = table
            .into_iter()
            .map(|(id, e)| (u64::from(id), e))
            .collect();
        write_words(&images.join(image), TABLE, &words)?;
    }
    Ok(())
}

/// Make PD `pd`'s image fault on its `call`th PPC (every PD of that image).
///
/// # Errors
/// No PD `pd` in `system`, or its image cannot be patched.
pub fn inject_fault(
    system: &sysxml::System,
    images: &Path,
    pd: &str,
    call: u64,
) -> Result<(), String> {
    let image = &system
        .pd(pd)
        .ok_or_else(|| format!("--fault: no PD named {pd} in system.xml"))?
        .program_image;
    write_words(&images.join(image), INJECT, &[(0, call)])
}

/// Write the fault plan `plan` into every image in `images` (a session's copy of the campaign's
/// program images): each PD then injects its share (see the glue's `fault` module).
///
/// # Errors
/// An image that cannot be read or written or lacks the plan buffer (not a campaign build), or a
/// plan longer than the buffer.
pub fn write_plan(images: &Path, plan: &str) -> Result<(), String> {
    let entries =
        std::fs::read_dir(images).map_err(|e| format!("cannot list {}: {e}", images.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|x| x == "elf") {
            let mut data = read(&path)?;
            let (offset, size) =
                symbol_file_range(&data, PLAN).map_err(|e| format!("{}: {e}", path.display()))?;
            let bytes = plan_bytes(plan, size)?;
            let at = usize::try_from(offset).map_err(|e| e.to_string())?;
            data.get_mut(at..at + bytes.len())
                .ok_or_else(|| format!("{}: {PLAN} lies outside the file", path.display()))?
                .copy_from_slice(&bytes);
            std::fs::write(&path, data)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// The bytes of a plan buffer of `size` bytes holding `plan`: the text, then NULs.
fn plan_bytes(plan: &str, size: u64) -> Result<Vec<u8>, String> {
    let size = usize::try_from(size).map_err(|e| e.to_string())?;
    if plan.len() >= size || plan.contains('\0') {
        return Err(format!(
            "the fault plan ({} bytes) does not fit {PLAN} ({size} bytes, NUL-terminated): \
             fewer runs per session (--per-session)",
            plan.len()
        ));
    }
    let mut bytes = plan.as_bytes().to_vec();
    bytes.resize(size, 0);
    Ok(bytes)
}

/// Write the 64-bit words `(index, value)` into the array (or word) at symbol `name` of `path`.
fn write_words(path: &Path, name: &str, words: &[(u64, u64)]) -> Result<(), String> {
    let image = path.display();
    let mut data = read(path)?;
    let (offset, size) = symbol_file_range(&data, name).map_err(|e| format!("{image}: {e}"))?;
    for &(index, value) in words {
        if (index + 1) * 8 > size {
            return Err(format!("{image}: {name} has no word {index}"));
        }
        let at = usize::try_from(offset + index * 8).map_err(|e| e.to_string())?;
        let slot = data
            .get_mut(at..at + 8)
            .ok_or_else(|| format!("{image}: {name} lies outside the file"))?;
        slot.copy_from_slice(&value.to_le_bytes());
    }
    std::fs::write(path, data).map_err(|e| format!("cannot write {image}: {e}"))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The address and size of symbol `name`.
fn symbol(data: &[u8], name: &str) -> Result<(u64, u64), String> {
    let elf =
        ElfFile64::<Endianness>::parse(data).map_err(|e| format!("not an ELF64 file: {e}"))?;
    elf.symbols()
        .find(|s| s.name() == Ok(name))
        .map(|s| (s.address(), s.size()))
        .ok_or_else(|| format!("no symbol {name} (not built with the pd-sel4 glue?)"))
}

/// The file offset and size of symbol `name`, which must have bytes in the file (`.data`).
fn symbol_file_range(data: &[u8], name: &str) -> Result<(u64, u64), String> {
    let elf =
        ElfFile64::<Endianness>::parse(data).map_err(|e| format!("not an ELF64 file: {e}"))?;
    let sym = elf
        .symbols()
        .find(|s| s.name() == Ok(name))
        .ok_or_else(|| format!("no symbol {name} (not built with the pd-sel4 glue?)"))?;
    let section = sym
        .section_index()
        .and_then(|i| elf.section_by_index(i).ok())
        .ok_or_else(|| format!("symbol {name} is in no section"))?;
    let (file_start, file_size) = section
        .file_range()
        .ok_or_else(|| format!("symbol {name} is in a section with no file bytes"))?;
    let within = sym
        .address()
        .checked_sub(section.address())
        .ok_or_else(|| format!("symbol {name} lies before its section"))?;
    if within + sym.size() > file_size {
        return Err(format!(
            "symbol {name} extends past its section's file bytes"
        ));
    }
    Ok((file_start + within, sym.size()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_padded_with_nuls_and_must_leave_room_for_one() {
        let b = plan_bytes("gpu@1ms:panic", 16).unwrap();
        assert_eq!(&b[..13], b"gpu@1ms:panic");
        assert_eq!(b.len(), 16);
        assert!(b[13..].iter().all(|&x| x == 0));
        assert!(plan_bytes("0123456789abcdef", 16)
            .unwrap_err()
            .contains("does not fit"));
        assert!(plan_bytes("a\0b", 16).is_err());
        assert_eq!(plan_bytes("", 4).unwrap(), [0; 4]);
    }
}
