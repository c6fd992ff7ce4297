//! The `lspci`-style table: what the bring-up log prints after enumeration and what
//! `cargo xtask lspci FILE` prints for a saved dump. One header line per function (address, ids,
//! class, name), then indented lines: bridge bus numbers and windows, BARs with addresses and
//! sizes, the ROM, capability chains (`id name@offset` in list order), MSI-X placement, and
//! anything wrong (malformed capability lists, refusal).

use crate::assign::Windows;
use crate::bar::Size;
use crate::caps::{self, Cap, Walked};
use crate::ident;
use crate::probe::{Function, Range, State};
use core::fmt::{self, Write};

/// Write the table for `functions`. `windows` adds each placed BAR's offset in its window.
///
/// # Errors
/// Whatever `out` returns.
pub fn write_table<W: Write + ?Sized>(
    out: &mut W,
    functions: &[Function],
    windows: &Windows,
) -> fmt::Result {
    for f in functions {
        write_function(out, f, windows)?;
    }
    Ok(())
}

fn write_function<W: Write + ?Sized>(out: &mut W, f: &Function, windows: &Windows) -> fmt::Result {
    write!(
        out,
        "{}  {:04x}:{:04x}  {:04x}  {}",
        f.bdf,
        f.vendor,
        f.device,
        f.class >> 8,
        ident::class_name(f.class)
    )?;
    if let Some(chip) = ident::nvidia_chip(f.vendor, f.device, f.class) {
        write!(out, "  [NVIDIA {} {}", chip.name, chip.arch.name())?;
        match chip.gsp {
            Some(g) => write!(out, ", gsp {}]", g.name())?,
            None => write!(out, ", no gsp]")?,
        }
    }
    match f.state {
        State::Ok => {}
        State::BarsUnreadable(e) => write!(out, "  (BARs unreadable: {e})")?,
        State::NoBusNumber => write!(out, "  (not scanned: no bus numbers left)")?,
        State::TooDeep => write!(out, "  (not scanned: too deep)")?,
        State::Refused => write!(out, "  (refused: resources do not fit)")?,
    }
    writeln!(out)?;
    if let Some(b) = &f.bridge {
        write!(
            out,
            "         bus {:02x}->{:02x}..{:02x}",
            b.primary, b.secondary, b.subordinate
        )?;
        window(out, "io", b.io)?;
        window(out, "mem", b.mem)?;
        window(out, "pref", b.pref)?;
        writeln!(out)?;
    }
    for bar in f.bars() {
        write!(
            out,
            "         BAR{} {:<6} {:#012x}  {}",
            bar.index,
            bar.kind_name(),
            bar.addr,
            Size(bar.size)
        )?;
        if let Some((_, off)) = windows.locate(bar) {
            write!(out, "  (window +{off:#x})")?;
        }
        writeln!(out)?;
    }
    if let Some(rom) = f.rom {
        let on = if rom.enabled { "" } else { "  disabled" };
        writeln!(
            out,
            "         ROM  {:<6} {:#012x}  {}{on}",
            "",
            rom.addr,
            Size(rom.size)
        )?;
    }
    chain(out, "caps", &f.caps, f.caps_walk, caps::legacy_name)?;
    chain(out, "ext ", &f.ext_caps, f.ext_walk, caps::ext_name)?;
    if let Some(m) = f.msix {
        writeln!(
            out,
            "         MSI-X {} vectors, table BAR{}+{:#x}, PBA BAR{}+{:#x}{}",
            m.entries,
            m.table.bir,
            m.table.offset,
            m.pba.bir,
            m.pba.offset,
            if f.msix_fits {
                ""
            } else {
                "  (outside its BAR!)"
            }
        )?;
    }
    Ok(())
}

fn window<W: Write + ?Sized>(out: &mut W, name: &str, r: Option<Range>) -> fmt::Result {
    match r {
        Some(r) => write!(out, "  {name} [{:#x}-{:#x}]", r.base, r.limit),
        None => write!(out, "  {name} closed"),
    }
}

fn chain<W: Write + ?Sized>(
    out: &mut W,
    label: &str,
    list: &[Cap],
    walked: Walked,
    name: fn(u16) -> &'static str,
) -> fmt::Result {
    if list.is_empty() && walked == Walked::default() {
        return Ok(());
    }
    write!(out, "         {label}")?;
    for c in list {
        write!(out, " {:02x} {}@{:x}", c.id, name(c.id), c.offset)?;
    }
    if walked.nulls != 0 {
        write!(out, "  ({} null entries skipped)", walked.nulls)?;
    }
    if let Some(e) = walked.error {
        write!(out, "  (malformed: {e}; rest skipped)")?;
    }
    writeln!(out)
}

/// A [`fmt::Write`] that sends each completed line to `log::info!` with the PD's `pci: ` prefix.
/// Lines longer than its buffer are cut.
#[derive(Debug, Default)]
pub struct LineLog {
    line: heapless::String<192>,
}

impl LineLog {
    /// An empty line buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Emit what is buffered, if anything.
    pub fn flush(&mut self) {
        if !self.line.is_empty() {
            log::info!("pci: {}", self.line);
            self.line.clear();
        }
    }
}

impl Write for LineLog {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c == '\n' {
                self.flush();
            } else {
                // A full buffer drops the rest of the line rather than failing the table.
                let _ = self.line.push(c);
            }
        }
        Ok(())
    }
}

/// Log the table, one `pci: ` line per row.
pub fn log_table(functions: &[Function], windows: &Windows) {
    let mut w = LineLog::new();
    let _ = write_table(&mut w, functions, windows);
    w.flush();
}
