//! Fuzz entry point for the status-queue receive path (fuzz target `statq`), and its stable
//! smoke test. Built only with the `fuzz` feature (or in tests): it needs an allocator for the
//! stand-in DMA buffer, which a PD never has.
#![allow(unsafe_code)]

extern crate std;

use super::{
    MessageMeta, QueueError, Received, SharedQueues, Side, TxSignal, ENTRY_OFFSET, MAX_ELEMENTS,
    MSG_COUNT, QUEUE_REGION_SIZE, STATQ_OFFSET, TX_WRITE_PTR,
};
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use pd_core::shm::Region;
use std::vec;

/// A signal for the fuzzer's firmware side (and the queue tests): never waits.
pub(crate) struct NoWait;

impl TxSignal for NoWait {
    fn notify(&mut self) -> Result<(), QueueError> {
        Ok(())
    }
    fn wait_for_space(&mut self) -> Result<(), QueueError> {
        Err(QueueError::Timeout)
    }
}

/// Run `data` as a program against the driver's status-queue receiver: the bytes choose
/// operations of a hostile GSP — send well-formed messages (through the firmware side's own
/// `Tx`, so the receiver gets past the checksum), overwrite arbitrary bytes of the status queue
/// (headers, entries, pointers), set the write pointer to anything — interleaved with receives
/// into buffers of arbitrary size. Panics (the fuzzer's finding) if the receiver panics, or
/// returns a message that breaks its own invariants.
pub fn statq(data: &[u8]) {
    let mut mem = vec![0u64; QUEUE_REGION_SIZE / 8];
    let Some(base) = NonNull::new(mem.as_mut_ptr().cast::<u8>()) else {
        return;
    };
    // SAFETY: `mem` (QUEUE_REGION_SIZE bytes) outlives every view made here (they are dropped
    // at the end of this function, before `mem`), and no reference into it exists meanwhile.
    let region = || unsafe { Region::new(base, QUEUE_REGION_SIZE) };
    let (Ok(cpu), Ok(gsp)) = (SharedQueues::new(region()), SharedQueues::new(region())) else {
        return;
    };
    let raw = region();
    if cpu.init_cpu(0x1000_0000).is_err() || gsp.init_gsp().is_err() {
        return;
    }
    let (Ok((_, mut rx)), Ok((mut gsp_tx, _))) = (cpu.split(Side::Cpu), gsp.split(Side::Gsp))
    else {
        return;
    };
    let mut buf = vec![0u8; 0x10000 + 64];
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let mut seq = 0u32;
    while let Some(op) = next() {
        match op % 5 {
            0 => {
                let len = usize::from(next().unwrap_or(0)) * 301;
                let meta = MessageMeta::reply(u32::from(next().unwrap_or(0)) | 0x1000, seq, 0);
                let body = vec![op; len];
                let _ = gsp_tx.send_message(meta, &body[..], &mut NoWait);
                seq = seq.wrapping_add(1);
            }
            1 => {
                let hi = usize::from(next().unwrap_or(0));
                let lo = usize::from(next().unwrap_or(0));
                let at = STATQ_OFFSET + (hi << 10 | lo << 2) % (ENTRY_OFFSET + 63 * 0x1000);
                let b = [
                    next().unwrap_or(0),
                    next().unwrap_or(0),
                    next().unwrap_or(0),
                    op,
                ];
                let _ = raw.write_bytes(at, &b);
            }
            2 => {
                let wr = u32::from(next().unwrap_or(0));
                let _ = raw.store_u32(STATQ_OFFSET + TX_WRITE_PTR, wr, Ordering::Release);
            }
            _ => {
                let cap = usize::from(next().unwrap_or(0)) * 260;
                let dst = buf.get_mut(..cap).unwrap_or(&mut []);
                let before = rx.read_ptr();
                if let Ok(Some(m)) = rx.try_receive(dst) {
                    check(&m, cap);
                }
                assert!(rx.read_ptr() < MSG_COUNT, "read pointer left the ring");
                let moved = (rx.read_ptr() + MSG_COUNT - before) % MSG_COUNT;
                assert!(moved <= MAX_ELEMENTS, "consumed more than one message");
            }
        }
    }
}

/// A received message must be consistent with what the receiver promised.
fn check(m: &Received, cap: usize) {
    assert!(m.len <= cap, "payload overran the caller's buffer");
    assert!((1..=MAX_ELEMENTS).contains(&m.elements));
    assert_eq!(m.rpc.length as usize, m.len + 32);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stable-toolchain stand-in for the fuzzer: random programs, and programs biased
    /// towards valid traffic with damage.
    #[test]
    fn statq_smoke_never_panics() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..3000 {
            let len = (rnd() % 512) as usize;
            let mut input: std::vec::Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            if round % 2 == 0 {
                // Mostly sends and receives with big buffers: deep into validation.
                for (i, b) in input.iter_mut().enumerate() {
                    if i % 3 == 0 && rnd() % 4 != 0 {
                        *b = [0, 3, 3, 4][(rnd() % 4) as usize];
                    }
                }
            }
            statq(&input);
        }
    }
}
