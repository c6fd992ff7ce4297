//! nova's driver ioctls (`nova_drm.h`: GETPARAM, GEM_CREATE, GEM_INFO; not yet a stable uAPI).

use crate::file::Bo;
use crate::{check_request, errno_of, Call};
use drm_api::errno::Errno;
use drm_api::ioctl::{nr, Request, DRM_COMMAND_BASE};
use drm_api::uapi::*;

pub(crate) fn dispatch(cx: &mut Call<'_, '_>, req: u32) -> Result<(), Errno> {
    let r = Request::decode(req);
    if r.ty != u32::from(b'd') {
        return Err(Errno::ENOTTY);
    }
    match r.nr.checked_sub(DRM_COMMAND_BASE) {
        Some(0x00) => check_request(req, nr::NOVA_GETPARAM).and_then(|()| getparam(cx)),
        Some(0x01) => check_request(req, nr::NOVA_GEM_CREATE).and_then(|()| gem_create(cx)),
        Some(0x02) => check_request(req, nr::NOVA_GEM_INFO).and_then(|()| gem_info(cx)),
        _ => Err(Errno::EINVAL),
    }
}

fn getparam(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let mut g: drm_nova_getparam = cx.arg()?;
    g.value = match g.param {
        NOVA_GETPARAM_VRAM_BAR_SIZE => cx.device.vram_bar_size,
        _ => return Err(Errno::EINVAL),
    };
    cx.put(&g)
}

/// nova's GEM objects are VRAM objects.
fn gem_create(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let mut c: drm_nova_gem_create = cx.arg()?;
    if c.size == 0 {
        return Err(Errno::EINVAL);
    }
    let desc = cx
        .gpu
        .bo_new(cx.file.ctx, domain::VRAM, c.size, 0)
        .map_err(errno_of)?;
    c.handle = match cx.file.bos.insert(Bo { desc }) {
        Ok(h) => h,
        Err(bo) => {
            let _ = cx.gpu.bo_free(cx.file.ctx, bo.desc.id);
            return Err(Errno::ENOMEM);
        }
    };
    cx.put(&c)
}

fn gem_info(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let mut i: drm_nova_gem_info = cx.arg()?;
    i.size = cx.file.bos.get(i.handle).ok_or(Errno::ENOENT)?.desc.size;
    cx.put(&i)
}
