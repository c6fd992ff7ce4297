//! The driver side of the boot, written with the gsp crate's own building blocks (registers,
//! FB layout, radix3, LibOS/RMARGS writers, message queues, RPC codec), step by step so a test
//! can deviate at any step. This is what `gsp::boot` does in order (reference section 1); the
//! model must accept exactly this and refuse deviations.
#![allow(dead_code)]

use gsp::chip::Chipset;
use gsp::cmdq::{SharedQueues, Side, QUEUE_REGION_SIZE};
use gsp::elf::GspImage;
use gsp::fb::{self, FbLayout, LayoutInput, WprSysmem};
use gsp::fw::current::args::write_rmargs;
use gsp::fw::current::libos::{init_log_buffer, write_libos_args, LibosRegions, LOG_BUFFER_SIZE};
use gsp::fw::current::rpc::MsgFunction;
use gsp::fw::current::sequencer::rpc_run_cpu_sequencer_v17_00;
use gsp::fw::current::sequencer::GSP_SEQ_BUF_OPCODE;
use gsp::radix3::{self, Contiguous};
use gsp::regs::{self, Falcon, Falcon2, Mmio, MmioError};
use gsp::rpc::{
    self, Clock, Event, EventSink, RegistryConvention, Rpc, SetRegistry, SetSystemInfo,
};
use gsp_model::phys::{FbLayout as ModelFb, Memory};
use gsp_model::{fwimage, GspModel, ModelConfig};
use pd_core::shm::{ReadWrite, Region};
use std::cell::RefCell;
use std::rc::Rc;
use zerocopy::FromBytes;

/// Bus address of the driver's DMA pool.
pub const SYS_BASE: u64 = 0x2_0000_0000;
/// Its size.
pub const SYS_SIZE: usize = 24 << 20;
/// FB size the model reports.
pub const FB_SIZE: u64 = 24 << 30;
/// Bytes of the synthetic `.fwimage`.
pub const IMAGE_LEN: usize = 0x12_3456;
/// Bytes of the (synthetic) bootloader ucode.
pub const BOOTLOADER_LEN: u64 = 0x5000;
/// The app_version the driver writes to FALCON_OS.
pub const APP_VERSION: u32 = 0x0057_0144;

/// The model, shared between the driver's `Mmio` and its `Clock` (as in hosted mode, where both
/// go through the model PD).
pub type Shared = Rc<RefCell<GspModel<'static>>>;

/// The driver's access to the device: registers, and a clock whose delays let the device run.
#[derive(Clone)]
pub struct Dev(pub Shared);

impl Mmio for Dev {
    fn read32(&mut self, offset: u32) -> Result<u32, MmioError> {
        self.0.borrow_mut().read32(offset)
    }
    fn write32(&mut self, offset: u32, value: u32) -> Result<(), MmioError> {
        self.0.borrow_mut().write32(offset, value)
    }
}

impl Clock for Dev {
    fn now_ns(&mut self) -> u64 {
        let mut m = self.0.borrow_mut();
        let t = m.bar.now_ns + 1_000;
        m.tick(t);
        t
    }
    fn delay_us(&mut self, us: u32) {
        let mut m = self.0.borrow_mut();
        let t = m.bar.now_ns + u64::from(us) * 1_000;
        m.tick(t);
        // Waiting drivers poll the GSP's interrupt status: that is when the model runs.
        let _ = m.read32(regs::NV_PFALCON_FALCON_IRQSTAT::offset(Falcon::Gsp));
    }
}

/// What the driver saw arrive besides the replies it waited for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    InitDone,
    Sequencer(Vec<u8>),
    Rc { chid: u32, xid: u32, addr: u64 },
    MmuFault,
    OsErrorLog(String),
    PostEvent(u32),
    Unexpected(u32),
    Other,
}

/// An event sink that records.
#[derive(Default, Debug)]
pub struct Sink(pub Vec<Seen>);

impl EventSink for Sink {
    fn event(&mut self, e: Event<'_>) {
        self.0.push(match e {
            Event::InitDone => Seen::InitDone,
            Event::RunCpuSequencer(p) => Seen::Sequencer(p.to_vec()),
            Event::RcTriggered { header, .. } => Seen::Rc {
                chid: header.chid,
                xid: header.exceptType,
                addr: u64::from(header.mmuFaultAddrHi) << 32 | u64::from(header.mmuFaultAddrLo),
            },
            Event::MmuFaultQueued => Seen::MmuFault,
            Event::OsErrorLog { message, .. } => {
                Seen::OsErrorLog(String::from_utf8_lossy(message).into())
            }
            Event::PostEvent { header, .. } => Seen::PostEvent(header.hClient),
            Event::Unexpected { rpc } => Seen::Unexpected(rpc.function),
            _ => Seen::Other,
        });
    }
}

/// A bump allocator over the driver's DMA pool (a view of the same memory the model reaches).
pub struct Dma {
    pub region: Region<ReadWrite>,
    next: usize,
}

impl Dma {
    /// `len` bytes aligned to `align`: (bus address, view).
    pub fn alloc(&mut self, len: usize, align: usize) -> (u64, Region<ReadWrite>) {
        let at = self.next.next_multiple_of(align);
        self.next = at + len;
        (
            SYS_BASE + at as u64,
            self.region.subregion(at, len).expect("DMA pool exhausted"),
        )
    }
}

fn leak(len: usize) -> Region<ReadWrite> {
    Region::from_static(vec![0u8; len].leak())
}

/// A synthetic firmware image, 8-byte aligned.
pub fn image() -> &'static [u8] {
    let words: &'static mut [u64] = vec![0u64; fwimage::file_size(IMAGE_LEN).div_ceil(8)].leak();
    let bytes = zerocopy::IntoBytes::as_mut_bytes(words);
    let n = fwimage::build(bytes, IMAGE_LEN).unwrap();
    &bytes[..n]
}

/// A model of `chip` with 24 GiB reported, 16 + 8 MiB of VRAM backed and the DMA pool mapped.
pub fn model(chip: Chipset) -> (Shared, Dma) {
    let mut mem = Memory::new(ModelFb {
        reported_size: FB_SIZE,
    });
    mem.add_vram(leak(16 << 20)).unwrap();
    mem.add_vram(leak(8 << 20)).unwrap();
    let pool = leak(SYS_SIZE);
    mem.sys.add(SYS_BASE, pool.alias()).unwrap();
    let buf: &'static mut [u8] = vec![0u8; 1 << 20].leak();
    let m = GspModel::new(ModelConfig::new(chip), mem, image(), buf);
    (
        Rc::new(RefCell::new(m)),
        Dma {
            region: pool,
            next: 0,
        },
    )
}

/// The PCI facts for GSP_SET_SYSTEM_INFO, as the model's identity has them.
pub fn sysinfo(m: &Shared) -> rpc::SystemInfoParams {
    let pci = m.borrow().config().pci;
    rpc::SystemInfoParams {
        vendor: pci.vendor,
        device: pci.device,
        subsystem_vendor: pci.subsystem_vendor,
        subsystem_device: pci.subsystem_device,
        revision: pci.revision,
        ..Default::default()
    }
}

/// The driver: every boot step as a method.
pub struct Driver {
    pub chip: Chipset,
    pub dev: Dev,
    pub dma: Dma,
    pub rpc: Option<Rpc<'static>>,
    pub sink: Sink,
    pub layout: Option<FbLayout>,
    pub meta_addr: u64,
    pub libos_addr: u64,
}

impl Driver {
    pub fn new(chip: Chipset) -> Self {
        let (m, dma) = model(chip);
        Self::with(chip, Dev(m), dma)
    }

    /// A fresh driver for an existing device (after the previous one went away).
    pub fn with(chip: Chipset, dev: Dev, dma: Dma) -> Self {
        Self {
            chip,
            dev,
            dma,
            rpc: None,
            sink: Sink::default(),
            layout: None,
            meta_addr: 0,
            libos_addr: 0,
        }
    }

    pub fn model(&self) -> std::cell::RefMut<'_, GspModel<'static>> {
        self.dev.0.borrow_mut()
    }

    /// Step 1: BOOT_0/BOOT_42 name the chip.
    pub fn identify(&mut self) -> Chipset {
        let b0 = regs::NV_PMC_BOOT_0::read(&mut self.dev).unwrap();
        let b42 = regs::NV_PMC_BOOT_42::read(&mut self.dev).unwrap();
        Chipset::identify(b0, b42).unwrap()
    }

    /// Step 2: GFW boot complete and readable.
    pub fn gfw_done(&mut self) -> bool {
        regs::NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_PRIV_LEVEL_MASK::read(&mut self.dev)
            .unwrap()
            .read_protection_level0()
            && regs::NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_0_GFW_BOOT::read(&mut self.dev)
                .unwrap()
                .completed()
    }

    /// Step 3: the sysmem flush page.
    pub fn flush_page(&mut self) {
        let (addr, _) = self.dma.alloc(0x1000, 0x1000);
        regs::write_sysmem_flush_page(&mut self.dev, self.chip, addr).unwrap();
    }

    pub fn reset_falcon(&mut self, f: Falcon) {
        regs::NV_PFALCON_FALCON_ENGINE::default()
            .set(|w| w.reset(true))
            .unwrap()
            .write(&mut self.dev, f)
            .unwrap();
        regs::NV_PFALCON_FALCON_ENGINE::default()
            .write(&mut self.dev, f)
            .unwrap();
    }

    pub fn start_falcon(&mut self, f: Falcon) {
        regs::NV_PFALCON_FALCON_CPUCTL::default()
            .set(|w| w.startcpu(true))
            .unwrap()
            .write(&mut self.dev, f)
            .unwrap();
    }

    pub fn mailboxes(&mut self, f: Falcon, addr: u64) {
        regs::NV_PFALCON_FALCON_MAILBOX0::from_raw(addr as u32)
            .write(&mut self.dev, f)
            .unwrap();
        regs::NV_PFALCON_FALCON_MAILBOX1::from_raw((addr >> 32) as u32)
            .write(&mut self.dev, f)
            .unwrap();
    }

    /// Step 7: the FB layout from what the device reports.
    pub fn layout(&mut self) -> FbLayout {
        let fb_size = fb::read_fb_size(&mut self.dev, self.chip).unwrap();
        let vga = fb::read_vga_workspace(&mut self.dev, self.chip).unwrap();
        let input = LayoutInput {
            chip: self.chip,
            fb_size,
            vga_workspace: vga,
            fwimage_len: IMAGE_LEN as u64,
            bootloader_len: BOOTLOADER_LEN,
        };
        let l = FbLayout::compute(&input).unwrap();
        self.layout = Some(l);
        l
    }

    /// Step 8: FWSEC-FRTS on the GSP falcon; returns (error code, WPR2 lo, WPR2 hi).
    pub fn fwsec_frts(&mut self) -> (u32, u64, u64) {
        self.reset_falcon(Falcon::Gsp);
        self.mailboxes(Falcon::Gsp, 0);
        self.start_falcon(Falcon::Gsp);
        assert!(
            regs::NV_PFALCON_FALCON_CPUCTL::read(&mut self.dev, Falcon::Gsp)
                .unwrap()
                .halted()
        );
        let err = regs::NV_PBUS_SW_SCRATCH_0E_FRTS_ERR::read(&mut self.dev)
            .unwrap()
            .frts_err_code();
        let lo = regs::NV_PFB_PRI_MMU_WPR2_ADDR_LO::read(&mut self.dev)
            .unwrap()
            .lower_bound();
        let hi = regs::NV_PFB_PRI_MMU_WPR2_ADDR_HI::read(&mut self.dev)
            .unwrap()
            .higher_bound();
        (err, lo, hi)
    }

    /// Steps 5-6: firmware in sysmem (radix3, bootloader, signature) and the meta for `layout`;
    /// `edit` may spoil the meta before it is written.
    pub fn wpr_meta(&mut self, edit: impl FnOnce(&mut gsp::fw::current::wpr::GspFwWprMeta)) {
        let img = GspImage::parse(self.model().firmware_image()).unwrap();
        let fw = img.fwimage();
        let g = radix3::Geometry::new(fw.len() as u64).unwrap();
        let (image_pa, mut image_buf) = self.dma.alloc(g.image_buffer_len(), 0x1000);
        radix3::stage_image(fw, &mut image_buf).unwrap();
        let (tables_pa, mut tables) = self.dma.alloc(g.table_pages() * 0x1000, 0x1000);
        let map = radix3::build(
            fw.len() as u64,
            &Contiguous {
                base: image_pa,
                pages: g.image_pages,
            },
            &mut tables,
            &Contiguous {
                base: tables_pa,
                pages: g.table_pages(),
            },
        )
        .unwrap();
        let (bl_pa, bl) = self.dma.alloc(BOOTLOADER_LEN as usize, 0x1000);
        bl.fill(0, BOOTLOADER_LEN as usize, 0x5a).unwrap();
        let sig = img.signature(self.chip).unwrap();
        let (sig_pa, sig_buf) = self.dma.alloc(sig.len(), 0x1000);
        sig_buf.write_bytes(0, sig).unwrap();
        let sysmem = WprSysmem {
            radix3: map,
            bootloader_addr: bl_pa,
            bootloader_len: BOOTLOADER_LEN,
            bootloader_code_offset: 0,
            bootloader_data_offset: 0x2000,
            bootloader_manifest_offset: 0x4000,
            signature_addr: sig_pa,
            signature_len: sig.len() as u64,
        };
        let mut meta = self.layout.unwrap().wpr_meta(&sysmem);
        edit(&mut meta);
        let (meta_pa, meta_buf) = self.dma.alloc(0x1000, 0x1000);
        meta_buf.write(0, &meta).unwrap();
        self.meta_addr = meta_pa;
    }

    /// Steps 5 and 9: LibOS page, logs, RMARGS, queues; SET_SYSTEM_INFO and SET_REGISTRY queued.
    pub fn libos_and_queues(&mut self) {
        let (q_pa, q) = self.dma.alloc(QUEUE_REGION_SIZE, 0x1000);
        let mut logs = [0u64; 3];
        for l in &mut logs {
            let (pa, mut buf) = self.dma.alloc(LOG_BUFFER_SIZE, 0x1000);
            init_log_buffer(&mut buf, pa).unwrap();
            *l = pa;
        }
        let (rm_pa, mut rm) = self.dma.alloc(0x1000, 0x1000);
        write_rmargs(&mut rm, q_pa).unwrap();
        let (args_pa, mut args) = self.dma.alloc(0x1000, 0x1000);
        let regions = LibosRegions {
            loginit: logs[0],
            logintr: logs[1],
            logrm: logs[2],
            rmargs: rm_pa,
        };
        write_libos_args(&mut args, &regions).unwrap();
        self.libos_addr = args_pa;
        let shared = SharedQueues::new(q).unwrap();
        shared.init_cpu(q_pa).unwrap();
        let (tx, rx) = shared.split(Side::Cpu).unwrap();
        let buf: &'static mut [u8] = vec![0u8; 1 << 20].leak();
        self.rpc = Some(Rpc::new(tx, rx, buf));
    }

    pub fn queue_boot_commands(&mut self) {
        let params = sysinfo(&self.dev.0);
        let rpc = self.rpc.as_mut().unwrap();
        let mut dev = self.dev.clone();
        let mut clock = self.dev.clone();
        rpc.post(
            &SetSystemInfo(rpc::system_info(&params)),
            &mut dev,
            &mut clock,
        )
        .unwrap();
        let reg = SetRegistry {
            entries: &rpc::NOVA_REGISTRY,
            convention: RegistryConvention::OpenRm,
        };
        rpc.post(&reg, &mut dev, &mut clock).unwrap();
    }

    /// Steps 10-12: GSP reset with the LibOS page in its mailboxes, then the booter on SEC2.
    /// Returns SEC2 MBOX0 after it halts (0: success).
    pub fn booter(&mut self) -> u32 {
        self.reset_falcon(Falcon::Gsp);
        self.mailboxes(Falcon::Gsp, self.libos_addr);
        self.reset_falcon(Falcon::Sec2);
        self.mailboxes(Falcon::Sec2, self.meta_addr);
        self.start_falcon(Falcon::Sec2);
        regs::NV_PFALCON_FALCON_MAILBOX0::read(&mut self.dev, Falcon::Sec2)
            .unwrap()
            .value()
    }

    pub fn riscv_active(&mut self) -> bool {
        if self.chip.has_riscv_cpuctl() {
            regs::NV_PRISCV_RISCV_CPUCTL::read(&mut self.dev, Falcon2(Falcon::Gsp))
                .unwrap()
                .active_stat()
        } else {
            regs::NV_PRISCV_RISCV_CORE_SWITCH_RISCV_STATUS::read(
                &mut self.dev,
                Falcon2(Falcon::Gsp),
            )
            .unwrap()
            .active_stat()
        }
    }

    pub fn app_version(&mut self) {
        regs::NV_PFALCON_FALCON_OS::from_raw(APP_VERSION)
            .write(&mut self.dev, Falcon::Gsp)
            .unwrap();
    }

    /// Wait for one of `functions`; returns its payload.
    pub fn wait(&mut self, functions: &[MsgFunction]) -> Result<Vec<u8>, rpc::RpcError> {
        let mut clock = self.dev.clone();
        let r = self.rpc.as_mut().unwrap().wait_event(
            functions,
            100_000_000,
            &mut clock,
            &mut self.sink,
        )?;
        Ok(r.payload.to_vec())
    }

    /// Step 13: run the sequencer buffer (dwords up to cmdIndex, as OpenRM and nouveau walk it).
    pub fn run_sequencer(&mut self, payload: &[u8], skip_writes: bool) {
        let (h, rest) = rpc_run_cpu_sequencer_v17_00::read_from_prefix(payload).unwrap();
        let words: Vec<u32> = rest
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let mut i = 0;
        while i < h.cmdIndex as usize {
            let op = GSP_SEQ_BUF_OPCODE::try_from(words[i]).unwrap();
            let a = &words[i + 1..i + 1 + op.payload_dwords()];
            match op {
                GSP_SEQ_BUF_OPCODE::REG_WRITE if !skip_writes => {
                    self.dev.write32(a[0], a[1]).unwrap()
                }
                GSP_SEQ_BUF_OPCODE::REG_MODIFY if !skip_writes => {
                    let v = self.dev.read32(a[0]).unwrap();
                    self.dev.write32(a[0], (v & !a[1]) | a[2]).unwrap();
                }
                GSP_SEQ_BUF_OPCODE::REG_POLL => {
                    assert_eq!(self.dev.read32(a[0]).unwrap() & a[1], a[2])
                }
                GSP_SEQ_BUF_OPCODE::REG_STORE => {
                    self.dev.read32(a[0]).unwrap();
                }
                GSP_SEQ_BUF_OPCODE::DELAY_US => self.dev.delay_us(a[0]),
                GSP_SEQ_BUF_OPCODE::CORE_RESUME => {
                    self.reset_falcon(Falcon::Gsp);
                    self.mailboxes(Falcon::Gsp, self.libos_addr);
                    self.start_falcon(Falcon::Sec2);
                    assert!(regs::NV_PGC6_BSI_SECURE_SCRATCH_14::read(&mut self.dev)
                        .unwrap()
                        .boot_stage_3_handoff());
                    assert_eq!(
                        regs::NV_PFALCON_FALCON_MAILBOX0::read(&mut self.dev, Falcon::Sec2)
                            .unwrap()
                            .value(),
                        0
                    );
                    self.app_version();
                    assert!(self.riscv_active());
                }
                _ => {}
            }
            i += 1 + op.payload_dwords();
        }
    }

    /// The whole boot, up to GSP_INIT_DONE.
    pub fn boot(&mut self) {
        assert_eq!(self.identify(), self.chip);
        assert!(self.gfw_done());
        self.flush_page();
        let l = self.layout();
        let (err, lo, hi) = self.fwsec_frts();
        assert_eq!((err, lo, hi), (0, l.frts.start, l.frts.end));
        self.wpr_meta(|_| {});
        self.libos_and_queues();
        self.queue_boot_commands();
        assert_eq!(self.booter(), 0, "booter: {:?}", self.model().boot_error());
        self.app_version();
        assert!(self.riscv_active());
        let seq = self.wait(&[MsgFunction::GspRunCpuSequencer]).unwrap();
        self.run_sequencer(&seq, false);
        self.wait(&[MsgFunction::GspInitDone]).unwrap();
        assert_eq!(self.model().boot_error(), None);
    }

    /// The three things every RPC call needs besides the command.
    pub fn call_parts(&mut self) -> (&mut Rpc<'static>, Dev, Dev, &mut Sink) {
        (
            self.rpc.as_mut().unwrap(),
            self.dev.clone(),
            self.dev.clone(),
            &mut self.sink,
        )
    }
}
