//! Tests of the wire format, and of the client stub against a scripted server.
#![allow(unsafe_code)] // Region::new over a test buffer.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // Tests may panic.

extern crate std;

use crate::wire::{error_reply, CALLER};
use crate::*;
use core::ptr::NonNull;
use pd_core::shm::{ReadWrite, Region, RegionError};
use pd_core::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};
use std::vec;
use std::vec::Vec;

fn mi(label: u64, count: usize) -> MessageInfo {
    MessageInfo::new(label, count)
}

fn regs(words: &[u64]) -> MessageRegisters {
    let mut m = MessageRegisters::default();
    for (i, &w) in words.iter().enumerate() {
        m.set(i, w);
    }
    m
}

#[test]
fn requests_round_trip() {
    let all = [
        Request::Alloc {
            pool: PoolId(3),
            size: 0x1234,
            align: 0x10000,
        },
        Request::Free {
            handle: DmaHandle::from_raw(0xdead_0001_0002),
            offset: 0x5000,
        },
        Request::PoolUsage { pool: PoolId(255) },
        Request::ClientUsage {
            client: Some(ClientId(2)),
        },
        Request::ClientUsage { client: None },
    ];
    for req in all {
        let mut mrs = MessageRegisters::default();
        let info = req.encode(&mut mrs);
        assert_eq!(info.label(), req.opcode() as u64);
        assert_eq!(Request::decode(info, &mrs), Ok(req));
    }
}

#[test]
fn request_decoder_rejects_each_bad_field() {
    let cases: [(u64, &[u64], AllocError); 11] = [
        (0, &[], AllocError::BadOpcode),
        (6, &[1], AllocError::BadOpcode),
        (5, &[1], AllocError::BadLength),
        (1, &[0, 4096], AllocError::BadLength),
        (2, &[1, 2, 3], AllocError::BadLength),
        (1, &[256, 4096, 0], AllocError::NoSuchPool),
        (1, &[0, 0, 0], AllocError::BadSize),
        (1, &[0, u64::MAX - 10, 0], AllocError::BadSize),
        (1, &[0, 4096, 3 * 4096], AllocError::BadAlignment),
        (1, &[0, 4096, 0x40_0000], AllocError::BadAlignment),
        (4, &[256], AllocError::NoSuchClient),
    ];
    for (label, words, err) in cases {
        let got = Request::decode(mi(label, words.len()), &regs(words));
        assert_eq!(got, Err(err), "label {label} words {words:?}");
    }
}

#[test]
fn small_alignments_become_a_page_and_caller_is_none() {
    let r = Request::decode(mi(1, 3), &regs(&[1, 10, 64])).unwrap();
    assert_eq!(
        r,
        Request::Alloc {
            pool: PoolId(1),
            size: 10,
            align: PAGE_SIZE
        }
    );
    let r = Request::decode(mi(1, 3), &regs(&[1, 10, 0])).unwrap();
    assert_eq!(
        r,
        Request::Alloc {
            pool: PoolId(1),
            size: 10,
            align: PAGE_SIZE
        }
    );
    let r = Request::decode(mi(4, 1), &regs(&[CALLER])).unwrap();
    assert_eq!(r, Request::ClientUsage { client: None });
}

#[test]
fn replies_round_trip_and_errors_decode() {
    let pool = PoolUsage {
        pool: 1,
        owner: 2,
        live_buffers: 3,
        size: 4,
        used: 5,
        largest_free: 6,
        device_base: 7,
        owner_vaddr: 8,
        allocs: 9,
        releases: 10,
        ..Default::default()
    };
    let client = ClientUsage {
        client: 1,
        charged_buffers: 2,
        charged_bytes: 3,
        quota_bytes: 4,
        max_buffers: 5,
        held_buffers: 6,
        allocs: 7,
        frees: 8,
        reclaimed: 9,
        reclaims: 10,
        ..Default::default()
    };
    let alloc = Allocation {
        handle: DmaHandle::from_raw(9),
        offset: 1,
        device_addr: 2,
        size: 3,
    };
    let cases = [
        (Opcode::Alloc, Reply::Allocated(alloc)),
        (Opcode::Free, Reply::Freed),
        (Opcode::PoolUsage, Reply::Pool(pool)),
        (Opcode::ClientUsage, Reply::Client(client)),
    ];
    for (op, reply) in cases {
        let mut mrs = MessageRegisters::default();
        let info = reply.encode(&mut mrs);
        assert_eq!(Reply::decode(op, info, &mrs), Ok(reply));
        // The same registers with one word too few are malformed.
        if info.count() > 0 {
            assert_eq!(Reply::decode(op, mi(0, info.count() - 1), &mrs), Err(None));
        }
    }
    let mrs = MessageRegisters::default();
    let refused = error_reply(AllocError::QuotaBytes);
    assert_eq!(
        Reply::decode(Opcode::Alloc, refused, &mrs),
        Err(Some(AllocError::QuotaBytes))
    );
    assert_eq!(Reply::decode(Opcode::Alloc, mi(999, 0), &mrs), Err(None));
}

#[test]
fn error_codes_start_at_one_and_round_trip() {
    assert_eq!(AllocError::try_from(0), Err(0));
    let mut n = 0;
    for code in 1..=20u64 {
        let e = AllocError::try_from(code).unwrap();
        assert_eq!(e as u64, code);
        assert!(!std::format!("{e}").is_empty());
        n += 1;
    }
    assert_eq!(n, 20);
    assert_eq!(AllocError::try_from(21), Err(21));
}

/// A scripted alloc-server: bump allocation from device base `base`,
/// recording every free; `fail_ipc` makes the next call fail at the IPC level.
struct Script {
    mrs: MessageRegisters,
    base: u64,
    next: u64,
    frees: Vec<(u64, u64)>,
    fail_ipc: bool,
    /// Overrides the next Alloc reply: (offset, device_addr, size).
    forge: Option<(u64, u64, u64)>,
    refuse_free: Option<AllocError>,
    /// XOR this into every register of the next Alloc reply (a garbled reply).
    garble: Option<u64>,
    abandons: usize,
}

impl Script {
    fn new() -> Self {
        Self {
            mrs: MessageRegisters::default(),
            base: 0x8000_0000,
            next: 0,
            frees: vec![],
            fail_ipc: false,
            forge: None,
            refuse_free: None,
            garble: None,
            abandons: 0,
        }
    }
}

impl Kernel for Script {
    fn pd_name(&self) -> &str {
        "gsp"
    }
    fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
        Ok(())
    }
    fn now_ns(&self) -> u64 {
        0
    }
    fn mrs(&mut self) -> &mut MessageRegisters {
        &mut self.mrs
    }
    fn ppcall(&mut self, _: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        if core::mem::take(&mut self.fail_ipc) {
            return Err(IpcError::PeerFaulted);
        }
        let reply = match Request::decode(msg, &self.mrs) {
            Ok(Request::Alloc { size, .. }) => {
                let size = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
                let (offset, device_addr, size) =
                    self.forge
                        .take()
                        .unwrap_or((self.next, self.base + self.next, size));
                self.next += size;
                let handle = DmaHandle::from_raw(self.next);
                Reply::Allocated(Allocation {
                    handle,
                    offset,
                    device_addr,
                    size,
                })
            }
            Ok(Request::Abandon) => {
                self.abandons += 1;
                Reply::Freed
            }
            Ok(Request::Free { handle, offset }) => {
                if let Some(e) = self.refuse_free {
                    return Ok(error_reply(e));
                }
                self.frees.push((handle.raw(), offset));
                Reply::Freed
            }
            Ok(_) => return Ok(error_reply(AllocError::BadOpcode)),
            Err(e) => return Ok(error_reply(e)),
        };
        let info = reply.encode(&mut self.mrs);
        if let Some(mask) = self.garble.take() {
            for i in 0..info.count() {
                self.mrs.set(i, self.mrs.get(i) ^ mask);
            }
        }
        Ok(info)
    }
}

/// A 64 KiB pool of the caller's own, and the memory behind it (moving the `Vec` does not move
/// its buffer, so the view stays valid while the `Vec` lives).
fn mapped() -> (Vec<u8>, MappedPool) {
    let mut mem = vec![0u8; 0x10000];
    // SAFETY: the buffer outlives the pool view (callers keep the Vec) and nothing else borrows
    // it while the view is used.
    let view: Region<ReadWrite> =
        unsafe { Region::new(NonNull::new(mem.as_mut_ptr()).unwrap(), mem.len()) };
    let pool = MappedPool {
        id: PoolId(0),
        view,
        coherence: Coherence::Coherent,
    };
    (mem, pool)
}

const CH: Channel = Channel::new(2);

#[test]
fn dropped_buffers_are_queued_and_flushed_with_their_offsets() {
    static FREES: FreeList<[FreeSlot; 4]> = FreeList::new();
    let (_mem, pool) = mapped();
    let mut k = Script::new();
    let mut c = DmaClient::new(CH, &FREES);
    let a = c.alloc::<u64>(&mut k, &pool, 0).unwrap();
    let b = c.alloc_slice::<u32>(&mut k, &pool, 2000, 0).unwrap();
    assert_eq!((a.allocation().offset, b.allocation().offset), (0, 0x1000));
    assert_eq!(b.allocation().size, 0x2000);
    let (ha, hb) = (a.allocation().handle.raw(), b.allocation().handle.raw());
    assert_eq!(FREES.outstanding(), 2);
    drop(a);
    drop(b);
    assert_eq!((FREES.queued(), FREES.outstanding()), (2, 2));
    assert!(k.frees.is_empty());
    let report = c.flush(&mut k).unwrap();
    assert_eq!(
        report,
        FlushReport {
            freed: 2,
            rejected: 0
        }
    );
    assert_eq!(k.frees, [(ha, 0), (hb, 0x1000)]);
    assert_eq!((FREES.queued(), FREES.outstanding()), (0, 0));
}

#[test]
fn the_next_allocation_flushes_first_and_the_list_never_overflows() {
    let frees: FreeList<[FreeSlot; 2]> = FreeList::new();
    let (_mem, pool) = mapped();
    let mut k = Script::new();
    let mut c = DmaClient::new(CH, &frees);
    let a = c.alloc::<u64>(&mut k, &pool, 0).unwrap();
    let _b = c.alloc::<u64>(&mut k, &pool, 0).unwrap();
    assert_eq!(
        c.alloc::<u64>(&mut k, &pool, 0).err(),
        Some(DmaError::FreeListFull)
    );
    drop(a);
    let _c = c.alloc::<u64>(&mut k, &pool, 0).unwrap();
    assert_eq!(k.frees.len(), 1);
    assert_eq!(frees.outstanding(), 2);
}

#[test]
fn ipc_failures_lose_no_free() {
    let frees: FreeList<[FreeSlot; 4]> = FreeList::new();
    let (_mem, pool) = mapped();
    let mut k = Script::new();
    let mut c = DmaClient::new(CH, &frees);
    // A failed allocation call leaves nothing outstanding.
    k.fail_ipc = true;
    assert_eq!(
        c.alloc::<u64>(&mut k, &pool, 0).err(),
        Some(DmaError::Ipc(IpcError::PeerFaulted))
    );
    assert_eq!(frees.outstanding(), 0);
    // A failed explicit free is queued, and a failed flush keeps it queued.
    let a = c.alloc::<u64>(&mut k, &pool, 0).unwrap();
    k.fail_ipc = true;
    assert_eq!(
        a.free(&mut c, &mut k),
        Err(DmaError::Ipc(IpcError::PeerFaulted))
    );
    assert_eq!(frees.queued(), 1);
    k.fail_ipc = true;
    assert!(c.flush(&mut k).is_err());
    assert_eq!(frees.queued(), 1);
    assert_eq!(c.flush(&mut k).unwrap().freed, 1);
    assert_eq!((frees.queued(), frees.outstanding()), (0, 0));
}

#[test]
fn a_garbled_grant_is_refused_and_abandoned_and_the_next_one_works() {
    let frees: FreeList<[FreeSlot; 4]> = FreeList::new();
    let (_mem, pool) = mapped();
    let mut k = Script::new();
    let mut c = DmaClient::new(CH, &frees);
    for bit in [0, 12, 33, 63] {
        k.garble = Some(1 << bit);
        assert_eq!(
            c.alloc::<u64>(&mut k, &pool, 0).err(),
            Some(DmaError::BadReply),
            "bit {bit}"
        );
    }
    assert_eq!(k.abandons, 4, "each garbled grant given back");
    assert_eq!(frees.outstanding(), 0);
    assert!(c.alloc::<u64>(&mut k, &pool, 0).is_ok());
    assert_eq!(k.abandons, 4);
}

#[test]
fn refused_frees_are_reported_or_dropped() {
    let frees: FreeList<[FreeSlot; 4]> = FreeList::new();
    let (_mem, pool) = mapped();
    let mut k = Script::new();
    let mut c = DmaClient::new(CH, &frees);
    let a = c.alloc::<u64>(&mut k, &pool, 0).unwrap();
    let b = c.alloc::<u64>(&mut k, &pool, 0).unwrap();
    k.refuse_free = Some(AllocError::Reclaimed);
    assert_eq!(
        a.free(&mut c, &mut k),
        Err(DmaError::Server(AllocError::Reclaimed))
    );
    drop(b);
    assert_eq!(
        c.flush(&mut k).unwrap(),
        FlushReport {
            freed: 0,
            rejected: 1
        }
    );
    assert_eq!((frees.queued(), frees.outstanding()), (0, 0));
}

#[test]
fn inconsistent_replies_are_refused_and_returned() {
    let frees: FreeList<[FreeSlot; 4]> = FreeList::new();
    let (_mem, pool) = mapped();
    let mut k = Script::new();
    let mut c = DmaClient::new(CH, &frees);
    // Outside the caller's mapping.
    k.forge = Some((0x10000, 0x8001_0000, 0x1000));
    assert_eq!(
        c.alloc::<u64>(&mut k, &pool, 0).err(),
        Some(DmaError::BadReply)
    );
    // Smaller than asked.
    k.forge = Some((0, 0x8000_0000, 0x1000));
    assert_eq!(
        c.alloc_slice::<u8>(&mut k, &pool, 0x1001, 0).err(),
        Some(DmaError::BadReply)
    );
    // Not aligned as asked.
    k.forge = Some((0x1000, 0x8000_1000, 0x1000));
    assert_eq!(
        c.alloc::<u64>(&mut k, &pool, 0x10000).err(),
        Some(DmaError::BadReply)
    );
    // Each refused grant was queued and sent by the next call's flush.
    assert_eq!((frees.queued(), k.frees.len()), (1, 2));
    c.flush(&mut k).unwrap();
    assert_eq!((k.frees.len(), frees.outstanding()), (3, 0));
}

#[derive(
    Clone, Copy, Debug, PartialEq, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u32,
}

#[test]
fn typed_views_copy_in_and_out_within_bounds() {
    let frees: FreeList<[FreeSlot; 4]> = FreeList::new();
    let (mem, pool) = mapped();
    let mut k = Script::new();
    let mut c = DmaClient::new(CH, &frees);
    let _pad = c.alloc::<u8>(&mut k, &pool, 0).unwrap();
    let one = c.alloc::<Desc>(&mut k, &pool, 0).unwrap();
    let d = Desc {
        addr: 0x1122_3344,
        len: 7,
        flags: 1,
    };
    one.write(&d).unwrap();
    one.sync_for_device();
    one.sync_for_cpu();
    assert_eq!(one.read().unwrap(), d);
    let ring = c.alloc_slice::<Desc>(&mut k, &pool, 3, 0).unwrap();
    assert_eq!((ring.len(), ring.is_empty()), (3, false));
    ring.set(2, &d).unwrap();
    assert_eq!(ring.get(2).unwrap(), d);
    assert!(matches!(
        ring.get(3),
        Err(DmaError::Region(RegionError::OutOfBounds { .. }))
    ));
    assert!(ring.write_from(2, &[d, d]).is_err());
    ring.write_from(0, &[d, d]).unwrap();
    let mut out = [Desc {
        addr: 0,
        len: 0,
        flags: 0,
    }; 3];
    ring.read_into(0, &mut out).unwrap();
    assert_eq!(out, [d, d, d]);
    assert_eq!(ring.device_addr(), 0x8000_2000);
    assert_eq!(ring.pool(), PoolId(0));
    drop((one, ring));
    // The bytes landed in the pool memory at the buffers' offsets.
    assert_eq!(&mem[0x1000..0x1008], &0x1122_3344u64.to_ne_bytes());
    assert_eq!(
        &mem[0x2000 + 32..0x2000 + 40],
        &0x1122_3344u64.to_ne_bytes()
    );
}

#[test]
fn delegated_buffers_carry_the_grant_and_return_on_drop() {
    let frees: FreeList<[FreeSlot; 4]> = FreeList::new();
    let mut k = Script::new();
    let mut c = DmaClient::new(CH, &frees);
    let b = c.alloc_for(&mut k, PoolId(4), 0x3000, 0).unwrap();
    assert_eq!((b.pool(), b.allocation().size), (PoolId(4), 0x3000));
    drop(b);
    assert_eq!(frees.queued(), 1);
    let b = c.alloc_for(&mut k, PoolId(4), 0x1000, 0).unwrap();
    assert_eq!(k.frees.len(), 1);
    b.free(&mut c, &mut k).unwrap();
    assert_eq!((k.frees.len(), frees.outstanding()), (2, 0));
}
