//! The unsafe edges: libc's real functions (`dlsym(RTLD_NEXT)`), the caller's memory by raw
//! pointer, descriptors received over `SCM_RIGHTS`, and shared mappings.
#![allow(unsafe_code)]

use crate::marshal::UserMem;
use drm_api::errno::Errno;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::OnceLock;

/// `open`/`open64`: `(path, flags, mode)`; libc declares them variadic.
pub type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
/// `openat`/`openat64`.
pub type OpenatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;
/// `ioctl(fd, request, ...)`.
pub type IoctlFn = unsafe extern "C" fn(c_int, libc::c_ulong, ...) -> c_int;
/// `mmap`/`mmap64`.
pub type MmapFn = unsafe extern "C" fn(
    *mut c_void,
    libc::size_t,
    c_int,
    c_int,
    c_int,
    libc::off_t,
) -> *mut c_void;
/// `close`.
pub type CloseFn = unsafe extern "C" fn(c_int) -> c_int;

/// One libc function, looked up once with `dlsym(RTLD_NEXT, name)`.
pub struct Real<F> {
    name: &'static CStr,
    f: OnceLock<Option<F>>,
}

impl<F> std::fmt::Debug for Real<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Real({:?})", self.name)
    }
}

impl<F: Copy> Real<F> {
    /// The function named `name`, of type `F`.
    pub const fn new(name: &'static CStr) -> Self {
        Self {
            name,
            f: OnceLock::new(),
        }
    }

    /// The next definition after this library's (libc's), or `None` when there is none.
    pub fn get(&self) -> Option<F> {
        *self.f.get_or_init(|| {
            // SAFETY: `name` is a NUL-terminated symbol name; RTLD_NEXT asks the loader for the
            // next object's definition, never ours.
            let p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) };
            if p.is_null() {
                None
            } else {
                // SAFETY: `F` is a function pointer type matching libc's prototype of `name`
                // (see the type aliases above); data and function pointers have one size here.
                Some(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
            }
        })
    }
}

pub static OPEN: Real<OpenFn> = Real::new(c"open");
pub static OPEN64: Real<OpenFn> = Real::new(c"open64");
pub static OPENAT: Real<OpenatFn> = Real::new(c"openat");
pub static OPENAT64: Real<OpenatFn> = Real::new(c"openat64");
pub static IOCTL: Real<IoctlFn> = Real::new(c"ioctl");
pub static MMAP: Real<MmapFn> = Real::new(c"mmap");
pub static MMAP64: Real<MmapFn> = Real::new(c"mmap64");
pub static CLOSE: Real<CloseFn> = Real::new(c"close");

/// Set `errno` and return -1 (libc's failure convention).
pub fn fail(e: Errno) -> c_int {
    // CAST: errnos are small positive numbers.
    let e = e.0 as c_int;
    // SAFETY: `__errno_location` returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = e };
    -1
}

/// The path argument of an `open` call, if it is readable as a C string.
///
/// # Safety
/// `path` is null or points to a NUL-terminated string (libc's contract for `open`).
pub unsafe fn path_of<'a>(path: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    (!path.is_null()).then(|| unsafe { CStr::from_ptr(path) }.to_bytes())
}

/// A descriptor that stands for one DRM file: `/dev/null`, opened through the real `open`, so the
/// number is really taken (no one else gets it), `close` works and `dup`/`fstat` see a file.
pub fn placeholder_fd() -> Result<c_int, Errno> {
    let open = OPEN.get().ok_or(Errno::ENOSYS)?;
    // SAFETY: a valid C string and flags; the variadic mode is unused without O_CREAT.
    let fd = unsafe { open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        Err(Errno(
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(5)
                .unsigned_abs(),
        ))
    } else {
        Ok(fd)
    }
}

/// The calling process's memory, by its own pointers. A bad pointer is caught where it is
/// obviously bad (null, wrapping); otherwise it faults in the caller, as any libc function given
/// a bad pointer would.
#[derive(Debug, Clone, Copy)]
pub struct CallerMem;

fn span(ptr: u64, len: usize) -> Result<*mut u8, Errno> {
    let p = usize::try_from(ptr).map_err(|_| Errno::EFAULT)?;
    match p.checked_add(len) {
        // CAST: an address the caller gave us, back to a pointer.
        Some(_) if p != 0 => Ok(p as *mut u8),
        _ => Err(Errno::EFAULT),
    }
}

impl UserMem for CallerMem {
    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<(), Errno> {
        if out.is_empty() {
            return Ok(());
        }
        let p = span(ptr, out.len())?;
        // SAFETY: the caller handed this pointer to `ioctl` as the argument (or an array the
        // argument names) of `out.len()` bytes, as the ioctl's uAPI defines; reading it is what
        // the kernel's copy_from_user would do. `out` is our own buffer, disjoint from it.
        unsafe { std::ptr::copy_nonoverlapping(p.cast_const(), out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    fn write(&self, ptr: u64, data: &[u8]) -> Result<(), Errno> {
        if data.is_empty() {
            return Ok(());
        }
        let p = span(ptr, data.len())?;
        // SAFETY: as in `read`: the uAPI makes these bytes the caller's output buffer.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }
}

/// Receive `buf.len()` bytes and up to `max_fds` descriptors passed with them (`SCM_RIGHTS`).
///
/// # Errors
/// The socket's error; `UnexpectedEof` when the peer closed before sending all of `buf`.
pub fn recv_with_fds(
    sock: &UnixStream,
    buf: &mut [u8],
    max_fds: usize,
) -> io::Result<Vec<OwnedFd>> {
    let fd_bytes = max_fds * std::mem::size_of::<c_int>();
    // CAST: a few descriptors' bytes fit c_uint, and the control size fits usize.
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes as c_uint) } as usize;
    // u64 storage keeps the control buffer aligned for `cmsghdr`.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // CAST: a small size into the platform's msg_controllen type.
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points at live buffers of the sizes it states.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: the CMSG_* walk stays within `msg_controllen`, which the kernel set.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<c_int>();
                // CAST: header lengths are small sizes.
                let count = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<c_int>();
                for i in 0..count {
                    // The kernel installed these descriptors for us: we own them now.
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    // CAST: n >= 0 was checked.
    let got = n as usize;
    if got < buf.len() {
        // The rest of the message without descriptors (a stream may split it).
        let mut s = sock;
        std::io::Read::read_exact(&mut s, buf.get_mut(got..).unwrap_or(&mut []))?;
    }
    Ok(fds)
}

/// A shared mapping of `size` bytes of `fd` (read-write when `writable`), anywhere.
///
/// # Errors
/// `mmap`'s error.
pub fn map_shared(fd: BorrowedFd<'_>, size: usize, writable: bool) -> io::Result<NonNull<u8>> {
    let mmap = MMAP
        .get()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOSYS))?;
    let prot = if writable {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_READ
    };
    // SAFETY: a fresh mapping at an address the kernel picks; nothing of ours is replaced.
    let p = unsafe {
        mmap(
            std::ptr::null_mut(),
            size,
            prot,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// A [`pd_core::shm::Region`] over a mapping made by [`map_shared`] that is never unmapped.
pub fn region_of(base: NonNull<u8>, size: usize) -> pd_core::shm::Region<pd_core::shm::ReadWrite> {
    // SAFETY: `base..base+size` is a writable shared mapping that lives as long as the process
    // (the slot keeps it), and `Region` only ever copies in and out of it.
    unsafe { pd_core::shm::Region::new(base, size) }
}
