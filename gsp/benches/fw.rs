//! `cargo xtask bench fw`: loading the real GSP firmware for boot, against a plain copy.
//!
//! Subject: everything the boot does with the image before the GSP can fetch it — parse the ELF,
//! find `.fwimage`, `.fwversion` and the chip's signatures, copy `.fwimage` into its DMA pages
//! (zero-padding the last one) and build the radix3 map over those pages. Baseline: a plain
//! `memcpy` of the `.fwimage` bytes into a buffer of the same size. The two run interleaved in the
//! same process (benchkit); the goal is subject/baseline ≤ 2, i.e. parsing and mapping cost less
//! than one extra copy. The parse+map part alone is printed as well.
//!
//! Needs the firmware `.ci/fetch-firmware` unpacks; without it the bench says so and exits 1.

#[path = "../tests/firmware/mod.rs"]
mod firmware;

use benchkit::{compare, fmt_ns, report, Goal, Op};
use gsp::chip::Chipset;
use gsp::elf::GspImage;
use gsp::radix3::{self, Contiguous, Geometry, PAGE_SIZE};
use std::hint::black_box;

fn main() {
    let Some(fw) = firmware::Firmware::load() else {
        eprintln!("bench fw: no GSP firmware; run .ci/fetch-firmware first");
        std::process::exit(1);
    };
    // The largest image: 570.144 GA10x (61 MiB .fwimage) when present.
    let Some(img) = fw.images.iter().max_by_key(|i| i.parse().fwimage().len()) else {
        eprintln!("bench fw: no GSP image under {}", fw.dir.display());
        std::process::exit(1);
    };
    let chip = if img.family == "tu10x" {
        Chipset::TU102
    } else {
        Chipset::GA102
    };
    let bytes = img.bytes();
    let fwimage_src = img.parse().fwimage();
    let fwimage_len = fwimage_src.len();
    let g = Geometry::new(fwimage_len as u64).expect("image geometry");
    println!(
        "bench fw: {} ({} {}), .fwimage {} bytes = {} pages, {} table pages",
        img.path.display(),
        img.version,
        img.family,
        fwimage_len,
        g.image_pages,
        g.table_pages()
    );

    let image_addrs = Contiguous {
        base: 0x1_0000_0000,
        pages: g.image_pages,
    };
    let table_addrs = Contiguous {
        base: 0x8000_0000,
        pages: g.table_pages(),
    };
    let mut staged = vec![0u8; g.image_buffer_len()];
    let mut tables = vec![0u8; g.table_pages() * PAGE_SIZE];
    let mut copy = vec![0u8; fwimage_len];

    let parse_and_map = |staged: Option<&mut Vec<u8>>, tables: &mut Vec<u8>| {
        let image = GspImage::parse(black_box(bytes)).expect("parse");
        black_box(image.version());
        black_box(image.signature(chip).expect("signature"));
        let fwimage = image.fwimage();
        if let Some(staged) = staged {
            radix3::stage_image(fwimage, staged.as_mut_slice()).expect("stage");
        }
        let map = radix3::build(
            fwimage.len() as u64,
            &image_addrs,
            tables.as_mut_slice(),
            &table_addrs,
        )
        .expect("radix3");
        black_box(map);
    };

    const ROUNDS: usize = 51;
    let full = compare(
        ROUNDS,
        1,
        || parse_and_map(Some(&mut staged), &mut tables),
        || {
            copy.copy_from_slice(black_box(fwimage_src));
            black_box(&copy);
        },
    );
    let map_only = compare(
        ROUNDS,
        1,
        || parse_and_map(None, &mut tables),
        || {
            copy.copy_from_slice(black_box(fwimage_src));
            black_box(&copy);
        },
    );
    println!(
        "parse + stage + radix3: {}   memcpy .fwimage: {}   (parse + radix3 alone: {}, {:.4} of a memcpy)",
        fmt_ns(full.subject),
        fmt_ns(full.baseline),
        fmt_ns(map_only.subject),
        map_only.cost_ratio()
    );
    let ok = report(&[Goal::new("fw", full.cost_ratio(), Op::AtMost, 2.0)]);
    std::process::exit(if ok { 0 } else { 1 });
}
