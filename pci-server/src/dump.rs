//! Reading saved configuration dumps: `lspci -x/-xxx/-xxxx` hex lines (`00: de 10 04 22 ...`),
//! with each function introduced either by a `# device: bb:dd.f Description` comment (the
//! reference dumps' format) or by lspci's own `[dddd:]bb:dd.f Description` header line. When the
//! text also holds lspci `-v` decode lines (`\tRegion 1: Memory at ... [size=256M]`,
//! `\tExpansion ROM at ... [size=512K]`), their sizes are kept: a dump alone has only the
//! current BAR values, not the sizes. Other lines (`# source:`, capability decode) are ignored.

use crate::emul::{BarSizes, CFG_SIZE};
use core::fmt;
use pci_api::Bdf;

/// One function read from a dump.
#[derive(Clone, Debug)]
pub struct DumpFunction<'a> {
    /// Its address, if the dump named one.
    pub bdf: Option<Bdf>,
    /// lspci's description (after the address).
    pub description: &'a str,
    /// Configuration bytes; `len` of them are valid.
    pub bytes: [u8; CFG_SIZE],
    /// How many bytes the dump held (64, 256 or 4096 for lspci's three levels).
    pub len: usize,
    /// BAR sizes from `-v` decode lines, where present.
    pub sizes: BarSizes,
}

impl DumpFunction<'_> {
    /// The dumped bytes.
    pub fn data(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&self.bytes)
    }
}

/// A line that could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpError {
    /// A hex line with a bad offset or byte, or bytes past 4 KiB (1-based line number).
    BadHexLine {
        /// Line number.
        line: usize,
    },
    /// A function header with no hex lines under it.
    NoBytes {
        /// Line number of the header.
        line: usize,
    },
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHexLine { line } => write!(f, "line {line}: bad hex dump line"),
            Self::NoBytes { line } => {
                write!(f, "line {line}: device without hex dump (use lspci -xxx)")
            }
        }
    }
}

/// The functions of a dump, in order.
pub fn parse(text: &str) -> Dumps<'_> {
    Dumps {
        lines: text.lines().enumerate().peekable(),
    }
}

/// Iterator over a dump's functions (see [`parse`]).
#[derive(Debug)]
pub struct Dumps<'a> {
    lines: core::iter::Peekable<core::iter::Enumerate<core::str::Lines<'a>>>,
}

/// A function header: `[dddd:]bb:dd.f rest` → address and rest.
fn header(line: &str) -> Option<(Bdf, &str)> {
    let line = line.strip_prefix("# device: ").unwrap_or(line);
    let (addr, rest) = line.split_once(' ')?;
    let addr = match addr.len() {
        12 if addr.as_bytes().get(4) == Some(&b':') => addr.get(5..)?,
        7 => addr,
        _ => return None,
    };
    let (bus, devfn) = addr.split_once(':')?;
    let (dev, func) = devfn.split_once('.')?;
    let hex = |s: &str, n: usize| {
        (s.len() == n)
            .then(|| u8::from_str_radix(s, 16).ok())
            .flatten()
    };
    let bdf = Bdf::new(hex(bus, 2)?, hex(dev, 2)?, hex(func, 1)?)?;
    Some((bdf, rest))
}

/// A hex line: offset and bytes. `None` if the line is not one; `Some(Err)` if it is but is bad.
fn hex_line(line: &str) -> Option<Result<(usize, heapless::Vec<u8, 16>), ()>> {
    let (off, rest) = line.split_once(": ")?;
    if !(2..=3).contains(&off.len()) || !off.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let parse = || {
        let off = usize::from_str_radix(off, 16).map_err(|_| ())?;
        let mut bytes = heapless::Vec::new();
        for tok in rest.split_ascii_whitespace() {
            let b = (tok.len() == 2)
                .then(|| u8::from_str_radix(tok, 16).ok())
                .flatten()
                .ok_or(())?;
            bytes.push(b).map_err(|_| ())?;
        }
        Ok((off, bytes))
    };
    Some(parse())
}

/// `[size=256M]` → bytes.
fn size_hint(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once("[size=")?;
    let (num, _) = rest.split_once(']')?;
    let (digits, unit) = match num.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => num.split_at(i),
        None => (num, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

impl<'a> Iterator for Dumps<'a> {
    type Item = Result<DumpFunction<'a>, DumpError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut f = DumpFunction {
            bdf: None,
            description: "",
            bytes: [0xff; CFG_SIZE],
            len: 0,
            sizes: BarSizes::default(),
        };
        let mut started: Option<usize> = None;
        while let Some(&(n, line)) = self.lines.peek() {
            if !line.starts_with(['\t', ' ', '#']) || line.starts_with("# device: ") {
                if let Some((bdf, rest)) = header(line) {
                    if started.is_some() {
                        break;
                    }
                    started = Some(n);
                    (f.bdf, f.description) = (Some(bdf), rest);
                    self.lines.next();
                    continue;
                }
            }
            self.lines.next();
            if let Some(parsed) = hex_line(line) {
                let Ok((off, bytes)) = parsed else {
                    return Some(Err(DumpError::BadHexLine { line: n + 1 }));
                };
                let Some(dst) = f.bytes.get_mut(off..off + bytes.len()) else {
                    return Some(Err(DumpError::BadHexLine { line: n + 1 }));
                };
                dst.copy_from_slice(&bytes);
                f.len = f.len.max(off + bytes.len());
                started.get_or_insert(n);
            } else if let Some(rest) = line.strip_prefix('\t').filter(|r| !r.starts_with('\t')) {
                if let Some(region) = rest.strip_prefix("Region ") {
                    let index = region
                        .split(':')
                        .next()
                        .and_then(|i| i.parse::<usize>().ok());
                    if let Some(slot) = index.and_then(|i| f.sizes.bars.get_mut(i)) {
                        *slot = size_hint(region);
                    }
                } else if rest.starts_with("Expansion ROM") && !rest.contains("[virtual]") {
                    f.sizes.rom = size_hint(rest);
                }
            }
        }
        let line = started?;
        if f.len == 0 {
            return Some(Err(DumpError::NoBytes { line: line + 1 }));
        }
        Some(Ok(f))
    }
}
