//! The exported libc entry points (the `LD_PRELOAD` part) and the per-process state behind them.
//!
//! `open`/`open64`/`openat`/`openat64` of a `/dev/dri/renderD*` path, when `HOSTED_DRM_SOCKET`
//! names a slot, attach to the slot (once per process), open a DRM file there and return a
//! placeholder descriptor (`/dev/null`) standing for it. `ioctl`, `mmap`/`mmap64` and `close` on
//! such a descriptor go to the slot; every other call, and every call on another descriptor, goes
//! to libc's own function untouched (`dlsym(RTLD_NEXT)`). `munmap` needs no hook: a BO mapping is
//! an ordinary shared mapping of the slot's region.
//!
//! libc declares `open`, `openat` and `ioctl` variadic; Rust cannot define variadic functions, so
//! the hooks take the optional argument as a fixed one. On the Linux C ABIs (x86-64 SysV, AAPCS64)
//! a variadic integer or pointer argument travels exactly where a fixed one would, so the hook
//! reads the caller's `mode`/`arg` (garbage when the caller passed none, and then unused).
//!
//! Limits: a program must open the render node by path (as `nouveau_drm_new(fd)` users do); device
//! discovery through sysfs (`drmGetDevices2`, Mesa) finds nothing. A descriptor made by `dup` of a
//! DRM descriptor is not a DRM file here, and a forked child must not use its parent's DRM
//! descriptors (it shares the parent's connection to the slot).
#![allow(unsafe_code)]

use crate::slot::Slot;
use crate::sys::{
    self, CallerMem, Real, CLOSE, IOCTL, MMAP, MMAP64, OPEN, OPEN64, OPENAT, OPENAT64,
};
use drm_api::errno::Errno;
use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// DRM files one process may have open through the slot at once.
const MAX_FILES: usize = 16;
/// Render nodes: the paths whose `open` goes to the slot.
const RENDER_NODE: &[u8] = b"/dev/dri/renderD";
/// The environment variable naming the slot's socket.
const SOCKET_ENV: &str = "HOSTED_DRM_SOCKET";
/// Set (to anything) to log every forwarded call on stderr.
const TRACE_ENV: &str = "HOSTED_DRM_TRACE";

/// The placeholder descriptors standing for DRM files, readable without the lock so that calls on
/// other descriptors (including this library's own socket and mappings) never wait for it.
static FAKE_FDS: [AtomicI32; MAX_FILES] = [const { AtomicI32::new(-1) }; MAX_FILES];

/// The attached slot and which DRM file each placeholder stands for.
struct State {
    slot: Option<Slot>,
    files: Vec<(c_int, u64)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    slot: None,
    files: Vec::new(),
});

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_ours(fd: c_int) -> bool {
    fd >= 0 && FAKE_FDS.iter().any(|f| f.load(Ordering::Acquire) == fd)
}

fn trace(what: std::fmt::Arguments<'_>) {
    if std::env::var_os(TRACE_ENV).is_some() {
        eprintln!("interposer: {what}");
    }
}

/// Open a DRM file on the slot and return its placeholder descriptor (or -1 with errno).
fn open_drm_file(socket: &str) -> c_int {
    let mut st = state();
    if st.slot.is_none() {
        match Slot::attach(socket) {
            Ok(s) => st.slot = Some(s),
            Err(e) => {
                eprintln!("interposer: {socket}: {e}");
                return sys::fail(e.errno());
            }
        }
    }
    let Some(free) = FAKE_FDS.iter().find(|f| f.load(Ordering::Acquire) < 0) else {
        return sys::fail(Errno::EMFILE);
    };
    let Some(slot) = st.slot.as_mut() else {
        return sys::fail(Errno::ENODEV);
    };
    let file = match slot.open() {
        Ok(f) => f,
        Err(e) => return sys::fail(e),
    };
    let fd = match sys::placeholder_fd() {
        Ok(fd) => fd,
        Err(e) => {
            let _ = slot.close(file);
            return sys::fail(e);
        }
    };
    st.files.push((fd, file));
    free.store(fd, Ordering::Release);
    trace(format_args!("open -> fd {fd} (DRM file {file})"));
    fd
}

/// `Some(result)` when `path` is a render node and a slot is configured.
///
/// # Safety
/// `path` is null or a NUL-terminated string.
unsafe fn intercept_open(path: *const c_char) -> Option<c_int> {
    // SAFETY: forwarded from the caller's contract.
    let p = unsafe { sys::path_of(path) }?;
    if !p.starts_with(RENDER_NODE) {
        return None;
    }
    let socket = std::env::var(SOCKET_ENV).ok()?;
    Some(open_drm_file(&socket))
}

unsafe fn real_open(
    real: &Real<sys::OpenFn>,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    match real.get() {
        // SAFETY: libc's own `open` with the caller's arguments.
        Some(f) => unsafe { f(path, flags, mode) },
        None => sys::fail(Errno::ENOSYS),
    }
}

unsafe fn real_openat(
    real: &Real<sys::OpenatFn>,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    match real.get() {
        // SAFETY: libc's own `openat` with the caller's arguments.
        Some(f) => unsafe { f(dirfd, path, flags, mode) },
        None => sys::fail(Errno::ENOSYS),
    }
}

/// Export libc's `open`-like `$name` (path, flags, mode), falling back to `$real`.
macro_rules! open_hook {
    ($name:ident, $real:ident) => {
        #[doc = concat!("libc `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// libc's contract for it.
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
            // SAFETY: the caller's contract for this function.
            unsafe { intercept_open(path).unwrap_or_else(|| real_open(&$real, path, flags, mode)) }
        }
    };
}

/// Export libc's `openat`-like `$name` (render nodes are absolute paths, so `dirfd` plays no
/// part for them), falling back to `$real`.
macro_rules! openat_hook {
    ($name:ident, $real:ident) => {
        #[doc = concat!("libc `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// libc's contract for it.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            dirfd: c_int,
            path: *const c_char,
            flags: c_int,
            mode: c_uint,
        ) -> c_int {
            // SAFETY: the caller's contract for this function.
            unsafe {
                intercept_open(path)
                    .unwrap_or_else(|| real_openat(&$real, dirfd, path, flags, mode))
            }
        }
    };
}

open_hook!(open, OPEN);
open_hook!(open64, OPEN64);
openat_hook!(openat, OPENAT);
openat_hook!(openat64, OPENAT64);

/// libc `ioctl`.
///
/// # Safety
/// libc's contract for `ioctl`: `arg` is what `request` expects.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    if !is_ours(fd) {
        return match IOCTL.get() {
            // SAFETY: libc's own `ioctl` with the caller's arguments.
            Some(f) => unsafe { f(fd, request, arg) },
            None => sys::fail(Errno::ENOSYS),
        };
    }
    let Ok(req) = u32::try_from(request) else {
        return sys::fail(Errno::ENOTTY);
    };
    let mut st = state();
    let State { slot, files } = &mut *st;
    let (Some(slot), Some(&(_, file))) = (slot.as_mut(), files.iter().find(|(f, _)| *f == fd))
    else {
        return sys::fail(Errno::EBADF);
    };
    // CAST: a pointer to u64 is lossless on every supported target.
    let result = slot.ioctl(file, req, arg as u64, &CallerMem);
    trace(format_args!(
        "ioctl fd {fd} {req:#010x} -> {}",
        result.map_or_else(|e| e.to_string(), |()| "ok".into())
    ));
    match result {
        Ok(()) => 0,
        Err(e) => sys::fail(e),
    }
}

unsafe fn mmap_common(
    real: &Real<sys::MmapFn>,
    addr: *mut c_void,
    len: libc::size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: libc::off_t,
) -> *mut c_void {
    let Some(f) = real.get() else {
        sys::fail(Errno::ENOSYS);
        return libc::MAP_FAILED;
    };
    if !is_ours(fd) {
        // SAFETY: libc's own `mmap` with the caller's arguments.
        return unsafe { f(addr, len, prot, flags, fd, off) };
    }
    let st = state();
    // CAST: usize to u64 is lossless on every supported target.
    let target = match (st.slot.as_ref(), u64::try_from(off)) {
        (Some(slot), Ok(off)) => slot.map_target(off, len as u64),
        _ => None,
    };
    // No BO at that offset: EINVAL, as `drm_gem_mmap` answers.
    let Some((region, region_off, writable)) = target else {
        trace(format_args!("mmap fd {fd} offset {off:#x} -> no BO there"));
        sys::fail(Errno::EINVAL);
        return libc::MAP_FAILED;
    };
    if prot & libc::PROT_WRITE != 0 && !writable {
        sys::fail(Errno::EACCES);
        return libc::MAP_FAILED;
    }
    let Ok(region_off) = libc::off_t::try_from(region_off) else {
        sys::fail(Errno::EINVAL);
        return libc::MAP_FAILED;
    };
    trace(format_args!(
        "mmap fd {fd} offset {off:#x} len {len:#x} -> region offset {region_off:#x}"
    ));
    // SAFETY: the caller's own mmap request, redirected to the slot region's descriptor: the
    // mapping is of the slot's real memory, with the caller's address hint, length and rights.
    unsafe { f(addr, len, prot, flags, region.as_raw_fd(), region_off) }
}

/// Export libc's `mmap`-like `$name` (libdrm maps BOs with `mmap64`), falling back to `$real`.
macro_rules! mmap_hook {
    ($name:ident, $real:ident) => {
        #[doc = concat!("libc `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// libc's contract for it.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            addr: *mut c_void,
            len: libc::size_t,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            off: libc::off_t,
        ) -> *mut c_void {
            // SAFETY: the caller's contract for this function.
            unsafe { mmap_common(&$real, addr, len, prot, flags, fd, off) }
        }
    };
}

mmap_hook!(mmap, MMAP);
mmap_hook!(mmap64, MMAP64);

/// libc `close`: a DRM file is closed on the slot first (freeing everything it owns).
///
/// # Safety
/// libc's contract for `close`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if is_ours(fd) {
        let mut st = state();
        if let Some(i) = st.files.iter().position(|(f, _)| *f == fd) {
            let (_, file) = st.files.swap_remove(i);
            if let Some(slot) = st.slot.as_mut() {
                let r = slot.close(file);
                let r = r.map_or_else(|e| e.to_string(), |()| "ok".into());
                trace(format_args!("close fd {fd} (DRM file {file}) -> {r}"));
            }
        }
        for f in FAKE_FDS.iter() {
            let _ = f.compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Acquire);
        }
    }
    match CLOSE.get() {
        // SAFETY: libc's own `close`.
        Some(f) => unsafe { f(fd) },
        None => sys::fail(Errno::ENOSYS),
    }
}
