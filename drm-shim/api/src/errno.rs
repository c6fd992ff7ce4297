//! Linux errno values (asm-generic/errno-base.h, errno.h) the shim returns. The shim answers
//! every error path with the errno Linux's nouveau/nova driver returns on that path.

/// A Linux errno, positive as the kernel returns it negated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(pub u32);

macro_rules! errnos {
    ($($name:ident = $v:expr, $doc:literal;)*) => {
        impl Errno { $(#[doc = $doc] pub const $name: Errno = Errno($v);)* }
        impl Errno {
            /// The symbolic name (`"ENOENT"`), or `"E?"` for a value this crate does not name.
            pub fn name(self) -> &'static str {
                match self.0 { $($v => stringify!($name),)* _ => "E?" }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted.";
    ENOENT = 2, "No such object: an unknown handle.";
    EINTR = 4, "Interrupted.";
    EIO = 5, "I/O error: the GPU or its firmware failed.";
    EBADF = 9, "Bad file: not a DRM file of this client.";
    EAGAIN = 11, "Try again (e.g. `GEM_CPU_PREP` with NOWAIT on a busy BO).";
    ENOMEM = 12, "Out of memory (VRAM, DMA quota, table space).";
    EACCES = 13, "Permission denied.";
    EFAULT = 14, "Bad address: a user pointer outside the client's buffer.";
    EBUSY = 16, "Busy.";
    EEXIST = 17, "Already exists (e.g. a second `VM_INIT`).";
    ENODEV = 19, "No device: the context was lost when a driver PD restarted.";
    EINVAL = 22, "Invalid argument: bad flags, sizes, alignment or ranges.";
    EMFILE = 24, "Too many open DRM files.";
    ENOSPC = 28, "No space (VA range taken, ring full).";
    ERANGE = 34, "Out of range.";
    ENOSYS = 38, "Not available in this state (e.g. `VM_BIND` before `VM_INIT`).";
    ENOTTY = 25, "Unknown ioctl for this device.";
    ETIME = 62, "Timer expired (`SYNCOBJ_WAIT`).";
    EOVERFLOW = 75, "Value too large.";
    ETIMEDOUT = 110, "Timed out.";
}

impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}
