//! Fuzz entry point for the model's command-queue receive path (fuzz target `cmdq` in
//! `gsp/model/fuzz/`), and its stable smoke test. Built only with the `fuzz` feature (or in
//! tests): it needs an allocator for the stand-in DMA memory, which a PD never has.
#![allow(unsafe_code)]

extern crate std;

use crate::boot::Phase;
use crate::phys::{FbLayout, Memory};
use crate::{firmware, Fault, GspModel, ModelConfig};
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use gsp::chip::Chipset;
use gsp::cmdq::{
    MessageMeta, QueueError, SharedQueues, Side, TxSignal, CMDQ_OFFSET, ENTRY_OFFSET, MSG_COUNT,
    QUEUE_REGION_SIZE,
};
use gsp::fw::current::args::write_rmargs;
use gsp::fw::current::libos::{init_log_buffer, write_libos_args, LibosRegions, LOG_BUFFER_SIZE};
use gsp::fw::current::rm::RmClass;
use gsp::regs::NV_PGSP_QUEUE_HEAD;
use pd_core::shm::{ReadWrite, Region};
use std::vec;
use std::vec::Vec;

/// Bus address of the stand-in DMA memory.
const SYS_BASE: u64 = 0x1000_0000;
/// Its layout: LibOS page, three logs, RMARGS, then the queue region.
const LOGS: usize = 0x1000;
const RMARGS: usize = LOGS + 3 * LOG_BUFFER_SIZE;
const QUEUES: usize = RMARGS + 0x1000;
const SYS_SIZE: usize = QUEUES + QUEUE_REGION_SIZE;

/// A control command: one the model knows, or any number.
fn control(pick: u8) -> u32 {
    [
        0x0080_1813,
        0x0080_1814,
        0x2080_2a08,
        0xa06f_0103,
        0xa06f_0104,
        0xc36f_0108,
    ]
    .get(usize::from(pick % 8))
    .copied()
    .unwrap_or(u32::from(pick) << 16)
}

/// The CPU side's doorbell for the fuzzer: never waits.
struct NoWait;

impl TxSignal for NoWait {
    fn notify(&mut self) -> Result<(), QueueError> {
        Ok(())
    }
    fn wait_for_space(&mut self) -> Result<(), QueueError> {
        Err(QueueError::Timeout)
    }
}

/// A region over `mem`, which must outlive it.
///
/// # Safety
/// `mem` must stay alive and unmoved while the region (or any alias) is used, and nothing may
/// hold a Rust reference into it meanwhile.
unsafe fn region(mem: &mut [u64]) -> Option<Region<ReadWrite>> {
    let base = NonNull::new(mem.as_mut_ptr().cast::<u8>())?;
    // SAFETY: the caller keeps `mem` alive and unreferenced; the size is the slice's.
    Some(unsafe { Region::new(base, mem.len() * 8) })
}

/// Run `data` as a hostile driver against GSP-RM's command queue: the bytes choose operations —
/// well-formed RM alloc/control/free and arbitrary RPCs sent through the CPU side's own `Tx` (so
/// they pass the checksum), overwritten command-queue bytes and write pointers, drains of the
/// status queue, channel doorbells, fault knobs and time — each followed by the doorbell.
/// Panics (the fuzzer's finding) only if the model does.
pub fn command_queue(data: &[u8]) {
    let mut sys = vec![0u64; SYS_SIZE / 8];
    let mut vram = vec![0u64; 0x1_0000 / 8];
    let mut buf = vec![0u8; 0x4_0000];
    // SAFETY: `sys` and `vram` outlive the model and every view below (all dropped at the end of
    // this function, before them), and nothing references them meanwhile.
    let (Some(sys_view), Some(sys_cpu), Some(vram_view)) = (
        unsafe { region(&mut sys) },
        unsafe { region(&mut sys) },
        unsafe { region(&mut vram) },
    ) else {
        return;
    };
    let mut mem = Memory::new(FbLayout {
        reported_size: 1 << 30,
    });
    if mem.sys.add(SYS_BASE, sys_view).is_err() || mem.add_vram(vram_view).is_err() {
        return;
    }
    let mut m = GspModel::new(ModelConfig::new(Chipset::AD102), mem, &[], &mut buf);
    let Some((mut tx, mut rx)) = setup(&mut m, &sys_cpu) else {
        return;
    };
    let mut statq = vec![0u8; 0x1_0000];
    let mut bytes = data.iter().copied().peekable();
    let handles = [
        0xc100_0001u32,
        0xde00_0001,
        0x5d00_0001,
        0x9af1_0001,
        0xc0c0_0001,
        0,
    ];
    let h = |b: u8| {
        handles
            .get(usize::from(b) % handles.len())
            .copied()
            .unwrap_or(0)
    };
    let classes = [
        RmClass::Nv01RootClient,
        RmClass::Nv01Device0,
        RmClass::Nv20Subdevice0,
        RmClass::FermiVaspaceA,
        RmClass::AmpereChannelGpfifoA,
        RmClass::AmpereDmaCopyB,
        RmClass::AmpereUsermodeA,
    ];
    let mut sequence = 0u32;
    while bytes.peek().is_some() {
        let mut next = || bytes.next().unwrap_or(0);
        let op = next();
        match op % 10 {
            0..=2 => {
                // RM alloc / control / free with structured headers and random parameters.
                let mut p: Vec<u8> = (0..usize::from(next()) * 3).map(|_| next()).collect();
                let class = classes
                    .get(usize::from(next()) % classes.len())
                    .map_or(0, |c| u32::from(*c));
                // CAST: a few hundred bytes; off by -8, 0 or +8 to probe the size checks.
                let size = (p.len() as u32)
                    .wrapping_add(u32::from(next() % 3) * 8)
                    .wrapping_sub(8);
                let (client, a, b) = (h(next()), h(next()), h(next()));
                let (function, words): (u32, Vec<u32>) = match op % 10 {
                    0 => (103, vec![client, a, b, class, 0, size, 0, 0]),
                    1 => (76, vec![client, a, control(next()), 0, size, 0]),
                    _ => (10, vec![client, a, b, 0]),
                };
                let mut body: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                body.append(&mut p);
                let _ = tx.send_message(
                    MessageMeta::reply(function, sequence, 0xffff_ffff),
                    &body[..],
                    &mut NoWait,
                );
            }
            3 => {
                // Any function, any payload, up to several continuation records.
                let len = usize::from(next()) * usize::from(next()) * 9;
                let body = vec![next(); len];
                let _ = tx.send_message(
                    MessageMeta::reply(
                        u32::from(next()) | u32::from(next() & 1) << 12,
                        sequence,
                        0,
                    ),
                    &body[..],
                    &mut NoWait,
                );
            }
            4 => {
                let at = CMDQ_OFFSET
                    + (usize::from(next()) << 10 | usize::from(next()) << 2)
                        % (ENTRY_OFFSET + 63 * 0x1000);
                let _ = sys_cpu.write_bytes(QUEUES + at, &[next(), next(), next(), next()]);
            }
            5 => {
                let _ = sys_cpu.store_u32(
                    QUEUES + CMDQ_OFFSET + 16,
                    u32::from(next()) % (MSG_COUNT + 2),
                    Ordering::Release,
                );
            }
            6 => {
                for _ in 0..MSG_COUNT {
                    if !matches!(rx.try_receive(&mut statq), Ok(Some(_)) | Err(_)) {
                        break;
                    }
                }
            }
            7 => {
                let token = u32::from(next()) << 16 | u32::from(next());
                let _ = m.write32(0x81_0090, token);
            }
            8 => {
                let f = Fault::from_wire(u64::from(next() % 9), u64::from(next()) * 1_000);
                if let Some(f) = f.filter(|f| *f != Fault::Crash || next() == 0) {
                    m.set_fault(f);
                }
            }
            _ => {
                let now = m.bar.now_ns + u64::from(next()) * 100_000;
                m.tick(now);
            }
        }
        sequence = sequence.wrapping_add(1);
        let _ = m.write32(NV_PGSP_QUEUE_HEAD::OFFSET, 0);
    }
}

/// Lay out LibOS arguments, logs, RMARGS and the queues the way the driver does, and start
/// GSP-RM on them directly (the booter's checks are not what is being fuzzed).
fn setup(m: &mut GspModel<'_>, sys: &Region<ReadWrite>) -> Option<(gsp::cmdq::Tx, gsp::cmdq::Rx)> {
    let pa = |off: usize| SYS_BASE + off as u64;
    let mut logs = [0u64; 3];
    for (i, l) in logs.iter_mut().enumerate() {
        let off = LOGS + i * LOG_BUFFER_SIZE;
        init_log_buffer(&mut sys.subregion(off, LOG_BUFFER_SIZE).ok()?, pa(off)).ok()?;
        *l = pa(off);
    }
    write_rmargs(&mut sys.subregion(RMARGS, 0x1000).ok()?, pa(QUEUES)).ok()?;
    let regions = LibosRegions {
        loginit: logs[0],
        logintr: logs[1],
        logrm: logs[2],
        rmargs: pa(RMARGS),
    };
    write_libos_args(&mut sys.subregion(0, 0x1000).ok()?, &regions).ok()?;
    let cpu = SharedQueues::new(sys.subregion(QUEUES, QUEUE_REGION_SIZE).ok()?).ok()?;
    cpu.init_cpu(pa(QUEUES)).ok()?;
    let (tx, rx) = cpu.split(Side::Cpu).ok()?;
    m.libos = SYS_BASE;
    let q = firmware::start(m).ok()?;
    m.queues = Some(q);
    m.set_phase(Phase::Running);
    Some((tx, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64: deterministic pseudo-random inputs.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn command_queue_smoke_never_panics() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let len = (xorshift(&mut s) % 300) as usize;
            let input: Vec<u8> = (0..len).map(|_| xorshift(&mut s) as u8).collect();
            command_queue(&input);
        }
    }

    #[test]
    fn the_setup_reaches_a_serving_model() {
        let mut sys = vec![0u64; SYS_SIZE / 8];
        let mut buf = vec![0u8; 0x4_0000];
        // SAFETY: `sys` outlives both views and the model, all dropped before it.
        let (a, b) = unsafe { (region(&mut sys).unwrap(), region(&mut sys).unwrap()) };
        let mut mem = Memory::new(FbLayout {
            reported_size: 1 << 30,
        });
        mem.sys.add(SYS_BASE, a).unwrap();
        let mut m = GspModel::new(ModelConfig::new(Chipset::AD102), mem, &[], &mut buf);
        let (mut tx, mut rx) = setup(&mut m, &b).unwrap();
        // A 64-byte NOP comes back as itself.
        tx.send_message(
            MessageMeta::reply(0, 7, 0xffff_ffff),
            &[0x42u8; 64][..],
            &mut NoWait,
        )
        .unwrap();
        m.write32(NV_PGSP_QUEUE_HEAD::OFFSET, 0).unwrap();
        let mut out = vec![0u8; 0x1_0000];
        let got = rx.try_receive(&mut out).unwrap().unwrap();
        assert_eq!(
            (
                got.rpc.function,
                got.rpc.sequence,
                got.rpc.rpc_result,
                got.len
            ),
            (0, 7, 0, 64)
        );
        assert!(out[..64].iter().all(|&b| b == 0x42));
    }
}
