//! What the firmware side checks while the driver boots it, and the boot phases.
//!
//! The model plays, in order (reference section 1), the parts a real GPU runs:
//! 1. **FWSEC-FRTS**: the driver starts the GSP falcon (`CPUCTL.STARTCPU`) after resetting it,
//!    with the sysmem flush page registered. The model then creates WPR2 over the FRTS region
//!    (1 MiB ending at the VGA workspace aligned down to 128 KiB; no display, so the workspace is
//!    the last MiB of FB), clears `NV_PBUS_SW_SCRATCH(0xe)`, and halts the falcon.
//! 2. **Booter**: the driver resets the GSP, puts the LibOS argument page's address in GSP
//!    MBOX0/1, resets SEC2, puts the `GspFwWprMeta` address in SEC2 MBOX0/1 and starts SEC2. The
//!    model validates the meta against the FB layout rules ([`check_wpr_meta`], computed here
//!    independently of the driver's code), walks the radix3 map through DMA and compares every
//!    page with the firmware image it was given ([`check_radix3`]), compares the signature, and
//!    answers SEC2 MBOX0 = 0 (or an error code) with SEC2 halted; GSP-RM then starts (RISC-V
//!    active).
//! 3. **GSP-RM init**: LibOS arguments ([`check_libos`]), RMARGS ([`check_rmargs`]) and the queue
//!    region ([`check_queue_region`]) are validated, the status queue is initialised, the first
//!    two commands must be `GSP_SET_SYSTEM_INFO` then `SET_REGISTRY`, and
//!    `GSP_RUN_CPU_SEQUENCER` is sent with [`sequencer_buffer`].
//! 4. **CORE_RESUME**: the driver runs the buffer; its `CORE_RESUME` resets the GSP, rewrites
//!    the mailboxes and starts SEC2 again. The model checks that the buffer's register writes
//!    landed ([`sequencer_done`]), sets `NV_PGC6_BSI_SECURE_SCRATCH_14` bit 26, SEC2 MBOX0 = 0,
//!    RISC-V active, and sends `GSP_INIT_DONE`.
//!
//! Any deviation is a [`BootError`]: logged as `gsp_model: ...`, and the boot stops there, as
//! real firmware would hang.
use crate::bar0::{Bar0, SEQ_SCRATCH};
use crate::phys::Memory;
use gsp::chip::{Chipset, Libos};
use gsp::cmdq::{CMDQ_OFFSET, GSP_PAGE_SIZE, PTE_COUNT, QUEUE_REGION_SIZE, STATQ_OFFSET};
use gsp::elf::{GspImage, ImageError};
use gsp::fw::current::args::GSP_ARGUMENTS_CACHED;
use gsp::fw::current::libos::{
    id8, LibosMemoryRegionInitArgument, LIBOS_MEMORY_REGION_CONTIGUOUS,
    LIBOS_MEMORY_REGION_LOC_SYSMEM, LOG_BUFFER_PAGES, LOG_BUFFER_SIZE, REGION_NAMES,
};
use gsp::fw::current::sequencer::GSP_SEQ_BUF_OPCODE;
use gsp::fw::current::wpr::{GspFwWprMeta, GSP_FW_WPR_META_MAGIC, GSP_FW_WPR_META_REVISION};
use gsp::radix3::{self, DmaRead, Radix3};
use gsp::regs::{Falcon, NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_0_GFW_BOOT, NV_PMC_BOOT_42};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Where the boot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// After power-on (or FLR): GFW boot done, nothing run yet.
    PowerOn,
    /// FWSEC-FRTS ran: WPR2 covers FRTS.
    FrtsDone,
    /// The booter verified the image and GSP-RM runs; it waits for the boot commands.
    RmInit,
    /// `GSP_RUN_CPU_SEQUENCER` was sent; waiting for its `CORE_RESUME`.
    AwaitResume,
    /// `GSP_INIT_DONE` was sent: RPCs are served.
    Running,
    /// The boot failed (a [`BootError`] was logged); nothing more happens until a reset.
    Failed,
    /// GSP-RM crashed or stopped (a fault knob); nothing more happens until a reset.
    Halted,
}

/// Why the boot stopped. Discriminants start at 1; each logs one descriptive line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BootError {
    /// A falcon was reset before the sysmem flush page was registered.
    FlushPageNotRegistered = 1,
    /// The GSP falcon's CPU was started outside FWSEC-FRTS.
    UnexpectedGspStart {
        /// The phase it happened in.
        phase: Phase,
    } = 2,
    /// SEC2 was started in a phase where no booter run is expected.
    UnexpectedSec2Start {
        /// The phase it happened in.
        phase: Phase,
    } = 3,
    /// A falcon was started without having been reset since it last ran.
    NotReset {
        /// Which falcon.
        falcon: Falcon,
    } = 4,
    /// A DMA read the boot needs hit unbacked memory.
    Dma {
        /// What was being read.
        what: &'static str,
        /// Its address.
        addr: u64,
    } = 5,
    /// A `GspFwWprMeta` field differs from what the layout rules give.
    WprMeta {
        /// The field.
        field: &'static str,
        /// What the rules give.
        expected: u64,
        /// What the driver wrote.
        got: u64,
    } = 6,
    /// The radix3 map does not reproduce the firmware image.
    Radix3 {
        /// The image page where it went wrong.
        page: usize,
        /// What went wrong.
        what: &'static str,
    } = 7,
    /// The signature in system memory is not the chip's `.fwsignature_*` section.
    Signature = 8,
    /// The firmware image handed to the model does not parse.
    Firmware(ImageError) = 9,
    /// A LibOS argument entry is wrong.
    Libos {
        /// Entry index.
        index: usize,
        /// What is wrong.
        what: &'static str,
        /// The offending value.
        value: u64,
    } = 10,
    /// `GSP_ARGUMENTS_CACHED` is wrong.
    Rmargs {
        /// What is wrong.
        what: &'static str,
        /// The offending value.
        value: u64,
    } = 11,
    /// The shared queue region is wrong.
    Queues {
        /// What is wrong.
        what: &'static str,
        /// The offending value.
        value: u64,
    } = 12,
    /// A boot command (SET_SYSTEM_INFO, SET_REGISTRY) is missing, out of order or malformed.
    BootCommand {
        /// What is wrong.
        what: &'static str,
        /// The offending value.
        value: u64,
    } = 13,
    /// The sequencer's `CORE_RESUME` handshake is wrong.
    Resume {
        /// What is wrong.
        what: &'static str,
        /// The offending value.
        value: u64,
    } = 14,
    /// The GSP falcon was reset while GSP-RM ran (the GPU needs a reset before it boots again).
    GspResetWhileRunning = 15,
}

impl BootError {
    /// The non-zero code the booter leaves in SEC2 MBOX0 for this error.
    pub fn code(&self) -> u32 {
        match self {
            Self::FlushPageNotRegistered => 1,
            Self::UnexpectedGspStart { .. } => 2,
            Self::UnexpectedSec2Start { .. } => 3,
            Self::NotReset { .. } => 4,
            Self::Dma { .. } => 5,
            Self::WprMeta { .. } => 6,
            Self::Radix3 { .. } => 7,
            Self::Signature => 8,
            Self::Firmware(_) => 9,
            Self::Libos { .. } => 10,
            Self::Rmargs { .. } => 11,
            Self::Queues { .. } => 12,
            Self::BootCommand { .. } => 13,
            Self::Resume { .. } => 14,
            Self::GspResetWhileRunning => 15,
        }
    }
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::FlushPageNotRegistered => {
                write!(
                    f,
                    "a falcon was reset before the sysmem flush page was registered"
                )
            }
            Self::UnexpectedGspStart { phase } => {
                write!(
                    f,
                    "GSP falcon started in phase {phase:?} (only FWSEC-FRTS runs on it)"
                )
            }
            Self::UnexpectedSec2Start { phase } => write!(f, "SEC2 started in phase {phase:?}"),
            Self::NotReset { falcon } => write!(f, "{falcon:?} falcon started without a reset"),
            Self::Dma { what, addr } => write!(f, "{what} at {addr:#x} is not in any DMA region"),
            Self::WprMeta {
                field,
                expected,
                got,
            } => {
                write!(
                    f,
                    "GspFwWprMeta.{field} is {got:#x}, the layout rules give {expected:#x}"
                )
            }
            Self::Radix3 { page, what } => write!(f, "radix3 map, image page {page}: {what}"),
            Self::Signature => write!(f, "the signature in sysmem is not the chip's section"),
            Self::Firmware(e) => write!(f, "the model's firmware image does not parse: {e:?}"),
            Self::Libos { index, what, value } => {
                write!(f, "LibOS argument {index}: {what} ({value:#x})")
            }
            Self::Rmargs { what, value } => write!(f, "GSP_ARGUMENTS_CACHED: {what} ({value:#x})"),
            Self::Queues { what, value } => write!(f, "message queues: {what} ({value:#x})"),
            Self::BootCommand { what, value } => write!(f, "boot command: {what} ({value:#x})"),
            Self::Resume { what, value } => write!(f, "CORE_RESUME: {what} ({value:#x})"),
            Self::GspResetWhileRunning => {
                write!(
                    f,
                    "GSP falcon reset while GSP-RM runs; reset the GPU before booting again"
                )
            }
        }
    }
}

const fn align_down(v: u64, a: u64) -> u64 {
    v & !(a - 1)
}

/// The VGA workspace (no display: the last MiB of FB).
pub const fn vga_workspace(fb_size: u64) -> (u64, u64) {
    (fb_size.saturating_sub(MIB), MIB)
}

/// The FRTS region FWSEC-FRTS protects: 1 MiB ending at the VGA workspace aligned down to
/// 128 KiB (reference 1.7).
pub const fn frts_region(fb_size: u64) -> (u64, u64) {
    let end = align_down(vga_workspace(fb_size).0, 128 * KIB);
    (end.saturating_sub(MIB), end)
}

/// The WPR2 heap size for 570.144 (reference 1.7): carveout + 8 MiB base RM + 96 MiB client
/// allocations + 96 KiB per started GiB of FB, rounded up to 1 MiB, clamped to the LibOS
/// version's [min, max) (upper bound exclusive, as nova clamps).
pub fn wpr_heap_size(chip: Chipset, fb_size: u64) -> u64 {
    let (carveout, min, max) = match chip.libos() {
        Libos::V2 => (0, 64 * MIB, 256 * MIB),
        Libos::V3 => (22 * MIB, 88 * MIB, 280 * MIB),
    };
    let per_gb = 96 * KIB * fb_size.div_ceil(GIB);
    let size = (carveout + 8 * MIB + 96 * MIB + per_gb).div_ceil(MIB) * MIB;
    size.clamp(min, max - 1)
}

/// Every field of `GspFwWprMeta` the layout rules fix, for an image of `elf_size` and a
/// bootloader of `boot_size` on `chip` with `fb_size` of FB. Returns (field, value) pairs.
fn expected_layout(
    chip: Chipset,
    fb_size: u64,
    elf_size: u64,
    boot_size: u64,
) -> [(&'static str, u64); 16] {
    let (vga, vga_size) = vga_workspace(fb_size);
    let (frts, frts_end) = frts_region(fb_size);
    let boot = align_down(frts.saturating_sub(boot_size), 4 * KIB);
    let elf = align_down(boot.saturating_sub(elf_size), 64 * KIB);
    let heap = align_down(elf.saturating_sub(wpr_heap_size(chip, fb_size)), MIB);
    let heap_end = align_down(elf, MIB);
    let wpr = align_down(
        heap.saturating_sub(core::mem::size_of::<GspFwWprMeta>() as u64),
        MIB,
    );
    let non_wpr = wpr.saturating_sub(MIB);
    [
        ("fbSize", fb_size),
        ("vgaWorkspaceOffset", vga),
        ("vgaWorkspaceSize", vga_size),
        ("frtsOffset", frts),
        ("frtsSize", frts_end - frts),
        ("bootBinOffset", boot),
        ("gspFwOffset", elf),
        ("gspFwHeapOffset", heap),
        ("gspFwHeapSize", heap_end.saturating_sub(heap)),
        ("gspFwWprStart", wpr),
        ("nonWprHeapOffset", non_wpr),
        ("nonWprHeapSize", MIB),
        ("gspFwRsvdStart", non_wpr),
        ("gspFwWprEnd", align_down(vga, 128 * KIB)),
        ("bootCount", 0),
        ("gspFwHeapVfPartitionCount", 0),
    ]
}

fn meta_field(m: &GspFwWprMeta, name: &str) -> u64 {
    match name {
        "fbSize" => m.fbSize,
        "vgaWorkspaceOffset" => m.vgaWorkspaceOffset,
        "vgaWorkspaceSize" => m.vgaWorkspaceSize,
        "frtsOffset" => m.frtsOffset,
        "frtsSize" => m.frtsSize,
        "bootBinOffset" => m.bootBinOffset,
        "gspFwOffset" => m.gspFwOffset,
        "gspFwHeapOffset" => m.gspFwHeapOffset,
        "gspFwHeapSize" => m.gspFwHeapSize,
        "gspFwWprStart" => m.gspFwWprStart,
        "nonWprHeapOffset" => m.nonWprHeapOffset,
        "nonWprHeapSize" => m.nonWprHeapSize,
        "gspFwRsvdStart" => m.gspFwRsvdStart,
        "gspFwWprEnd" => m.gspFwWprEnd,
        "bootCount" => m.bootCount,
        "gspFwHeapVfPartitionCount" => u64::from(m.gspFwHeapVfPartitionCount),
        _ => u64::MAX,
    }
}

fn field(field: &'static str, expected: u64, got: u64) -> Result<(), BootError> {
    if expected == got {
        Ok(())
    } else {
        Err(BootError::WprMeta {
            field,
            expected,
            got,
        })
    }
}

/// Read a `T` from system memory.
fn read_sys<T: FromZeros + IntoBytes + zerocopy::FromBytes>(
    mem: &Memory,
    what: &'static str,
    addr: u64,
) -> Result<T, BootError> {
    let mut v = T::new_zeroed();
    mem.sys
        .read(addr, v.as_mut_bytes())
        .map_err(|_| BootError::Dma { what, addr })?;
    Ok(v)
}

/// Compare `len` bytes of system memory at `addr` with `want`.
fn sys_equals(mem: &Memory, addr: u64, want: &[u8]) -> Result<bool, BootError> {
    // A page of words, so that `same` can compare them as words.
    let mut words = [0u64; 512];
    let buf = words.as_mut_bytes();
    for (i, chunk) in want.chunks(buf.len()).enumerate() {
        // CAST: usize to u64 is lossless.
        let at = addr.wrapping_add((i * buf.len()) as u64);
        let got = buf.get_mut(..chunk.len()).unwrap_or_default();
        mem.sys.read(at, got).map_err(|_| BootError::Dma {
            what: "firmware data",
            addr: at,
        })?;
        if !same(got, chunk) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `a == b`, a word at a time where both are word-aligned. Slice equality is `memcmp`, which a
/// `no_std` target gets from compiler-builtins as a loop over bytes: on seL4 (aarch64) comparing
/// the 62 MB firmware image with the radix3 pages took 460 of the GSP boot's 494 ms.
fn same(a: &[u8], b: &[u8]) -> bool {
    match (<[u64]>::ref_from_bytes(a), <[u64]>::ref_from_bytes(b)) {
        // No early exit: a loop that stops at the first difference is what LLVM turns back into
        // a `memcmp` call.
        (Ok(x), Ok(y)) => {
            x.len() == y.len() && x.iter().zip(y).fold(0, |d, (p, q)| d | (p ^ q)) == 0
        }
        _ => a == b,
    }
}

/// Read the meta at `addr` and check it against the layout rules, the image, and the FRTS
/// region FWSEC created. Returns the meta.
///
/// # Errors
/// The first [`BootError`] found.
pub fn check_wpr_meta(
    mem: &Memory,
    addr: u64,
    chip: Chipset,
    fb_size: u64,
    image: &GspImage<'_>,
    frts: (u64, u64),
) -> Result<GspFwWprMeta, BootError> {
    let m: GspFwWprMeta = read_sys(mem, "GspFwWprMeta", addr)?;
    field("magic", GSP_FW_WPR_META_MAGIC, m.magic)?;
    field("revision", GSP_FW_WPR_META_REVISION, m.revision)?;
    // CAST: usize to u64 is lossless.
    field(
        "sizeOfRadix3Elf",
        image.fwimage().len() as u64,
        m.sizeOfRadix3Elf,
    )?;
    let sig = image.signature(chip).map_err(BootError::Firmware)?;
    // CAST: usize to u64 is lossless.
    field("sizeOfSignature", sig.len() as u64, m.sizeOfSignature)?;
    if m.sizeOfBootloader == 0
        || !mem
            .sys
            .is_backed(m.sysmemAddrOfBootloader, m.sizeOfBootloader)
    {
        return Err(BootError::Dma {
            what: "bootloader",
            addr: m.sysmemAddrOfBootloader,
        });
    }
    for (name, off) in [
        ("bootloaderCodeOffset", m.bootloaderCodeOffset),
        ("bootloaderDataOffset", m.bootloaderDataOffset),
        ("bootloaderManifestOffset", m.bootloaderManifestOffset),
    ] {
        if off >= m.sizeOfBootloader {
            return Err(BootError::WprMeta {
                field: name,
                expected: m.sizeOfBootloader,
                got: off,
            });
        }
    }
    for (name, want) in expected_layout(chip, fb_size, m.sizeOfRadix3Elf, m.sizeOfBootloader) {
        field(name, want, meta_field(&m, name))?;
    }
    field(
        "frtsOffset (WPR2 created by FWSEC-FRTS)",
        frts.0,
        m.frtsOffset,
    )?;
    if !sys_equals(mem, m.sysmemAddrOfSignature, sig)? {
        return Err(BootError::Signature);
    }
    check_radix3(mem, m.sysmemAddrOfRadix3Elf, image.fwimage())?;
    Ok(m)
}

/// [`DmaRead`] over system memory.
struct SysRead<'m>(&'m Memory);

impl DmaRead for SysRead<'_> {
    fn read_u64(&mut self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.0.sys.read(addr, &mut b).ok()?;
        Some(u64::from_le_bytes(b))
    }
}

/// Walk the radix3 map at `level0` and compare every page it names with `image`.
///
/// # Errors
/// [`BootError::Radix3`] for a bad table or a page whose bytes differ.
pub fn check_radix3(mem: &Memory, level0: u64, image: &[u8]) -> Result<(), BootError> {
    // CAST: usize to u64 is lossless.
    let map = Radix3 {
        level0,
        image_len: image.len() as u64,
    };
    let mut bad: Option<BootError> = None;
    let mut visit = |page: usize, addr: u64| {
        if bad.is_some() {
            return;
        }
        let start = page * radix3::PAGE_SIZE;
        let want = image
            .get(start..(start + radix3::PAGE_SIZE).min(image.len()))
            .unwrap_or_default();
        match sys_equals(mem, addr, want) {
            Ok(true) => {}
            Ok(false) => {
                bad = Some(BootError::Radix3 {
                    page,
                    what: "page content differs from the image",
                })
            }
            Err(_) => {
                bad = Some(BootError::Radix3 {
                    page,
                    what: "page not in any DMA region",
                })
            }
        }
    };
    let pages =
        radix3::walk(&mut SysRead(mem), map, &mut visit).map_err(|e| BootError::Radix3 {
            page: 0,
            what: match e {
                radix3::Radix3Error::Unreadable => "a table page is not in any DMA region",
                radix3::Radix3Error::BadEntry => "a table entry is not a 4 KiB-aligned address",
                _ => "the image length gives no valid map",
            },
        })?;
    if let Some(e) = bad {
        return Err(e);
    }
    if pages != image.len().div_ceil(radix3::PAGE_SIZE) {
        return Err(BootError::Radix3 {
            page: pages,
            what: "wrong number of image pages",
        });
    }
    Ok(())
}

/// Check the LibOS argument page at `addr`; returns the RMARGS address.
///
/// # Errors
/// [`BootError::Libos`] / [`BootError::Dma`].
pub fn check_libos(mem: &Memory, addr: u64) -> Result<u64, BootError> {
    let page = GSP_PAGE_SIZE as u64;
    if addr == 0 || addr & (page - 1) != 0 {
        return Err(BootError::Libos {
            index: 0,
            what: "argument page address (GSP MBOX1:MBOX0) is not page aligned",
            value: addr,
        });
    }
    let args: [LibosMemoryRegionInitArgument; 5] = read_sys(mem, "LibOS argument page", addr)?;
    let mut rmargs = 0;
    for (index, (a, name)) in args.iter().zip(REGION_NAMES).enumerate() {
        let bad = |what, value| Err(BootError::Libos { index, what, value });
        if a.id8 != id8(name) {
            return bad(
                "region name out of order (want LOGINIT, LOGINTR, LOGRM, RMARGS)",
                a.id8,
            );
        }
        if a.kind != LIBOS_MEMORY_REGION_CONTIGUOUS || a.loc != LIBOS_MEMORY_REGION_LOC_SYSMEM {
            return bad(
                "kind/loc must be CONTIGUOUS/SYSMEM",
                u64::from(a.kind) << 8 | u64::from(a.loc),
            );
        }
        if a.pa & (page - 1) != 0 || a.size == 0 || a.size & (page - 1) != 0 {
            return bad("region not page aligned and a page multiple", a.pa);
        }
        if !mem.sys.is_backed(a.pa, a.size) {
            return bad("region not in any DMA region", a.pa);
        }
        if name == "RMARGS" {
            rmargs = a.pa;
            continue;
        }
        // CAST: usize to u64 is lossless.
        if a.size != LOG_BUFFER_SIZE as u64 {
            return bad("log buffer size", a.size);
        }
        let ptes: [u64; 1 + LOG_BUFFER_PAGES] = read_sys(mem, "log buffer", a.pa)?;
        for (i, &pte) in ptes.iter().enumerate().skip(1) {
            // CAST: i < 17.
            if pte != a.pa + (i as u64 - 1) * page {
                return bad("log buffer page table does not map the buffer itself", pte);
            }
        }
        if ptes.first().copied() != Some(0) {
            return bad(
                "log buffer put pointer not zero",
                ptes.first().copied().unwrap_or(0),
            );
        }
    }
    if args.get(4).is_some_and(|a| a.id8 != 0) {
        return Err(BootError::Libos {
            index: 4,
            what: "entry after RMARGS not zero",
            value: 0,
        });
    }
    Ok(rmargs)
}

/// Check `GSP_ARGUMENTS_CACHED` at `addr`; returns the queue region's address.
///
/// # Errors
/// [`BootError::Rmargs`] / [`BootError::Dma`].
pub fn check_rmargs(mem: &Memory, addr: u64) -> Result<u64, BootError> {
    let a: GSP_ARGUMENTS_CACHED = read_sys(mem, "RMARGS", addr)?;
    let q = a.messageQueueInitArguments;
    let bad = |what, value| Err(BootError::Rmargs { what, value });
    // CAST: the queue constants are small.
    if q.pageTableEntryCount != PTE_COUNT as u32 {
        return bad("pageTableEntryCount", u64::from(q.pageTableEntryCount));
    }
    if q.cmdQueueOffset != CMDQ_OFFSET as u64 || q.statQueueOffset != STATQ_OFFSET as u64 {
        return bad(
            "queue offsets (want 0x1000 / 0x41000)",
            q.cmdQueueOffset << 32 | q.statQueueOffset,
        );
    }
    if a.srInitArguments.as_bytes().iter().any(|&b| b != 0) || a.gpuInstance != 0 {
        return bad(
            "srInitArguments/gpuInstance must be zero on a cold boot",
            u64::from(a.gpuInstance),
        );
    }
    if a.bDmemStack != 1 {
        return bad("bDmemStack must be 1", u64::from(a.bDmemStack));
    }
    if a.profilerArgs.size != 0 && !mem.sys.is_backed(a.profilerArgs.pa, a.profilerArgs.size) {
        return bad("profiler buffer not in any DMA region", a.profilerArgs.pa);
    }
    Ok(q.sharedMemPhysAddr)
}

/// Check the shared queue region at `base`: backed, and a PTE page that lists its own pages.
/// The model requires them contiguous (the driver allocates one DMA buffer).
///
/// # Errors
/// [`BootError::Queues`] / [`BootError::Dma`].
pub fn check_queue_region(mem: &Memory, base: u64) -> Result<(), BootError> {
    // CAST: usize to u64 is lossless.
    if base & (GSP_PAGE_SIZE as u64 - 1) != 0 || !mem.sys.is_backed(base, QUEUE_REGION_SIZE as u64)
    {
        return Err(BootError::Queues {
            what: "region not page aligned or not in one DMA region",
            value: base,
        });
    }
    let ptes: [u64; PTE_COUNT] = read_sys(mem, "queue PTE page", base)?;
    for (i, &pte) in ptes.iter().enumerate() {
        // CAST: i < 0x81.
        if pte != base + (i * GSP_PAGE_SIZE) as u64 {
            return Err(BootError::Queues {
                what: "PTE page entry does not name the region's own page",
                value: pte,
            });
        }
    }
    Ok(())
}

/// `GSP_RUN_CPU_SEQUENCER`'s command buffer, shaped like real firmware's: register writes and a
/// read-modify-write the model later checks, a poll, a store, a delay, then `CORE_RESUME`.
pub fn sequencer_buffer() -> [u32; 19] {
    use GSP_SEQ_BUF_OPCODE::*;
    [
        REG_WRITE as u32,
        SEQ_SCRATCH[0],
        0x5eed_0001,
        REG_MODIFY as u32,
        SEQ_SCRATCH[0],
        0x0000_ff00,
        0x0000_4200,
        REG_POLL as u32,
        NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_0_GFW_BOOT::OFFSET,
        0xff,
        0xff,
        0,
        0,
        REG_STORE as u32,
        NV_PMC_BOOT_42::OFFSET,
        0,
        DELAY_US as u32,
        10,
        CORE_RESUME as u32,
    ]
}

/// Whether the buffer's register effects landed before `CORE_RESUME` (write then modify:
/// 0x5eed_4201 in `NV_PBUS_SW_SCRATCH(1)`).
pub fn sequencer_done(bar: &Bar0) -> Result<(), BootError> {
    match bar.seq_scratch[0] {
        0x5eed_4201 => Ok(()),
        v => Err(BootError::Resume {
            what: "the sequencer's REG_WRITE/REG_MODIFY did not land in order",
            value: u64::from(v),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frts_and_heap_follow_the_reference_rules() {
        // 24 GiB, no display: VGA = last MiB; FRTS ends at it (already 128 KiB aligned).
        assert_eq!(vga_workspace(24 * GIB), (24 * GIB - MIB, MIB));
        assert_eq!(frts_region(24 * GIB), (24 * GIB - 2 * MIB, 24 * GIB - MIB));
        // LIBOS2: 8 + 96 MiB + 96 KiB x 24 = 106.25 MiB -> 107 MiB; LIBOS3 adds 22 MiB.
        assert_eq!(wpr_heap_size(Chipset::TU102, 24 * GIB), 107 * MIB);
        assert_eq!(wpr_heap_size(Chipset::GA102, 24 * GIB), 129 * MIB);
        // Clamps: a tiny FB is raised to the minimum, a huge one capped below the maximum.
        assert_eq!(wpr_heap_size(Chipset::TU102, GIB), 105 * MIB);
        assert_eq!(wpr_heap_size(Chipset::AD102, 4096 * GIB), 280 * MIB - 1);
    }

    #[test]
    fn layout_stacks_downwards_with_its_alignments() {
        let l = expected_layout(Chipset::AD102, 24 * GIB, 0x3c9_9000, 0x5000);
        let get = |n: &str| l.iter().find(|(k, _)| *k == n).unwrap().1;
        assert_eq!(
            get("bootBinOffset"),
            align_down(get("frtsOffset") - 0x5000, 4 * KIB)
        );
        assert_eq!(get("gspFwOffset") % (64 * KIB), 0);
        assert!(get("gspFwOffset") + 0x3c9_9000 <= get("bootBinOffset"));
        assert_eq!(get("gspFwWprStart") % MIB, 0);
        assert_eq!(get("nonWprHeapOffset"), get("gspFwWprStart") - MIB);
        assert!(get("gspFwHeapSize") >= wpr_heap_size(Chipset::AD102, 24 * GIB));
    }

    #[test]
    fn sequencer_buffer_is_well_formed() {
        let buf = sequencer_buffer();
        let mut i = 0;
        let mut ops = 0;
        while i < buf.len() {
            let op = GSP_SEQ_BUF_OPCODE::try_from(buf[i]).unwrap();
            i += 1 + op.payload_dwords();
            ops += 1;
        }
        assert_eq!((i, ops), (buf.len(), 6));
        assert_eq!(buf.last(), Some(&(GSP_SEQ_BUF_OPCODE::CORE_RESUME as u32)));
    }
}
