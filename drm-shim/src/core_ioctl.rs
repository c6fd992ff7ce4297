//! DRM core ioctls every driver answers: VERSION, GET_CAP, GEM_CLOSE and the syncobj calls.

use crate::file::Personality;
use crate::sync::SyncObj;
use crate::{check_request, errno_of, Call};
use drm_api::errno::Errno;
use drm_api::ioctl::{nr, Request};
use drm_api::uapi::*;

/// What VERSION reports: nouveau 1.4.0 (>= 1.3.1 makes libdrm take the NVIF path; 1.4 is the
/// version that added VM_BIND/EXEC), with nouveau's date and description strings.
const NOUVEAU: (i32, i32, i32, &[u8], &[u8], &[u8]) = (
    1,
    4,
    0,
    b"nouveau",
    b"20120801",
    b"nVidia Riva/TNT/GeForce/Quadro/Tesla/Tegra K1+",
);
/// nova's VERSION (drivers/gpu/drm/nova: major 0, minor 0).
const NOVA: (i32, i32, i32, &[u8], &[u8], &[u8]) = (0, 0, 0, b"nova", b"20250204", b"Nvidia GPUs");

/// Handle `req` if it is a core ioctl; `None` lets the driver personality try.
pub(crate) fn dispatch(cx: &mut Call<'_, '_>, req: u32) -> Option<Result<(), Errno>> {
    let nr = Request::decode(req).nr;
    let expected = match nr {
        0x00 => nr::VERSION,
        0x09 => nr::GEM_CLOSE,
        0x0c => nr::GET_CAP,
        0xbf => nr::SYNCOBJ_CREATE,
        0xc0 => nr::SYNCOBJ_DESTROY,
        0xc3 => nr::SYNCOBJ_WAIT,
        _ => return None,
    };
    Some(check_request(req, expected).and_then(|()| match nr {
        0x00 => version(cx),
        0x09 => gem_close(cx),
        0x0c => get_cap(cx),
        0xbf => syncobj_create(cx),
        0xc0 => syncobj_destroy(cx),
        _ => syncobj_wait(cx),
    }))
}

/// Linux `drm_copy_field`: copy at most the user's length, report the full length.
fn copy_field(cx: &Call<'_, '_>, len: &mut u64, ptr: u64, value: &[u8]) -> Result<(), Errno> {
    // CAST: the strings are a few dozen bytes.
    let n = (value.len() as u64).min(*len);
    *len = value.len() as u64;
    if n > 0 && ptr != 0 {
        let n = usize::try_from(n).map_err(|_| Errno::EINVAL)?;
        cx.mem.write_bytes(ptr, value.get(..n).unwrap_or(value))?;
    }
    Ok(())
}

fn version(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let mut v: drm_version = cx.arg()?;
    let (major, minor, patch, name, date, desc) = match cx.file.personality {
        Personality::Nouveau => NOUVEAU,
        Personality::Nova => NOVA,
    };
    (v.version_major, v.version_minor, v.version_patchlevel) = (major, minor, patch);
    copy_field(cx, &mut v.name_len, v.name, name)?;
    copy_field(cx, &mut v.date_len, v.date, date)?;
    copy_field(cx, &mut v.desc_len, v.desc, desc)?;
    cx.put(&v)
}

fn get_cap(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let mut c: drm_get_cap = cx.arg()?;
    c.value = match c.capability {
        DRM_CAP_SYNCOBJ => 1,
        DRM_CAP_SYNCOBJ_TIMELINE => 0,
        _ => return Err(Errno::EINVAL),
    };
    cx.put(&c)
}

/// GEM_CLOSE of an unknown handle is `EINVAL` on Linux (`drm_gem_handle_delete`).
fn gem_close(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let c: drm_gem_close = cx.arg()?;
    let bo = cx.file.bos.get(c.handle).ok_or(Errno::EINVAL)?.desc.id;
    cx.gpu.bo_free(cx.file.ctx, bo).map_err(errno_of)?;
    cx.file.bos.remove(c.handle);
    Ok(())
}

fn syncobj_create(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let mut c: drm_syncobj_create = cx.arg()?;
    if c.flags & !DRM_SYNCOBJ_CREATE_SIGNALED != 0 {
        return Err(Errno::EINVAL);
    }
    let obj = if c.flags & DRM_SYNCOBJ_CREATE_SIGNALED != 0 {
        SyncObj::Signaled
    } else {
        SyncObj::Empty
    };
    c.handle = cx.file.syncs.insert(obj).map_err(|_| Errno::ENOMEM)?;
    cx.put(&c)
}

fn syncobj_destroy(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let c: drm_syncobj_destroy = cx.arg()?;
    if c.pad != 0 {
        return Err(Errno::EINVAL);
    }
    cx.file
        .syncs
        .remove(c.handle)
        .map(|_| ())
        .ok_or(Errno::EINVAL)
}

/// Waits without blocking the shim: a PD answers in bounded time, and the GPU completes jobs
/// before their fences are read, so a fence still pending here has missed its deadline (`ETIME`).
fn syncobj_wait(cx: &mut Call<'_, '_>) -> Result<(), Errno> {
    let mut w: drm_syncobj_wait = cx.arg()?;
    let known = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
    if w.flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    let n = usize::try_from(w.count_handles).map_err(|_| Errno::EINVAL)?;
    if n > crate::file::MAX_SYNCOBJS {
        return Err(Errno::EINVAL);
    }
    let wait_all = w.flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL != 0;
    let mut first = None;
    let mut all = true;
    for i in 0..n {
        let h: u32 = cx.mem.read_elem(w.handles, i)?;
        let done = match cx.sync_signaled(h) {
            Err(Errno::EINVAL) if w.flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT != 0 => false,
            r => r?,
        };
        all &= done;
        if done && first.is_none() {
            first = Some(i);
        }
    }
    let satisfied = if wait_all {
        all
    } else {
        first.is_some() || n == 0
    };
    if !satisfied {
        return Err(Errno::ETIME);
    }
    // CAST: i < MAX_SYNCOBJS.
    w.first_signaled = first.unwrap_or(0) as u32;
    cx.put(&w)
}
