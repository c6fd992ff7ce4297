//! A loopback external client slot for the interposer's tests: hosted's real endpoint (the slot
//! PD's side of `drm_api::external`) on a thread, relaying each frame to the real drm-shim over a
//! small GPU whose CPU-mappable BOs live in the slot's VRAM window. Only the runtime's process per
//! PD is missing (`cargo xtask libdrm-demo` runs the real system).
//!
//! Used by the library's unit tests (`src/lib.rs` includes this file) and by `tests/libdrm.rs`.
#![allow(unsafe_code, dead_code)]

use drm_shim::fuzz::CountingGpu;
use drm_shim::user::UserMem;
use drm_shim::Shim;
use gpu_api::*;
use hosted::external::{region_info, Endpoint, Listener, Session};
use hosted::sys::memfd::{Mapping, Memfd, Prot};
use pd_core::shm::{ReadWrite, Region};
use pd_core::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};
use std::path::PathBuf;
use std::thread::JoinHandle;

/// Where the slot sees its ioctl buffer (client2 in system.xml).
pub const IOCTL_VADDR: u64 = 0x3000_0000;
/// Its ioctl buffer's size.
pub const IOCTL_SIZE: usize = 0x1_0000;
/// Where the slot sees its VRAM window.
pub const VRAM_VADDR: u64 = 0x9000_0000;
/// The window's size.
pub const VRAM_SIZE: usize = 0x100_0000;
/// The slot's client id at the shim.
pub const CLIENT: ClientId = ClientId(2);

/// A GPU like `CountingGpu`, whose mappable BOs get addresses in the slot's VRAM window.
#[derive(Debug, Default)]
pub struct WindowGpu {
    inner: CountingGpu,
    next: u64,
}

impl GpuOps for WindowGpu {
    fn device_info(&mut self) -> Result<DeviceInfo, GpuError> {
        self.inner.device_info()
    }
    fn vram_used(&mut self) -> Result<u64, GpuError> {
        Ok(self.next)
    }
    fn ptimer_ns(&mut self) -> Result<u64, GpuError> {
        self.inner.ptimer_ns()
    }
    fn ctx_open(&mut self, c: ClientId) -> Result<CtxId, GpuError> {
        self.inner.ctx_open(c)
    }
    fn ctx_close(&mut self, c: CtxId) -> Result<(), GpuError> {
        self.inner.ctx_close(c)
    }
    fn bo_new(&mut self, c: CtxId, domain: u32, size: u64, align: u64) -> Result<BoDesc, GpuError> {
        let mut d = self.inner.bo_new(c, domain, size, align)?;
        d.size = size.next_multiple_of(0x1000);
        if domain & drm_api::uapi::domain::MAPPABLE != 0 {
            if self.next + d.size > VRAM_SIZE as u64 {
                return Err(GpuError::NoMemory);
            }
            d.map_addr = VRAM_VADDR + self.next;
            self.next += d.size;
        }
        Ok(d)
    }
    fn bo_free(&mut self, c: CtxId, b: BoId) -> Result<(), GpuError> {
        self.inner.bo_free(c, b)
    }
    fn bo_busy(&mut self, c: CtxId, b: BoId) -> Result<bool, GpuError> {
        self.inner.bo_busy(c, b)
    }
    fn vm_init(&mut self, c: CtxId, a: u64, s: u64) -> Result<(), GpuError> {
        self.inner.vm_init(c, a, s)
    }
    fn vm_map(
        &mut self,
        c: CtxId,
        b: Option<BoId>,
        a: u64,
        o: u64,
        r: u64,
    ) -> Result<(), GpuError> {
        self.inner.vm_map(c, b, a, o, r)
    }
    fn vm_unmap(&mut self, c: CtxId, a: u64, r: u64) -> Result<(), GpuError> {
        self.inner.vm_unmap(c, a, r)
    }
    fn channel_alloc(&mut self, c: CtxId) -> Result<ChanId, GpuError> {
        self.inner.channel_alloc(c)
    }
    fn channel_free(&mut self, c: CtxId, ch: ChanId) -> Result<(), GpuError> {
        self.inner.channel_free(c, ch)
    }
    fn exec(&mut self, c: CtxId, ch: ChanId, p: &[Push]) -> Result<Submitted, GpuError> {
        self.inner.exec(c, ch, p)
    }
    fn fence_signaled(&mut self, c: CtxId, f: Fence) -> Result<bool, GpuError> {
        self.inner.fence_signaled(c, f)
    }
}

/// The slot PD's kernel: its one PPC channel leads straight into the shim.
#[derive(Debug)]
pub struct SlotKernel {
    /// The shim behind the channel.
    pub shim: Shim,
    gpu: WindowGpu,
    ioctl: Region<ReadWrite>,
    mrs: MessageRegisters,
}

impl Kernel for SlotKernel {
    fn pd_name(&self) -> &str {
        "client2"
    }
    fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
        Err(IpcError::NoNotifyRight)
    }
    fn ppcall(&mut self, _: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        let mem = UserMem::new(&self.ioctl, IOCTL_VADDR);
        Ok(self
            .shim
            .handle(&mut self.gpu, CLIENT, &mem, msg, &mut self.mrs))
    }
    fn mrs(&mut self) -> &mut MessageRegisters {
        &mut self.mrs
    }
    fn now_ns(&self) -> u64 {
        0
    }
}

/// A slot serving one process on a thread.
#[derive(Debug)]
pub struct Loopback {
    /// The socket to attach to (`HOSTED_DRM_SOCKET`).
    pub socket: PathBuf,
    _listener: Listener,
    thread: JoinHandle<(Session, usize)>,
}

impl Loopback {
    /// Start a slot named after `tag` (so parallel tests get their own socket).
    pub fn start(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("interposer-{}-{tag}", std::process::id()));
        let listener = Listener::bind(&dir, "client2").unwrap();
        let ioctl = Memfd::create("client2_ioctl", IOCTL_SIZE).unwrap();
        let vram = Memfd::create("client2_vram", VRAM_SIZE).unwrap();
        let view = Mapping::new(ioctl.fd(), IOCTL_SIZE, Prot::RW, None)
            .unwrap()
            .leak();
        // SAFETY: a leaked (never unmapped) shared writable mapping of IOCTL_SIZE bytes; `Region`
        // only copies in and out of it.
        let buf = unsafe { Region::new(view.base(), IOCTL_SIZE) };
        let regions = vec![
            (
                region_info("ioctl_vaddr", IOCTL_VADDR, IOCTL_SIZE as u64, true),
                ioctl.fd().try_clone_to_owned().unwrap(),
            ),
            (
                region_info("vram_vaddr", VRAM_VADDR, VRAM_SIZE as u64, true),
                vram.fd().try_clone_to_owned().unwrap(),
            ),
        ];
        let mut endpoint =
            Endpoint::new(listener.clone_fd().unwrap(), regions, Channel::new(0)).unwrap();
        let mut k = SlotKernel {
            shim: Shim::new(),
            gpu: WindowGpu::default(),
            ioctl: buf,
            mrs: MessageRegisters::default(),
        };
        let thread = std::thread::spawn(move || {
            let session = endpoint.serve_one(&mut k).unwrap();
            (session, k.shim.open_files(CLIENT))
        });
        Self {
            socket: listener.path().to_owned(),
            _listener: listener,
            thread,
        }
    }

    /// Wait for the process to go away: what it did, and how many DRM files were left open after
    /// the slot cleaned up.
    pub fn finish(self) -> (Session, usize) {
        self.thread.join().unwrap()
    }
}
