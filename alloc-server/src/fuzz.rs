//! Fuzzing entry point: arbitrary PPC traffic from arbitrary channels into a small server.
//!
//! `fuzz/fuzz_targets/requests.rs` (cargo-fuzz, nightly) and a stable `#[test]` with pseudo-random
//! inputs both call [`requests`]. The bytes drive a sequence of requests (labels, counts and
//! registers, with registers often taken from earlier grants so frees reach the deep checks),
//! writes into granted buffers, reclaims, and restarts seen through generations. After every step
//! the audit must pass; at the end, after reclaiming every client, nothing may be live and every
//! pool must read back zero.
#![allow(unsafe_code)] // Views of the local arrays that stand in for the pools.

use crate::{AllocServer, AuditError, AuditSummary, ClientSpec, Config, Grant, PoolSpec};
use alloc_api::{ClientId, Opcode, PoolId};
use core::ptr::NonNull;
use pd_core::shm::{ReadWrite, Region};
use pd_core::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};

/// What a fuzz run found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuzzFailure {
    /// The audit failed after a step.
    Audit(AuditError),
    /// Something stayed live after every client was reclaimed.
    Leak(AuditSummary),
    /// A pool held a non-zero byte after every client was reclaimed.
    Dirty(PoolId),
    /// The server refused a configuration that is valid.
    Config,
}

/// A kernel that only holds message registers (the server never calls out).
#[derive(Debug, Default)]
pub(crate) struct Registers(pub(crate) MessageRegisters);

impl Kernel for Registers {
    fn pd_name(&self) -> &str {
        "alloc"
    }
    fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
        Err(IpcError::Unsupported)
    }
    fn ppcall(&mut self, _: Channel, _: MessageInfo) -> Result<MessageInfo, IpcError> {
        Err(IpcError::Unsupported)
    }
    fn mrs(&mut self) -> &mut MessageRegisters {
        &mut self.0
    }
    fn now_ns(&self) -> u64 {
        0
    }
}

/// Reads bytes off the input, then zeros.
struct Input<'a>(core::slice::Iter<'a, u8>);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }
    fn word(&mut self) -> u64 {
        (0..8).fold(0, |w, _| w << 8 | u64::from(self.byte()))
    }
}

const PAGE: usize = 4096;
const GSP_PAGES: usize = 16;
const GPU_PAGES: usize = 8;
const CLIENT_PAGES: usize = 4;
/// Device bases of the three pools, ascending.
const BASES: [u64; 3] = [0x4000_0000, 0x4800_0000, 0x5000_0000];

const CALLERS: &[(Channel, &str)] = &[(Channel::new(1), "gsp"), (Channel::new(2), "gpu")];

/// gsp and gpu own a pool each, gpu also allocates in client0's; small quotas so they bite.
fn config() -> Config<'static> {
    Config {
        clients: &[
            ClientSpec {
                name: "gsp",
                quota_bytes: 12 * PAGE as u64,
                max_buffers: 6,
            },
            ClientSpec {
                name: "gpu",
                quota_bytes: 8 * PAGE as u64,
                max_buffers: 8,
            },
            ClientSpec {
                name: "client0",
                quota_bytes: 4 * PAGE as u64,
                max_buffers: 3,
            },
        ],
        grants: &[
            Grant {
                caller: "gsp",
                pool: "gsp_dma",
            },
            Grant {
                caller: "gpu",
                pool: "gpu_dma",
            },
            Grant {
                caller: "gpu",
                pool: "client0_dma",
            },
        ],
        callers: CALLERS,
        epoch: 7,
    }
}

fn view(mem: &mut [u8]) -> Option<Region<ReadWrite>> {
    let base = NonNull::new(mem.as_mut_ptr())?;
    // SAFETY: `mem` is a local array of `requests` that outlives every view and the server built
    // on them, and no Rust reference into it is used while they exist.
    Some(unsafe { Region::new(base, mem.len()) })
}

/// Drive a small server (pools of 16, 8 and 4 pages; callers gsp on channel 1, gpu on 2) with the
/// traffic `data` describes, checking the audit after every step and leaks and zeroing at the end.
///
/// # Errors
/// The first [`FuzzFailure`] (each is a server bug).
pub fn requests(data: &[u8]) -> Result<(), FuzzFailure> {
    let mut gsp_mem = [0u8; GSP_PAGES * PAGE];
    let mut gpu_mem = [0u8; GPU_PAGES * PAGE];
    let mut client_mem = [0u8; CLIENT_PAGES * PAGE];
    let spec = |name, owner, mem: &mut [u8], base| {
        let memory = view(mem)?;
        Some(PoolSpec {
            name,
            owner,
            owner_vaddr: 0x5000_0000,
            device_base: base,
            memory,
        })
    };
    let (Some(gsp), Some(gpu), Some(client), Some(gsp_w), Some(gpu_w), Some(client_w)) = (
        spec("gsp_dma", "gsp", &mut gsp_mem, BASES[0]),
        spec("gpu_dma", "gpu", &mut gpu_mem, BASES[1]),
        spec("client0_dma", "client0", &mut client_mem, BASES[2]),
        view(&mut gsp_mem),
        view(&mut gpu_mem),
        view(&mut client_mem),
    ) else {
        return Err(FuzzFailure::Config);
    };
    // Second views of the same memory: the owners' side, which writes into granted buffers.
    let owners = [gsp_w, gpu_w, client_w];
    let mut server =
        AllocServer::new(&config(), [gsp, gpu, client]).map_err(|_| FuzzFailure::Config)?;
    let mut k = Registers::default();
    let mut input = Input(data.iter());
    // The last 16 grants' (handle, offset), for registers that name real buffers.
    let mut recent = [(0u64, 0u64); 16];
    let mut grants = 0usize;

    while input.0.len() > 0 {
        let op = input.byte();
        if op % 8 == 7 {
            let _ = server.reclaim(ClientId(input.byte() % 4));
        } else if op % 8 == 6 {
            // The supervisor's generation of a client: a change reclaims it.
            let _ = server.observe(ClientId(input.byte() % 4), u32::from(input.byte() % 3));
        } else {
            let ch = Channel::new(op % 4);
            let label = u64::from(input.byte() % 6);
            let count = usize::from(input.byte() % 5);
            for i in 0..count {
                let (handle, offset) = recent
                    .get(usize::from(input.byte()) % recent.len())
                    .copied()
                    .unwrap_or_default();
                let w = match input.byte() % 4 {
                    0 => input.word(),
                    1 => handle,
                    2 => offset,
                    _ => u64::from(input.byte()) * 0x800,
                };
                k.0.set(i, w);
            }
            let reply = server.protected(&mut k, ch, MessageInfo::new(label, count));
            if reply.label() == 0 && label == Opcode::Alloc as u64 {
                let (handle, offset, device, size) =
                    (k.0.get(0), k.0.get(1), k.0.get(2), k.0.get(3));
                // The owner uses its buffer: scribble on it so that zeroing has work to do.
                let owner = BASES
                    .iter()
                    .rposition(|&b| device >= b)
                    .and_then(|i| owners.get(i));
                if let (Some(w), Ok(at), Ok(len)) =
                    (owner, usize::try_from(offset), usize::try_from(size))
                {
                    let _ = w.fill(at, len, 0xa5);
                }
                if let Some(slot) = recent.get_mut(grants % 16) {
                    *slot = (handle, offset);
                }
                grants += 1;
            }
        }
        server.audit().map_err(FuzzFailure::Audit)?;
    }

    for id in 0..3 {
        let _ = server.reclaim(ClientId(id));
    }
    let left = server.audit().map_err(FuzzFailure::Audit)?;
    if left.live_buffers != 0 {
        return Err(FuzzFailure::Leak(left));
    }
    for (id, w) in (0u8..).zip(owners.iter()) {
        let mut page = [0u8; PAGE];
        let dirty = (0..w.size() / PAGE)
            .any(|i| w.read_bytes(i * PAGE, &mut page).is_err() || page.iter().any(|&b| b != 0));
        if dirty {
            return Err(FuzzFailure::Dirty(PoolId(id)));
        }
    }
    Ok(())
}
