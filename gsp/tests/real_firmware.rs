//! NVIDIA's real GSP firmware, as Debian ships it, through the ELF/BinHdr parsers, the radix3
//! builder and the FB layout.
//!
//! `.ci/fetch-firmware` unpacks `firmware-nvidia-gsp` (535.x `gsp_tu10x.bin`/`gsp_ga10x.bin`) and
//! `firmware-nvidia-graphics` (per-chip 535.113.01 and 570.144 sets) into `target/firmware` (or
//! `$GSP_FIRMWARE_DIR`). Expected values are keyed to each image's own `.fwversion` and signature
//! family, never to which package version apt picked. Without the files these tests print a loud
//! `SKIPPED` line, and fail when `CI` is set.

mod firmware;

use firmware::Firmware;
use gsp::chip::Chipset;
use gsp::elf::{Booter, ImageError, RiscvBootloader};
use gsp::fb::{FbLayout, LayoutInput, Span, WprSysmem};
use gsp::radix3::{self, Contiguous, DmaRead, Geometry, PAGE_SIZE};
use std::collections::BTreeMap;

const MIB: u64 = 1 << 20;
const GIB24: u64 = 24 << 30;

/// `.fwimage` sizes of the images seen in Debian, by (`.fwversion`, family). The four in the
/// brief come from the reference; 535.113.01 and the 535.309.01 GA10x one were read with
/// `readelf -S` from the unpacked packages.
const FWIMAGE_SIZES: &[(&str, &str, usize)] = &[
    ("535.113.01", "tu10x", 0x16a_3350),
    ("535.113.01", "ga10x", 0x244_8000),
    ("535.261.03", "tu10x", 0x16c_1350),
    ("535.309.01", "tu10x", 0x16c_2350),
    ("535.309.01", "ga10x", 0x247_9000),
    ("570.144", "tu10x", 0x1b3_4ea0),
    ("570.144", "ga10x", 0x3c9_9000),
];

/// Signature sections each family carries in every version seen; 570.144's GA10x image adds
/// Blackwell ones.
const TU10X_SIGNATURES: &[&str] = &[
    ".fwsignature_tu10x",
    ".fwsignature_tu11x",
    ".fwsignature_ga100",
];
const GA10X_SIGNATURES: &[&str] = &[
    ".fwsignature_ga10x",
    ".fwsignature_ad10x",
    ".fwsignature_gh100",
    ".fwsignature_cc_gh100",
];
const GA10X_570_SIGNATURES: &[&str] = &[
    ".fwsignature_gb10x",
    ".fwsignature_cc_gb10x",
    ".fwsignature_gb20x",
];

#[test]
fn sections_sizes_and_signatures() {
    let Some(fw) = Firmware::load() else { return };
    let mut seen = Vec::new();
    for img in &fw.images {
        let parsed = img.parse();
        let names: Vec<&str> = parsed.section_names().collect();
        println!(
            "{} ({}, {}): {names:?}",
            img.path.display(),
            img.version,
            img.family
        );
        assert!(names.contains(&".fwimage") && names.contains(&".fwversion"));
        match FWIMAGE_SIZES
            .iter()
            .find(|(v, f, _)| *v == img.version && *f == img.family)
        {
            Some((_, _, size)) => {
                assert_eq!(parsed.fwimage().len(), *size, "{}", img.path.display());
                seen.push((img.version.clone(), img.family));
            }
            None => println!("  (no expected .fwimage size recorded for {})", img.version),
        }
        let (expected, own_chips, other_chip) = if img.family == "tu10x" {
            (
                TU10X_SIGNATURES,
                &[Chipset::TU102, Chipset::TU116, Chipset::GA100][..],
                Chipset::GA102,
            )
        } else {
            (
                GA10X_SIGNATURES,
                &[Chipset::GA102, Chipset::AD102, Chipset::GH100][..],
                Chipset::TU102,
            )
        };
        for sig in expected {
            assert!(names.contains(sig), "{} lacks {sig}", img.path.display());
        }
        if img.family == "ga10x" && img.version == "570.144" {
            for sig in GA10X_570_SIGNATURES {
                assert!(names.contains(sig), "{} lacks {sig}", img.path.display());
            }
        }
        for chip in own_chips {
            let sig = parsed.signature(*chip).unwrap();
            assert_eq!(sig.len(), 0x1000, "{} {}", img.path.display(), chip.name());
        }
        assert_eq!(parsed.signature(other_chip), Err(ImageError::NoSignature));
    }
    // CI fetches both packages: the 535.x pair and the 570.144 per-chip set must all be there.
    if std::env::var_os("CI").is_some() {
        for want in [("570.144", "tu10x"), ("570.144", "ga10x")] {
            assert!(
                seen.iter().any(|(v, f)| v == want.0 && *f == want.1),
                "CI: no {want:?} image under {}",
                fw.dir.display()
            );
        }
        for family in ["tu10x", "ga10x"] {
            assert!(
                seen.iter()
                    .any(|(v, f)| v.starts_with("535.") && *f == family),
                "CI: no 535.x {family} image under {}",
                fw.dir.display()
            );
        }
    }
}

/// System memory for the walk: table pages and staged image pages at their DMA addresses.
struct SysMem<'a> {
    pages: BTreeMap<u64, &'a [u8]>,
}

impl DmaRead for SysMem<'_> {
    fn read_u64(&mut self, addr: u64) -> Option<u64> {
        let page = self.pages.get(&(addr & !0xfff))?;
        let off = (addr & 0xfff) as usize;
        Some(u64::from_le_bytes(page.get(off..off + 8)?.try_into().ok()?))
    }
}

#[test]
fn radix3_over_every_real_image() {
    let Some(fw) = Firmware::load() else { return };
    for img in &fw.images {
        let parsed = img.parse();
        let fwimage = parsed.fwimage();
        let g = Geometry::new(fwimage.len() as u64).unwrap();
        // Stage the image; its pages sit scattered (a permutation) above 4 GiB.
        let mut staged = vec![0u8; g.image_buffer_len()];
        radix3::stage_image(fwimage, staged.as_mut_slice()).unwrap();
        let n = g.image_pages as u64;
        let image_addrs: Vec<u64> = (0..n)
            // 1_000_003 is a prime above any page count, so i -> (i × p + 3) mod n permutes.
            .map(|i| 0x1_0000_0000 + ((i * 1_000_003 + 3) % n) * PAGE_SIZE as u64)
            .collect();
        let table_addrs = Contiguous {
            base: 0x8000_0000,
            pages: g.table_pages(),
        };
        let mut tables = vec![0xa5u8; g.table_pages() * PAGE_SIZE];
        let map = radix3::build(
            fwimage.len() as u64,
            image_addrs.as_slice(),
            tables.as_mut_slice(),
            &table_addrs,
        )
        .unwrap();
        assert_eq!(map.level0, 0x8000_0000);
        assert_eq!(map.image_len, fwimage.len() as u64);

        let mut mem = SysMem {
            pages: BTreeMap::new(),
        };
        for (i, page) in tables.chunks_exact(PAGE_SIZE).enumerate() {
            mem.pages
                .insert(table_addrs.base + (i * PAGE_SIZE) as u64, page);
        }
        for (i, page) in staged.chunks_exact(PAGE_SIZE).enumerate() {
            mem.pages.insert(image_addrs[i], page);
        }
        // Walk back to every page, then read the image through the map as the GSP would.
        let mut visited = Vec::with_capacity(g.image_pages);
        let count = radix3::walk(&mut mem, map, &mut |i, addr| {
            assert_eq!(i, visited.len());
            visited.push(addr);
        })
        .unwrap();
        assert_eq!(count, g.image_pages);
        assert_eq!(visited, image_addrs, "{}", img.path.display());
        for (i, chunk) in fwimage.chunks(PAGE_SIZE).enumerate() {
            let addr = radix3::translate(&mut mem, map, (i * PAGE_SIZE) as u64).unwrap();
            assert_eq!(&mem.pages[&addr][..chunk.len()], chunk, "page {i}");
        }
        let last = fwimage.len() as u64 - 1;
        assert_eq!(
            radix3::translate(&mut mem, map, last).unwrap(),
            image_addrs[(last / 4096) as usize] + last % 4096
        );
        println!(
            "{}: {} pages, {} level-2 pages, walked back",
            img.path.display(),
            g.image_pages,
            g.level2_pages
        );
    }
}

#[test]
fn real_booters_and_bootloaders_parse() {
    let Some(fw) = Firmware::load() else { return };
    let mut bootloaders = 0;
    let mut booters = 0;
    for (path, bytes) in &fw.blobs {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("bootloader-") {
            let bl = RiscvBootloader::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let d = bl.desc();
            assert!(
                (1..=5).contains(&d.version),
                "{}: version {}",
                path.display(),
                d.version
            );
            assert!(!bl.ucode().is_empty());
            println!(
                "{}: v{} ucode {:#x} code {:#x} data {:#x} manifest {:#x} app_version {:#x}",
                path.display(),
                d.version,
                bl.ucode().len(),
                bl.code_offset(),
                bl.data_offset(),
                bl.manifest_offset(),
                bl.app_version()
            );
            bootloaders += 1;
        } else if name.starts_with("booter_load-") || name.starts_with("booter_unload-") {
            let b = Booter::parse(bytes).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
            assert!(b.signature_count() > 0, "{}", path.display());
            let sig = b.signature(0).unwrap().unwrap();
            let mut out = vec![0u8; b.ucode().len()];
            assert_eq!(b.write_signed(0, &mut out), Ok(b.ucode().len()));
            assert!(out.windows(sig.len()).any(|w| w == sig));
            // Booter runs on SEC2 (engine mask bit 0).
            assert_eq!(b.brom.engine_id_mask & 1, 1, "{}", path.display());
            booters += 1;
        }
    }
    assert!(
        bootloaders > 0 && booters > 0,
        "no blobs under {}",
        fw.dir.display()
    );
}

#[test]
fn real_bootloader_descriptors_by_hand() {
    let Some(fw) = Firmware::load() else { return };
    let (Some(tu), Some(ga)) = (
        fw.blob("tu102/gsp/bootloader-570.144.bin"),
        fw.blob("ga102/gsp/bootloader-570.144.bin"),
    ) else {
        return firmware::missing("570.144 tu102/ga102 bootloaders");
    };
    // TU102 570.144 (a link to the 535.113.01 file): BinHdr header 0x18, payload 0x64 + 0x1000;
    // descriptor version 4 (19 words, up to swbromDataSize), no monitor: all offsets 0.
    let tu = RiscvBootloader::parse(tu).unwrap();
    assert_eq!((tu.desc().version, tu.ucode().len()), (4, 0x1000));
    assert_eq!(
        (tu.code_offset(), tu.data_offset(), tu.manifest_offset()),
        (0, 0, 0)
    );
    assert_eq!(tu.desc().bootloaderSize, 0x488);
    assert_eq!(tu.desc().fbReservedSize, 0);
    // GA102 570.144: version 5, payload 0x6000; manifest @0 (0x800), monitor data @0x800
    // (0x1000), monitor code @0x1800 (0x2900); FB reserve 0x6000.
    let ga = RiscvBootloader::parse(ga).unwrap();
    assert_eq!((ga.desc().version, ga.ucode().len()), (5, 0x6000));
    assert_eq!(
        (ga.code_offset(), ga.data_offset(), ga.manifest_offset()),
        (0x1800, 0x800, 0)
    );
    assert_eq!(ga.desc().fbReservedSize, 0x6000);
}

/// What the hand derivation of a 24 GiB layout gives (FB end 0x6_0000_0000, display present
/// but no valid VGA base, so VGA = [end − 1 MiB, end) and FRTS = the MiB below it).
struct Expected {
    /// Bootloader copy.
    boot: Span,
    /// Start of the ELF copy (it is `.fwimage` long).
    elf_start: u64,
    /// WPR2 heap.
    heap: Span,
    /// Start of WPR2 (the non-WPR heap is the MiB below).
    wpr2_start: u64,
    /// Bootloader code, data and manifest offsets.
    offsets: (u64, u64, u64),
}

/// Lay out the 570.144 `chip` set for 24 GiB and compare with `want`.
fn check_24g(chip: Chipset, want: Expected) {
    let Some(fw) = Firmware::load() else { return };
    let name = chip.name();
    let Some(img) = fw.images.iter().find(|i| {
        i.version == "570.144" && i.path.to_string_lossy().contains(&format!("/{name}/"))
    }) else {
        return firmware::missing(&format!("570.144 {name} image"));
    };
    let Some(bl) = fw.blob(&format!("{name}/gsp/bootloader-570.144.bin")) else {
        return firmware::missing(&format!("570.144 {name} bootloader"));
    };
    let bl = RiscvBootloader::parse(bl).unwrap();
    let parsed = img.parse();
    let fwimage_len = parsed.fwimage().len() as u64;
    let input = LayoutInput {
        chip,
        fb_size: GIB24,
        vga_workspace: None,
        fwimage_len,
        bootloader_len: bl.ucode().len() as u64,
    };
    let l = FbLayout::compute(&input).unwrap();
    let span = |start, end| Span { start, end };
    assert_eq!(l.vga_workspace, span(0x5_fff0_0000, 0x6_0000_0000));
    assert_eq!(l.frts, span(0x5_ffe0_0000, 0x5_fff0_0000));
    assert_eq!(l.boot, want.boot);
    assert_eq!(l.elf, span(want.elf_start, want.elf_start + fwimage_len));
    assert_eq!(l.wpr2_heap, want.heap);
    assert_eq!(l.wpr2, span(want.wpr2_start, 0x5_fff0_0000));
    assert_eq!(l.non_wpr_heap, span(want.wpr2_start - MIB, want.wpr2_start));

    let radix3 = radix3::Radix3 {
        level0: 0x8000_0000,
        image_len: fwimage_len,
    };
    let sig = parsed.signature(chip).unwrap();
    let m = l.wpr_meta(&WprSysmem::new(radix3, &bl, 0x9000_0000, sig, 0xa000_0000));
    assert_eq!(
        (m.sysmemAddrOfRadix3Elf, m.sizeOfRadix3Elf),
        (0x8000_0000, fwimage_len)
    );
    assert_eq!(
        (m.sysmemAddrOfBootloader, m.sizeOfBootloader),
        (0x9000_0000, want.boot.len())
    );
    assert_eq!(
        (m.sysmemAddrOfSignature, m.sizeOfSignature),
        (0xa000_0000, 0x1000)
    );
    let offsets = (
        m.bootloaderCodeOffset,
        m.bootloaderDataOffset,
        m.bootloaderManifestOffset,
    );
    assert_eq!(offsets, want.offsets);
    let non_wpr = want.wpr2_start - MIB;
    assert_eq!(
        (m.gspFwRsvdStart, m.nonWprHeapOffset, m.nonWprHeapSize),
        (non_wpr, non_wpr, MIB)
    );
    assert_eq!(
        (m.gspFwWprStart, m.gspFwHeapOffset, m.gspFwHeapSize),
        (want.wpr2_start, want.heap.start, want.heap.len())
    );
    assert_eq!(
        (m.gspFwOffset, m.bootBinOffset),
        (want.elf_start, want.boot.start)
    );
    assert_eq!(
        (m.frtsOffset, m.frtsSize, m.gspFwWprEnd),
        (0x5_ffe0_0000, MIB, 0x5_fff0_0000)
    );
    assert_eq!(
        (m.fbSize, m.vgaWorkspaceOffset, m.vgaWorkspaceSize),
        (GIB24, 0x5_fff0_0000, MIB)
    );
}

#[test]
fn tu102_24g_layout_from_the_real_files() {
    // 570.144 TU102: .fwimage 0x1b3_4ea0, bootloader payload 0x1000 (no monitor: offsets 0).
    // Bootloader: 0x5_ffe0_0000 − 0x1000 = 0x5_ffdf_f000 (4 KiB aligned already).
    // ELF: 0x5_ffdf_f000 − 0x1b3_4ea0 = 0x5_fe2c_a160 → down to 64 KiB: 0x5_fe2c_0000.
    // Heap (LibOS 2): 0 + 8 + 96 + roundup(96 KiB × 24 = 2.25 MiB) = 3 → 107 MiB in [64, 256);
    //   0x5_fe2c_0000 − 0x6b0_0000 = 0x5_f77c_0000 → 1 MiB: 0x5_f770_0000; end 0x5_fe20_0000.
    // WPR2: (0x5_f770_0000 − 0x100) → 1 MiB: 0x5_f760_0000.
    check_24g(
        Chipset::TU102,
        Expected {
            boot: Span {
                start: 0x5_ffdf_f000,
                end: 0x5_ffe0_0000,
            },
            elf_start: 0x5_fe2c_0000,
            heap: Span {
                start: 0x5_f770_0000,
                end: 0x5_fe20_0000,
            },
            wpr2_start: 0x5_f760_0000,
            offsets: (0, 0, 0),
        },
    );
}

#[test]
fn ga102_24g_layout_from_the_real_files() {
    // 570.144 GA102: .fwimage 0x3c9_9000, bootloader payload 0x6000, monitor code @0x1800,
    // data @0x800, manifest @0.
    // Bootloader: 0x5_ffe0_0000 − 0x6000 = 0x5_ffdf_a000.
    // ELF: 0x5_ffdf_a000 − 0x3c9_9000 = 0x5_fc16_1000 → down to 64 KiB: 0x5_fc16_0000.
    // Heap (LibOS 3, 570.144): 22 + 8 + 96 + 3 = 129 MiB in [88, 280);
    //   0x5_fc16_0000 − 0x810_0000 = 0x5_f406_0000 → 1 MiB: 0x5_f400_0000; end 0x5_fc10_0000.
    // WPR2: (0x5_f400_0000 − 0x100) → 1 MiB: 0x5_f3f0_0000.
    check_24g(
        Chipset::GA102,
        Expected {
            boot: Span {
                start: 0x5_ffdf_a000,
                end: 0x5_ffe0_0000,
            },
            elf_start: 0x5_fc16_0000,
            heap: Span {
                start: 0x5_f400_0000,
                end: 0x5_fc10_0000,
            },
            wpr2_start: 0x5_f3f0_0000,
            offsets: (0x1800, 0x800, 0),
        },
    );
}
