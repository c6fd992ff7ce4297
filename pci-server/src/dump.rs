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

/// A size from an `lspci -v` decode line, and which register it is about.
#[derive(Clone, Copy, Debug)]
struct Hint {
    /// BAR index (`Region N:`; absent in `lspci -v`), or `None` with `rom` false.
    index: Option<usize>,
    /// The expansion ROM.
    rom: bool,
    /// An I/O BAR.
    io: bool,
    /// The address lspci printed.
    addr: u64,
    /// The size lspci printed.
    size: u64,
}

impl Hint {
    /// `Region 1: Memory at d0000000 (64-bit, prefetchable) [size=256M]`,
    /// `I/O ports at 3000 [size=128]`, `Expansion ROM at fc000000 [disabled] [size=512K]`.
    fn parse(line: &str) -> Option<Self> {
        let size = size_hint(line)?;
        let (index, rest) = match line
            .strip_prefix("Region ")
            .and_then(|r| r.split_once(": "))
        {
            Some((i, rest)) => (Some(i.parse::<usize>().ok()?), rest),
            None => (None, line),
        };
        let (rom, io, at) = if let Some(r) = rest.strip_prefix("Memory at ") {
            (false, false, r)
        } else if let Some(r) = rest.strip_prefix("I/O ports at ") {
            (false, true, r)
        } else {
            (
                true,
                false,
                rest.strip_prefix("Expansion ROM at ")
                    .filter(|_| index.is_none())?,
            )
        };
        let addr = u64::from_str_radix(at.split_whitespace().next()?, 16).ok()?;
        Some(Self {
            index,
            rom,
            io,
            addr,
            size,
        })
    }

    /// Record the size if the register holds the address lspci printed (otherwise lspci is
    /// showing what the kernel tracks: a shadowed or `[virtual]` resource, or one it moved) and
    /// the size is one the register could have.
    fn apply(self, f: &mut DumpFunction<'_>) {
        let aligned = self.size.is_power_of_two() && self.addr & (self.size - 1) == 0;
        if self.rom {
            let reg = if f.bytes.get(0x0e).is_some_and(|h| h & 0x7f == 1) {
                0x38
            } else {
                0x30
            };
            let holds = dword(&f.bytes, reg).is_some_and(|r| u64::from(r & !0x7ff) == self.addr);
            if holds && aligned && self.size >= 2048 {
                f.sizes.rom = Some(self.size);
            }
            return;
        }
        let index = self
            .index
            .or_else(|| (0..6).find(|&i| bar_address(&f.bytes, i) == Some((self.io, self.addr))));
        let holds = index.is_some_and(|i| bar_address(&f.bytes, i) == Some((self.io, self.addr)));
        let big_enough = self.size >= if self.io { 4 } else { 16 };
        if let (true, true, Some(slot)) = (
            holds && aligned,
            big_enough,
            index.and_then(|i| f.sizes.bars.get_mut(i)),
        ) {
            *slot = Some(self.size);
        }
    }
}

fn dword(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
}

/// The kind and address BAR `i` holds in `bytes` (a 64-bit BAR at its low index).
fn bar_address(bytes: &[u8], i: usize) -> Option<(bool, u64)> {
    let lo = dword(bytes, 0x10 + 4 * i)?;
    if lo & 1 != 0 {
        return Some((true, u64::from(lo & !3)));
    }
    let hi = if lo >> 1 & 3 == 2 {
        dword(bytes, 0x14 + 4 * i)?
    } else {
        0
    };
    Some((false, u64::from(hi) << 32 | u64::from(lo & !0xf)))
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
        let mut hints: heapless::Vec<Hint, 8> = heapless::Vec::new();
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
                if let Some(hint) = Hint::parse(rest) {
                    // More lines than a function has BARs and ROM cannot all be its own: ignored.
                    let _ = hints.push(hint);
                }
            }
        }
        let line = started?;
        if f.len == 0 {
            return Some(Err(DumpError::NoBytes { line: line + 1 }));
        }
        for hint in hints {
            hint.apply(&mut f);
        }
        Some(Ok(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
/usr/bin/lspci -nnDvvvxxx
0000:00:01.0 PCI bridge [0604]: Red Hat, Inc. QEMU PCIe Root port [1b36:000c]
\tRegion 0: Memory at fe800000 (32-bit, non-prefetchable) [size=4K]
00: 36 1b 0c 00 07 01 10 00 00 00 04 06 00 00 81 00
10: 00 00 80 fe 00 00 00 00 00 01 01 00 f1 01 00 00

01:00.0 VGA compatible controller: NVIDIA Corporation GP104GLM (rev a1)
\tMemory at b4000000 (32-bit, non-prefetchable) [size=16M]
\tMemory at 70000000 (64-bit, prefetchable) [size=256M]
\tI/O ports at 3000 [size=128]
\tRegion 9: Memory at 00000000 (32-bit) [size=4K]
\tExpansion ROM at 000c0000 [virtual] [disabled] [size=128K]
\t\tRegion 2: Memory at 00000000 (64-bit, prefetchable) [size=4M]
00: de 10 bb 1b 07 00 10 00 a1 00 00 03 10 00 80 00
10: 00 00 00 b4 0c 00 00 70 00 00 00 00 00 00 00 00
20: 00 00 00 00 01 30 00 00 00 00 00 00 28 10 31 08
";

    #[test]
    fn reads_headers_hex_and_size_lines() {
        let all: heapless::Vec<_, 4> = parse(TEXT).collect();
        assert_eq!(all.len(), 2);
        let bridge = all[0].as_ref().unwrap();
        assert_eq!(bridge.bdf, Bdf::new(0, 1, 0));
        assert!(bridge.description.starts_with("PCI bridge [0604]"));
        assert_eq!((bridge.len, bridge.data()[0x1a]), (32, 0x01));
        assert_eq!(bridge.sizes.bars[0], Some(4096));
        let gpu = all[1].as_ref().unwrap();
        assert_eq!(gpu.bdf, Bdf::new(1, 0, 0));
        // `lspci -v` lines without an index land on the BAR holding their address; the SR-IOV
        // line (two tabs), the impossible index and the shadowed ROM are ignored.
        assert_eq!(
            gpu.sizes.bars,
            [Some(16 << 20), Some(256 << 20), None, None, None, Some(128)]
        );
        assert_eq!(gpu.sizes.rom, None);
        assert_eq!(gpu.len, 48);
    }

    #[test]
    fn bare_dumps_and_bad_lines() {
        let bare = parse("00: 86 80 29 c0 00 00 00 00 00 00 00 06 00 00 00 00\n")
            .next()
            .unwrap()
            .unwrap();
        assert_eq!((bare.bdf, bare.len, bare.data()[3]), (None, 16, 0xc0));
        let bad = parse("# device: 00:00.0 Host bridge\n00: 86 80 zz\n")
            .next()
            .unwrap();
        assert_eq!(bad.unwrap_err(), DumpError::BadHexLine { line: 2 });
        let past = parse("ff0: 00 00\nff8: 00 00 00 00 00 00 00 00 00 00\n")
            .next()
            .unwrap();
        assert_eq!(past.unwrap_err(), DumpError::BadHexLine { line: 2 });
        let empty =
            parse("00:02.0 VGA compatible controller: Device 1234:1111\n\tFlags: fast devsel\n")
                .next()
                .unwrap();
        assert_eq!(empty.unwrap_err(), DumpError::NoBytes { line: 1 });
        assert!(parse("").next().is_none());
        assert_eq!(size_hint("[size=2G]"), Some(2 << 30));
        assert_eq!(size_hint("[size=3Q]"), None);
    }
}
