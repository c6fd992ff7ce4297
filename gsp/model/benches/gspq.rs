//! `cargo xtask bench gspq`: the GSP message queues with the model answering, against memcpy.
//!
//! A driver (the gsp crate's `Rpc` over `cmdq`, `Side::Cpu`) talks to a booted model (the same
//! `cmdq`, `Side::Gsp`) in one process, as the monolithic composition does. Each case is timed
//! against a baseline measured in the same run, interleaved (medians):
//! - **round trip** (`gspq-rtt`, lower is better): a 64-byte NOP, which GSP-RM answers with its
//!   own 64 bytes, over copying the two 4 KiB ring elements it occupies;
//! - **bulk** (`gspq-bulk`, higher is better): 256 KiB one way, command to the GSP: an RM control
//!   with 256 KiB of parameters (one 64 KiB message and four continuation records) that RM does
//!   not implement, so GSP-RM validates the records in place, never copies the parameters, and
//!   answers with the 24-byte fixed part and its status (NOT_SUPPORTED). The driver copies and
//!   checksums the payload into the ring in one pass; the model checksums it where it lies.
//!   Reported as payload bytes per second over memcpy of the same 256 KiB;
//! - **echo** (informational): a NOP of one full message (64 KiB less headers), echoed, so the
//!   bytes cross the ring both ways and the driver copies the reply out before checking it;
//! - **read pass** (informational): the checksum kernel alone over 256 KiB against memcpy of it,
//!   the firmware side's share of bulk: with the driver's pass about one memcpy, bulk cannot do
//!   much better than 1 / (1 + this) while both sides share one CPU.
#[path = "../tests/common/mod.rs"]
mod common;

use benchkit::{compare, fmt_ns, report, Comparison, Goal, Op};
use common::Driver;
use gsp::chip::Chipset;
use gsp::cmdq::{CommandToGsp, PayloadWriter, QueueError, MAX_PAYLOAD};
use gsp::fw::current::rm::NvStatus;
use gsp::fw::current::rpc::{rpc_gsp_rm_control_v03_00, MsgFunction};
use gsp::rpc::RmControl;
use std::hint::black_box;
use zerocopy::FromBytes;

/// A NOP carrying `0` as its payload.
struct Nop<'p>(&'p [u8]);

impl CommandToGsp for Nop<'_> {
    const FUNCTION: MsgFunction = MsgFunction::Nop;
    type Command = ();

    fn init(&self) {}

    fn variable_payload_len(&self) -> usize {
        self.0.len()
    }

    fn init_variable_payload(&self, dst: &mut PayloadWriter<'_>) -> Result<(), QueueError> {
        dst.write(self.0)
    }
}

const BULK: usize = 256 << 10;
/// The RM control's fixed part; the parameters make up the rest of the 256 KiB.
const CONTROL_HDR: usize = size_of::<rpc_gsp_rm_control_v03_00>();
/// A control number RM does not have: refused NOT_SUPPORTED from the fixed part.
const UNKNOWN_CONTROL: u32 = 0x2080_fffe;

/// `ops` RPCs of `cmd` (each reply's payload, reassembled up to `expect` bytes, checked by
/// `check`) against `ops` memcpys of `bytes` bytes, interleaved over `rounds` rounds.
fn versus_memcpy<C: CommandToGsp>(
    d: &mut Driver,
    (cmd, expect, check): (&C, usize, impl Fn(&[u8])),
    bytes: usize,
    rounds: usize,
    ops: u64,
) -> Comparison {
    let src = vec![3u8; bytes];
    let mut dst = vec![0u8; bytes];
    compare(
        rounds,
        ops,
        || {
            for _ in 0..ops {
                let (rpc, mut dev, mut clock, sink) = d.call_parts();
                let r = rpc
                    .call(cmd, expect, &mut dev, &mut clock, sink)
                    .expect("rpc");
                check(r.payload);
            }
        },
        || {
            for _ in 0..ops {
                dst.copy_from_slice(black_box(&src));
                black_box(&dst);
            }
        },
    )
}

fn main() {
    let mut d = Driver::new(Chipset::AD102);
    d.boot();

    // Round trip, against copying the two ring elements it occupies.
    let small = [0x5au8; 64];
    let ping = (&Nop(&small), 64, |p: &[u8]| assert_eq!(p, small));
    let rtt = versus_memcpy(&mut d, ping, 8192, 31, 200);

    let params = vec![0xa5u8; BULK - CONTROL_HDR];
    let bulk_cmd = RmControl {
        h_client: 0xc1e0_0001,
        h_object: 0x5d1c_0001,
        cmd: UNKNOWN_CONTROL,
        flags: 0,
        params: &params,
    };
    let status_only = |p: &[u8]| {
        let (h, rest) = rpc_gsp_rm_control_v03_00::read_from_prefix(p).unwrap();
        assert_eq!(
            (h.status, h.paramsSize as usize, rest.len()),
            (NvStatus::NotSupported.into(), params.len(), 0)
        );
    };
    let bulk = versus_memcpy(&mut d, (&bulk_cmd, CONTROL_HDR, status_only), BULK, 41, 16);

    // What the firmware side's pass costs on its own: one read of 256 KiB (the checksum kernel
    // the model verifies with) against memcpy of it. Two passes on one CPU bound the bulk ratio.
    let ring = vec![0x5au8; BULK];
    let (src, mut dst) = (vec![3u8; BULK], vec![0u8; BULK]);
    let read = compare(
        41,
        16,
        || {
            for _ in 0..16 {
                black_box(pd_core::shm::xor_words(black_box(&ring)));
            }
        },
        || {
            for _ in 0..16 {
                dst.copy_from_slice(black_box(&src));
                black_box(&dst);
            }
        },
    );

    let echo_payload = vec![0x3cu8; MAX_PAYLOAD];
    let echoed = |p: &[u8]| assert_eq!(p.len(), MAX_PAYLOAD);
    let echo = (&Nop(&echo_payload), MAX_PAYLOAD, echoed);
    let echo = versus_memcpy(&mut d, echo, MAX_PAYLOAD, 21, 16);

    let mb_s = |bytes: usize, ns: f64| bytes as f64 / ns * 1e3;
    println!(
        "gspq: 64-byte NOP round trip {} ({:.0} round trips/s); copying two 4 KiB elements {}",
        fmt_ns(rtt.subject),
        1e9 / rtt.subject,
        fmt_ns(rtt.baseline)
    );
    println!(
        "gspq: 256 KiB one way (RM control, 4 continuation records, 24-byte status reply) {} \
         ({:.0} MB/s payload); memcpy of 256 KiB {} ({:.0} MB/s)",
        fmt_ns(bulk.subject),
        mb_s(BULK, bulk.subject),
        fmt_ns(bulk.baseline),
        mb_s(BULK, bulk.baseline)
    );
    println!(
        "gspq: one checksum pass over 256 KiB (the firmware side's share) {} (info: {:.2} x \
         memcpy: two passes on one CPU bound gspq-bulk near 1 / (1 + this))",
        fmt_ns(read.subject),
        read.cost_ratio()
    );
    println!(
        "gspq: {} KiB NOP echoed (both ways) {} ({:.0} MB/s each way); memcpy of it {} \
         (info: {:.3} x memcpy)",
        MAX_PAYLOAD >> 10,
        fmt_ns(echo.subject),
        mb_s(MAX_PAYLOAD, echo.subject),
        fmt_ns(echo.baseline),
        echo.speed_ratio()
    );
    let ok = report(&[
        Goal::new("gspq-rtt", rtt.cost_ratio(), Op::AtMost, 5.0),
        Goal::new("gspq-bulk", bulk.speed_ratio(), Op::AtLeast, 0.5),
    ]);
    if !ok {
        std::process::exit(1);
    }
}
