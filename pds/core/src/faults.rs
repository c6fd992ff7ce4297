//! Fault injection (feature `fault-injection`, off by default): a run-time *plan* makes chosen
//! PDs misbehave at chosen points, so the isolation campaign (`cargo xtask faults`) can measure
//! what one faulty driver takes down.
//!
//! A platform built with the feature reads the plan (hosted and monolithic: the [`PLAN_ENV`]
//! environment variable, which every PD process inherits) and wraps each PD's handler in
//! [`Faulty`]. Before each event it delivers (notification, PPC, child fault, timer) the wrapper
//! counts the event and fires the PD's entries that are due. Without the variable the wrapper is
//! never built: the event loop is the plain one.
//!
//! Plan syntax, items separated by `;`:
//!
//! | item | meaning |
//! |---|---|
//! | `epoch=NS` | the monotonic clock (`Kernel::now_ns`) that entry times count from (default 0) |
//! | `seed=N` | seeds `#~N` triggers |
//! | `end=TIME` | when the campaign's workload stops (for clients; injectors ignore it) |
//! | `PD@TIME[+WITHIN][#N\|#~N]:ACTION` | in PD `PD` (or `*`: every PD), fire `ACTION` at the `N`th event (default 1st; `~N`: a seeded random one of the first `N`) handled at or after `TIME`, and not later than `WITHIN` after it (default: no limit) |
//!
//! `TIME` and `WITHIN` are integers with a unit (`ns`, `us`, `ms`, `s`); `TIME` counts from the
//! epoch. An entry that found no event in time never fires (a campaign judges each fault in its
//! own window, so a late one would be blamed on the next). Actions: `panic`;
//! `wild-read[=ADDR]` / `wild-write[=ADDR]` (a real access to an address outside every mapping:
//! a VM fault); `hang` (spin forever: the platform's watchdog must notice); `corrupt[=MASK]` (XOR
//! `MASK` into the registers of the next PPC reply, or its label if it has none);
//! `error=LABEL[,N[,ON]]` (answer the next `N` PPCs, or with `ON` the next `N` whose request label
//! is `ON`, with `LABEL` without running the handler: e.g. alloc-server's out-of-memory, which
//! refuses allocations and still takes frees); `call=CH,LABEL[,MR0[,MR1]]` (make a PPC on
//! channel `CH` first: e.g. a GSP model fault knob from the gsp PD); `report` (log [`Handler::usage`] for leak checks).
//!
//! An entry fires once per system run: a PD instance started after the entry's time (a restarted
//! one) skips it, so a restart does not turn one fault into a crash loop.
//!
//! Trust: the plan comes from whoever starts the system, never from a peer. The module is one of
//! the crate's designated `unsafe` places: a wild access is undefined behaviour on purpose.

use crate::{Channel, ChannelSet, Child, FaultKind, Handler, Kernel, MessageInfo, Usage};
use core::fmt;

/// The environment variable the hosted and monolithic platforms read the plan from.
pub const PLAN_ENV: &str = "PD_FAULTS";

/// The most entries one PD's injector holds.
pub const MAX_ENTRIES: usize = 32;

/// Where a wild access goes unless the plan says: far above anything the hosted runtime, the
/// monolithic composition or a Linux process maps (below the 47-bit user limit, above the heap,
/// below the mmap area), and never mapped on seL4 either.
pub const WILD_ADDR: u64 = 0x1000_dead_0000;

/// What an entry does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Panic (hosted and monolithic: the process aborts).
    Panic,
    /// Read a word at this address (outside every mapping).
    WildRead(u64),
    /// Write a word at this address (outside every mapping).
    WildWrite(u64),
    /// Spin forever without answering.
    Hang,
    /// XOR this mask into the next PPC reply's registers (its label if it has none).
    Corrupt(u64),
    /// Answer the next `count` PPCs (with `only`: of that request label) with `label` (no
    /// registers) without running the handler.
    Refuse {
        /// The reply label (a server's error code).
        label: u64,
        /// How many calls.
        count: u32,
        /// Only requests with this label are refused (others are served).
        only: Option<u64>,
    },
    /// Make a PPC on `ch` with `label` and up to two registers, then handle the event.
    Call {
        /// The channel (of this PD).
        ch: Channel,
        /// The label.
        label: u64,
        /// Message registers 0 and 1.
        mrs: [u64; 2],
        /// How many of them are sent.
        count: u8,
    },
    /// Log the handler's [`Handler::usage`].
    Report,
}

impl Action {
    /// Whether the PD survives firing it (it keeps handling events).
    pub const fn is_crash(self) -> bool {
        matches!(
            self,
            Self::Panic | Self::WildRead(_) | Self::WildWrite(_) | Self::Hang
        )
    }
}

impl fmt::Display for Action {
    /// The plan syntax, so a logged action can be pasted back into a plan.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Panic => f.write_str("panic"),
            Self::WildRead(a) => write!(f, "wild-read={a:#x}"),
            Self::WildWrite(a) => write!(f, "wild-write={a:#x}"),
            Self::Hang => f.write_str("hang"),
            Self::Corrupt(m) => write!(f, "corrupt={m:#x}"),
            Self::Refuse {
                label,
                count,
                only: None,
            } => write!(f, "error={label},{count}"),
            Self::Refuse {
                label,
                count,
                only: Some(on),
            } => write!(f, "error={label},{count},{on}"),
            Self::Call {
                ch,
                label,
                mrs,
                count,
            } => {
                write!(f, "call={},{label}", ch.index())?;
                for mr in mrs.iter().take(usize::from(count)) {
                    write!(f, ",{mr}")?;
                }
                Ok(())
            }
            Self::Report => f.write_str("report"),
        }
    }
}

/// Which event after the entry's time fires it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nth {
    /// Exactly the `n`th (1 = the first).
    Exact(u32),
    /// A seeded random one of the first `n`.
    Random(u32),
}

/// When an entry fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// Nanoseconds after the plan's epoch.
    pub at_ns: u64,
    /// How long after `at_ns` the entry may still fire (`None`: for ever).
    pub within_ns: Option<u64>,
    /// Which event at or after that time.
    pub nth: Nth,
}

/// One item of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// `epoch=NS`.
    Epoch(u64),
    /// `seed=N`.
    Seed(u64),
    /// `end=TIME`, in ns after the epoch.
    End(u64),
    /// `PD@TIME[#N]:ACTION`.
    Entry {
        /// The PD's name, or `*`.
        pd: &'a str,
        /// When.
        trigger: Trigger,
        /// What.
        action: Action,
    },
}

/// What is wrong with a plan item. Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PlanErrorKind {
    /// Neither `key=value` nor `PD@TIME:ACTION`.
    Syntax = 1,
    /// A time without a known unit, or too large.
    BadTime = 2,
    /// A number that does not parse or is out of range (`#0`, a channel over 61).
    BadNumber = 3,
    /// An action the plan syntax does not have.
    UnknownAction = 4,
    /// More than [`MAX_ENTRIES`] entries for one PD.
    TooManyEntries = 5,
    /// A key other than `epoch`, `seed`, `end`.
    UnknownKey = 6,
}

/// A bad plan: which item (0-based) and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanError {
    /// The item's index among the `;`-separated items.
    pub item: usize,
    /// Why.
    pub kind: PlanErrorKind,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.kind {
            PlanErrorKind::Syntax => "expected KEY=VALUE or PD@TIME[#N]:ACTION",
            PlanErrorKind::BadTime => "bad time (an integer with ns, us, ms or s)",
            PlanErrorKind::BadNumber => "bad number",
            PlanErrorKind::UnknownAction => "unknown action",
            PlanErrorKind::TooManyEntries => "too many entries for one PD",
            PlanErrorKind::UnknownKey => "unknown key (epoch, seed, end)",
        };
        write!(f, "fault plan item {}: {why}", self.item)
    }
}

/// A fault plan (borrowed text, parsed on demand: no allocation).
#[derive(Clone, Copy, Debug)]
pub struct Plan<'a> {
    text: &'a str,
}

/// `123`, `0x7b`, `1_000`.
fn number(s: &str) -> Option<u64> {
    let mut digits = [0u8; 32];
    let mut n = 0;
    for b in s.bytes().filter(|&b| b != b'_') {
        *digits.get_mut(n)? = b;
        n += 1;
    }
    let s = core::str::from_utf8(digits.get(..n)?).ok()?;
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `300ms` and friends, in ns.
fn time(s: &str) -> Option<u64> {
    let (n, scale) = if let Some(n) = s.strip_suffix("ns") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1_000)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000)
    } else {
        (s.strip_suffix('s')?, 1_000_000_000)
    };
    number(n)?.checked_mul(scale)
}

fn action(s: &str) -> Result<Action, PlanErrorKind> {
    let (name, arg) = match s.split_once('=') {
        Some((n, a)) => (n, Some(a)),
        None => (s, None),
    };
    let num = |a: &str| number(a).ok_or(PlanErrorKind::BadNumber);
    Ok(match (name, arg) {
        ("panic", None) => Action::Panic,
        ("hang", None) => Action::Hang,
        ("report", None) => Action::Report,
        ("wild-read", a) => Action::WildRead(a.map_or(Ok(WILD_ADDR), num)?),
        ("wild-write", a) => Action::WildWrite(a.map_or(Ok(WILD_ADDR), num)?),
        ("corrupt", a) => {
            let mask = a.map_or(Ok(1), num)?;
            if mask == 0 {
                return Err(PlanErrorKind::BadNumber);
            }
            Action::Corrupt(mask)
        }
        ("error", Some(a)) => {
            let mut parts = a.split(',');
            let label = num(parts.next().unwrap_or(""))?;
            let count = parts.next().map_or(Ok(1), num)?;
            let count = u32::try_from(count).map_err(|_| PlanErrorKind::BadNumber)?;
            let only = parts.next().map(num).transpose()?;
            if parts.next().is_some() {
                return Err(PlanErrorKind::BadNumber);
            }
            Action::Refuse { label, count, only }
        }
        ("call", Some(a)) => {
            let mut parts = a.split(',');
            let ch = num(parts.next().unwrap_or(""))?;
            let ch = Channel::try_new(ch).map_err(|_| PlanErrorKind::BadNumber)?;
            let label = num(parts.next().unwrap_or(""))?;
            let mut mrs = [0u64; 2];
            let mut count = 0u8;
            for p in parts {
                let slot = mrs
                    .get_mut(usize::from(count))
                    .ok_or(PlanErrorKind::BadNumber)?;
                *slot = num(p)?;
                count += 1;
            }
            Action::Call {
                ch,
                label,
                mrs,
                count,
            }
        }
        _ => return Err(PlanErrorKind::UnknownAction),
    })
}

fn item(s: &str) -> Result<Item<'_>, PlanErrorKind> {
    if let Some((pd, rest)) = s.split_once('@') {
        let (when, what) = rest.split_once(':').ok_or(PlanErrorKind::Syntax)?;
        let (at, nth) = match when.split_once('#') {
            Some((at, n)) => {
                let (random, n) = match n.strip_prefix('~') {
                    Some(n) => (true, n),
                    None => (false, n),
                };
                let n = number(n)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or(PlanErrorKind::BadNumber)?;
                (
                    at,
                    if random {
                        Nth::Random(n)
                    } else {
                        Nth::Exact(n)
                    },
                )
            }
            None => (when, Nth::Exact(1)),
        };
        if pd.is_empty() {
            return Err(PlanErrorKind::Syntax);
        }
        let (at, within) = match at.split_once('+') {
            Some((at, within)) => (at, Some(time(within).ok_or(PlanErrorKind::BadTime)?)),
            None => (at, None),
        };
        let at_ns = time(at).ok_or(PlanErrorKind::BadTime)?;
        return Ok(Item::Entry {
            pd,
            trigger: Trigger {
                at_ns,
                within_ns: within,
                nth,
            },
            action: action(what)?,
        });
    }
    let (key, value) = s.split_once('=').ok_or(PlanErrorKind::Syntax)?;
    match key {
        "epoch" => number(value)
            .map(Item::Epoch)
            .ok_or(PlanErrorKind::BadNumber),
        "seed" => number(value)
            .map(Item::Seed)
            .ok_or(PlanErrorKind::BadNumber),
        "end" => time(value).map(Item::End).ok_or(PlanErrorKind::BadTime),
        _ => Err(PlanErrorKind::UnknownKey),
    }
}

impl<'a> Plan<'a> {
    /// The plan in `text` (checked by [`Plan::check`] or as it is used).
    pub const fn new(text: &'a str) -> Self {
        Self { text }
    }

    /// Every item, in order; a bad one is an error naming it.
    pub fn items(&self) -> impl Iterator<Item = Result<Item<'a>, PlanError>> + 'a {
        self.text
            .split(';')
            .map(str::trim)
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .map(|(i, s)| item(s).map_err(|kind| PlanError { item: i, kind }))
    }

    /// # Errors
    /// The first bad item.
    pub fn check(&self) -> Result<(), PlanError> {
        self.items().try_for_each(|i| i.map(|_| ()))
    }

    /// The last `epoch=` (0 without one).
    pub fn epoch(&self) -> u64 {
        self.items().fold(0, |e, i| match i {
            Ok(Item::Epoch(v)) => v,
            _ => e,
        })
    }

    /// The last `seed=` (0 without one).
    pub fn seed(&self) -> u64 {
        self.items().fold(0, |e, i| match i {
            Ok(Item::Seed(v)) => v,
            _ => e,
        })
    }

    /// The last `end=`, in ns after the epoch.
    pub fn end(&self) -> Option<u64> {
        self.items().fold(None, |e, i| match i {
            Ok(Item::End(v)) => Some(v),
            _ => e,
        })
    }
}

/// splitmix64: a seeded choice per PD and entry, independent of how many PDs there are.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn name_hash(s: &str) -> u64 {
    crate::hash::fnv1a(crate::hash::FNV_OFFSET, s.as_bytes())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for its event.
    Armed,
    /// Fired.
    Fired,
    /// This instance started after the entry's time (a restart): never fires here.
    Skipped,
    /// Its time ran out before its event came.
    Expired,
}

#[derive(Clone, Copy, Debug)]
struct Armed {
    at_ns: u64,
    until_ns: u64,
    nth: u32,
    seen: u32,
    action: Action,
    state: State,
}

/// One PD's share of a plan, and what it has fired.
#[derive(Debug)]
pub struct Injector {
    entries: [Option<Armed>; MAX_ENTRIES],
    epoch_ns: u64,
    /// Registers of the next reply get this XORed in.
    corrupt: Option<u64>,
    /// The next calls are refused: (label, how many are left, only this request label).
    refuse: Option<(u64, u32, Option<u64>)>,
}

/// What firing asked of the wrapper.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Fired {
    report: bool,
}

impl Injector {
    /// The entries of `plan` for PD `pd` (its own and `*`), for an instance started at `now_ns`.
    ///
    /// # Errors
    /// A bad item anywhere in the plan, or more than [`MAX_ENTRIES`] for this PD.
    pub fn new(plan: &Plan<'_>, pd: &str, now_ns: u64) -> Result<Self, PlanError> {
        plan.check()?;
        let epoch_ns = plan.epoch();
        let seed = plan.seed();
        let mut entries = [None; MAX_ENTRIES];
        let mut n = 0;
        for (index, it) in plan.items().enumerate() {
            let Ok(Item::Entry {
                pd: who,
                trigger,
                action,
            }) = it
            else {
                continue;
            };
            if who != pd && who != "*" {
                continue;
            }
            let nth = match trigger.nth {
                Nth::Exact(n) => n,
                Nth::Random(n) => {
                    // CAST: usize to u64 is lossless on every target this runs on.
                    let r = mix(seed ^ name_hash(pd) ^ mix(index as u64));
                    // CAST: the remainder is below n, a u32.
                    1 + (r % u64::from(n)) as u32
                }
            };
            let at_ns = epoch_ns.saturating_add(trigger.at_ns);
            let slot = entries.get_mut(n).ok_or(PlanError {
                item: index,
                kind: PlanErrorKind::TooManyEntries,
            })?;
            let until_ns = trigger
                .within_ns
                .map_or(u64::MAX, |w| at_ns.saturating_add(w));
            *slot = Some(Armed {
                at_ns,
                until_ns,
                nth,
                seen: 0,
                action,
                state: if now_ns > at_ns {
                    State::Skipped
                } else {
                    State::Armed
                },
            });
            n += 1;
        }
        Ok(Self {
            entries,
            epoch_ns,
            corrupt: None,
            refuse: None,
        })
    }

    /// What a platform builds for PD `pd` started at `now_ns`, from the plan `text` it was given
    /// (hosted and monolithic: [`PLAN_ENV`]): an injector when the plan has entries for the PD,
    /// `None` otherwise. A bad plan is logged and injects nothing.
    pub fn from_text(text: Option<&str>, pd: &str, now_ns: u64) -> Option<Self> {
        match Self::new(&Plan::new(text?), pd, now_ns) {
            Ok(inj) => (!inj.is_empty()).then_some(inj),
            Err(e) => {
                log::error!("{pd}: {e}; no faults injected");
                None
            }
        }
    }

    /// Entries still waiting to fire in this instance.
    pub fn armed(&self) -> usize {
        self.entries
            .iter()
            .flatten()
            .filter(|e| e.state == State::Armed)
            .count()
    }

    /// Whether this PD has no entries at all.
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(Option::is_none)
    }

    /// Count one event at `k.now_ns()` and fire what is due (in plan order).
    fn event(&mut self, k: &mut dyn Kernel) -> Fired {
        let now = k.now_ns();
        let mut fired = Fired::default();
        for i in 0..MAX_ENTRIES {
            let Some(e) = self.entries.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if e.state != State::Armed || now < e.at_ns {
                continue;
            }
            if now >= e.until_ns {
                e.state = State::Expired;
                continue;
            }
            e.seen = e.seen.saturating_add(1);
            if e.seen < e.nth {
                continue;
            }
            e.state = State::Fired;
            let action = e.action;
            let after_us = now.saturating_sub(self.epoch_ns) / 1_000;
            // The campaign reads this line: keep its shape.
            log::warn!(
                "{}: fault injected: {action} at +{after_us}us (entry {i})",
                k.pd_name()
            );
            self.fire(k, action, &mut fired);
        }
        fired
    }

    fn fire(&mut self, k: &mut dyn Kernel, action: Action, fired: &mut Fired) {
        match action {
            Action::Panic => injected_panic(k.pd_name()),
            Action::WildRead(addr) => {
                let v = wild_read(addr);
                log::error!(
                    "{}: wild read at {addr:#x} did not fault (read {v:#x})",
                    k.pd_name()
                );
            }
            Action::WildWrite(addr) => {
                wild_write(addr);
                log::error!("{}: wild write at {addr:#x} did not fault", k.pd_name());
            }
            Action::Hang => loop {
                core::hint::spin_loop();
            },
            Action::Corrupt(mask) => self.corrupt = Some(mask),
            Action::Refuse { label, count, only } => {
                self.refuse = (count > 0).then_some((label, count, only));
            }
            Action::Call {
                ch,
                label,
                mrs,
                count,
            } => {
                // The event's own registers (a PPC's arguments) must survive the extra call.
                let saved = k.mrs().clone();
                for (i, &v) in mrs.iter().enumerate().take(usize::from(count)) {
                    k.mrs().set(i, v);
                }
                let r = k.ppcall(ch, MessageInfo::new(label, usize::from(count)));
                log::warn!("{}: injected call on {ch:?} answered {r:?}", k.pd_name());
                *k.mrs() = saved;
            }
            Action::Report => fired.report = true,
        }
    }

    /// The reply for a PPC with request label `request` that a pending `error=` refuses (the
    /// handler does not run).
    fn refusal(&mut self, request: u64) -> Option<MessageInfo> {
        let (label, left, only) = self.refuse?;
        if only.is_some_and(|on| on != request) {
            return None;
        }
        self.refuse = left
            .checked_sub(1)
            .filter(|&l| l > 0)
            .map(|l| (label, l, only));
        Some(MessageInfo::new(label, 0))
    }

    /// Apply a pending `corrupt=` to `reply` and its registers.
    fn corrupt(&mut self, k: &mut dyn Kernel, reply: MessageInfo) -> MessageInfo {
        let Some(mask) = self.corrupt.take() else {
            return reply;
        };
        if reply.count() == 0 {
            return MessageInfo::new(reply.label() ^ mask, 0);
        }
        let mrs = k.mrs();
        for i in 0..reply.count() {
            mrs.set(i, mrs.get(i) ^ mask);
        }
        reply
    }
}

/// The injected panic.
#[allow(clippy::panic)]
fn injected_panic(pd: &str) -> ! {
    panic!("{pd}: injected panic") // PANIC: this is the fault the plan asked for (feature-gated).
}

/// A read the plan asked for at an address outside every mapping.
#[allow(unsafe_code)]
fn wild_read(addr: u64) -> u64 {
    // CAST: an address for this machine's pointer width; truncation only changes which unmapped
    // address faults.
    let p = addr as usize as *const u64;
    // SAFETY: none: this is the injected fault, a VM fault on every platform (the address is
    // outside the PD's mappings), which kills the PD before the value is used.
    unsafe { core::ptr::read_volatile(p) }
}

/// A write the plan asked for at an address outside every mapping.
#[allow(unsafe_code)]
fn wild_write(addr: u64) {
    // CAST: as in `wild_read`.
    let p = addr as usize as *mut u64;
    // SAFETY: none: the injected fault (see `wild_read`); the address is outside every mapping,
    // so nothing is overwritten before the VM fault.
    unsafe { core::ptr::write_volatile(p, 0xdead_beef) }
}

/// A PD's handler with its injector in front: what the platforms run when a plan is given.
pub struct Faulty<'h> {
    inner: &'h mut dyn Handler,
    inj: Injector,
}

impl fmt::Debug for Faulty<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faulty")
            .field("inj", &self.inj)
            .finish_non_exhaustive()
    }
}

impl<'h> Faulty<'h> {
    /// `inner` with `inj` in front.
    pub fn new(inner: &'h mut dyn Handler, inj: Injector) -> Self {
        Self { inner, inj }
    }

    /// The injector (what is left to fire).
    pub fn injector(&self) -> &Injector {
        &self.inj
    }

    fn before(&mut self, k: &mut dyn Kernel) {
        if self.inj.event(k).report {
            match self.inner.usage() {
                Some(u) => log::info!(
                    "{}: usage dma-pages {} vram-pages {}",
                    k.pd_name(),
                    u.dma_pages,
                    u.vram_pages
                ),
                None => log::debug!("{}: usage not tracked", k.pd_name()),
            }
        }
    }
}

impl Handler for Faulty<'_> {
    fn notified(&mut self, k: &mut dyn Kernel, channels: ChannelSet) {
        self.before(k);
        self.inner.notified(k, channels);
    }

    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        self.before(k);
        if let Some(reply) = self.inj.refusal(msg.label()) {
            return reply;
        }
        let reply = self.inner.protected(k, ch, msg);
        self.inj.corrupt(k, reply)
    }

    fn fault(&mut self, k: &mut dyn Kernel, child: Child, kind: FaultKind) {
        self.before(k);
        self.inner.fault(k, child, kind);
    }

    fn timeout(&mut self, k: &mut dyn Kernel) {
        self.before(k);
        self.inner.timeout(k);
    }

    fn usage(&self) -> Option<Usage> {
        self.inner.usage()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::{IpcError, MessageRegisters};
    use std::vec::Vec;

    /// A kernel with a settable clock that records calls.
    struct Fake {
        now: u64,
        mrs: MessageRegisters,
        calls: Vec<(Channel, u64, u64)>,
    }
    impl Fake {
        fn at(now: u64) -> Self {
            Self {
                now,
                mrs: MessageRegisters::default(),
                calls: Vec::new(),
            }
        }
    }
    impl Kernel for Fake {
        fn pd_name(&self) -> &str {
            "gpu"
        }
        fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
            Ok(())
        }
        fn ppcall(&mut self, ch: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
            self.calls.push((ch, msg.label(), self.mrs.get(0)));
            self.mrs.set(0, 0x5555);
            Ok(MessageInfo::new(0, 1))
        }
        fn mrs(&mut self) -> &mut MessageRegisters {
            &mut self.mrs
        }
        fn now_ns(&self) -> u64 {
            self.now
        }
    }

    /// Echoes MR0 + 1 and counts its events.
    #[derive(Default)]
    struct Echo {
        events: u32,
    }
    impl Handler for Echo {
        fn protected(&mut self, k: &mut dyn Kernel, _: Channel, _: MessageInfo) -> MessageInfo {
            self.events += 1;
            let v = k.mrs().get(0);
            k.mrs().set(0, v + 1);
            MessageInfo::new(0, 1)
        }
        fn notified(&mut self, _: &mut dyn Kernel, _: ChannelSet) {
            self.events += 1;
        }
        fn usage(&self) -> Option<Usage> {
            Some(Usage {
                dma_pages: 3,
                vram_pages: 0,
            })
        }
    }

    fn call(f: &mut Faulty<'_>, k: &mut Fake, v: u64) -> (u64, u64) {
        k.mrs.set(0, v);
        let r = f.protected(k, Channel::new(2), MessageInfo::new(1, 1));
        (r.label(), k.mrs.get(0))
    }

    #[test]
    fn plans_parse_every_item_and_refuse_junk_with_its_position() {
        let p = Plan::new(
            "epoch=1000; seed=7; end=2s; gpu@300ms+50ms#4:panic; *@1_000us:report; \
             alloc@1s:error=5,3; gsp@2ms#~8:call=3,3,2,0; drm@0ns:corrupt=0x10; \
             pci@1ms:wild-write; gpu@1ms:wild-read=0x8; gpu@5ms:hang",
        );
        assert_eq!(p.check(), Ok(()));
        assert_eq!(
            (p.epoch(), p.seed(), p.end()),
            (1000, 7, Some(2_000_000_000))
        );
        let entries: Vec<_> = p
            .items()
            .filter_map(|i| match i.unwrap() {
                Item::Entry {
                    pd,
                    trigger,
                    action,
                } => Some((pd, trigger, action)),
                _ => None,
            })
            .collect();
        assert_eq!(entries.len(), 8);
        assert_eq!(
            entries[0],
            (
                "gpu",
                Trigger {
                    at_ns: 300_000_000,
                    within_ns: Some(50_000_000),
                    nth: Nth::Exact(4)
                },
                Action::Panic
            )
        );
        assert_eq!(
            entries[2].2,
            Action::Refuse {
                label: 5,
                count: 3,
                only: None
            }
        );
        assert_eq!(entries[3].1.nth, Nth::Random(8));
        assert_eq!(
            entries[3].2,
            Action::Call {
                ch: Channel::new(3),
                label: 3,
                mrs: [2, 0],
                count: 2
            }
        );
        assert_eq!(entries[5].2, Action::WildWrite(WILD_ADDR));
        assert_eq!(entries[6].2, Action::WildRead(8));
        // Every action prints as plan syntax that parses back to itself.
        for (_, _, a) in &entries {
            let text = std::format!("x@1ms:{a}");
            let back = Plan::new(&text).items().next().unwrap().unwrap();
            assert!(
                matches!(back, Item::Entry { action, .. } if action == *a),
                "{text}"
            );
        }
        let bad = |t: &str| Plan::new(t).check().unwrap_err();
        assert_eq!(bad("epoch=1;gpu@3:panic").kind, PlanErrorKind::BadTime);
        assert_eq!(bad("epoch=1;gpu@3:panic").item, 1);
        assert_eq!(bad("gpu@3ms:explode").kind, PlanErrorKind::UnknownAction);
        assert_eq!(bad("gpu@3ms#0:panic").kind, PlanErrorKind::BadNumber);
        assert_eq!(bad("gpu@3ms:call=62,1").kind, PlanErrorKind::BadNumber);
        assert_eq!(bad("gpu@3ms:call=1,1,2,3,4").kind, PlanErrorKind::BadNumber);
        assert_eq!(bad("gpu@3ms:corrupt=0").kind, PlanErrorKind::BadNumber);
        assert_eq!(bad("gpu3ms:panic").kind, PlanErrorKind::Syntax);
        assert_eq!(bad("gpu@3ms+5:panic").kind, PlanErrorKind::BadTime);
        assert_eq!(bad("@3ms:panic").kind, PlanErrorKind::Syntax);
        assert_eq!(bad("colour=blue").kind, PlanErrorKind::UnknownKey);
        assert_eq!(bad("gpu@99999999999999s:hang").kind, PlanErrorKind::BadTime);
    }

    #[test]
    fn an_entry_fires_at_its_nth_event_after_its_time_and_only_once() {
        let plan = Plan::new("epoch=1000;gpu@1us#3:corrupt=0xff;drm@0ns:panic");
        let inj = Injector::new(&plan, "gpu", 1000).unwrap();
        assert_eq!(inj.armed(), 1, "drm's entry is not gpu's");
        let mut echo = Echo::default();
        let mut f = Faulty::new(&mut echo, inj);
        let mut k = Fake::at(1500); // before the entry's time: events do not count
        assert_eq!(call(&mut f, &mut k, 1), (0, 2));
        k.now = 2000;
        assert_eq!(call(&mut f, &mut k, 1), (0, 2), "1st event after the time");
        assert_eq!(call(&mut f, &mut k, 1), (0, 2), "2nd");
        assert_eq!(
            call(&mut f, &mut k, 1),
            (0, 2 ^ 0xff),
            "3rd: the reply is corrupted"
        );
        assert_eq!(f.injector().armed(), 0);
        assert_eq!(call(&mut f, &mut k, 1), (0, 2), "fired once");
        drop(f);
        assert_eq!(echo.events, 5, "the handler ran for every call");
    }

    #[test]
    fn platforms_get_an_injector_only_for_a_good_plan_with_entries_for_the_pd() {
        assert!(Injector::from_text(None, "gpu", 0).is_none());
        assert!(Injector::from_text(Some("drm@1ms:panic"), "gpu", 0).is_none());
        assert!(Injector::from_text(Some("gpu@1ms:explode"), "gpu", 0).is_none());
        assert_eq!(
            Injector::from_text(Some("*@1ms:report"), "gpu", 0).map(|i| i.armed()),
            Some(1)
        );
    }

    #[test]
    fn an_entry_without_an_event_in_time_never_fires() {
        let plan = Plan::new("gpu@1us+1us:corrupt=0xff");
        let mut echo = Echo::default();
        let mut f = Faulty::new(&mut echo, Injector::new(&plan, "gpu", 0).unwrap());
        let mut k = Fake::at(1500);
        assert_eq!(
            call(&mut f, &mut k, 1),
            (0, 2 ^ 0xff),
            "inside its time: fires"
        );
        let mut f = Faulty::new(&mut echo, Injector::new(&plan, "gpu", 0).unwrap());
        k.now = 2000;
        assert_eq!(
            call(&mut f, &mut k, 1),
            (0, 2),
            "too late: the reply is intact"
        );
        assert_eq!(call(&mut f, &mut k, 1), (0, 2));
        assert_eq!(f.injector().armed(), 0);
    }

    #[test]
    fn a_restarted_instance_skips_entries_whose_time_has_passed() {
        let plan = Plan::new("epoch=0;gpu@1ms:panic;gpu@5ms:report");
        let inj = Injector::new(&plan, "gpu", 2_000_000).unwrap();
        assert_eq!(inj.armed(), 1, "only the later entry is left");
        assert!(!inj.is_empty());
        assert!(Injector::new(&plan, "drm", 0).unwrap().is_empty());
    }

    #[test]
    fn refusals_answer_without_the_handler_then_stop() {
        let plan = Plan::new("alloc@0ns:error=5,2");
        let mut echo = Echo::default();
        let mut f = Faulty::new(&mut echo, Injector::new(&plan, "alloc", 0).unwrap());
        let mut k = Fake::at(10);
        assert_eq!(
            call(&mut f, &mut k, 7),
            (5, 7),
            "refused: registers untouched"
        );
        assert_eq!(call(&mut f, &mut k, 7), (5, 7));
        assert_eq!(call(&mut f, &mut k, 7), (0, 8), "served again");
        drop(f);
        assert_eq!(echo.events, 1);
    }

    #[test]
    fn a_refusal_for_one_request_label_lets_the_others_through() {
        let plan = Plan::new("alloc@0ns:error=10,1,2");
        assert!(matches!(
            plan.items().next(),
            Some(Ok(Item::Entry {
                action: Action::Refuse {
                    label: 10,
                    count: 1,
                    only: Some(2)
                },
                ..
            }))
        ));
        let mut echo = Echo::default();
        let mut f = Faulty::new(&mut echo, Injector::new(&plan, "alloc", 0).unwrap());
        let mut k = Fake::at(10);
        assert_eq!(call(&mut f, &mut k, 7), (0, 8), "label 1: served");
        k.mrs.set(0, 7);
        let r = f.protected(&mut k, Channel::new(2), MessageInfo::new(2, 1));
        assert_eq!((r.label(), k.mrs.get(0)), (10, 7), "label 2: refused");
        assert_eq!(call(&mut f, &mut k, 7), (0, 8));
        assert!(Plan::new("alloc@0ns:error=10,1,2,3").check().is_err());
    }

    #[test]
    fn a_corrupt_reply_without_registers_flips_its_label() {
        let mut inj = Injector::new(&Plan::new("gpu@0ns:corrupt=0x4"), "gpu", 0).unwrap();
        let mut k = Fake::at(1);
        inj.event(&mut k);
        assert_eq!(inj.corrupt(&mut k, MessageInfo::new(1, 0)).label(), 5);
        assert_eq!(
            inj.corrupt(&mut k, MessageInfo::new(1, 0)).label(),
            1,
            "once"
        );
    }

    #[test]
    fn an_injected_call_goes_out_first_and_keeps_the_events_registers() {
        let plan = Plan::new("gsp@0ns:call=3,3,2");
        let mut echo = Echo::default();
        let mut f = Faulty::new(&mut echo, Injector::new(&plan, "gsp", 0).unwrap());
        let mut k = Fake::at(1);
        assert_eq!(
            call(&mut f, &mut k, 41),
            (0, 42),
            "the PPC's own argument survived"
        );
        assert_eq!(k.calls, [(Channel::new(3), 3, 2)]);
        f.notified(&mut k, ChannelSet::EMPTY);
        assert_eq!(k.calls.len(), 1);
    }

    #[test]
    fn random_triggers_are_seeded_and_within_range() {
        let pick = |seed: u64, pd: &str| {
            let text = std::format!("seed={seed};{pd}@0ns#~5:report");
            let inj = Injector::new(&Plan::new(&text), pd, 0).unwrap();
            inj.entries[0].unwrap().nth
        };
        let picks: Vec<u32> = (0..64).map(|s| pick(s, "gpu")).collect();
        assert!(picks.iter().all(|&n| (1..=5).contains(&n)));
        assert!(
            (1..=5).all(|n| picks.contains(&n)),
            "every choice occurs: {picks:?}"
        );
        assert_eq!(pick(9, "gpu"), pick(9, "gpu"), "same seed, same choice");
    }

    #[test]
    fn the_panic_action_panics_with_the_pd_name() {
        let mut echo = Echo::default();
        let inj = Injector::new(&Plan::new("gpu@0ns:panic"), "gpu", 0).unwrap();
        let mut f = Faulty::new(&mut echo, inj);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f.notified(&mut Fake::at(1), ChannelSet::EMPTY);
        }));
        let msg = r.unwrap_err();
        assert_eq!(
            msg.downcast_ref::<std::string::String>().unwrap(),
            "gpu: injected panic"
        );
    }

    #[test]
    fn report_and_usage_reach_the_inner_handler() {
        let mut echo = Echo::default();
        let inj = Injector::new(&Plan::new("*@0ns:report"), "alloc", 0).unwrap();
        let mut f = Faulty::new(&mut echo, inj);
        f.notified(&mut Fake::at(1), ChannelSet::EMPTY);
        assert_eq!(f.usage().map(|u| u.dma_pages), Some(3));
        assert_eq!(f.injector().armed(), 0);
        assert!(Action::Hang.is_crash() && !Action::Report.is_crash());
    }
}
