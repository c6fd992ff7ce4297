//! The PD side of the runtime: what runs inside each PD process (`/proc/self/exe --pd NAME ...`).
//!
//! Start-up, before the program's `init`: become undumpable, record fault addresses for the
//! parent's `fault` handler, map each region at its declared address with its declared rights, map
//! the channel pages, close every descriptor except the doorbell to the runtime, and drop every
//! capability (so that, even when started by root, no PD can open another one's memory or
//! descriptors through procfs). What is left is the Microkit view: the PD's regions, its
//! channels, and nothing else.

mod event_loop;
mod kernel;

pub use event_loop::HostedPd;
pub use kernel::{ChannelEnd, HostedKernel};

use crate::boot::BootSpec;
use crate::channel::Ends;
use crate::pages::{ChannelPage, ControlPage, PAGE};
use crate::sys::{self, eventfd::EventFd, futex::WaitSet, memfd::Mapping, memfd::Prot};
use pd_core::MessageRegisters;
use pd_programs::Program;
use std::fmt;
use std::process::ExitCode;

/// Why a PD process could not start.
#[derive(Debug)]
pub enum StartError {
    /// The boot arguments are malformed.
    Boot(crate::boot::BootError),
    /// A descriptor, mapping or signal set-up failed.
    Os(&'static str, std::io::Error),
    /// The program table has no entry for the PD's `program_image`.
    NoProgram(String),
    /// A page is smaller than its layout (cannot happen with the runtime's pages).
    Page,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boot(e) => write!(f, "{e}"),
            Self::Os(what, e) => write!(f, "{what}: {e}"),
            Self::NoProgram(image) => write!(f, "no program for image {image}"),
            Self::Page => write!(f, "shared page too small"),
        }
    }
}

fn os(what: &'static str) -> impl FnOnce(std::io::Error) -> StartError {
    move |e| StartError::Os(what, e)
}

/// Map the page behind descriptor `fd` for the rest of the process's life.
fn page(fd: i32, what: &'static str) -> Result<&'static Mapping, StartError> {
    let fd = sys::process::adopt_fd(fd).map_err(os(what))?;
    let m = Mapping::new(std::os::fd::AsFd::as_fd(&fd), PAGE, Prot::RW, None).map_err(os(what))?;
    Ok(m.leak())
}

/// Set up the PD process described by `spec`.
///
/// # Errors
/// A [`StartError`] naming the step that failed.
pub fn start(spec: &BootSpec) -> Result<HostedPd, StartError> {
    sys::process::set_undumpable().map_err(os("prctl"))?;
    let control: &'static ControlPage = page(spec.control, "control page")?
        .page()
        .ok_or(StartError::Page)?;
    sys::fault::record_faults_into(&control.fault_addr).map_err(os("fault handler"))?;
    let doorbell =
        EventFd::from_owned(sys::process::adopt_fd(spec.doorbell).map_err(os("doorbell"))?);
    let mut regions = Vec::new();
    for m in &spec.maps {
        let fd = sys::process::adopt_fd(m.fd).map_err(os("region descriptor"))?;
        let mapping = Mapping::new(std::os::fd::AsFd::as_fd(&fd), m.size, m.prot, Some(m.vaddr))
            .map_err(os("mapping a region at its declared address"))?;
        mapping.leak();
        regions.push((m, fd));
    }
    // An external client slot keeps its region descriptors to hand them to the process.
    let external = match spec.external {
        Some(listener) => {
            Some(crate::external::endpoint(spec, listener, regions).map_err(os("external slot"))?)
        }
        None => {
            drop(regions);
            None
        }
    };
    let mut ends = Vec::new();
    let mut by_id: Vec<Option<usize>> = vec![None; usize::from(pd_core::MAX_CHANNELS)];
    // The order `HostedPd::idle` announces in: control word, then per end its notification word
    // and, if it serves calls, its slot's state word.
    let mut words = vec![&control.event];
    for c in &spec.channels {
        let page: &'static ChannelPage =
            page(c.fd, "channel page")?.page().ok_or(StartError::Page)?;
        let ends_of = Ends::from(usize::from(c.end));
        let id = pd_core::Channel::try_new(u64::from(c.id))
            .map_err(|_| StartError::Boot(crate::boot::BootError::channel(c.id)))?;
        let slot = by_id.get_mut(usize::from(c.id)).ok_or(StartError::Page)?;
        *slot = Some(ends.len());
        words.push(page.notify.get(ends_of.own).ok_or(StartError::Page)?);
        if c.serves {
            words.push(&page.state);
        }
        ends.push(ChannelEnd {
            id,
            seen: crate::channel::notifications(page, ends_of),
            page,
            ends: ends_of,
            pp: c.pp,
            notify: c.notify,
            serves: c.serves,
            peer: c.peer.clone(),
        });
    }
    let mut keep = vec![std::os::fd::AsRawFd::as_raw_fd(&doorbell.fd())];
    keep.extend(external.iter().flat_map(crate::external::Endpoint::fds));
    sys::process::close_other_fds(&keep);
    sys::process::drop_capabilities().map_err(os("dropping capabilities"))?;
    let mut waitset = WaitSet::default();
    for &w in &words {
        if !waitset.push(w) {
            return Err(StartError::Page);
        }
    }
    Ok(HostedPd {
        kernel: HostedKernel {
            name: spec.name.clone(),
            spins: spec.spins,
            control,
            doorbell,
            ends,
            by_id,
            children: spec.children.iter().map(|(id, _)| *id).collect(),
            mrs: MessageRegisters::default(),
            timeout: None,
        },
        words,
        waitset,
        external,
    })
}

/// The PD process's `main`: `args` are the arguments after the program name, starting at `--pd`.
pub fn main(programs: &[Program], args: &[String]) -> ExitCode {
    let spec = match BootSpec::parse(args) {
        Ok(s) => s,
        Err(e) => {
            crate::logger::init("pd");
            log::error!("{e}");
            return ExitCode::from(2);
        }
    };
    crate::logger::init(&spec.name);
    // A panic in a PD is an abort (SIGABRT), which its parent sees as `FaultKind::Abort`.
    std::panic::set_hook(Box::new(|info| {
        log::error!("panicked: {info}");
        std::process::abort();
    }));
    let Some(program) = pd_programs::find(programs, &spec.image) else {
        log::error!("{}", StartError::NoProgram(spec.image.clone()));
        return ExitCode::FAILURE;
    };
    match start(&spec) {
        Ok(mut pd) => {
            match pd.external.take() {
                Some(mut slot) => slot.serve(&mut pd.kernel),
                None => (program.start)(&mut pd),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}
