//! Fault delivery: how a PD's death becomes a [`FaultKind`], and how the runtime passes it to the
//! parent through the parent's control page.

use crate::pages::{ControlPage, FaultRecord, FAULT};
use crate::sys::fault::FAULT_ADDR_VALID;
use pd_core::FaultKind;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::Ordering;

/// Why a PD process ended, as its parent's `fault` handler sees it.
///
/// `watchdog`: the runtime killed it for missing a deadline. `fault_addr`: the word its fault
/// handler wrote (bit 63 set when valid).
pub fn classify(status: ExitStatus, watchdog: bool, fault_addr: u64) -> FaultKind {
    if watchdog {
        return FaultKind::Watchdog;
    }
    match (status.signal(), status.code()) {
        (Some(libc::SIGSEGV | libc::SIGBUS), _) => FaultKind::VmFault {
            addr: (fault_addr & FAULT_ADDR_VALID != 0).then_some(fault_addr & !FAULT_ADDR_VALID),
        },
        (Some(libc::SIGABRT), _) => FaultKind::Abort,
        (Some(sig), _) => FaultKind::Signal(sig),
        (None, Some(code)) => FaultKind::Exited(code),
        (None, None) => FaultKind::Other(0),
    }
}

fn encode(kind: FaultKind) -> (u32, Option<u64>) {
    // CAST (all arms): signal numbers and exit statuses are small non-negative integers.
    match kind {
        FaultKind::VmFault { addr } => (1, addr),
        FaultKind::Abort => (2, None),
        FaultKind::Signal(s) => (3, Some(s as u64)),
        FaultKind::Exited(s) => (4, Some(s as u64)),
        FaultKind::Watchdog => (5, None),
        FaultKind::Other(l) => (6, Some(l)),
    }
}

fn decode(code: u32, arg: Option<u64>) -> FaultKind {
    let small = |a: Option<u64>| a.and_then(|v| i32::try_from(v).ok()).unwrap_or(-1);
    match code {
        1 => FaultKind::VmFault { addr: arg },
        2 => FaultKind::Abort,
        3 => FaultKind::Signal(small(arg)),
        4 => FaultKind::Exited(small(arg)),
        5 => FaultKind::Watchdog,
        _ => FaultKind::Other(arg.unwrap_or(0)),
    }
}

/// Runtime: report `kind` for child `child` to the parent owning `ctl`, and ring its doorbell.
pub fn post(ctl: &ControlPage, child: u8, kind: FaultKind) {
    let (Some(rec), Some(bit)) = (
        ctl.child_fault.get(usize::from(child)),
        1u64.checked_shl(child.into()),
    ) else {
        return;
    };
    let (code, arg) = encode(kind);
    rec.kind.store(code, Ordering::Relaxed);
    rec.has_arg
        .store(u32::from(arg.is_some()), Ordering::Relaxed);
    rec.arg.store(arg.unwrap_or(0), Ordering::Relaxed);
    ctl.faults_pending.fetch_or(bit, Ordering::SeqCst);
    crate::wait::update(&ctl.event, |v| Some(v | FAULT));
}

/// PD: take every pending report, as (child id, kind), lowest id first.
pub fn take(ctl: &ControlPage) -> impl Iterator<Item = (u8, FaultKind)> + '_ {
    let pending = pd_core::ChannelSet::from_bits(ctl.faults_pending.swap(0, Ordering::SeqCst));
    pending.iter().filter_map(|c| {
        let rec: &FaultRecord = ctl.child_fault.get(usize::from(c.index()))?;
        let arg =
            (rec.has_arg.load(Ordering::Relaxed) != 0).then(|| rec.arg.load(Ordering::Relaxed));
        Some((c.index(), decode(rec.kind.load(Ordering::Relaxed), arg)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_survives_the_control_page() {
        for kind in [
            FaultKind::VmFault {
                addr: Some(0x3000_0000),
            },
            FaultKind::VmFault { addr: None },
            FaultKind::Abort,
            FaultKind::Signal(9),
            FaultKind::Exited(3),
            FaultKind::Watchdog,
            FaultKind::Other(0x42),
        ] {
            let (code, arg) = encode(kind);
            assert_eq!(decode(code, arg), kind);
        }
    }

    #[test]
    fn deaths_are_classified_by_signal_and_watchdog() {
        let killed = |sig: i32| ExitStatus::from_raw(sig);
        let addr = 0x1234 | FAULT_ADDR_VALID;
        assert_eq!(
            classify(killed(libc::SIGSEGV), false, addr),
            FaultKind::VmFault { addr: Some(0x1234) }
        );
        assert_eq!(
            classify(killed(libc::SIGBUS), false, 0),
            FaultKind::VmFault { addr: None }
        );
        assert_eq!(classify(killed(libc::SIGABRT), false, 0), FaultKind::Abort);
        assert_eq!(
            classify(killed(libc::SIGKILL), false, 0),
            FaultKind::Signal(9)
        );
        assert_eq!(
            classify(killed(libc::SIGKILL), true, 0),
            FaultKind::Watchdog
        );
        assert_eq!(
            classify(ExitStatus::from_raw(3 << 8), false, 0),
            FaultKind::Exited(3)
        );
    }
}
