//! One DRM job, as a Linux client of nouveau's VM_BIND uAPI does it: open a file, query the
//! device, VM_INIT, create a source, a destination (both VRAM, CPU-mappable) and a push buffer
//! (GART), bind them, allocate a channel, write a copy-engine push buffer that copies source to
//! destination, EXEC it signalling a syncobj, wait for it, and check the copied bytes through the
//! client's own mapping of its VRAM window. Every object is closed again.
//!
//! Only the uAPI (`drm_api`) and the client's own regions are used: the same steps work for any
//! client that speaks the nouveau uAPI. [`Setup`] is the part the ioctl benchmark reuses.

use drm_api::errno::Errno;
use drm_api::ioctl::nr;
use drm_api::transport::{DrmClient, FileId};
use drm_api::uapi::*;
use gsp::chip::Chipset;
use gsp::fw::current::rm::{copy, host, ChannelClasses};
use host::{MethodHeader, SecOp};
use pd_core::shm::{ReadWrite, Region};
use pd_core::Kernel;
use zerocopy::IntoBytes;

/// Bytes the demo job copies.
pub const COPY_BYTES: u32 = 0x1_0000;
/// Where the job binds its BOs (user VA space, below the kernel-managed area).
const VA_SRC: u64 = 0x10_0000_0000;
const VA_DST: u64 = VA_SRC + 0x10_0000;
const VA_PUSH: u64 = VA_SRC + 0x20_0000;
/// A free VA range for callers that bind more (the benchmark).
pub const VA_SPARE: u64 = VA_SRC + 0x30_0000;
/// The kernel-managed area the job gives VM_INIT (gpu-server puts rings and fences there); below
/// 2^40, the reach of a host semaphore address.
const KERNEL_VA: (u64, u64) = (0xff_0000_0000, 0x1000_0000);
/// Subchannel the copy engine is bound to (nouveau uses 4 for CE).
const CE_SUBCH: u8 = 4;
/// Dwords of the job's push buffer.
const PUSH_DWORDS: usize = 11;

/// The client's own memory the job reads and writes through.
#[derive(Debug)]
pub struct Views {
    /// The client's CPU-mappable VRAM window (where `map_handle`s of VRAM BOs point).
    pub vram: Region<ReadWrite>,
    /// The client's DMA pool (where `map_handle`s of GART BOs point).
    pub dma: Region<ReadWrite>,
}

impl Views {
    fn at(&self, map_handle: u64, gart: bool) -> Result<(&Region<ReadWrite>, usize), Errno> {
        let r = if gart { &self.dma } else { &self.vram };
        let off = map_handle
            .checked_sub(r.vaddr() as u64)
            .ok_or(Errno::EFAULT)?;
        Ok((r, usize::try_from(off).map_err(|_| Errno::EFAULT)?))
    }
}

fn getparam(k: &mut dyn Kernel, c: &mut DrmClient, f: FileId, param: u64) -> Result<u64, Errno> {
    let mut g = drm_nouveau_getparam { param, value: 0 };
    c.ioctl(k, f, nr::NOUVEAU_GETPARAM, &mut g)?;
    Ok(g.value)
}

/// A GPU VA as (upper, lower) 32 bits.
fn split(va: u64) -> (u32, u32) {
    // CAST: the two halves of a 64-bit value.
    ((va >> 32) as u32, va as u32)
}

/// The copy-engine push buffer: bind the CE class to its subchannel, copy `len` bytes from `src`
/// to `dst` (virtual, pitch, one line), launch non-pipelined.
fn push_buffer(class: u32, src: u64, dst: u64, len: u32) -> [u32; PUSH_DWORDS] {
    let inc = |m, n| MethodHeader::encode(SecOp::IncMethod, CE_SUBCH, m, n);
    let launch = 2 | copy::LAUNCH_SRC_LAYOUT_PITCH | copy::LAUNCH_DST_LAYOUT_PITCH;
    let ((src_hi, src_lo), (dst_hi, dst_lo)) = (split(src), split(dst));
    [
        inc(host::SET_OBJECT, 1),
        class,
        inc(copy::OFFSET_IN_UPPER, 4),
        src_hi,
        src_lo,
        dst_hi,
        dst_lo,
        inc(copy::LINE_LENGTH_IN, 1),
        len,
        inc(copy::LAUNCH_DMA, 1),
        launch,
    ]
}

/// A file made ready for copy jobs: VA space, source/destination/push BOs bound, a channel, the
/// push buffer written, and the binary syncobj every job signals (each EXEC replaces its fence,
/// as Linux's `drm_syncobj_replace_fence` does, so one serves any number of jobs).
#[derive(Debug)]
pub struct Setup {
    src: drm_nouveau_gem_info,
    dst: drm_nouveau_gem_info,
    pb: drm_nouveau_gem_info,
    channel: i32,
    sync: u32,
}

impl Setup {
    /// Prepare file `f` for copies of `len` bytes; `verbose` logs each step.
    ///
    /// # Errors
    /// The errno of the first ioctl that failed.
    pub fn new(
        k: &mut dyn Kernel,
        c: &mut DrmClient,
        f: FileId,
        v: &Views,
        len: u32,
        verbose: bool,
    ) -> Result<Self, Errno> {
        macro_rules! say {
            ($($arg:tt)*) => {
                if verbose {
                    log::info!("{}: {}", k.pd_name(), format_args!($($arg)*));
                }
            };
        }
        let chipset = getparam(k, c, f, getparam::CHIPSET_ID)?;
        let fb = getparam(k, c, f, getparam::FB_SIZE)?;
        let device = getparam(k, c, f, getparam::PCI_DEVICE)?;
        say!(
            "GETPARAM: chipset {chipset:#x}, PCI device {device:#06x}, FB {} MiB",
            fb >> 20
        );
        let chip = u32::try_from(chipset)
            .ok()
            .and_then(|c| Chipset::try_from(c).ok())
            .ok_or(Errno::ENODEV)?;
        let classes = ChannelClasses::for_chip(chip).ok_or(Errno::ENODEV)?;

        let mut vm = drm_nouveau_vm_init {
            kernel_managed_addr: KERNEL_VA.0,
            kernel_managed_size: KERNEL_VA.1,
        };
        c.ioctl(k, f, nr::NOUVEAU_VM_INIT, &mut vm)?;
        let size = u64::from(len);
        let src = gem_new(k, c, f, domain::VRAM | domain::MAPPABLE, size)?;
        let dst = gem_new(k, c, f, domain::VRAM | domain::MAPPABLE, size)?;
        let pb = gem_new(k, c, f, domain::GART | domain::MAPPABLE, 0x1000)?;
        say!(
            "VM_INIT, GEM_NEW x3: src {:#x} dst {:#x} (VRAM), push {:#x} (GART)",
            src.map_handle,
            dst.map_handle,
            pb.map_handle
        );
        bind(k, c, f, src.handle, VA_SRC, size)?;
        bind(k, c, f, dst.handle, VA_DST, size)?;
        bind(k, c, f, pb.handle, VA_PUSH, 0x1000)?;
        let mut ch = drm_nouveau_channel_alloc::default();
        c.ioctl(k, f, nr::NOUVEAU_CHANNEL_ALLOC, &mut ch)?;
        say!(
            "VM_BIND x3 at {VA_SRC:#x}.., CHANNEL_ALLOC: channel {}",
            ch.channel
        );
        let words = push_buffer(u32::from(classes.copy), VA_SRC, VA_DST, len);
        let (dma, pb_off) = v.at(pb.map_handle, true)?;
        dma.write_bytes(pb_off, words.as_bytes())
            .map_err(|_| Errno::EFAULT)?;
        let mut sync = drm_syncobj_create::default();
        c.ioctl(k, f, nr::SYNCOBJ_CREATE, &mut sync)?;
        Ok(Self {
            src,
            dst,
            pb,
            channel: ch.channel,
            sync: sync.handle,
        })
    }

    /// Another BO of this file.
    ///
    /// # Errors
    /// `GEM_NEW`'s errno.
    pub fn gem_new(
        &self,
        k: &mut dyn Kernel,
        c: &mut DrmClient,
        f: FileId,
        domain: u32,
        size: u64,
    ) -> Result<drm_nouveau_gem_info, Errno> {
        gem_new(k, c, f, domain, size)
    }

    /// Bind a BO of this file.
    ///
    /// # Errors
    /// `VM_BIND`'s errno.
    pub fn bind(
        &self,
        k: &mut dyn Kernel,
        c: &mut DrmClient,
        f: FileId,
        handle: u32,
        va: u64,
        range: u64,
    ) -> Result<(), Errno> {
        bind(k, c, f, handle, va, range)
    }

    /// EXEC the copy `pushes` times in one submission, signalling the set-up's syncobj, and wait for it.
    ///
    /// # Errors
    /// The errno of the first ioctl that failed.
    pub fn exec_and_wait(
        &self,
        k: &mut dyn Kernel,
        c: &mut DrmClient,
        f: FileId,
        pushes: usize,
    ) -> Result<(), Errno> {
        // CAST: the push buffer is 11 dwords.
        let push = drm_nouveau_exec_push {
            va: VA_PUSH,
            va_len: (PUSH_DWORDS * 4) as u32,
            flags: 0,
        };
        let mut pp = 0;
        for i in 0..pushes {
            let at = c.put_array(&push)?;
            if i == 0 {
                pp = at;
            }
        }
        let sig = c.put_array(&drm_nouveau_sync {
            flags: DRM_NOUVEAU_SYNC_SYNCOBJ,
            handle: self.sync,
            timeline_value: 0,
        })?;
        let mut e = drm_nouveau_exec {
            // CAST: channel ids are small positive numbers.
            channel: self.channel as u32,
            push_count: u32::try_from(pushes).map_err(|_| Errno::EINVAL)?,
            push_ptr: pp,
            sig_count: 1,
            sig_ptr: sig,
            ..Default::default()
        };
        c.ioctl(k, f, nr::NOUVEAU_EXEC, &mut e)?;
        let hs = c.put_array(&[self.sync])?;
        let mut w = drm_syncobj_wait {
            handles: hs,
            count_handles: 1,
            flags: DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL,
            ..Default::default()
        };
        c.ioctl(k, f, nr::SYNCOBJ_WAIT, &mut w)
    }

    /// Destroy the syncobj, close the BOs and the channel.
    ///
    /// # Errors
    /// The errno of the first ioctl that failed.
    pub fn close(self, k: &mut dyn Kernel, c: &mut DrmClient, f: FileId) -> Result<(), Errno> {
        let mut d = drm_syncobj_destroy {
            handle: self.sync,
            pad: 0,
        };
        c.ioctl(k, f, nr::SYNCOBJ_DESTROY, &mut d)?;
        for h in [self.src.handle, self.dst.handle, self.pb.handle] {
            let mut cl = drm_gem_close { handle: h, pad: 0 };
            c.ioctl(k, f, nr::GEM_CLOSE, &mut cl)?;
        }
        let mut fr = drm_nouveau_channel_free {
            channel: self.channel,
        };
        c.ioctl(k, f, nr::NOUVEAU_CHANNEL_FREE, &mut fr)
    }
}

fn gem_new(
    k: &mut dyn Kernel,
    c: &mut DrmClient,
    f: FileId,
    domain: u32,
    size: u64,
) -> Result<drm_nouveau_gem_info, Errno> {
    let mut n = drm_nouveau_gem_new {
        info: drm_nouveau_gem_info {
            domain,
            size,
            ..Default::default()
        },
        ..Default::default()
    };
    c.ioctl(k, f, nr::NOUVEAU_GEM_NEW, &mut n)?;
    Ok(n.info)
}

fn bind(
    k: &mut dyn Kernel,
    c: &mut DrmClient,
    f: FileId,
    handle: u32,
    va: u64,
    range: u64,
) -> Result<(), Errno> {
    let op = drm_nouveau_vm_bind_op {
        op: DRM_NOUVEAU_VM_BIND_OP_MAP,
        handle,
        addr: va,
        range,
        ..Default::default()
    };
    let ops = c.put_array(&op)?;
    let mut b = drm_nouveau_vm_bind {
        op_count: 1,
        op_ptr: ops,
        ..Default::default()
    };
    c.ioctl(k, f, nr::NOUVEAU_VM_BIND, &mut b)
}

/// The xorshift64 pattern the job copies, word `i` of seed `seed`.
fn pattern(seed: u64) -> impl Iterator<Item = u64> {
    let mut x = seed | 1;
    core::iter::repeat_with(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    })
}

/// Why a job failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobError {
    /// An ioctl failed with this errno (`ENODEV` when a driver PD restarted: open again).
    Ioctl(Errno),
    /// The destination did not hold the source's bytes after the job's fence signalled: data
    /// corruption, never an expected outcome.
    WrongBytes,
}

impl From<Errno> for JobError {
    fn from(e: Errno) -> Self {
        Self::Ioctl(e)
    }
}

impl core::fmt::Display for JobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ioctl(e) => write!(f, "{e}"),
            Self::WrongBytes => write!(f, "wrong bytes copied"),
        }
    }
}

/// Run one job in a fresh file; `verbose` logs every step (the first job of a run does).
///
/// # Errors
/// The errno of the first step that failed, or [`JobError::WrongBytes`].
pub fn run(
    k: &mut dyn Kernel,
    c: &mut DrmClient,
    v: &Views,
    seed: u64,
    verbose: bool,
) -> Result<(), JobError> {
    let f = c.open(k)?;
    let r = in_file(k, c, f, v, seed, verbose);
    let closed = c.close(k, f);
    r.and(closed.map_err(JobError::Ioctl))
}

fn in_file(
    k: &mut dyn Kernel,
    c: &mut DrmClient,
    f: FileId,
    v: &Views,
    seed: u64,
    verbose: bool,
) -> Result<(), JobError> {
    let setup = Setup::new(k, c, f, v, COPY_BYTES, verbose)?;
    // The source pattern, written through the client's own mapping of its VRAM window.
    let words = COPY_BYTES as usize / 8;
    let (vram, src_off) = v.at(setup.src.map_handle, false)?;
    for (i, x) in pattern(seed).take(words).enumerate() {
        vram.write(src_off + i * 8, &x).map_err(|_| Errno::EFAULT)?;
    }
    setup.exec_and_wait(k, c, f, 1)?;
    let (_, dst_off) = v.at(setup.dst.map_handle, false)?;
    for (i, x) in pattern(seed).take(words).enumerate() {
        let got: u64 = vram.read(dst_off + i * 8).map_err(|_| Errno::EFAULT)?;
        if got != x {
            log::error!(
                "{}: copied bytes differ at {:#x}: {got:#x} != {x:#x}",
                k.pd_name(),
                i * 8
            );
            return Err(JobError::WrongBytes);
        }
    }
    if verbose {
        log::info!("{}: EXEC (copy engine, {COPY_BYTES} bytes), SYNCOBJ_WAIT: signalled; destination checked", k.pd_name());
    }
    Ok(setup.close(k, c, f)?)
}
