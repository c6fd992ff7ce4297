//! Test support for the queue tests: shared memory backed by a Vec, both ends of the queues over
//! it, signals, and a few ways to tamper with the ring the way a broken peer would.
#![allow(dead_code, unsafe_code)]

use core::ptr::NonNull;
use gsp::cmdq::{
    QueueError, Rx, SharedQueues, Side, Tx, TxSignal, CMDQ_OFFSET, ENTRY_OFFSET, GSP_PAGE_SIZE,
    QUEUE_REGION_SIZE, RX_HDR_OFFSET, STATQ_OFFSET,
};
use pd_core::shm::{ReadWrite, Region};

/// Memory that stands in for the DMA buffer (u64-backed so atomics are aligned).
pub struct Shm {
    mem: Vec<u64>,
}

impl Shm {
    pub fn new() -> Self {
        Self {
            mem: vec![0u64; QUEUE_REGION_SIZE / 8],
        }
    }

    /// A fresh view of the whole buffer.
    pub fn region(&mut self) -> Region<ReadWrite> {
        // SAFETY: the Vec outlives every view the tests create (they are dropped first, or the
        // Shm is kept alive for the whole test), and no Rust reference into it is held while a
        // view is in use: the tests touch the bytes only through views.
        unsafe {
            Region::new(
                NonNull::new(self.mem.as_mut_ptr().cast::<u8>()).unwrap(),
                QUEUE_REGION_SIZE,
            )
        }
    }
}

/// Both ends: the driver (cmdq Tx, statq Rx) and the firmware peer (statq Tx, cmdq Rx), built
/// from the same code.
pub struct Pair {
    pub cpu_tx: Tx,
    pub cpu_rx: Rx,
    pub gsp_tx: Tx,
    pub gsp_rx: Rx,
    /// Last, so it is dropped after the views into it.
    pub shm: Box<Shm>,
}

pub const DMA_BASE: u64 = 0x8_0000_0000;

impl Pair {
    pub fn new() -> Self {
        let mut shm = Box::new(Shm::new());
        let cpu = SharedQueues::new(shm.region()).unwrap();
        cpu.init_cpu(DMA_BASE).unwrap();
        let gsp = SharedQueues::new(shm.region()).unwrap();
        gsp.init_gsp().unwrap();
        let (cpu_tx, cpu_rx) = cpu.split(Side::Cpu).unwrap();
        let (gsp_tx, gsp_rx) = gsp.split(Side::Gsp).unwrap();
        Self {
            shm,
            cpu_tx,
            cpu_rx,
            gsp_tx,
            gsp_rx,
        }
    }

    /// A raw view for tampering.
    pub fn raw(&mut self) -> Region<ReadWrite> {
        self.shm.region()
    }

    /// Offset of entry `slot` of the status queue.
    pub fn statq_entry(slot: u32) -> usize {
        STATQ_OFFSET + ENTRY_OFFSET + slot as usize * GSP_PAGE_SIZE
    }

    /// Offset of entry `slot` of the command queue.
    pub fn cmdq_entry(slot: u32) -> usize {
        CMDQ_OFFSET + ENTRY_OFFSET + slot as usize * GSP_PAGE_SIZE
    }

    /// Offset of the status queue's write pointer (the GSP's).
    pub const STATQ_WRITE_PTR: usize = STATQ_OFFSET + 16;
    /// Offset of the GSP's read pointer of the command queue (statq rx header, SWAP_RX).
    pub const GSP_READ_PTR: usize = STATQ_OFFSET + RX_HDR_OFFSET;
}

/// A signal that never waits: a full ring is a timeout at once.
#[derive(Default)]
pub struct NoWait {
    pub rings: u32,
    pub waits: u32,
}

impl TxSignal for NoWait {
    fn notify(&mut self) -> Result<(), QueueError> {
        self.rings += 1;
        Ok(())
    }

    fn wait_for_space(&mut self) -> Result<(), QueueError> {
        self.waits += 1;
        Err(QueueError::Timeout)
    }
}

/// A signal that, when the ring is full, lets the peer drain it (single-threaded "concurrency").
pub struct Pump<'a> {
    pub peer: &'a mut Rx,
    pub got: Vec<(u32, Vec<u8>)>,
    pub waits: u32,
}

impl TxSignal for Pump<'_> {
    fn notify(&mut self) -> Result<(), QueueError> {
        Ok(())
    }

    fn wait_for_space(&mut self) -> Result<(), QueueError> {
        self.waits += 1;
        let mut buf = vec![0u8; 0x10000];
        let mut any = false;
        while let Some(m) = self.peer.try_receive(&mut buf)? {
            self.got.push((m.rpc.function, buf[..m.len].to_vec()));
            any = true;
        }
        if any {
            Ok(())
        } else {
            Err(QueueError::Timeout)
        }
    }
}

/// A payload pattern that does not repeat every 256 bytes.
pub fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i ^ (i >> 8) ^ (i >> 16)) as u8 ^ salt)
        .collect()
}

/// The reference checksum of section 6, computed the obvious way over a zero-padded copy.
pub fn naive_checksum(bytes: &[u8]) -> u32 {
    let mut v = bytes.to_vec();
    v.resize(bytes.len().div_ceil(8) * 8, 0);
    let x = v
        .chunks_exact(8)
        .fold(0u64, |a, w| a ^ u64::from_le_bytes(w.try_into().unwrap()));
    (x >> 32) as u32 ^ x as u32
}

/// A small xorshift PRNG (no extra dependencies).
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
