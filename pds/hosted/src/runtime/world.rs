//! The runtime's resources for one system: a memfd per region, a channel page per channel, a
//! control page and a doorbell per PD, and each PD's process when it runs.
//!
//! The runtime holds the regions' descriptors (to hand them to a restarted PD) but never maps a
//! region: a region's memory is mapped only in the PDs that `system.xml` maps it into.

use crate::boot::{BootSpec, ChannelSpec, MapSpec};
use crate::pages::{ChannelPage, ControlPage, PAGE};
use crate::sys::eventfd::EventFd;
use crate::sys::memfd::{Mapping, Memfd, Prot};
use crate::sys::process::{self, PidFd};
use crate::wait::Spins;
use pd_programs::{Program, Role};
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::Ordering;
use sysxml::System;

/// Why the system could not be set up.
#[derive(Debug)]
pub enum SetupError {
    /// A PD's `program_image` has no entry in the program table.
    NoProgram {
        /// The PD.
        pd: String,
        /// Its image.
        image: String,
        /// Line of its `protection_domain`.
        line: u32,
    },
    /// A region's prefill file is unreadable or larger than the region.
    Prefill {
        /// The region.
        region: String,
        /// What went wrong.
        why: String,
        /// Line of its `memory_region`.
        line: u32,
    },
    /// An OS resource could not be created.
    Os(String, std::io::Error),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoProgram { pd, image, line } => write!(
                f,
                "system.xml:{line}: <protection_domain>: PD '{pd}': no program for image '{image}' in the program table"
            ),
            Self::Prefill { region, why, line } => {
                write!(f, "system.xml:{line}: <memory_region>: region '{region}': {why}")
            }
            Self::Os(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

/// Where a PD stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Its process runs.
    Running,
    /// It died; its parent decides.
    Faulted,
    /// Stopped for good by its parent.
    Stopped,
}

/// A running PD process.
#[derive(Debug)]
pub struct Proc {
    /// The process.
    pub child: std::process::Child,
    /// Readable when it exits.
    pub pidfd: PidFd,
}

/// One PD's runtime state.
#[derive(Debug)]
pub struct PdSlot {
    /// Its name.
    pub name: String,
    /// Whether the run waits for its verdict.
    pub workload: bool,
    control: Mapping,
    control_fd: Memfd,
    /// Its requests to the runtime.
    pub doorbell: EventFd,
    /// Its process, while it runs.
    pub proc: Option<Proc>,
    /// Where it stands.
    pub state: State,
    /// How many times it was started.
    pub generation: u32,
    /// The runtime killed it for missing a deadline.
    pub watchdog_kill: bool,
    /// The last verdict seen.
    pub verdict: u32,
    /// The listening socket, when the PD is an external client slot (`crate::external`).
    pub external: Option<crate::external::Listener>,
}

impl PdSlot {
    /// Its control page.
    pub fn control(&self) -> Option<&ControlPage> {
        self.control.page()
    }

    /// Its pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.child.id())
    }
}

/// One channel's page, and the PDs at its ends.
#[derive(Debug)]
pub struct ChannelRes {
    page: Mapping,
    fd: Memfd,
    /// PD index at each end.
    pub pd: [usize; 2],
    /// Whether each end may call the other.
    pub pp: [bool; 2],
    /// The pending call the watchdog is timing, and since when (ns).
    pub watch: Option<(u32, u64)>,
}

impl ChannelRes {
    /// The shared page.
    pub fn page(&self) -> Option<&ChannelPage> {
        self.page.page()
    }

    /// The callee's end: the one whose peer has `pp`.
    pub fn callee_end(&self) -> Option<usize> {
        match self.pp {
            [true, false] => Some(1),
            [false, true] => Some(0),
            _ => None,
        }
    }
}

/// Everything the runtime owns for one system.
#[derive(Debug)]
pub struct World {
    /// The validated description.
    pub system: System,
    /// Executable the PDs run (`/proc/self/exe`).
    pub exe: String,
    /// Spin budgets handed to PDs.
    pub spins: Spins,
    regions: Vec<Memfd>,
    /// Channels, parallel to `system.channels`.
    pub channels: Vec<ChannelRes>,
    /// PDs, parallel to `system.pds`.
    pub pds: Vec<PdSlot>,
}

fn os(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SetupError {
    let what = what.into();
    move |e| SetupError::Os(what, e)
}

impl World {
    /// Create every region, channel page and control page of `system` (no process yet).
    ///
    /// # Errors
    /// A PD without a program, a bad prefill, or an OS failure.
    pub fn new(
        system: System,
        programs: &[Program],
        dir: &Path,
        spins: Spins,
    ) -> Result<Self, SetupError> {
        let tag = format!("hosted-{}", std::process::id());
        let mut workloads = Vec::new();
        for pd in &system.pds {
            let program = pd_programs::find(programs, &pd.program_image).ok_or_else(|| {
                SetupError::NoProgram {
                    pd: pd.name.clone(),
                    image: pd.program_image.clone(),
                    line: pd.line,
                }
            })?;
            workloads.push(program.role == Role::Workload);
        }
        let mut regions = Vec::new();
        for mr in &system.regions {
            let size = usize::try_from(mr.size).map_err(|_| SetupError::Prefill {
                region: mr.name.clone(),
                why: "too large for this machine".into(),
                line: mr.line,
            })?;
            let fd = Memfd::create(&format!("{tag}:{}", mr.name), size)
                .map_err(os(format!("region {}", mr.name)))?;
            if let Some(path) = &mr.prefill_path {
                let bad = |why: String| SetupError::Prefill {
                    region: mr.name.clone(),
                    why,
                    line: mr.line,
                };
                let data = std::fs::read(dir.join(path))
                    .map_err(|e| bad(format!("cannot read prefill {path}: {e}")))?;
                fd.write_at(0, &data).map_err(|_| {
                    bad(format!(
                        "prefill {path} ({} bytes) does not fit",
                        data.len()
                    ))
                })?;
            }
            regions.push(fd);
        }
        let mut channels = Vec::new();
        for ch in &system.channels {
            let [a, b] = &ch.ends;
            let fd = Memfd::create(&format!("{tag}:channel:{}-{}", a.pd, b.pd), PAGE)
                .map_err(os("channel page"))?;
            let page = Mapping::new(fd.fd(), PAGE, Prot::RW, None).map_err(os("channel page"))?;
            let index = |name: &str| system.pd_index(name).unwrap_or(usize::MAX);
            channels.push(ChannelRes {
                page,
                fd,
                pd: [index(&a.pd), index(&b.pd)],
                pp: [a.pp, b.pp],
                watch: None,
            });
        }
        let mut pds = Vec::new();
        for (pd, workload) in system.pds.iter().zip(workloads) {
            let control_fd = Memfd::create(&format!("{tag}:control:{}", pd.name), PAGE)
                .map_err(os("control page"))?;
            let control =
                Mapping::new(control_fd.fd(), PAGE, Prot::RW, None).map_err(os("control page"))?;
            pds.push(PdSlot {
                name: pd.name.clone(),
                workload,
                control,
                control_fd,
                doorbell: EventFd::new().map_err(os("doorbell"))?,
                proc: None,
                state: State::Faulted,
                generation: 0,
                watchdog_kill: false,
                verdict: 0,
                external: None,
            });
        }
        Ok(Self {
            system,
            exe: "/proc/self/exe".into(),
            spins,
            regions,
            channels,
            pds,
        })
    }

    /// The boot spec of PD `i`, and the extra descriptors made for it (read-only region views),
    /// which must stay open until the process is started.
    fn boot_spec(&self, i: usize) -> std::io::Result<(BootSpec, Vec<OwnedFd>)> {
        let (Some(pd), Some(slot)) = (self.system.pds.get(i), self.pds.get(i)) else {
            return Err(std::io::ErrorKind::NotFound.into());
        };
        let mut extra = Vec::new();
        let mut maps = Vec::new();
        for m in &pd.maps {
            let index = self.system.regions.iter().position(|r| r.name == m.mr);
            let Some(fd) = index.and_then(|r| self.regions.get(r)) else {
                continue; // validated: every map names a region
            };
            let raw: RawFd = if m.perms.w {
                fd.fd().as_raw_fd()
            } else {
                let ro = fd.reopen_read_only()?;
                let raw = ro.as_raw_fd();
                extra.push(ro);
                raw
            };
            maps.push(MapSpec {
                fd: raw,
                vaddr: usize::try_from(m.vaddr).map_err(|_| std::io::ErrorKind::InvalidInput)?,
                size: fd.size(),
                prot: Prot {
                    read: m.perms.r,
                    write: m.perms.w,
                    exec: m.perms.x,
                },
                symbol: m.setvar_vaddr.clone(),
            });
        }
        let mut channels = Vec::new();
        for (decl, res) in self.system.channels.iter().zip(&self.channels) {
            let [a, b] = &decl.ends;
            for (end, own, peer) in [(0, a, b), (1, b, a)] {
                if own.pd == pd.name {
                    channels.push(ChannelSpec {
                        id: own.id,
                        fd: res.fd.fd().as_raw_fd(),
                        end,
                        pp: own.pp,
                        notify: own.notify,
                        serves: peer.pp,
                        peer: peer.pd.clone(),
                    });
                }
            }
        }
        let children = self
            .system
            .children_of(i)
            .filter_map(|(_, c)| Some((c.id?, c.name.clone())))
            .collect();
        let spec = BootSpec {
            name: pd.name.clone(),
            image: pd.program_image.clone(),
            control: slot.control_fd.fd().as_raw_fd(),
            doorbell: slot.doorbell.fd().as_raw_fd(),
            spins: self.spins,
            maps,
            channels,
            children,
            external: slot.external.as_ref().map(crate::external::Listener::fd),
        };
        Ok((spec, extra))
    }

    /// Start PD `i` as a fresh process.
    ///
    /// # Errors
    /// The OS error of building its descriptors or of fork/exec.
    pub fn spawn(&mut self, i: usize) -> std::io::Result<u32> {
        let (spec, _extra) = self.boot_spec(i)?;
        let mut keep: Vec<RawFd> = vec![spec.control, spec.doorbell];
        keep.extend(spec.maps.iter().map(|m| m.fd));
        keep.extend(spec.channels.iter().map(|c| c.fd));
        keep.extend(spec.external);
        let slot = self.pds.get_mut(i).ok_or(std::io::ErrorKind::NotFound)?;
        if let Some(ctl) = slot.control() {
            ctl.fault_addr.store(0, Ordering::SeqCst);
            ctl.verdict.store(0, Ordering::SeqCst);
            ctl.running.store(0, Ordering::SeqCst);
        }
        let child = process::spawn(&self.exe, &spec.to_args(), &keep)?;
        let pid = child.id();
        let pidfd = match PidFd::open(pid) {
            Ok(p) => p,
            Err(e) => {
                process::kill(pid, libc::SIGKILL);
                let mut child = child;
                let _ = child.wait();
                return Err(e);
            }
        };
        slot.proc = Some(Proc { child, pidfd });
        slot.state = State::Running;
        slot.generation = slot.generation.saturating_add(1);
        slot.watchdog_kill = false;
        slot.verdict = 0;
        Ok(pid)
    }
}
