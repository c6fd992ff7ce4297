//! The seL4 bench image's GSP queue loops (issue 13), in the gsp PD: the bench client calls
//! over a channel only that image has ([`crate::bench_ipc::AT_GSP`]), label [`RTT`] or
//! [`BULK`] and MR0 the number of RPCs, and the PD makes them one after the other through the
//! message queues to the device, which answers each, as `cargo xtask bench gspq` measures them
//! hosted (gsp/model/benches/gspq.rs):
//! - [`RTT`]: a 64-byte NOP, which GSP-RM echoes with its own 64 bytes;
//! - [`BULK`]: an RM control with 256 KiB of parameters (one full message and continuation
//!   records) that RM does not implement, answered with the fixed part and NOT_SUPPORTED;
//! - [`MEMCPY`]: the baseline [`BULK`] is measured against, as the hosted bench measures it
//!   against `memcpy`: the same 256 KiB copied in this PD, [`CHUNK`] bytes at a time as the
//!   parameters are written (in guest instructions a chunked copy costs what one copy of it all
//!   does, plus a call per chunk).
//!
//! Trust: only the bench image's client0 has the channel; it may make the PD busy, nothing more
//! (the RPCs are the ones gpu-server's requests make, on the same queues).
use super::service::Session;
use gsp::cmdq::{CommandToGsp, PayloadWriter, QueueError};
use gsp::fw::current::rm::NvStatus;
use gsp::fw::current::rpc::{rpc_gsp_rm_control_v03_00, MsgFunction};
use gsp::rpc::RpcError;
use gsp_api::GspError;
use zerocopy::FromBytes;

/// Label of a call for 64-byte NOP round trips.
pub const RTT: u64 = 1;
/// Label of a call for 256 KiB RM controls.
pub const BULK: u64 = 2;
/// Label of a call for 256 KiB `memcpy`s.
pub const MEMCPY: u64 = 3;
/// Bytes of one RTT payload, each way.
pub const PING: usize = 64;
/// Bytes of one BULK command (fixed part and parameters).
pub const BULK_BYTES: usize = 256 << 10;
/// The RM control's parameters: the rest of the 256 KiB.
const PARAMS: usize = BULK_BYTES - size_of::<rpc_gsp_rm_control_v03_00>();
/// A control number RM does not have: refused NOT_SUPPORTED from the fixed part.
const UNKNOWN_CONTROL: u32 = 0x2080_fffe;
/// The parameters are written from this many bytes at a time (the PD has no 256 KiB to spare).
const CHUNK: usize = 4096;

/// A NOP carrying [`PING`] bytes.
struct Nop;

impl CommandToGsp for Nop {
    const FUNCTION: MsgFunction = MsgFunction::Nop;
    type Command = ();

    fn init(&self) {}

    fn variable_payload_len(&self) -> usize {
        PING
    }

    fn init_variable_payload(&self, dst: &mut PayloadWriter<'_>) -> Result<(), QueueError> {
        dst.write(&[0x5a; PING])
    }
}

/// The 256 KiB RM control.
struct Bulk;

impl CommandToGsp for Bulk {
    const FUNCTION: MsgFunction = MsgFunction::GspRmControl;
    type Command = rpc_gsp_rm_control_v03_00;

    fn init(&self) -> rpc_gsp_rm_control_v03_00 {
        rpc_gsp_rm_control_v03_00 {
            hClient: 0xc1e0_0001,
            hObject: 0x5d1c_0001,
            cmd: UNKNOWN_CONTROL,
            status: 0,
            // CAST: PARAMS is below 256 Ki.
            paramsSize: PARAMS as u32,
            flags: 0,
        }
    }

    fn variable_payload_len(&self) -> usize {
        PARAMS
    }

    fn init_variable_payload(&self, dst: &mut PayloadWriter<'_>) -> Result<(), QueueError> {
        let chunk = [0xa5u8; CHUNK];
        while dst.remaining() > 0 {
            dst.write(chunk.get(..dst.remaining().min(CHUNK)).unwrap_or_default())?;
        }
        Ok(())
    }
}

/// Make `rounds` RPCs of kind `label` ([`RTT`] or [`BULK`]), checking every reply.
///
/// # Errors
/// [`GspError::BadRequest`] for another label; the first failed RPC's error (a reply that is
/// not the expected one is [`GspError::Queue`]).
pub(super) fn run(s: &mut Session<'_, '_, '_>, label: u64, rounds: u64) -> Result<(), GspError> {
    for _ in 0..rounds {
        match label {
            RTT => s.with_rpc(false, |rpc, io, time, sink| {
                let r = rpc.call(&Nop, PING, io, time, sink)?;
                (r.payload == [0x5a; PING])
                    .then_some(())
                    .ok_or(RpcError::BadReply)
            })?,
            BULK => s.with_rpc(false, |rpc, io, time, sink| {
                let r = rpc.call(
                    &Bulk,
                    size_of::<rpc_gsp_rm_control_v03_00>(),
                    io,
                    time,
                    sink,
                )?;
                let (h, _) = rpc_gsp_rm_control_v03_00::read_from_prefix(r.payload)
                    .map_err(|_| RpcError::BadReply)?;
                (h.status == u32::from(NvStatus::NotSupported))
                    .then_some(())
                    .ok_or(RpcError::BadReply)
            })?,
            MEMCPY => copy_bulk(),
            _ => return Err(GspError::BadRequest),
        }
    }
    Ok(())
}

/// Copy [`BULK_BYTES`] from one [`CHUNK`]-byte buffer to another.
fn copy_bulk() {
    let src = [0xa5u8; CHUNK];
    let mut dst = [0u8; CHUNK];
    for _ in 0..BULK_BYTES / CHUNK {
        dst.copy_from_slice(core::hint::black_box(&src));
        core::hint::black_box(&mut dst);
    }
}
