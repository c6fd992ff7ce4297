//! Anonymous shared memory: memfds (one per region, channel page and control page) and their
//! mappings.
//!
//! A memfd is sealed against growing and shrinking once sized, so no holder can truncate it under
//! another PD's mapping (which would turn the other PD's accesses into SIGBUS). A read-only mapping
//! is made from a read-only file description (`/proc/self/fd/N` reopened `O_RDONLY`), so the PD
//! cannot `mprotect` its way to write access either.

use super::check;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;

/// Access rights of a mapping (`perms="rwx"` in system.xml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prot {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
}

impl Prot {
    /// Read and write: channel and control pages.
    pub const RW: Self = Self {
        read: true,
        write: true,
        exec: false,
    };

    fn bits(self) -> libc::c_int {
        let mut p = libc::PROT_NONE;
        if self.read {
            p |= libc::PROT_READ;
        }
        if self.write {
            p |= libc::PROT_WRITE;
        }
        if self.exec {
            p |= libc::PROT_EXEC;
        }
        p
    }
}

/// A sized, sealed memfd.
#[derive(Debug)]
pub struct Memfd {
    file: File,
    size: usize,
}

impl Memfd {
    /// A zeroed memfd of `size` bytes named `name` (visible in `/proc/PID/fd` as `memfd:NAME`).
    ///
    /// # Errors
    /// The OS error of `memfd_create`, `ftruncate` or the sealing `fcntl`.
    pub fn create(name: &str, size: usize) -> io::Result<Self> {
        let cname = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: `cname` is a valid NUL-terminated string; the flags are valid memfd flags.
        let fd = check(unsafe {
            libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        })?;
        // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        // CAST: usize fits u64 on every Linux target.
        file.set_len(size as u64)?;
        // SAFETY: F_ADD_SEALS on an fd we own, with valid seal flags.
        check(unsafe {
            libc::fcntl(
                file.as_raw_fd(),
                libc::F_ADD_SEALS,
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
            )
        })?;
        Ok(Self { file, size })
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Copy `data` into the memfd at `offset` (prefilling a region without mapping it).
    ///
    /// # Errors
    /// `InvalidInput` when the data does not fit, or the OS error of `pwrite`.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> io::Result<()> {
        match offset.checked_add(data.len()) {
            // CAST: usize fits u64.
            Some(end) if end <= self.size => self.file.write_all_at(data, offset as u64),
            _ => Err(io::ErrorKind::InvalidInput.into()),
        }
    }

    /// The read-write descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// A new descriptor of the same memory that only allows reading (and mapping read-only).
    ///
    /// # Errors
    /// The OS error of `open`.
    pub fn reopen_read_only(&self) -> io::Result<OwnedFd> {
        let path = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        let f = std::fs::OpenOptions::new().read(true).open(path)?;
        Ok(OwnedFd::from(f))
    }
}

/// A shared mapping of a descriptor, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Map `len` bytes of `fd` shared with `prot`, at exactly `at` when given
    /// (`MAP_FIXED_NOREPLACE`: fails rather than replace an existing mapping), else anywhere.
    ///
    /// # Errors
    /// The OS error of `mmap` (`EEXIST` when `at` overlaps a mapping, `EACCES` when `prot` asks for
    /// more than the descriptor allows); `AddrInUse` when an old kernel ignored the fixed address.
    pub fn new(fd: BorrowedFd<'_>, len: usize, prot: Prot, at: Option<usize>) -> io::Result<Self> {
        let mut flags = libc::MAP_SHARED;
        if at.is_some() {
            flags |= libc::MAP_FIXED_NOREPLACE;
        }
        let hint = at.unwrap_or(0) as *mut libc::c_void;
        // SAFETY: mmap with MAP_FIXED_NOREPLACE (or no fixed address) never replaces an existing
        // mapping, so no memory this process uses can be pulled from under it.
        let p = unsafe { libc::mmap(hint, len, prot.bits(), flags, fd.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(super::last_error());
        }
        let base = NonNull::new(p.cast::<u8>()).ok_or(io::ErrorKind::AddrNotAvailable)?;
        let mapping = Self { base, len };
        match at {
            Some(a) if a != p as usize => Err(io::ErrorKind::AddrInUse.into()),
            _ => Ok(mapping),
        }
    }

    /// The mapping's first byte.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: mmap refuses length 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// View the start of the mapping as a `T` made only of atomics (a channel or control page);
    /// `None` when the mapping is too short.
    pub fn page<T: SharedPage>(&self) -> Option<&T> {
        if self.len < std::mem::size_of::<T>() || self.base.as_ptr().align_offset(4096) != 0 {
            return None;
        }
        // SAFETY: the mapping is page-aligned, at least `size_of::<T>()` bytes long and lives as
        // long as the returned reference; `T: SharedPage` consists only of atomics, valid for
        // every bit pattern (a fresh memfd is zero) and safe to share with other processes.
        Some(unsafe { &*self.base.as_ptr().cast::<T>() })
    }

    /// Keep the mapping for the rest of the process's life (a PD's pages).
    pub fn leak(self) -> &'static Self {
        Box::leak(Box::new(self))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base..base+len` is a mapping this value owns; no reference into it outlives
        // `self` (`page` borrows from `self`).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// A page layout made only of atomics (and arrays of them), so any bytes are a valid value and
/// concurrent access by other processes is not a data race.
///
/// # Safety
/// Implement only for `#[repr(C)]` types whose fields are all `AtomicU32`/`AtomicU64` (or arrays
/// or structs of them), aligned to at most 4096.
pub unsafe trait SharedPage {}

// SAFETY: `ChannelPage` is `#[repr(C)]` and made only of `AtomicU32`/`AtomicU64` (arrays).
unsafe impl SharedPage for crate::pages::ChannelPage {}
// SAFETY: `ControlPage` is `#[repr(C)]` and made only of atomics and `FaultRecord`s, which are
// `#[repr(C)]` atomics too.
unsafe impl SharedPage for crate::pages::ControlPage {}

// SAFETY: a `Mapping` owns its address range (unmapped only by its own drop); the memory behind it
// is shared with other processes anyway and is only accessed through `SharedPage` types made of
// atomics, so sending or sharing the handle across threads adds no data race.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}
