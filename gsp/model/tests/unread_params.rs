//! Parameters GSP-RM never reads: an RM control it does not implement whose parameters run into
//! continuation records has them validated where they lie in the command queue and dropped, and
//! is answered with its fixed part and RM's status only. Everything else is still copied and
//! echoed, and the queues stay in step either way.
mod common;

use common::Driver;
use gsp::chip::Chipset;
use gsp::fw::current::rm::{NvStatus, RmControl as Known};
use gsp::fw::current::rpc::{rpc_gsp_rm_control_v03_00, MsgFunction, NV_OK};
use gsp::rpc::{RmControl, RpcError};
use gsp_model::firmware::INTERNAL_HANDLES;
use zerocopy::FromBytes;

const UNKNOWN: u32 = 0x2080_fffe;

fn control<'p>(client: u32, cmd: u32, params: &'p [u8]) -> RmControl<'p> {
    RmControl {
        h_client: client,
        h_object: INTERNAL_HANDLES[2],
        cmd,
        flags: 0,
        params,
    }
}

/// Call `c` and return the reply's fixed part and the number of parameter bytes after it.
fn call(d: &mut Driver, c: &RmControl<'_>, expect: usize) -> (rpc_gsp_rm_control_v03_00, usize) {
    let (rpc, mut dev, mut clock, sink) = d.call_parts();
    let r = rpc.call(c, expect, &mut dev, &mut clock, sink).unwrap();
    assert_eq!(r.rpc.rpc_result, NV_OK);
    let (h, rest) = rpc_gsp_rm_control_v03_00::read_from_prefix(r.payload).unwrap();
    (h, rest.len())
}

fn ping(d: &mut Driver) {
    let (rpc, mut dev, mut clock, sink) = d.call_parts();
    let r = rpc.call(&gsp::rpc::GetGspStaticInfo, 1, &mut dev, &mut clock, sink);
    assert_eq!(
        r.map(|r| r.rpc.function),
        Ok(MsgFunction::GetGspStaticInfo.into())
    );
}

#[test]
fn an_unknown_control_in_continuation_records_gets_its_status_without_parameters() {
    let mut d = Driver::new(Chipset::AD102);
    d.boot();
    let params: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    let (h, rest) = call(&mut d, &control(INTERNAL_HANDLES[0], UNKNOWN, &params), 24);
    assert_eq!(
        (h.status, h.cmd, h.paramsSize as usize, rest),
        (NvStatus::NotSupported.into(), UNKNOWN, params.len(), 0)
    );
    // RM's verdict still comes from the fixed part: a bad client is refused as such.
    let (h, _) = call(&mut d, &control(0xbad0_0001, UNKNOWN, &params), 24);
    assert_eq!(h.status, u32::from(NvStatus::InvalidClient));
    // Through `Rpc::rm`, a reply without the parameters is one the driver refuses to read.
    let (rpc, mut dev, mut clock, sink) = d.call_parts();
    let mut out = params.clone();
    let c = control(INTERNAL_HANDLES[0], UNKNOWN, &params);
    assert_eq!(
        rpc.rm(&c, &mut out, &mut dev, &mut clock, sink),
        Err(RpcError::BadReply)
    );
    ping(&mut d);
}

#[test]
fn other_controls_are_copied_and_echoed_whatever_their_size() {
    let mut d = Driver::new(Chipset::AD102);
    d.boot();
    // An unknown control in one message: echoed (the driver's `Rpc::rm` reads the status).
    let small = [0x5au8; 40];
    let (h, rest) = call(
        &mut d,
        &control(INTERNAL_HANDLES[0], UNKNOWN, &small),
        24 + 40,
    );
    assert_eq!((h.status, rest), (NvStatus::NotSupported.into(), 40));
    // A known control with continuation records: copied in full, refused for its size, echoed.
    let big = vec![0x11u8; 150_000];
    let known = u32::from(Known::GpfifoSchedule);
    let (h, rest) = call(
        &mut d,
        &control(INTERNAL_HANDLES[0], known, &big),
        24 + big.len(),
    );
    assert_eq!(
        (h.status, rest),
        (NvStatus::InvalidParamStruct.into(), big.len())
    );
    ping(&mut d);
}
