//! nouveau's driver ioctls (`nouveau_drm.h`), with the errno nouveau returns on each error path.

use crate::file::Bo;
use crate::sync::SyncObj;
use crate::{check_request, errno_of, Call};
use drm_api::errno::Errno;
use drm_api::ioctl::{nr, Request, DRM_COMMAND_BASE};
use drm_api::uapi::*;
use gpu_api::{ChanId, Push};

/// GPU pages are 4 KiB: VM_BIND addresses, offsets and ranges must be multiples.
const PAGE: u64 = 0x1000;

/// One ioctl's handler.
type Handler = fn(&mut Call<'_, '_>) -> Result<(), Errno>;

pub(crate) fn dispatch(cx: &mut Call<'_, '_>, req: u32) -> Result<(), Errno> {
    let r = Request::decode(req);
    if r.ty != u32::from(b'd') {
        return Err(Errno::ENOTTY);
    }
    let Some(driver_nr) = r.nr.checked_sub(DRM_COMMAND_BASE) else {
        return Err(Errno::EINVAL);
    };
    let (expected, handler): (u32, Handler) = match driver_nr {
        // NVIF's size varies per call (Linux dispatches on the nr alone and passes the size on).
        0x07 => return crate::nvif::dispatch(cx, r.size),
        0x00 => (nr::NOUVEAU_GETPARAM, getparam),
        0x02 => (nr::NOUVEAU_CHANNEL_ALLOC, channel_alloc),
        0x03 => (nr::NOUVEAU_CHANNEL_FREE, channel_free),
        0x10 => (nr::NOUVEAU_VM_INIT, vm_init),
        0x11 => (nr::NOUVEAU_VM_BIND, vm_bind),
        0x12 => (nr::NOUVEAU_EXEC, exec),
        0x40 => (nr::NOUVEAU_GEM_NEW, gem_new),
        0x42 => (nr::NOUVEAU_GEM_CPU_PREP, gem_cpu_prep),
        0x43 => (nr::NOUVEAU_GEM_CPU_FINI, gem_cpu_fini),
        0x44 => (nr::NOUVEAU_GEM_INFO, gem_info),
        _ => return Err(Errno::EINVAL),
    };
    check_request(req, expected)?;
    handler(cx)
}

fn getparam(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    use drm_api::uapi::getparam as p;
    let mut g: drm_nouveau_getparam = cx.arg()?;
    let d = cx.device;
    g.value = match g.param {
        p::PCI_VENDOR => u64::from(d.vendor),
        p::PCI_DEVICE => u64::from(d.device),
        p::BUS_TYPE => p::BUS_TYPE_PCIE,
        p::FB_SIZE => d.fb_size,
        p::AGP_SIZE => 0,
        p::CHIPSET_ID => u64::from(d.chipset),
        p::GRAPH_UNITS => d.graph_units,
        p::PTIMER_TIME => cx.gpu.ptimer_ns().map_err(errno_of)?,
        p::HAS_BO_USAGE => 1,
        p::EXEC_PUSH_MAX => u64::from(d.exec_push_max),
        p::VRAM_BAR_SIZE => d.vram_bar_size,
        p::VRAM_USED => cx.gpu.vram_used().map_err(errno_of)?,
        _ => return Err(Errno::EINVAL),
    };
    cx.put(&g)
}

/// Channels need the VA space (the VM_BIND uAPI); the legacy kernel-managed-VM path is not
/// offered, so a channel before VM_INIT is `ENOSYS`, like every VM_BIND-era call.
fn channel_alloc(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let mut a: drm_nouveau_channel_alloc = cx.arg()?;
    if !cx.file.vm_ready {
        return Err(Errno::ENOSYS);
    }
    let chan = cx.gpu.channel_alloc(cx.file.ctx).map_err(errno_of)?;
    let id = match cx.file.chans.insert(chan) {
        Ok(id) => id,
        Err(chan) => {
            // Table full: give the channel back so nothing leaks.
            let _ = cx.gpu.channel_free(cx.file.ctx, chan);
            return Err(Errno::ENOMEM);
        }
    };
    a.channel = i32::try_from(id).map_err(|_| Errno::EINVAL)?;
    a.pushbuf_domains = domain::VRAM | domain::GART;
    a.notifier_handle = 0;
    a.nr_subchan = 0;
    cx.put(&a)
}

fn chan_handle(channel: i32) -> Result<u32, Errno> {
    u32::try_from(channel).map_err(|_| Errno::ENOENT)
}

fn channel_free(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let a: drm_nouveau_channel_free = cx.arg()?;
    let h = chan_handle(a.channel)?;
    let chan = *cx.file.chans.get(h).ok_or(Errno::ENOENT)?;
    cx.gpu.channel_free(cx.file.ctx, chan).map_err(errno_of)?;
    cx.file.chans.remove(h);
    Ok(())
}

fn gem_info_of(handle: u32, bo: &Bo) -> drm_nouveau_gem_info {
    drm_nouveau_gem_info {
        handle,
        domain: bo.desc.domain,
        size: bo.desc.size,
        offset: 0,
        map_handle: bo.desc.map_addr,
        tile_mode: 0,
        tile_flags: 0,
    }
}

fn gem_new(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let mut n: drm_nouveau_gem_new = cx.arg()?;
    let dom = n.info.domain;
    if dom == 0
        || dom & !domain::VALID != 0
        || dom & (domain::VRAM | domain::GART | domain::CPU) == 0
    {
        return Err(Errno::EINVAL);
    }
    if n.info.size == 0 || (n.align != 0 && !n.align.is_power_of_two()) {
        return Err(Errno::EINVAL);
    }
    let desc = cx
        .gpu
        .bo_new(cx.file.ctx, dom, n.info.size, u64::from(n.align))
        .map_err(errno_of)?;
    let handle = match cx.file.bos.insert(Bo { desc }) {
        Ok(h) => h,
        Err(bo) => {
            let _ = cx.gpu.bo_free(cx.file.ctx, bo.desc.id);
            return Err(Errno::ENOMEM);
        }
    };
    let bo = cx.file.bos.get(handle).ok_or(Errno::ENOENT)?;
    n.info = gem_info_of(handle, bo);
    cx.put(&n)
}

fn gem_info(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let i: drm_nouveau_gem_info = cx.arg()?;
    let bo = cx.file.bos.get(i.handle).ok_or(Errno::ENOENT)?;
    cx.put(&gem_info_of(i.handle, bo))
}

fn gem_cpu_prep(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let p: drm_nouveau_gem_cpu_prep = cx.arg()?;
    let bo = cx.file.bos.get(p.handle).ok_or(Errno::ENOENT)?.desc.id;
    let busy = cx.gpu.bo_busy(cx.file.ctx, bo).map_err(errno_of)?;
    match (busy, p.flags & NOUVEAU_GEM_CPU_PREP_NOWAIT != 0) {
        (false, _) => Ok(()),
        (true, true) => Err(Errno::EBUSY),
        // Jobs complete before their fences are read (see sync.rs): still busy means stuck.
        (true, false) => Err(Errno::ETIMEDOUT),
    }
}

fn gem_cpu_fini(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let f: drm_nouveau_gem_cpu_fini = cx.arg()?;
    cx.file.bos.get(f.handle).map(|_| ()).ok_or(Errno::ENOENT)
}

fn vm_init(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let v: drm_nouveau_vm_init = cx.arg()?;
    if cx.file.vm_ready {
        return Err(Errno::EEXIST);
    }
    if !v.kernel_managed_addr.is_multiple_of(PAGE) || !v.kernel_managed_size.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    cx.gpu
        .vm_init(cx.file.ctx, v.kernel_managed_addr, v.kernel_managed_size)
        .map_err(errno_of)?;
    cx.file.vm_ready = true;
    Ok(())
}

fn vm_bind(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let b: drm_nouveau_vm_bind = cx.arg()?;
    if !cx.file.vm_ready {
        return Err(Errno::ENOSYS);
    }
    if b.flags & !DRM_NOUVEAU_VM_BIND_RUN_ASYNC != 0 {
        return Err(Errno::EINVAL);
    }
    // A synchronous bind carries no syncobjs (nouveau_uvmm: EINVAL).
    if b.flags & DRM_NOUVEAU_VM_BIND_RUN_ASYNC == 0 && (b.wait_count != 0 || b.sig_count != 0) {
        return Err(Errno::EINVAL);
    }
    let n = usize::try_from(b.op_count).map_err(|_| Errno::EINVAL)?;
    // Validate everything before doing anything, so a bad request loses nothing.
    for i in 0..n {
        let op: drm_nouveau_vm_bind_op = cx.mem.read_elem(b.op_ptr, i)?;
        check_op(cx, &op)?;
    }
    cx.check_signal_list(b.sig_ptr, b.sig_count)?;
    cx.wait_list(b.wait_ptr, b.wait_count)?;
    for i in 0..n {
        let op: drm_nouveau_vm_bind_op = cx.mem.read_elem(b.op_ptr, i)?;
        let sparse = op.flags & DRM_NOUVEAU_VM_BIND_SPARSE != 0;
        let result = match op.op {
            DRM_NOUVEAU_VM_BIND_OP_MAP if sparse => {
                cx.gpu.vm_map(cx.file.ctx, None, op.addr, 0, op.range)
            }
            DRM_NOUVEAU_VM_BIND_OP_MAP => {
                let bo = cx.file.bos.get(op.handle).ok_or(Errno::ENOENT)?.desc.id;
                cx.gpu
                    .vm_map(cx.file.ctx, Some(bo), op.addr, op.bo_offset, op.range)
            }
            _ => cx.gpu.vm_unmap(cx.file.ctx, op.addr, op.range),
        };
        result.map_err(errno_of)?;
    }
    cx.signal_list(b.sig_ptr, b.sig_count, SyncObj::Signaled)
}

fn check_op(cx: &Call<'_, '_>, op: &drm_nouveau_vm_bind_op) -> Result<(), Errno> {
    if op.flags & !DRM_NOUVEAU_VM_BIND_SPARSE != 0 || op.op > DRM_NOUVEAU_VM_BIND_OP_UNMAP {
        return Err(Errno::EINVAL);
    }
    let aligned = [op.addr, op.range, op.bo_offset]
        .iter()
        .all(|v| v.is_multiple_of(PAGE));
    if op.range == 0 || !aligned {
        return Err(Errno::EINVAL);
    }
    if op.addr.checked_add(op.range).is_none() {
        return Err(Errno::EINVAL);
    }
    let sparse = op.flags & DRM_NOUVEAU_VM_BIND_SPARSE != 0;
    if op.op == DRM_NOUVEAU_VM_BIND_OP_MAP && !sparse {
        let bo = cx.file.bos.get(op.handle).ok_or(Errno::ENOENT)?;
        let end = op.bo_offset.checked_add(op.range).ok_or(Errno::EINVAL)?;
        if end > bo.desc.size {
            return Err(Errno::EINVAL);
        }
    }
    Ok(())
}

fn exec(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let e: drm_nouveau_exec = cx.arg()?;
    if !cx.file.vm_ready {
        return Err(Errno::ENOSYS);
    }
    let chan: ChanId = *cx.file.chans.get(e.channel).ok_or(Errno::ENOENT)?;
    let n = usize::try_from(e.push_count).map_err(|_| Errno::EINVAL)?;
    let max = usize::try_from(cx.device.exec_push_max)
        .unwrap_or(0)
        .min(gpu_api::ppc::MAX_PUSHES);
    if n > max {
        return Err(Errno::EINVAL);
    }
    let mut pushes = [Push::default(); gpu_api::ppc::MAX_PUSHES];
    for (i, p) in pushes.iter_mut().take(n).enumerate() {
        let u: drm_nouveau_exec_push = cx.mem.read_elem(e.push_ptr, i)?;
        if u.va_len == 0 || u.flags & !DRM_NOUVEAU_EXEC_PUSH_NO_PREFETCH != 0 {
            return Err(Errno::EINVAL);
        }
        *p = Push {
            va: u.va,
            len: u.va_len,
            flags: u.flags,
        };
    }
    cx.check_signal_list(e.sig_ptr, e.sig_count)?;
    cx.wait_list(e.wait_ptr, e.wait_count)?;
    let job = cx
        .gpu
        .exec(cx.file.ctx, chan, pushes.get(..n).unwrap_or(&[]))
        .map_err(errno_of)?;
    let payload = if job.done {
        SyncObj::Signaled
    } else {
        SyncObj::Fence(job.fence)
    };
    cx.signal_list(e.sig_ptr, e.sig_count, payload)
}
