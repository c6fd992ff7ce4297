//! External client slots (hosted mode only): an outside Linux process — e.g. an unmodified libdrm
//! program with `libdrm_interposer.so` preloaded — drives a client PD of `system.xml` whose
//! `program_image` is [`IMAGE`], through a Unix socket. Protocol: `drm_api::external`.
//!
//! - **Runtime side** ([`Listener`]): the runtime binds `<dir>/<pd>.sock` for each such PD before
//!   starting it, prints the path, and hands the listening descriptor to the PD (and again to a
//!   restarted one); the socket file goes away with the runtime.
//! - **PD side** ([`Endpoint`]): instead of the program's event loop, the PD accepts one process
//!   at a time. It sends it the descriptors of the regions it maps itself (so the process gets
//!   the slot's own memory, exactly what `system.xml` maps into the slot), then relays each frame
//!   as a PPC on its one channel it may call (to `drm`) — so the runtime checks the process's
//!   calls as the slot's. A second process gets a `BUSY` hello and is disconnected. When the
//!   attached process goes away, the PD closes every DRM file it left open, and the slot takes
//!   the next process.
//!
//! Trust: the outside process is as untrusted as any client PD; the endpoint only clamps frame
//! sizes and forwards, and the shim checks every request.

use drm_api::external::{status, Frame, Hello, RegionInfo, FRAME_MRS, MAGIC, MAX_REGIONS};
use drm_api::transport::{op, result_of};
use pd_core::{Channel, Kernel, MessageInfo};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use zerocopy::{FromZeros, IntoBytes};

/// The `program_image` of external client slots.
pub const IMAGE: &str = "client-ext.elf";
/// The environment variable the interposer reads the socket path from.
pub const SOCKET_ENV: &str = "HOSTED_DRM_SOCKET";
/// How long a frame may take to arrive once its first byte has.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// The runtime's end of one external slot: the bound, listening socket.
#[derive(Debug)]
pub struct Listener {
    sock: UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Bind `<dir>/<pd>.sock` (creating `dir`, replacing a stale socket file).
    ///
    /// # Errors
    /// The OS error of creating the directory or binding.
    pub fn bind(dir: &Path, pd: &str) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{pd}.sock"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let sock = UnixListener::bind(&path)?;
        Ok(Self { sock, path })
    }

    /// The descriptor the PD inherits.
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Where outside processes connect.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second descriptor of the listening socket (the PD's, when it runs in-process in tests).
    ///
    /// # Errors
    /// `dup`'s error.
    pub fn clone_fd(&self) -> io::Result<OwnedFd> {
        Ok(OwnedFd::from(self.sock.try_clone()?))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What one attached process did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// Frames relayed.
    pub calls: u64,
    /// Other processes refused meanwhile.
    pub refused: u64,
    /// DRM files it left open, closed on its behalf.
    pub closed: usize,
}

/// The PD's end: the listener, the slot's regions, and its channel to drm.
#[derive(Debug)]
pub struct Endpoint {
    listener: UnixListener,
    hello: Hello,
    fds: Vec<OwnedFd>,
    drm: Channel,
}

impl Endpoint {
    /// An endpoint offering `regions` (what the slot maps, with the descriptors it mapped them
    /// from) and relaying to `drm`.
    ///
    /// # Errors
    /// `InvalidInput` for more than `MAX_REGIONS` regions.
    pub fn new(
        listener: OwnedFd,
        regions: Vec<(RegionInfo, OwnedFd)>,
        drm: Channel,
    ) -> io::Result<Self> {
        if regions.len() > MAX_REGIONS {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let mut hello = Hello {
            magic: MAGIC,
            status: status::ATTACHED,
            ..Hello::default()
        };
        let mut fds = Vec::new();
        for (slot, (info, fd)) in hello.regions.iter_mut().zip(regions) {
            *slot = info;
            fds.push(fd);
        }
        // CAST: at most MAX_REGIONS (checked above).
        hello.nregions = fds.len() as u32;
        Ok(Self {
            listener: UnixListener::from(listener),
            hello,
            fds,
            drm,
        })
    }

    /// Serve processes one after another for the PD's life.
    pub fn serve(&mut self, k: &mut dyn Kernel) -> ! {
        log::info!(
            "{}: external client slot: waiting for a process ({} regions offered)",
            k.pd_name(),
            self.fds.len()
        );
        loop {
            match self.serve_one(k) {
                Ok(s) => log::info!(
                    "{}: process detached after {} calls; closed {} DRM files it left open",
                    k.pd_name(),
                    s.calls,
                    s.closed
                ),
                Err(e) => {
                    log::warn!("{}: external slot: {e}", k.pd_name());
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Accept one process and serve it until it goes away.
    ///
    /// # Errors
    /// `accept`'s or the hello's error (nothing was relayed then).
    pub fn serve_one(&mut self, k: &mut dyn Kernel) -> io::Result<Session> {
        let (mut conn, _) = self.listener.accept()?;
        let fds: Vec<RawFd> = self.fds.iter().map(AsRawFd::as_raw_fd).collect();
        scm::send_with_fds(&conn, self.hello.as_bytes(), &fds)?;
        log::info!("{}: a process attached", k.pd_name());
        conn.set_read_timeout(Some(FRAME_TIMEOUT))?;
        let mut session = Session::default();
        let mut files = Vec::new();
        let mut ready = Vec::new();
        loop {
            crate::sys::process::poll(&[conn.as_fd(), self.listener.as_fd()], &mut ready, -1);
            if ready.get(1) == Some(&true) {
                self.refuse(k)?;
                session.refused += 1;
            }
            if ready.first() != Some(&true) {
                continue;
            }
            let mut frame = Frame::new_zeroed();
            if conn.read_exact(frame.as_mut_bytes()).is_err() {
                break;
            }
            let reply = self.relay(k, &frame, &mut files);
            session.calls += 1;
            if conn.write_all(reply.as_bytes()).is_err() {
                break;
            }
        }
        for file in files.drain(..) {
            k.mrs().set(0, file);
            let _ = k.ppcall(self.drm, MessageInfo::new(op::CLOSE, 1));
            session.closed += 1;
        }
        Ok(session)
    }

    /// Turn away a second process with a `BUSY` hello.
    fn refuse(&mut self, k: &mut dyn Kernel) -> io::Result<()> {
        let (conn, _) = self.listener.accept()?;
        let busy = Hello {
            magic: MAGIC,
            status: status::BUSY,
            ..Hello::default()
        };
        log::warn!(
            "{}: refused a second process: the slot is attached",
            k.pd_name()
        );
        scm::send_with_fds(&conn, busy.as_bytes(), &[])
    }

    /// One frame as one PPC; keeps `files` (DRM files open on the slot) up to date.
    fn relay(&self, k: &mut dyn Kernel, frame: &Frame, files: &mut Vec<u64>) -> Frame {
        let count = usize::try_from(frame.count)
            .unwrap_or(FRAME_MRS)
            .min(FRAME_MRS);
        for (i, &v) in frame.mrs.iter().enumerate().take(count) {
            k.mrs().set(i, v);
        }
        match k.ppcall(self.drm, MessageInfo::new(frame.label, count)) {
            Ok(reply) => {
                let ok = result_of(reply.label()).is_ok();
                match frame.label {
                    op::OPEN if ok => files.push(k.mrs().get(0)),
                    op::CLOSE if ok => files.retain(|&f| f != frame.mrs[0]),
                    _ => {}
                }
                let mut out = Frame {
                    label: reply.label(),
                    // CAST: at most FRAME_MRS.
                    count: reply.count().min(FRAME_MRS) as u32,
                    ..Frame::default()
                };
                for (i, m) in out.mrs.iter_mut().enumerate() {
                    *m = k.mrs().get(i);
                }
                out
            }
            Err(e) => Frame {
                ipc_error: u32::from(e as u8),
                ..Frame::default()
            },
        }
    }
}

/// The region info of one of the slot's mappings.
pub fn region_info(symbol: &str, vaddr: u64, size: u64, writable: bool) -> RegionInfo {
    RegionInfo {
        symbol: drm_api::external::symbol_field(symbol),
        vaddr,
        size,
        writable: u32::from(writable),
        _pad: 0,
    }
}

/// Sending descriptors over a Unix socket (`SCM_RIGHTS`), the one thing std cannot do yet.
#[allow(unsafe_code)]
mod scm {
    use super::UnixStream;
    use std::io;
    use std::os::fd::{AsRawFd, RawFd};

    /// Send all of `data`, with `fds` attached to its first byte.
    pub fn send_with_fds(sock: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
        let fd_bytes = std::mem::size_of_val(fds);
        // CAST: a few descriptors' bytes fit c_uint; the control size fits usize.
        // SAFETY: CMSG_SPACE is arithmetic on its argument.
        let space = unsafe { libc::CMSG_SPACE(fd_bytes as libc::c_uint) } as usize;
        let mut control = vec![0u64; space.div_ceil(8)];
        let mut iov = libc::iovec {
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
        // SAFETY: an all-zero msghdr is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            msg.msg_control = control.as_mut_ptr().cast();
            // CAST: a small size into the platform's msg_controllen type.
            msg.msg_controllen = space as _;
            // SAFETY: the control buffer holds one header with room for `fds` (CMSG_SPACE), and
            // CMSG_FIRSTHDR/CMSG_DATA point inside it.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                // CAST: as above.
                (*c).cmsg_len = libc::CMSG_LEN(fd_bytes as libc::c_uint) as _;
                std::ptr::copy_nonoverlapping(
                    fds.as_ptr(),
                    libc::CMSG_DATA(c).cast::<RawFd>(),
                    fds.len(),
                );
            }
        }
        // SAFETY: `msg` points at live buffers of the sizes it states; iov is only read.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // CAST: n >= 0 was checked.
        let sent = n as usize;
        if sent < data.len() {
            let mut s = sock;
            io::Write::write_all(&mut s, data.get(sent..).unwrap_or(&[]))?;
        }
        Ok(())
    }
}

/// Runtime side: bind a socket for every PD of `world` running [`IMAGE`], in `dir` (default
/// `$TMPDIR/hosted-<pid>`), and say where.
///
/// # Errors
/// The OS error of binding.
pub fn listen(world: &mut crate::runtime::World, dir: Option<&Path>) -> io::Result<()> {
    let default = std::env::temp_dir().join(format!("hosted-{}", std::process::id()));
    let dir = dir.unwrap_or(&default);
    for (pd, slot) in world.system.pds.iter().zip(world.pds.iter_mut()) {
        if pd.program_image == IMAGE {
            let l = Listener::bind(dir, &pd.name)?;
            log::info!(
                "{}: external client slot: run a program with LD_PRELOAD=libdrm_interposer.so {SOCKET_ENV}={}",
                pd.name,
                l.path().display()
            );
            slot.external = Some(l);
        }
    }
    Ok(())
}

/// PD side: the endpoint of the slot described by `spec`, from the inherited `listener` and the
/// `regions` the PD mapped (each with the descriptor it was mapped from). The slot relays to the
/// one channel it may call.
///
/// # Errors
/// `InvalidInput` when the slot may call no channel or several, or maps too many regions; the
/// error of adopting `listener`.
pub fn endpoint(
    spec: &crate::boot::BootSpec,
    listener: RawFd,
    regions: Vec<(&crate::boot::MapSpec, OwnedFd)>,
) -> io::Result<Endpoint> {
    let listener = crate::sys::process::adopt_fd(listener)?;
    let mut callees = spec.channels.iter().filter(|c| c.pp);
    let (Some(drm), None) = (callees.next(), callees.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an external slot needs exactly one channel it may call",
        ));
    };
    let drm = Channel::try_new(u64::from(drm.id))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let regions = regions
        .into_iter()
        .map(|(m, fd)| {
            // CAST: usize to u64 is lossless on every supported target.
            let info = region_info(
                m.symbol.as_deref().unwrap_or(""),
                m.vaddr as u64,
                m.size as u64,
                m.prot.write,
            );
            (info, fd)
        })
        .collect();
    Endpoint::new(listener, regions, drm)
}

impl Endpoint {
    /// The descriptors the endpoint lives on (kept open when the PD closes the rest).
    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        std::iter::once(self.listener.as_raw_fd()).chain(self.fds.iter().map(AsRawFd::as_raw_fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::{BootSpec, ChannelSpec};
    use crate::runtime::Options;
    use std::os::fd::IntoRawFd;

    fn dir(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("hosted-external-{}-{tag}", std::process::id()))
    }

    #[test]
    fn a_listener_replaces_a_stale_socket_and_removes_its_own() {
        let d = dir("stale");
        let first = Listener::bind(&d, "client2").unwrap();
        let path = first.path().to_owned();
        std::mem::forget(first); // a runtime that died without cleaning up
        assert!(path.exists());
        let second = Listener::bind(&d, "client2").unwrap();
        assert!(UnixStream::connect(&path).is_ok(), "the new socket answers");
        drop(second);
        assert!(!path.exists());
    }

    #[test]
    fn an_external_slot_relays_to_exactly_one_callee() {
        let d = dir("callee");
        let l = Listener::bind(&d, "x").unwrap();
        let chan = |id, pp| ChannelSpec {
            id,
            fd: -1,
            end: 0,
            pp,
            notify: true,
            serves: false,
            peer: "drm".into(),
        };
        let mut spec = BootSpec {
            channels: vec![chan(0, true), chan(1, true)],
            ..BootSpec::default()
        };
        let e = endpoint(&spec, l.clone_fd().unwrap().into_raw_fd(), Vec::new());
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        spec.channels = vec![chan(0, false), chan(3, true)];
        let e = endpoint(&spec, l.clone_fd().unwrap().into_raw_fd(), Vec::new());
        let e = e.unwrap();
        assert_eq!(e.drm, Channel::new(3));
        assert_eq!(e.fds().count(), 1, "the listener only: no regions given");
    }

    #[test]
    fn keep_running_and_external_dir_parse() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = Options::parse(&args(&[
            "--keep-running",
            "s.xml",
            "--external-dir",
            "/tmp/x",
        ]))
        .unwrap()
        .unwrap();
        assert!(o.keep_running);
        assert_eq!(o.external_dir.as_deref(), Some(Path::new("/tmp/x")));
        let o = Options::parse(&args(&["s.xml"])).unwrap().unwrap();
        assert!(!o.keep_running && o.external_dir.is_none());
    }
}
