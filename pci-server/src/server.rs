//! The PCI server: enumerate and assign at `init`, then serve device grants over PPC.

use crate::assign::{self, Windows};
use crate::config::{ConfigError, ConfigPort};
use crate::enumerate::{self, EnumError, FunctionTable, MAX_FUNCTIONS};
use crate::policy::{self, ClientEntry, PolicyRule};
use crate::probe::{Function, State};
use crate::regs;
use pci_api::{BarPlacement, Bdf, DeviceEntry, DeviceFlags, PciError, Request, Width};
use pd_core::trace::{TraceEvent, TraceRing};
use pd_core::{Channel, Kernel, MessageInfo};

/// What the PD glue hands the server, all of it from the system's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    /// The clients: which channel is whom.
    pub clients: &'a [ClientEntry<'a>],
    /// Who may claim what.
    pub policy: &'a [PolicyRule],
    /// Where BARs go (the `pci_mmio` region's physical range).
    pub windows: Windows,
    /// The host bridge's bus (0 unless the ECAM window starts elsewhere).
    pub root_bus: u8,
}

/// A recovery decision, recorded in the server's trace ring (house rule 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trace {
    /// Enumeration and assignment finished.
    Enumerated {
        /// Functions found.
        functions: u8,
        /// Highest bus number assigned.
        last_bus: u8,
    },
    /// Enumeration stopped early (table full or configuration space gone).
    EnumFailed,
    /// A capability list was malformed; the rest of it was skipped.
    CapListMalformed {
        /// Routing id of the function.
        bdf: u16,
    },
    /// Null (id 0) capability entries were skipped.
    NullCaps {
        /// Routing id of the function.
        bdf: u16,
    },
    /// The MSI-X table or PBA lies outside its BAR.
    MsixOutsideBar {
        /// Routing id of the function.
        bdf: u16,
    },
    /// BAR sizing failed; the function was left as found and is not granted.
    BarsUnreadable {
        /// Routing id of the function.
        bdf: u16,
    },
    /// A bridge was not scanned: bus numbers or stack depth exhausted.
    BridgeSkipped {
        /// Routing id of the bridge.
        bdf: u16,
    },
    /// A function was refused: its BARs did not fit (or a bridge above it was refused).
    Refused {
        /// Routing id of the function.
        bdf: u16,
    },
    /// A claim was refused (policy or another holder).
    ClaimRefused {
        /// The client's channel.
        ch: u8,
        /// Routing id asked for.
        bdf: u16,
    },
    /// A configuration write outside the allowed registers was refused.
    WriteRefused {
        /// The client's channel.
        ch: u8,
        /// Offset asked for.
        offset: u16,
    },
    /// A malformed request or an unknown channel.
    BadRequest {
        /// The channel it came on.
        ch: u8,
    },
    /// A client's claims were dropped (supervisor restart) and its devices quiesced.
    ClientReleased {
        /// The client's channel.
        ch: u8,
        /// How many claims it held.
        claims: u8,
    },
    /// Turning bus mastering off failed.
    QuiesceFailed {
        /// Routing id of the function.
        bdf: u16,
    },
    /// A released function was reset (FLR) and its BARs restored.
    Reset {
        /// Routing id of the function.
        bdf: u16,
    },
    /// The reset or the restore after it failed.
    ResetFailed {
        /// Routing id of the function.
        bdf: u16,
    },
}

const TRACE_KINDS: usize = 15;

impl TraceEvent for Trace {
    const KINDS: usize = TRACE_KINDS;

    fn kind(&self) -> usize {
        match self {
            Self::Enumerated { .. } => 0,
            Self::EnumFailed => 1,
            Self::CapListMalformed { .. } => 2,
            Self::NullCaps { .. } => 3,
            Self::MsixOutsideBar { .. } => 4,
            Self::BarsUnreadable { .. } => 5,
            Self::BridgeSkipped { .. } => 6,
            Self::Refused { .. } => 7,
            Self::ClaimRefused { .. } => 8,
            Self::WriteRefused { .. } => 9,
            Self::BadRequest { .. } => 10,
            Self::ClientReleased { .. } => 11,
            Self::QuiesceFailed { .. } => 12,
            Self::Reset { .. } => 13,
            Self::ResetFailed { .. } => 14,
        }
    }

    fn kind_name(kind: usize) -> &'static str {
        [
            "Enumerated",
            "EnumFailed",
            "CapListMalformed",
            "NullCaps",
            "MsixOutsideBar",
            "BarsUnreadable",
            "BridgeSkipped",
            "Refused",
            "ClaimRefused",
            "WriteRefused",
            "BadRequest",
            "ClientReleased",
            "QuiesceFailed",
            "Reset",
            "ResetFailed",
        ]
        .get(kind)
        .copied()
        .unwrap_or("?")
    }
}

/// The server's trace ring.
pub type TraceLog = TraceRing<Trace, 32, TRACE_KINDS>;

/// The PCI server: the only code that touches configuration space. It owns the function table
/// and who holds which function; [`PciServer::protected`] serves [`pci_api::service`].
///
/// Trust: clients are untrusted (every register is checked, and a client only reaches functions
/// it claimed, which the policy must allow); the configuration comes from the system image and
/// is trusted; devices are untrusted (see the capability walks and BAR sizing).
pub struct PciServer<'a, P: ConfigPort> {
    port: P,
    config: Config<'a>,
    table: FunctionTable,
    holders: heapless::Vec<Option<Channel>, MAX_FUNCTIONS>,
    trace: TraceLog,
}

impl<P: ConfigPort> core::fmt::Debug for PciServer<'_, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PciServer")
            .field("functions", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl<'a, P: ConfigPort> PciServer<'a, P> {
    /// A server over `port` with `config`; nothing is touched until [`PciServer::init`].
    pub fn new(port: P, config: Config<'a>) -> Self {
        Self {
            port,
            config,
            table: FunctionTable::new(),
            holders: heapless::Vec::new(),
            trace: TraceLog::new(),
        }
    }

    /// Enumerate, assign BARs, and log the `lspci`-style table. Runs at every PD start: any
    /// state a previous incarnation left in configuration space is overwritten.
    ///
    /// # Errors
    /// [`EnumError`] when enumeration stopped early; the functions found so far are still
    /// assigned and served.
    pub fn init(&mut self, k: &mut dyn Kernel) -> Result<(), EnumError> {
        let (root, windows) = (self.config.root_bus, self.config.windows);
        let table = &mut self.table;
        let (scan, assigned) = self.port.with(k, |cfg| {
            let scan = enumerate::enumerate(cfg, root, table);
            let assigned = assign::assign(cfg, table, &windows);
            (scan, assigned)
        });
        self.holders.clear();
        for _ in 0..self.table.len() {
            // PANIC-free: same capacity as the table.
            let _ = self.holders.push(None);
        }
        self.trace_findings();
        let result = match (scan, assigned) {
            (Ok(stats), Ok(_)) => {
                let functions = u8::try_from(self.table.len()).unwrap_or(u8::MAX);
                self.trace.record(Trace::Enumerated {
                    functions,
                    last_bus: stats.last_bus,
                });
                log::info!(
                    "pci: {} functions on buses {}..={}",
                    self.table.len(),
                    root,
                    stats.last_bus
                );
                Ok(())
            }
            (Err(e), _) => {
                log::error!("pci: enumeration stopped: {e}");
                self.trace.record(Trace::EnumFailed);
                Err(e)
            }
            (Ok(_), Err(e)) => {
                log::error!("pci: programming BARs failed: {e}");
                self.trace.record(Trace::EnumFailed);
                Err(EnumError::Access(e))
            }
        };
        crate::table::log_table(&self.table, &self.config.windows);
        result
    }
}

impl<P: ConfigPort> PciServer<'_, P> {
    /// Record what enumeration found wrong, one trace entry per problem.
    fn trace_findings(&mut self) {
        for f in &self.table {
            let bdf = f.bdf.routing_id();
            if f.caps_walk.error.is_some() || f.ext_walk.error.is_some() {
                self.trace.record(Trace::CapListMalformed { bdf });
            }
            if f.caps_walk.nulls + f.ext_walk.nulls != 0 {
                self.trace.record(Trace::NullCaps { bdf });
            }
            if f.msix.is_some() && !f.msix_fits {
                self.trace.record(Trace::MsixOutsideBar { bdf });
            }
            match f.state {
                State::Ok => {}
                State::BarsUnreadable(_) => self.trace.record(Trace::BarsUnreadable { bdf }),
                State::NoBusNumber | State::TooDeep => {
                    self.trace.record(Trace::BridgeSkipped { bdf })
                }
                State::Refused => self.trace.record(Trace::Refused { bdf }),
            }
        }
    }

    /// The configuration-space backend (tests and the bring-up log inspect it).
    pub fn port(&self) -> &P {
        &self.port
    }

    /// Take the backend back, dropping the server.
    pub fn into_port(self) -> P {
        self.port
    }

    /// The functions found, parents before children.
    pub fn functions(&self) -> &[Function] {
        &self.table
    }

    /// The trace ring (dumped by the hosted runtime and xtask).
    pub fn trace(&self) -> &TraceLog {
        &self.trace
    }

    /// Who holds the function at `bdf`.
    pub fn holder(&self, bdf: Bdf) -> Option<Channel> {
        let i = self.index(bdf)?;
        self.holders.get(i).copied().flatten()
    }

    fn index(&self, bdf: Bdf) -> Option<usize> {
        self.table.iter().position(|f| f.bdf == bdf)
    }

    fn client_name(&self, ch: Channel) -> Option<&str> {
        self.config
            .clients
            .iter()
            .find(|c| c.channel == ch)
            .map(|c| c.name)
    }

    /// Serve one PPC of [`pci_api::service`] from the client on `ch`.
    pub fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        let result = Request::decode(msg, k.mrs()).and_then(|req| self.handle(k, ch, req));
        if let Err(e) = result {
            if matches!(e, PciError::BadRequest | PciError::UnknownClient) {
                self.trace.record(Trace::BadRequest { ch: ch.index() });
            }
        }
        let mrs = k.mrs();
        match result {
            Ok(Reply::Done) => MessageInfo::new(0, 0),
            Ok(Reply::Value(v)) => {
                mrs.set(0, u64::from(v));
                MessageInfo::new(0, 1)
            }
            Ok(Reply::Listed(entry, total)) => {
                entry.encode(mrs, 0);
                mrs.set(DeviceEntry::WORDS, u64::from(total));
                MessageInfo::new(0, DeviceEntry::WORDS + 1)
            }
            Ok(Reply::Bar(p)) => {
                p.encode(mrs);
                MessageInfo::new(0, BarPlacement::WORDS)
            }
            Err(e) => MessageInfo::new(e as u64, 0),
        }
    }

    /// Drop every claim of `client` (its PD was restarted by the supervisor) after turning bus
    /// mastering off on each of its functions, so nothing keeps DMAing into memory the restarted
    /// client no longer tracks. Returns how many claims were dropped.
    pub fn release_client(&mut self, k: &mut dyn Kernel, client: Channel) -> u8 {
        let mut n = 0u8;
        for i in 0..self.holders.len() {
            if self.holders.get(i).copied().flatten() == Some(client) {
                self.quiesce(k, i);
                self.reset(k, i);
                if let Some(h) = self.holders.get_mut(i) {
                    *h = None;
                }
                n = n.saturating_add(1);
            }
        }
        if n != 0 {
            log::warn!(
                "pci: {} released {n} device(s), bus mastering off",
                self.client_name(client).unwrap_or("?")
            );
            self.trace.record(Trace::ClientReleased {
                ch: client.index(),
                claims: n,
            });
        }
        n
    }

    /// Function-level reset of table entry `i` if it is a PCIe function that supports it, so the
    /// next holder finds the device as after power-on rather than as the dead holder left it (a
    /// GPU whose firmware still runs and whose queues point into memory that was reclaimed): the
    /// VFIO rule for a device changing hands. The reset clears what software configured; the
    /// BARs are written back where they were assigned and the command register as the server
    /// set it, bus mastering off (Linux saves and restores the same around
    /// `pci_reset_function`).
    fn reset(&mut self, k: &mut dyn Kernel, i: usize) {
        let Some(f) = self.table.get(i) else {
            return;
        };
        let Some(pcie) = f.pcie else {
            return;
        };
        let (bdf, bars, command) = (f.bdf, f.bars, f.command & !regs::CMD_MASTER);
        let flr = self.port.with(k, |cfg| {
            if cfg.read32(bdf, pcie.cap + regs::EXP_DEVCAP)? & regs::EXP_DEVCAP_FLR == 0 {
                return Ok(false);
            }
            let devctl = cfg.read16(bdf, pcie.cap + regs::EXP_DEVCTL)?;
            cfg.write16(
                bdf,
                pcie.cap + regs::EXP_DEVCTL,
                devctl | regs::EXP_DEVCTL_BCR_FLR,
            )?;
            Ok(true)
        });
        match flr {
            Ok(false) => return,
            Ok(true) => {}
            Err(e) => return self.reset_failed(bdf, e),
        }
        settle(k);
        let restored = self.port.with(k, |cfg| {
            for bar in bars.iter().flatten().filter(|b| b.assigned) {
                let reg = regs::BAR0 + 4 * u16::from(bar.index);
                // CAST: low and high halves of the address.
                cfg.write32(bdf, reg, bar.addr as u32)?;
                if bar.kind == pci_api::BarKind::Mem64 {
                    cfg.write32(bdf, reg + 4, (bar.addr >> 32) as u32)?;
                }
            }
            cfg.write16(bdf, regs::COMMAND, command)
        });
        match restored {
            Ok(()) => {
                log::info!("pci: {bdf} function-level reset; BARs restored, bus mastering off");
                self.trace.record(Trace::Reset {
                    bdf: bdf.routing_id(),
                });
            }
            Err(e) => self.reset_failed(bdf, e),
        }
    }

    fn reset_failed(&mut self, bdf: Bdf, e: ConfigError) {
        log::error!("pci: {bdf} function-level reset failed: {e}");
        self.trace.record(Trace::ResetFailed {
            bdf: bdf.routing_id(),
        });
    }

    fn quiesce(&mut self, k: &mut dyn Kernel, i: usize) {
        let Some(bdf) = self.table.get(i).map(|f| f.bdf) else {
            return;
        };
        let done = self.port.with(k, |cfg| {
            let cmd = cfg.read16(bdf, regs::COMMAND)?;
            cfg.write16(bdf, regs::COMMAND, cmd & !regs::CMD_MASTER)
        });
        if let Err(e) = done {
            log::error!("pci: {bdf} bus mastering could not be turned off: {e}");
            self.trace.record(Trace::QuiesceFailed {
                bdf: bdf.routing_id(),
            });
        }
    }

    fn handle(&mut self, k: &mut dyn Kernel, ch: Channel, req: Request) -> Result<Reply, PciError> {
        if self.client_name(ch).is_none() {
            return Err(PciError::UnknownClient);
        }
        match req {
            Request::List { index } => {
                let f = self
                    .table
                    .get(usize::from(index))
                    .ok_or(PciError::NoSuchDevice)?;
                let total = u16::try_from(self.table.len()).unwrap_or(u16::MAX);
                Ok(Reply::Listed(self.entry(ch, usize::from(index), f), total))
            }
            Request::Claim { bdf } => self.claim(ch, bdf).map(|()| Reply::Done),
            Request::ReadConfig { bdf, offset, width } => {
                let f = self.held(ch, bdf)?;
                if !pci_api::cfg::ConfigRequest::check(offset, width)
                    .is_ok_and(|()| offset + width.bytes() <= f.cfg_size)
                {
                    return Err(PciError::BadOffset);
                }
                self.port
                    .with(k, |cfg| cfg.read(bdf, offset, width))
                    .map(Reply::Value)
                    .map_err(|_| PciError::ConfigFailed)
            }
            Request::WriteConfig {
                bdf,
                offset,
                width,
                value,
            } => self
                .write_config(k, ch, bdf, offset, width, value)
                .map(|()| Reply::Done),
            Request::Bar { bdf, index } => {
                let f = self.held(ch, bdf)?;
                let bar = f
                    .bars
                    .get(usize::from(index))
                    .copied()
                    .flatten()
                    .ok_or(PciError::NoSuchBar)?;
                let window_offset = self
                    .config
                    .windows
                    .locate(&bar)
                    .map_or(u64::MAX, |(_, off)| off);
                Ok(Reply::Bar(BarPlacement {
                    index,
                    kind: bar.kind,
                    prefetchable: bar.prefetchable,
                    assigned: bar.assigned,
                    phys: bar.addr,
                    size: bar.size,
                    window_offset,
                }))
            }
            Request::Release { bdf } => {
                self.held(ch, bdf)?;
                let i = self.index(bdf).ok_or(PciError::NoSuchDevice)?;
                self.quiesce(k, i);
                self.reset(k, i);
                if let Some(h) = self.holders.get_mut(i) {
                    *h = None;
                }
                Ok(Reply::Done)
            }
        }
    }

    fn entry(&self, ch: Channel, i: usize, f: &Function) -> DeviceEntry {
        let holder = self.holders.get(i).copied().flatten();
        let mut flags = 0;
        let bit = |cond: bool, b: u8| if cond { b } else { 0 };
        flags |= bit(
            policy::allowed(self.config.policy, ch, f) && f.state == State::Ok,
            DeviceFlags::ALLOWED,
        );
        flags |= bit(holder == Some(ch), DeviceFlags::CLAIMED_BY_YOU);
        flags |= bit(
            holder.is_some_and(|h| h != ch),
            DeviceFlags::CLAIMED_BY_OTHER,
        );
        flags |= bit(f.state != State::Ok, DeviceFlags::REFUSED);
        flags |= bit(f.is_bridge(), DeviceFlags::BRIDGE);
        DeviceEntry {
            bdf: f.bdf,
            vendor: f.vendor,
            device: f.device,
            class: f.class,
            revision: f.revision,
            flags: DeviceFlags(flags),
        }
    }

    fn claim(&mut self, ch: Channel, bdf: Bdf) -> Result<(), PciError> {
        let i = self.index(bdf).ok_or(PciError::NoSuchDevice)?;
        let f = self.table.get(i).ok_or(PciError::NoSuchDevice)?;
        let result = if !policy::allowed(self.config.policy, ch, f) {
            Err(PciError::NotAllowed)
        } else if f.state != State::Ok {
            Err(PciError::DeviceRefused)
        } else {
            match self.holders.get(i).copied().flatten() {
                Some(h) if h == ch => Err(PciError::AlreadyClaimed),
                Some(_) => Err(PciError::ClaimedByOther),
                None => Ok(()),
            }
        };
        let name = self.client_name(ch).unwrap_or("?");
        match result {
            Ok(()) => {
                log::info!("pci: {bdf} claimed by {name}");
                if let Some(h) = self.holders.get_mut(i) {
                    *h = Some(ch);
                }
            }
            Err(e) => {
                log::warn!("pci: {bdf} claim by {name} refused: {e}");
                self.trace.record(Trace::ClaimRefused {
                    ch: ch.index(),
                    bdf: bdf.routing_id(),
                });
            }
        }
        result
    }

    /// The function at `bdf`, if `ch` holds it.
    fn held(&self, ch: Channel, bdf: Bdf) -> Result<&Function, PciError> {
        let i = self.index(bdf).ok_or(PciError::NoSuchDevice)?;
        match self.holders.get(i).copied().flatten() {
            Some(h) if h == ch => self.table.get(i).ok_or(PciError::NoSuchDevice),
            _ => Err(PciError::NotClaimed),
        }
    }

    fn write_config(
        &mut self,
        k: &mut dyn Kernel,
        ch: Channel,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), PciError> {
        let f = self.held(ch, bdf)?;
        let Some(rule) = writable(f, offset, width) else {
            self.trace.record(Trace::WriteRefused {
                ch: ch.index(),
                offset,
            });
            return Err(PciError::RegisterNotWritable);
        };
        let written = self.port.with(k, |cfg| {
            let current = cfg.read(bdf, offset, width)?;
            Ok::<_, ConfigError>(
                rule.permits(current, value)
                    .then(|| cfg.write(bdf, offset, width, value)),
            )
        });
        match written {
            Ok(Some(Ok(()))) => Ok(()),
            Ok(None) => {
                self.trace.record(Trace::WriteRefused {
                    ch: ch.index(),
                    offset,
                });
                Err(PciError::RegisterNotWritable)
            }
            Ok(Some(Err(_))) | Err(_) => Err(PciError::ConfigFailed),
        }
    }
}

/// A register a function driver may write: the bits it may change, and for MSI control the
/// largest Multiple Message Enable it may set.
#[derive(Clone, Copy, Debug)]
struct Writable {
    mask: u32,
    max_mme: Option<u32>,
}

impl Writable {
    /// Whether writing `value` over `current` changes only writable bits, within limits.
    fn permits(&self, current: u32, value: u32) -> bool {
        (current ^ value) & !self.mask == 0 && self.max_mme.is_none_or(|max| value >> 4 & 7 <= max)
    }
}

/// The registers a function driver needs (and nothing else): the command register (decoding only
/// for the spaces that have assigned BARs, bus mastering, INTx disable, error reporting), MSI
/// control (enable, and a vector count the function supports: PCI 3.0 §6.8.1.3) and MSI-X
/// control (enable, function mask).
fn writable(f: &Function, offset: u16, width: Width) -> Option<Writable> {
    if width != Width::U16 {
        return None;
    }
    if offset == regs::COMMAND {
        let assigned = |io: bool| {
            f.bars()
                .any(|b| b.assigned && (b.kind == pci_api::BarKind::Io) == io)
        };
        let mut bits =
            regs::CMD_MASTER | regs::CMD_INTX_DISABLE | regs::CMD_PARITY | regs::CMD_SERR;
        bits |= if assigned(false) { regs::CMD_MEMORY } else { 0 };
        bits |= if assigned(true) { regs::CMD_IO } else { 0 };
        return Some(Writable {
            mask: u32::from(bits),
            max_mme: None,
        });
    }
    if let Some(msi) = f.msi.filter(|m| offset == m.cap + regs::MSI_FLAGS) {
        let mask = u32::from(regs::MSI_FLAGS_ENABLE | regs::MSI_FLAGS_QSIZE);
        return Some(Writable {
            mask,
            max_mme: Some(msi.vectors.trailing_zeros()),
        });
    }
    if f.msix.is_some_and(|m| offset == m.cap + regs::MSIX_FLAGS) {
        return Some(Writable {
            mask: u32::from(regs::MSIX_FLAGS_ENABLE | regs::MSIX_FLAGS_MASKALL),
            max_mme: None,
        });
    }
    None
}

/// A successful reply.
enum Reply {
    Done,
    Value(u32),
    Listed(DeviceEntry, u16),
    Bar(BarPlacement),
}

/// TIMEOUT: PCIe 6.0 §6.6.2: after initiating FLR, software waits 100 ms before it sends the
/// function configuration requests again. A clock that does not move (a test platform without
/// time) ends the wait instead of hanging it.
fn settle(k: &dyn Kernel) {
    const FLR_WAIT_NS: u64 = 100_000_000;
    const FROZEN_READS: u32 = 1000;
    let mut last = k.now_ns();
    let until = last.saturating_add(FLR_WAIT_NS);
    let mut unchanged = 0;
    while last < until && unchanged < FROZEN_READS {
        core::hint::spin_loop();
        let now = k.now_ns();
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
    }
}
