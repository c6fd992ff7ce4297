//! Each fault knob produces the driver-side error it should, and the driver survives the ones a
//! driver can survive.
mod common;

use common::{Driver, Seen};
use gsp::chip::Chipset;
use gsp::cmdq::QueueTrace;
use gsp::regs::{Falcon, NV_PFALCON_FALCON_IRQSTAT};
use gsp::rpc::RpcError;
use gsp_model::Fault;
use pd_core::trace::TraceEvent;

fn booted() -> Driver {
    let mut d = Driver::new(Chipset::AD102);
    d.boot();
    d
}

/// GET_GSP_STATIC_INFO, the driver's cheapest call.
fn call(d: &mut Driver) -> Result<u64, RpcError> {
    let (rpc, mut dev, mut clock, sink) = d.call_parts();
    rpc.get_static_info(&mut dev, &mut clock, sink)
        .map(|s| s.fb_length)
}

fn rx_count(d: &mut Driver, t: QueueTrace) -> u32 {
    d.rpc.as_ref().unwrap().rx().trace().count(t.kind())
}

#[test]
fn stop_responding_times_out() {
    let mut d = booted();
    d.model().set_fault(Fault::StopResponding);
    assert_eq!(call(&mut d), Err(RpcError::Timeout));
    // The knob lifted, the queued command is answered: its late reply reaches the sink, the next
    // call works.
    d.model().set_fault(Fault::None);
    assert_eq!(call(&mut d), Ok(common::FB_SIZE));
    assert!(
        d.sink.0.iter().any(|s| matches!(s, Seen::Unexpected(65))),
        "{:?}",
        d.sink.0
    );
}

#[test]
fn crash_reports_os_error_log_and_halt() {
    let mut d = booted();
    d.model().set_fault(Fault::Crash);
    let irq = NV_PFALCON_FALCON_IRQSTAT::read(&mut d.dev, Falcon::Gsp).unwrap();
    assert!(irq.halt() && irq.swgen0());
    assert_eq!(call(&mut d), Err(RpcError::Timeout));
    assert!(
        d.sink
            .0
            .iter()
            .any(|s| matches!(s, Seen::OsErrorLog(m) if m.contains("injected"))),
        "{:?}",
        d.sink.0
    );
    assert_eq!(d.model().phase(), gsp_model::boot::Phase::Halted);
}

/// A knob that spoils one reply: the driver rejects it as `trace` says (so the call fails as
/// `ReplyLost`, soon: not after the 4 s reply timeout), counts it once, and the next call goes
/// through.
fn rejected_then_recovers(fault: Fault, trace: QueueTrace) {
    let mut d = booted();
    d.model().set_fault(fault);
    assert_eq!(call(&mut d), Err(RpcError::ReplyLost), "{fault:?}");
    assert_eq!(rx_count(&mut d, trace), 1, "{fault:?}");
    assert_eq!(call(&mut d), Ok(common::FB_SIZE), "{fault:?}");
    assert_eq!(rx_count(&mut d, trace), 1, "{fault:?}");
}

#[test]
fn a_corrupt_checksum_is_rejected_and_the_queue_recovers() {
    rejected_then_recovers(
        Fault::CorruptChecksum,
        QueueTrace::BadChecksum { seq: 0, slot: 0 },
    );
}

#[test]
fn a_skipped_sequence_number_is_rejected_and_the_driver_stays_in_step() {
    // The skipped message counted as consumed; the model's next one carries the number after
    // it, so the driver is back in step without a resync.
    rejected_then_recovers(
        Fault::SkipSeqNum,
        QueueTrace::BadSeqNum {
            expected: 0,
            got: 0,
        },
    );
}

#[test]
fn an_oversize_element_count_is_rejected() {
    rejected_then_recovers(
        Fault::OversizeElemCount,
        QueueTrace::BadElemCount {
            count: 0,
            available: 0,
        },
    );
}

#[test]
fn delayed_replies_arrive_late_or_time_out() {
    let mut d = booted();
    // 1 ms: well inside the driver's 4 s reply timeout.
    d.model().set_fault(Fault::DelayReplies { ns: 1_000_000 });
    let t0 = d.model().bar.now_ns;
    assert_eq!(call(&mut d), Ok(common::FB_SIZE));
    assert!(d.model().bar.now_ns - t0 >= 1_000_000);
    // 10 s: past it.
    d.model()
        .set_fault(Fault::DelayReplies { ns: 10_000_000_000 });
    assert_eq!(call(&mut d), Err(RpcError::Timeout));
}

#[test]
fn spurious_events_reach_the_sink_and_the_call_still_succeeds() {
    let mut d = booted();
    d.model().set_fault(Fault::SpuriousEvents);
    assert_eq!(call(&mut d), Ok(common::FB_SIZE));
    assert!(
        d.sink.0.contains(&Seen::PostEvent(0xdead_0001)),
        "{:?}",
        d.sink.0
    );
    assert!(
        d.sink.0.contains(&Seen::Unexpected(0x10fe)),
        "{:?}",
        d.sink.0
    );
    assert_eq!(d.model().fault_knob(), Fault::None);
}

#[test]
fn knobs_come_over_the_wire_too() {
    assert_eq!(Fault::from_wire(6, 5), Some(Fault::DelayReplies { ns: 5 }));
    assert_eq!(Fault::from_wire(2, 0), Some(Fault::Crash));
    assert_eq!(Fault::from_wire(99, 0), None);
}
