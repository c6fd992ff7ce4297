//! GSP firmware files: the GSP-RM ELF image and the `BinHdr` blobs (RISC-V bootloader, booter).
//!
//! - [`GspImage`]: `gsp*.bin` is an ELF64 (machine RISC-V, type REL) whose sections are keys to
//!   blobs: `.fwimage` (what the radix3 map points at), `.fwversion` (e.g. `570.144`) and one
//!   `.fwsignature_<family>` per chip family (reference section 8). Parsed with the `object`
//!   crate's no_std ELF reader.
//! - [`BinBlob`]: booter and bootloader files start with `BinHdr` (nova-core `firmware.rs`).
//! - [`RiscvBootloader`]: the GSP bootloader, `BinHdr` + `RM_RISCV_UCODE_DESC` (OpenRM
//!   `rmRiscvUcode.h`, as nouveau's 535.113.01 copy and nova-core `firmware/riscv.rs` read it).
//! - [`Booter`]: `booter_load`/`booter_unload`, `BinHdr` + `HsHeaderV2` + `HsLoadHeaderV2`
//!   (nova-core `firmware/booter.rs`).
//!
//! Trust: firmware files come from the distribution, not from the device, but are still parsed as
//! untrusted bytes: every offset is bounds-checked at parse time so that no accessor can fail or
//! panic afterwards, and malformed input is a typed error ([`ImageError`], [`BlobError`]).
//! [`fuzz_parse`] runs every parser on arbitrary bytes (fuzz target `fw_parse`).

use object::elf::{FileHeader64, EM_RISCV, ET_REL};
use object::read::elf::{FileHeader, SectionHeader, SectionTable};
use object::Endianness;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::chip::Chipset;

/// Why a GSP ELF image was refused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// The buffer is not 8-byte aligned (the ELF reader reads headers in place).
    Misaligned = 1,
    /// No ELF64 header: bad magic, class, version or a truncated header.
    NotElf64 = 2,
    /// The image is big-endian; GSP images are little-endian.
    BigEndian = 3,
    /// `e_machine` is not RISC-V.
    NotRiscv = 4,
    /// `e_type` is not REL.
    NotRelocatable = 5,
    /// The section header table or its string table lies outside the file.
    BadSectionTable = 6,
    /// A section's data lies outside the file.
    BadSection = 7,
    /// There is no `.fwimage` section, or it is empty.
    NoFwImage = 8,
    /// There is no `.fwversion` section.
    NoFwVersion = 9,
    /// `.fwversion` is not printable ASCII up to an optional NUL.
    BadFwVersion = 10,
    /// The image has no `.fwsignature_*` section for the requested chip.
    NoSignature = 11,
}

/// A parsed GSP-RM image. Borrowed from the caller's buffer; nothing is copied.
#[derive(Debug, Clone, Copy)]
pub struct GspImage<'a> {
    data: &'a [u8],
    endian: Endianness,
    sections: SectionTable<'a, FileHeader64<Endianness>, &'a [u8]>,
    fwimage: &'a [u8],
    version: &'a str,
}

impl<'a> GspImage<'a> {
    /// Parse `data` as a GSP image and find `.fwimage` and `.fwversion`.
    ///
    /// # Errors
    /// Every [`ImageError`] but [`ImageError::NoSignature`].
    pub fn parse(data: &'a [u8]) -> Result<Self, ImageError> {
        if data.as_ptr().align_offset(8) != 0 {
            return Err(ImageError::Misaligned);
        }
        let header = FileHeader64::<Endianness>::parse(data).map_err(|_| ImageError::NotElf64)?;
        if !header.is_class_64() {
            return Err(ImageError::NotElf64);
        }
        if !header.is_little_endian() {
            return Err(ImageError::BigEndian);
        }
        let endian = Endianness::Little;
        if header.e_machine(endian) != EM_RISCV {
            return Err(ImageError::NotRiscv);
        }
        if header.e_type(endian) != ET_REL {
            return Err(ImageError::NotRelocatable);
        }
        let sections = header
            .sections(endian, data)
            .map_err(|_| ImageError::BadSectionTable)?;
        let mut image = Self {
            data,
            endian,
            sections,
            fwimage: &[],
            version: "",
        };
        image.fwimage = image.section(".fwimage")?.ok_or(ImageError::NoFwImage)?;
        if image.fwimage.is_empty() {
            return Err(ImageError::NoFwImage);
        }
        let version = image
            .section(".fwversion")?
            .ok_or(ImageError::NoFwVersion)?;
        image.version = parse_version(version)?;
        Ok(image)
    }

    /// The bytes of section `name`, `None` if the image has no such section.
    ///
    /// # Errors
    /// [`ImageError::BadSection`] when the section's data lies outside the file.
    pub fn section(&self, name: &str) -> Result<Option<&'a [u8]>, ImageError> {
        match self.sections.section_by_name(self.endian, name.as_bytes()) {
            None => Ok(None),
            Some((_, shdr)) => shdr
                .data(self.endian, self.data)
                .map(Some)
                .map_err(|_| ImageError::BadSection),
        }
    }

    /// Names of all sections, in file order (index 0, the null section, has the empty name).
    /// A name that is not valid UTF-8 or lies outside the string table reads as `"?"`.
    pub fn section_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.sections.iter().map(|shdr| {
            self.sections
                .section_name(self.endian, shdr)
                .ok()
                .and_then(|n| core::str::from_utf8(n).ok())
                .unwrap_or("?")
        })
    }

    /// `.fwimage`: the GSP-RM image the radix3 map describes (`sizeOfRadix3Elf` is its length).
    pub fn fwimage(&self) -> &'a [u8] {
        self.fwimage
    }

    /// `.fwversion`, without its NUL: the firmware version, e.g. `"570.144"`.
    pub fn version(&self) -> &'a str {
        self.version
    }

    /// The signatures for `chip` (its `.fwsignature_*` section; reference section 8).
    ///
    /// # Errors
    /// [`ImageError::NoSignature`] if the image was built without that chip family (e.g. a
    /// Turing image asked for GA102), [`ImageError::BadSection`] if the section is out of bounds.
    pub fn signature(&self, chip: Chipset) -> Result<&'a [u8], ImageError> {
        match self.section(chip.signature_section())? {
            Some(sig) if !sig.is_empty() => Ok(sig),
            _ => Err(ImageError::NoSignature),
        }
    }
}

/// `.fwversion` is ASCII, NUL-terminated in every image seen (`"570.144\0"`); the NUL is optional.
fn parse_version(raw: &[u8]) -> Result<&str, ImageError> {
    let text = raw.split(|b| *b == 0).next().unwrap_or(&[]);
    if text.is_empty() || !text.iter().all(|b| b.is_ascii_graphic()) {
        return Err(ImageError::BadFwVersion);
    }
    core::str::from_utf8(text).map_err(|_| ImageError::BadFwVersion)
}

/// Why a `BinHdr` blob (booter, bootloader) was refused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobError {
    /// Shorter than a `BinHdr`.
    Truncated = 1,
    /// `bin_magic` is not 0x10de.
    BadMagic = 2,
    /// The payload (`data_offset`, `data_size`) lies outside the file, or is empty.
    BadPayload = 3,
    /// The application header at `header_offset` lies outside the file or is too short.
    BadHeader = 4,
    /// An offset or size in the application header points outside the payload or file.
    BadDescriptor = 5,
    /// The booter has no signature for the fuse version the caller read.
    NoSignatureForFuse = 6,
    /// The destination buffer is smaller than the payload.
    BufferTooSmall = 7,
}

/// Header common to NVIDIA's firmware blobs (nova-core `firmware.rs` `BinHdr`).
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BinHdr {
    /// Magic, 0x10de.
    pub bin_magic: u32,
    /// Header version.
    pub bin_ver: u32,
    /// Size of the binary (ignored, as nova-core does).
    pub bin_size: u32,
    /// Offset of the application-specific header.
    pub header_offset: u32,
    /// Offset of the payload.
    pub data_offset: u32,
    /// Size of the payload.
    pub data_size: u32,
}

// Layout: nova-core firmware.rs `BinHdr` (six u32, repr(C)).
const _: () = assert!(core::mem::size_of::<BinHdr>() == 24);
const _: () = assert!(core::mem::offset_of!(BinHdr, bin_magic) == 0);
const _: () = assert!(core::mem::offset_of!(BinHdr, bin_ver) == 4);
const _: () = assert!(core::mem::offset_of!(BinHdr, bin_size) == 8);
const _: () = assert!(core::mem::offset_of!(BinHdr, header_offset) == 12);
const _: () = assert!(core::mem::offset_of!(BinHdr, data_offset) == 16);
const _: () = assert!(core::mem::offset_of!(BinHdr, data_size) == 20);

/// `BinHdr::bin_magic` of every blob.
pub const BIN_MAGIC: u32 = 0x10de;

/// A file that starts with a valid `BinHdr` and whose payload lies inside it.
#[derive(Debug, Clone, Copy)]
pub struct BinBlob<'a> {
    /// The header.
    pub hdr: BinHdr,
    file: &'a [u8],
    payload: &'a [u8],
}

impl<'a> BinBlob<'a> {
    /// Parse the `BinHdr` at the start of `file`.
    ///
    /// # Errors
    /// [`BlobError::Truncated`], [`BlobError::BadMagic`], [`BlobError::BadPayload`].
    pub fn parse(file: &'a [u8]) -> Result<Self, BlobError> {
        let (hdr, _) = BinHdr::read_from_prefix(file).map_err(|_| BlobError::Truncated)?;
        if hdr.bin_magic != BIN_MAGIC {
            return Err(BlobError::BadMagic);
        }
        let payload = range(file, hdr.data_offset, hdr.data_size).ok_or(BlobError::BadPayload)?;
        if payload.is_empty() {
            return Err(BlobError::BadPayload);
        }
        Ok(Self { hdr, file, payload })
    }

    /// The whole file.
    pub fn file(&self) -> &'a [u8] {
        self.file
    }

    /// The payload: what gets copied into DMA memory for the falcon or GSP.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// A `T` read from file offset `offset`.
    fn read_at<T: FromBytes>(&self, offset: u32) -> Result<T, BlobError> {
        let bytes = range(self.file, offset, size_u32::<T>()).ok_or(BlobError::BadDescriptor)?;
        T::read_from_bytes(bytes).map_err(|_| BlobError::BadDescriptor)
    }
}

/// `file[offset..offset + len]`, if it lies inside `file`.
fn range(file: &[u8], offset: u32, len: u32) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    file.get(start..end)
}

/// Whether `offset..offset + len` lies inside a buffer of `size` bytes.
fn within(offset: u32, len: u32, size: usize) -> bool {
    u64::from(offset) + u64::from(len) <= u64::try_from(size).unwrap_or(u64::MAX)
}

/// `size_of::<T>()` as u32 (every header here is a few dozen bytes).
const fn size_u32<T>() -> u32 {
    // CAST: only used for the small fixed-size headers of this module (asserted below).
    core::mem::size_of::<T>() as u32
}

/// Descriptor of microcode for a RISC-V core (OpenRM `RM_RISCV_UCODE_DESC`,
/// `src/nvidia/arch/nvalloc/common/inc/rmRiscvUcode.h`; nouveau's copy under
/// `include/nvrm/535.113.01/nvidia/arch/nvalloc/common/inc/rmRiscvUcode.h`). Version 5 has all 21
/// fields; older versions end earlier (the 570.144 TU102 bootloader is version 4 and stops after
/// `swbromDataSize`): fields past the descriptor's end read as zero.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[allow(non_snake_case)]
pub struct RM_RISCV_UCODE_DESC {
    /// Structure version (1..=5).
    pub version: u32,
    /// Offset of the boot loader in the payload.
    pub bootloaderOffset: u32,
    /// Size of the boot loader.
    pub bootloaderSize: u32,
    /// Offset of the boot loader's parameters.
    pub bootloaderParamOffset: u32,
    /// Size of the boot loader's parameters.
    pub bootloaderParamSize: u32,
    /// Offset of the RISC-V ELF.
    pub riscvElfOffset: u32,
    /// Size of the RISC-V ELF.
    pub riscvElfSize: u32,
    /// Changelist number of the image; written to the GSP's `FALCON_OS` after boot.
    pub appVersion: u32,
    /// Offset of the manifest (monitor description, input to the boot ROM).
    pub manifestOffset: u32,
    /// Size of the manifest.
    pub manifestSize: u32,
    /// Offset of the monitor's data.
    pub monitorDataOffset: u32,
    /// Size of the monitor's data.
    pub monitorDataSize: u32,
    /// Offset of the monitor's code.
    pub monitorCodeOffset: u32,
    /// Size of the monitor's code.
    pub monitorCodeSize: u32,
    /// The monitor is enabled.
    pub bIsMonitorEnabled: u32,
    /// Offset of the software boot ROM's code.
    pub swbromCodeOffset: u32,
    /// Size of the software boot ROM's code.
    pub swbromCodeSize: u32,
    /// Offset of the software boot ROM's data.
    pub swbromDataOffset: u32,
    /// Size of the software boot ROM's data.
    pub swbromDataSize: u32,
    /// Total FB carve-out (image and reserved space); version 5.
    pub fbReservedSize: u32,
    /// The whole image is signed as code; version 5.
    pub bSignedAsCode: u32,
}

// Layout: rmRiscvUcode.h, 21 consecutive NvU32 fields; the prefix nova-core reads is 14 fields.
const _: () = assert!(core::mem::size_of::<RM_RISCV_UCODE_DESC>() == 84);
const _: () = assert!(core::mem::offset_of!(RM_RISCV_UCODE_DESC, appVersion) == 28);
const _: () = assert!(core::mem::offset_of!(RM_RISCV_UCODE_DESC, manifestOffset) == 32);
const _: () = assert!(core::mem::offset_of!(RM_RISCV_UCODE_DESC, manifestSize) == 36);
const _: () = assert!(core::mem::offset_of!(RM_RISCV_UCODE_DESC, monitorDataOffset) == 40);
const _: () = assert!(core::mem::offset_of!(RM_RISCV_UCODE_DESC, monitorDataSize) == 44);
const _: () = assert!(core::mem::offset_of!(RM_RISCV_UCODE_DESC, monitorCodeOffset) == 48);
const _: () = assert!(core::mem::offset_of!(RM_RISCV_UCODE_DESC, monitorCodeSize) == 52);
const _: () = assert!(core::mem::offset_of!(RM_RISCV_UCODE_DESC, swbromDataSize) == 72);
const _: () = assert!(core::mem::offset_of!(RM_RISCV_UCODE_DESC, fbReservedSize) == 76);
const _: () = assert!(core::mem::offset_of!(RM_RISCV_UCODE_DESC, bSignedAsCode) == 80);

/// Shortest descriptor accepted: up to `monitorCodeSize`, the fields the boot uses (nova-core's
/// `RmRiscvUCodeDesc` is exactly this prefix).
const RISCV_DESC_MIN: usize = core::mem::offset_of!(RM_RISCV_UCODE_DESC, bIsMonitorEnabled);

/// The GSP RISC-V bootloader (`bootloader-<version>.bin`): its payload is what
/// `sysmemAddrOfBootloader` points at; the offsets go into `GspFwWprMeta`.
#[derive(Debug, Clone, Copy)]
pub struct RiscvBootloader<'a> {
    blob: BinBlob<'a>,
    desc: RM_RISCV_UCODE_DESC,
}

impl<'a> RiscvBootloader<'a> {
    /// Parse a bootloader file. The descriptor runs from `header_offset` to `data_offset` (or the
    /// end of the file if the payload comes first); a shorter one than nova-core's 14 fields is
    /// refused, and the monitor code, data and manifest must lie inside the payload.
    ///
    /// # Errors
    /// [`BinBlob::parse`]'s errors, [`BlobError::BadHeader`], [`BlobError::BadDescriptor`].
    pub fn parse(file: &'a [u8]) -> Result<Self, BlobError> {
        let blob = BinBlob::parse(file)?;
        let start = usize::try_from(blob.hdr.header_offset).map_err(|_| BlobError::BadHeader)?;
        let end = usize::try_from(blob.hdr.data_offset)
            .ok()
            .filter(|end| *end > start)
            .unwrap_or(file.len());
        let avail = file.get(start..end).ok_or(BlobError::BadHeader)?;
        if avail.len() < RISCV_DESC_MIN {
            return Err(BlobError::BadHeader);
        }
        let mut desc = RM_RISCV_UCODE_DESC::new_zeroed();
        let n = avail.len().min(core::mem::size_of::<RM_RISCV_UCODE_DESC>());
        if let (Some(dst), Some(src)) = (desc.as_mut_bytes().get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        let size = blob.payload.len();
        let inside = within(desc.monitorCodeOffset, desc.monitorCodeSize, size)
            && within(desc.monitorDataOffset, desc.monitorDataSize, size)
            && within(desc.manifestOffset, desc.manifestSize, size);
        if !inside {
            return Err(BlobError::BadDescriptor);
        }
        Ok(Self { blob, desc })
    }

    /// The payload to copy into the bootloader's DMA buffer (`sizeOfBootloader` is its length).
    pub fn ucode(&self) -> &'a [u8] {
        self.blob.payload
    }

    /// The descriptor as read (missing trailing fields zero).
    pub fn desc(&self) -> &RM_RISCV_UCODE_DESC {
        &self.desc
    }

    /// `bootloaderCodeOffset` of `GspFwWprMeta`: the monitor's code offset.
    pub fn code_offset(&self) -> u32 {
        self.desc.monitorCodeOffset
    }

    /// `bootloaderDataOffset`: the monitor's data offset.
    pub fn data_offset(&self) -> u32 {
        self.desc.monitorDataOffset
    }

    /// `bootloaderManifestOffset`.
    pub fn manifest_offset(&self) -> u32 {
        self.desc.manifestOffset
    }

    /// The value to write to the GSP's `FALCON_OS` after booter_load (reference 1.12).
    pub fn app_version(&self) -> u32 {
        self.desc.appVersion
    }
}

/// Heavy-secure firmware header (nova-core `firmware/booter.rs` `HsHeaderV2`): offsets into the
/// file of the signatures and of the load header.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HsHeaderV2 {
    /// Offset of the production signatures.
    pub sig_prod_offset: u32,
    /// Size of all production signatures together.
    pub sig_prod_size: u32,
    /// Offset of a u32: where in the payload to patch the signature.
    pub patch_loc_offset: u32,
    /// Offset of a u32: index (in bytes) added to `sig_prod_offset`.
    pub patch_sig_offset: u32,
    /// Offset of the signature metadata ([`HsSignatureParams`]).
    pub meta_data_offset: u32,
    /// Size of the signature metadata.
    pub meta_data_size: u32,
    /// Offset of a u32: number of signatures.
    pub num_sig_offset: u32,
    /// Offset of the [`HsLoadHeaderV2`].
    pub header_offset: u32,
    /// Size of the load header and its app entries.
    pub header_size: u32,
}

// Layout: nova-core firmware/booter.rs `HsHeaderV2` (nine u32).
const _: () = assert!(core::mem::size_of::<HsHeaderV2>() == 36);
const _: () = assert!(core::mem::offset_of!(HsHeaderV2, patch_loc_offset) == 8);
const _: () = assert!(core::mem::offset_of!(HsHeaderV2, num_sig_offset) == 24);
const _: () = assert!(core::mem::offset_of!(HsHeaderV2, header_size) == 32);

/// Signature parameters (nova-core `HsSignatureParams`).
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HsSignatureParams {
    /// Fuse version the last signature is for.
    pub fuse_ver: u32,
    /// Engines the firmware may run on (bit 0 SEC2, bit 2 NVDEC, bit 10 GSP).
    pub engine_id_mask: u32,
    /// Microcode id, selects the fuse register (1..=16).
    pub ucode_id: u32,
}

const _: () = assert!(core::mem::size_of::<HsSignatureParams>() == 12);
const _: () = assert!(core::mem::offset_of!(HsSignatureParams, ucode_id) == 8);

/// Load header (nova-core `HsLoadHeaderV2`), followed by `num_apps` [`HsLoadHeaderV2App`].
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HsLoadHeaderV2 {
    /// Offset of the code in the payload.
    pub os_code_offset: u32,
    /// Size of the code of all apps.
    pub os_code_size: u32,
    /// Offset of the data in the payload.
    pub os_data_offset: u32,
    /// Size of the data.
    pub os_data_size: u32,
    /// Number of app entries that follow.
    pub num_apps: u32,
}

const _: () = assert!(core::mem::size_of::<HsLoadHeaderV2>() == 20);
const _: () = assert!(core::mem::offset_of!(HsLoadHeaderV2, num_apps) == 16);

/// One app's code (nova-core `HsLoadHeaderV2App`).
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HsLoadHeaderV2App {
    /// Offset of the app's code in the payload.
    pub offset: u32,
    /// Length of the app's code.
    pub len: u32,
}

const _: () = assert!(core::mem::size_of::<HsLoadHeaderV2App>() == 8);

/// A copy into falcon memory: `len` bytes from payload offset `src_start` to `dst_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadTarget {
    /// Offset in the payload.
    pub src_start: u32,
    /// Offset in IMEM/DMEM.
    pub dst_start: u32,
    /// Bytes.
    pub len: u32,
}

/// Boot ROM parameters for a heavy-secure load (nova-core `FalconBromParams`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BromParams {
    /// Signature location relative to the data segment (`patch_loc - os_data_offset`).
    pub pkc_data_offset: u32,
    /// Engines the firmware may run on.
    pub engine_id_mask: u16,
    /// Microcode id.
    pub ucode_id: u8,
}

/// A booter (`booter_load`/`booter_unload`): SEC2 runs it to load (or unload) GSP-RM. Everything
/// the SEC2 load needs was checked at parse time.
#[derive(Debug, Clone, Copy)]
pub struct Booter<'a> {
    blob: BinBlob<'a>,
    signatures: &'a [u8],
    sig_count: u32,
    sig_size: usize,
    fuse_ver: u32,
    patch_loc: usize,
    /// Secure IMEM load: app 0's code.
    pub imem_sec: LoadTarget,
    /// DMEM load: the data segment.
    pub dmem: LoadTarget,
    /// Boot ROM parameters.
    pub brom: BromParams,
}

impl<'a> Booter<'a> {
    /// Parse a booter file and check every offset it contains.
    ///
    /// # Errors
    /// [`BinBlob::parse`]'s errors, [`BlobError::BadHeader`] (no `HsHeaderV2`), and
    /// [`BlobError::BadDescriptor`] for any offset, size or count that points outside the file or
    /// payload, or a zero app count.
    pub fn parse(file: &'a [u8]) -> Result<Self, BlobError> {
        let blob = BinBlob::parse(file)?;
        let hs: HsHeaderV2 = blob
            .read_at(blob.hdr.header_offset)
            .map_err(|_| BlobError::BadHeader)?;
        let patch_loc: u32 = blob.read_at(hs.patch_loc_offset)?;
        let patch_sig: u32 = blob.read_at(hs.patch_sig_offset)?;
        let sig_count: u32 = blob.read_at(hs.num_sig_offset)?;
        if hs.meta_data_size != size_u32::<HsSignatureParams>() {
            return Err(BlobError::BadDescriptor);
        }
        let params: HsSignatureParams = blob.read_at(hs.meta_data_offset)?;
        let load: HsLoadHeaderV2 = blob.read_at(hs.header_offset)?;
        let apps_len = load
            .num_apps
            .checked_mul(size_u32::<HsLoadHeaderV2App>())
            .and_then(|a| a.checked_add(size_u32::<HsLoadHeaderV2>()))
            .ok_or(BlobError::BadDescriptor)?;
        if load.num_apps == 0 || apps_len > hs.header_size {
            return Err(BlobError::BadDescriptor);
        }
        let app0: HsLoadHeaderV2App = blob.read_at(
            hs.header_offset
                .checked_add(size_u32::<HsLoadHeaderV2>())
                .ok_or(BlobError::BadDescriptor)?,
        )?;

        // No signatures (development boards): nothing to patch. Otherwise each of `sig_count`
        // signatures is `sig_prod_size / sig_count` bytes, from `sig_prod_offset + patch_sig`.
        let (signatures, sig_size) = match hs.sig_prod_size.checked_div(sig_count) {
            None => (&[][..], 0),
            Some(0) => return Err(BlobError::BadDescriptor),
            Some(size) => {
                let start = hs
                    .sig_prod_offset
                    .checked_add(patch_sig)
                    .ok_or(BlobError::BadDescriptor)?;
                let sigs = range(file, start, hs.sig_prod_size).ok_or(BlobError::BadDescriptor)?;
                (
                    sigs,
                    usize::try_from(size).map_err(|_| BlobError::BadDescriptor)?,
                )
            }
        };

        let payload = blob.payload.len();
        let fits = within(
            patch_loc,
            u32::try_from(sig_size).unwrap_or(u32::MAX),
            payload,
        ) && within(app0.offset, app0.len, payload)
            && within(load.os_data_offset, load.os_data_size, payload);
        if !fits {
            return Err(BlobError::BadDescriptor);
        }
        let brom = BromParams {
            pkc_data_offset: patch_loc
                .checked_sub(load.os_data_offset)
                .ok_or(BlobError::BadDescriptor)?,
            engine_id_mask: u16::try_from(params.engine_id_mask)
                .map_err(|_| BlobError::BadDescriptor)?,
            ucode_id: u8::try_from(params.ucode_id).map_err(|_| BlobError::BadDescriptor)?,
        };
        Ok(Self {
            blob,
            signatures,
            sig_count,
            sig_size,
            fuse_ver: params.fuse_ver,
            patch_loc: usize::try_from(patch_loc).map_err(|_| BlobError::BadDescriptor)?,
            imem_sec: LoadTarget {
                src_start: app0.offset,
                dst_start: 0,
                len: app0.len,
            },
            dmem: LoadTarget {
                src_start: load.os_data_offset,
                dst_start: 0,
                len: load.os_data_size,
            },
            brom,
        })
    }

    /// The unsigned payload.
    pub fn ucode(&self) -> &'a [u8] {
        self.blob.payload
    }

    /// Number of production signatures (0: unsigned, for development boards).
    pub fn signature_count(&self) -> u32 {
        self.sig_count
    }

    /// The signature for a chip whose fuse register reads `fuse_version` (nova-core booter.rs:
    /// 0 means the last signature, otherwise index `fuse_ver - fuse_version`). `None` when the
    /// booter is unsigned.
    ///
    /// # Errors
    /// [`BlobError::NoSignatureForFuse`] when the fuse is newer than the booter or the index is
    /// past the last signature.
    pub fn signature(&self, fuse_version: u32) -> Result<Option<&'a [u8]>, BlobError> {
        if self.sig_count == 0 {
            return Ok(None);
        }
        let index = if fuse_version == 0 {
            self.sig_count - 1
        } else {
            self.fuse_ver
                .checked_sub(fuse_version)
                .ok_or(BlobError::NoSignatureForFuse)?
        };
        let index = usize::try_from(index).map_err(|_| BlobError::NoSignatureForFuse)?;
        // `sig_size` is non-zero whenever `sig_count` is (checked at parse time).
        self.signatures
            .chunks_exact(self.sig_size.max(1))
            .nth(index)
            .map(Some)
            .ok_or(BlobError::NoSignatureForFuse)
    }

    /// Copy the payload into `dst` (the booter's DMA buffer) with the signature for
    /// `fuse_version` patched in; returns the number of bytes written.
    ///
    /// # Errors
    /// [`BlobError::BufferTooSmall`], or [`Booter::signature`]'s error.
    pub fn write_signed(&self, fuse_version: u32, dst: &mut [u8]) -> Result<usize, BlobError> {
        let payload = self.blob.payload;
        let out = dst
            .get_mut(..payload.len())
            .ok_or(BlobError::BufferTooSmall)?;
        out.copy_from_slice(payload);
        if let Some(sig) = self.signature(fuse_version)? {
            // Checked at parse time: patch_loc + sig_size lies inside the payload.
            let at = out
                .get_mut(self.patch_loc..)
                .and_then(|tail| tail.get_mut(..sig.len()))
                .ok_or(BlobError::BadDescriptor)?;
            at.copy_from_slice(sig);
        }
        Ok(payload.len())
    }
}

/// Fuzz entry point: run every parser of this module over `data` (as given, and copied into an
/// 8-byte-aligned buffer of up to 64 KiB), touching each accessor. Must never panic.
pub fn fuzz_parse(data: &[u8]) {
    #[repr(C, align(8))]
    struct Aligned([u8; 65536]);
    let mut buf = Aligned([0; 65536]);
    let n = data.len().min(buf.0.len());
    let aligned: &[u8] = match (buf.0.get_mut(..n), data.get(..n)) {
        (Some(dst), Some(src)) => {
            dst.copy_from_slice(src);
            dst
        }
        _ => &[],
    };
    for input in [data, aligned] {
        if let Ok(image) = GspImage::parse(input) {
            let _ = image.fwimage().len() + image.version().len();
            for name in image.section_names() {
                let _ = image.section(name);
            }
            for chip in Chipset::ALL {
                let _ = image.signature(chip);
            }
        }
        if let Ok(bl) = RiscvBootloader::parse(input) {
            let _ = (
                bl.ucode(),
                bl.code_offset(),
                bl.data_offset(),
                bl.manifest_offset(),
            );
        }
        if let Ok(booter) = Booter::parse(input) {
            let mut out = [0u8; 4096];
            for fuse in [0, 1, 2, u32::MAX] {
                let _ = booter.signature(fuse);
                let _ = booter.write_signed(fuse, &mut out);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use super::*;

    /// A synthetic GSP-like ELF64: `sections` in order, then `.shstrtab`, then the section
    /// headers. `tweak` may patch the finished header bytes.
    pub(crate) fn synth_elf(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = vec![0u8; 64];
        let mut shdrs: Vec<[u64; 8]> = vec![[0; 8]];
        let mut names = vec![0u8];
        let mut add = |out: &mut Vec<u8>, names: &mut Vec<u8>, name: &str, data: &[u8], ty: u64| {
            let name_off = names.len() as u64;
            names.extend_from_slice(name.as_bytes());
            names.push(0);
            let off = out.len() as u64;
            out.extend_from_slice(data);
            // sh_name|sh_type, flags, addr, offset, size, link|info, addralign, entsize
            shdrs.push([name_off | ty << 32, 0, 0, off, data.len() as u64, 0, 1, 0]);
        };
        for (name, data) in sections {
            add(&mut out, &mut names, name, data, 1);
        }
        let shstrndx = shdrs.len() as u16;
        let strtab_name = ".shstrtab";
        let mut all_names = names.clone();
        let name_off = all_names.len() as u64;
        all_names.extend_from_slice(strtab_name.as_bytes());
        all_names.push(0);
        let off = out.len() as u64;
        out.extend_from_slice(&all_names);
        shdrs.push([
            name_off | 3 << 32,
            0,
            0,
            off,
            all_names.len() as u64,
            0,
            1,
            0,
        ]);
        while out.len() % 8 != 0 {
            out.push(0);
        }
        let shoff = out.len() as u64;
        for sh in &shdrs {
            for w in sh {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2; // ELFCLASS64
        out[5] = 1; // little-endian
        out[6] = 1; // EV_CURRENT
        out[16..18].copy_from_slice(&ET_REL.to_le_bytes());
        out[18..20].copy_from_slice(&EM_RISCV.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[40..48].copy_from_slice(&shoff.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[58..60].copy_from_slice(&64u16.to_le_bytes());
        out[60..62].copy_from_slice(&(shdrs.len() as u16).to_le_bytes());
        out[62..64].copy_from_slice(&shstrndx.to_le_bytes());
        out
    }

    /// `bytes` in an 8-byte-aligned buffer (a `Vec<u8>` guarantees only 1).
    pub(crate) struct Aligned(Vec<u64>, usize);

    impl Aligned {
        pub(crate) fn new(bytes: &[u8]) -> Self {
            let mut words = vec![0u64; bytes.len().div_ceil(8) + 1];
            words.as_mut_bytes()[..bytes.len()].copy_from_slice(bytes);
            Self(words, bytes.len())
        }
        pub(crate) fn bytes(&self) -> &[u8] {
            &self.0.as_bytes()[..self.1]
        }
    }

    pub(crate) fn sample_image() -> Vec<u8> {
        synth_elf(&[
            (".fwimage", &[0xab; 5000]),
            (".fwversion", b"570.144\0"),
            (".fwsignature_tu10x", &[1; 0x100]),
            (".fwsignature_tu11x", &[2; 0x100]),
        ])
    }

    #[test]
    fn parses_a_synthetic_image() {
        let buf = Aligned::new(&sample_image());
        let img = GspImage::parse(buf.bytes()).unwrap();
        assert_eq!(img.fwimage(), &[0xab; 5000][..]);
        assert_eq!(img.version(), "570.144");
        assert_eq!(img.signature(Chipset::TU102), Ok(&[1u8; 0x100][..]));
        assert_eq!(img.signature(Chipset::GA100), Ok(&[1u8; 0x100][..]));
        assert_eq!(img.signature(Chipset::TU117), Ok(&[2u8; 0x100][..]));
        assert_eq!(img.signature(Chipset::GA102), Err(ImageError::NoSignature));
        let names: Vec<&str> = img.section_names().collect();
        assert_eq!(
            names,
            [
                "",
                ".fwimage",
                ".fwversion",
                ".fwsignature_tu10x",
                ".fwsignature_tu11x",
                ".shstrtab"
            ]
        );
        assert_eq!(img.section(".nope"), Ok(None));
    }

    fn parse_with(bytes: &[u8]) -> Result<(), ImageError> {
        GspImage::parse(Aligned::new(bytes).bytes()).map(|_| ())
    }

    #[test]
    fn header_errors() {
        let good = sample_image();
        let buf = Aligned::new(&good);
        let mut shifted = vec![0u8; good.len() + 1];
        shifted[1..].copy_from_slice(&good);
        let words = Aligned::new(&shifted);
        assert_eq!(
            GspImage::parse(&words.bytes()[1..]).map(|_| ()),
            Err(ImageError::Misaligned)
        );
        assert!(GspImage::parse(buf.bytes()).is_ok());
        assert_eq!(parse_with(b"not an elf at all"), Err(ImageError::NotElf64));
        assert_eq!(parse_with(&good[..63]), Err(ImageError::NotElf64));
        let mut bad = good.clone();
        bad[4] = 1; // ELFCLASS32
        assert_eq!(parse_with(&bad), Err(ImageError::NotElf64));
        let mut bad = good.clone();
        bad[5] = 2; // big-endian
        assert_eq!(parse_with(&bad), Err(ImageError::BigEndian));
        let mut bad = good.clone();
        bad[18] = 62; // x86-64
        assert_eq!(parse_with(&bad), Err(ImageError::NotRiscv));
        let mut bad = good.clone();
        bad[16] = 2; // ET_EXEC
        assert_eq!(parse_with(&bad), Err(ImageError::NotRelocatable));
        let mut bad = good.clone();
        bad[40..48].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert_eq!(parse_with(&bad), Err(ImageError::BadSectionTable));
    }

    #[test]
    fn section_errors() {
        assert_eq!(
            parse_with(&synth_elf(&[(".fwversion", b"570.144\0")])),
            Err(ImageError::NoFwImage)
        );
        assert_eq!(
            parse_with(&synth_elf(&[(".fwimage", &[]), (".fwversion", b"1\0")])),
            Err(ImageError::NoFwImage)
        );
        assert_eq!(
            parse_with(&synth_elf(&[(".fwimage", &[1])])),
            Err(ImageError::NoFwVersion)
        );
        for bad in [&b"\0"[..], b"", b"57\x01.1", b"\xff\xfe"] {
            assert_eq!(
                parse_with(&synth_elf(&[(".fwimage", &[1]), (".fwversion", bad)])),
                Err(ImageError::BadFwVersion)
            );
        }
        // .fwversion without its NUL is accepted.
        assert!(parse_with(&synth_elf(&[
            (".fwimage", &[1]),
            (".fwversion", b"535.113.01")
        ]))
        .is_ok());
        // A section whose size runs past the end of the file.
        let mut bad = sample_image();
        let shoff = u64::from_le_bytes(bad[40..48].try_into().unwrap()) as usize;
        let size_at = shoff + 64 + 32; // section 1 (.fwimage), sh_size
        bad[size_at..size_at + 8].copy_from_slice(&(1u64 << 32).to_le_bytes());
        assert_eq!(parse_with(&bad), Err(ImageError::BadSection));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let good = sample_image();
        let buf = Aligned::new(&good);
        for len in 0..good.len() {
            assert!(GspImage::parse(&buf.bytes()[..len]).is_err(), "len {len}");
        }
    }

    /// A synthetic bootloader with a descriptor of `desc_words` u32 (19 for version 4, 21 for 5).
    pub(crate) fn synth_bootloader(desc_words: usize, payload: usize) -> Vec<u8> {
        let header_offset = 24u32;
        let data_offset = header_offset + 4 * desc_words as u32;
        let mut f = Vec::new();
        for w in [BIN_MAGIC, 1, 0, header_offset, data_offset, payload as u32] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        let mut desc = [0u32; 21];
        desc[0] = 5; // version
        desc[7] = 0xc0ffee; // appVersion
        desc[8] = 0; // manifestOffset
        desc[9] = 0x80; // manifestSize
        desc[10] = 0x80; // monitorDataOffset
        desc[11] = 0x100; // monitorDataSize
        desc[12] = 0x180; // monitorCodeOffset
        desc[13] = 0x80; // monitorCodeSize
        desc[19] = 0x6000; // fbReservedSize
        for w in &desc[..desc_words] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        f.extend((0..payload).map(|i| i as u8));
        f
    }

    #[test]
    fn bootloader_descriptor_versions() {
        let v5 = synth_bootloader(21, 0x200);
        let bl = RiscvBootloader::parse(&v5).unwrap();
        assert_eq!(bl.ucode().len(), 0x200);
        assert_eq!(bl.ucode()[1], 1);
        assert_eq!(
            (
                bl.code_offset(),
                bl.data_offset(),
                bl.manifest_offset(),
                bl.app_version()
            ),
            (0x180, 0x80, 0, 0xc0ffee)
        );
        assert_eq!(bl.desc().fbReservedSize, 0x6000);
        // Version 4 stops after swbromDataSize: fbReservedSize must read as zero, not as code.
        let v4 = synth_bootloader(19, 0x200);
        let bl = RiscvBootloader::parse(&v4).unwrap();
        assert_eq!(bl.desc().fbReservedSize, 0);
        assert_eq!(bl.code_offset(), 0x180);
    }

    #[test]
    fn bootloader_errors() {
        let good = synth_bootloader(21, 0x200);
        assert_eq!(
            RiscvBootloader::parse(&good[..20]).map(|_| ()),
            Err(BlobError::Truncated)
        );
        let mut bad = good.clone();
        bad[0] = 0xdf;
        assert_eq!(
            RiscvBootloader::parse(&bad).map(|_| ()),
            Err(BlobError::BadMagic)
        );
        // Payload past the end of the file.
        assert_eq!(
            RiscvBootloader::parse(&good[..good.len() - 1]).map(|_| ()),
            Err(BlobError::BadPayload)
        );
        // Descriptor shorter than the 14 fields the boot needs.
        assert_eq!(
            RiscvBootloader::parse(&synth_bootloader(13, 0x200)).map(|_| ()),
            Err(BlobError::BadHeader)
        );
        // Monitor code running past the payload.
        assert_eq!(
            RiscvBootloader::parse(&synth_bootloader(21, 0x1ff)).map(|_| ()),
            Err(BlobError::BadDescriptor)
        );
        // Empty payload.
        let mut empty = good.clone();
        empty[20..24].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            RiscvBootloader::parse(&empty).map(|_| ()),
            Err(BlobError::BadPayload)
        );
    }

    /// A synthetic booter: two 16-byte signatures, fuse_ver 2, one app, payload 0x80 bytes.
    pub(crate) fn synth_booter() -> Vec<u8> {
        let mut f = vec![0u8; 0x180];
        let put = |f: &mut Vec<u8>, at: usize, words: &[u32]| {
            for (i, w) in words.iter().enumerate() {
                f[at + 4 * i..at + 4 * i + 4].copy_from_slice(&w.to_le_bytes());
            }
        };
        put(&mut f, 0, &[BIN_MAGIC, 1, 0x180, 0x18, 0x100, 0x80]);
        // HsHeaderV2: sigs @0x80 (0x20), patch_loc @0x3c, patch_sig @0x40, meta @0x44 (12),
        // num_sig @0x50, load header @0x54 (28).
        put(
            &mut f,
            0x18,
            &[0x80, 0x20, 0x3c, 0x40, 0x44, 12, 0x50, 0x54, 28],
        );
        put(&mut f, 0x3c, &[0x20, 0]); // patch location, patch_sig
        put(&mut f, 0x44, &[2, 1, 3]); // fuse_ver, engine_id_mask, ucode_id
        put(&mut f, 0x50, &[2]); // num_sig
        put(&mut f, 0x54, &[0, 0x10, 0x10, 0x40, 1, 0, 0x10]); // load header + app 0
        f[0x80..0x90].fill(0x11);
        f[0x90..0xa0].fill(0x22);
        f[0x100..].fill(0xee);
        f
    }

    #[test]
    fn booter_parses_and_patches() {
        let file = synth_booter();
        let b = Booter::parse(&file).unwrap();
        assert_eq!(b.ucode(), &[0xee; 0x80][..]);
        assert_eq!(b.signature_count(), 2);
        assert_eq!(
            b.imem_sec,
            LoadTarget {
                src_start: 0,
                dst_start: 0,
                len: 0x10
            }
        );
        assert_eq!(
            b.dmem,
            LoadTarget {
                src_start: 0x10,
                dst_start: 0,
                len: 0x40
            }
        );
        assert_eq!(
            b.brom,
            BromParams {
                pkc_data_offset: 0x10,
                engine_id_mask: 1,
                ucode_id: 3
            }
        );
        // Fuse 0: the last signature; fuse 2: index 0; fuse 1: index 1; fuse 3: none.
        assert_eq!(b.signature(0), Ok(Some(&[0x22; 16][..])));
        assert_eq!(b.signature(2), Ok(Some(&[0x11; 16][..])));
        assert_eq!(b.signature(1), Ok(Some(&[0x22; 16][..])));
        assert_eq!(b.signature(3), Err(BlobError::NoSignatureForFuse));
        let mut dst = [0u8; 0x100];
        assert_eq!(b.write_signed(2, &mut dst), Ok(0x80));
        assert_eq!(&dst[..0x20], &[0xee; 0x20][..]);
        assert_eq!(&dst[0x20..0x30], &[0x11; 16][..]);
        assert_eq!(&dst[0x30..0x80], &[0xee; 0x50][..]);
        assert_eq!(dst[0x80], 0);
        assert_eq!(
            b.write_signed(2, &mut dst[..0x7f]),
            Err(BlobError::BufferTooSmall)
        );
        assert_eq!(
            b.write_signed(3, &mut dst),
            Err(BlobError::NoSignatureForFuse)
        );
    }

    #[test]
    fn booter_errors() {
        let good = synth_booter();
        let bad_word = |at: usize, v: u32| {
            let mut f = good.clone();
            f[at..at + 4].copy_from_slice(&v.to_le_bytes());
            Booter::parse(&f).map(|_| ())
        };
        assert_eq!(bad_word(0x0c, 0x1000), Err(BlobError::BadHeader)); // header_offset
        assert_eq!(bad_word(0x18 + 8, 0x1000), Err(BlobError::BadDescriptor)); // patch_loc_offset
        assert_eq!(bad_word(0x18 + 20, 8), Err(BlobError::BadDescriptor)); // meta_data_size
        assert_eq!(bad_word(0x3c, 0x78), Err(BlobError::BadDescriptor)); // patch past payload
        assert_eq!(bad_word(0x3c, 0x8), Err(BlobError::BadDescriptor)); // patch below data
        assert_eq!(bad_word(0x48, 0x1_0000), Err(BlobError::BadDescriptor)); // engine mask
        assert_eq!(bad_word(0x50, 64), Err(BlobError::BadDescriptor)); // 0x20 / 64 = 0 bytes
        assert_eq!(bad_word(0x18 + 4, 0x1000), Err(BlobError::BadDescriptor)); // sigs past end
        assert_eq!(bad_word(0x64, 0), Err(BlobError::BadDescriptor)); // num_apps
        assert_eq!(bad_word(0x64, 3), Err(BlobError::BadDescriptor)); // apps past header_size
        assert_eq!(bad_word(0x6c, 0x100), Err(BlobError::BadDescriptor)); // app 0 past payload
                                                                          // No signatures: unsigned, copied as is.
        let mut f = good.clone();
        f[0x50..0x54].copy_from_slice(&0u32.to_le_bytes());
        let b = Booter::parse(&f).unwrap();
        assert_eq!(b.signature(5), Ok(None));
        let mut dst = [0u8; 0x80];
        assert_eq!(b.write_signed(0, &mut dst), Ok(0x80));
        assert_eq!(dst, [0xee; 0x80]);
    }

    /// xorshift64: deterministic pseudo-random bytes for the fuzz smoke test.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn fuzz_smoke_never_panics() {
        let seeds = [
            sample_image(),
            synth_bootloader(21, 0x200),
            synth_bootloader(19, 0x40),
            synth_booter(),
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..3000 {
            let mut input = seeds[round % seeds.len()].clone();
            // Flip a few bytes, sometimes write a random word at a random offset, sometimes cut.
            for _ in 0..(rng.next() % 8) {
                let at = (rng.next() as usize) % input.len();
                input[at] ^= rng.next() as u8;
            }
            if rng.next() % 2 == 0 {
                let at = (rng.next() as usize) % input.len().saturating_sub(4).max(1);
                let w = (rng.next() as u32).to_le_bytes();
                for (i, b) in w.iter().enumerate() {
                    if let Some(x) = input.get_mut(at + i) {
                        *x = *b;
                    }
                }
            }
            if rng.next() % 4 == 0 {
                let keep = (rng.next() as usize) % (input.len() + 1);
                input.truncate(keep);
            }
            fuzz_parse(&input);
        }
        // Pure noise too.
        for len in [0usize, 1, 24, 64, 100, 4096] {
            let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            fuzz_parse(&noise);
        }
    }
}
