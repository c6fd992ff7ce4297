//! Every ioctl's success and error paths, through the real client stub (`DrmClient`) and the real
//! shim, over a small stateful GPU, with Linux's errno checked on each path.
use drm_api::errno::Errno;
use drm_api::ioctl::nr;
use drm_api::transport::{DrmClient, FileId};
use drm_api::uapi::*;
use drm_shim::user::UserMem;
use drm_shim::Shim;
use gpu_api::*;
use pd_core::shm::{ReadWrite, Region};
use pd_core::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};
use std::collections::HashMap;

/// A GPU that keeps per-context BOs, VA state and channels, so cleanup can be checked.
#[derive(Default)]
struct StateGpu {
    next: u32,
    ctxs: HashMap<u32, (u8, HashMap<u32, u64>, bool, Vec<u32>)>,
    mapped: Vec<(u32, Option<u32>, u64, u64)>,
    executed: Vec<Vec<Push>>,
    /// The next `bo_new` answers `NotReady` (a peer of gpu's slow or restarting).
    not_ready_once: bool,
    /// `exec` reports its job done already (as the model does, which runs it on the doorbell).
    done_at_submit: bool,
    /// `fence_signaled` calls seen.
    fence_queries: usize,
}
impl StateGpu {
    fn id(&mut self) -> u32 {
        self.next += 1;
        self.next
    }
    fn ctx(&mut self, c: CtxId) -> Result<&mut (u8, HashMap<u32, u64>, bool, Vec<u32>), GpuError> {
        self.ctxs.get_mut(&c.0).ok_or(GpuError::ContextLost)
    }
}
impl GpuOps for StateGpu {
    fn device_info(&mut self) -> Result<DeviceInfo, GpuError> {
        Ok(DeviceInfo {
            vendor: 0x10de,
            device: 0x2204,
            chipset: 0x172,
            fb_size: 24 << 30,
            vram_bar_size: 256 << 20,
            graph_units: 84,
            exec_push_max: 64,
        })
    }
    fn vram_used(&mut self) -> Result<u64, GpuError> {
        Ok(self.ctxs.values().flat_map(|c| c.1.values()).sum())
    }
    fn ptimer_ns(&mut self) -> Result<u64, GpuError> {
        Ok(123_456)
    }
    fn ctx_open(&mut self, client: ClientId) -> Result<CtxId, GpuError> {
        let id = self.id();
        self.ctxs
            .insert(id, (client.0, HashMap::new(), false, vec![]));
        Ok(CtxId(id))
    }
    fn ctx_close(&mut self, ctx: CtxId) -> Result<(), GpuError> {
        self.ctxs
            .remove(&ctx.0)
            .map(|_| ())
            .ok_or(GpuError::ContextLost)
    }
    fn bo_new(&mut self, ctx: CtxId, domain: u32, size: u64, _: u64) -> Result<BoDesc, GpuError> {
        if std::mem::take(&mut self.not_ready_once) {
            return Err(GpuError::NotReady);
        }
        let id = self.id();
        let size = size.next_multiple_of(4096);
        self.ctx(ctx)?.1.insert(id, size);
        let map_addr = if domain & 8 != 0 {
            0x9000_0000 + u64::from(id) * 0x10000
        } else {
            0
        };
        Ok(BoDesc {
            id: BoId(id),
            size,
            domain,
            map_addr,
        })
    }
    fn bo_free(&mut self, ctx: CtxId, bo: BoId) -> Result<(), GpuError> {
        self.ctx(ctx)?
            .1
            .remove(&bo.0)
            .map(|_| ())
            .ok_or(GpuError::NotFound)
    }
    fn bo_busy(&mut self, ctx: CtxId, bo: BoId) -> Result<bool, GpuError> {
        self.ctx(ctx)?
            .1
            .get(&bo.0)
            .map(|_| false)
            .ok_or(GpuError::NotFound)
    }
    fn vm_init(&mut self, ctx: CtxId, _: u64, _: u64) -> Result<(), GpuError> {
        self.ctx(ctx)?.2 = true;
        Ok(())
    }
    fn vm_map(
        &mut self,
        ctx: CtxId,
        bo: Option<BoId>,
        addr: u64,
        _: u64,
        range: u64,
    ) -> Result<(), GpuError> {
        self.ctx(ctx)?;
        self.mapped.push((ctx.0, bo.map(|b| b.0), addr, range));
        Ok(())
    }
    fn vm_unmap(&mut self, ctx: CtxId, addr: u64, _: u64) -> Result<(), GpuError> {
        self.ctx(ctx)?;
        self.mapped.retain(|m| !(m.0 == ctx.0 && m.2 == addr));
        Ok(())
    }
    fn channel_alloc(&mut self, ctx: CtxId) -> Result<ChanId, GpuError> {
        let id = self.id();
        self.ctx(ctx)?.3.push(id);
        Ok(ChanId(id))
    }
    fn channel_free(&mut self, ctx: CtxId, chan: ChanId) -> Result<(), GpuError> {
        let c = self.ctx(ctx)?;
        let before = c.3.len();
        c.3.retain(|&x| x != chan.0);
        if c.3.len() == before {
            Err(GpuError::NotFound)
        } else {
            Ok(())
        }
    }
    fn exec(&mut self, ctx: CtxId, chan: ChanId, pushes: &[Push]) -> Result<Submitted, GpuError> {
        self.ctx(ctx)?;
        self.executed.push(pushes.to_vec());
        Ok(Submitted {
            fence: Fence {
                chan,
                seqno: self.executed.len() as u64,
            },
            done: self.done_at_submit,
        })
    }
    fn fence_signaled(&mut self, ctx: CtxId, f: Fence) -> Result<bool, GpuError> {
        self.ctx(ctx)?;
        self.fence_queries += 1;
        Ok(f.seqno <= self.executed.len() as u64)
    }
}

/// The system under test: one shim, one GPU, one ioctl buffer per client; the channel number a
/// client calls on is its client id, as drm's channel table would map it.
struct World {
    shim: Shim,
    gpu: StateGpu,
    bufs: Vec<Region<ReadWrite>>,
}

struct ClientKernel<'w> {
    world: &'w mut World,
    client: u8,
    mrs: MessageRegisters,
}
impl Kernel for ClientKernel<'_> {
    fn pd_name(&self) -> &str {
        "client"
    }
    fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
        Ok(())
    }
    fn ppcall(&mut self, _: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        let w = &mut *self.world;
        let buf = &w.bufs[usize::from(self.client)];
        // In tests the client's view of its buffer is the same memory at the same address.
        let mem = UserMem::new(buf, buf.vaddr() as u64);
        Ok(w.shim
            .handle(&mut w.gpu, ClientId(self.client), &mem, msg, &mut self.mrs))
    }
    fn mrs(&mut self) -> &mut MessageRegisters {
        &mut self.mrs
    }
    fn now_ns(&self) -> u64 {
        0
    }
}

fn world() -> World {
    World {
        shim: Shim::new(),
        gpu: StateGpu::default(),
        bufs: (0..3)
            .map(|_| Region::from_static(vec![0u8; 0x10000].leak()))
            .collect(),
    }
}

/// A client's stub over its view of its ioctl buffer.
fn stub(w: &World, client: usize) -> DrmClient {
    DrmClient::new(Channel::new(0), w.bufs[client].alias())
}

/// Run `f` as `client` with its stub.
fn as_client<T>(
    w: &mut World,
    client: u8,
    f: impl FnOnce(&mut DrmClient, &mut dyn Kernel) -> T,
) -> T {
    let mut s = stub(w, usize::from(client));
    let mut k = ClientKernel {
        world: w,
        client,
        mrs: MessageRegisters::default(),
    };
    f(&mut s, &mut k)
}

fn open(w: &mut World, client: u8) -> FileId {
    as_client(w, client, |c, k| c.open(k).unwrap())
}

fn ioctl<T: zerocopy::IntoBytes + zerocopy::FromBytes + zerocopy::Immutable>(
    w: &mut World,
    client: u8,
    f: FileId,
    req: u32,
    arg: &mut T,
) -> Result<(), Errno> {
    as_client(w, client, |c, k| c.ioctl(k, f, req, arg))
}

fn gem_new(
    w: &mut World,
    client: u8,
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
    ioctl(w, client, f, nr::NOUVEAU_GEM_NEW, &mut n).map(|()| n.info)
}

#[test]
fn getparam_reports_the_device_and_refuses_unknown_params() {
    let mut w = world();
    let f = open(&mut w, 0);
    for (param, want) in [
        (getparam::PCI_VENDOR, 0x10de),
        (getparam::PCI_DEVICE, 0x2204),
        (getparam::CHIPSET_ID, 0x172),
        (getparam::FB_SIZE, 24 << 30),
        (getparam::VRAM_BAR_SIZE, 256 << 20),
        (getparam::EXEC_PUSH_MAX, 64),
        (getparam::BUS_TYPE, 2),
        (getparam::PTIMER_TIME, 123_456),
        (getparam::GRAPH_UNITS, 84),
    ] {
        let mut g = drm_nouveau_getparam { param, value: 0 };
        ioctl(&mut w, 0, f, nr::NOUVEAU_GETPARAM, &mut g).unwrap();
        assert_eq!(g.value, want, "param {param}");
    }
    let mut g = drm_nouveau_getparam {
        param: 999,
        value: 0,
    };
    assert_eq!(
        ioctl(&mut w, 0, f, nr::NOUVEAU_GETPARAM, &mut g),
        Err(Errno::EINVAL)
    );
}

#[test]
fn request_numbers_with_wrong_size_or_unknown_nr_are_refused() {
    let mut w = world();
    let f = open(&mut w, 0);
    let mut g = drm_nouveau_getparam {
        param: getparam::PCI_VENDOR,
        value: 0,
    };
    // Same nr, size 8 instead of 16.
    let bad = (nr::NOUVEAU_GETPARAM & !(0x3fff << 16)) | (8 << 16);
    assert_eq!(ioctl(&mut w, 0, f, bad, &mut g), Err(Errno::EINVAL));
    assert_eq!(ioctl(&mut w, 0, f, 0xc010_647f, &mut g), Err(Errno::EINVAL));
    assert_eq!(ioctl(&mut w, 0, f, 0xc010_5540, &mut g), Err(Errno::ENOTTY));
    // A file id that is not this client's.
    assert_eq!(
        ioctl(&mut w, 0, FileId(7), nr::NOUVEAU_GETPARAM, &mut g),
        Err(Errno::EBADF)
    );
}

#[test]
fn version_reports_nouveau_1_4_with_linux_copy_semantics() {
    let mut w = world();
    let f = open(&mut w, 0);
    as_client(&mut w, 0, |c, k| {
        let mut v = drm_version::default();
        c.ioctl(k, f, nr::VERSION, &mut v).unwrap();
        assert_eq!((v.version_major, v.version_minor, v.name_len), (1, 4, 7));
        // Second call with a 4-byte buffer: 4 bytes copied, full length reported.
        let ptr = c.put_array(&[0u8; 8]).unwrap();
        let mut v = drm_version {
            name_len: 4,
            name: ptr,
            ..Default::default()
        };
        c.ioctl(k, f, nr::VERSION, &mut v).unwrap();
        assert_eq!(v.name_len, 7);
        let mut name = [0u8; 8];
        c.get_array(ptr, &mut name).unwrap();
        assert_eq!(&name, b"nouv\0\0\0\0");
    });
}

#[test]
fn gem_new_info_close_and_their_errors() {
    let mut w = world();
    let f = open(&mut w, 0);
    let info = gem_new(&mut w, 0, f, domain::VRAM | domain::MAPPABLE, 5000).unwrap();
    assert_eq!((info.handle, info.size), (1, 8192));
    assert_ne!(info.map_handle, 0);
    for (dom, size) in [
        (0, 4096),
        (1 << 9, 4096),
        (domain::VRAM, 0),
        (domain::MAPPABLE, 4096),
    ] {
        assert_eq!(
            gem_new(&mut w, 0, f, dom, size),
            Err(Errno::EINVAL),
            "domain {dom:#x} size {size}"
        );
    }
    let mut i = drm_nouveau_gem_info {
        handle: 1,
        ..Default::default()
    };
    ioctl(&mut w, 0, f, nr::NOUVEAU_GEM_INFO, &mut i).unwrap();
    assert_eq!(i, info);
    let mut i = drm_nouveau_gem_info {
        handle: 9,
        ..Default::default()
    };
    assert_eq!(
        ioctl(&mut w, 0, f, nr::NOUVEAU_GEM_INFO, &mut i),
        Err(Errno::ENOENT)
    );
    let mut p = drm_nouveau_gem_cpu_prep {
        handle: 1,
        flags: NOUVEAU_GEM_CPU_PREP_NOWAIT,
    };
    ioctl(&mut w, 0, f, nr::NOUVEAU_GEM_CPU_PREP, &mut p).unwrap();
    p.handle = 2;
    assert_eq!(
        ioctl(&mut w, 0, f, nr::NOUVEAU_GEM_CPU_PREP, &mut p),
        Err(Errno::ENOENT)
    );
    let mut c = drm_gem_close { handle: 1, pad: 0 };
    ioctl(&mut w, 0, f, nr::GEM_CLOSE, &mut c).unwrap();
    assert_eq!(
        ioctl(&mut w, 0, f, nr::GEM_CLOSE, &mut c),
        Err(Errno::EINVAL),
        "double close"
    );
    assert_eq!(w.gpu.vram_used().unwrap(), 0);
}

#[test]
fn handles_mean_nothing_outside_their_client() {
    let mut w = world();
    let (f0, f1) = (open(&mut w, 0), open(&mut w, 1));
    let a = gem_new(&mut w, 0, f0, domain::VRAM, 4096).unwrap();
    let b = gem_new(&mut w, 1, f1, domain::VRAM, 8192).unwrap();
    assert_eq!((a.handle, b.handle), (1, 1), "each file numbers from 1");
    let mut i = drm_nouveau_gem_info {
        handle: 1,
        ..Default::default()
    };
    ioctl(&mut w, 1, f1, nr::NOUVEAU_GEM_INFO, &mut i).unwrap();
    assert_eq!(i.size, 8192, "client 1's handle 1 is its own BO");
    // Client 1 can't use client 0's file.
    assert_eq!(
        ioctl(&mut w, 1, f0, nr::NOUVEAU_GEM_INFO, &mut i),
        Err(Errno::EBADF)
    );
    let mut c = drm_gem_close { handle: 1, pad: 0 };
    ioctl(&mut w, 1, f1, nr::GEM_CLOSE, &mut c).unwrap();
    let mut i = drm_nouveau_gem_info {
        handle: 1,
        ..Default::default()
    };
    ioctl(&mut w, 0, f0, nr::NOUVEAU_GEM_INFO, &mut i).unwrap();
    assert_eq!(i.size, 4096, "client 0's BO untouched");
}

#[test]
fn vm_bind_and_exec_need_vm_init_then_work_with_syncobjs() {
    let mut w = world();
    let f = open(&mut w, 0);
    let bo = gem_new(&mut w, 0, f, domain::VRAM, 0x2000).unwrap();
    as_client(&mut w, 0, |c, k| {
        let op = drm_nouveau_vm_bind_op {
            op: DRM_NOUVEAU_VM_BIND_OP_MAP,
            handle: bo.handle,
            addr: 0x10_0000,
            range: 0x2000,
            ..Default::default()
        };
        let ops = c.put_array(&op).unwrap();
        let mut b = drm_nouveau_vm_bind {
            op_count: 1,
            op_ptr: ops,
            ..Default::default()
        };
        assert_eq!(
            c.ioctl(k, f, nr::NOUVEAU_VM_BIND, &mut b),
            Err(Errno::ENOSYS),
            "before VM_INIT"
        );
        let mut ch = drm_nouveau_channel_alloc::default();
        assert_eq!(
            c.ioctl(k, f, nr::NOUVEAU_CHANNEL_ALLOC, &mut ch),
            Err(Errno::ENOSYS)
        );
        let mut v = drm_nouveau_vm_init {
            kernel_managed_addr: 0,
            kernel_managed_size: 0x1000_0000,
        };
        c.ioctl(k, f, nr::NOUVEAU_VM_INIT, &mut v).unwrap();
        assert_eq!(
            c.ioctl(k, f, nr::NOUVEAU_VM_INIT, &mut v),
            Err(Errno::EEXIST)
        );

        // Misaligned, out-of-BO and bad-flag ops are EINVAL; an unknown BO is ENOENT.
        for bad in [
            drm_nouveau_vm_bind_op {
                addr: 0x10_0800,
                ..op
            },
            drm_nouveau_vm_bind_op {
                range: 0x3000,
                ..op
            },
            drm_nouveau_vm_bind_op { flags: 1, ..op },
            drm_nouveau_vm_bind_op { range: 0, ..op },
        ] {
            let p = c.put_array(&bad).unwrap();
            let mut b = drm_nouveau_vm_bind {
                op_count: 1,
                op_ptr: p,
                ..Default::default()
            };
            assert_eq!(
                c.ioctl(k, f, nr::NOUVEAU_VM_BIND, &mut b),
                Err(Errno::EINVAL),
                "{bad:?}"
            );
        }
        let p = c
            .put_array(&drm_nouveau_vm_bind_op { handle: 7, ..op })
            .unwrap();
        let mut b = drm_nouveau_vm_bind {
            op_count: 1,
            op_ptr: p,
            ..Default::default()
        };
        assert_eq!(
            c.ioctl(k, f, nr::NOUVEAU_VM_BIND, &mut b),
            Err(Errno::ENOENT)
        );
        // A pointer outside the client's buffer is EFAULT.
        let mut b = drm_nouveau_vm_bind {
            op_count: 1,
            op_ptr: 0x1000,
            ..Default::default()
        };
        assert_eq!(
            c.ioctl(k, f, nr::NOUVEAU_VM_BIND, &mut b),
            Err(Errno::EFAULT)
        );

        // Async bind signalling a syncobj.
        let mut s = drm_syncobj_create::default();
        c.ioctl(k, f, nr::SYNCOBJ_CREATE, &mut s).unwrap();
        let ops = c.put_array(&op).unwrap();
        let sig = c
            .put_array(&drm_nouveau_sync {
                flags: DRM_NOUVEAU_SYNC_SYNCOBJ,
                handle: s.handle,
                timeline_value: 0,
            })
            .unwrap();
        let mut b = drm_nouveau_vm_bind {
            op_count: 1,
            op_ptr: ops,
            flags: DRM_NOUVEAU_VM_BIND_RUN_ASYNC,
            sig_count: 1,
            sig_ptr: sig,
            ..Default::default()
        };
        c.ioctl(k, f, nr::NOUVEAU_VM_BIND, &mut b).unwrap();
        // A synchronous bind with syncobjs is EINVAL.
        let mut b2 = drm_nouveau_vm_bind { flags: 0, ..b };
        assert_eq!(
            c.ioctl(k, f, nr::NOUVEAU_VM_BIND, &mut b2),
            Err(Errno::EINVAL)
        );

        let mut ch = drm_nouveau_channel_alloc::default();
        c.ioctl(k, f, nr::NOUVEAU_CHANNEL_ALLOC, &mut ch).unwrap();
        assert_eq!(ch.channel, 1);
        let pushes: Vec<drm_nouveau_exec_push> = (0..64)
            .map(|i| drm_nouveau_exec_push {
                va: 0x10_0000 + i * 16,
                va_len: 16,
                flags: 0,
            })
            .collect();
        let mut out = drm_syncobj_create::default();
        c.ioctl(k, f, nr::SYNCOBJ_CREATE, &mut out).unwrap();
        // Arrays are placed after the last ioctl: each ioctl starts a fresh array area.
        let pp = c.put_array(pushes.as_slice()).unwrap();
        let waits = c
            .put_array(&drm_nouveau_sync {
                flags: 0,
                handle: s.handle,
                timeline_value: 0,
            })
            .unwrap();
        let sigs = c
            .put_array(&drm_nouveau_sync {
                flags: 0,
                handle: out.handle,
                timeline_value: 0,
            })
            .unwrap();
        let mut e = drm_nouveau_exec {
            channel: 1,
            push_count: 64,
            push_ptr: pp,
            wait_count: 1,
            wait_ptr: waits,
            sig_count: 1,
            sig_ptr: sigs,
        };
        c.ioctl(k, f, nr::NOUVEAU_EXEC, &mut e).unwrap();
        wait_one(c, k, f, out.handle, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL).unwrap();

        // Too many pushes, an unknown channel, a timeline sync: EINVAL / ENOENT / EINVAL.
        let pp = c.put_array(pushes.as_slice()).unwrap();
        let mut e = drm_nouveau_exec {
            channel: 1,
            push_count: 65,
            push_ptr: pp,
            ..Default::default()
        };
        assert_eq!(c.ioctl(k, f, nr::NOUVEAU_EXEC, &mut e), Err(Errno::EINVAL));
        let mut e = drm_nouveau_exec {
            channel: 3,
            push_count: 1,
            push_ptr: pp,
            ..Default::default()
        };
        assert_eq!(c.ioctl(k, f, nr::NOUVEAU_EXEC, &mut e), Err(Errno::ENOENT));
        let pp = c.put_array(pushes.as_slice()).unwrap();
        let tl = c
            .put_array(&drm_nouveau_sync {
                flags: DRM_NOUVEAU_SYNC_TIMELINE_SYNCOBJ,
                handle: out.handle,
                timeline_value: 1,
            })
            .unwrap();
        let mut e = drm_nouveau_exec {
            channel: 1,
            push_count: 1,
            push_ptr: pp,
            sig_count: 1,
            sig_ptr: tl,
            ..Default::default()
        };
        assert_eq!(c.ioctl(k, f, nr::NOUVEAU_EXEC, &mut e), Err(Errno::EINVAL));
        // Waiting on a syncobj that never got a fence: EINVAL, or ETIME with WAIT_FOR_SUBMIT.
        let mut fresh = drm_syncobj_create::default();
        c.ioctl(k, f, nr::SYNCOBJ_CREATE, &mut fresh).unwrap();
        assert_eq!(wait_one(c, k, f, fresh.handle, 0), Err(Errno::EINVAL));
        assert_eq!(
            wait_one(
                c,
                k,
                f,
                fresh.handle,
                DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT
            ),
            Err(Errno::ETIME)
        );
        let mut d = drm_syncobj_destroy {
            handle: fresh.handle,
            pad: 0,
        };
        c.ioctl(k, f, nr::SYNCOBJ_DESTROY, &mut d).unwrap();
        assert_eq!(
            c.ioctl(k, f, nr::SYNCOBJ_DESTROY, &mut d),
            Err(Errno::EINVAL)
        );
        let mut fr = drm_nouveau_channel_free { channel: 1 };
        c.ioctl(k, f, nr::NOUVEAU_CHANNEL_FREE, &mut fr).unwrap();
        assert_eq!(
            c.ioctl(k, f, nr::NOUVEAU_CHANNEL_FREE, &mut fr),
            Err(Errno::ENOENT)
        );
    });
    assert_eq!(w.gpu.executed.len(), 1, "refused EXECs ran nothing");
    assert_eq!(w.gpu.executed[0].len(), 64);
    assert_eq!(w.gpu.mapped.len(), 1, "refused binds mapped nothing");
}

/// SYNCOBJ_WAIT on one syncobj with `flags`.
fn wait_one(
    c: &mut DrmClient,
    k: &mut dyn Kernel,
    f: FileId,
    handle: u32,
    flags: u32,
) -> Result<(), Errno> {
    let handles = c.put_array(&[handle])?;
    let mut wt = drm_syncobj_wait {
        handles,
        count_handles: 1,
        flags,
        ..Default::default()
    };
    c.ioctl(k, f, nr::SYNCOBJ_WAIT, &mut wt)
}

/// EXEC signalling a syncobj, then SYNCOBJ_WAIT on it; returns how often the shim asked the GPU.
fn exec_then_wait(w: &mut World, done_at_submit: bool) -> usize {
    w.gpu.done_at_submit = done_at_submit;
    w.gpu.fence_queries = 0;
    let f = open(w, 0);
    let mut vm = drm_nouveau_vm_init {
        kernel_managed_addr: 0,
        kernel_managed_size: 1 << 30,
    };
    ioctl(w, 0, f, nr::NOUVEAU_VM_INIT, &mut vm).unwrap();
    let mut ch = drm_nouveau_channel_alloc::default();
    ioctl(w, 0, f, nr::NOUVEAU_CHANNEL_ALLOC, &mut ch).unwrap();
    let mut sync = drm_syncobj_create::default();
    ioctl(w, 0, f, nr::SYNCOBJ_CREATE, &mut sync).unwrap();
    as_client(w, 0, |c, k| {
        let push = drm_nouveau_exec_push {
            va: 0x10_0000,
            va_len: 16,
            flags: 0,
        };
        let pp = c.put_array(&push).unwrap();
        let sig = c
            .put_array(&drm_nouveau_sync {
                flags: DRM_NOUVEAU_SYNC_SYNCOBJ,
                handle: sync.handle,
                timeline_value: 0,
            })
            .unwrap();
        let mut e = drm_nouveau_exec {
            channel: ch.channel as u32,
            push_count: 1,
            push_ptr: pp,
            sig_count: 1,
            sig_ptr: sig,
            ..Default::default()
        };
        c.ioctl(k, f, nr::NOUVEAU_EXEC, &mut e).unwrap();
        wait_one(c, k, f, sync.handle, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL).unwrap();
    });
    w.gpu.fence_queries
}

#[test]
fn a_job_done_at_submit_signals_its_syncobj_without_asking_the_gpu_again() {
    let mut w = world();
    assert_eq!(exec_then_wait(&mut w, false), 1, "pending: the wait asks");
    assert_eq!(
        exec_then_wait(&mut w, true),
        0,
        "done: the wait is answered by drm"
    );
}

#[test]
fn closing_a_file_or_restarting_a_client_frees_everything_it_owned() {
    let mut w = world();
    let (f0, f1) = (open(&mut w, 0), open(&mut w, 1));
    gem_new(&mut w, 0, f0, domain::VRAM, 1 << 20).unwrap();
    gem_new(&mut w, 1, f1, domain::VRAM, 1 << 16).unwrap();
    w.shim.client_restarted(&mut w.gpu, ClientId(0));
    assert_eq!(w.shim.open_files(ClientId(0)), 0);
    assert_eq!(
        w.gpu.vram_used().unwrap(),
        1 << 16,
        "only client 1's BO is left"
    );
    as_client(&mut w, 1, |c, k| c.close(k, f1).unwrap());
    assert_eq!(w.gpu.vram_used().unwrap(), 0);
    assert!(w.gpu.ctxs.is_empty());
}

#[test]
fn a_file_that_got_enodev_still_frees_its_context_when_closed() {
    let mut w = world();
    let f = open(&mut w, 0);
    gem_new(&mut w, 0, f, domain::VRAM, 1 << 16).unwrap();
    w.gpu.not_ready_once = true;
    assert_eq!(
        gem_new(&mut w, 0, f, domain::VRAM, 4096),
        Err(Errno::ENODEV)
    );
    // The context is still there (only the call failed): closing the file frees it.
    assert_eq!(w.gpu.ctxs.len(), 1);
    as_client(&mut w, 0, |c, k| c.close(k, f).unwrap());
    assert!(w.gpu.ctxs.is_empty(), "context closed");
    assert_eq!(w.gpu.vram_used().unwrap(), 0);
}

#[test]
fn after_a_gpu_restart_old_files_get_enodev_and_new_ones_work() {
    let mut w = world();
    let f = open(&mut w, 0);
    w.shim.gpu_restarted();
    w.gpu.ctxs.clear();
    assert_eq!(
        gem_new(&mut w, 0, f, domain::VRAM, 4096),
        Err(Errno::ENODEV)
    );
    as_client(&mut w, 0, |c, k| c.close(k, f).unwrap());
    let f = open(&mut w, 0);
    assert!(gem_new(&mut w, 0, f, domain::VRAM, 4096).is_ok());
}

#[test]
fn nova_personality_speaks_nova() {
    let mut w = world();
    // OPEN with mr0 = 1 asks for the nova personality.
    let f = as_client(&mut w, 0, |_, k| {
        k.mrs().set(0, 1);
        let r = k
            .ppcall(
                Channel::new(0),
                MessageInfo::new(drm_api::transport::op::OPEN, 1),
            )
            .unwrap();
        assert_eq!(r.label(), 0);
        FileId(k.mrs().get(0))
    });
    let mut g = drm_nova_getparam {
        param: NOVA_GETPARAM_VRAM_BAR_SIZE,
        value: 0,
    };
    ioctl(&mut w, 0, f, nr::NOVA_GETPARAM, &mut g).unwrap();
    assert_eq!(g.value, 256 << 20);
    let mut c = drm_nova_gem_create {
        size: 4096,
        ..Default::default()
    };
    ioctl(&mut w, 0, f, nr::NOVA_GEM_CREATE, &mut c).unwrap();
    let mut i = drm_nova_gem_info {
        handle: c.handle,
        ..Default::default()
    };
    ioctl(&mut w, 0, f, nr::NOVA_GEM_INFO, &mut i).unwrap();
    assert_eq!(i.size, 4096);
    let mut i = drm_nova_gem_info {
        handle: 5,
        ..Default::default()
    };
    assert_eq!(
        ioctl(&mut w, 0, f, nr::NOVA_GEM_INFO, &mut i),
        Err(Errno::ENOENT)
    );
    let mut c = drm_nova_gem_create {
        size: 0,
        ..Default::default()
    };
    assert_eq!(
        ioctl(&mut w, 0, f, nr::NOVA_GEM_CREATE, &mut c),
        Err(Errno::EINVAL)
    );
}

#[test]
fn fuzzed_request_sequences_never_panic() {
    let buf = Region::from_static(vec![0u8; 0x10000].leak());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let mut data = vec![0u8; 200];
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        // Bias the label towards real request numbers so the handlers are reached.
        let reqs = [
            nr::NOUVEAU_GEM_NEW,
            nr::NOUVEAU_VM_BIND,
            nr::NOUVEAU_EXEC,
            nr::VERSION,
            nr::SYNCOBJ_WAIT,
            drm_api::nvif::request(72),
            drm_api::nvif::request(136),
            drm_api::nvif::request(32),
            drm_api::nvif::request(48),
            1,
        ];
        let r = reqs[(x % reqs.len() as u64) as usize] as u64;
        data[1..9].copy_from_slice(&r.to_le_bytes());
        data[9..17].copy_from_slice(&1u64.to_le_bytes());
        drm_shim::fuzz::ioctl_sequence(&buf, &data);
    }
}

mod nvif {
    //! The NVIF calls libdrm_nouveau makes at open (NEW of the device, MTHD NV_DEVICE_V0_INFO),
    //! and Linux's `nouveau_abi16_ioctl` answers on every error path.
    use super::*;
    use drm_api::nvif::*;
    use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes};

    /// libdrm's object names are the addresses of its `nouveau_object`s.
    const DEV: u64 = 0x5555_dead_b000;

    fn call<T: IntoBytes + FromBytes + Immutable>(
        w: &mut World,
        f: FileId,
        arg: &mut T,
    ) -> Result<(), Errno> {
        let req = request(core::mem::size_of::<T>());
        ioctl(w, 0, f, req, arg)
    }

    fn new_device(object: u64) -> nvif_new_device {
        nvif_new_device {
            ioctl: nvif_ioctl_v0 {
                type_: ty::NEW,
                owner: NVIF_IOCTL_V0_OWNER_ANY,
                ..Default::default()
            },
            new: nvif_ioctl_new_v0 {
                token: object,
                object,
                oclass: NV_DEVICE,
                ..Default::default()
            },
            device: nv_device_v0 {
                device: !0,
                ..Default::default()
            },
        }
    }

    fn info_of(object: u64) -> nvif_device_info {
        nvif_device_info {
            ioctl: nvif_ioctl_v0 {
                type_: ty::MTHD,
                owner: NVIF_IOCTL_V0_OWNER_ANY,
                object,
                ..Default::default()
            },
            mthd: nvif_ioctl_mthd_v0 {
                method: NV_DEVICE_V0_INFO,
                ..Default::default()
            },
            info: nv_device_info_v0::new_zeroed(),
        }
    }

    /// A DEL, or a NOP/anything else: header only.
    fn bare(type_: u8, object: u64) -> nvif_ioctl_v0 {
        nvif_ioctl_v0 {
            type_,
            object,
            ..Default::default()
        }
    }

    #[test]
    fn libdrm_open_sequence_creates_the_device_and_reads_the_chipset() {
        let mut w = world();
        let f = open(&mut w, 0);
        let mut n = new_device(DEV);
        let sent = n;
        call(&mut w, f, &mut n).unwrap();
        assert_eq!(n, sent, "NEW changes nothing the caller sees");
        let mut m = info_of(DEV);
        call(&mut w, f, &mut m).unwrap();
        let i = m.info;
        assert_eq!(
            (i.version, i.platform, i.chipset, i.family, i.gsp_rm),
            (0, platform::PCIE, 0x172, family::AMPERE, 1)
        );
        assert_eq!((i.ram_size, i.ram_user), (24 << 30, 24 << 30));
        assert_eq!(&i.chip[..6], b"GA102\0");
        assert_eq!(&i.name[..6], b"GA102\0");
        assert_eq!((m.ioctl, m.mthd), (info_of(DEV).ioctl, info_of(DEV).mthd));
        // GETPARAM agrees with NVIF, as libdrm reads FB_SIZE next.
        let mut g = drm_nouveau_getparam {
            param: getparam::FB_SIZE,
            value: 0,
        };
        ioctl(&mut w, 0, f, nr::NOUVEAU_GETPARAM, &mut g).unwrap();
        assert_eq!(g.value, i.ram_size);
    }

    #[test]
    fn header_size_version_and_route_are_checked_first() {
        let mut w = world();
        let f = open(&mut w, 0);
        // Shorter than nvif_ioctl_v0.
        let mut short = [0u8; 16];
        assert_eq!(call(&mut w, f, &mut short), Err(Errno::EINVAL));
        let mut n = new_device(DEV);
        n.ioctl.version = 1;
        assert_eq!(call(&mut w, f, &mut n), Err(Errno::EINVAL));
        let mut n = new_device(DEV);
        n.ioctl.route = 5;
        assert_eq!(call(&mut w, f, &mut n), Err(Errno::EINVAL));
        for t in [ty::NOP, ty::RD, ty::WR, ty::MAP, ty::NTFY_NEW, 0x42] {
            let mut b = bare(t, 0);
            assert_eq!(call(&mut w, f, &mut b), Err(Errno::EINVAL), "type {t:#x}");
        }
        // A block running past the client's buffer is EFAULT (copy_from_user).
        let r = as_client(&mut w, 0, |_, k| {
            k.mrs().set(0, f.0);
            k.mrs().set(1, 0x10000 - 40);
            k.ppcall(Channel::new(0), MessageInfo::new(u64::from(request(72)), 2))
                .unwrap()
                .label()
        });
        assert_eq!(r, u64::from(Errno::EFAULT.0));
        // Nothing was created by any of it.
        let mut m = info_of(DEV);
        assert_eq!(call(&mut w, f, &mut m), Err(Errno::EINVAL));
    }

    #[test]
    fn new_accepts_only_a_device_under_the_client_once() {
        let mut w = world();
        let f = open(&mut w, 0);
        let mut n = new_device(DEV);
        n.ioctl.object = 0x1234; // parent is not the client
        assert_eq!(call(&mut w, f, &mut n), Err(Errno::EINVAL));
        let mut n = new_device(DEV);
        n.new.oclass = 0xc597; // a 3D class
        assert_eq!(call(&mut w, f, &mut n), Err(Errno::EINVAL));
        let mut n = new_device(DEV);
        n.new.version = 1;
        assert_eq!(call(&mut w, f, &mut n), Err(Errno::EINVAL));
        // Header + a truncated NEW.
        let mut t = [0u8; 40];
        t[1] = ty::NEW;
        assert_eq!(call(&mut w, f, &mut t), Err(Errno::EINVAL));
        call(&mut w, f, &mut new_device(DEV)).unwrap();
        assert_eq!(call(&mut w, f, &mut new_device(DEV)), Err(Errno::EEXIST));
        call(&mut w, f, &mut new_device(DEV + 0x100)).unwrap();
    }

    #[test]
    fn mthd_answers_only_device_info_of_a_known_device() {
        let mut w = world();
        let f = open(&mut w, 0);
        call(&mut w, f, &mut new_device(DEV)).unwrap();
        let mut m = info_of(DEV + 8);
        assert_eq!(
            call(&mut w, f, &mut m),
            Err(Errno::EINVAL),
            "unknown object"
        );
        let mut m = info_of(DEV);
        m.mthd.method = NV_DEVICE_V0_TIME;
        assert_eq!(call(&mut w, f, &mut m), Err(Errno::EINVAL));
        let mut m = info_of(DEV);
        m.info.version = 1;
        assert_eq!(call(&mut w, f, &mut m), Err(Errno::EINVAL));
        let mut m = info_of(DEV);
        m.ioctl.route = NVIF_IOCTL_V0_ROUTE_HIDDEN;
        assert_eq!(call(&mut w, f, &mut m), Err(Errno::EINVAL));
        // INFO with a short (older) info struct: the size must be exact.
        let mut short = [0u8; 24 + 8 + 96];
        short[..24].copy_from_slice(info_of(DEV).ioctl.as_bytes());
        assert_eq!(call(&mut w, f, &mut short), Err(Errno::EINVAL));
        let mut m = info_of(DEV);
        call(&mut w, f, &mut m).unwrap();
        assert_eq!(m.info.chipset, 0x172);
    }

    #[test]
    fn del_forgets_the_object_and_objects_are_per_file() {
        let mut w = world();
        let (f, g) = (open(&mut w, 0), open(&mut w, 0));
        call(&mut w, f, &mut new_device(DEV)).unwrap();
        let mut m = info_of(DEV);
        assert_eq!(call(&mut w, g, &mut m), Err(Errno::EINVAL), "other file");
        // The same name in another file is another object.
        call(&mut w, g, &mut new_device(DEV)).unwrap();
        // DEL carries nothing after the header and is route 0.
        let mut d = [0u8; 32];
        d[1] = ty::DEL;
        d[16..24].copy_from_slice(&DEV.to_le_bytes());
        assert_eq!(call(&mut w, f, &mut d), Err(Errno::EINVAL));
        let mut d = bare(ty::DEL, DEV);
        d.route = NVIF_IOCTL_V0_ROUTE_HIDDEN;
        assert_eq!(call(&mut w, f, &mut d), Err(Errno::EINVAL));
        call(&mut w, f, &mut bare(ty::DEL, DEV)).unwrap();
        call(&mut w, f, &mut bare(ty::DEL, DEV)).unwrap(); // unknown names are fine
        assert_eq!(call(&mut w, f, &mut info_of(DEV)), Err(Errno::EINVAL));
        call(&mut w, g, &mut info_of(DEV)).unwrap();
        // Closing a file drops its objects with it.
        as_client(&mut w, 0, |c, k| c.close(k, g).unwrap());
        let g = open(&mut w, 0);
        assert_eq!(call(&mut w, g, &mut info_of(DEV)), Err(Errno::EINVAL));
    }

    #[test]
    fn channels_offer_no_engine_classes_through_nvif() {
        #[repr(C)]
        #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
        struct Sclass {
            ioctl: nvif_ioctl_v0,
            sclass: nvif_ioctl_sclass_v0,
            oclass: [nvif_ioctl_sclass_oclass_v0; 2],
        }
        let mut w = world();
        let f = open(&mut w, 0);
        let mut s = Sclass {
            ioctl: nvif_ioctl_v0 {
                type_: ty::SCLASS,
                route: NVIF_IOCTL_V0_ROUTE_HIDDEN,
                token: 1,
                ..Default::default()
            },
            sclass: nvif_ioctl_sclass_v0 {
                count: 2,
                ..Default::default()
            },
            oclass: [nvif_ioctl_sclass_oclass_v0::default(); 2],
        };
        assert_eq!(call(&mut w, f, &mut s), Err(Errno::EINVAL), "no channel 1");
        let mut v = drm_nouveau_vm_init {
            kernel_managed_addr: 0,
            kernel_managed_size: 0x1000_0000,
        };
        ioctl(&mut w, 0, f, nr::NOUVEAU_VM_INIT, &mut v).unwrap();
        let mut ch = drm_nouveau_channel_alloc::default();
        ioctl(&mut w, 0, f, nr::NOUVEAU_CHANNEL_ALLOC, &mut ch).unwrap();
        let mut s0 = s;
        s0.ioctl.route = NVIF_IOCTL_V0_ROUTE_NVIF;
        assert_eq!(call(&mut w, f, &mut s0), Err(Errno::EINVAL), "route 0");
        let mut s1 = s;
        s1.sclass.count = 3; // does not match the block's size
        assert_eq!(call(&mut w, f, &mut s1), Err(Errno::EINVAL));
        call(&mut w, f, &mut s).unwrap();
        assert_eq!(s.sclass.count, 0);
        // NEW of an engine object on the channel: refused.
        let mut n = new_device(DEV);
        n.ioctl.route = NVIF_IOCTL_V0_ROUTE_HIDDEN;
        n.ioctl.token = 1;
        n.new.oclass = 0xc7b5;
        assert_eq!(call(&mut w, f, &mut n), Err(Errno::EINVAL));
    }

    #[test]
    fn a_lost_context_answers_enodev() {
        let mut w = world();
        let f = open(&mut w, 0);
        call(&mut w, f, &mut new_device(DEV)).unwrap();
        w.shim.gpu_restarted();
        assert_eq!(call(&mut w, f, &mut info_of(DEV)), Err(Errno::ENODEV));
    }
}

#[test]
fn fuzzed_nvif_blocks_never_panic() {
    use drm_api::nvif::*;
    use zerocopy::{FromZeros, IntoBytes};
    // Valid blocks to mutate, so the checks past the header are reached.
    let new = nvif_new_device {
        ioctl: nvif_ioctl_v0 {
            type_: ty::NEW,
            ..Default::default()
        },
        new: nvif_ioctl_new_v0 {
            object: 0x1000,
            oclass: NV_DEVICE,
            ..Default::default()
        },
        device: nv_device_v0::default(),
    };
    let mut info = nvif_device_info {
        ioctl: nvif_ioctl_v0 {
            type_: ty::MTHD,
            object: 0x1000,
            ..Default::default()
        },
        mthd: nvif_ioctl_mthd_v0::default(),
        info: nv_device_info_v0::new_zeroed(),
    };
    info.mthd.method = NV_DEVICE_V0_INFO;
    let templates: [&[u8]; 2] = [new.as_bytes(), info.as_bytes()];
    let buf = Region::from_static(vec![0u8; 0x10000].leak());
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        // One request: client 0, label, file, offset 0, length, payload.
        let mut data = vec![0u8];
        data.extend_from_slice(&drm_api::transport::op::OPEN.to_le_bytes());
        data.extend_from_slice(&[0u8; 8 + 2 + 1]);
        for _ in 0..4 {
            let mut block = templates[(next() % 2) as usize].to_vec();
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % block.len();
                block[at] = next() as u8;
            }
            // Sometimes the size field disagrees with the block.
            let size = match next() % 4 {
                0 => (next() % 200) as usize,
                _ => block.len(),
            };
            block.resize(size, 0);
            data.push(0);
            data.extend_from_slice(&u64::from(request(size)).to_le_bytes());
            data.extend_from_slice(&1u64.to_le_bytes());
            data.extend_from_slice(&0u16.to_le_bytes());
            data.push(size as u8);
            data.extend_from_slice(&block);
        }
        drm_shim::fuzz::ioctl_sequence(&buf, &data);
    }
}
