//! The BAR0 register file, as the device implements it: the other side of [`gsp::regs::Mmio`].
//!
//! Every register the boot and the channels touch is modelled with the effect the driver expects;
//! offsets come from `gsp::regs` (one definition). Reads of anything else return a `0xbadf....`
//! pattern, as a real GPU's priv ring does for an unclaimed address, and are logged and counted,
//! so a driver reading a register the model does not know is visible in tests. Writes with an
//! effect the model core must act on (a falcon started, a doorbell rung) come back as a
//! [`RegEvent`].
//!
//! Falcon blocks (GSP 0x110000 and SEC2 0x840000, 8 KiB each with their RISC-V half) keep any
//! other register written to them (DMA and IMEM/DMEM programming, BOOTVEC, ...) and read it back,
//! so a driver may program them as hardware expects; `DMATRFCMD` always reads idle.
use gsp::chip::{Chipset, FbSizeSource};
use gsp::fw::current::rm::usermode;
use gsp::regs::{
    Falcon, Falcon2, RegisterBase, NV_PBUS_SW_SCRATCH_0E_FRTS_ERR, NV_PDISP_VGA_WORKSPACE_BASE,
    NV_PFALCON_FALCON_CPUCTL, NV_PFALCON_FALCON_ENGINE, NV_PFALCON_FALCON_HWCFG2,
    NV_PFALCON_FALCON_IRQSCLR, NV_PFALCON_FALCON_IRQSTAT, NV_PFALCON_FALCON_MAILBOX0,
    NV_PFALCON_FALCON_MAILBOX1, NV_PFALCON_FALCON_OS, NV_PFB_NISO_FLUSH_SYSMEM_ADDR,
    NV_PFB_NISO_FLUSH_SYSMEM_ADDR_HI, NV_PFB_PRI_MMU_LOCAL_MEMORY_RANGE,
    NV_PFB_PRI_MMU_WPR2_ADDR_HI, NV_PFB_PRI_MMU_WPR2_ADDR_LO,
    NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_0_GFW_BOOT,
    NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_PRIV_LEVEL_MASK, NV_PGC6_BSI_SECURE_SCRATCH_14,
    NV_PGSP_QUEUE_HEAD, NV_PMC_BOOT_0, NV_PMC_BOOT_42, NV_PRISCV_RISCV_BCR_CTRL,
    NV_PRISCV_RISCV_CORE_SWITCH_RISCV_STATUS, NV_PRISCV_RISCV_CPUCTL, NV_USABLE_FB_SIZE_IN_MB,
};

/// Bytes of BAR0 (16 MiB).
pub const BAR0_SIZE: u32 = 0x0100_0000;
/// What an unclaimed priv address reads as (the `BADF` family real GPUs return).
pub const UNCLAIMED: u32 = 0xbadf_5040;
/// `NV_PTIMER_TIME_0`: nanoseconds, low word (nouveau `nv04_timer_read`).
pub const NV_PTIMER_TIME_0: u32 = 0x0000_9400;
/// `NV_PTIMER_TIME_1`: high word.
pub const NV_PTIMER_TIME_1: u32 = 0x0000_9410;
/// `NV_PBUS_SW_SCRATCH(1)`, `(2)`: scratch the model's sequencer buffer writes and checks.
pub const SEQ_SCRATCH: [u32; 2] = [0x0000_1404, 0x0000_1408];
/// Display fuse on TU10x (`gm107::NV_FUSE_STATUS_OPT_DISPLAY`) and GA100+ (`ga100::...`).
const DISPLAY_FUSE: [u32; 2] = [0x0002_1c04, 0x0082_0c04];
/// Bytes of one falcon's register block (falcon + RISC-V halves).
const FALCON_SPAN: u32 = 0x2000;
/// `NV_PFALCON_FALCON_DMATRFCMD` (+0x118); bit 1 = IDLE.
const DMATRFCMD: u32 = 0x118;
/// Generic falcon registers remembered per falcon.
const FALCON_SCRATCH: usize = 48;

/// An effect of a register write the model core acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegEvent {
    /// `NV_PFALCON_FALCON_ENGINE.reset` went from 1 to 0: the falcon left reset.
    FalconReset(Falcon),
    /// `NV_PFALCON_FALCON_CPUCTL.startcpu` was written 1.
    FalconStart(Falcon),
    /// `NV_PGSP_QUEUE_HEAD(0)` was written: the CPU queued a command.
    QueueDoorbell,
    /// `NOTIFY_CHANNEL_PENDING` was written with this work-submit token.
    ChannelDoorbell(u32),
}

/// State of one falcon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FalconRegs {
    /// IRQSTAT (bits 4 HALT, 6 SWGEN0 matter).
    pub irqstat: u32,
    /// MAILBOX0.
    pub mailbox0: u32,
    /// MAILBOX1.
    pub mailbox1: u32,
    /// FALCON_OS (the bootloader's app_version).
    pub os: u32,
    /// ENGINE (bit 0: held in reset).
    pub engine: u32,
    /// CPUCTL halted (bit 4).
    pub halted: bool,
    /// The RISC-V core is active (RISCV_CPUCTL bit 7 / CORE_SWITCH_RISCV_STATUS bit 0).
    pub riscv_active: bool,
    /// BCR_CTRL as last written.
    pub bcr_ctrl: u32,
    /// Left reset since it last ran.
    pub fresh: bool,
    scratch: [(u32, u32); FALCON_SCRATCH],
}

impl FalconRegs {
    const fn new() -> Self {
        Self {
            irqstat: 0,
            mailbox0: 0,
            mailbox1: 0,
            os: 0,
            engine: 0,
            halted: true,
            riscv_active: false,
            bcr_ctrl: 0,
            fresh: false,
            scratch: [(u32::MAX, 0); FALCON_SCRATCH],
        }
    }

    /// The 64-bit value of MAILBOX1:MAILBOX0 (a DMA address handed over at boot).
    pub const fn mailbox_addr(&self) -> u64 {
        ((self.mailbox1 as u64) << 32) | self.mailbox0 as u64
    }
}

/// The register file.
#[derive(Debug)]
pub struct Bar0 {
    chip: Chipset,
    /// FB size reported by the size registers.
    pub fb_size: u64,
    /// GFW boot completed (scratch group 05 reads 0xff, its priv mask lowered).
    pub gfw_done: bool,
    /// Sysmem flush page registers (low, high).
    pub flush: (u32, u32),
    /// The sysmem flush page was registered (a non-zero low register).
    pub flush_registered: bool,
    /// WPR2 LO/HI as raw register values.
    pub wpr2: (u32, u32),
    /// `NV_PBUS_SW_SCRATCH(0xe)`.
    pub frts_err: u32,
    /// `NV_PGC6_BSI_SECURE_SCRATCH_14`.
    pub bsi_scratch14: u32,
    /// The sequencer scratch registers ([`SEQ_SCRATCH`]).
    pub seq_scratch: [u32; 2],
    /// The GSP falcon.
    pub gsp: FalconRegs,
    /// The SEC2 falcon.
    pub sec2: FalconRegs,
    /// PTIMER nanoseconds, updated by the caller before each access.
    pub now_ns: u64,
    /// Reads and writes of unmodelled registers.
    pub unclaimed: u32,
}

fn falcon_of(offset: u32) -> Option<(Falcon, u32)> {
    [Falcon::Gsp, Falcon::Sec2]
        .into_iter()
        .find(|f| (f.base()..f.base() + FALCON_SPAN).contains(&offset))
        .map(|f| (f, offset - f.base()))
}

/// `NV_PFB_PRI_MMU_LOCAL_MEMORY_RANGE` for `size`: `mag << scale` MiB, the smallest scale that
/// fits `mag` in 6 bits (an exact encoding when `size` is a multiple of 1 MiB with few bits).
fn local_memory_range(size: u64) -> u32 {
    let mb = size >> 20;
    let mut scale = 0u32;
    while (mb >> scale) > 0x3f && scale < 15 {
        scale += 1;
    }
    // CAST: `mb >> scale` is at most 6 bits here, or clamped by the mask.
    ((((mb >> scale) as u32) & 0x3f) << 4) | scale
}

impl Bar0 {
    /// A chip just after power-on with GFW boot complete and FB of `fb_size`.
    pub const fn new(chip: Chipset, fb_size: u64) -> Self {
        Self {
            chip,
            fb_size,
            gfw_done: true,
            flush: (0, 0),
            flush_registered: false,
            wpr2: (0, 0),
            frts_err: 0,
            bsi_scratch14: 0,
            seq_scratch: [0; 2],
            gsp: FalconRegs::new(),
            sec2: FalconRegs::new(),
            now_ns: 0,
            unclaimed: 0,
        }
    }

    /// `NV_PMC_BOOT_0` of the chip, revision A1 (e.g. TU102 0x162000a1).
    pub fn boot0(&self) -> u32 {
        let code = u32::from(self.chip);
        let arch = code >> 4;
        ((arch & 0x1f) << 24) | ((code & 0xf) << 20) | ((arch >> 5) << 8) | 0xa1
    }

    /// `NV_PMC_BOOT_42` of the chip, revision A1.
    pub fn boot42(&self) -> u32 {
        let code = u32::from(self.chip);
        ((code >> 4) << 24) | ((code & 0xf) << 20) | (0xa << 16) | (0x1 << 12)
    }

    /// The falcon's state.
    pub fn falcon(&self, f: Falcon) -> &FalconRegs {
        match f {
            Falcon::Gsp => &self.gsp,
            Falcon::Sec2 => &self.sec2,
        }
    }

    /// The falcon's state, mutably.
    pub fn falcon_mut(&mut self, f: Falcon) -> &mut FalconRegs {
        match f {
            Falcon::Gsp => &mut self.gsp,
            Falcon::Sec2 => &mut self.sec2,
        }
    }

    /// Set WPR2 to `start..end` (bytes, 4 KiB aligned; `end` exclusive).
    pub fn set_wpr2(&mut self, start: u64, end: u64) {
        // CAST: FB addresses >> 12 fit the 28-bit field (bits 31:4) for FBs below 1 TiB.
        self.wpr2 = (((start >> 12) as u32) << 4, ((end >> 12) as u32) << 4);
    }

    /// WPR2 as `start..end` bytes.
    pub fn wpr2_range(&self) -> (u64, u64) {
        (
            u64::from(self.wpr2.0 >> 4) << 12,
            u64::from(self.wpr2.1 >> 4) << 12,
        )
    }

    /// Read the register at `offset` (already checked: aligned, inside BAR0).
    pub fn read(&mut self, offset: u32) -> u32 {
        if let Some((f, rel)) = falcon_of(offset) {
            return self.falcon_read(f, rel);
        }
        match offset {
            NV_PMC_BOOT_0::OFFSET => self.boot0(),
            NV_PMC_BOOT_42::OFFSET => self.boot42(),
            NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_0_GFW_BOOT::OFFSET => {
                if self.gfw_done {
                    0xff
                } else {
                    0
                }
            }
            NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_PRIV_LEVEL_MASK::OFFSET => u32::from(self.gfw_done),
            NV_PGC6_BSI_SECURE_SCRATCH_14::OFFSET => self.bsi_scratch14,
            NV_USABLE_FB_SIZE_IN_MB::OFFSET
                if self.chip.fb_size_source() == FbSizeSource::UsableFbSizeInMb =>
            {
                // CAST: FB sizes in MiB fit 32 bits.
                (self.fb_size >> 20) as u32
            }
            NV_PFB_PRI_MMU_LOCAL_MEMORY_RANGE::OFFSET
                if self.chip.fb_size_source() == FbSizeSource::LocalMemoryRange =>
            {
                local_memory_range(self.fb_size)
            }
            NV_PFB_NISO_FLUSH_SYSMEM_ADDR::OFFSET => self.flush.0,
            NV_PFB_NISO_FLUSH_SYSMEM_ADDR_HI::OFFSET if self.chip.has_sysmem_flush_hi() => {
                self.flush.1
            }
            NV_PFB_PRI_MMU_WPR2_ADDR_LO::OFFSET => self.wpr2.0,
            NV_PFB_PRI_MMU_WPR2_ADDR_HI::OFFSET => self.wpr2.1,
            NV_PBUS_SW_SCRATCH_0E_FRTS_ERR::OFFSET => self.frts_err,
            NV_PDISP_VGA_WORKSPACE_BASE::OFFSET => 0,
            o if o == DISPLAY_FUSE[0] && !self.chip.has_ga100_display_fuse() => 1,
            o if o == DISPLAY_FUSE[1] && self.chip.has_ga100_display_fuse() => 1,
            o if o == SEQ_SCRATCH[0] => self.seq_scratch[0],
            o if o == SEQ_SCRATCH[1] => self.seq_scratch[1],
            NV_PTIMER_TIME_0 => self.now_ns as u32,
            // CAST: the high word of the 64-bit clock.
            NV_PTIMER_TIME_1 => (self.now_ns >> 32) as u32,
            o if o == usermode::BASE + usermode::TIME_0 => self.now_ns as u32,
            // CAST: the high word of the 64-bit clock.
            o if o == usermode::BASE + usermode::TIME_1 => (self.now_ns >> 32) as u32,
            o => self.unclaimed_access(o, "read"),
        }
    }

    /// Write `value` to the register at `offset` (already checked).
    pub fn write(&mut self, offset: u32, value: u32) -> Option<RegEvent> {
        if let Some((f, rel)) = falcon_of(offset) {
            return self.falcon_write(f, rel, value);
        }
        match offset {
            NV_PFB_NISO_FLUSH_SYSMEM_ADDR::OFFSET => {
                self.flush.0 = value;
                self.flush_registered = value != 0;
            }
            NV_PFB_NISO_FLUSH_SYSMEM_ADDR_HI::OFFSET if self.chip.has_sysmem_flush_hi() => {
                self.flush.1 = value & 0x00ff_ffff;
            }
            o if o == SEQ_SCRATCH[0] => self.seq_scratch[0] = value,
            o if o == SEQ_SCRATCH[1] => self.seq_scratch[1] = value,
            o if o == usermode::BASE + usermode::NOTIFY_CHANNEL_PENDING => {
                return Some(RegEvent::ChannelDoorbell(value));
            }
            o => {
                self.unclaimed_access(o, "write");
            }
        }
        None
    }

    fn unclaimed_access(&mut self, offset: u32, what: &str) -> u32 {
        self.unclaimed = self.unclaimed.saturating_add(1);
        log::warn!("gsp_model: {what} of unmodelled register {offset:#08x}");
        UNCLAIMED
    }

    fn falcon_read(&mut self, f: Falcon, rel: u32) -> u32 {
        let fr = self.falcon(f);
        let riscv = Falcon2(f).base() - f.base();
        match rel {
            NV_PFALCON_FALCON_IRQSTAT::OFFSET => fr.irqstat,
            NV_PFALCON_FALCON_MAILBOX0::OFFSET => fr.mailbox0,
            NV_PFALCON_FALCON_MAILBOX1::OFFSET => fr.mailbox1,
            NV_PFALCON_FALCON_OS::OFFSET => fr.os,
            NV_PFALCON_FALCON_ENGINE::OFFSET => fr.engine,
            // RISC-V present, memory scrubbed, reset done.
            NV_PFALCON_FALCON_HWCFG2::OFFSET => (1 << 10) | (1 << 31),
            NV_PFALCON_FALCON_CPUCTL::OFFSET => u32::from(fr.halted) << 4,
            DMATRFCMD => 1 << 1,
            r if r == riscv + NV_PRISCV_RISCV_CPUCTL::OFFSET && self.chip.has_riscv_cpuctl() => {
                (u32::from(fr.riscv_active) << 7) | u32::from(!fr.riscv_active)
            }
            r if r == riscv + NV_PRISCV_RISCV_CORE_SWITCH_RISCV_STATUS::OFFSET
                && !self.chip.has_riscv_cpuctl() =>
            {
                u32::from(fr.riscv_active)
            }
            r if r == riscv + NV_PRISCV_RISCV_BCR_CTRL::OFFSET => fr.bcr_ctrl,
            r => match fr.scratch.iter().find(|(o, _)| *o == r) {
                Some((_, v)) => *v,
                None => 0,
            },
        }
    }

    fn falcon_write(&mut self, f: Falcon, rel: u32, value: u32) -> Option<RegEvent> {
        let has_cpuctl = self.chip.has_riscv_cpuctl();
        let riscv = Falcon2(f).base() - f.base();
        let queue_head = NV_PGSP_QUEUE_HEAD::OFFSET - Falcon::Gsp.base();
        let fr = self.falcon_mut(f);
        match rel {
            NV_PFALCON_FALCON_IRQSCLR::OFFSET => fr.irqstat &= !value,
            NV_PFALCON_FALCON_MAILBOX0::OFFSET => fr.mailbox0 = value,
            NV_PFALCON_FALCON_MAILBOX1::OFFSET => fr.mailbox1 = value,
            NV_PFALCON_FALCON_OS::OFFSET => fr.os = value,
            NV_PFALCON_FALCON_ENGINE::OFFSET => {
                let was = fr.engine & 1;
                fr.engine = value & 1;
                if value & 1 != 0 {
                    // Held in reset: the core stops.
                    fr.halted = true;
                    fr.riscv_active = false;
                } else if was != 0 {
                    fr.fresh = true;
                    fr.irqstat = 0;
                    return Some(RegEvent::FalconReset(f));
                }
            }
            NV_PFALCON_FALCON_CPUCTL::OFFSET => {
                if value & (1 << 1) != 0 {
                    return Some(RegEvent::FalconStart(f));
                }
            }
            // The core selection takes effect at once: VALID (bit 0) reads set.
            r if r == riscv + NV_PRISCV_RISCV_BCR_CTRL::OFFSET => fr.bcr_ctrl = value | 1,
            r if f == Falcon::Gsp && r == queue_head => return Some(RegEvent::QueueDoorbell),
            r if f == Falcon::Gsp && (queue_head..queue_head + 0x40).contains(&r) => {}
            r if r == riscv + NV_PRISCV_RISCV_CPUCTL::OFFSET && has_cpuctl => {}
            r => {
                let slot = fr
                    .scratch
                    .iter()
                    .position(|(o, _)| *o == r)
                    .or_else(|| fr.scratch.iter().position(|(o, _)| *o == u32::MAX));
                match slot.and_then(|i| fr.scratch.get_mut(i)) {
                    Some(s) => *s = (r, value),
                    None => {
                        self.unclaimed_access(f.base() + r, "write");
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gsp::chip::Chipset;
    use gsp::regs::{NV_PMC_BOOT_0, NV_PMC_BOOT_42};

    #[test]
    fn identity_decodes_to_the_chip() {
        for chip in [
            Chipset::TU102,
            Chipset::GA102,
            Chipset::AD102,
            Chipset::GA100,
        ] {
            let b = Bar0::new(chip, 24 << 30);
            let id = Chipset::identify(
                NV_PMC_BOOT_0::from_raw(b.boot0()),
                NV_PMC_BOOT_42::from_raw(b.boot42()),
            );
            assert_eq!(id, Ok(chip));
        }
        assert_eq!(Bar0::new(Chipset::TU102, 0).boot0(), 0x1620_00a1);
    }

    #[test]
    fn fb_size_registers_per_chip() {
        let mut tu = Bar0::new(Chipset::TU102, 24 << 30);
        let r = NV_PFB_PRI_MMU_LOCAL_MEMORY_RANGE::from_raw(
            tu.read(NV_PFB_PRI_MMU_LOCAL_MEMORY_RANGE::OFFSET),
        );
        assert_eq!(r.usable_fb_size(), 24 << 30);
        assert_eq!(tu.read(NV_USABLE_FB_SIZE_IN_MB::OFFSET), UNCLAIMED);
        let mut ad = Bar0::new(Chipset::AD102, 24 << 30);
        assert_eq!(ad.read(NV_USABLE_FB_SIZE_IN_MB::OFFSET), 24 << 10);
        assert_eq!(ad.unclaimed, 0);
        assert_eq!(tu.unclaimed, 1);
    }

    #[test]
    fn falcon_registers_have_their_effects() {
        let mut b = Bar0::new(Chipset::GA102, 1 << 30);
        let gsp = Falcon::Gsp.base();
        assert_eq!(b.write(gsp + NV_PFALCON_FALCON_ENGINE::OFFSET, 1), None);
        assert_eq!(
            b.write(gsp + NV_PFALCON_FALCON_ENGINE::OFFSET, 0),
            Some(RegEvent::FalconReset(Falcon::Gsp))
        );
        assert!(b.gsp.fresh);
        assert_eq!(
            b.write(gsp + 0x100, 2),
            Some(RegEvent::FalconStart(Falcon::Gsp))
        );
        assert_eq!(b.write(0x110c00, 0), Some(RegEvent::QueueDoorbell));
        b.gsp.irqstat = (1 << 6) | (1 << 4);
        b.write(gsp + 4, 1 << 6);
        assert_eq!(b.read(gsp + 8), 1 << 4);
        // Generic falcon registers read back; DMATRFCMD reads idle.
        b.write(gsp + 0x104, 0x1234);
        assert_eq!(b.read(gsp + 0x104), 0x1234);
        assert_eq!(b.read(gsp + DMATRFCMD) & 2, 2);
        b.sec2.riscv_active = true;
        assert_eq!(b.read(Falcon::Sec2.base() + 0x1388) >> 7, 1);
        assert_eq!(
            b.write(0x810090, 0x1_0003),
            Some(RegEvent::ChannelDoorbell(0x1_0003))
        );
    }

    #[test]
    fn wpr2_and_unclaimed() {
        let mut b = Bar0::new(Chipset::TU102, 1 << 30);
        b.set_wpr2(0x3ff0_0000, 0x4000_0000);
        assert_eq!(
            NV_PFB_PRI_MMU_WPR2_ADDR_LO::from_raw(b.read(0x1fa824)).lower_bound(),
            0x3ff0_0000
        );
        assert_eq!(
            NV_PFB_PRI_MMU_WPR2_ADDR_HI::from_raw(b.read(0x1fa828)).higher_bound(),
            0x4000_0000
        );
        assert_eq!(b.read(0x12_3450), UNCLAIMED);
        b.write(0x12_3450, 1);
        assert_eq!(b.unclaimed, 2);
        // TU10x has no flush-page high register.
        assert_eq!(b.read(0x100c40), UNCLAIMED);
    }
}
