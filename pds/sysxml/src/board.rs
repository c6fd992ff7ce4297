//! Board overlays: the physical addresses one board gives the regions of `system.xml`.
//!
//! `system.xml` describes the system for every platform, so it cannot hold a board's physical
//! addresses (where the PCIe ECAM window or the BAR aperture sit). Each seL4 board keeps them in
//! its own file, `images/<board>/board.xml`, which the image build merges in before handing the
//! result ([`crate::System::to_sdf`]) to the Microkit tool. Hosted mode merges nothing and uses
//! [`crate::System::fake_phys_bases`] instead.
//!
//! Format:
//!
//! ```xml
//! <board name="qemu_virt_aarch64">
//!     <!-- Sets phys_addr (required) and optionally size of a region system.xml declares. -->
//!     <memory_region name="pci_ecam" phys_addr="0x4010000000" />
//!     <memory_region name="pci_mmio" phys_addr="0x10000000" size="0x2eff0000" />
//! </board>
//! ```
//!
//! Numbers follow the SDF rules (decimal, or hex with `0x`, underscores ignored). A board may only
//! place regions that `system.xml` declares, each at most once; the merged description must still
//! pass every check ([`crate::System::validate`]): page alignment, size a multiple of the page
//! size, no two physical ranges overlapping.

use crate::{Error, System, PAGE_SIZES};
use roxmltree::{Document, Node};
use std::collections::HashSet;

/// The name errors from a board file carry.
const BOARD_FILE: &str = "board.xml";

/// Merge a board file's physical addresses (and sizes) into `system`.
///
/// All or nothing: on error `system` is left exactly as it was.
///
/// # Errors
/// Malformed XML, an element or attribute the format does not have, a bad number, a region
/// `system.xml` does not declare or one placed twice, a misaligned address or size (at the board
/// element's line), or a merged description that fails [`System::validate`].
pub fn merge_board(system: &mut System, board_text: &str) -> Result<(), Error> {
    let doc = Document::parse(board_text).map_err(|e| {
        let pos = e.pos();
        at(pos.row, pos.col, "xml", format!("malformed XML: {e}"))
    })?;
    let root = doc.root_element();
    let error = |node: Node<'_, '_>, message: String| {
        let pos = doc.text_pos_at(node.range().start);
        at(pos.row, pos.col, node.tag_name().name(), message)
    };
    if root.tag_name().name() != "board" {
        return Err(error(root, "the root element must be <board>".into()));
    }
    check_attributes(root, &["name"], error)?;
    if root.attribute("name").is_none() {
        return Err(error(root, "missing required attribute 'name'".into()));
    }

    let mut merged = system.clone();
    let mut placed = HashSet::new();
    for node in root.children() {
        if node.is_text() && node.text().is_some_and(|t| !t.trim().is_empty()) {
            return Err(error(root, "unexpected text in element".into()));
        }
        if !node.is_element() {
            continue;
        }
        if node.tag_name().name() != "memory_region" {
            let name = node.tag_name().name();
            return Err(error(node, format!("invalid XML element '{name}'")));
        }
        check_attributes(node, &["name", "phys_addr", "size"], error)?;
        let name = node
            .attribute("name")
            .ok_or_else(|| error(node, "missing required attribute 'name'".into()))?;
        let number = |attr: &str| {
            node.attribute(attr)
                .map(|text| {
                    crate::parse_number(text).map_err(|_| {
                        error(
                            node,
                            format!("failed to parse integer '{text}' in attribute '{attr}'"),
                        )
                    })
                })
                .transpose()
        };
        let phys_addr = number("phys_addr")?
            .ok_or_else(|| error(node, "missing required attribute 'phys_addr'".into()))?;
        let size = number("size")?;
        let mr = merged
            .regions
            .iter_mut()
            .find(|mr| mr.name == name)
            .ok_or_else(|| {
                error(
                    node,
                    format!("memory region '{name}' is not declared in system.xml"),
                )
            })?;
        if !placed.insert(name) {
            return Err(error(
                node,
                format!("memory region '{name}' is placed twice"),
            ));
        }
        let page_size = mr.page_size.unwrap_or(PAGE_SIZES[0]);
        if !phys_addr.is_multiple_of(page_size) {
            let message = format!(
                "phys_addr {phys_addr:#x} is not aligned to the page size {page_size:#x} of '{name}'"
            );
            return Err(error(node, message));
        }
        if let Some(size) = size {
            if size == 0 || !size.is_multiple_of(page_size) {
                let message = format!(
                    "size {size:#x} is not a non-zero multiple of the page size {page_size:#x} \
                     of '{name}'"
                );
                return Err(error(node, message));
            }
            mr.size = size;
        }
        mr.phys_addr = Some(phys_addr);
    }
    merged.validate()?;
    *system = merged;
    Ok(())
}

fn at(line: u32, column: u32, element: &str, message: String) -> Error {
    Error::at(line, column, element, message).in_file(BOARD_FILE)
}

fn check_attributes(
    node: Node<'_, '_>,
    allowed: &[&str],
    error: impl Fn(Node<'_, '_>, String) -> Error,
) -> Result<(), Error> {
    match node.attributes().find(|a| !allowed.contains(&a.name())) {
        Some(attr) => Err(error(node, format!("invalid attribute '{}'", attr.name()))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::merge_board;
    use crate::{parse, System};

    fn system() -> System {
        parse(
            r#"<system>
  <memory_region name="ecam" size="0x10000000" page_size="0x200000" />
  <memory_region name="mmio" size="0x200000" page_size="0x200000" />
  <memory_region name="ram" size="0x1000" />
  <protection_domain name="pci"><program_image path="pci.elf" />
    <map mr="ecam" vaddr="0x30000000" cached="false" />
    <setvar symbol="mmio_paddr" region_paddr="mmio" />
  </protection_domain>
</system>"#,
        )
        .unwrap()
    }

    #[track_caller]
    fn refused(board: &str, line: u32, needle: &str) {
        let mut sys = system();
        let err = merge_board(&mut sys, board).unwrap_err();
        assert_eq!((err.file.as_str(), err.line), ("board.xml", line), "{err}");
        assert!(err.message.contains(needle), "{err}");
        assert_eq!(sys, system(), "a failed merge must change nothing");
    }

    #[test]
    fn merge_sets_phys_addr_and_size() {
        let mut sys = system();
        let board = r#"<board name="qemu_virt_aarch64">
  <memory_region name="ecam" phys_addr="0x40_1000_0000" />
  <memory_region name="mmio" phys_addr="0x10000000" size="0x400000" />
</board>"#;
        merge_board(&mut sys, board).unwrap();
        assert_eq!(sys.region("ecam").unwrap().phys_addr, Some(0x40_1000_0000));
        assert_eq!(sys.region("ecam").unwrap().size, 0x1000_0000);
        let mmio = sys.region("mmio").unwrap();
        assert_eq!((mmio.phys_addr, mmio.size), (Some(0x1000_0000), 0x40_0000));
        assert_eq!(sys.region("ram").unwrap().phys_addr, None);
        // The merged address shows up in the SDF handed to the Microkit tool.
        assert!(sys.to_sdf().contains(
            r#"name="ecam" size="0x10000000" page_size="0x200000" phys_addr="0x4010000000""#
        ));
    }

    #[test]
    fn unknown_region() {
        refused(
            "<board name=\"b\">\n  <memory_region name=\"nope\" phys_addr=\"0x0\" />\n</board>",
            2,
            "'nope' is not declared in system.xml",
        );
    }

    #[test]
    fn region_placed_twice() {
        refused("<board name=\"b\">\n<memory_region name=\"ram\" phys_addr=\"0x0\" />\n<memory_region name=\"ram\" phys_addr=\"0x1000\" />\n</board>", 3, "placed twice");
    }

    #[test]
    fn misaligned_phys_addr_or_size() {
        refused(
            "<board name=\"b\"><memory_region name=\"mmio\" phys_addr=\"0x1000\" /></board>",
            1,
            "not aligned to the page size 0x200000",
        );
        refused("<board name=\"b\"><memory_region name=\"mmio\" phys_addr=\"0x0\" size=\"0x1000\" /></board>", 1, "not a non-zero multiple");
    }

    #[test]
    fn merged_ranges_must_not_overlap() {
        let mut sys = system();
        let board = r#"<board name="b"><memory_region name="ecam" phys_addr="0x0" /><memory_region name="mmio" phys_addr="0x200000" /></board>"#;
        let err = merge_board(&mut sys, board).unwrap_err();
        assert!(
            err.message
                .contains("overlaps with another memory region 'ecam'"),
            "{err}"
        );
        assert_eq!(sys, system());
    }

    #[test]
    fn malformed_board_files() {
        refused(
            "<board name=\"b\">\n<memory_region name=\"ram\" phys_addr=\"0x0\" >\n</board>",
            3,
            "malformed XML",
        );
        refused("<boards name=\"b\" />", 1, "root element must be <board>");
        refused("<board />", 1, "missing required attribute 'name'");
        refused(
            "<board name=\"b\" arch=\"x\" />",
            1,
            "invalid attribute 'arch'",
        );
        refused(
            "<board name=\"b\"><region name=\"ram\" /></board>",
            1,
            "invalid XML element 'region'",
        );
        refused("<board name=\"b\"><memory_region name=\"ram\" page_size=\"0x1000\" phys_addr=\"0\" /></board>", 1, "invalid attribute 'page_size'");
        refused(
            "<board name=\"b\"><memory_region name=\"ram\" /></board>",
            1,
            "missing required attribute 'phys_addr'",
        );
        refused(
            "<board name=\"b\"><memory_region name=\"ram\" phys_addr=\"0xg\" /></board>",
            1,
            "failed to parse integer '0xg'",
        );
        refused("<board name=\"b\">text</board>", 1, "unexpected text");
    }
}
