//! The gsp PD's handler: `GspOps` for gpu-server over PPC (`gsp_api::serve`), the GPU's
//! interrupt (a notification from the device: events and crashes), and the firmware's health.
//!
//! Requests before the GSP is up answer `NotReady`; after a crash or a failed boot, `Crashed`.
//! A crash is any of: the GSP falcon halted (IRQSTAT HALT), GSP-RM reported a fatal error
//! (`OS_ERROR_LOG` with no Xid or a fatal one), an RPC got no reply in time, or the message
//! queues broke. It is reported through [`Health`] (state, cause, last Xid), logged and traced,
//! and gpu-server is notified (every RM object is gone; it starts over). Then, once the event
//! that found it is handled (a timer), the PD boots the GPU again in place: it gives the GPU
//! back to pci-server, which resets it (FLR), frees its DMA buffers and brings it up from
//! scratch, with a new `Health::generation` (at a rate: [`super::throttle`]). A dead PD
//! is the supervisor's business: the restarted instance does the same from its `init`.
//!
//! Events GSP-RM raises (robust-channel errors, MMU faults, posted events, Xids) are queued for
//! gpu-server (`next_event`), which is notified; a full queue drops the newest and counts it.
use super::bringup::{self, BringUpError, Held};
use super::device::Device;
use super::throttle::{self, Throttle};
use crate::sys::gsp::channels;
use gsp::boot::BootTraceRing;
use gsp::chip::Chipset;
use gsp::fw::current::static_info::GspStaticConfigInfo;
use gsp::rpc::{self, Event, EventSink, ParkedRpc, Rpc, RpcError};
use gsp_api::{
    CrashCause, EventKind, GspError, GspEvent, GspOps, GspState, Health, RmAlloc, RmControl,
    StaticInfo, MAX_INLINE_PARAMS,
};
use pd_core::trace::{TraceEvent, TraceRing};
use pd_core::{ChannelSet, Handler, Kernel, MessageInfo};

/// Receive buffer of the RPC channel: one whole message (replies gpu-server asks for are far
/// smaller; continuation records are appended only up to what the caller expects).
pub const RX_BYTES: usize = rpc::MIN_RX_BUFFER;
/// Events queued for gpu-server.
const EVENTS: usize = 32;

/// A recovery decision or state change of the gsp PD (house rule 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trace {
    /// The GSP answers.
    Up,
    /// Bring-up failed at this boot step (0: before the boot) with this code.
    BringUpFailed {
        /// `Health::boot_step`.
        step: u32,
        /// `Health::boot_error`.
        code: u32,
    },
    /// The firmware was declared crashed.
    Crashed(CrashCause),
    /// An event was dropped: the queue for gpu-server was full.
    EventDropped,
}

impl TraceEvent for Trace {
    const KINDS: usize = 4;

    fn kind(&self) -> usize {
        match self {
            Self::Up => 0,
            Self::BringUpFailed { .. } => 1,
            Self::Crashed(_) => 2,
            Self::EventDropped => 3,
        }
    }

    fn kind_name(kind: usize) -> &'static str {
        ["Up", "BringUpFailed", "Crashed", "EventDropped"]
            .get(kind)
            .copied()
            .unwrap_or("?")
    }
}

/// Xids after which GSP-RM cannot go on (NVIDIA's Xid catalogue, docs.nvidia.com/deploy/xid-errors:
/// 61/62 internal micro-controller breakpoint/halt, 79 GPU fell off the bus, 119/120 GSP RPC
/// timeout / GSP error); 0 is an `OS_ERROR_LOG` that names no Xid, GSP-RM's own failure.
const FATAL_XIDS: [u32; 6] = [0, 61, 62, 79, 119, 120];

/// Everything but the receive buffer.
#[derive(Debug)]
struct State {
    rpc: Option<ParkedRpc>,
    info: Option<StaticInfo>,
    health: Health,
    events: heapless::Deque<GspEvent, EVENTS>,
    trace: TraceRing<Trace, 32, { Trace::KINDS }>,
    /// Something gpu-server should hear about happened (an event or a crash).
    tell_gpu: bool,
    /// The firmware crashed: boot it again once the current event is handled.
    reboot_due: bool,
}

/// The gsp PD.
#[derive(Debug)]
pub struct GspPd {
    rx: [u8; RX_BYTES],
    st: State,
    boot_trace: BootTraceRing,
    held: Held,
    /// This PD instance's generation (status page) and its boots so far: `Health::generation`.
    instance: u32,
    boots: u32,
    /// The in-place reboots' rate limit.
    throttle: Throttle,
}

impl GspPd {
    /// A PD that has not booted the GPU yet; `instance` is its generation (status page).
    pub fn new(instance: u32) -> Self {
        Self {
            rx: [0; RX_BYTES],
            st: State {
                rpc: None,
                info: None,
                health: Health {
                    state: GspState::Booting as u32,
                    generation: boot_generation(instance, 0),
                    crash: 0,
                    last_xid: 0,
                    boot_step: 0,
                    boot_error: 0,
                    rejected_messages: 0,
                    dropped_events: 0,
                },
                events: heapless::Deque::new(),
                trace: TraceRing::new(),
                tell_gpu: false,
                reboot_due: false,
            },
            boot_trace: BootTraceRing::new(),
            held: Held::default(),
            instance,
            boots: 0,
            throttle: Throttle::default(),
        }
    }

    /// Bring the GPU up through `k` (see [`bringup`]); the outcome is in [`GspPd::health`].
    pub fn boot(&mut self, k: &mut dyn Kernel) {
        self.boots = self.boots.wrapping_add(1);
        self.st.health.generation = boot_generation(self.instance, self.boots);
        let started = k.now_ns();
        let result = {
            let dev = Device::new(&mut *k, channels::GSP_MODEL);
            bringup::bring_up(
                &dev,
                &mut self.rx,
                &mut self.st,
                &mut self.boot_trace,
                &mut self.held,
            )
        };
        let ms = k.now_ns().saturating_sub(started) / 1_000_000;
        match result {
            Ok(up) => self.st.up(up.chip, &up.info, up.rpc, ms),
            Err(e) => self.st.bring_up_failed(&e),
        }
    }

    /// The firmware's health.
    pub fn health(&self) -> Health {
        self.st.health
    }

    /// The PD's trace ring.
    pub fn trace(&self) -> &TraceRing<Trace, 32, { Trace::KINDS }> {
        &self.st.trace
    }

    /// The boot's trace ring.
    pub fn boot_trace(&self) -> &BootTraceRing {
        &self.boot_trace
    }

    /// Tell gpu-server (by notification) that events wait or the firmware crashed, and after a
    /// crash arm the timer that boots the GPU again (after the current event, so the request
    /// that found the crash is answered first).
    fn tell(&mut self, k: &mut dyn Kernel) {
        if core::mem::take(&mut self.st.tell_gpu) {
            // gpu also learns from its next request's error: a refused notification loses nothing.
            let _ = k.notify(channels::GPU);
        }
        if self.st.reboot_due && k.set_timeout(k.now_ns()).is_err() {
            // No timer on this platform: boot again now.
            self.reboot(k);
        }
    }

    /// Boot the GPU again from scratch after a firmware crash, in this PD instance: give the
    /// GPU back to pci (which resets it) and the buffers back to alloc, then bring it up anew.
    /// Every RM object died with the firmware; gpu-server learned that from `Crashed` answers
    /// (`ContextLost`), and its new contexts allocate on the new GSP-RM.
    fn reboot(&mut self, k: &mut dyn Kernel) {
        if !core::mem::take(&mut self.st.reboot_due) {
            return;
        }
        if !self.throttle.allow(k.now_ns()) {
            log::error!(
                "gsp: the firmware crashed {} times within {} s; not booting it again",
                throttle::MAX_REBOOTS + 1,
                throttle::WINDOW_NS / 1_000_000_000
            );
            return;
        }
        log::warn!("gsp: booting the GPU again from scratch after the firmware crash");
        self.held.give_back(k);
        let st = &mut self.st;
        (st.rpc, st.info) = (None, None);
        st.events.clear();
        let h = &mut st.health;
        h.state = GspState::Booting as u32;
        (h.crash, h.boot_step, h.boot_error) = (0, 0, 0);
        self.boot(k);
        self.tell(k);
    }

    /// The bench image's call ([`super::bench`]): label the kind, MR0 the number of RPCs;
    /// answers label 0 or the error's code.
    fn bench(&mut self, k: &mut dyn Kernel, msg: MessageInfo) -> MessageInfo {
        let rounds = k.mrs().get(0);
        let r = {
            let dev = Device::new(&mut *k, channels::GSP_MODEL);
            self.session(&dev, |s| super::bench::run(s, msg.label(), rounds))
        };
        self.tell(k);
        MessageInfo::new(r.map_or_else(GspError::code, |()| 0), 0)
    }

    /// The device raised its interrupt: acknowledge it, notice a halt, dispatch queued messages.
    fn interrupt(&mut self, k: &mut dyn Kernel) {
        let dev = Device::new(k, channels::GSP_MODEL);
        let irq = match dev.take_irq() {
            Ok(irq) => irq,
            Err(e) => {
                log::warn!("gsp: interrupt status unreadable: {e:?}");
                return;
            }
        };
        if irq.halt {
            self.st.crash(CrashCause::Halted);
        }
        if irq.swgen0 || irq.halt {
            // Messages a halted GSP left behind (its OS_ERROR_LOG) are still worth reading.
            let _ = self.session(&dev, |s| s.with_rpc(true, |rpc, _, _, sink| rpc.poll(sink)));
        }
    }

    /// Run `f` on a session: this PD's state over `dev`.
    fn session<R>(&mut self, dev: &Device<'_>, f: impl FnOnce(&mut Session<'_, '_, '_>) -> R) -> R {
        f(&mut Session {
            st: &mut self.st,
            rx: &mut self.rx,
            dev,
        })
    }
}

impl State {
    fn up(&mut self, chip: Chipset, info: &GspStaticConfigInfo, rpc: ParkedRpc, ms: u64) {
        let name = crate::gsp::firmware::field(&info.gpuNameString);
        log::info!(
            "gsp: GSP up after {ms} ms: {} ({name}), {} MiB of VRAM, internal client {:#x}; \
             serving gpu",
            chip.name(),
            info.fb_length >> 20,
            info.hInternalClient
        );
        self.info = Some(StaticInfo {
            fb_length: info.fb_length,
            bar1_pde_base: info.bar1PdeBase,
            bar2_pde_base: info.bar2PdeBase,
            internal_client: info.hInternalClient,
            internal_device: info.hInternalDevice,
            internal_subdevice: info.hInternalSubdevice,
            chipset: chip as u32,
            gpu_name: info.gpuNameString,
        });
        self.rpc = Some(rpc);
        self.health.state = GspState::Running as u32;
        self.trace.record(Trace::Up);
    }

    fn bring_up_failed(&mut self, e: &BringUpError) {
        let (step, code) = e.health_codes();
        log::error!("gsp: GPU bring-up failed: {e:?}; requests answer Crashed");
        self.health.state = GspState::BootFailed as u32;
        (self.health.boot_step, self.health.boot_error) = (step, code);
        self.trace.record(Trace::BringUpFailed { step, code });
    }

    /// Declare the firmware crashed (once: the first cause is the one reported).
    fn crash(&mut self, cause: CrashCause) {
        if self.health.state != GspState::Running as u32 {
            return;
        }
        log::error!(
            "gsp: GSP firmware crashed ({cause:?}); every RM object is gone, requests answer \
             Crashed"
        );
        self.health.state = GspState::Crashed as u32;
        self.health.crash = cause as u32;
        self.trace.record(Trace::Crashed(cause));
        self.tell_gpu = true;
        self.reboot_due = true;
    }

    fn queue(&mut self, ev: GspEvent) {
        if self.events.push_back(ev).is_err() {
            self.health.dropped_events = self.health.dropped_events.saturating_add(1);
            self.trace.record(Trace::EventDropped);
        }
        self.tell_gpu = true;
    }

    /// Whether requests may go to GSP-RM now.
    fn ready(&self) -> Result<(), GspError> {
        match GspState::try_from(self.health.state) {
            Ok(GspState::Running) => Ok(()),
            Ok(GspState::Booting) => Err(GspError::NotReady),
            _ => Err(GspError::Crashed),
        }
    }

    /// The error gpu-server gets for a failed RPC; the failures that mean the firmware is gone
    /// declare it crashed.
    fn rpc_failed(&mut self, e: RpcError) -> GspError {
        match e {
            RpcError::Failed { status } => GspError::Rm { status },
            RpcError::ParamsTooLarge => GspError::TooLarge,
            RpcError::Timeout => {
                self.crash(CrashCause::Timeout);
                GspError::Timeout
            }
            RpcError::Queue(q) => {
                log::error!("gsp: message queue failure: {q:?}");
                self.crash(CrashCause::QueueBroken);
                GspError::Queue
            }
            // A lost or malformed reply: the firmware goes on (the rejected message is counted
            // in `Health::rejected_messages`); only this request fails.
            RpcError::BadReply
            | RpcError::BrokenContinuation
            | RpcError::BadEvent
            | RpcError::ReplyLost => GspError::Queue,
        }
    }
}

/// `Health::generation` of boot `boots` of PD instance `instance`: every boot of every instance
/// has its own.
const fn boot_generation(instance: u32, boots: u32) -> u32 {
    instance.wrapping_shl(16) | (boots & 0xffff)
}

/// Text from the firmware, for the log.
fn text(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes)
        .unwrap_or("(not UTF-8)")
        .trim_end_matches(['\0', '\n'])
}

impl EventSink for State {
    fn event(&mut self, event: Event<'_>) {
        let blank = GspEvent {
            kind: 0,
            chid: 0,
            engine: 0,
            except_type: 0,
            h_client: 0,
            h_event: 0,
            notify_index: 0,
            data: 0,
            fault_addr: 0,
        };
        match event {
            Event::LibosPrint { text: t, .. } => log::info!("gsp: GSP-RM: {}", text(t)),
            Event::RcTriggered { header: h, .. } => {
                log::warn!(
                    "gsp: channel {} on engine {:#x} stopped with Xid {}",
                    h.chid,
                    h.nv2080EngineType,
                    h.exceptType
                );
                self.queue(GspEvent {
                    kind: EventKind::RcTriggered as u32,
                    chid: h.chid,
                    engine: h.nv2080EngineType,
                    except_type: h.exceptType,
                    fault_addr: u64::from(h.mmuFaultAddrHi) << 32 | u64::from(h.mmuFaultAddrLo),
                    ..blank
                });
            }
            Event::MmuFaultQueued => self.queue(GspEvent {
                kind: EventKind::MmuFaultQueued as u32,
                ..blank
            }),
            Event::PostEvent { header: h, data } => self.queue(GspEvent {
                kind: EventKind::PostEvent as u32,
                h_client: h.hClient,
                h_event: h.hEvent,
                notify_index: h.notifyIndex,
                data: data
                    .get(..4)
                    .and_then(|d| d.try_into().ok())
                    .map_or(h.data, u32::from_le_bytes),
                ..blank
            }),
            Event::OsErrorLog {
                except_type,
                chid,
                message,
                ..
            } => {
                log::error!(
                    "gsp: GSP-RM error (Xid {except_type}, channel {chid}): {}",
                    text(message)
                );
                self.health.last_xid = except_type;
                self.queue(GspEvent {
                    kind: EventKind::OsErrorLog as u32,
                    chid,
                    except_type,
                    ..blank
                });
                if FATAL_XIDS.contains(&except_type) {
                    self.crash(CrashCause::OsErrorLog);
                }
            }
            // Replies nobody waits for (the boot commands', a timed-out call's): the RPC layer
            // traces and logs them already.
            other => log::debug!("gsp: {other:?}"),
        }
    }
}

/// One request's view: the state, the receive buffer and the device.
pub(super) struct Session<'a, 'd, 'k> {
    st: &'a mut State,
    rx: &'a mut [u8],
    dev: &'d Device<'k>,
}

type Io<'d, 'k> = super::device::Io<'d, 'k>;
type Time<'d, 'k> = super::device::Time<'d, 'k>;

impl Session<'_, '_, '_> {
    /// Run `f` on the RPC channel (only while the GSP runs, unless `after_crash`), then park it
    /// again; failures are mapped (and crashes declared) by [`State::rpc_failed`].
    pub(super) fn with_rpc<R>(
        &mut self,
        after_crash: bool,
        f: impl FnOnce(
            &mut Rpc<'_>,
            &mut Io<'_, '_>,
            &mut Time<'_, '_>,
            &mut dyn EventSink,
        ) -> Result<R, RpcError>,
    ) -> Result<R, GspError> {
        if !after_crash {
            self.st.ready()?;
        }
        let parked = self.st.rpc.take().ok_or(GspError::NotReady)?;
        let mut rpc = parked.resume(self.rx);
        let (mut io, mut time) = (self.dev.io(), self.dev.time());
        let mut sink = Watch {
            st: &mut *self.st,
            dev: self.dev,
        };
        let r = f(&mut rpc, &mut io, &mut time, &mut sink);
        self.st.health.rejected_messages = skipped(&rpc);
        self.st.rpc = Some(rpc.park());
        if self.dev.is_dead() {
            // A halt seen while waiting (or a crash the messages reported): whatever the call
            // was waiting for will not come.
            self.st.crash(CrashCause::Halted);
        }
        r.map_err(|e| match self.st.rpc_failed(e) {
            _ if self.st.health.state == GspState::Crashed as u32 => GspError::Crashed,
            mapped => mapped,
        })
    }
}

/// The event sink during a call: events go to the state, and a crash they report ends the
/// call's wait at once ([`Device::mark_dead`]).
struct Watch<'a, 'd, 'k> {
    st: &'a mut State,
    dev: &'d Device<'k>,
}

impl EventSink for Watch<'_, '_, '_> {
    fn event(&mut self, event: Event<'_>) {
        self.st.event(event);
        if self.st.health.state == GspState::Crashed as u32 {
            self.dev.mark_dead();
        }
    }
}

/// Messages the queue rejected and skipped so far.
fn skipped(rpc: &Rpc<'_>) -> u32 {
    rpc.trace()
        .counters()
        .find(|(name, _)| *name == "Skipped")
        .map_or(0, |(_, n)| n)
}

/// Copy of the caller's parameters: GSP-RM's reply overwrites `params` in place.
fn input(params: &[u8]) -> Result<([u8; MAX_INLINE_PARAMS], usize), GspError> {
    let mut buf = [0u8; MAX_INLINE_PARAMS];
    buf.get_mut(..params.len())
        .ok_or(GspError::TooLarge)?
        .copy_from_slice(params);
    Ok((buf, params.len()))
}

impl GspOps for Session<'_, '_, '_> {
    fn rm_alloc(&mut self, req: &RmAlloc, params: &mut [u8]) -> Result<(), GspError> {
        let (copy, n) = input(params)?;
        let cmd = rpc::RmAlloc {
            h_client: req.client,
            h_parent: req.parent,
            h_object: req.object,
            h_class: req.class,
            flags: req.flags,
            params: copy.get(..n).unwrap_or(&[]),
        };
        self.with_rpc(false, |rpc, io, time, sink| {
            rpc.rm(&cmd, params, io, time, sink)
        })
    }

    fn rm_control(&mut self, req: &RmControl, params: &mut [u8]) -> Result<(), GspError> {
        let (copy, n) = input(params)?;
        let cmd = rpc::RmControl {
            h_client: req.client,
            h_object: req.object,
            cmd: req.cmd,
            flags: req.flags,
            params: copy.get(..n).unwrap_or(&[]),
        };
        self.with_rpc(false, |rpc, io, time, sink| {
            rpc.rm(&cmd, params, io, time, sink)
        })
    }

    fn rm_free(&mut self, client: u32, parent: u32, object: u32) -> Result<(), GspError> {
        let cmd = rpc::RmFree {
            h_client: client,
            h_parent: parent,
            h_object: object,
        };
        self.with_rpc(false, |rpc, io, time, sink| {
            rpc.rm(&cmd, &mut [], io, time, sink)
        })
    }

    fn static_info(&mut self) -> Result<StaticInfo, GspError> {
        self.st.ready()?;
        self.st.info.ok_or(GspError::NotReady)
    }

    fn health(&mut self) -> Health {
        self.st.health
    }

    fn next_event(&mut self) -> Option<GspEvent> {
        self.st.events.pop_front()
    }
}

impl Handler for GspPd {
    fn protected(
        &mut self,
        k: &mut dyn Kernel,
        ch: pd_core::Channel,
        msg: MessageInfo,
    ) -> MessageInfo {
        if ch == crate::bench_ipc::AT_GSP {
            return self.bench(k, msg);
        }
        if ch != channels::GPU {
            log::warn!("gsp: request on {ch:?}, which is not gpu's channel, refused");
            return MessageInfo::new(GspError::BadRequest.code(), 0);
        }
        // The register accesses a request makes overwrite the kernel's registers: serve from
        // a copy.
        let mut mrs = k.mrs().clone();
        let reply = {
            let dev = Device::new(&mut *k, channels::GSP_MODEL);
            self.session(&dev, |s| gsp_api::serve(s, &mut mrs, msg))
        };
        k.mrs().copy_prefix(&mrs, reply.count());
        self.tell(k);
        reply
    }

    fn notified(&mut self, k: &mut dyn Kernel, set: ChannelSet) {
        if set.contains(channels::GSP_MODEL) {
            self.interrupt(k);
        }
        if set.contains(channels::SUPERVISOR) {
            log::debug!("gsp: the supervisor's status page changed");
        }
        self.tell(k);
    }

    fn timeout(&mut self, k: &mut dyn Kernel) {
        self.reboot(k);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use gsp::fw::current::rpc::rpc_rc_triggered_v17_02;
    use gsp::regs::{Falcon, NV_PFALCON_FALCON_IRQSCLR, NV_PFALCON_FALCON_IRQSTAT};
    use gsp_api::GspClient;
    use gsp_model::ppc::{LABEL_READ32, LABEL_WRITE32};
    use pd_core::{Channel, IpcError, MessageRegisters};
    use std::vec::Vec;
    use zerocopy::FromZeros;

    /// The gsp PD's kernel: a device whose IRQSTAT reads `irqstat` (IRQSCLR writes clear it,
    /// and are recorded), and a record of notifications.
    #[derive(Default)]
    struct Fake {
        mrs: MessageRegisters,
        irqstat: u32,
        cleared: Vec<u32>,
        notified: Vec<Channel>,
        timer: Option<u64>,
        now: u64,
    }

    impl Kernel for Fake {
        fn pd_name(&self) -> &str {
            "gsp"
        }
        fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
            self.notified.push(ch);
            Ok(())
        }
        fn ppcall(&mut self, ch: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
            if ch != channels::GSP_MODEL {
                return Err(IpcError::Unsupported);
            }
            let (offset, value) = (self.mrs.get(0), self.mrs.get(1));
            let stat = u64::from(NV_PFALCON_FALCON_IRQSTAT::offset(Falcon::Gsp));
            let sclr = u64::from(NV_PFALCON_FALCON_IRQSCLR::offset(Falcon::Gsp));
            match (msg.label(), offset) {
                (LABEL_READ32, o) if o == stat => {
                    self.mrs.set(0, u64::from(self.irqstat));
                    Ok(MessageInfo::new(0, 1))
                }
                (LABEL_WRITE32, o) if o == sclr => {
                    // CAST: a register value.
                    self.cleared.push(value as u32);
                    self.irqstat &= !(value as u32);
                    Ok(MessageInfo::new(0, 0))
                }
                _ => Err(IpcError::Unsupported),
            }
        }
        fn mrs(&mut self) -> &mut MessageRegisters {
            &mut self.mrs
        }
        fn now_ns(&self) -> u64 {
            self.now
        }
        fn set_timeout(&mut self, at_ns: u64) -> Result<(), IpcError> {
            self.timer = Some(at_ns);
            Ok(())
        }
    }

    /// gpu's view: requests go straight into the gsp PD's `protected`.
    struct Gpu<'a> {
        pd: &'a mut GspPd,
        k: Fake,
    }

    impl Kernel for Gpu<'_> {
        fn pd_name(&self) -> &str {
            "gpu"
        }
        fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
            Ok(())
        }
        fn ppcall(&mut self, ch: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
            assert_eq!(ch, channels::GPU);
            Ok(self.pd.protected(&mut self.k, ch, msg))
        }
        fn mrs(&mut self) -> &mut MessageRegisters {
            &mut self.k.mrs
        }
        fn now_ns(&self) -> u64 {
            0
        }
    }

    fn running() -> GspPd {
        let mut pd = GspPd::new(3);
        pd.st.health.state = GspState::Running as u32;
        pd
    }

    #[test]
    fn requests_answer_not_ready_while_booting_and_crashed_after_a_failed_bring_up() {
        let mut pd = GspPd::new(2);
        let gsp = GspClient::new(channels::GPU);
        let req = RmAlloc {
            client: 1,
            parent: 1,
            object: 2,
            class: 0x80,
            flags: 0,
        };
        {
            let mut gpu = Gpu {
                pd: &mut pd,
                k: Fake::default(),
            };
            assert_eq!(gsp.static_info(&mut gpu), Err(GspError::NotReady));
            assert_eq!(
                gsp.rm_alloc(&mut gpu, &req, &mut [0u8; 8]),
                Err(GspError::NotReady)
            );
            let h = gsp.health(&mut gpu).unwrap();
            assert_eq!(
                (h.state, h.generation),
                (GspState::Booting as u32, boot_generation(2, 0))
            );
        }
        pd.st.bring_up_failed(&BringUpError::NoGpu);
        let mut gpu = Gpu {
            pd: &mut pd,
            k: Fake::default(),
        };
        assert_eq!(gsp.static_info(&mut gpu), Err(GspError::Crashed));
        assert_eq!(gsp.rm_free(&mut gpu, 1, 1, 2), Err(GspError::Crashed));
        let h = gsp.health(&mut gpu).unwrap();
        assert_eq!(
            (h.state, h.boot_step, h.boot_error),
            (GspState::BootFailed as u32, 0, 106)
        );
        assert_eq!(pd.trace().count(1), 1, "BringUpFailed traced");
    }

    #[test]
    fn events_are_queued_for_gpu_and_counted_when_the_queue_is_full() {
        let mut pd = running();
        let mut rc = rpc_rc_triggered_v17_02::new_zeroed();
        (rc.chid, rc.exceptType, rc.nv2080EngineType) = (5, 31, 9);
        (rc.mmuFaultAddrHi, rc.mmuFaultAddrLo) = (0x1, 0x2000);
        pd.st.event(Event::RcTriggered {
            header: rc,
            journal: &[],
        });
        for _ in 0..EVENTS + 2 {
            pd.st.event(Event::MmuFaultQueued);
        }
        assert!(core::mem::take(&mut pd.st.tell_gpu));
        let mut gpu = Gpu {
            pd: &mut pd,
            k: Fake::default(),
        };
        let gsp = GspClient::new(channels::GPU);
        let first = gsp.next_event(&mut gpu).unwrap().unwrap();
        assert_eq!(
            (first.kind, first.chid, first.except_type, first.engine),
            (EventKind::RcTriggered as u32, 5, 31, 9)
        );
        assert_eq!(first.fault_addr, 0x1_0000_2000);
        let mut n = 1;
        while gsp.next_event(&mut gpu).unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, EVENTS);
        assert_eq!(gsp.health(&mut gpu).unwrap().dropped_events, 3);
        assert_eq!(
            gsp.health(&mut gpu).unwrap().state,
            GspState::Running as u32
        );
    }

    #[test]
    fn a_fatal_xid_crashes_the_firmware_and_a_plain_one_is_only_recorded() {
        let mut pd = running();
        let log = |xid| Event::OsErrorLog {
            except_type: xid,
            runlist: 0,
            chid: 4,
            message: b"boom\0",
        };
        pd.st.event(log(13));
        assert_eq!(
            (pd.health().state, pd.health().last_xid),
            (GspState::Running as u32, 13)
        );
        pd.st.event(log(79));
        let h = pd.health();
        assert_eq!(
            (h.state, h.crash, h.last_xid),
            (GspState::Crashed as u32, CrashCause::OsErrorLog as u32, 79)
        );
        // The first cause stays.
        pd.st.crash(CrashCause::Halted);
        assert_eq!(pd.health().crash, CrashCause::OsErrorLog as u32);
    }

    #[test]
    fn rpc_failures_map_to_errors_and_only_a_dead_firmware_is_a_crash() {
        let mut pd = running();
        assert_eq!(
            pd.st.rpc_failed(RpcError::Failed { status: 0x1f }),
            GspError::Rm { status: 0x1f }
        );
        assert_eq!(
            pd.st.rpc_failed(RpcError::ParamsTooLarge),
            GspError::TooLarge
        );
        assert_eq!(pd.st.rpc_failed(RpcError::BadReply), GspError::Queue);
        assert_eq!(pd.st.rpc_failed(RpcError::ReplyLost), GspError::Queue);
        assert_eq!(pd.health().state, GspState::Running as u32);
        assert_eq!(pd.st.rpc_failed(RpcError::Timeout), GspError::Timeout);
        assert_eq!(
            (pd.health().state, pd.health().crash),
            (GspState::Crashed as u32, CrashCause::Timeout as u32)
        );
        let mut pd = running();
        let q = gsp::cmdq::QueueError::Timeout;
        assert_eq!(pd.st.rpc_failed(RpcError::Queue(q)), GspError::Queue);
        assert_eq!(pd.health().crash, CrashCause::QueueBroken as u32);
    }

    #[test]
    fn a_halt_interrupt_is_acknowledged_declared_a_crash_and_told_to_gpu() {
        let mut pd = running();
        let mut k = Fake {
            irqstat: 1 << 4,
            ..Fake::default()
        };
        pd.notified(&mut k, ChannelSet::EMPTY.with(channels::GSP_MODEL));
        assert_eq!(k.cleared, [1 << 4]);
        assert_eq!(k.irqstat, 0);
        assert_eq!(
            (pd.health().state, pd.health().crash),
            (GspState::Crashed as u32, CrashCause::Halted as u32)
        );
        assert_eq!(k.notified, [channels::GPU]);
        // A quiet interrupt line changes nothing and tells no one.
        let mut quiet = Fake::default();
        pd.notified(&mut quiet, ChannelSet::EMPTY.with(channels::GSP_MODEL));
        assert!(quiet.cleared.is_empty() && quiet.notified.is_empty());
        // The crash armed the timer; when it fires the GPU is booted again, from the probe on
        // (which this device does not answer: the new boot fails there and says so).
        assert_eq!(k.timer, Some(0));
        pd.timeout(&mut k);
        let h = pd.health();
        assert_eq!(
            (h.state, h.crash, h.boot_step, h.boot_error),
            (GspState::BootFailed as u32, 0, 0, 101)
        );
        assert_eq!(h.generation, boot_generation(3, 1));
        // Nothing more to do: a second expiry changes nothing.
        pd.timeout(&mut k);
        assert_eq!(pd.health(), h);
        let mut k = Fake::default();
        // A request on another channel is refused.
        let reply = pd.protected(&mut k, channels::PCI, MessageInfo::new(4, 0));
        assert_eq!(reply.label(), GspError::BadRequest.code());
    }

    #[test]
    fn in_place_reboots_are_rate_limited_not_counted_for_ever() {
        let mut pd = running();
        let mut k = Fake::default();
        // Crash, then the timer boots the GPU again (the fake device fails the new boot: set
        // it running again for the next crash).
        let crash_at = |pd: &mut GspPd, k: &mut Fake, now: u64| {
            k.now = now;
            pd.st.health.state = GspState::Running as u32;
            pd.st.crash(CrashCause::Halted);
            pd.timeout(k);
            pd.health()
        };
        // Crashes a few seconds apart, far more than the burst: each is booted again.
        let mut boots = 0;
        for i in 1..=3 * throttle::MAX_REBOOTS as u64 {
            let h = crash_at(&mut pd, &mut k, i * 4_000_000_000);
            boots += 1;
            assert_eq!(h.generation, boot_generation(3, boots), "crash {i}");
            assert_eq!(h.state, GspState::BootFailed as u32);
        }
        // A crash loop: the burst is booted again, the one past it is not.
        let t0 = 1_000_000_000_000;
        for i in 0..throttle::MAX_REBOOTS as u64 {
            let h = crash_at(&mut pd, &mut k, t0 + i * 100_000_000);
            boots += 1;
            assert_eq!(h.generation, boot_generation(3, boots), "loop crash {i}");
        }
        let h = crash_at(&mut pd, &mut k, t0 + 500_000_000);
        assert_eq!(h.generation, boot_generation(3, boots), "not booted again");
        assert_eq!(h.state, GspState::Crashed as u32);
    }

    #[test]
    fn the_bench_channel_reaches_the_gsp_queue_loops_only() {
        use crate::gsp::bench::{BULK, MEMCPY, RTT};
        let mut pd = GspPd::new(1);
        let mut k = Fake::default();
        let code = |pd: &mut GspPd, k: &mut Fake, label: u64, rounds: u64| {
            k.mrs.set(0, rounds);
            pd.protected(k, crate::bench_ipc::AT_GSP, MessageInfo::new(label, 1))
                .label()
        };
        // Not booted: the loops' RPCs are refused as gpu's would be; an unknown kind is a bad
        // request; no RPC at all succeeds.
        assert_eq!(code(&mut pd, &mut k, RTT, 3), GspError::NotReady.code());
        assert_eq!(code(&mut pd, &mut k, BULK, 1), GspError::NotReady.code());
        assert_eq!(code(&mut pd, &mut k, 7, 1), GspError::BadRequest.code());
        assert_eq!(code(&mut pd, &mut k, RTT, 0), 0);
        // The memcpy baseline needs no GSP.
        assert_eq!(code(&mut pd, &mut k, MEMCPY, 2), 0);
        // Another unknown channel is still refused.
        let r = pd.protected(&mut k, Channel::new(60), MessageInfo::new(RTT, 1));
        assert_eq!(r.label(), GspError::BadRequest.code());
    }
}
