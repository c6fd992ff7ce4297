//! The attached client slot: the socket to its PD, its regions (descriptors and where the slot sees
//! them), and the DRM transport over it (`drm_api::transport`, one [`Frame`] per PPC).

use crate::marshal::{self, SlotBuffer, UserMem};
use crate::sys;
use drm_api::errno::Errno;
use drm_api::external::{status, Frame, Hello, MAGIC, MAX_REGIONS};
use drm_api::transport::{self, op, ARG_OFFSET};
use pd_core::shm::{ReadWrite, Region};
use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use zerocopy::{FromZeros, IntoBytes};

/// The `setvar_vaddr` symbol of the slot's ioctl buffer in system.xml.
pub const IOCTL_SYMBOL: &[u8] = b"ioctl_vaddr";

/// Why attaching failed.
#[derive(Debug)]
pub enum AttachError {
    /// The socket could not be reached or broke during the hello.
    Io(std::io::Error),
    /// The slot refused: another process is attached.
    Busy,
    /// The hello was not what this protocol version sends.
    Protocol(&'static str),
}

impl AttachError {
    /// The errno `open` reports for it.
    pub fn errno(&self) -> Errno {
        match self {
            Self::Io(_) => Errno::ENODEV,
            Self::Busy => Errno::EBUSY,
            Self::Protocol(_) => Errno::EIO,
        }
    }
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot reach the slot: {e}"),
            Self::Busy => f.write_str("the slot is busy: another process is attached to it"),
            Self::Protocol(why) => write!(f, "bad hello from the slot: {why}"),
        }
    }
}

/// An attached slot.
#[derive(Debug)]
pub struct Slot {
    sock: UnixStream,
    hello: Hello,
    fds: Vec<OwnedFd>,
    ioctl: Region<ReadWrite>,
    ioctl_base: u64,
}

impl Slot {
    /// Connect to the slot listening at `path` and map its ioctl buffer.
    ///
    /// # Errors
    /// [`AttachError`].
    pub fn attach(path: &str) -> Result<Self, AttachError> {
        let sock = UnixStream::connect(path).map_err(AttachError::Io)?;
        Self::from_stream(sock)
    }

    /// Take over a connected stream (tests use a socket pair).
    ///
    /// # Errors
    /// [`AttachError`].
    pub fn from_stream(sock: UnixStream) -> Result<Self, AttachError> {
        let mut hello = Hello::new_zeroed();
        let fds = sys::recv_with_fds(&sock, hello.as_mut_bytes(), MAX_REGIONS)
            .map_err(AttachError::Io)?;
        if hello.magic != MAGIC {
            return Err(AttachError::Protocol("wrong magic or version"));
        }
        if hello.status == status::BUSY {
            return Err(AttachError::Busy);
        }
        if hello.status != status::ATTACHED || fds.len() != hello.regions().len() {
            return Err(AttachError::Protocol("status or descriptor count"));
        }
        let (i, r) = hello
            .region(IOCTL_SYMBOL)
            .ok_or(AttachError::Protocol("no ioctl buffer"))?;
        let size = usize::try_from(r.size).map_err(|_| AttachError::Protocol("size"))?;
        let fd = fds.get(i).ok_or(AttachError::Protocol("descriptor"))?;
        let base = sys::map_shared(fd.as_fd(), size, true).map_err(AttachError::Io)?;
        let ioctl_base = r.vaddr;
        Ok(Self {
            sock,
            hello,
            fds,
            ioctl: sys::region_of(base, size),
            ioctl_base,
        })
    }

    /// One PPC on the slot's channel to drm.
    ///
    /// # Errors
    /// `ENODEV` when the slot is gone or the call failed (drm faulted or missed its deadline):
    /// what `DrmClient` reports for an unreachable shim.
    fn ppc(&mut self, label: u64, mrs: [u64; 2]) -> Result<Frame, Errno> {
        let [mr0, mr1] = mrs;
        let f = Frame {
            label,
            count: 2,
            ipc_error: 0,
            mrs: [mr0, mr1, 0, 0],
        };
        self.sock
            .write_all(f.as_bytes())
            .map_err(|_| Errno::ENODEV)?;
        let mut reply = Frame::new_zeroed();
        self.sock
            .read_exact(reply.as_mut_bytes())
            .map_err(|_| Errno::ENODEV)?;
        if reply.ipc_error != 0 {
            return Err(Errno::ENODEV);
        }
        Ok(reply)
    }

    /// Open a DRM file (nouveau personality).
    ///
    /// # Errors
    /// The shim's errno (`EMFILE`, `ENODEV`, ...).
    pub fn open(&mut self) -> Result<u64, Errno> {
        let r = self.ppc(op::OPEN, [0, 0])?;
        transport::result_of(r.label)?;
        Ok(r.mrs[0])
    }

    /// Close a DRM file.
    ///
    /// # Errors
    /// The shim's errno.
    pub fn close(&mut self, file: u64) -> Result<(), Errno> {
        let r = self.ppc(op::CLOSE, [file, 0])?;
        transport::result_of(r.label)
    }

    /// Issue ioctl `req` on `file` with the caller's argument pointer `arg`.
    ///
    /// # Errors
    /// As [`marshal::ioctl`].
    pub fn ioctl(
        &mut self,
        file: u64,
        req: u32,
        arg: u64,
        user: &dyn UserMem,
    ) -> Result<(), Errno> {
        let ioctl = self.ioctl.alias();
        let slot = SlotBuffer {
            buf: &ioctl,
            slot_base: self.ioctl_base,
        };
        marshal::ioctl(req, arg, user, &slot, |req| {
            // CAST: ARG_OFFSET is a small constant.
            let r = self.ppc(u64::from(req), [file, ARG_OFFSET as u64])?;
            transport::result_of(r.label)
        })
    }

    /// What an `mmap` of `len` bytes at DRM offset `offset` (a BO's `map_handle`: the slot's
    /// address of the BO) maps: the region holding it, the offset in that region, and whether it
    /// may be mapped writable.
    pub fn map_target(&self, offset: u64, len: u64) -> Option<(BorrowedFd<'_>, u64, bool)> {
        let end = offset.checked_add(len)?;
        self.hello
            .regions()
            .iter()
            .zip(&self.fds)
            .find(|(r, _)| offset >= r.vaddr && end <= r.vaddr.saturating_add(r.size))
            .map(|(r, fd)| (fd.as_fd(), offset - r.vaddr, r.writable != 0))
    }
}

#[cfg(test)]
mod tests {
    //! Against hosted's real slot endpoint and the real shim (`crate::loopback`).
    use super::*;
    use crate::loopback::{Loopback, VRAM_VADDR};
    use crate::sys::CallerMem;
    use drm_api::ioctl::nr;
    use drm_api::uapi::*;

    fn ioctl<T: IntoBytes + zerocopy::FromBytes + zerocopy::Immutable>(
        s: &mut Slot,
        file: u64,
        req: u32,
        arg: &mut T,
    ) -> Result<(), Errno> {
        s.ioctl(file, req, (arg as *mut T) as u64, &CallerMem)
    }

    #[test]
    fn attach_open_ioctl_and_bo_mappings_reach_the_slots_regions() {
        let lb = Loopback::start("attach");
        let mut s = Slot::attach(lb.socket.to_str().unwrap()).unwrap();
        let f = s.open().unwrap();
        let mut g = drm_nouveau_getparam {
            param: getparam::CHIPSET_ID,
            value: 0,
        };
        ioctl(&mut s, f, nr::NOUVEAU_GETPARAM, &mut g).unwrap();
        assert_eq!(g.value, 0x172);
        let mut n = drm_nouveau_gem_new::default();
        n.info.domain = domain::VRAM | domain::MAPPABLE;
        n.info.size = 0x3000;
        ioctl(&mut s, f, nr::NOUVEAU_GEM_NEW, &mut n).unwrap();
        let mut n2 = n;
        ioctl(&mut s, f, nr::NOUVEAU_GEM_NEW, &mut n2).unwrap();
        // The map handle is the BO's address in the slot: it maps the VRAM region at that offset.
        let (_, off, writable) = s.map_target(n2.info.map_handle, n2.info.size).unwrap();
        assert_eq!((off, writable), (n2.info.map_handle - VRAM_VADDR, true));
        assert_eq!(off, 0x3000, "after the first BO");
        // Nothing maps outside the slot's regions, or across a region's end.
        assert!(s.map_target(0x1000, 0x1000).is_none());
        assert!(s.map_target(VRAM_VADDR + 0xff_f000, 0x2000).is_none());
        // An unknown file is the shim's EBADF; the slot stays usable.
        assert_eq!(
            ioctl(&mut s, 99, nr::NOUVEAU_GETPARAM, &mut g),
            Err(Errno::EBADF)
        );
        s.close(f).unwrap();
        assert_eq!(s.close(f), Err(Errno::EBADF));
        drop(s);
        let (session, left) = lb.finish();
        assert_eq!((session.closed, left), (0, 0));
        assert_eq!(session.calls, 7);
    }

    #[test]
    fn a_second_process_is_refused_and_a_leaving_one_loses_its_files() {
        let lb = Loopback::start("busy");
        let path = lb.socket.to_str().unwrap().to_owned();
        let mut first = Slot::attach(&path).unwrap();
        let (a, b) = (first.open().unwrap(), first.open().unwrap());
        assert_ne!(a, b);
        let second = Slot::attach(&path);
        assert!(matches!(second, Err(AttachError::Busy)), "{second:?}");
        assert_eq!(AttachError::Busy.errno(), Errno::EBUSY);
        drop(first); // goes away without closing its files
        let (session, left) = lb.finish();
        assert_eq!((session.refused, session.closed, left), (1, 2, 0));
    }

    #[test]
    fn a_missing_slot_is_enodev() {
        let e = Slot::attach("/nonexistent/slot.sock").unwrap_err();
        assert_eq!(e.errno(), Errno::ENODEV);
    }
}
