//! A strict simulated NVIDIA GPU that speaks the GSP firmware's side of the protocol (no_std).
//!
//! No one can run this stack on a real GPU inside QEMU, so the driver needs a device to talk to.
//! [`GspModel`] is that device, as the driver sees it: a BAR0 register file ([`bar0`]) with the
//! chip's identity and the effects the boot sequence expects; the firmware's side of the boot
//! ([`boot`]: FWSEC-FRTS, the booter, GSP-RM init, the CPU sequencer's `CORE_RESUME`); the
//! message queues and RPC service ([`firmware`]: static info, registry, system info, RM
//! alloc/control/free over an object tree in [`rm`]); channels whose GPFIFO and push buffers
//! are fetched through the driver's own page tables and executed by a copy engine ([`fifo`]);
//! physical memory reached only through platform-supplied windows ([`phys`]); fault knobs for
//! tests and the fault campaign ([`Fault`]); a synthetic firmware image and bootloader
//! ([`fwimage`]); the signed-ucode boot steps as the driver runs them ([`secure`]); the PCIe
//! topology presented in hosted mode ([`pci`]); and the PPC protocol of the model PD ([`ppc`]).
//!
//! Protocol: the driver does 32-bit BAR0 accesses ([`GspModel::read32`] / [`GspModel::write32`],
//! or `gsp::regs::Mmio` on the model, or PPCs in hosted mode). Everything happens inside those
//! calls: a doorbell makes GSP-RM read the command queue and answer on the status queue at once
//! (raising SWGEN0), unless a fault knob delays it; [`GspModel::tick`] advances time and releases
//! held work.
//!
//! It is *strict*: everything the driver does is checked against the protocol, and a deviation
//! is a descriptive error (`gsp_model: ...` in the log, an NV_STATUS, a channel error event, or
//! a boot that stops as real firmware would hang), never tolerated and never a panic. A driver
//! that works against it is right, not merely lucky.
//!
//! Trust: the driver is the peer under test. Every address, handle, size and index it hands over
//! is validated before use; the model never dereferences a driver pointer.
#![no_std]
#![deny(unsafe_code)]

pub mod bar0;
pub mod boot;
pub mod fifo;
pub mod firmware;
#[cfg(any(test, feature = "fuzz"))]
pub mod fuzz;
pub mod fwimage;
pub mod pci;
pub mod phys;
pub mod ppc;
pub mod rm;
pub mod secure;

use bar0::{Bar0, RegEvent, BAR0_SIZE};
use boot::{BootError, Phase};
use firmware::Queues;
use gsp::chip::Chipset;
use gsp::fw::current::wpr::GspFwWprMeta;
use gsp::regs::{Falcon, MmioError};
use pd_core::trace::{TraceEvent, TraceRing};
use phys::Memory;
use rm::Rm;

/// Faults the model can inject, settable at run time ([`GspModel::set_fault`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Behave.
    None,
    /// GSP-RM hangs: doorbells are ignored, nothing is answered (driver: reply timeout).
    StopResponding,
    /// GSP-RM crashes now: an `OS_ERROR_LOG` event, then HALT in the GSP's IRQSTAT, then
    /// silence.
    Crash,
    /// The next message on the status queue has a wrong checksum (driver: BadChecksum).
    CorruptChecksum,
    /// The next message skips a sequence number (driver: BadSeqNum).
    SkipSeqNum,
    /// The next message claims 17 elements, more than a message may have (driver: BadElemCount).
    OversizeElemCount,
    /// Commands are left in the queue until `ns` nanoseconds after the doorbell.
    DelayReplies {
        /// The delay.
        ns: u64,
    },
    /// Before the next message, two unsolicited events: a `POST_EVENT` for an unknown client
    /// and an event number no firmware defines.
    SpuriousEvents,
}

impl Fault {
    /// Decode a knob from the PPC wire (label [`ppc::LABEL_FAULT`]: MR0 = code, MR1 = argument).
    pub const fn from_wire(code: u64, arg: u64) -> Option<Self> {
        Some(match code {
            0 => Self::None,
            1 => Self::StopResponding,
            2 => Self::Crash,
            3 => Self::CorruptChecksum,
            4 => Self::SkipSeqNum,
            5 => Self::OversizeElemCount,
            6 => Self::DelayReplies { ns: arg },
            7 => Self::SpuriousEvents,
            _ => return None,
        })
    }
}

/// The model's diagnostics: one entry per recovery decision or boot transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trace {
    /// The boot entered a phase.
    Phase(Phase),
    /// The boot failed with this [`BootError::code`].
    BootFailed(u32),
    /// A command message was rejected by the queue and skipped.
    CommandRejected,
    /// An RPC was answered with a failure NV_STATUS.
    RpcFailed {
        /// Its function.
        function: u32,
        /// The status.
        status: u32,
    },
    /// A channel stopped with this Xid.
    ChannelError {
        /// Channel id.
        chid: u32,
        /// ROBUST_CHANNEL_* number.
        xid: u32,
    },
    /// The status queue had no room: work left for later.
    StatusQueueFull,
    /// A fault knob fired.
    FaultInjected,
    /// An event could not be queued and was dropped.
    EventDropped,
}

impl TraceEvent for Trace {
    const KINDS: usize = 8;

    fn kind(&self) -> usize {
        match self {
            Self::Phase(_) => 0,
            Self::BootFailed(_) => 1,
            Self::CommandRejected => 2,
            Self::RpcFailed { .. } => 3,
            Self::ChannelError { .. } => 4,
            Self::StatusQueueFull => 5,
            Self::FaultInjected => 6,
            Self::EventDropped => 7,
        }
    }

    fn kind_name(kind: usize) -> &'static str {
        [
            "Phase",
            "BootFailed",
            "CommandRejected",
            "RpcFailed",
            "ChannelError",
            "StatusQueueFull",
            "FaultInjected",
            "EventDropped",
        ]
        .get(kind)
        .copied()
        .unwrap_or("?")
    }
}

/// The model's trace ring.
pub type TraceLog = TraceRing<Trace, 32, { Trace::KINDS }>;

/// The GPU's PCI identity, as GSP-RM learns it from `GSP_SET_SYSTEM_INFO` and checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciIdentity {
    /// Vendor id (0x10de).
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Subsystem vendor id.
    pub subsystem_vendor: u16,
    /// Subsystem device id.
    pub subsystem_device: u16,
    /// Revision id.
    pub revision: u8,
    /// BAR0, BAR1, BAR3 bus addresses once assigned (checked against the system info then).
    pub bars: Option<[u64; 3]>,
}

impl PciIdentity {
    /// A retail board of `chip`: TU102 0x1e04, GA102 0x2204, AD102 0x2684, others 0x2000 +
    /// their chipset code.
    pub const fn for_chip(chip: Chipset) -> Self {
        let device = match chip {
            Chipset::TU102 => 0x1e04,
            Chipset::GA102 => 0x2204,
            Chipset::AD102 => 0x2684,
            // CAST: chipset codes are 12 bits.
            other => 0x2000 + (other as u32 as u16),
        };
        Self {
            vendor: 0x10de,
            device,
            subsystem_vendor: 0x10de,
            subsystem_device: 0x0001,
            revision: 0xa1,
            bars: None,
        }
    }
}

/// What the model simulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    /// The chip.
    pub chip: Chipset,
    /// Its PCI identity.
    pub pci: PciIdentity,
}

impl ModelConfig {
    /// `chip` with its default identity.
    pub const fn new(chip: Chipset) -> Self {
        Self {
            chip,
            pci: PciIdentity::for_chip(chip),
        }
    }
}

/// The simulated GPU.
#[derive(Debug)]
pub struct GspModel<'a> {
    config: ModelConfig,
    /// The register file.
    pub bar: Bar0,
    /// Physical memory.
    pub mem: Memory,
    image: &'a [u8],
    buf: &'a mut [u8],
    phase: Phase,
    /// The RM object tree and channels.
    pub rm: Rm,
    queues: Option<Queues>,
    meta: Option<GspFwWprMeta>,
    libos: u64,
    fault: Fault,
    held_until: Option<u64>,
    boot_error: Option<BootError>,
    trace: TraceLog,
    pci: Option<pci::Pci>,
    pci_channel: Option<pd_core::Channel>,
}

impl<'a> GspModel<'a> {
    /// A GPU of `config` after power-on, reaching `mem`, running the GSP ELF `image` (the
    /// `gsp-570.144.bin` the driver loads, real or [`fwimage::build`]), assembling RPCs in `buf`
    /// (at least 64 KiB; larger RPCs split into continuation records up to its size).
    pub fn new(config: ModelConfig, mem: Memory, image: &'a [u8], buf: &'a mut [u8]) -> Self {
        let fb = mem.fb_size;
        Self {
            config,
            bar: Bar0::new(config.chip, fb),
            mem,
            image,
            buf,
            phase: Phase::PowerOn,
            rm: Rm::new(config.chip),
            queues: None,
            meta: None,
            libos: 0,
            fault: Fault::None,
            held_until: None,
            boot_error: None,
            trace: TraceLog::new(),
            pci: pci::Pci::new(config.chip, &config.pci)
                .inspect_err(|e| log::error!("gsp_model: no PCI topology: {e}"))
                .ok(),
            pci_channel: None,
        }
    }

    /// Serve `pci_api::cfg` config-space requests on `ch` (hosted mode; on seL4 the `pci` PD
    /// reaches real ECAM instead). Other channels are BAR0 clients.
    pub fn serve_pci_on(&mut self, ch: pd_core::Channel) {
        self.pci_channel = Some(ch);
    }

    /// The emulated PCIe topology.
    pub fn pci(&mut self) -> Option<&mut pci::Pci> {
        self.pci.as_mut()
    }

    /// Back to power-on (a function-level reset): registers, boot, RM state and queues are
    /// dropped; memory keeps its contents, as VRAM does.
    pub fn reset(&mut self) {
        let now = self.bar.now_ns;
        self.bar = Bar0::new(self.config.chip, self.mem.fb_size);
        self.bar.now_ns = now;
        self.rm = Rm::new(self.config.chip);
        (
            self.queues,
            self.meta,
            self.libos,
            self.held_until,
            self.boot_error,
        ) = (None, None, 0, None, None);
        self.fault = Fault::None;
        self.set_phase(Phase::PowerOn);
    }

    /// The firmware image it was given.
    pub fn firmware_image(&self) -> &'a [u8] {
        self.image
    }

    /// What it simulates.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The PCI side learned the BARs (config space writes): GSP_SET_SYSTEM_INFO must match.
    pub fn set_bars(&mut self, bars: Option<[u64; 3]>) {
        self.config.pci.bars = bars;
    }

    /// The boot phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Why the boot stopped, if it did.
    pub fn boot_error(&self) -> Option<BootError> {
        self.boot_error
    }

    /// The trace ring.
    pub fn trace(&self) -> &TraceLog {
        &self.trace
    }

    /// The fault knob in force.
    pub fn fault_knob(&self) -> Fault {
        self.fault
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            log::debug!("gsp_model: boot phase {:?} -> {phase:?}", self.phase);
            self.trace.record(Trace::Phase(phase));
        }
        self.phase = phase;
    }

    /// Stop the boot with `e` (logged once).
    fn fail(&mut self, e: BootError) {
        log::error!("gsp_model: boot failed: {e}");
        self.trace.record(Trace::BootFailed(e.code()));
        self.boot_error = Some(e);
        self.set_phase(Phase::Failed);
    }

    /// Advance PTIMER to `now_ns`; run work a delay held back, and continue a reply or events
    /// the status queue had no room for (the driver polling a register has consumed some).
    pub fn tick(&mut self, now_ns: u64) {
        self.bar.now_ns = self.bar.now_ns.max(now_ns);
        if self.held_until.is_some_and(|t| self.bar.now_ns >= t) {
            self.held_until = None;
            self.pump();
        } else if self.queues.as_ref().is_some_and(Queues::has_backlog) {
            self.pump();
        }
    }

    fn check_access(offset: u32) -> Result<(), MmioError> {
        if offset & 3 != 0 {
            return Err(MmioError::Unaligned);
        }
        if offset >= BAR0_SIZE {
            return Err(MmioError::OutOfRange);
        }
        Ok(())
    }

    /// A 32-bit BAR0 read.
    ///
    /// # Errors
    /// [`MmioError::Unaligned`], [`MmioError::OutOfRange`].
    pub fn read32(&mut self, offset: u32) -> Result<u32, MmioError> {
        Self::check_access(offset)?;
        let now = self.bar.now_ns;
        self.tick(now);
        Ok(self.bar.read(offset))
    }

    /// A 32-bit BAR0 write, with its effect.
    ///
    /// # Errors
    /// [`MmioError::Unaligned`], [`MmioError::OutOfRange`].
    pub fn write32(&mut self, offset: u32, value: u32) -> Result<(), MmioError> {
        Self::check_access(offset)?;
        let now = self.bar.now_ns;
        self.tick(now);
        if let Some(ev) = self.bar.write(offset, value) {
            self.on_event(ev);
        }
        Ok(())
    }

    fn on_event(&mut self, ev: RegEvent) {
        if matches!(self.phase, Phase::Failed | Phase::Halted) {
            return;
        }
        match ev {
            RegEvent::FalconReset(f) => {
                if !self.bar.flush_registered {
                    self.fail(BootError::FlushPageNotRegistered);
                } else if f == Falcon::Gsp && matches!(self.phase, Phase::RmInit | Phase::Running) {
                    self.fail(BootError::GspResetWhileRunning);
                }
            }
            RegEvent::FalconStart(Falcon::Gsp) => self.fwsec_frts(),
            RegEvent::FalconStart(Falcon::Sec2) => match self.phase {
                Phase::FrtsDone => self.booter(),
                Phase::AwaitResume => self.core_resume(),
                phase => self.fail(BootError::UnexpectedSec2Start { phase }),
            },
            RegEvent::QueueDoorbell => self.doorbell(),
            RegEvent::ChannelDoorbell(token) => self.kick(token),
        }
    }

    /// FWSEC-FRTS: WPR2 over FRTS, no error, the falcon halts.
    fn fwsec_frts(&mut self) {
        if self.phase != Phase::PowerOn {
            return self.fail(BootError::UnexpectedGspStart { phase: self.phase });
        }
        if !self.bar.gsp.fresh {
            return self.fail(BootError::NotReset {
                falcon: Falcon::Gsp,
            });
        }
        let (start, end) = boot::frts_region(self.mem.fb_size);
        self.bar.set_wpr2(start, end);
        self.bar.frts_err = 0;
        self.bar.gsp.fresh = false;
        self.bar.gsp.halted = true;
        self.bar.gsp.mailbox0 = 0;
        self.set_phase(Phase::FrtsDone);
    }

    /// The booter on SEC2: validate what the driver built, then start GSP-RM.
    fn booter(&mut self) {
        if !self.bar.sec2.fresh {
            return self.fail(BootError::NotReset {
                falcon: Falcon::Sec2,
            });
        }
        if !self.bar.gsp.fresh {
            return self.fail(BootError::NotReset {
                falcon: Falcon::Gsp,
            });
        }
        self.bar.sec2.fresh = false;
        self.bar.sec2.halted = true;
        let checked = gsp::elf::GspImage::parse(self.image)
            .map_err(BootError::Firmware)
            .and_then(|image| {
                boot::check_wpr_meta(
                    &self.mem,
                    self.bar.sec2.mailbox_addr(),
                    self.config.chip,
                    self.mem.fb_size,
                    &image,
                    self.bar.wpr2_range(),
                )
            });
        let meta = match checked {
            Ok(m) => m,
            Err(e) => {
                self.bar.sec2.mailbox0 = e.code();
                return self.fail(e);
            }
        };
        self.bar.sec2.mailbox0 = 0;
        self.bar
            .set_wpr2(meta.gspFwWprStart, meta.frtsOffset + meta.frtsSize);
        self.meta = Some(meta);
        self.bar.gsp.fresh = false;
        self.bar.gsp.halted = false;
        self.bar.gsp.riscv_active = true;
        self.libos = self.bar.gsp.mailbox_addr();
        match firmware::start(self) {
            Ok(q) => {
                self.queues = Some(q);
                self.set_phase(Phase::RmInit);
                self.pump();
            }
            Err(e) => self.fail(e),
        }
    }

    /// The sequencer's `CORE_RESUME`: GSP reset with the LibOS page in its mailboxes and SEC2
    /// started again; the buffer's register effects must have landed.
    fn core_resume(&mut self) {
        let resume = |what, value| BootError::Resume { what, value };
        if !self.bar.gsp.fresh {
            return self.fail(resume("GSP falcon not reset before SEC2 was started", 0));
        }
        if self.bar.gsp.mailbox_addr() != self.libos {
            return self.fail(resume(
                "GSP MBOX1:MBOX0 do not hold the LibOS argument page",
                self.bar.gsp.mailbox_addr(),
            ));
        }
        if let Err(e) = boot::sequencer_done(&self.bar) {
            return self.fail(e);
        }
        self.bar.bsi_scratch14 |= 1 << 26;
        self.bar.sec2.mailbox0 = 0;
        self.bar.sec2.halted = true;
        self.bar.gsp.fresh = false;
        self.bar.gsp.halted = false;
        self.bar.gsp.riscv_active = true;
        self.set_phase(Phase::Running);
        firmware::init_done(self);
        self.pump();
    }

    /// The CPU rang `NV_PGSP_QUEUE_HEAD`.
    fn doorbell(&mut self) {
        if let Fault::DelayReplies { ns } = self.fault {
            let t = self.bar.now_ns.saturating_add(ns);
            self.held_until = Some(self.held_until.map_or(t, |h| h.min(t)));
            return;
        }
        self.pump();
    }

    fn pump(&mut self) {
        if matches!(self.phase, Phase::RmInit | Phase::Running)
            && self.fault != Fault::StopResponding
        {
            firmware::pump(self);
        }
    }

    /// A channel's doorbell: run it, and report an error it stops with.
    fn kick(&mut self, token: u32) {
        if self.phase != Phase::Running || matches!(self.fault, Fault::StopResponding) {
            return;
        }
        let Some(chid) = fifo::token_chid(token) else {
            log::warn!("gsp_model: doorbell with invalid work-submit token {token:#x} ignored");
            return;
        };
        let Some(ch) = self.rm.channels.get(chid).copied().flatten() else {
            log::warn!("gsp_model: doorbell for unallocated channel {chid} ignored");
            return;
        };
        if !ch.scheduled {
            log::warn!("gsp_model: doorbell for channel {chid}, which is not scheduled, ignored");
            return;
        }
        let root = self.rm.vaspace_root(ch.config.client, ch.config.vaspace);
        let ctx = fifo::Context {
            mem: &self.mem,
            root,
            now_ns: self.bar.now_ns,
        };
        let mut ch = ch;
        let was_failed = ch.error.is_some();
        let r = ch.kick(&ctx);
        if let Some(slot) = self.rm.channels.get_mut(chid) {
            *slot = Some(ch);
        }
        if let (Err(e), false) = (r, was_failed) {
            // CAST: chid < MAX_CHANNELS.
            let chid = chid as u32;
            log::error!("gsp_model: channel {chid}: {e}");
            self.trace
                .record(Trace::ChannelError { chid, xid: e.xid() });
            firmware::channel_error(self, chid, ch.config.engine, e);
        }
    }

    /// Set a fault knob. [`Fault::Crash`] acts at once; the others on the next message or
    /// doorbell.
    pub fn set_fault(&mut self, fault: Fault) {
        log::warn!("gsp_model: fault knob set: {fault:?}");
        self.fault = fault;
        if fault == Fault::Crash {
            firmware::crash(self);
            self.set_phase(Phase::Halted);
        }
        if !matches!(fault, Fault::DelayReplies { .. }) && self.held_until.take().is_some() {
            self.pump();
        }
    }
}

impl gsp::regs::Mmio for GspModel<'_> {
    fn read32(&mut self, offset: u32) -> Result<u32, MmioError> {
        GspModel::read32(self, offset)
    }

    fn write32(&mut self, offset: u32, value: u32) -> Result<(), MmioError> {
        GspModel::write32(self, offset, value)
    }
}
