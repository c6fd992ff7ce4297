//! The alloc PD as the system runs it: pools from system.xml's DMA regions (small stand-ins for
//! their memory), gsp and gpu allocating over PPC through `alloc_api::DmaClient`, and reclaim when
//! the supervisor's status page shows an owner's instance ended.
mod common;

use alloc_api::{
    AllocError, Coherence, DmaClient, DmaError, FreeList, FreeSlot, MappedPool, PoolId,
};
use alloc_server::PoolSpec;
use common::{idx, set, status_page, vacant};
use pd_core::shm::{ReadWrite, Region};
use pd_core::{Handler, Kernel};
use pd_programs::alloc::{AllocPd, POOLS};
use pd_programs::status::PdState;
use pd_programs::sys::{self, supervisor::children};

/// Bytes of each stand-in pool.
const POOL: usize = 1 << 20;

static GSP_FREES: FreeList<[FreeSlot; 8]> = FreeList::new();
static GPU_FREES: FreeList<[FreeSlot; 8]> = FreeList::new();

/// The pools with stand-in memory, and a second view of each (what the owner and device see).
fn pools() -> ([PoolSpec; 5], Vec<Region<ReadWrite>>) {
    let memory: Vec<Region<ReadWrite>> = (0..POOLS.len())
        .map(|_| Region::from_static(vec![0xa5u8; POOL].leak()))
        .collect();
    (specs(&memory), memory)
}

/// Pool specs over `memory` (a restarted alloc's views of the same pools).
fn specs(memory: &[Region<ReadWrite>]) -> [PoolSpec; 5] {
    core::array::from_fn(|i| PoolSpec {
        name: POOLS[i].map.name,
        owner: POOLS[i].owner,
        owner_vaddr: POOLS[i].owner_vaddr,
        device_base: POOLS[i].paddr.fake_paddr,
        memory: memory[i].alias(),
    })
}

fn notify_alloc(sys: &mut common::System<'_>) {
    sys.kernel(idx("supervisor"))
        .notify(sys::supervisor::channels::ALLOC)
        .unwrap();
    assert_eq!(sys.run_pending(8), 1);
}

#[test]
fn owners_allocate_by_ppc_and_lose_everything_when_their_instance_ends() {
    let page = status_page();
    let (alloc_pd, gsp, gpu) = (idx("alloc"), idx("gsp"), idx("gpu"));
    let (specs, memory) = pools();
    let mut sys = vacant();
    let mut alloc = AllocPd::new(&sys.kernel(alloc_pd), specs, page.read_only(), None);
    // Pools are scrubbed at start (the regions may hold a previous life's bytes).
    assert_eq!(memory[0].read::<u64>(0), Ok(0));
    let mut sys = sys.with_handler(alloc_pd, &mut alloc);

    // gsp allocates in its own pool: zeroed, aligned, inside the pool's device range.
    let mut as_gsp = DmaClient::new(sys::gsp::channels::ALLOC, &GSP_FREES);
    let gsp_pool = MappedPool {
        id: PoolId(0),
        view: memory[0].alias(),
        coherence: Coherence::Coherent,
    };
    let buf = as_gsp
        .alloc_slice::<u64>(&mut sys.kernel(gsp), &gsp_pool, 1024, 0x1_0000)
        .unwrap();
    let base = POOLS[0].paddr.fake_paddr;
    let a = buf.allocation();
    assert_eq!(a.device_addr % 0x1_0000, 0);
    assert!(a.device_addr >= base && a.device_addr + a.size <= base + POOL as u64);
    assert_eq!(a.device_addr - base, a.offset);
    assert_eq!(buf.get(1023), Ok(0));
    buf.write_from(0, &[0xfeed; 1024]).unwrap();
    let usage = as_gsp.pool_usage(&mut sys.kernel(gsp), PoolId(0)).unwrap();
    assert_eq!((usage.live_buffers, usage.device_base), (1, base));
    assert_eq!(usage.owner_vaddr, sys::gsp::regions::GSP_DMA.vaddr);

    // gpu allocates a GART buffer in client0's pool on its behalf, but nothing in gsp's.
    let mut as_gpu = DmaClient::new(sys::gpu::channels::ALLOC, &GPU_FREES);
    let gart = as_gpu
        .alloc_for(&mut sys.kernel(gpu), PoolId(2), 8192, 0)
        .unwrap();
    assert_eq!(
        as_gpu
            .alloc_for(&mut sys.kernel(gpu), PoolId(0), 4096, 0)
            .err(),
        Some(DmaError::Server(AllocError::NotGranted))
    );

    // gsp restarts: its buffer is taken back and zeroed; client0's buffer is untouched.
    set(&page, children::GSP, 2, PdState::Running);
    notify_alloc(&mut sys);
    assert_eq!(memory[0].read::<u64>(a.offset as usize), Ok(0));
    assert_eq!(
        buf.free(&mut as_gsp, &mut sys.kernel(gsp)),
        Err(DmaError::Server(AllocError::Reclaimed))
    );
    let usage = as_gsp.pool_usage(&mut sys.kernel(gsp), PoolId(0)).unwrap();
    assert_eq!(usage.live_buffers, 0);
    let kept = as_gsp
        .alloc_slice::<u64>(&mut sys.kernel(gsp), &gsp_pool, 1536, 0)
        .unwrap();

    // client0 faults and is held: what gpu allocated for it goes too.
    set(&page, children::CLIENT0, 1, PdState::Held);
    notify_alloc(&mut sys);
    assert_eq!(
        gart.free(&mut as_gpu, &mut sys.kernel(gpu)),
        Err(DmaError::Server(AllocError::Reclaimed))
    );

    // A throttled gpu restart shows up twice; the new instance's buffer, allocated before alloc
    // hears of the second, survives it.
    set(&page, children::GPU, 1, PdState::Restarting);
    notify_alloc(&mut sys);
    set(&page, children::GPU, 2, PdState::Running);
    let fresh = as_gpu
        .alloc_for(&mut sys.kernel(gpu), PoolId(1), 4096, 0)
        .unwrap();
    notify_alloc(&mut sys);
    fresh.free(&mut as_gpu, &mut sys.kernel(gpu)).unwrap();

    // The accounting the fault campaign reads: 3 pages live (gsp's second buffer), all
    // consistent, and the reclaims counted per owner.
    drop(sys);
    assert_eq!(alloc.usage().map(|u| u.dma_pages), Some(3));
    let srv = alloc.server().unwrap();
    let summary = srv.audit().unwrap();
    assert_eq!((summary.live_buffers, summary.live_bytes), (1, 3 * 4096));
    let gsp_id = srv.client_id("gsp").unwrap();
    let u = srv.client_usage(gsp_id).unwrap();
    assert_eq!((u.reclaims, u.reclaimed, u.charged_buffers), (1, 1, 1));
    let c0 = srv.client_usage(srv.client_id("client0").unwrap()).unwrap();
    assert_eq!((c0.reclaims, c0.reclaimed, c0.charged_buffers), (1, 1, 0));
    let g = srv.client_usage(srv.client_id("gpu").unwrap()).unwrap();
    assert_eq!((g.reclaims, g.frees, g.held_buffers), (1, 1, 0));
    drop(kept);
}

#[test]
fn a_restarted_alloc_keeps_what_owners_hold_and_reclaims_who_died_meanwhile() {
    let page = status_page();
    let (alloc_pd, gsp, gpu) = (idx("alloc"), idx("gsp"), idx("gpu"));
    let (specs0, memory) = pools();
    let journal = Region::from_static(vec![0u8; alloc_server::JOURNAL_SIZE].leak());
    let mut sys = vacant();
    let mut alloc = AllocPd::new(
        &sys.kernel(alloc_pd),
        specs0,
        page.read_only(),
        Some(journal.alias()),
    );
    let mut sys = sys.with_handler(alloc_pd, &mut alloc);
    static GSP2: FreeList<[FreeSlot; 8]> = FreeList::new();
    static GPU2: FreeList<[FreeSlot; 8]> = FreeList::new();
    let (mut as_gsp, mut as_gpu) = (
        DmaClient::new(sys::gsp::channels::ALLOC, &GSP2),
        DmaClient::new(sys::gpu::channels::ALLOC, &GPU2),
    );
    let queues = as_gsp
        .alloc_for(&mut sys.kernel(gsp), PoolId(0), 8192, 0)
        .unwrap();
    memory[0]
        .fill(queues.allocation().offset as usize, 8192, 0x5a)
        .unwrap();
    let gart = as_gpu
        .alloc_for(&mut sys.kernel(gpu), PoolId(3), 4096, 0)
        .unwrap();
    drop(sys);

    // alloc restarts; meanwhile client1 (gart's pool owner) died. The new life adopts gsp's
    // queues untouched and, at once, reclaims what client1's dead instance owned.
    set(&page, children::CLIENT1, 2, PdState::Running);
    let mut sys = vacant();
    let mut alloc = AllocPd::new(
        &sys.kernel(alloc_pd),
        specs(&memory),
        page.read_only(),
        Some(journal.alias()),
    );
    let mut sys = sys.with_handler(alloc_pd, &mut alloc);
    let mut bytes = vec![0u8; 8192];
    memory[0]
        .read_bytes(queues.allocation().offset as usize, &mut bytes)
        .unwrap();
    assert!(bytes.iter().all(|&b| b == 0x5a), "gsp's queues kept");
    assert_eq!(
        gart.free(&mut as_gpu, &mut sys.kernel(gpu)),
        Err(DmaError::Server(AllocError::Reclaimed))
    );
    queues.free(&mut as_gsp, &mut sys.kernel(gsp)).unwrap();
    drop(sys);
    assert_eq!(alloc.usage().map(|u| u.dma_pages), Some(0));
    alloc.server().unwrap().audit().unwrap();
}
