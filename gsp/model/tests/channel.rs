//! A channel end to end through RPCs: RM objects, the driver's own page tables (MMU v2 in
//! VRAM), a copy submitted through the GPFIFO lands at the right physical pages and releases its
//! semaphore; an invalid PTE becomes MMU_FAULT_QUEUED + RC_TRIGGERED events, not a model crash.
mod common;

use common::{Driver, Seen, SYS_BASE};
use gsp::chip::Chipset;
use gsp::fw::current::rm::{
    copy, host, rc, ChannelClasses, RmControl, ADDR_FBMEM, ADDR_SYSMEM,
    NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS, NV2080_ENGINE_TYPE_COPY0,
    NVB0B5_ALLOCATION_PARAMETERS, NV_CHANNEL_ALLOC_PARAMS, NV_MEMORY_DESC_PARAMS,
    NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED, NV_VASPACE_ALLOCATION_PARAMETERS,
};
use gsp::mmu::{DualPde, Level, PageSize, Pde, Pte, PteFlags, Target};
use gsp::rpc::{RmAlloc, RmControl as Ctrl, RpcError};
use host::{GpEntry, MethodHeader, SecOp};
use zerocopy::{FromZeros, IntoBytes};

const CLIENT: u32 = 0xc100_0042;
const DEVICE: u32 = 0xde00_0001;
const SUBDEV: u32 = 0x5d00_0001;
const VAS: u32 = 0x9af1_0001;
const CHAN: u32 = 0xc0c0_0001;
const CE: u32 = 0xce00_0001;
const USERMODE: u32 = 0x0c61_0001;

const PD3: u64 = 0x10_0000;
const PT: u64 = 0x10_4000;
const USERD: u64 = 0x20_1000;
const VA_GPFIFO: u64 = 0x1000_0000;
const VA_PUSH: u64 = 0x1000_1000;
const VA_SEM: u64 = 0x1000_2000;
const VA_SRC: u64 = 0x1000_4000;
const VA_DST: u64 = 0x1001_0000;

struct Gpu {
    d: Driver,
    token: u32,
    /// Bus addresses of the sysmem pages: GPFIFO, push buffer, semaphore, src page 0, src page 1.
    sys: [u64; 5],
    put: u32,
}

fn alloc(
    d: &mut Driver,
    parent: u32,
    object: u32,
    class: u32,
    params: &[u8],
) -> Result<(), RpcError> {
    let (rpc, mut dev, mut clock, sink) = d.call_parts();
    let cmd = RmAlloc {
        h_client: CLIENT,
        h_parent: parent,
        h_object: object,
        h_class: class,
        flags: 0,
        params,
    };
    let mut out = vec![0u8; params.len()];
    rpc.rm(&cmd, &mut out, &mut dev, &mut clock, sink)
}

fn control(d: &mut Driver, object: u32, cmd: RmControl, params: &mut [u8]) -> Result<(), RpcError> {
    let (rpc, mut dev, mut clock, sink) = d.call_parts();
    let input = params.to_vec();
    let c = Ctrl {
        h_client: CLIENT,
        h_object: object,
        cmd: cmd.into(),
        flags: 0,
        params: &input,
    };
    rpc.rm(&c, params, &mut dev, &mut clock, sink)
}

fn fb_write(d: &Driver, addr: u64, v: u64) {
    d.dev
        .0
        .borrow()
        .mem
        .write(Target::Vram, addr, &v.to_le_bytes())
        .unwrap();
}

impl Gpu {
    fn map(&self, va: u64, target: Target, pa: u64) {
        let pte = Pte::page(target, pa, PageSize::K4, PteFlags::default()).unwrap();
        fb_write(&self.d, PT + Level::PtSmall.entry_offset(va), pte.0);
    }

    fn new(chip: Chipset) -> Self {
        let mut d = Driver::new(chip);
        d.boot();
        let classes = ChannelClasses::for_chip(chip).unwrap();
        let mut client = gsp::fw::current::rm::NV0000_ALLOC_PARAMETERS::new_zeroed();
        client.hClient = CLIENT;
        alloc(&mut d, 0, CLIENT, 0x41, client.as_bytes()).unwrap();
        alloc(
            &mut d,
            CLIENT,
            DEVICE,
            0x80,
            gsp::fw::current::rm::NV0080_ALLOC_PARAMETERS::new_zeroed().as_bytes(),
        )
        .unwrap();
        alloc(&mut d, DEVICE, SUBDEV, 0x2080, &[0; 4]).unwrap();
        alloc(&mut d, SUBDEV, USERMODE, classes.usermode.into(), &[]).unwrap();
        let mut vas = NV_VASPACE_ALLOCATION_PARAMETERS::new_zeroed();
        vas.flags = NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED;
        alloc(&mut d, DEVICE, VAS, 0x90f1, vas.as_bytes()).unwrap();

        // Page tables in VRAM: PD3 -> PD2 -> PD1 -> PD0 -> 4 KiB PT for VA 0x1000_0000..+2 MiB.
        let va = VA_GPFIFO;
        fb_write(
            &d,
            PD3 + Level::Pd3.entry_offset(va),
            Pde::table(Target::Vram, PD3 + 0x1000).unwrap().0,
        );
        fb_write(
            &d,
            PD3 + 0x1000 + Level::Pd2.entry_offset(va),
            Pde::table(Target::Vram, PD3 + 0x2000).unwrap().0,
        );
        fb_write(
            &d,
            PD3 + 0x2000 + Level::Pd1.entry_offset(va),
            Pde::table(Target::Vram, PD3 + 0x3000).unwrap().0,
        );
        let dual = DualPde::tables(None, Some((Target::Vram, PT))).unwrap();
        fb_write(&d, PD3 + 0x3000 + Level::Pd0.entry_offset(va), dual.big);
        fb_write(
            &d,
            PD3 + 0x3000 + Level::Pd0.entry_offset(va) + 8,
            dual.small,
        );
        let mut pd = NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS {
            physAddress: PD3,
            numEntries: 4,
            flags: 0,
            hVASpace: VAS,
            chId: 0,
            subDeviceId: 0,
            pasid: 0,
        };
        control(
            &mut d,
            DEVICE,
            RmControl::DmaSetPageDirectory,
            pd.as_mut_bytes(),
        )
        .unwrap();

        let mut sys = [0u64; 5];
        for s in &mut sys {
            *s = d.dma.alloc(0x1000, 0x1000).0;
        }
        let (mthd, _) = d.dma.alloc(0x1000, 0x1000);
        let mut ch = NV_CHANNEL_ALLOC_PARAMS::new_zeroed();
        ch.hVASpace = VAS;
        ch.gpFifoOffset = VA_GPFIFO;
        ch.gpFifoEntries = 512;
        ch.engineType = NV2080_ENGINE_TYPE_COPY0;
        let fb = |base, size| NV_MEMORY_DESC_PARAMS {
            base,
            size,
            addressSpace: ADDR_FBMEM,
            cacheAttrib: 1,
        };
        ch.instanceMem = fb(0x20_0000, 0x1000);
        ch.ramfcMem = fb(0x20_0000, 0x200);
        ch.userdMem = fb(USERD, 0x200);
        ch.mthdbufMem = NV_MEMORY_DESC_PARAMS {
            base: mthd,
            size: 0x1000,
            addressSpace: ADDR_SYSMEM,
            cacheAttrib: 0,
        };
        alloc(&mut d, DEVICE, CHAN, classes.channel.into(), ch.as_bytes()).unwrap();
        let ce = NVB0B5_ALLOCATION_PARAMETERS {
            version: 1,
            engineType: NV2080_ENGINE_TYPE_COPY0,
        };
        alloc(&mut d, CHAN, CE, classes.copy.into(), ce.as_bytes()).unwrap();
        control(
            &mut d,
            CHAN,
            RmControl::Bind,
            &mut NV2080_ENGINE_TYPE_COPY0.to_le_bytes(),
        )
        .unwrap();
        control(&mut d, CHAN, RmControl::GpfifoSchedule, &mut [1, 0]).unwrap();
        let mut tok = [0u8; 4];
        control(&mut d, CHAN, RmControl::GpfifoGetWorkSubmitToken, &mut tok).unwrap();

        let g = Self {
            d,
            token: u32::from_le_bytes(tok),
            sys,
            put: 0,
        };
        g.map(VA_GPFIFO, Target::SysCoherent, sys[0]);
        g.map(VA_PUSH, Target::SysCoherent, sys[1]);
        g.map(VA_SEM, Target::SysNonCoherent, sys[2]);
        g.map(VA_SRC, Target::SysCoherent, sys[3]);
        g.map(VA_SRC + 0x1000, Target::SysCoherent, sys[4]);
        // Destination: two discontiguous VRAM pages, the second in the other VRAM region.
        g.map(VA_DST, Target::Vram, 0x30_0000);
        g.map(VA_DST + 0x1000, Target::Vram, 0x100_2000);
        g
    }

    fn sys_write(&self, bus: u64, bytes: &[u8]) {
        self.d
            .dma
            .region
            .write_bytes((bus - SYS_BASE) as usize, bytes)
            .unwrap();
    }

    /// Submit `pb` as the next GPFIFO entry and ring the doorbell.
    fn submit(&mut self, pb: &[u32]) {
        let bytes: Vec<u8> = pb.iter().flat_map(|d| d.to_le_bytes()).collect();
        self.sys_write(self.sys[1], &bytes);
        let e = GpEntry {
            va: VA_PUSH,
            dwords: pb.len() as u32,
            sync_wait: false,
        }
        .encode();
        self.sys_write(self.sys[0] + u64::from(self.put) * 8, &e.to_le_bytes());
        self.put += 1;
        self.d
            .dev
            .0
            .borrow()
            .mem
            .write_u32(Target::Vram, USERD + host::USERD_GP_PUT, self.put)
            .unwrap();
        use gsp::regs::Mmio;
        self.d.dev.write32(0x81_0090, self.token).unwrap();
    }

    fn poll(&mut self) {
        let (rpc, _, _, sink) = self.d.call_parts();
        rpc.poll(sink).unwrap();
    }
}

fn inc(sub: u8, mthd: u32, data: &[u32]) -> Vec<u32> {
    let mut v = vec![MethodHeader::encode(
        SecOp::IncMethod,
        sub,
        mthd,
        data.len() as u32,
    )];
    v.extend_from_slice(data);
    v
}

fn copy_pb(class: u32, src: u64, dst: u64, len: u32, payload: u32) -> Vec<u32> {
    let mut pb = inc(4, host::SET_OBJECT, &[class]);
    pb.extend(inc(
        4,
        copy::OFFSET_IN_UPPER,
        &[
            (src >> 32) as u32,
            src as u32,
            (dst >> 32) as u32,
            dst as u32,
        ],
    ));
    pb.extend(inc(4, copy::LINE_LENGTH_IN, &[len]));
    pb.extend(inc(
        4,
        copy::SET_SEMAPHORE_A,
        &[(VA_SEM >> 32) as u32, VA_SEM as u32, payload],
    ));
    let launch = 2
        | copy::LAUNCH_SRC_LAYOUT_PITCH
        | copy::LAUNCH_DST_LAYOUT_PITCH
        | (1 << copy::LAUNCH_SEMAPHORE_TYPE_SHIFT);
    pb.extend(inc(4, copy::LAUNCH_DMA, &[launch]));
    pb
}

#[test]
fn a_copy_lands_at_the_right_physical_pages_on_each_chip() {
    for chip in [Chipset::TU102, Chipset::GA102, Chipset::AD102] {
        let mut g = Gpu::new(chip);
        let class: u32 = ChannelClasses::for_chip(chip).unwrap().copy.into();
        let data: Vec<u8> = (0..0x2000u32)
            .map(|i| (i * 13 + u32::from(chip)) as u8)
            .collect();
        g.sys_write(g.sys[3], &data[..0x1000]);
        g.sys_write(g.sys[4], &data[0x1000..]);
        // 0x1800 bytes from src+0x400: ends inside the second page on both sides.
        g.submit(&copy_pb(
            class,
            VA_SRC + 0x400,
            VA_DST + 0x400,
            0x1800,
            0x7777,
        ));
        let m = g.d.model();
        let mut got = vec![0u8; 0xc00];
        m.mem.read(Target::Vram, 0x30_0400, &mut got).unwrap();
        assert_eq!(got, data[0x400..0x1000], "{chip:?} first page");
        let mut got = vec![0u8; 0xc00];
        m.mem.read(Target::Vram, 0x100_2000, &mut got).unwrap();
        assert_eq!(got, data[0x1000..0x1c00], "{chip:?} second page");
        assert_eq!(
            m.mem.read_u32(Target::Vram, 0x100_2c00),
            Ok(0),
            "{chip:?} no overrun"
        );
        let sem = u32::from_le_bytes(g.d.dma.region.read((g.sys[2] - SYS_BASE) as usize).unwrap());
        assert_eq!(sem, 0x7777);
        assert_eq!(
            m.mem.read_u32(Target::Vram, USERD + host::USERD_GP_GET),
            Ok(1)
        );
    }
}

#[test]
fn an_invalid_pte_is_an_mmu_fault_event_not_a_crash() {
    let mut g = Gpu::new(Chipset::GA102);
    let class: u32 = ChannelClasses::for_chip(Chipset::GA102)
        .unwrap()
        .copy
        .into();
    // Destination 0x1005_0000 was never mapped.
    g.submit(&copy_pb(class, VA_SRC, 0x1005_0000, 0x100, 1));
    g.poll();
    assert!(g.d.sink.0.contains(&Seen::MmuFault), "{:?}", g.d.sink.0);
    assert!(g.d.sink.0.contains(&Seen::Rc {
        chid: 0,
        xid: rc::FIFO_ERROR_MMU_ERR_FLT,
        addr: 0x1005_0000
    }));
    // The model still answers RPCs.
    let (rpc, mut dev, mut clock, sink) = g.d.call_parts();
    assert!(rpc.get_static_info(&mut dev, &mut clock, sink).is_ok());
}

#[test]
fn an_unknown_method_raises_an_rc_error() {
    let mut g = Gpu::new(Chipset::TU102);
    let class: u32 = ChannelClasses::for_chip(Chipset::TU102)
        .unwrap()
        .copy
        .into();
    let mut pb = inc(4, host::SET_OBJECT, &[class]);
    pb.extend(inc(4, 0x0abc, &[1]));
    g.submit(&pb);
    g.poll();
    assert!(
        g.d.sink.0.contains(&Seen::Rc {
            chid: 0,
            xid: rc::CE0_ERROR,
            addr: 0
        }),
        "{:?}",
        g.d.sink.0
    );
}

#[test]
fn rm_errors_come_back_as_nv_status() {
    let mut g = Gpu::new(Chipset::AD102);
    // Duplicate handle, bad parent, bad class.
    let dev = gsp::fw::current::rm::NV0080_ALLOC_PARAMETERS::new_zeroed();
    assert_eq!(
        alloc(&mut g.d, CLIENT, DEVICE, 0x80, dev.as_bytes()),
        Err(RpcError::Failed { status: 0x19 })
    );
    assert_eq!(
        alloc(&mut g.d, 0x7777, 0x8888, 0x2080, &[0; 4]),
        Err(RpcError::Failed { status: 0x36 })
    );
    assert_eq!(
        alloc(&mut g.d, DEVICE, 0x8888, 0xbeef, &[]),
        Err(RpcError::Failed { status: 0x22 })
    );
    // FREE of the device takes the channel with it.
    let (rpc, mut d, mut c, sink) = g.d.call_parts();
    rpc.rm(
        &gsp::rpc::RmFree {
            h_client: CLIENT,
            h_parent: 0,
            h_object: DEVICE,
        },
        &mut [],
        &mut d,
        &mut c,
        sink,
    )
    .unwrap();
    assert!(g.d.model().rm.object(CLIENT, CHAN).is_none());
    assert!(g.d.model().rm.channels.iter().all(Option::is_none));
    assert_eq!(
        control(&mut g.d, CHAN, RmControl::GpfifoSchedule, &mut [1, 0]),
        Err(RpcError::Failed { status: 0x33 })
    );
}
