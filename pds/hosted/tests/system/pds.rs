//! The test systems' PD programs. Channel, child and region numbers mirror the test system
//! descriptions in `tests/*.xml` (the generated constants exist only for the product's
//! `system.xml`).

use crate::relay::{echo, Relay, WORDS};
use pd_core::shm::{ReadWrite, Region};
use pd_core::{
    Channel, ChannelSet, Child, FaultKind, Handler, IpcError, Kernel, MessageInfo, Verdict,
};
use pd_programs::client_ext::Idle;
use pd_programs::regions::{ro, rw};
use pd_programs::supervisor::policy::{ChildConfig, Limits};
use pd_programs::supervisor::Supervisor;
use pd_programs::sys::RegionDecl;
use pd_programs::{program, Program, Role};

const fn ch(id: u8) -> Channel {
    Channel::new(id)
}

const fn region(name: &'static str, vaddr: u64, writable: bool) -> RegionDecl {
    RegionDecl {
        name,
        vaddr,
        size: 0x1000,
        writable,
        cached: true,
        fake_paddr: 0,
    }
}

/// Every test program, by image.
pub const PROGRAMS: &[Program] = &[
    // chain.xml
    program!("t-supervisor.elf" => chain_supervisor),
    program!("t-pci.elf" => pci),
    program!("t-alloc.elf" => leaf),
    program!("t-gsp.elf" => gsp),
    program!("t-gpu.elf" => gpu),
    program!("t-drm.elf" => drm),
    program!("t-model.elf" => leaf),
    program!("t-client.elf" => client, Role::Workload),
    // isolation.xml
    program!("t-isolation-boss.elf" => isolation_boss, Role::Workload),
    program!("t-victim.elf" => victim),
    program!("t-reader.elf" => reader),
    program!("t-writer.elf" => writer),
    // ipc.xml
    program!("t-caller.elf" => caller, Role::Workload),
    program!("t-callee.elf" => callee),
    // budget.xml
    program!("t-budget-supervisor.elf" => budget_supervisor),
    program!("t-crasher.elf" => crasher),
    program!("t-watcher.elf" => watcher),
    // watchdog.xml
    program!("t-watchdog-boss.elf" => watchdog_boss, Role::Workload),
    program!("t-wd-caller.elf" => wd_caller, Role::Workload),
    program!("t-sleeper.elf" => sleeper),
    program!("t-aborter.elf" => aborter),
    // initwait.xml
    program!("t-slow-init.elf" => slow_init),
    program!("t-init-waiter.elf" => init_waiter, Role::Workload),
];

// ---- chain.xml ----

const CHAIN_CHILDREN: &[ChildConfig] = &[
    ChildConfig::restart(Child::new(1), "pci"),
    ChildConfig::restart(Child::new(2), "alloc"),
    ChildConfig::restart(Child::new(3), "gsp"),
    ChildConfig::restart(Child::new(4), "gpu"),
    ChildConfig::restart(Child::new(5), "drm"),
    ChildConfig::hold(Child::new(6), "client0"),
    ChildConfig::hold(Child::new(7), "client1"),
];
const STATUS: RegionDecl = region("status", 0x2000_0000, true);

fn chain_supervisor(k: &mut dyn Kernel) -> Supervisor {
    const DEPENDENTS: &[Channel] = &[ch(1), ch(2), ch(3), ch(4), ch(5)];
    Supervisor::new(k, Limits::default(), CHAIN_CHILDREN, DEPENDENTS, rw(STATUS))
}

fn pci(k: &mut dyn Kernel) -> impl Handler {
    Relay::new(k, const { &[ch(1)] })
}

fn gsp(k: &mut dyn Kernel) -> impl Handler {
    Relay::new(k, const { &[ch(1), ch(2), ch(3)] })
}

fn gpu(k: &mut dyn Kernel) -> impl Handler {
    Relay::new(k, const { &[ch(1), ch(2), ch(3)] })
}

fn leaf(k: &mut dyn Kernel) -> impl Handler {
    Relay::new(k, &[])
}

fn drm(k: &mut dyn Kernel) -> impl Handler {
    Relay::with_shared(
        k,
        const { &[ch(1)] },
        [
            (ch(2), ro(region("client0_ioctl", 0x3000_0000, false))),
            (ch(3), ro(region("client1_ioctl", 0x3001_0000, false))),
        ],
    )
}

fn client(k: &mut dyn Kernel) -> Idle {
    let ioctl = rw(region("ioctl", 0x3000_0000, true));
    let verdict = echo_workload(k, ch(0), &ioctl);
    let _ = k.report_verdict(verdict);
    Idle
}

// ---- isolation.xml ----

/// Passes once `reader` and `writer` died of a VM fault at exactly the address they touched.
struct IsolationBoss {
    seen: [bool; 2],
}

impl Handler for IsolationBoss {
    fn fault(&mut self, k: &mut dyn Kernel, child: Child, kind: FaultKind) {
        log::info!("boss: child {} faulted: {kind}", child.index());
        let expected = match child.index() {
            2 => (0, 0x4000_0000),
            3 => (1, 0x5000_0000),
            _ => {
                let _ = k.report_verdict(Verdict::Fail);
                return;
            }
        };
        if kind
            != (FaultKind::VmFault {
                addr: Some(expected.1),
            })
        {
            let _ = k.report_verdict(Verdict::Fail);
            return;
        }
        self.seen[expected.0] = true;
        if self.seen == [true, true] {
            let _ = k.report_verdict(Verdict::Pass);
        }
    }
}

fn isolation_boss(_: &mut dyn Kernel) -> IsolationBoss {
    IsolationBoss { seen: [false; 2] }
}

fn victim(k: &mut dyn Kernel) -> Idle {
    let secret = rw(region("secret", 0x4000_0000, true));
    let _ = secret.write_bytes(0, b"SECRET");
    log::info!("{}: wrote the secret", k.pd_name());
    Idle
}

/// Whether `pid`'s memory or any of its descriptors can be opened through procfs (listing
/// `/proc/PID/fd` may be allowed; following an entry must not be).
fn reachable(pid: u32) -> bool {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten();
    std::fs::File::open(format!("/proc/{pid}/mem")).is_ok()
        || fds
            .into_iter()
            .any(|fd| std::fs::File::open(fd.path()).is_ok())
}

/// What a PD can see of other PDs and the runtime through procfs: nothing it can open.
fn procfs_is_closed() -> bool {
    let runtime = std::os::unix::process::parent_id();
    let me = std::process::id();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    if !maps.contains(":mine") || maps.contains(":secret") {
        log::error!("reader: unexpected mappings:\n{maps}");
        return false;
    }
    let mut others = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().nth(1));
        if pid == me || (pid != runtime && ppid != Some(runtime.to_string().as_str())) {
            continue;
        }
        others += 1;
        if reachable(pid) {
            log::error!("reader: could open the memory or a descriptor of pid {pid}");
            return false;
        }
    }
    log::info!("reader: procfs opens nothing of {others} other processes of the system");
    others >= 3
}

#[allow(unsafe_code)]
fn reader(k: &mut dyn Kernel) -> Idle {
    if !procfs_is_closed() {
        std::process::abort();
    }
    log::info!("{}: reading another PD's address 0x40000000", k.pd_name());
    // SAFETY: deliberately not sound: the address is not mapped in this PD, and the test checks
    // that the access kills it with a VM fault rather than reading the victim's secret.
    let v = unsafe { std::ptr::read_volatile(0x4000_0000 as *const u8) };
    log::error!("{}: read {v:#x} from another PD's memory", k.pd_name());
    Idle
}

#[allow(unsafe_code)]
fn writer(k: &mut dyn Kernel) -> Idle {
    let mine = ro(region("mine", 0x5000_0000, false));
    log::info!(
        "{}: own read-only map reads {:?}; now writing it",
        k.pd_name(),
        mine.read::<u8>(0)
    );
    // SAFETY: deliberately not sound: the map is read-only, and the test checks that the write
    // kills this PD with a VM fault.
    unsafe { std::ptr::write_volatile(0x5000_0000 as *mut u8, 1) };
    log::error!("{}: wrote a read-only map", k.pd_name());
    Idle
}

// ---- ipc.xml ----

/// Checks every refusal, makes one good call, then waits for the callee's notification.
struct Caller {
    ok: bool,
}

impl Handler for Caller {
    fn notified(&mut self, k: &mut dyn Kernel, channels: ChannelSet) {
        log::info!("{}: notified on {channels:?}", k.pd_name());
        let pass = self.ok && channels.contains(ch(1));
        let _ = k.report_verdict(if pass { Verdict::Pass } else { Verdict::Fail });
    }
}

fn caller(k: &mut dyn Kernel) -> Caller {
    let refusals = [
        (k.notify(ch(9)), IpcError::UndeclaredChannel),
        (
            k.ppcall(ch(9), MessageInfo::new(1, 0)).map(|_| ()),
            IpcError::UndeclaredChannel,
        ),
        (
            k.ppcall(ch(2), MessageInfo::new(1, 0)).map(|_| ()),
            IpcError::NoPpcRight,
        ),
        (k.notify(ch(2)), IpcError::NoNotifyRight),
        (k.restart_child(Child::new(1)), IpcError::NotAChild),
    ];
    let mut ok = refusals.iter().all(|(got, want)| *got == Err(*want));
    for i in 0..3 {
        k.mrs().set(i, 10 * i as u64);
    }
    k.mrs().set(3, 99);
    let reply = k.ppcall(ch(1), MessageInfo::new(7, 3));
    let mrs = k.mrs();
    let regs = [mrs.get(0), mrs.get(1), mrs.get(2), mrs.get(3)];
    log::info!("caller: reply {reply:?} registers {regs:?}");
    ok &= reply.map(|m| (m.label(), m.count())) == Ok((8, 3)) && regs == [1, 11, 21, 99];
    ok &= k.notify(ch(1)).is_ok();
    if !ok {
        let _ = k.report_verdict(Verdict::Fail);
    }
    Caller { ok }
}

/// Answers label+1 with each register +1; notifies back.
struct Callee;

impl Handler for Callee {
    fn protected(&mut self, k: &mut dyn Kernel, _: Channel, msg: MessageInfo) -> MessageInfo {
        for i in 0..msg.count() {
            let v = k.mrs().get(i);
            k.mrs().set(i, v + 1);
        }
        MessageInfo::new(msg.label() + 1, msg.count())
    }

    fn notified(&mut self, k: &mut dyn Kernel, channels: ChannelSet) {
        for c in channels.iter() {
            let _ = k.notify(c);
        }
    }
}

fn callee(_: &mut dyn Kernel) -> Callee {
    Callee
}

// ---- budget.xml ----

fn budget_supervisor(k: &mut dyn Kernel) -> Supervisor {
    const CHILDREN: &[ChildConfig] = &[
        ChildConfig::restart(Child::new(1), "crasher"),
        ChildConfig::hold(Child::new(2), "watcher"),
    ];
    Supervisor::new(
        k,
        Limits::default(),
        CHILDREN,
        const { &[ch(2)] },
        rw(STATUS),
    )
}

fn crasher(k: &mut dyn Kernel) -> Idle {
    log::info!("{}: starting, and aborting", k.pd_name());
    std::process::abort();
}

/// Logs the crasher's entry of the status page once it says Failed.
struct Watcher {
    page: Region<pd_core::shm::ReadOnly>,
}

impl Handler for Watcher {
    fn notified(&mut self, k: &mut dyn Kernel, _: ChannelSet) {
        use pd_programs::status::{read, PdState};
        if let Ok(s) = read(&self.page, Child::new(1)) {
            if PdState::try_from(s.state) == Ok(PdState::Failed) {
                log::info!(
                    "{}: status page: crasher failed (generation {}, {} restarts)",
                    k.pd_name(),
                    s.generation,
                    s.restarts
                );
            }
        }
    }
}

fn watcher(_: &mut dyn Kernel) -> Watcher {
    Watcher {
        page: ro(region("status", 0x2000_0000, false)),
    }
}

// ---- watchdog.xml ----

/// Passes once `sleeper` was killed by the watchdog and `aborter` aborted.
struct WatchdogBoss {
    seen: [bool; 2],
}

impl Handler for WatchdogBoss {
    fn fault(&mut self, k: &mut dyn Kernel, child: Child, kind: FaultKind) {
        log::info!("boss: child {} faulted: {kind}", child.index());
        match (child.index(), kind) {
            (2, FaultKind::Watchdog) => self.seen[0] = true,
            (3, FaultKind::Abort) => self.seen[1] = true,
            _ => {
                let _ = k.report_verdict(Verdict::Fail);
            }
        }
        if self.seen == [true, true] {
            let _ = k.report_verdict(Verdict::Pass);
        }
    }
}

fn watchdog_boss(_: &mut dyn Kernel) -> WatchdogBoss {
    WatchdogBoss { seen: [false; 2] }
}

fn wd_caller(k: &mut dyn Kernel) -> Idle {
    let hung = k.ppcall(ch(1), MessageInfo::new(1, 0));
    log::info!("{}: call to sleeper: {hung:?}", k.pd_name());
    let died = k.ppcall(ch(2), MessageInfo::new(1, 0));
    log::info!("{}: call to aborter: {died:?}", k.pd_name());
    let pass = hung == Err(IpcError::Timeout) && died == Err(IpcError::PeerFaulted);
    let _ = k.report_verdict(if pass { Verdict::Pass } else { Verdict::Fail });
    Idle
}

/// Never answers.
struct Sleeper;

impl Handler for Sleeper {
    fn protected(&mut self, _: &mut dyn Kernel, _: Channel, _: MessageInfo) -> MessageInfo {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

fn sleeper(_: &mut dyn Kernel) -> Sleeper {
    Sleeper
}

/// Aborts in the middle of a call.
struct Aborter;

impl Handler for Aborter {
    fn protected(&mut self, k: &mut dyn Kernel, _: Channel, _: MessageInfo) -> MessageInfo {
        log::info!("{}: aborting mid-call", k.pd_name());
        std::process::abort();
    }
}

fn aborter(_: &mut dyn Kernel) -> Aborter {
    Aborter
}

// ---- the echo client of these test systems (the real clients run DRM jobs) ----

/// How long the echo workload runs, and how long it retries without a success.
const RUN_NS: u64 = 1_000_000_000;
const GIVE_UP_NS: u64 = 10_000_000_000;

/// xorshift64: request words that differ every time.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// The workload against `drm`, with the client's `ioctl` buffer (shared with drm).
fn echo_workload(k: &mut dyn Kernel, drm: Channel, ioctl: &Region<ReadWrite>) -> Verdict {
    let start = k.now_ns();
    let (mut ok, mut failed, mut streak, mut last_ok) = (0u64, 0u64, 0u64, start);
    let mut x = start | 1;
    // Run for RUN_NS, and past it until an outage in progress is over.
    while k.now_ns().saturating_sub(start) < RUN_NS || streak > 0 {
        let mut words = [0u64; WORDS];
        for w in &mut words {
            *w = next(&mut x);
        }
        for (i, w) in words.iter().enumerate() {
            let _ = ioctl.write(i * 8, w);
        }
        match echo(k, drm, &words) {
            Ok(()) if streak > 0 => {
                log::info!(
                    "{}: drm answers again after {streak} failed exchanges",
                    k.pd_name()
                );
                (ok, streak, last_ok) = (ok + 1, 0, k.now_ns());
            }
            Ok(()) => (ok, last_ok) = (ok + 1, k.now_ns()),
            Err(e) => {
                if streak == 0 {
                    log::warn!("{}: exchange failed ({e:?}); retrying", k.pd_name());
                }
                (failed, streak) = (failed + 1, streak + 1);
                if k.now_ns().saturating_sub(last_ok) > GIVE_UP_NS {
                    log::error!(
                        "{}: no good answer for {GIVE_UP_NS} ns; giving up",
                        k.pd_name()
                    );
                    return Verdict::Fail;
                }
            }
        }
    }
    log::info!(
        "{}: workload done: {ok} checked exchanges, {failed} failed and retried",
        k.pd_name()
    );
    if ok > 0 {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

// ---- initwait.xml ----

/// An `init` that takes 800 ms (a driver booting its device), then an echo leaf.
fn slow_init(k: &mut dyn Kernel) -> impl Handler {
    std::thread::sleep(std::time::Duration::from_millis(800));
    Relay::new(k, &[])
}

/// Calls `slow` at once and passes when the echo comes back.
fn init_waiter(k: &mut dyn Kernel) -> Idle {
    let r = echo(k, ch(1), &[7]);
    log::info!("{}: call to slow: {r:?}", k.pd_name());
    let _ = k.report_verdict(if r.is_ok() {
        Verdict::Pass
    } else {
        Verdict::Fail
    });
    Idle
}
