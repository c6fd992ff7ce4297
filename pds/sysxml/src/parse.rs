//! XML to [`System`]: the element-local checks the Microkit tool makes while reading each element
//! (attribute names, value syntax and ranges, page sizes, required children). Rules that relate
//! elements to each other live in `validate`.

use crate::{
    ChannelDecl, End, Error, Irq, Map, MemoryRegion, Pd, Perms, SetVar, System, Trigger, MAX_ID,
    MAX_PRIORITY, PAGE_SIZES,
};
use roxmltree::{Document, Node};

/// Attributes the Microkit tool accepts on an element but this stack does not use. They are
/// refused with their own message, so nobody mistakes "unsupported here" for "misspelt".
const UNSUPPORTED_ATTRIBUTES: &[&str] = &[
    "smc",
    "cpu",
    "domain",
    "fpu",
    "path_for_symbols",
    "setvar_prefill_size",
    "prefill_bootinfo",
    "pin",
    "ioapic",
    "polarity",
    "vector",
    "pcidev",
    "handle",
];

/// Elements the Microkit tool accepts but this stack does not use.
const UNSUPPORTED_ELEMENTS: &[&str] = &[
    "virtual_machine",
    "cspace",
    "ioport",
    "domains",
    "io_address_space",
];

/// Microkit's stack size limits (`PD_MIN_STACK_SIZE`, `PD_MAX_STACK_SIZE`).
const STACK_SIZE_RANGE: core::ops::RangeInclusive<u64> = 0x1000..=0x100_0000;

/// Microkit's default budget in microseconds (`BUDGET_DEFAULT`), used to check `period`.
const BUDGET_DEFAULT: u64 = 1000;

pub(crate) fn parse(text: &str) -> Result<System, Error> {
    let doc = Document::parse(text).map_err(|e| {
        let pos = e.pos();
        Error::at(pos.row, pos.col, "xml", format!("malformed XML: {e}"))
    })?;
    let xml = Xml { doc: &doc };
    let root = doc.root_element();
    if root.tag_name().name() != "system" {
        return Err(xml.error(root, "the root element must be <system>"));
    }
    xml.check_attributes(root, &[])?;

    let mut system = System::default();
    for child in xml.element_children(root)? {
        match child.tag_name().name() {
            "memory_region" => system.regions.push(xml.memory_region(child)?),
            "protection_domain" => xml.protection_domain(child, None, &mut system.pds)?,
            "channel" => system.channels.push(xml.channel(child)?),
            _ => return Err(xml.unknown_element(child)),
        }
    }
    Ok(system)
}

/// The document being read; every helper turns a node into a positioned [`Error`].
struct Xml<'a, 'input> {
    doc: &'a Document<'input>,
}

impl<'a, 'input> Xml<'a, 'input> {
    fn position(&self, node: Node<'_, '_>) -> (u32, u32) {
        let pos = self.doc.text_pos_at(node.range().start);
        (pos.row, pos.col)
    }

    fn error(&self, node: Node<'_, '_>, message: impl Into<String>) -> Error {
        let (line, column) = self.position(node);
        Error::at(line, column, node.tag_name().name(), message)
    }

    fn unknown_element(&self, node: Node<'_, '_>) -> Error {
        let name = node.tag_name().name();
        if UNSUPPORTED_ELEMENTS.contains(&name) {
            self.error(
                node,
                format!("element '{name}' is valid Microkit but not supported by this stack"),
            )
        } else {
            self.error(node, format!("invalid XML element '{name}'"))
        }
    }

    /// The element children of `node`, refusing text other than whitespace (the tool's
    /// `check_no_text`). Comments and processing instructions are skipped.
    fn element_children(&self, node: Node<'a, 'input>) -> Result<Vec<Node<'a, 'input>>, Error> {
        let mut out = Vec::new();
        for child in node.children() {
            if child.is_element() {
                out.push(child);
            } else if child.is_text() && child.text().is_some_and(|t| !t.trim().is_empty()) {
                let (line, column) = self.position(child);
                let element = node.tag_name().name();
                return Err(Error::at(
                    line,
                    column,
                    element,
                    "unexpected text in element",
                ));
            }
        }
        Ok(out)
    }

    fn check_attributes(&self, node: Node<'_, '_>, allowed: &[&str]) -> Result<(), Error> {
        for attr in node.attributes() {
            let name = attr.name();
            if allowed.contains(&name) {
                continue;
            }
            return Err(if UNSUPPORTED_ATTRIBUTES.contains(&name) {
                self.error(
                    node,
                    format!("attribute '{name}' is valid Microkit but not supported by this stack"),
                )
            } else {
                self.error(node, format!("invalid attribute '{name}'"))
            });
        }
        Ok(())
    }

    fn required(&self, node: Node<'a, 'input>, attr: &str) -> Result<&'a str, Error> {
        node.attribute(attr)
            .ok_or_else(|| self.error(node, format!("missing required attribute '{attr}'")))
    }

    /// A Microkit number: decimal, or hexadecimal with `0x`; underscores are ignored.
    fn number(&self, node: Node<'_, '_>, attr: &str) -> Result<Option<u64>, Error> {
        let Some(text) = node.attribute(attr) else {
            return Ok(None);
        };
        crate::parse_number(text).map(Some).map_err(|e| {
            self.error(
                node,
                format!("failed to parse integer '{text}' in attribute '{attr}': {e}"),
            )
        })
    }

    fn required_number(&self, node: Node<'a, 'input>, attr: &str) -> Result<u64, Error> {
        self.required(node, attr)?;
        self.number(node, attr)?
            .ok_or_else(|| self.error(node, format!("missing required attribute '{attr}'")))
    }

    fn boolean(&self, node: Node<'_, '_>, attr: &str, default: bool) -> Result<bool, Error> {
        match node.attribute(attr) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(self.error(node, format!("{attr} must be 'true' or 'false'"))),
        }
    }

    /// A channel, irq or child id: 0..=61.
    fn id(&self, node: Node<'a, 'input>, attr: &str) -> Result<u8, Error> {
        let id = self.required_number(node, attr)?;
        u8::try_from(id)
            .ok()
            .filter(|&id| id <= MAX_ID)
            .ok_or_else(|| self.error(node, format!("{attr} must be < {}", u64::from(MAX_ID) + 1)))
    }

    fn symbol(&self, node: Node<'_, '_>, attr: &str) -> Option<String> {
        node.attribute(attr).map(str::to_owned)
    }

    fn memory_region(&self, node: Node<'a, 'input>) -> Result<MemoryRegion, Error> {
        self.check_attributes(
            node,
            &["name", "size", "page_size", "phys_addr", "prefill_path"],
        )?;
        let name = self.required(node, "name")?.to_owned();
        let page_size = self.number(node, "page_size")?;
        let effective = page_size.unwrap_or(PAGE_SIZES[0]);
        if !PAGE_SIZES.contains(&effective) {
            return Err(self.error(node, format!("page size {effective:#x} not supported")));
        }
        // Stricter than the tool, which can size a region from its prefill file: sysxml does not
        // read prefill files, and the hosted runtime needs the size up front.
        let size = self.required_number(node, "size")?;
        if size == 0 {
            return Err(self.error(node, "size must not be zero"));
        }
        if !size.is_multiple_of(effective) {
            return Err(self.error(node, "size is not a multiple of the page size"));
        }
        let phys_addr = self.number(node, "phys_addr")?;
        if phys_addr.is_some_and(|p| !p.is_multiple_of(effective)) {
            return Err(self.error(node, "phys_addr is not aligned to the page size"));
        }
        let (line, column) = self.position(node);
        Ok(MemoryRegion {
            name,
            size,
            page_size,
            phys_addr,
            prefill_path: self.symbol(node, "prefill_path"),
            line,
            column,
        })
    }

    /// Parse a PD and, depth first, its children, appending them to `out` (the tool's flattening).
    fn protection_domain(
        &self,
        node: Node<'a, 'input>,
        parent: Option<usize>,
        out: &mut Vec<Pd>,
    ) -> Result<(), Error> {
        let mut attrs = vec![
            "name",
            "priority",
            "budget",
            "period",
            "passive",
            "stack_size",
        ];
        if parent.is_some() {
            attrs.extend(["id", "setvar_id"]);
        }
        self.check_attributes(node, &attrs)?;
        let name = self.required(node, "name")?.to_owned();
        let id = parent.map(|_| self.id(node, "id")).transpose()?;

        let priority = self.number(node, "priority")?.unwrap_or(0);
        let priority = u8::try_from(priority)
            .ok()
            .filter(|&p| p <= MAX_PRIORITY)
            .ok_or_else(|| {
                self.error(
                    node,
                    format!("priority must be between 0 and {MAX_PRIORITY}"),
                )
            })?;

        let budget = self.number(node, "budget")?;
        let period = self.number(node, "period")?;
        let effective_budget = budget.unwrap_or(BUDGET_DEFAULT);
        if effective_budget > period.unwrap_or(effective_budget) {
            let period = period.unwrap_or(effective_budget);
            return Err(self.error(
                node,
                format!(
                    "budget ({effective_budget}) must be less than, or equal to, period ({period})"
                ),
            ));
        }

        let stack_size = self.number(node, "stack_size")?;
        if let Some(size) = stack_size {
            if !STACK_SIZE_RANGE.contains(&size) {
                return Err(self.error(
                    node,
                    format!(
                        "stack size must be between {:#x} bytes and {:#x} bytes",
                        STACK_SIZE_RANGE.start(),
                        STACK_SIZE_RANGE.end()
                    ),
                ));
            }
            if !size.is_multiple_of(PAGE_SIZES[0]) {
                return Err(self.error(
                    node,
                    "stack size must be aligned to the smallest page size, 4096 bytes",
                ));
            }
        }

        let (line, column) = self.position(node);
        let mut pd = Pd {
            name,
            priority,
            passive: self.boolean(node, "passive", false)?,
            budget,
            period,
            stack_size,
            program_image: String::new(),
            maps: Vec::new(),
            setvars: Vec::new(),
            parent,
            id,
            setvar_id: self.symbol(node, "setvar_id"),
            irqs: Vec::new(),
            line,
            column,
        };

        let mut program_image = None;
        let mut children = Vec::new();
        for child in self.element_children(node)? {
            match child.tag_name().name() {
                "program_image" => {
                    self.check_attributes(child, &["path"])?;
                    if program_image.is_some() {
                        return Err(self.error(node, "program_image must only be specified once"));
                    }
                    program_image = Some(self.required(child, "path")?.to_owned());
                }
                "map" => pd.maps.push(self.map(child)?),
                "irq" => pd.irqs.push(self.irq(child)?),
                "setvar" => {
                    self.check_attributes(child, &["symbol", "region_paddr"])?;
                    let (line, column) = self.position(child);
                    pd.setvars.push(SetVar {
                        symbol: self.required(child, "symbol")?.to_owned(),
                        region_paddr: self.required(child, "region_paddr")?.to_owned(),
                        line,
                        column,
                    });
                }
                "protection_domain" => children.push(child),
                _ => return Err(self.unknown_element(child)),
            }
        }
        pd.program_image = program_image.ok_or_else(|| {
            self.error(
                node,
                format!(
                    "missing 'program_image' element on protection_domain '{}'",
                    pd.name
                ),
            )
        })?;

        let index = out.len();
        out.push(pd);
        for child in children {
            self.protection_domain(child, Some(index), out)?;
        }
        Ok(())
    }

    fn map(&self, node: Node<'a, 'input>) -> Result<Map, Error> {
        self.check_attributes(
            node,
            &[
                "mr",
                "vaddr",
                "perms",
                "cached",
                "setvar_vaddr",
                "setvar_size",
            ],
        )?;
        let mr = self.required(node, "mr")?.to_owned();
        let vaddr = self.required_number(node, "vaddr")?;
        let perms = match node.attribute("perms") {
            None => Perms::RW,
            Some(text) => {
                let mut perms = Perms::default();
                for c in text.chars() {
                    match c {
                        'r' => perms.r = true,
                        'w' => perms.w = true,
                        'x' => perms.x = true,
                        _ => {
                            return Err(self.error(
                                node,
                                "perms must only be a combination of 'r', 'w', and 'x'",
                            ))
                        }
                    }
                }
                perms
            }
        };
        if perms
            == (Perms {
                r: false,
                w: true,
                x: false,
            })
        {
            return Err(self.error(
                node,
                "perms must not be 'w', write-only mappings are not allowed",
            ));
        }
        let (line, column) = self.position(node);
        Ok(Map {
            mr,
            vaddr,
            perms,
            cached: self.boolean(node, "cached", true)?,
            setvar_vaddr: self.symbol(node, "setvar_vaddr"),
            setvar_size: self.symbol(node, "setvar_size"),
            line,
            column,
        })
    }

    fn irq(&self, node: Node<'a, 'input>) -> Result<Irq, Error> {
        self.check_attributes(node, &["irq", "id", "setvar_id", "trigger"])?;
        let id = self.id(node, "id")?;
        let irq = self.required_number(node, "irq")?;
        let trigger = match node.attribute("trigger") {
            None => None,
            Some("level") => Some(Trigger::Level),
            Some("edge") => Some(Trigger::Edge),
            Some(_) => return Err(self.error(node, "trigger must be either 'level' or 'edge'")),
        };
        let (line, column) = self.position(node);
        Ok(Irq {
            id,
            irq,
            trigger,
            setvar_id: self.symbol(node, "setvar_id"),
            line,
            column,
        })
    }

    fn channel(&self, node: Node<'a, 'input>) -> Result<ChannelDecl, Error> {
        self.check_attributes(node, &[])?;
        let mut ends = Vec::new();
        for child in self.element_children(node)? {
            if child.tag_name().name() != "end" {
                return Err(self.unknown_element(child));
            }
            ends.push(self.end(child)?);
        }
        let Ok([a, b]) = <[End; 2]>::try_from(ends) else {
            return Err(self.error(node, "exactly two end elements must be specified"));
        };
        if a.pp && b.pp {
            return Err(self.error(node, "cannot ppc bidirectionally"));
        }
        let (line, column) = self.position(node);
        Ok(ChannelDecl {
            ends: [a, b],
            line,
            column,
        })
    }

    fn end(&self, node: Node<'a, 'input>) -> Result<End, Error> {
        self.check_attributes(node, &["pd", "id", "pp", "notify", "setvar_id"])?;
        let (line, column) = self.position(node);
        Ok(End {
            pd: self.required(node, "pd")?.to_owned(),
            id: self.id(node, "id")?,
            pp: self.boolean(node, "pp", false)?,
            notify: self.boolean(node, "notify", true)?,
            setvar_id: self.symbol(node, "setvar_id"),
            line,
            column,
        })
    }
}
