//! The GSP boot state machine (reference section 1), one traced state per step.
//!
//! [`boot`] walks the fifteen steps of section 1 in order — identify the chip, wait for the VBIOS,
//! register the sysmem flush page, reset the GSP falcon, build the host-side structures, stage
//! the firmware, lay out the framebuffer, run FWSEC-FRTS, queue the two boot commands, reset the
//! GSP with its LibOS arguments, run booter_load, check the RISC-V core, run the CPU sequencer,
//! wait for INIT_DONE, fetch the static information — as an explicit [`State`] with one traced
//! [`set_state`](Machine::set_state). Every step has a time budget (`// TIMEOUT:` on each in
//! [`State::timeout_ns`]) and every failure is a [`BootError`] naming the step and its cause.
//!
//! Inputs are what the PD glue gathered: MMIO, a clock, DMA buffers already allocated
//! ([`BootBuffers`], from alloc-server), the firmware files ([`BootFirmware`]) and the PCI facts
//! ([`BootConfig::sysinfo`]). The two steps only real hardware can do — FWSEC-FRTS (from the
//! VBIOS) and SEC2's booter_load (a signed ucode) — go through [`SecureBoot`], which the GSP
//! model implements too. The result, [`Booted`], carries the RPC channel for the running GSP.
//!
//! Where the drivers differ, one switch in [`BootConfig`] says which way and why:
//! [`RegistryConvention`] (registry table `size`), [`CmdIndexUnit`] (sequencer `cmdIndex`), and
//! [`BootConfig::gsp_core`] (which core the GSP reset selects on GA102+: nova-core selects the
//! falcon core before booter_load; OpenRM resets "into RISC-V"; which the booter requires is
//! UNVERIFIED — both boot — and the default follows nova-core, whose 570.144 flow this is).
//!
//! Restart: nothing here survives a PD restart; every buffer is rewritten from scratch (the
//! queue region is scrubbed). A GPU that was not reset still has WPR2 from the previous boot,
//! which step 8 refuses ([`BootCause::Wpr2AlreadySet`]), as nova-core does: the supervisor must
//! reset the GPU (PCI FLR) before the gsp PD boots it again.

#[cfg(test)]
mod tests;

pub mod falcon;

use crate::chip::{ChipError, Chipset};
use crate::cmdq::{QueueError, SharedQueues, Side};
use crate::elf::{BlobError, GspImage, ImageError, RiscvBootloader};
use crate::fb::{
    read_fb_size, read_vga_workspace, FbLayout, LayoutError, LayoutInput, Span, WprSysmem,
};
use crate::fw::current::args::write_rmargs;
use crate::fw::current::libos::{init_log_buffer, write_libos_args, LibosError, LibosRegions};
use crate::fw::current::rpc::MsgFunction;
use crate::fw::current::static_info::GspStaticConfigInfo;
use crate::radix3::{self, Contiguous, Radix3Error};
use crate::regs::{
    self, Falcon, Mmio, MmioError, PeregrineCoreSelect, RegError, NV_PBUS_SW_SCRATCH_0E_FRTS_ERR,
    NV_PFB_PRI_MMU_WPR2_ADDR_HI, NV_PFB_PRI_MMU_WPR2_ADDR_LO,
    NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_0_GFW_BOOT,
    NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_PRIV_LEVEL_MASK, NV_PMC_BOOT_0, NV_PMC_BOOT_42,
};
use crate::rpc::{
    system_info, Clock, EventSink, RegistryConvention, Rpc, RpcError, SetRegistry, SetSystemInfo,
    SystemInfoParams, NOVA_REGISTRY, REPLY_TIMEOUT_NS,
};
use crate::sequencer::{self, CmdIndexUnit, SeqError, SequencerEnv};
use falcon::FalconError;
use pd_core::shm::{ReadWrite, Region};
use pd_core::trace::{TraceEvent, TraceRing};
use zerocopy::IntoBytes;

/// The firmware version whose ABI [`crate::fw::current`] speaks.
pub const FIRMWARE_VERSION: &str = "570.144";

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// The boot steps (reference section 1), then the two end states. The number is the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum State {
    /// 1. Read BOOT_0/BOOT_42.
    IdentifyChip = 1,
    /// 2. Wait for the VBIOS's GFW boot to finish.
    WaitGfwBoot = 2,
    /// 3. Register the sysmem flush page.
    SysmemFlush = 3,
    /// 4. Reset the GSP falcon to a known state.
    ResetFalcon = 4,
    /// 5. Queues, log buffers, RMARGS, LibOS argument page.
    HostStructures = 5,
    /// 6. Stage `.fwimage` with its radix3 map, the signature and the bootloader.
    LoadFirmware = 6,
    /// 7. Framebuffer layout and `GspFwWprMeta`.
    FbLayout = 7,
    /// 8. FWSEC-FRTS creates WPR2.
    FwsecFrts = 8,
    /// 9. Queue GSP_SET_SYSTEM_INFO and SET_REGISTRY.
    QueueBootCommands = 9,
    /// 10. Reset the GSP and hand it the LibOS arguments.
    ResetGsp = 10,
    /// 11. SEC2 runs booter_load.
    BooterLoad = 11,
    /// 12. App version to FALCON_OS; the RISC-V core must be active.
    CheckRiscv = 12,
    /// 13. Run the CPU sequencer GSP-RM sends.
    RunSequencer = 13,
    /// 14. Wait for GSP_INIT_DONE.
    WaitInitDone = 14,
    /// 15. GET_GSP_STATIC_INFO.
    GetStaticInfo = 15,
    /// Booted.
    Running = 16,
    /// A step failed.
    Failed = 17,
}

impl State {
    /// The step's time budget; polling inside the step waits at most this long, and a step that
    /// overruns it fails.
    pub const fn timeout_ns(self) -> u64 {
        match self {
            // TIMEOUT: register reads and arithmetic; 100 ms covers MMIO through a PPC.
            Self::IdentifyChip | Self::SysmemFlush | Self::FbLayout => 100 * MS,
            // TIMEOUT: nova-core waits up to 4 s for FWSEC to finish GFW boot.
            Self::WaitGfwBoot => 4 * S,
            // TIMEOUT: reset-ready 150 us + scrubbing 20 ms + core select 10 ms (nova), with margin.
            Self::ResetFalcon | Self::ResetGsp => 100 * MS,
            // TIMEOUT: scrubbing and writing ~0.8 MiB of boot structures.
            Self::HostStructures => S,
            // TIMEOUT: copying a firmware image of up to ~64 MiB and its radix3 map.
            Self::LoadFirmware => 30 * S,
            // TIMEOUT: FWSEC-FRTS and booter_load run to halt within 2 s each (nova), plus loading.
            Self::FwsecFrts | Self::BooterLoad => 5 * S,
            // TIMEOUT: ring space for two small commands (the ring is empty at boot).
            Self::QueueBootCommands => S,
            // TIMEOUT: the RISC-V core is up right after booter_load; nova polls briefly.
            Self::CheckRiscv => 2 * S,
            // TIMEOUT: GSP-RM initialises before sending the sequencer and INIT_DONE; OpenRM
            // and nova allow on the order of seconds; 10 s each bounds a hung firmware.
            Self::RunSequencer | Self::WaitInitDone => 10 * S,
            // TIMEOUT: one RPC.
            Self::GetStaticInfo => REPLY_TIMEOUT_NS,
            Self::Running | Self::Failed => 0,
        }
    }

    /// The step's name, for logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::IdentifyChip => "identify chip",
            Self::WaitGfwBoot => "wait for GFW boot",
            Self::SysmemFlush => "sysmem flush page",
            Self::ResetFalcon => "reset GSP falcon",
            Self::HostStructures => "host structures",
            Self::LoadFirmware => "load firmware",
            Self::FbLayout => "framebuffer layout",
            Self::FwsecFrts => "FWSEC-FRTS",
            Self::QueueBootCommands => "queue boot commands",
            Self::ResetGsp => "reset GSP",
            Self::BooterLoad => "booter_load",
            Self::CheckRiscv => "check RISC-V",
            Self::RunSequencer => "CPU sequencer",
            Self::WaitInitDone => "wait for INIT_DONE",
            Self::GetStaticInfo => "static info",
            Self::Running => "running",
            Self::Failed => "failed",
        }
    }
}

/// What went wrong in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BootCause {
    /// A register access failed.
    Mmio(MmioError) = 1,
    /// A register field was invalid or a value did not fit.
    Register(RegError) = 2,
    /// The chip is not one this driver knows.
    Chip(ChipError) = 3,
    /// The step overran its time budget, or what it waited for never came.
    Timeout = 4,
    /// A DMA buffer is too small for what it must hold.
    BufferTooSmall = 5,
    /// The GSP ELF was refused.
    Image(ImageError) = 6,
    /// The firmware is not the version this driver speaks ([`FIRMWARE_VERSION`]).
    WrongFirmwareVersion = 7,
    /// The bootloader blob was refused.
    Blob(BlobError) = 8,
    /// The radix3 map could not be built.
    Radix3(Radix3Error) = 9,
    /// The LibOS structures could not be written.
    Libos(LibosError) = 10,
    /// No framebuffer layout fits.
    Layout(LayoutError) = 11,
    /// WPR2 already exists (the GPU was not reset since the last boot).
    Wpr2AlreadySet = 12,
    /// FWSEC-FRTS left this error code.
    FrtsError(u32) = 13,
    /// WPR2 is missing or does not start at FRTS after FWSEC-FRTS.
    Wpr2Mismatch = 14,
    /// The FWSEC/booter path failed ([`SecureBoot`]).
    SecureBoot(SecureBootError) = 15,
    /// booter_load halted with this non-zero SEC2 MAILBOX0.
    BooterError(u32) = 16,
    /// A falcon operation failed.
    Falcon(FalconError) = 17,
    /// The GSP's RISC-V core is not active.
    RiscvInactive = 18,
    /// The message queues failed.
    Queue(QueueError) = 19,
    /// An RPC failed.
    Rpc(RpcError) = 20,
    /// The CPU sequencer stopped.
    Sequencer(SeqError) = 21,
}

impl BootCause {
    /// A small code for the cause kind (the discriminant), for wire reports.
    pub const fn code(self) -> u32 {
        match self {
            Self::Mmio(_) => 1,
            Self::Register(_) => 2,
            Self::Chip(_) => 3,
            Self::Timeout => 4,
            Self::BufferTooSmall => 5,
            Self::Image(_) => 6,
            Self::WrongFirmwareVersion => 7,
            Self::Blob(_) => 8,
            Self::Radix3(_) => 9,
            Self::Libos(_) => 10,
            Self::Layout(_) => 11,
            Self::Wpr2AlreadySet => 12,
            Self::FrtsError(_) => 13,
            Self::Wpr2Mismatch => 14,
            Self::SecureBoot(_) => 15,
            Self::BooterError(_) => 16,
            Self::Falcon(_) => 17,
            Self::RiscvInactive => 18,
            Self::Queue(_) => 19,
            Self::Rpc(_) => 20,
            Self::Sequencer(_) => 21,
        }
    }
}

macro_rules! cause_from {
    ($($t:ty => $v:ident),* $(,)?) => {
        $(impl From<$t> for BootCause {
            fn from(e: $t) -> Self {
                Self::$v(e)
            }
        })*
    };
}

cause_from!(
    MmioError => Mmio, RegError => Register, ChipError => Chip, ImageError => Image,
    BlobError => Blob, Radix3Error => Radix3, LibosError => Libos, LayoutError => Layout,
    SecureBootError => SecureBoot, FalconError => Falcon, QueueError => Queue, RpcError => Rpc,
    SeqError => Sequencer,
);

/// A failed boot: the step and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootError {
    /// The step that failed.
    pub step: State,
    /// Why.
    pub cause: BootCause,
}

/// A boot event worth keeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootTrace {
    /// The machine entered a state.
    Enter(State),
    /// A step failed.
    Failed(BootError),
    /// GSP_INIT_DONE came without a CPU sequencer first (step 13 had nothing to run).
    NoSequencer,
}

impl TraceEvent for BootTrace {
    const KINDS: usize = 3;

    fn kind(&self) -> usize {
        match self {
            Self::Enter(_) => 0,
            Self::Failed(_) => 1,
            Self::NoSequencer => 2,
        }
    }

    fn kind_name(kind: usize) -> &'static str {
        ["Enter", "Failed", "NoSequencer"]
            .get(kind)
            .copied()
            .unwrap_or("?")
    }
}

/// The boot's trace ring.
pub type BootTraceRing = TraceRing<BootTrace, 32, { BootTrace::KINDS }>;

/// Why a [`SecureBoot`] step failed. Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SecureBootError {
    /// The VBIOS or its FWSEC ucode could not be found or parsed.
    NoFwsec = 1,
    /// The booter ucode is missing or was refused.
    NoBooter = 2,
    /// Loading a ucode into a falcon failed (DMA, BROM).
    Load = 3,
    /// The ucode did not halt in time.
    Timeout = 4,
    /// A register access failed.
    Mmio = 5,
}

/// The two steps that need NVIDIA-signed ucode on real hardware (FWSEC-FRTS from the VBIOS, SEC2
/// booter_load). The GSP model implements them by emulating their effects.
pub trait SecureBoot {
    /// Step 8: run FWSEC-FRTS on the GSP falcon so it creates WPR2 with FRTS at `frts`; return
    /// when it has halted. The boot then checks `NV_PBUS_SW_SCRATCH(0xe)` and the WPR2 registers.
    ///
    /// # Errors
    /// [`SecureBootError`].
    fn run_fwsec_frts(
        &mut self,
        io: &mut dyn Mmio,
        clock: &mut dyn Clock,
        frts: Span,
    ) -> Result<(), SecureBootError>;

    /// Step 11: run booter_load on SEC2 with the `GspFwWprMeta` DMA address in SEC2 MBOX0 (low)
    /// and MBOX1 (high); return SEC2 MBOX0 after it halted (0 = success).
    ///
    /// # Errors
    /// [`SecureBootError`].
    fn run_booter_load(
        &mut self,
        io: &mut dyn Mmio,
        clock: &mut dyn Clock,
        wpr_meta_dma: u64,
    ) -> Result<u32, SecureBootError>;
}

/// One DMA buffer: a view of it and its device address.
#[derive(Debug)]
pub struct DmaBuf {
    /// The CPU's view (from alloc-server's region).
    pub region: Region<ReadWrite>,
    /// The device address of byte 0 (page aligned; physically contiguous).
    pub dma: u64,
}

/// The DMA buffers the boot fills (each physically contiguous, zeroing is done here).
#[derive(Debug)]
pub struct BootBuffers {
    /// The shared message-queue region, [`crate::cmdq::QUEUE_REGION_SIZE`] bytes.
    pub queues: DmaBuf,
    /// The LibOS argument page (4 KiB).
    pub libos_args: DmaBuf,
    /// LOGINIT, LOGINTR, LOGRM (64 KiB each).
    pub logs: [DmaBuf; 3],
    /// RMARGS (4 KiB).
    pub rmargs: DmaBuf,
    /// The `.fwimage` pages (its length rounded up to 4 KiB).
    pub fwimage: DmaBuf,
    /// The radix3 tables (`radix3::Geometry::table_pages` pages).
    pub radix3: DmaBuf,
    /// The bootloader payload.
    pub bootloader: DmaBuf,
    /// The chip's signature.
    pub signature: DmaBuf,
    /// `GspFwWprMeta` (256 bytes; a page).
    pub wpr_meta: DmaBuf,
    /// The sysmem flush page (4 KiB).
    pub flush_page: DmaBuf,
}

/// The firmware files.
#[derive(Clone, Copy, Debug)]
pub struct BootFirmware<'f> {
    /// `gsp-570.144.bin` (an ELF; must be 8-byte aligned in memory).
    pub gsp: &'f [u8],
    /// `bootloader-570.144.bin` (BinHdr + RM_RISCV_UCODE_DESC).
    pub bootloader: &'f [u8],
}

/// The choices and facts the boot needs besides MMIO and memory.
#[derive(Clone, Copy, Debug)]
pub struct BootConfig {
    /// The PCI facts for GSP_SET_SYSTEM_INFO.
    pub sysinfo: SystemInfoParams,
    /// How to write the registry table.
    pub registry: RegistryConvention,
    /// How to read the sequencer's `cmdIndex`.
    pub cmd_index: CmdIndexUnit,
    /// Which core the GSP reset selects on GA102 and later (default: the falcon core, nova).
    pub gsp_core: PeregrineCoreSelect,
}

impl BootConfig {
    /// The defaults for `sysinfo` (each switch's default is argued where it is defined).
    pub fn new(sysinfo: SystemInfoParams) -> Self {
        Self {
            sysinfo,
            registry: RegistryConvention::default(),
            cmd_index: CmdIndexUnit::default(),
            gsp_core: PeregrineCoreSelect::Falcon,
        }
    }
}

/// A booted GSP.
#[derive(Debug)]
pub struct Booted<'b> {
    /// The chip.
    pub chip: Chipset,
    /// The framebuffer layout the firmware runs in.
    pub layout: FbLayout,
    /// What GSP-RM reported.
    pub static_info: GspStaticConfigInfo,
    /// The RPC channel to GSP-RM.
    pub rpc: Rpc<'b>,
}

/// What earlier steps found, for later ones.
struct Machine<'b, 'f, 't> {
    state: State,
    trace: &'t mut BootTraceRing,
    fw: BootFirmware<'f>,
    bufs: BootBuffers,
    cfg: BootConfig,
    rx_buf: Option<&'b mut [u8]>,
    chip: Option<Chipset>,
    rpc: Option<Rpc<'b>>,
    image: Option<GspImage<'f>>,
    bootloader: Option<RiscvBootloader<'f>>,
    layout: Option<FbLayout>,
    sysmem: Option<WprSysmem>,
    init_done: bool,
    static_info: Option<GspStaticConfigInfo>,
}

/// What the boot works on besides the device: files, buffers, choices, receive storage.
#[derive(Debug)]
pub struct BootInput<'b, 'f> {
    /// The firmware files.
    pub firmware: BootFirmware<'f>,
    /// The DMA buffers.
    pub buffers: BootBuffers,
    /// The switches and PCI facts.
    pub config: BootConfig,
    /// Receive storage for the RPC channel (at least [`crate::rpc::MIN_RX_BUFFER`] bytes).
    pub rx_buffer: &'b mut [u8],
}

/// The device side: registers, time, the signed-ucode steps, and where events go.
pub struct BootDevice<'h> {
    /// BAR0.
    pub io: &'h mut dyn Mmio,
    /// Time.
    pub clock: &'h mut dyn Clock,
    /// FWSEC-FRTS and booter_load.
    pub secure: &'h mut dyn SecureBoot,
    /// Events that arrive during boot (LibOS prints, ...).
    pub sink: &'h mut dyn EventSink,
}

impl core::fmt::Debug for BootDevice<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("BootDevice")
    }
}

/// Boot the GSP: run every step of [`State`] in order, recording each state entered (and a
/// failure) in `trace`, which the caller keeps for its diagnostics dump.
///
/// # Errors
/// A [`BootError`] naming the first step that failed and why. Nothing is retried here: the gsp
/// PD reports the failure and its supervisor decides (reset the GPU, restart the PD).
pub fn boot<'b>(
    input: BootInput<'b, '_>,
    mut dev: BootDevice<'_>,
    trace: &mut BootTraceRing,
) -> Result<Booted<'b>, BootError> {
    let mut m = Machine {
        state: State::Failed,
        trace,
        fw: input.firmware,
        bufs: input.buffers,
        cfg: input.config,
        rx_buf: Some(input.rx_buffer),
        chip: None,
        rpc: None,
        image: None,
        bootloader: None,
        layout: None,
        sysmem: None,
        init_done: false,
        static_info: None,
    };
    m.set_state(State::IdentifyChip);
    while m.state != State::Running {
        let step = m.state;
        let started = dev.clock.now_ns();
        let deadline = started.saturating_add(step.timeout_ns());
        let result = m.step(step, &mut dev, deadline).and_then(|next| {
            if dev.clock.now_ns() > deadline {
                Err(BootCause::Timeout)
            } else {
                Ok(next)
            }
        });
        match result {
            Ok(next) => m.set_state(next),
            Err(cause) => {
                let error = BootError { step, cause };
                m.trace.record(BootTrace::Failed(error));
                log::error!(
                    "gsp: boot step {} ({}) failed: {cause:?}",
                    step as u32,
                    step.name()
                );
                m.set_state(State::Failed);
                return Err(error);
            }
        }
    }
    match (m.chip, m.layout, m.static_info, m.rpc) {
        (Some(chip), Some(layout), Some(static_info), Some(rpc)) => Ok(Booted {
            chip,
            layout,
            static_info,
            rpc,
        }),
        // Unreachable by construction (Running follows GetStaticInfo, which needs them all);
        // reported as a failure of the last step rather than a panic.
        _ => Err(BootError {
            step: State::GetStaticInfo,
            cause: BootCause::Timeout,
        }),
    }
}

impl<'b, 'f> Machine<'b, 'f, '_> {
    /// The one place the state changes: traced and logged.
    fn set_state(&mut self, next: State) {
        self.trace.record(BootTrace::Enter(next));
        log::info!("gsp: boot: {} ({})", next as u32, next.name());
        self.state = next;
    }

    /// Run `step`; return the state that follows it. Each arm cites reference section 1.
    fn step(
        &mut self,
        step: State,
        hw: &mut BootDevice<'_>,
        deadline: u64,
    ) -> Result<State, BootCause> {
        match step {
            // 1.1: BOOT_0 rules out pre-Fermi parts, BOOT_42 names the chip.
            State::IdentifyChip => {
                let boot0 = NV_PMC_BOOT_0::read(hw.io)?;
                let boot42 = NV_PMC_BOOT_42::read(hw.io)?;
                let chip = Chipset::identify(boot0, boot42)?;
                log::info!("gsp: chip {} ({:#x})", chip.name(), chip as u32);
                self.chip = Some(chip);
                Ok(State::WaitGfwBoot)
            }
            // 1.2: GROUP_05[0] bits 7:0 == 0xff, trusted only once the priv-level mask allows it.
            State::WaitGfwBoot => {
                let io = &mut *hw.io;
                falcon::poll(
                    hw.clock,
                    State::WaitGfwBoot.timeout_ns(),
                    BootCause::Timeout,
                    || {
                        let open = NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_PRIV_LEVEL_MASK::read(io)?
                            .read_protection_level0();
                        Ok(open
                            && NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_0_GFW_BOOT::read(io)?
                                .completed())
                    },
                )?;
                Ok(State::SysmemFlush)
            }
            // 1.3: before any falcon reset.
            State::SysmemFlush => {
                let page = &self.bufs.flush_page;
                page.region
                    .fill(0, crate::cmdq::GSP_PAGE_SIZE, 0)
                    .map_err(|_| BootCause::BufferTooSmall)?;
                regs::write_sysmem_flush_page(hw.io, self.chip()?, page.dma)?;
                Ok(State::ResetFalcon)
            }
            // 1.4 (nova-core resets the GSP falcon before running FWSEC-FRTS on it).
            State::ResetFalcon => {
                falcon::reset(
                    hw.io,
                    hw.clock,
                    Falcon::Gsp,
                    self.chip()?,
                    PeregrineCoreSelect::Falcon,
                )?;
                Ok(State::HostStructures)
            }
            // 1.5: queues (section 5), log buffers, RMARGS, LibOS argument page (section 4).
            State::HostStructures => {
                self.host_structures()?;
                Ok(State::LoadFirmware)
            }
            // 1.6: `.fwimage` + radix3 (section 2), the chip's signature, the bootloader.
            State::LoadFirmware => {
                self.load_firmware()?;
                Ok(State::FbLayout)
            }
            // 1.7: top-of-VRAM layout and GspFwWprMeta (section 3).
            State::FbLayout => {
                let chip = self.chip()?;
                let input = LayoutInput {
                    chip,
                    fb_size: read_fb_size(hw.io, chip)?,
                    vga_workspace: read_vga_workspace(hw.io, chip)?,
                    fwimage_len: self.image()?.fwimage().len() as u64,
                    bootloader_len: self.bootloader()?.ucode().len() as u64,
                };
                let layout = FbLayout::compute(&input)?;
                let sysmem = self.sysmem.ok_or(BootCause::BufferTooSmall)?;
                let meta = layout.wpr_meta(&sysmem);
                let buf = &self.bufs.wpr_meta;
                buf.region
                    .write_bytes(0, meta.as_bytes())
                    .map_err(|_| BootCause::BufferTooSmall)?;
                self.layout = Some(layout);
                Ok(State::FwsecFrts)
            }
            // 1.8: refuse an existing WPR2; run FWSEC-FRTS; check its error code and WPR2.
            State::FwsecFrts => {
                if NV_PFB_PRI_MMU_WPR2_ADDR_HI::read(hw.io)?.higher_bound() != 0 {
                    return Err(BootCause::Wpr2AlreadySet);
                }
                let frts = self.layout()?.frts;
                hw.secure.run_fwsec_frts(hw.io, hw.clock, frts)?;
                let code = NV_PBUS_SW_SCRATCH_0E_FRTS_ERR::read(hw.io)?.frts_err_code();
                if code != 0 {
                    return Err(BootCause::FrtsError(code));
                }
                let lo = NV_PFB_PRI_MMU_WPR2_ADDR_LO::read(hw.io)?.lower_bound();
                let hi = NV_PFB_PRI_MMU_WPR2_ADDR_HI::read(hw.io)?.higher_bound();
                if hi == 0 || lo != frts.start {
                    log::error!(
                        "gsp: WPR2 {lo:#x}..{hi:#x} after FWSEC-FRTS, FRTS at {:#x}",
                        frts.start
                    );
                    return Err(BootCause::Wpr2Mismatch);
                }
                Ok(State::QueueBootCommands)
            }
            // 1.9: both commands queued before the GSP runs, a doorbell after each.
            State::QueueBootCommands => {
                let info = SetSystemInfo(system_info(&self.cfg.sysinfo));
                let reg = SetRegistry {
                    entries: &NOVA_REGISTRY,
                    convention: self.cfg.registry,
                };
                let rpc = self.rpc.as_mut().ok_or(BootCause::Timeout)?;
                rpc.post(&info, hw.io, hw.clock)?;
                rpc.post(&reg, hw.io, hw.clock)?;
                Ok(State::ResetGsp)
            }
            // 1.10: reset the GSP (core per BootConfig::gsp_core), LibOS page address to MBOX0/1.
            State::ResetGsp => {
                falcon::reset(
                    hw.io,
                    hw.clock,
                    Falcon::Gsp,
                    self.chip()?,
                    self.cfg.gsp_core,
                )?;
                falcon::write_mailboxes(hw.io, Falcon::Gsp, self.bufs.libos_args.dma)?;
                Ok(State::BooterLoad)
            }
            // 1.11: booter_load with the GspFwWprMeta address; success = SEC2 MBOX0 == 0.
            State::BooterLoad => {
                let mbox0 = hw
                    .secure
                    .run_booter_load(hw.io, hw.clock, self.bufs.wpr_meta.dma)?;
                if mbox0 != 0 {
                    return Err(BootCause::BooterError(mbox0));
                }
                Ok(State::CheckRiscv)
            }
            // 1.12: app_version to FALCON_OS, then the RISC-V core must come up (nova polls).
            State::CheckRiscv => {
                let chip = self.chip()?;
                falcon::write_os_version(hw.io, Falcon::Gsp, self.bootloader()?.app_version())?;
                let io = &mut *hw.io;
                falcon::poll(
                    hw.clock,
                    State::CheckRiscv.timeout_ns(),
                    BootCause::RiscvInactive,
                    || Ok(falcon::riscv_active(io, Falcon::Gsp, chip)?),
                )?;
                Ok(State::RunSequencer)
            }
            // 1.13: run GSP_RUN_CPU_SEQUENCER; if INIT_DONE comes first there is nothing to run.
            State::RunSequencer => {
                self.run_sequencer(hw, deadline)?;
                Ok(State::WaitInitDone)
            }
            // 1.14: INIT_DONE, other messages dispatched on the way.
            State::WaitInitDone => {
                if !self.init_done {
                    let rpc = self.rpc.as_mut().ok_or(BootCause::Timeout)?;
                    let left = deadline.saturating_sub(hw.clock.now_ns());
                    rpc.wait_event(&[MsgFunction::GspInitDone], left, hw.clock, hw.sink)?;
                    self.init_done = true;
                }
                Ok(State::GetStaticInfo)
            }
            // 1.15: the reply carries the same function number (and sequence).
            State::GetStaticInfo => {
                let rpc = self.rpc.as_mut().ok_or(BootCause::Timeout)?;
                let info = rpc.get_static_info(hw.io, hw.clock, hw.sink)?;
                log::info!(
                    "gsp: GSP-RM up: {} MiB of VRAM, internal client {:#x}",
                    info.fb_length >> 20,
                    info.hInternalClient
                );
                self.static_info = Some(info);
                Ok(State::Running)
            }
            // End states have no step; reaching one here is a bug reported as a failure.
            State::Running | State::Failed => Err(BootCause::Timeout),
        }
    }

    fn chip(&self) -> Result<Chipset, BootCause> {
        self.chip.ok_or(BootCause::Chip(ChipError::UnknownChipset))
    }

    fn image(&self) -> Result<&GspImage<'f>, BootCause> {
        self.image
            .as_ref()
            .ok_or(BootCause::Image(ImageError::NoFwImage))
    }

    fn bootloader(&self) -> Result<&RiscvBootloader<'f>, BootCause> {
        self.bootloader
            .as_ref()
            .ok_or(BootCause::Blob(BlobError::BadPayload))
    }

    fn layout(&self) -> Result<&FbLayout, BootCause> {
        self.layout
            .as_ref()
            .ok_or(BootCause::Layout(LayoutError::FbTooSmall))
    }

    /// Step 5's work.
    fn host_structures(&mut self) -> Result<(), BootCause> {
        let b = &mut self.bufs;
        let q = b
            .queues
            .region
            .subregion(0, b.queues.region.size())
            .map_err(|_| BootCause::BufferTooSmall)?;
        let queues = SharedQueues::new(q)?;
        queues.init_cpu(b.queues.dma)?;
        for log in &mut b.logs {
            init_log_buffer(&mut log.region, log.dma)?;
        }
        write_rmargs(&mut b.rmargs.region, b.queues.dma).map_err(|_| BootCause::BufferTooSmall)?;
        let [loginit, logintr, logrm] = &b.logs;
        let regions = LibosRegions {
            loginit: loginit.dma,
            logintr: logintr.dma,
            logrm: logrm.dma,
            rmargs: b.rmargs.dma,
        };
        write_libos_args(&mut b.libos_args.region, &regions)?;
        let (tx, rx) = queues.split(Side::Cpu)?;
        let buf = self.rx_buf.take().ok_or(BootCause::BufferTooSmall)?;
        self.rpc = Some(Rpc::new(tx, rx, buf));
        Ok(())
    }

    /// Step 6's work.
    fn load_firmware(&mut self) -> Result<(), BootCause> {
        let chip = self.chip()?;
        let image = GspImage::parse(self.fw.gsp)?;
        if image.version() != FIRMWARE_VERSION {
            log::error!(
                "gsp: firmware {} is not {FIRMWARE_VERSION}",
                image.version()
            );
            return Err(BootCause::WrongFirmwareVersion);
        }
        let b = &mut self.bufs;
        let geometry = radix3::stage_image(image.fwimage(), &mut b.fwimage.region)?;
        let pages = |d: &DmaBuf| Contiguous {
            base: d.dma,
            pages: d.region.size() / crate::radix3::PAGE_SIZE,
        };
        let (image_pages, table_pages) = (pages(&b.fwimage), pages(&b.radix3));
        let map = radix3::build(
            geometry.image_len,
            &image_pages,
            &mut b.radix3.region,
            &table_pages,
        )?;
        let signature = image.signature(chip)?;
        b.signature
            .region
            .write_bytes(0, signature)
            .map_err(|_| BootCause::BufferTooSmall)?;
        let bootloader = RiscvBootloader::parse(self.fw.bootloader)?;
        b.bootloader
            .region
            .write_bytes(0, bootloader.ucode())
            .map_err(|_| BootCause::BufferTooSmall)?;
        self.sysmem = Some(WprSysmem::new(
            map,
            &bootloader,
            b.bootloader.dma,
            signature,
            b.signature.dma,
        ));
        self.image = Some(image);
        self.bootloader = Some(bootloader);
        Ok(())
    }

    /// Step 13's work.
    fn run_sequencer(&mut self, hw: &mut BootDevice<'_>, deadline: u64) -> Result<(), BootCause> {
        let env = SequencerEnv {
            chip: self.chip()?,
            libos_dma: self.bufs.libos_args.dma,
            app_version: self.bootloader()?.app_version(),
            unit: self.cfg.cmd_index,
            core: self.cfg.gsp_core,
        };
        let rpc = self.rpc.as_mut().ok_or(BootCause::Timeout)?;
        let left = deadline.saturating_sub(hw.clock.now_ns());
        let wanted = [MsgFunction::GspRunCpuSequencer, MsgFunction::GspInitDone];
        let msg = rpc.wait_event(&wanted, left, hw.clock, hw.sink)?;
        if msg.rpc.function == u32::from(MsgFunction::GspInitDone) {
            self.trace.record(BootTrace::NoSequencer);
            log::warn!("gsp: INIT_DONE without a CPU sequencer");
            self.init_done = true;
            return Ok(());
        }
        let out = sequencer::run(msg.payload, &env, hw.io, hw.clock)?;
        log::info!("gsp: cpu sequencer ran {} commands", out.commands);
        Ok(())
    }
}
