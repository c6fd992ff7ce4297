//! The client's memory as the shim may touch it: only the client's own ioctl buffer, addressed by
//! the user pointers the client put in its arguments (`copy_from_user` / `copy_to_user`).

use drm_api::errno::Errno;
use pd_core::shm::{ReadWrite, Region};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// One client's ioctl buffer and the address it has in the client.
#[derive(Debug)]
pub struct UserMem<'a> {
    buf: &'a Region<ReadWrite>,
    user_base: u64,
}

impl<'a> UserMem<'a> {
    /// The buffer `buf`, mapped in the client at `user_base`.
    pub fn new(buf: &'a Region<ReadWrite>, user_base: u64) -> Self {
        Self { buf, user_base }
    }

    fn offset(&self, ptr: u64, len: usize) -> Result<usize, Errno> {
        let off = ptr.checked_sub(self.user_base).ok_or(Errno::EFAULT)?;
        let off = usize::try_from(off).map_err(|_| Errno::EFAULT)?;
        match off.checked_add(len) {
            Some(end) if end <= self.buf.size() => Ok(off),
            _ => Err(Errno::EFAULT),
        }
    }

    /// Read the `i`-th `T` of the user array at `ptr`.
    ///
    /// # Errors
    /// `EFAULT` when the element is not inside the client's buffer.
    pub fn read_elem<T: FromBytes + IntoBytes>(&self, ptr: u64, i: usize) -> Result<T, Errno> {
        let size = core::mem::size_of::<T>();
        let at = i
            .checked_mul(size)
            .and_then(|d| ptr.checked_add(d as u64))
            .ok_or(Errno::EFAULT)?;
        let off = self.offset(at, size)?;
        self.buf.read(off).map_err(|_| Errno::EFAULT)
    }

    /// Write `bytes` to the user pointer `ptr`.
    ///
    /// # Errors
    /// `EFAULT` when the span is not inside the client's buffer.
    pub fn write_bytes(&self, ptr: u64, bytes: &[u8]) -> Result<(), Errno> {
        let off = self.offset(ptr, bytes.len())?;
        self.buf.write_bytes(off, bytes).map_err(|_| Errno::EFAULT)
    }

    /// Write one `T` to the `i`-th element of the user array at `ptr`.
    ///
    /// # Errors
    /// `EFAULT` when the element is not inside the client's buffer.
    pub fn write_elem<T: IntoBytes + Immutable>(
        &self,
        ptr: u64,
        i: usize,
        v: &T,
    ) -> Result<(), Errno> {
        let size = core::mem::size_of::<T>();
        let at = i
            .checked_mul(size)
            .and_then(|d| ptr.checked_add(d as u64))
            .ok_or(Errno::EFAULT)?;
        self.write_bytes(at, v.as_bytes())
    }

    /// The argument block at `offset` in the buffer (not a user pointer: the PPC names it).
    ///
    /// # Errors
    /// `EFAULT` when it does not fit the buffer.
    pub fn arg<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T, Errno> {
        self.buf.read(offset).map_err(|_| Errno::EFAULT)
    }

    /// Write the argument block back (for ioctls that return data).
    ///
    /// # Errors
    /// `EFAULT` when it does not fit the buffer.
    pub fn put_arg<T: IntoBytes + Immutable>(&self, offset: usize, v: &T) -> Result<(), Errno> {
        self.buf.write(offset, v).map_err(|_| Errno::EFAULT)
    }
}
