//! `cargo xtask bench gspq`: the GSP message queues with the model answering, against memcpy.
//!
//! A driver (the gsp crate's `Rpc` over `cmdq`, `Side::Cpu`) talks to a booted model (the same
//! `cmdq`, `Side::Gsp`) in one process, as the monolithic composition does:
//! - **round trip**: a 64-byte NOP, which GSP-RM answers with its own 64 bytes; reported as
//!   round trips per second and as the cost of one round trip over the cost of copying the two
//!   4 KiB ring elements it occupies (`gspq-rtt`, lower is better);
//! - **bulk**: a 256 KiB RM control (one message and three continuation records each way: the
//!   reply carries the parameters back), reported as payload bytes per second over memcpy of the
//!   same 256 KiB measured in the same run, interleaved (`gspq-bulk`, higher is better).
#[path = "../tests/common/mod.rs"]
mod common;

use benchkit::{compare, fmt_ns, report, Goal, Op};
use common::Driver;
use gsp::chip::Chipset;
use gsp::cmdq::CommandToGsp;
use gsp::fw::current::rpc::MsgFunction;
use gsp::rpc::RmControl;
use std::hint::black_box;

/// A 64-byte NOP.
struct Ping([u8; 64]);

impl CommandToGsp for Ping {
    const FUNCTION: MsgFunction = MsgFunction::Nop;
    type Command = [u8; 64];

    fn init(&self) -> [u8; 64] {
        self.0
    }
}

const BULK: usize = 256 << 10;
/// A control number RM does not have: answered NOT_SUPPORTED with the parameters echoed, which
/// is all the queue path needs.
const UNKNOWN_CONTROL: u32 = 0x2080_fffe;

fn main() {
    let mut d = Driver::new(Chipset::AD102);
    d.boot();
    let ping = Ping([0x5a; 64]);
    let params = vec![0xa5u8; BULK - 24];
    let bulk_cmd = RmControl {
        h_client: 0xc1e0_0001,
        h_object: 0x5d1c_0001,
        cmd: UNKNOWN_CONTROL,
        flags: 0,
        params: &params,
    };

    let rtt_ops = 200u64;
    let mut one_rtt = || {
        let (rpc, mut dev, mut clock, sink) = d.call_parts();
        let r = rpc
            .call(&ping, 64, &mut dev, &mut clock, sink)
            .expect("ping");
        black_box(r.payload.len());
    };
    // Baseline: copying the two ring elements a round trip occupies.
    let src = vec![1u8; 8192];
    let mut dst = vec![0u8; 8192];
    let rtt = compare(
        31,
        rtt_ops,
        || (0..rtt_ops).for_each(|_| one_rtt()),
        || {
            for _ in 0..rtt_ops {
                dst.copy_from_slice(black_box(&src));
                black_box(&dst);
            }
        },
    );

    let bulk_ops = 8u64;
    let big_src = vec![3u8; BULK];
    let mut big_dst = vec![0u8; BULK];
    let bulk = compare(
        21,
        bulk_ops,
        || {
            for _ in 0..bulk_ops {
                let (rpc, mut dev, mut clock, sink) = d.call_parts();
                let r = rpc
                    .call(&bulk_cmd, BULK, &mut dev, &mut clock, sink)
                    .expect("bulk");
                assert_eq!(r.payload.len(), BULK);
                black_box(r.payload.len());
            }
        },
        || {
            for _ in 0..bulk_ops {
                big_dst.copy_from_slice(black_box(&big_src));
                black_box(&big_dst);
            }
        },
    );

    let mb_s = |ns: f64| BULK as f64 / ns * 1e3;
    println!(
        "gspq: 64-byte RPC round trip {} ({:.0} round trips/s); copying two 4 KiB elements {}",
        fmt_ns(rtt.subject),
        1e9 / rtt.subject,
        fmt_ns(rtt.baseline)
    );
    println!(
        "gspq: 256 KiB RPC {} ({:.0} MB/s payload); memcpy of 256 KiB {} ({:.0} MB/s)",
        fmt_ns(bulk.subject),
        mb_s(bulk.subject),
        fmt_ns(bulk.baseline),
        mb_s(bulk.baseline)
    );
    let ok = report(&[
        Goal::new("gspq-rtt", rtt.cost_ratio(), Op::AtMost, 5.0),
        Goal::new("gspq-bulk", bulk.speed_ratio(), Op::AtLeast, 0.5),
    ]);
    if !ok {
        std::process::exit(1);
    }
}
