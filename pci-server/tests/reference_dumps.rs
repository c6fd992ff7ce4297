//! Every real dump in `shared/reference/pci/` decodes as the dump implies: ids and class as
//! SUMMARY.txt lists them, the legacy and extended capability chains (ids and offsets, in order)
//! as SUMMARY.txt lists them, and, where the dump's `lspci -vvv` section exists in
//! `lspci-verbose/`, every BAR's kind, address and size, the ROM size, bridge bus numbers and
//! windows, and capability offsets as lspci decoded them. Sizing restores every register: after
//! the probe the function's bytes equal the dump.
//!
//! BAR sizes are checked only where an `lspci -vvv` section gives them (a dump holds current
//! values, not sizes); the expected values are parsed from those sections here, independently of
//! the server's own dump reader. Nothing from the reference set is copied into the repository.
mod common;

use pci_api::{BarKind, Bdf};
use pci_server::dump;
use pci_server::emul::{BarSizes, EmuFunction, Slot, Topology};
use pci_server::ident::{self, Arch, GspFamily};
use pci_server::probe::{self, Function, Range};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/pci");

fn reference() -> PathBuf {
    let dir = PathBuf::from(REFERENCE);
    assert!(
        dir.join("SUMMARY.txt").is_file(),
        "the reference dumps are missing: expected {} (the shared reference set beside the workspace)",
        dir.display()
    );
    dir
}

/// One SUMMARY.txt line.
#[derive(Debug)]
struct Summary {
    key: String,
    vendor: u16,
    device: u16,
    class: u32,
    header: u8,
    bytes: usize,
    caps: Vec<(u16, u16)>,
    ext: Vec<(u16, u16)>,
}

fn chain(s: &str) -> Vec<(u16, u16)> {
    s.split(',')
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (id, off) = e.split_once('@').unwrap();
            (
                u16::from_str_radix(id, 16).unwrap(),
                u16::from_str_radix(off, 16).unwrap(),
            )
        })
        .collect()
}

fn summaries(dir: &Path) -> Vec<Summary> {
    std::fs::read_to_string(dir.join("SUMMARY.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let field = |name: &str| {
                f.iter()
                    .find_map(|t| t.strip_prefix(name))
                    .unwrap_or_else(|| panic!("{name} in {l}"))
            };
            let (v, d) = f[1].split_once(':').unwrap();
            Summary {
                key: f[0].to_string(),
                vendor: u16::from_str_radix(v, 16).unwrap(),
                device: u16::from_str_radix(d, 16).unwrap(),
                class: u32::from_str_radix(field("cls="), 16).unwrap(),
                header: field("hdr=").parse().unwrap(),
                bytes: f[4].trim_end_matches('B').parse().unwrap(),
                caps: chain(field("caps=")),
                ext: chain(field("ext=")),
            }
        })
        .collect()
}

/// Every dump file, relative to the reference directory.
fn dumps(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().unwrap() != "lspci-verbose" {
                    stack.push(p);
                }
            } else if p.to_string_lossy().ends_with("B.txt") {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// What an lspci -vvv section says about one function.
#[derive(Debug, Default)]
struct Verbose {
    /// index -> (kind, prefetchable, address, size); pciutils' own test captures (lspci -F)
    /// have no sizes.
    bars: BTreeMap<u8, (BarKind, bool, u64, Option<u64>)>,
    /// `None`: no ROM line; `Some(None)`: a line without a size, or a `[virtual]` (shadowed) ROM.
    rom: Option<Option<u64>>,
    buses: Option<(u8, u8, u8)>,
    io: Option<Option<(u64, u64)>>,
    mem: Option<Option<(u64, u64)>>,
    pref: Option<Option<(u64, u64)>>,
    legacy_offsets: Vec<u16>,
    ext_offsets: Vec<u16>,
}

fn size_of(line: &str) -> Option<u64> {
    let s = line.split("[size=").nth(1)?.split(']').next()?;
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let mult = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => panic!("unit {unit}"),
    };
    Some(num.parse::<u64>().ok()? * mult)
}

fn window(line: &str) -> Option<(u64, u64)> {
    let rest = line.split(": ").nth(1)?;
    if rest.contains("[disabled]") || rest.contains("[empty]") || rest.starts_with("None") {
        return None;
    }
    let range = rest.split_whitespace().next()?;
    let (a, b) = range.split_once('-')?;
    Some((
        u64::from_str_radix(a, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
    ))
}

/// The index of the BAR holding `addr` in a dump (for `lspci -v` lines that give no index).
fn bar_index(bytes: &[u8], io: bool, addr: u64) -> u8 {
    let dword = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    (0..6u8)
        .find(|&i| {
            let lo = dword(0x10 + 4 * usize::from(i));
            let hi = if lo & 7 == 4 {
                u64::from(dword(0x14 + 4 * usize::from(i)))
            } else {
                0
            };
            let (is_io, a) = if lo & 1 == 1 {
                (true, u64::from(lo & !3))
            } else {
                (false, hi << 32 | u64::from(lo & !0xf))
            };
            is_io == io && a == addr
        })
        .unwrap_or_else(|| panic!("no BAR at {addr:#x}"))
}

/// The lspci -vvv section for `device_line` in the verbose file matching `source`.
fn verbose(dir: &Path, source: &str, device_line: &str, bytes: &[u8]) -> Option<Verbose> {
    let name =
        if let Some(rest) = source.strip_prefix("# source: github.com/pciutils/pciutils tests/") {
            format!("pciutils_{}.txt", rest.split_whitespace().next()?)
        } else {
            let repo = source
                .strip_prefix("# source: github.com/")?
                .split_whitespace()
                .next()?;
            format!("{}.lspci_section.txt", repo.replace('/', "+"))
        };
    let text = std::fs::read_to_string(dir.join("lspci-verbose").join(name)).ok()?;
    let mut lines = text.lines().skip_while(|l| *l != device_line);
    lines.next()?;
    let mut v = Verbose::default();
    for l in lines.take_while(|l| !l.trim().is_empty()) {
        let Some(t) = l.strip_prefix('\t').filter(|t| !t.starts_with('\t')) else {
            continue;
        };
        let region = t.strip_prefix("Region ").or_else(|| {
            (t.starts_with("Memory at ") || t.starts_with("I/O ports at ")).then_some(t)
        });
        if let Some(r) = region {
            // `lspci -vv` names the BAR ("Region 1: Memory at ..."); `lspci -v` does not.
            let index: u8 = match r.split_once(": ") {
                Some((i, _)) if i.len() == 1 => i.parse().unwrap(),
                _ => {
                    let at = r
                        .split_whitespace()
                        .skip_while(|w| *w != "at")
                        .nth(1)
                        .unwrap();
                    bar_index(
                        bytes,
                        r.starts_with("I/O"),
                        u64::from_str_radix(at, 16).unwrap(),
                    )
                }
            };
            let size = size_of(r);
            let word = |w: &str| {
                r.split_whitespace()
                    .skip_while(|x| *x != w)
                    .nth(1)
                    .unwrap()
                    .to_string()
            };
            let bar = if r.contains("I/O ports at") {
                (
                    BarKind::Io,
                    false,
                    u64::from_str_radix(&word("at"), 16).unwrap(),
                    size,
                )
            } else {
                let kind = if r.contains("(64-bit") {
                    BarKind::Mem64
                } else {
                    BarKind::Mem32
                };
                (
                    kind,
                    r.contains(", prefetchable)"),
                    u64::from_str_radix(&word("at"), 16).unwrap(),
                    size,
                )
            };
            // Only registers that hold what lspci printed ([virtual] and shadowed resources are
            // the kernel's bookkeeping, not the device's).
            let reg = u32::from_le_bytes(
                bytes[0x10 + 4 * usize::from(index)..][..4]
                    .try_into()
                    .unwrap(),
            );
            let hi = if reg & 7 == 4 {
                u64::from(u32::from_le_bytes(
                    bytes[0x14 + 4 * usize::from(index)..][..4]
                        .try_into()
                        .unwrap(),
                ))
            } else {
                0
            };
            let held = if reg & 1 == 1 {
                u64::from(reg & !3)
            } else {
                hi << 32 | u64::from(reg & !0xf)
            };
            if held == bar.2 && held != 0 {
                v.bars.insert(index, bar);
            }
        } else if let Some(r) = t.strip_prefix("Expansion ROM at ") {
            // A shadowed ROM ("[virtual]", or an address the register does not hold, like the
            // legacy VGA 0xc0000) has no size the register can show.
            let at = u64::from_str_radix(r.split_whitespace().next().unwrap(), 16).unwrap();
            let reg = if bytes[0x0e] & 0x7f == 1 { 0x38 } else { 0x30 };
            let reg =
                u64::from(u32::from_le_bytes(bytes[reg..reg + 4].try_into().unwrap()) & !0x7ff);
            v.rom = Some(size_of(t).filter(|_| !t.contains("[virtual]") && at == reg));
        } else if let Some(b) = t.strip_prefix("Bus: ") {
            let num = |k: &str| {
                u8::from_str_radix(b.split(k).nth(1).unwrap().get(..2).unwrap(), 16).unwrap()
            };
            v.buses = Some((num("primary="), num("secondary="), num("subordinate=")));
        } else if t.starts_with("I/O behind bridge") {
            v.io = Some(window(t));
        } else if t.starts_with("Memory behind bridge") {
            v.mem = Some(window(t));
        } else if t.starts_with("Prefetchable memory behind bridge") {
            v.pref = Some(window(t));
        } else if let Some(c) = t.strip_prefix("Capabilities: [") {
            let off = c.split([']', ' ']).next().unwrap();
            let off = u16::from_str_radix(off, 16).unwrap();
            if off >= 0x100 {
                v.ext_offsets.push(off);
            } else {
                v.legacy_offsets.push(off);
            }
        }
    }
    Some(v)
}

/// Replay one dump on the emulator at its address and probe it as the server would.
fn decode(bytes: &[u8], sizes: &BarSizes, at: Bdf) -> (Function, Vec<u8>) {
    let f =
        EmuFunction::from_dump(bytes, sizes).unwrap_or_else(|e| panic!("{at}: {e} with {sizes:?}"));
    let mut t: Box<Topology<1>> = Box::default();
    t.add(Slot::At(at), f).unwrap();
    let f = probe::probe(t.as_mut(), at)
        .unwrap()
        .expect("function answers");
    (f, t.function(0).unwrap().bytes().to_vec())
}

fn range(r: Option<Range>) -> Option<(u64, u64)> {
    r.map(|r| (r.base, r.limit))
}

#[test]
fn every_reference_dump_decodes_as_it_implies() {
    let dir = reference();
    let summaries = summaries(&dir);
    let files = dumps(&dir);
    assert_eq!(files.len(), summaries.len(), "one SUMMARY line per dump");
    let mut checked_bars = 0;
    let mut with_verbose = 0;
    let mut bridges_checked = 0;
    for rel in &files {
        let matching: Vec<&Summary> = summaries
            .iter()
            .filter(|s| rel.starts_with(&s.key))
            .collect();
        assert_eq!(matching.len(), 1, "{rel}: SUMMARY lines {matching:?}");
        let s = matching[0];
        let text = std::fs::read_to_string(dir.join(rel)).unwrap();
        let mut head = text.lines();
        let (source, device_line, bytes_line) = (
            head.next().unwrap(),
            head.next().unwrap(),
            head.next().unwrap(),
        );
        let device_line = device_line.strip_prefix("# device: ").unwrap();
        let expect_len: usize = bytes_line
            .strip_prefix("# bytes: ")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();

        let parsed: Vec<_> = dump::parse(&text).collect();
        assert_eq!(parsed.len(), 1, "{rel}");
        let d = parsed.into_iter().next().unwrap().unwrap();
        assert_eq!((d.len, s.bytes), (expect_len, expect_len), "{rel}");
        let at = d.bdf.unwrap();
        assert!(device_line.contains(&format!("{at} ")), "{rel}: {at}");

        let v = verbose(&dir, source, device_line, d.data());
        let mut sizes = BarSizes::default();
        if let Some(v) = &v {
            with_verbose += 1;
            for (i, (_, _, _, size)) in &v.bars {
                sizes.bars[usize::from(*i)] = *size;
            }
            sizes.rom = v.rom.flatten();
        }
        let (f, after) = decode(d.data(), &sizes, at);
        assert_eq!(after, d.data(), "{rel}: probing left registers changed");

        // Identity and class, as SUMMARY says and lspci names it.
        assert_eq!(
            (f.vendor, f.device, f.class >> 8, f.header()),
            (s.vendor, s.device, s.class, s.header),
            "{rel}"
        );
        let description = device_line.split_once(' ').unwrap().1;
        let lspci_class = description.split([':', '[']).next().unwrap().trim();
        assert_eq!(ident::class_name(f.class), lspci_class, "{rel}");

        // Capability chains in order, ids and offsets.
        let ids =
            |l: &[pci_server::caps::Cap]| l.iter().map(|c| (c.id, c.offset)).collect::<Vec<_>>();
        assert_eq!(ids(&f.caps), s.caps, "{rel}: legacy chain");
        assert_eq!(ids(&f.ext_caps), s.ext, "{rel}: extended chain");
        assert!(
            f.caps_walk.error.is_none() && f.ext_walk.error.is_none(),
            "{rel}: {:?} {:?}",
            f.caps_walk,
            f.ext_walk
        );
        assert_eq!(
            f.cfg_size == 4096,
            !s.ext.is_empty() || (expect_len == 4096 && f.pcie.is_some()),
            "{rel}"
        );

        let Some(v) = v else { continue };
        // lspci's own capability offsets, legacy and extended, in the same order.
        assert_eq!(
            f.caps.iter().map(|c| c.offset).collect::<Vec<_>>(),
            v.legacy_offsets,
            "{rel}"
        );
        if expect_len == 4096 {
            assert_eq!(
                f.ext_caps.iter().map(|c| c.offset).collect::<Vec<_>>(),
                v.ext_offsets,
                "{rel}"
            );
        }
        // BARs: kind, prefetchability, address and size as lspci decoded them.
        let got: BTreeMap<u8, (BarKind, bool, u64, Option<u64>)> = f
            .bars()
            .map(|b| {
                (
                    b.index,
                    (
                        b.kind,
                        b.prefetchable,
                        b.addr,
                        v.bars.get(&b.index).and_then(|e| e.3).map(|_| b.size),
                    ),
                )
            })
            .collect();
        assert_eq!(got, v.bars, "{rel}: BARs");
        checked_bars += v.bars.values().filter(|e| e.3.is_some()).count();
        match v.rom {
            None => assert_eq!(f.rom, None, "{rel}: ROM"),
            Some(None) => {}
            Some(size) => assert_eq!(f.rom.map(|r| r.size), size, "{rel}: ROM"),
        }
        if let Some(b) = f.bridge {
            bridges_checked += 1;
            assert_eq!(
                Some((b.primary, b.secondary, b.subordinate)),
                v.buses,
                "{rel}"
            );
            for (name, ours, theirs) in [
                ("io", b.io, v.io),
                ("mem", b.mem, v.mem),
                ("pref", b.pref, v.pref),
            ] {
                if let Some(theirs) = theirs {
                    assert_eq!(range(ours), theirs, "{rel}: {name} window");
                }
            }
        }
        // MSI-X tables must lie inside their BARs on real hardware.
        if f.msix.is_some() {
            assert!(f.msix_fits, "{rel}: MSI-X outside its BAR");
        }
    }
    println!("{} dumps; {with_verbose} with lspci -vvv sections: {checked_bars} BARs and {bridges_checked} bridges checked against lspci", files.len());
    assert!(with_verbose >= 60 && checked_bars >= 120 && bridges_checked >= 15);
}

#[test]
fn nvidia_device_ids_map_to_chip_architecture_and_gsp_family() {
    let gpu = |id| ident::nvidia_chip(0x10de, id, 0x03_00_00).map(|c| (c.name, c.arch, c.gsp));
    use Arch::*;
    use GspFamily::*;
    assert_eq!(gpu(0x1e07), Some(("TU102", Turing, Some(Tu10x))));
    assert_eq!(gpu(0x1eb8), Some(("TU104", Turing, Some(Tu10x))));
    assert_eq!(gpu(0x2182), Some(("TU116", Turing, Some(Tu11x))));
    assert_eq!(gpu(0x1f82), Some(("TU117", Turing, Some(Tu11x))));
    assert_eq!(gpu(0x20b0), Some(("GA100", Ampere, Some(Tu10x))));
    for id in [0x2204, 0x2216, 0x2230] {
        assert_eq!(gpu(id), Some(("GA102", Ampere, Some(Ga10x))));
    }
    for id in [0x2684, 0x26b1] {
        assert_eq!(gpu(id), Some(("AD102", Ada, Some(Ad10x))));
    }
    assert_eq!(gpu(0x2803), Some(("AD106", Ada, Some(Ad10x))));
    for id in [0x2330, 0x2331, 0x2339, 0x2335] {
        assert_eq!(gpu(id), Some(("GH100", Hopper, Some(Ga10x))), "{id:#x}");
    }
    assert_eq!(gpu(0x1b06), Some(("GP102", Pascal, None)));
    assert_eq!(gpu(0x1000), None);
    // Not GPUs: other vendors, and the audio/USB functions of GPU boards.
    assert_eq!(ident::nvidia_chip(0x8086, 0x2204, 0x03_00_00), None);
    assert_eq!(ident::nvidia_chip(0x10de, 0x1aef, 0x04_03_00), None);
    // Chip blocks never overlap.
    for (i, a) in ident::CHIPS.iter().enumerate() {
        assert!(a.first <= a.last);
        for b in &ident::CHIPS[i + 1..] {
            assert!(
                a.last < b.first || b.last < a.first,
                "{} overlaps {}",
                a.name,
                b.name
            );
        }
    }
}

#[test]
fn chips_named_in_the_dumps_descriptions_match_the_table() {
    let dir = reference();
    let mut seen = 0;
    for rel in dumps(&dir) {
        let text = std::fs::read_to_string(dir.join(&rel)).unwrap();
        let d = dump::parse(&text).next().unwrap().unwrap();
        let (vendor, device) = (
            u16::from_le_bytes([d.bytes[0], d.bytes[1]]),
            u16::from_le_bytes([d.bytes[2], d.bytes[3]]),
        );
        let class = u32::from_le_bytes([d.bytes[9], d.bytes[10], d.bytes[11], 0]);
        let Some(chip) = ident::nvidia_chip(vendor, device, class) else {
            continue;
        };
        // "NVIDIA Corporation GA102GL [RTX A6000]": the chip is the token after the vendor.
        let Some(token) = d
            .description
            .split("NVIDIA Corporation ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        else {
            continue;
        };
        if token == "Device" {
            continue;
        }
        // One capture names 0x1e07 "GV102", an old pci.ids name; another capture of the same
        // id (qemu_vm_Serverless-Computing-Final) says TU102, as current pci.ids does.
        if token == "GV102" && device == 0x1e07 {
            continue;
        }
        assert!(
            token.starts_with(chip.name),
            "{rel}: {token} vs {}",
            chip.name
        );
        seen += 1;
    }
    assert!(seen >= 12, "{seen}");
}
