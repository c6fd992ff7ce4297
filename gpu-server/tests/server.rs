//! gpu-server against fake peers: RM calls recorded, DMA from real byte buffers, MMIO recorded.
//! The page tables it writes are walked with the shared MMU walker, so "mapped" means what the
//! GPU would see.
use gpu_api::*;
use gpu_server::deps::{Dma, DmaBuf, Pool, Rm};
use gpu_server::vram::Window;
use gpu_server::{ClientMaps, Config, GpuServer};
use gsp::chip::Chipset;
use gsp::fw::current::rm::{ChannelClasses, RmControl};
use gsp::mmu::{translate, PageTableMemory, Target, Translation};
use gsp::regs::{Mmio, MmioError};
use pd_core::shm::{ReadWrite, Region};
use std::collections::{BTreeMap, BTreeSet};

const DMA_BASE: u64 = 0x1_0000_0000;
const CLIENT_DMA_BASE: u64 = 0x2_0000_0000;

#[derive(Default)]
struct FakeRm {
    objects: BTreeSet<(u32, u32)>,
    controls: Vec<u32>,
    fail_class: Option<u32>,
}
impl Rm for FakeRm {
    fn rm_alloc(
        &mut self,
        client: u32,
        _parent: u32,
        object: u32,
        class: u32,
        _: &[u8],
    ) -> Result<(), GpuError> {
        if Some(class) == self.fail_class {
            return Err(GpuError::Device);
        }
        assert!(self.objects.insert((client, object)), "duplicate RM handle");
        Ok(())
    }
    fn rm_control(&mut self, _: u32, _: u32, cmd: u32, params: &mut [u8]) -> Result<(), GpuError> {
        self.controls.push(cmd);
        if cmd == u32::from(RmControl::GpfifoGetWorkSubmitToken) {
            params.copy_from_slice(&0x1_0007u32.to_le_bytes());
        }
        Ok(())
    }
    fn rm_free(&mut self, client: u32, _: u32, object: u32) -> Result<(), GpuError> {
        if client == object {
            self.objects.retain(|o| o.0 != client);
        } else {
            self.objects.remove(&(client, object));
        }
        Ok(())
    }
}

/// DMA grants from bump pointers; `live` tracks what is held.
#[derive(Default)]
struct FakeDma {
    next: u64,
    live: BTreeMap<u64, (Pool, DmaBuf)>,
}
impl Dma for FakeDma {
    fn dma_alloc(&mut self, pool: Pool, size: u64, _: u64) -> Result<DmaBuf, GpuError> {
        let off = self.next;
        self.next += size.next_multiple_of(0x1000);
        let base = if pool == Pool::Server {
            DMA_BASE
        } else {
            CLIENT_DMA_BASE
        };
        let b = DmaBuf {
            handle: off + 1,
            offset: off,
            dev_addr: base + off,
            size,
        };
        self.live.insert(b.handle, (pool, b));
        Ok(b)
    }
    fn dma_free(&mut self, _: Pool, buf: DmaBuf) -> Result<(), GpuError> {
        self.live
            .remove(&buf.handle)
            .map(|_| ())
            .ok_or(GpuError::NotFound)
    }
}

#[derive(Default)]
struct FakeMmio(Vec<(u32, u32)>);
impl Mmio for FakeMmio {
    fn read32(&mut self, _: u32) -> Result<u32, MmioError> {
        Ok(7)
    }
    fn write32(&mut self, off: u32, v: u32) -> Result<(), MmioError> {
        self.0.push((off, v));
        Ok(())
    }
}

/// The three fakes as the one peer object gpu-server talks to.
#[derive(Default)]
struct Fakes {
    rm: FakeRm,
    dma: FakeDma,
    mmio: FakeMmio,
}
impl Rm for Fakes {
    fn rm_alloc(&mut self, c: u32, p: u32, o: u32, cl: u32, b: &[u8]) -> Result<(), GpuError> {
        self.rm.rm_alloc(c, p, o, cl, b)
    }
    fn rm_control(&mut self, c: u32, o: u32, cmd: u32, b: &mut [u8]) -> Result<(), GpuError> {
        self.rm.rm_control(c, o, cmd, b)
    }
    fn rm_free(&mut self, c: u32, p: u32, o: u32) -> Result<(), GpuError> {
        self.rm.rm_free(c, p, o)
    }
}
impl Dma for Fakes {
    fn dma_alloc(&mut self, pool: Pool, size: u64, align: u64) -> Result<DmaBuf, GpuError> {
        self.dma.dma_alloc(pool, size, align)
    }
    fn dma_free(&mut self, pool: Pool, b: DmaBuf) -> Result<(), GpuError> {
        self.dma.dma_free(pool, b)
    }
}
impl Mmio for Fakes {
    fn read32(&mut self, o: u32) -> Result<u32, MmioError> {
        self.mmio.read32(o)
    }
    fn write32(&mut self, o: u32, v: u32) -> Result<(), MmioError> {
        self.mmio.write32(o, v)
    }
}

struct World {
    srv: GpuServer,
    f: Fakes,
    dma_mem: Region<ReadWrite>,
    vram_mem: Region<ReadWrite>,
    client_vram: Region<ReadWrite>,
}

fn world() -> World {
    let dma_mem = Region::from_static(vec![0u8; 8 << 20].leak());
    let vram_mem = Region::from_static(vec![0u8; 64 << 20].leak());
    let client_vram = Region::from_static(vec![0u8; 16 << 20].leak());
    let device = DeviceInfo {
        vendor: 0x10de,
        device: 0x2204,
        chipset: 0x172,
        fb_size: 24 << 30,
        vram_bar_size: 256 << 20,
        graph_units: 1,
        exec_push_max: 64,
    };
    let clients = [ClientMaps {
        vram_vaddr: 0x9000_0000,
        dma_vaddr: 0x5000_0000,
    }; 3];
    let cfg = Config {
        generation: 3,
        device,
        classes: ChannelClasses::for_chip(Chipset::GA102).unwrap(),
        dma_base: DMA_BASE,
        clients,
    };
    let srv = GpuServer::new(
        cfg,
        Window::new(0, vram_mem.alias()).unwrap(),
        [
            Some(Window::new(0x400_0000, client_vram.alias()).unwrap()),
            None,
            None,
        ],
        dma_mem.alias(),
    );
    World {
        srv,
        f: Fakes::default(),
        dma_mem,
        vram_mem,
        client_vram,
    }
}

macro_rules! ops {
    ($w:expr) => {
        $w.srv.session(&mut $w.f)
    };
}

/// The GPU's view of memory: page tables in the DMA pool, pages in VRAM.
struct GpuMem<'a>(&'a World);
impl PageTableMemory for GpuMem<'_> {
    type Error = ();
    fn read_u64(&mut self, t: Target, a: u64) -> Result<u64, ()> {
        match t {
            Target::SysCoherent => self
                .0
                .dma_mem
                .read::<u64>((a - DMA_BASE) as usize)
                .map_err(|_| ()),
            _ => Err(()),
        }
    }
}

fn root(w: &World) -> u64 {
    // The first page table the server allocated is the PD3 of the first context's VA space.
    w.f.dma
        .live
        .values()
        .filter(|(p, _)| *p == Pool::Server)
        .map(|(_, b)| b.dev_addr)
        .min()
        .unwrap()
}

#[test]
fn a_bound_bo_translates_to_its_vram_pages_and_unbinding_removes_it() {
    let mut w = world();
    let ctx = ops!(w).ctx_open(ClientId(0)).unwrap();
    assert_eq!(
        ops!(w).vm_map(ctx, None, 0x10_0000, 0, 0x1000),
        Err(GpuError::NoVaSpace)
    );
    ops!(w).vm_init(ctx, 0x4000_0000, 0x100_0000).unwrap();
    assert_eq!(
        ops!(w).vm_init(ctx, 0, 0),
        Err(GpuError::AlreadyInitialised)
    );
    let bo = ops!(w).bo_new(ctx, 2, 0x3000, 0).unwrap();
    assert_eq!((bo.size, bo.domain, bo.map_addr), (0x3000, 2, 0));
    ops!(w)
        .vm_map(ctx, Some(bo.id), 0x10_0000, 0x1000, 0x2000)
        .unwrap();
    let r = root(&w);
    let t = translate(&mut GpuMem(&w), (Target::SysCoherent, r), 0x10_0010).unwrap();
    let Translation::Mapped { target, phys, .. } = t else {
        panic!("{t:?}")
    };
    assert_eq!(target, Target::Vram);
    assert_eq!(phys % 0x1000, 0x10);
    assert!(
        translate(&mut GpuMem(&w), (Target::SysCoherent, r), 0x10_2000).is_err(),
        "range end"
    );
    assert_eq!(
        ops!(w).vm_map(ctx, Some(bo.id), 0x20_0000, 0x2000, 0x2000),
        Err(GpuError::Invalid),
        "past the BO"
    );
    ops!(w).vm_unmap(ctx, 0x10_0000, 0x1000).unwrap();
    assert!(translate(&mut GpuMem(&w), (Target::SysCoherent, r), 0x10_0000).is_err());
    assert!(translate(&mut GpuMem(&w), (Target::SysCoherent, r), 0x10_1000).is_ok());
    ops!(w).vm_map(ctx, None, 0x80_0000, 0, 0x2000).unwrap();
    assert_eq!(
        translate(&mut GpuMem(&w), (Target::SysCoherent, r), 0x80_1000).unwrap(),
        Translation::Sparse
    );
}

#[test]
fn mappable_vram_bos_come_from_the_clients_window_and_are_zeroed() {
    let mut w = world();
    let ctx = ops!(w).ctx_open(ClientId(0)).unwrap();
    w.client_vram.fill(0, 0x1000, 0xab).unwrap();
    let bo = ops!(w).bo_new(ctx, 2 | 8, 100, 0).unwrap();
    assert_eq!(
        bo.map_addr, 0x9000_0000,
        "first page of client 0's window, as the client sees it"
    );
    assert_eq!(
        w.client_vram.read::<u64>(0).unwrap(),
        0,
        "zeroed before it was handed out"
    );
    let other = ops!(w).ctx_open(ClientId(1)).unwrap();
    assert_eq!(
        ops!(w).bo_new(other, 2 | 8, 100, 0),
        Err(GpuError::NoMemory),
        "client 1 has no window here"
    );
    let gart = ops!(w).bo_new(ctx, 4, 0x2000, 0).unwrap();
    assert_eq!((gart.domain, gart.map_addr >= 0x5000_0000), (4, true));
    assert_eq!(ops!(w).bo_new(ctx, 0x10, 0x1000, 0), Err(GpuError::Invalid));
    assert_eq!(ops!(w).bo_new(ctx, 2, 0, 0), Err(GpuError::Invalid));
    assert_eq!(ops!(w).bo_new(ctx, 2, 0x1000, 3), Err(GpuError::Invalid));
}

#[test]
fn exec_fills_the_ring_and_rings_the_doorbell_and_the_fence_follows_the_semaphore() {
    let mut w = world();
    let ctx = ops!(w).ctx_open(ClientId(0)).unwrap();
    assert_eq!(ops!(w).channel_alloc(ctx), Err(GpuError::NoVaSpace));
    ops!(w).vm_init(ctx, 0x4000_0000, 0x100_0000).unwrap();
    let ch = ops!(w).channel_alloc(ctx).unwrap();
    let pushes = [Push {
        va: 0x10_0000,
        len: 64,
        flags: 0,
    }; 3];
    let job = ops!(w).exec(ctx, ch, &pushes).unwrap();
    let f = job.fence;
    assert_eq!(f.seqno, 1);
    assert!(!job.done, "the GPU has not run it by the time exec returns");
    assert_eq!(
        w.f.mmio.0.last(),
        Some(&(0x81_0090, 0x1_0007)),
        "doorbell with the channel's token"
    );
    assert!(
        !ops!(w).fence_signaled(ctx, f).unwrap(),
        "the GPU has not run it"
    );
    assert!(ops!(w).bo_busy(ctx, BoId(99)).is_err());
    // The GPU releases the semaphore: find the fence page (the 4th kernel object) in VRAM by
    // scanning for the segment's SEMAPHOREB address and write seqno there — simpler: every kernel
    // object is in the general window, the fence page is the one whose first word is 0 and which
    // the kernel segment points at. Read the segment back from the push page instead.
    let ring: Vec<u64> = (0..4)
        .map(|i| w.vram_mem.read::<u64>(0x2000 + i * 8).unwrap())
        .collect();
    assert_eq!(ring[0] & 0xffff_fffc, 0x10_0000);
    assert_eq!((ring[0] >> 42) & 0x1f_ffff, 16, "64 bytes = 16 dwords");
    assert_eq!((ring[3] >> 42) & 0x1f_ffff, 5, "the kernel fence segment");
    // USERD (2nd kernel object, FB 0x1000) holds GPPut = 4 entries.
    assert_eq!(w.vram_mem.read::<u32>(0x1000 + 0x8c).unwrap(), 4);
    // The fence page is the 4th kernel object at FB 0x3000; the GPU writes the seqno there.
    w.vram_mem.write(0x3000, &1u32).unwrap();
    assert!(ops!(w).fence_signaled(ctx, f).unwrap());
    // A GPU that is done before exec returns: the reply says so (here the semaphore is
    // released ahead, as the model does during the doorbell write).
    w.vram_mem.write(0x3000, &2u32).unwrap();
    let job = ops!(w).exec(ctx, ch, &pushes).unwrap();
    assert_eq!((job.fence.seqno, job.done), (2, true));
    assert_eq!(
        ops!(w).fence_signaled(ctx, Fence { chan: ch, seqno: 9 }),
        Err(GpuError::Invalid),
        "never submitted"
    );
    assert_eq!(
        ops!(w).exec(
            ctx,
            ch,
            &[Push {
                va: 0x10_0000,
                len: 6,
                flags: 0
            }]
        ),
        Err(GpuError::Invalid),
        "not dwords"
    );
    assert_eq!(
        ops!(w).exec(ctx, ChanId(4), &pushes),
        Err(GpuError::NotFound)
    );
}

#[test]
fn closing_a_context_frees_everything_it_owned_and_nothing_else() {
    let mut w = world();
    let keep = ops!(w).ctx_open(ClientId(1)).unwrap();
    ops!(w).vm_init(keep, 0x4000_0000, 0x100_0000).unwrap();
    let kept_bo = ops!(w).bo_new(keep, 2, 0x1000, 0).unwrap();
    let vram_before = w.srv.vram_used();
    let rm_before = w.f.rm.objects.len();
    let dma_before = w.f.dma.live.len();

    let ctx = ops!(w).ctx_open(ClientId(0)).unwrap();
    ops!(w).vm_init(ctx, 0x4000_0000, 0x100_0000).unwrap();
    let bo = ops!(w).bo_new(ctx, 2 | 8, 0x4000, 0).unwrap();
    ops!(w).bo_new(ctx, 4, 0x4000, 0).unwrap();
    ops!(w)
        .vm_map(ctx, Some(bo.id), 0x10_0000, 0, 0x4000)
        .unwrap();
    ops!(w).channel_alloc(ctx).unwrap();
    assert!(w.srv.vram_used() > vram_before);
    ops!(w).ctx_close(ctx).unwrap();

    assert_eq!(w.srv.vram_used(), vram_before, "VRAM back");
    assert_eq!(w.f.rm.objects.len(), rm_before, "RM tree gone");
    assert_eq!(
        w.f.dma.live.len(),
        dma_before,
        "DMA buffers and page tables back"
    );
    assert_eq!(ops!(w).ctx_close(ctx), Err(GpuError::NotFound));
    assert_eq!(
        ops!(w).bo_busy(keep, kept_bo.id),
        Ok(false),
        "the other context is intact"
    );
    assert_eq!(w.srv.contexts(), 1);
}

#[test]
fn ids_from_another_generation_are_context_lost_and_rm_failures_roll_back() {
    let mut w = world();
    let stale = CtxId(2 << 24 | 1 << 8);
    assert_eq!(
        ops!(w).bo_new(stale, 2, 0x1000, 0),
        Err(GpuError::ContextLost)
    );
    w.f.rm.fail_class = Some(0x2080);
    assert_eq!(ops!(w).ctx_open(ClientId(0)), Err(GpuError::Device));
    assert!(w.f.rm.objects.is_empty(), "half-built RM tree freed");
    w.f.rm.fail_class = Some(0xc56f);
    let ctx = ops!(w).ctx_open(ClientId(0)).unwrap();
    ops!(w).vm_init(ctx, 0x4000_0000, 0x100_0000).unwrap();
    let vram = w.srv.vram_used();
    let non_table = |w: &World| w.f.dma.live.len() - w.srv.table_pages();
    let dma = non_table(&w);
    assert_eq!(ops!(w).channel_alloc(ctx), Err(GpuError::Device));
    // Page tables created for the kernel mappings stay with the VA space until it goes.
    assert_eq!(
        (w.srv.vram_used(), non_table(&w)),
        (vram, dma),
        "channel objects given back"
    );
}

/// Two clients' worth of everything that holds DMA memory: contexts with page tables, channels
/// (method buffers, VRAM kernel objects), GART and VRAM BOs.
fn busy(w: &mut World) {
    for client in [ClientId(0), ClientId(1)] {
        let ctx = ops!(w).ctx_open(client).unwrap();
        ops!(w).vm_init(ctx, 0x4000_0000, 0x100_0000).unwrap();
        let gart = ops!(w).bo_new(ctx, 4, 0x4000, 0).unwrap();
        ops!(w)
            .vm_map(ctx, Some(gart.id), 0x10_0000, 0, 0x4000)
            .unwrap();
        ops!(w).bo_new(ctx, 2, 0x2000, 0).unwrap();
        ops!(w).channel_alloc(ctx).unwrap();
    }
}

#[test]
fn starting_over_after_the_rm_objects_are_gone_gives_every_dma_buffer_back() {
    let mut w = world();
    busy(&mut w);
    let held = w.f.dma.live.len();
    let mut pools: Vec<Pool> = w.f.dma.live.values().map(|(p, _)| *p).collect();
    pools.dedup();
    for pool in [
        Pool::Server,
        Pool::Client(ClientId(0)),
        Pool::Client(ClientId(1)),
    ] {
        assert!(pools.contains(&pool), "{pool:?} in use");
    }
    assert!(w.srv.table_pages() > 0 && w.srv.vram_used() > 0);
    let rm_calls = w.f.rm.objects.len();

    // The GSP firmware was booted again: RM objects are gone; the server starts over.
    let released = w.srv.release(&mut w.f);
    assert_eq!(
        released,
        gpu_server::Released {
            freed: held as u32,
            refused: 0
        }
    );
    assert!(
        w.f.dma.live.is_empty(),
        "alloc-server holds nothing for gpu"
    );
    assert_eq!(
        (w.srv.contexts(), w.srv.table_pages(), w.srv.vram_used()),
        (0, 0, 0)
    );
    assert_eq!(
        w.f.rm.objects.len(),
        rm_calls,
        "no RM call for dead objects"
    );

    // A new server on the same alloc-server, doing the same work, holds the same again: over
    // any number of restarts nothing piles up.
    let f = std::mem::take(&mut w.f);
    let mut w2 = world();
    w2.f = f;
    w2.f.rm.objects.clear();
    busy(&mut w2);
    assert_eq!(w2.f.dma.live.len(), held);
}

#[test]
fn a_buffer_alloc_server_refuses_to_free_is_counted_and_the_rest_still_freed() {
    let mut w = world();
    busy(&mut w);
    let held = w.f.dma.live.len();
    // alloc-server no longer knows one of them (e.g. reclaimed it already).
    let gone = *w.f.dma.live.keys().next().unwrap();
    w.f.dma.live.remove(&gone);
    let released = w.srv.release(&mut w.f);
    assert_eq!((released.freed, released.refused), (held as u32 - 1, 1));
    assert!(w.f.dma.live.is_empty());
}

#[test]
fn usage_counts_the_vram_pages_held_and_leaves_dma_to_alloc_server() {
    let mut w = world();
    assert_eq!(w.srv.usage(), pd_core::Usage::default());
    let ctx = ops!(w).ctx_open(ClientId(0)).unwrap();
    ops!(w).vm_init(ctx, 0x4000_0000, 0x100_0000).unwrap();
    let bo = ops!(w).bo_new(ctx, 2, 0x3000, 0).unwrap();
    ops!(w).bo_new(ctx, 4, 0x4000, 0).unwrap();
    let u = w.srv.usage();
    assert_eq!(
        (u.vram_pages, u.dma_pages),
        (3, 0),
        "the VRAM BO; GART is DMA"
    );
    ops!(w).channel_alloc(ctx).unwrap();
    let with_chan = w.srv.usage().vram_pages;
    assert!(with_chan > 3, "a channel's kernel objects are VRAM");
    ops!(w).bo_free(ctx, bo.id).unwrap();
    assert_eq!(w.srv.usage().vram_pages, with_chan - 3);
    ops!(w).ctx_close(ctx).unwrap();
    assert_eq!(w.srv.usage(), pd_core::Usage::default());
}

#[test]
fn closing_every_context_after_a_drm_restart_frees_all_but_the_servers_own() {
    let mut w = world();
    let before = (w.f.dma.live.len(), w.f.rm.objects.len(), w.srv.vram_used());
    busy(&mut w);
    assert_eq!(w.srv.contexts(), 2);
    assert!(w.f.dma.live.len() > before.0 && w.srv.vram_used() > before.2);
    // drm restarted: its files, and every context behind them, are gone.
    assert_eq!(w.srv.session(&mut w.f).close_all(), 2);
    assert_eq!(w.srv.contexts(), 0);
    assert_eq!(w.srv.vram_used(), before.2, "every BO's VRAM back");
    assert_eq!(w.srv.usage().vram_pages, 0);
    assert_eq!(
        w.f.rm.objects.len(),
        before.1,
        "RM objects freed (RM is alive)"
    );
    // Page tables went with their VA spaces: alloc-server holds nothing for gpu.
    assert_eq!((w.f.dma.live.len(), w.srv.table_pages()), (0, 0));
    // Nothing left to close the second time.
    assert_eq!(w.srv.session(&mut w.f).close_all(), 0);
}
