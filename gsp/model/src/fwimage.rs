//! A small but well-formed synthetic GSP firmware image and RISC-V bootloader, so the hosted
//! system boots on a machine without Debian's firmware package (the real `gsp-570.144.bin` and
//! `bootloader-570.144.bin` are used when installed).
//!
//! The file has the shape of the real one (reference section 8): an ELF64, little-endian,
//! `ET_REL` for `EM_RISCV`, with sections `.fwimage` (the GSP-RM payload the radix3 map
//! describes; here a deterministic pseudo-random pattern, so a map that points at the wrong page
//! is caught), `.fwversion` (`"570.144\0"`), one `.fwsignature_<family>` per chip family
//! (`tu10x`, `tu11x`, `ga10x`, `ad10x`; deterministic bytes), and `.shstrtab`. Layouts: System V
//! gABI ELF64 `Elf64_Ehdr` (64 bytes) and `Elf64_Shdr` (64 bytes).
//!
//! The bootloader ([`build_bootloader`]) is a `BinHdr` blob (magic 0x10de) whose application
//! header is an `RM_RISCV_UCODE_DESC` (version 5) with monitor code, data and manifest inside a
//! deterministic payload, and [`BOOTLOADER_APP_VERSION`] as the version the driver writes to
//! `FALCON_OS`. Both header types are the gsp crate's (`gsp::elf`).
use core::mem::{offset_of, size_of};
use gsp::elf::{BinHdr, BIN_MAGIC, RM_RISCV_UCODE_DESC};
use zerocopy::{FromZeros, Immutable, IntoBytes, KnownLayout};

/// `.fwversion` of the image: the firmware ABI this stack speaks.
pub const VERSION: &[u8] = b"570.144\0";
/// Signature sections, one per chip family.
pub const SIGNATURES: [&str; 4] = [
    ".fwsignature_tu10x",
    ".fwsignature_tu11x",
    ".fwsignature_ga10x",
    ".fwsignature_ad10x",
];
/// Bytes of each signature section.
pub const SIGNATURE_SIZE: usize = 0x400;
/// Where `.fwimage` starts in the file (page aligned, as in real images).
const IMAGE_OFFSET: usize = 0x1000;
/// `EM_RISCV`.
const EM_RISCV: u16 = 243;
/// `ET_REL`.
const ET_REL: u16 = 1;
/// `SHT_PROGBITS`.
const SHT_PROGBITS: u32 = 1;
/// `SHT_STRTAB`.
const SHT_STRTAB: u32 = 3;

/// `Elf64_Ehdr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, IntoBytes, Immutable, KnownLayout)]
struct Elf64Ehdr {
    e_ident: [u8; 16],
    e_type: u16,
    e_machine: u16,
    e_version: u32,
    e_entry: u64,
    e_phoff: u64,
    e_shoff: u64,
    e_flags: u32,
    e_ehsize: u16,
    e_phentsize: u16,
    e_phnum: u16,
    e_shentsize: u16,
    e_shnum: u16,
    e_shstrndx: u16,
}

// System V gABI, "ELF Header" (ELF-64 Object File Format 1.5, table 2).
const _: () = assert!(size_of::<Elf64Ehdr>() == 64);
const _: () = assert!(offset_of!(Elf64Ehdr, e_type) == 16);
const _: () = assert!(offset_of!(Elf64Ehdr, e_machine) == 18);
const _: () = assert!(offset_of!(Elf64Ehdr, e_shoff) == 40);
const _: () = assert!(offset_of!(Elf64Ehdr, e_ehsize) == 52);
const _: () = assert!(offset_of!(Elf64Ehdr, e_shentsize) == 58);
const _: () = assert!(offset_of!(Elf64Ehdr, e_shstrndx) == 62);

/// `Elf64_Shdr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, IntoBytes, Immutable, KnownLayout)]
struct Elf64Shdr {
    sh_name: u32,
    sh_type: u32,
    sh_flags: u64,
    sh_addr: u64,
    sh_offset: u64,
    sh_size: u64,
    sh_link: u32,
    sh_info: u32,
    sh_addralign: u64,
    sh_entsize: u64,
}

// System V gABI, "Section Header" (ELF-64 Object File Format 1.5, table 3).
const _: () = assert!(size_of::<Elf64Shdr>() == 64);
const _: () = assert!(offset_of!(Elf64Shdr, sh_offset) == 24);
const _: () = assert!(offset_of!(Elf64Shdr, sh_size) == 32);
const _: () = assert!(offset_of!(Elf64Shdr, sh_addralign) == 48);

/// The buffer given to [`build`] is too small; it needs this many bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall(pub usize);

/// Byte `i` of the synthetic `.fwimage` (a multiplicative hash, so every page differs).
pub const fn image_byte(i: usize) -> u8 {
    // CAST: keep bits 31:24 of the 32-bit product.
    ((i as u32)
        .wrapping_mul(0x9e37_79b1)
        .wrapping_add(0x7f4a_7c15)
        >> 24) as u8
}

/// Byte `i` of signature section `s`.
const fn signature_byte(s: usize, i: usize) -> u8 {
    // CAST: small values, truncation intended.
    (i as u8).wrapping_mul(31).wrapping_add(s as u8 * 64 + 1)
}

/// The section names, `.shstrtab` first byte NUL, in section-index order (index 0 is null).
const NAMES: [&str; 7] = [
    ".fwimage",
    ".fwversion",
    ".fwsignature_tu10x",
    ".fwsignature_tu11x",
    ".fwsignature_ga10x",
    ".fwsignature_ad10x",
    ".shstrtab",
];

fn strtab_len() -> usize {
    1 + NAMES.iter().map(|n| n.len() + 1).sum::<usize>()
}

/// Bytes [`build`] writes for an `.fwimage` of `image_len` bytes.
pub fn file_size(image_len: usize) -> usize {
    let data_end =
        IMAGE_OFFSET + image_len + VERSION.len() + SIGNATURES.len() * SIGNATURE_SIZE + strtab_len();
    data_end.next_multiple_of(8) + (NAMES.len() + 1) * size_of::<Elf64Shdr>()
}

/// Write a GSP image with an `.fwimage` of `image_len` bytes into `dst`; returns its length.
///
/// # Errors
/// [`BufferTooSmall`] with the size needed ([`file_size`]).
pub fn build(dst: &mut [u8], image_len: usize) -> Result<usize, BufferTooSmall> {
    let total = file_size(image_len);
    let out = dst.get_mut(..total).ok_or(BufferTooSmall(total))?;
    out.fill(0);
    // Section data, in order.
    let mut at = IMAGE_OFFSET;
    let mut shdrs = [Elf64Shdr::default(); NAMES.len() + 1];
    let mut name_at = 1usize;
    let mut put = |out: &mut [u8],
                   index: usize,
                   at: &mut usize,
                   bytes: &mut dyn Iterator<Item = u8>,
                   len: usize,
                   ty: u32,
                   name: &str| {
        for (d, b) in out.iter_mut().skip(*at).take(len).zip(bytes) {
            *d = b;
        }
        if let Some(sh) = shdrs.get_mut(index) {
            // CAST: offsets and sizes of a file that fits in memory.
            *sh = Elf64Shdr {
                sh_name: name_at as u32,
                sh_type: ty,
                sh_offset: *at as u64,
                sh_size: len as u64,
                sh_addralign: 1,
                ..Elf64Shdr::default()
            };
        }
        name_at += name.len() + 1;
        *at += len;
    };
    put(
        out,
        1,
        &mut at,
        &mut (0..image_len).map(image_byte),
        image_len,
        SHT_PROGBITS,
        ".fwimage",
    );
    put(
        out,
        2,
        &mut at,
        &mut VERSION.iter().copied(),
        VERSION.len(),
        SHT_PROGBITS,
        ".fwversion",
    );
    for (s, name) in SIGNATURES.iter().enumerate() {
        put(
            out,
            3 + s,
            &mut at,
            &mut (0..SIGNATURE_SIZE).map(|i| signature_byte(s, i)),
            SIGNATURE_SIZE,
            SHT_PROGBITS,
            name,
        );
    }
    let mut strtab = core::iter::once(0u8).chain(
        NAMES
            .iter()
            .flat_map(|n| n.bytes().chain(core::iter::once(0))),
    );
    put(
        out,
        NAMES.len(),
        &mut at,
        &mut strtab,
        strtab_len(),
        SHT_STRTAB,
        ".shstrtab",
    );
    let shoff = at.next_multiple_of(8);
    for (i, sh) in shdrs.iter().enumerate() {
        let off = shoff + i * size_of::<Elf64Shdr>();
        if let Some(d) = out.get_mut(off..off + size_of::<Elf64Shdr>()) {
            d.copy_from_slice(sh.as_bytes());
        }
    }
    let mut ident = [0u8; 16];
    ident[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1]);
    // CAST: small header fields.
    let eh = Elf64Ehdr {
        e_ident: ident,
        e_type: ET_REL,
        e_machine: EM_RISCV,
        e_version: 1,
        e_shoff: shoff as u64,
        e_ehsize: size_of::<Elf64Ehdr>() as u16,
        e_shentsize: size_of::<Elf64Shdr>() as u16,
        e_shnum: (NAMES.len() + 1) as u16,
        e_shstrndx: NAMES.len() as u16,
        ..Elf64Ehdr::default()
    };
    if let Some(d) = out.get_mut(..size_of::<Elf64Ehdr>()) {
        d.copy_from_slice(eh.as_bytes());
    }
    Ok(total)
}

/// `appVersion` of the synthetic bootloader.
pub const BOOTLOADER_APP_VERSION: u32 = 0x0570_0144;
/// Where the bootloader's payload starts in its file.
const BOOTLOADER_DATA: usize = 0x100;
/// Bytes of the bootloader's payload: monitor code, monitor data, manifest.
const BOOTLOADER_PAYLOAD: usize = 0x5000;

/// Bytes [`build_bootloader`] writes.
pub const fn bootloader_size() -> usize {
    BOOTLOADER_DATA + BOOTLOADER_PAYLOAD
}

/// Write the synthetic bootloader into `dst`; returns its length.
///
/// # Errors
/// [`BufferTooSmall`] with the size needed ([`bootloader_size`]).
pub fn build_bootloader(dst: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let total = bootloader_size();
    let out = dst.get_mut(..total).ok_or(BufferTooSmall(total))?;
    out.fill(0);
    // CAST: small constants.
    let hdr = BinHdr {
        bin_magic: BIN_MAGIC,
        bin_ver: 1,
        bin_size: total as u32,
        header_offset: size_of::<BinHdr>() as u32,
        data_offset: BOOTLOADER_DATA as u32,
        data_size: BOOTLOADER_PAYLOAD as u32,
    };
    let mut desc = RM_RISCV_UCODE_DESC::new_zeroed();
    desc.version = 5;
    desc.appVersion = BOOTLOADER_APP_VERSION;
    (desc.monitorCodeOffset, desc.monitorCodeSize) = (0, 0x2000);
    (desc.monitorDataOffset, desc.monitorDataSize) = (0x2000, 0x2000);
    (desc.manifestOffset, desc.manifestSize) = (0x4000, 0x400);
    desc.bIsMonitorEnabled = 1;
    let parts: [(usize, &[u8]); 2] = [(0, hdr.as_bytes()), (size_of::<BinHdr>(), desc.as_bytes())];
    for (at, bytes) in parts {
        if let Some(d) = out.get_mut(at..at + bytes.len()) {
            d.copy_from_slice(bytes);
        }
    }
    for (i, b) in out.iter_mut().enumerate().skip(BOOTLOADER_DATA) {
        *b = image_byte(i ^ 0x5a5a);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use gsp::chip::Chipset;
    use gsp::elf::GspImage;
    use std::vec;

    /// An 8-byte-aligned buffer (the ELF parser reads headers in place).
    pub(crate) fn aligned(len: usize) -> &'static mut [u8] {
        let words: &'static mut [u64] = vec![0u64; len.div_ceil(8)].leak();
        words.as_mut_bytes()
    }

    #[test]
    fn the_firmware_parser_accepts_it() {
        let len = 0x2_3456;
        let buf = aligned(file_size(len));
        let n = build(buf, len).unwrap();
        let img = GspImage::parse(&buf[..n]).unwrap();
        assert_eq!(img.version(), "570.144");
        assert_eq!(img.fwimage().len(), len);
        assert!(img
            .fwimage()
            .iter()
            .enumerate()
            .all(|(i, &b)| b == image_byte(i)));
        // Distinct pages, so a radix3 map pointing at the wrong one is caught.
        assert_ne!(&img.fwimage()[..0x1000], &img.fwimage()[0x1000..0x2000]);
        for chip in [
            Chipset::TU102,
            Chipset::TU116,
            Chipset::GA102,
            Chipset::AD102,
            Chipset::GA100,
        ] {
            assert_eq!(
                img.signature(chip).unwrap().len(),
                SIGNATURE_SIZE,
                "{chip:?}"
            );
        }
        assert_ne!(
            img.signature(Chipset::TU102).unwrap(),
            img.signature(Chipset::AD102).unwrap()
        );
        assert!(img.signature(Chipset::GH100).is_err());
        assert_eq!(build(&mut buf[..100], len), Err(BufferTooSmall(n)));
    }

    #[test]
    fn the_bootloader_parses_as_one() {
        let mut buf = vec![0u8; bootloader_size()];
        let n = build_bootloader(&mut buf).unwrap();
        let bl = gsp::elf::RiscvBootloader::parse(&buf[..n]).unwrap();
        assert_eq!(bl.app_version(), BOOTLOADER_APP_VERSION);
        assert_eq!(bl.ucode().len(), 0x5000);
        assert_eq!(
            (bl.code_offset(), bl.data_offset(), bl.manifest_offset()),
            (0, 0x2000, 0x4000)
        );
        assert_eq!(build_bootloader(&mut buf[..10]), Err(BufferTooSmall(n)));
    }
}
