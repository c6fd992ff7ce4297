//! Typed BAR0 registers over an MMIO access trait.
//!
//! Every register the boot touches is declared once below with [`register!`](crate::register):
//! its offset (fixed, relative to a falcon's base, or an array), and its `hi:lo` fields with a doc
//! line each. Fields read as `u32`, as `bool` (one bit, checked at compile time) or, with `?=>`,
//! as a typed value whose decoding can fail ([`FieldError::InvalidValue`]). Fields are written
//! through [`Writer`]: `reg.set(|w| w.startcpu(true))`, which refuses a value wider than its field
//! ([`FieldError::TooWide`]) instead of silently truncating it.
//!
//! [`Mmio`] is the only way to the hardware: the gsp PD implements it over its BAR0 mapping (or
//! as PPCs to the GSP model in hosted mode), the model implements it over its register file, and
//! tests over a map. Names are OpenRM's (`NV_PFALCON_FALCON_CPUCTL`), so they grep against
//! NVIDIA's sources; offsets and fields: reference section 1 and nova-core `regs.rs`.
//!
//! Chip-family registers that differ between chips sit in the [`gm107`] and [`ga100`] submodules;
//! only code that has matched on [`Chipset`](crate::chip::Chipset) uses them.
#![allow(non_camel_case_types)]

use core::marker::PhantomData;

use crate::chip::{Architecture, ChipError, Chipset};

/// Why an MMIO access failed.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmioError {
    /// The offset is not 4-byte aligned.
    Unaligned = 1,
    /// The offset lies outside the mapped BAR0 (or the model's register file).
    OutOfRange = 2,
    /// The device did not answer (the PPC to the model failed, or the mapping is gone).
    Unavailable = 3,
    /// A register array index is past the array's end.
    BadIndex = 4,
}

/// 32-bit access to BAR0, by byte offset.
pub trait Mmio {
    /// Read the 32-bit register at `offset`.
    ///
    /// # Errors
    /// Implementation-specific [`MmioError`].
    fn read32(&mut self, offset: u32) -> Result<u32, MmioError>;
    /// Write `value` to the 32-bit register at `offset`.
    ///
    /// # Errors
    /// Implementation-specific [`MmioError`].
    fn write32(&mut self, offset: u32, value: u32) -> Result<(), MmioError>;
}

/// Why a field could not be read or written.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldError {
    /// A value written to a field does not fit in its bits.
    TooWide = 1,
    /// A field's bits hold no valid value of its type.
    InvalidValue = 2,
}

/// Register access or field error, for helpers that do both.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegError {
    /// The MMIO access failed.
    Mmio(MmioError) = 1,
    /// A field value was invalid or too wide.
    Field(FieldError) = 2,
}

impl From<MmioError> for RegError {
    fn from(e: MmioError) -> Self {
        Self::Mmio(e)
    }
}

impl From<FieldError> for RegError {
    fn from(e: FieldError) -> Self {
        Self::Field(e)
    }
}

/// A register value: a `u32` with typed field accessors.
pub trait Register: Copy {
    /// The register's raw bits.
    fn into_raw(self) -> u32;
    /// A register value from raw bits.
    fn from_raw(raw: u32) -> Self;
}

/// Base address of a block of registers that exists once per engine instance (nova-core's
/// `PFalconBase`): base-relative registers take one of these to find their absolute offset.
pub trait RegisterBase: Copy {
    /// Absolute BAR0 offset of the block.
    fn base(self) -> u32;
}

/// A falcon engine instance; base of the `NV_PFALCON_*` registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Falcon {
    /// The GSP falcon (`NV_PGSP`), base 0x110000.
    Gsp,
    /// The SEC2 falcon (`NV_PSEC`), base 0x840000.
    Sec2,
}

impl RegisterBase for Falcon {
    fn base(self) -> u32 {
        match self {
            Self::Gsp => 0x0011_0000,
            Self::Sec2 => 0x0084_0000,
        }
    }
}

/// The RISC-V ("falcon2", `NV_PRISCV`/`NV_PFALCON2`) block of a falcon: 0x1000 above its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Falcon2(pub Falcon);

impl RegisterBase for Falcon2 {
    fn base(self) -> u32 {
        self.0.base() + 0x1000
    }
}

/// Builds a register value field by field; see [`Register`] types' `set`.
#[derive(Debug, Clone, Copy)]
pub struct Writer<R> {
    raw: u32,
    too_wide: bool,
    _reg: PhantomData<R>,
}

impl<R: Register> Writer<R> {
    /// Replace bits `hi:lo` with `value`, remembering if `value` did not fit.
    pub fn bits(mut self, hi: u32, lo: u32, value: u32) -> Self {
        let mask = field_mask(hi, lo);
        let shifted = value.checked_shl(lo).unwrap_or(0);
        if shifted >> lo != value || shifted & !mask != 0 {
            self.too_wide = true;
        }
        self.raw = (self.raw & !mask) | (shifted & mask);
        self
    }
}

/// Mask of bits `hi:lo` (`hi >= lo`, both below 32; the macro checks this at compile time).
pub const fn field_mask(hi: u32, lo: u32) -> u32 {
    let below_hi = if hi >= 31 {
        u32::MAX
    } else {
        (1 << (hi + 1)) - 1
    };
    let from_lo = if lo > 31 { 0 } else { u32::MAX << lo };
    below_hi & from_lo
}

/// Apply `f` to a [`Writer`] over `reg`.
///
/// # Errors
/// [`FieldError::TooWide`] if any value written did not fit its field.
pub fn set<R: Register>(reg: R, f: impl FnOnce(Writer<R>) -> Writer<R>) -> Result<R, FieldError> {
    let w = f(Writer {
        raw: reg.into_raw(),
        too_wide: false,
        _reg: PhantomData,
    });
    if w.too_wide {
        Err(FieldError::TooWide)
    } else {
        Ok(R::from_raw(w.raw))
    }
}

/// Declare one register: its type, offset form, and fields. See the module doc.
///
/// ```text
/// register! {
///     /// doc
///     pub NAME @ 0x100 { /// doc
///                        7:4 field; 0:0 flag => bool; 3:1 kind ?=> Kind; }
/// }
/// ```
/// Offset forms: `@ 0x100` (fixed), `@ Falcon + 0x100` (relative to a [`RegisterBase`] value
/// passed to `read`/`write`), `@ 0x100 [8, stride 8]` (array of 8, index passed to `read`/`write`).
#[macro_export]
macro_rules! register {
    // The value type and its fields.
    (@type $(#[$doc:meta])* $vis:vis $name:ident { $($fields:tt)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Default)]
        $vis struct $name(u32);

        impl $crate::regs::Register for $name {
            fn into_raw(self) -> u32 {
                self.0
            }
            fn from_raw(raw: u32) -> Self {
                Self(raw)
            }
        }

        impl $name {
            /// A value from raw bits.
            pub const fn from_raw(raw: u32) -> Self {
                Self(raw)
            }
            /// The raw bits.
            pub const fn into_raw(self) -> u32 {
                self.0
            }
            /// This value with fields changed by `f` (see [`Writer`]($crate::regs::Writer)).
            ///
            /// # Errors
            /// [`FieldError::TooWide`]($crate::regs::FieldError::TooWide) if a value does not fit.
            pub fn set(
                self,
                f: impl FnOnce($crate::regs::Writer<Self>) -> $crate::regs::Writer<Self>,
            ) -> Result<Self, $crate::regs::FieldError> {
                $crate::regs::set(self, f)
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($name), "({:#010x})"), self.0)
            }
        }

        $crate::register!(@fields $name $($fields)*);
    };

    (@fields $name:ident) => {};
    // One-bit flag.
    (@fields $name:ident $(#[$fdoc:meta])* $hi:literal : $lo:literal $field:ident => bool;
        $($rest:tt)*) => {
        const _: () = assert!($hi == $lo, "a bool field is one bit");
        impl $name {
            $(#[$fdoc])*
            pub const fn $field(self) -> bool {
                (self.0 >> $lo) & 1 != 0
            }
        }
        impl $crate::regs::Writer<$name> {
            $(#[$fdoc])*
            pub fn $field(self, value: bool) -> Self {
                self.bits($hi, $lo, u32::from(value))
            }
        }
        $crate::register!(@fields $name $($rest)*);
    };
    // Typed field whose decoding can fail.
    (@fields $name:ident $(#[$fdoc:meta])* $hi:literal : $lo:literal $field:ident ?=> $ty:ty;
        $($rest:tt)*) => {
        const _: () = assert!($hi >= $lo && $hi < 32, "field bits are hi:lo within 32");
        impl $name {
            $(#[$fdoc])*
            ///
            /// # Errors
            /// [`FieldError::InvalidValue`]($crate::regs::FieldError::InvalidValue) when the bits
            /// name no value of the type.
            pub fn $field(self) -> Result<$ty, $crate::regs::FieldError> {
                let bits = (self.0 & $crate::regs::field_mask($hi, $lo)) >> $lo;
                <$ty>::try_from(bits).map_err(|_| $crate::regs::FieldError::InvalidValue)
            }
        }
        impl $crate::regs::Writer<$name> {
            $(#[$fdoc])*
            pub fn $field(self, value: $ty) -> Self {
                self.bits($hi, $lo, u32::from(value))
            }
        }
        $crate::register!(@fields $name $($rest)*);
    };
    // Plain number.
    (@fields $name:ident $(#[$fdoc:meta])* $hi:literal : $lo:literal $field:ident;
        $($rest:tt)*) => {
        const _: () = assert!($hi >= $lo && $hi < 32, "field bits are hi:lo within 32");
        impl $name {
            $(#[$fdoc])*
            pub const fn $field(self) -> u32 {
                (self.0 & $crate::regs::field_mask($hi, $lo)) >> $lo
            }
        }
        impl $crate::regs::Writer<$name> {
            $(#[$fdoc])*
            pub fn $field(self, value: u32) -> Self {
                self.bits($hi, $lo, value)
            }
        }
        $crate::register!(@fields $name $($rest)*);
    };

    // Fixed offset.
    ($(#[$doc:meta])* $vis:vis $name:ident @ $off:literal { $($fields:tt)* }) => {
        $crate::register!(@type $(#[$doc])* $vis $name { $($fields)* });
        impl $name {
            /// BAR0 offset.
            pub const OFFSET: u32 = $off;
            /// Read the register.
            ///
            /// # Errors
            /// The [`Mmio`]($crate::regs::Mmio) implementation's error.
            pub fn read<M: $crate::regs::Mmio + ?Sized>(
                io: &mut M,
            ) -> Result<Self, $crate::regs::MmioError> {
                io.read32(Self::OFFSET).map(Self)
            }
            /// Write the register.
            ///
            /// # Errors
            /// The [`Mmio`]($crate::regs::Mmio) implementation's error.
            pub fn write<M: $crate::regs::Mmio + ?Sized>(
                self,
                io: &mut M,
            ) -> Result<(), $crate::regs::MmioError> {
                io.write32(Self::OFFSET, self.0)
            }
        }
    };
    // Relative to an engine base.
    ($(#[$doc:meta])* $vis:vis $name:ident @ $base:ident + $off:literal { $($fields:tt)* }) => {
        $crate::register!(@type $(#[$doc])* $vis $name { $($fields)* });
        impl $name {
            /// Offset from the engine's base.
            pub const OFFSET: u32 = $off;
            /// Absolute BAR0 offset in the engine instance `base`.
            pub fn offset(base: $base) -> u32 {
                $crate::regs::RegisterBase::base(base) + Self::OFFSET
            }
            /// Read the register of engine instance `base`.
            ///
            /// # Errors
            /// The [`Mmio`]($crate::regs::Mmio) implementation's error.
            pub fn read<M: $crate::regs::Mmio + ?Sized>(
                io: &mut M,
                base: $base,
            ) -> Result<Self, $crate::regs::MmioError> {
                io.read32(Self::offset(base)).map(Self)
            }
            /// Write the register of engine instance `base`.
            ///
            /// # Errors
            /// The [`Mmio`]($crate::regs::Mmio) implementation's error.
            pub fn write<M: $crate::regs::Mmio + ?Sized>(
                self,
                io: &mut M,
                base: $base,
            ) -> Result<(), $crate::regs::MmioError> {
                io.write32(Self::offset(base), self.0)
            }
        }
    };
    // Array.
    ($(#[$doc:meta])* $vis:vis $name:ident @ $off:literal [$count:literal, stride $stride:literal]
        { $($fields:tt)* }) => {
        $crate::register!(@type $(#[$doc])* $vis $name { $($fields)* });
        impl $name {
            /// BAR0 offset of element 0.
            pub const OFFSET: u32 = $off;
            /// Number of elements.
            pub const COUNT: usize = $count;
            /// Bytes between elements.
            pub const STRIDE: u32 = $stride;
            /// BAR0 offset of element `index`.
            ///
            /// # Errors
            /// [`MmioError::BadIndex`]($crate::regs::MmioError::BadIndex) past the end.
            pub fn offset(index: usize) -> Result<u32, $crate::regs::MmioError> {
                if index >= Self::COUNT {
                    return Err($crate::regs::MmioError::BadIndex);
                }
                u32::try_from(index)
                    .ok()
                    .and_then(|i| i.checked_mul(Self::STRIDE))
                    .and_then(|o| o.checked_add(Self::OFFSET))
                    .ok_or($crate::regs::MmioError::BadIndex)
            }
            /// Read element `index`.
            ///
            /// # Errors
            /// [`MmioError::BadIndex`]($crate::regs::MmioError::BadIndex) or the
            /// [`Mmio`]($crate::regs::Mmio) implementation's error.
            pub fn read<M: $crate::regs::Mmio + ?Sized>(
                io: &mut M,
                index: usize,
            ) -> Result<Self, $crate::regs::MmioError> {
                io.read32(Self::offset(index)?).map(Self)
            }
            /// Write element `index`.
            ///
            /// # Errors
            /// [`MmioError::BadIndex`]($crate::regs::MmioError::BadIndex) or the
            /// [`Mmio`]($crate::regs::Mmio) implementation's error.
            pub fn write<M: $crate::regs::Mmio + ?Sized>(
                self,
                io: &mut M,
                index: usize,
            ) -> Result<(), $crate::regs::MmioError> {
                io.write32(Self::offset(index)?, self.0)
            }
        }
    };

}

// --- PMC -------------------------------------------------------------------------------------

register! {
    /// Basic revision information about the GPU.
    pub NV_PMC_BOOT_0 @ 0x0000_0000 {
        /// Lower bits of the architecture.
        28:24 architecture_0;
        /// Implementation of the architecture.
        23:20 implementation;
        /// Most significant bit of the architecture.
        8:8 architecture_1;
        /// Major revision.
        7:4 major_revision;
        /// Minor revision.
        3:0 minor_revision;
    }
}

impl NV_PMC_BOOT_0 {
    /// Whether the GPU predates Fermi (`architecture_1` clear and `architecture_0` below GF100's
    /// 0xc; open-gpu-doc manuals, as nova-core checks).
    pub const fn is_older_than_fermi(self) -> bool {
        const GF100: u32 = 0xc;
        self.architecture_1() == 0 && self.architecture_0() < GF100
    }
}

register! {
    /// Extended architecture information (reference 1.1).
    pub NV_PMC_BOOT_42 @ 0x0000_0a00 {
        /// Architecture.
        29:24 architecture ?=> Architecture;
        /// Implementation of the architecture.
        23:20 implementation;
        /// Major revision.
        19:16 major_revision;
        /// Minor revision.
        15:12 minor_revision;
    }
}

impl NV_PMC_BOOT_42 {
    /// The chip this value names.
    ///
    /// # Errors
    /// See [`Chipset::from_boot42`].
    pub fn chipset(self) -> Result<Chipset, ChipError> {
        Chipset::from_boot42(self)
    }
}

// --- PBUS ------------------------------------------------------------------------------------

register! {
    /// `NV_PBUS_SW_SCRATCH(0xe)` (0x1400 + 4 × 0xe): FWSEC-FRTS leaves its error code here.
    pub NV_PBUS_SW_SCRATCH_0E_FRTS_ERR @ 0x0000_1438 {
        /// FRTS error code; 0 means success.
        31:16 frts_err_code;
    }
}

// --- PFB -------------------------------------------------------------------------------------

register! {
    /// Low bits of the sysmem flush page's address (the page the GPU's sysmembar writes to).
    pub NV_PFB_NISO_FLUSH_SYSMEM_ADDR @ 0x0010_0c10 {
        /// Address bits 39:8.
        31:0 adr_39_08;
    }
}

register! {
    /// High bits of the sysmem flush page's address (GA100 and later).
    pub NV_PFB_NISO_FLUSH_SYSMEM_ADDR_HI @ 0x0010_0c40 {
        /// Address bits 63:40.
        23:0 adr_63_40;
    }
}

register! {
    /// Local memory range, from which TU10x/GA100 derive the usable framebuffer size.
    pub NV_PFB_PRI_MMU_LOCAL_MEMORY_RANGE @ 0x0010_0ce0 {
        /// ECC is enabled: one sixteenth of memory holds check bits.
        30:30 ecc_mode_enabled => bool;
        /// Magnitude (MiB units before scaling).
        9:4 lower_mag;
        /// Scale: size = mag << scale MiB.
        3:0 lower_scale;
    }
}

impl NV_PFB_PRI_MMU_LOCAL_MEMORY_RANGE {
    /// The usable framebuffer size in bytes: `(mag << scale)` MiB, less 1/16 under ECC.
    pub const fn usable_fb_size(self) -> u64 {
        let size = ((self.lower_mag() as u64) << self.lower_scale()) << 20;
        if self.ecc_mode_enabled() {
            size / 16 * 15
        } else {
            size
        }
    }
}

register! {
    /// Inclusive start of the WPR2 region.
    pub NV_PFB_PRI_MMU_WPR2_ADDR_LO @ 0x001f_a824 {
        /// Address bits 39:12 of the start.
        31:4 lo_val;
    }
}

impl NV_PFB_PRI_MMU_WPR2_ADDR_LO {
    /// The inclusive start address of WPR2.
    pub const fn lower_bound(self) -> u64 {
        (self.lo_val() as u64) << 12
    }
}

register! {
    /// Exclusive end of the WPR2 region; zero when no WPR2 exists.
    pub NV_PFB_PRI_MMU_WPR2_ADDR_HI @ 0x001f_a828 {
        /// Address bits 39:12 of the end.
        31:4 hi_val;
    }
}

impl NV_PFB_PRI_MMU_WPR2_ADDR_HI {
    /// The exclusive end address of WPR2 (0: no WPR2).
    pub const fn higher_bound(self) -> u64 {
        (self.hi_val() as u64) << 12
    }
}

// --- PGSP ------------------------------------------------------------------------------------

register! {
    /// Command-queue doorbell: the CPU writes 0 to element 0 after each message it queues.
    pub NV_PGSP_QUEUE_HEAD @ 0x0011_0c00 [8, stride 8] {
        /// Written value (the GSP only notices the write).
        31:0 address;
    }
}

// --- PGC6 (always-on registers that survive GC6) ---------------------------------------------

register! {
    /// Boot Sequence Interface scratch: tells when GSP resume (sequencer CORE_RESUME) is done.
    pub NV_PGC6_BSI_SECURE_SCRATCH_14 @ 0x0011_80f8 {
        /// Boot stage 3 handoff: set once the GSP has been reloaded.
        26:26 boot_stage_3_handoff => bool;
    }
}

register! {
    /// Privilege mask of `NV_PGC6_AON_SECURE_SCRATCH_GROUP_05`: the CPU may trust a read of the
    /// GFW boot progress only once FWSEC has lowered the read protection.
    pub NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_PRIV_LEVEL_MASK @ 0x0011_8128 {
        /// Level-0 (CPU) reads are allowed.
        0:0 read_protection_level0 => bool;
    }
}

register! {
    /// `NV_PGC6_AON_SECURE_SCRATCH_GROUP_05(0)`: GFW (the VBIOS's boot firmware) progress.
    pub NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_0_GFW_BOOT @ 0x0011_8234 {
        /// Progress; 0xff when GFW boot has completed.
        7:0 progress;
    }
}

impl NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_0_GFW_BOOT {
    /// Whether GFW boot has completed.
    pub const fn completed(self) -> bool {
        self.progress() == 0xff
    }
}

register! {
    /// `NV_PGC6_AON_SECURE_SCRATCH_GROUP_42`, used as the usable FB size on GA102 and later.
    pub NV_USABLE_FB_SIZE_IN_MB @ 0x0011_83a4 {
        /// Usable framebuffer size in MiB.
        31:0 value;
    }
}

impl NV_USABLE_FB_SIZE_IN_MB {
    /// The usable framebuffer size in bytes.
    pub const fn usable_fb_size(self) -> u64 {
        (self.value() as u64) << 20
    }
}

// --- PDISP -----------------------------------------------------------------------------------

register! {
    /// Where the VBIOS keeps its VGA workspace in VRAM.
    pub NV_PDISP_VGA_WORKSPACE_BASE @ 0x0062_5f04 {
        /// Base address >> 16.
        31:8 addr;
        /// `addr` is valid.
        3:3 status_valid => bool;
    }
}

impl NV_PDISP_VGA_WORKSPACE_BASE {
    /// The workspace base address, if valid.
    pub const fn vga_workspace_addr(self) -> Option<u64> {
        if self.status_valid() {
            Some((self.addr() as u64) << 16)
        } else {
            None
        }
    }
}

// --- PFALCON (per falcon: GSP 0x110000, SEC2 0x840000) ---------------------------------------

register! {
    /// Interrupt clear: write 1 to a bit to clear that interrupt.
    pub NV_PFALCON_FALCON_IRQSCLR @ Falcon + 0x004 {
        /// The falcon halted.
        4:4 halt => bool;
        /// Software interrupt 0 (the GSP's "message queued" doorbell to the CPU).
        6:6 swgen0 => bool;
    }
}

register! {
    /// Interrupt status.
    pub NV_PFALCON_FALCON_IRQSTAT @ Falcon + 0x008 {
        /// The falcon halted.
        4:4 halt => bool;
        /// Software interrupt 0.
        6:6 swgen0 => bool;
    }
}

register! {
    /// Mailbox 0: low half of boot arguments going in, status coming out.
    pub NV_PFALCON_FALCON_MAILBOX0 @ Falcon + 0x040 {
        /// Value.
        31:0 value;
    }
}

register! {
    /// Mailbox 1: high half of boot arguments.
    pub NV_PFALCON_FALCON_MAILBOX1 @ Falcon + 0x044 {
        /// Value.
        31:0 value;
    }
}

register! {
    /// Version of the firmware running on the falcon (the bootloader's app_version goes here).
    pub NV_PFALCON_FALCON_OS @ Falcon + 0x080 {
        /// Value.
        31:0 value;
    }
}

register! {
    /// Hardware configuration 2.
    pub NV_PFALCON_FALCON_HWCFG2 @ Falcon + 0x0f4 {
        /// The falcon has a RISC-V core.
        10:10 riscv => bool;
        /// Memory scrubbing in progress (clears when done).
        12:12 mem_scrubbing => bool;
        /// Reset has completed (GA102 and later).
        31:31 reset_ready => bool;
    }
}

register! {
    /// Falcon CPU control.
    pub NV_PFALCON_FALCON_CPUCTL @ Falcon + 0x100 {
        /// Start the CPU.
        1:1 startcpu => bool;
        /// The CPU is halted.
        4:4 halted => bool;
        /// Writes go through `CPUCTL_ALIAS`.
        6:6 alias_en => bool;
    }
}

register! {
    /// Engine reset (`NV_PGSP_FALCON_ENGINE` / `NV_PSEC_FALCON_ENGINE`).
    pub NV_PFALCON_FALCON_ENGINE @ Falcon + 0x3c0 {
        /// Hold the engine in reset.
        0:0 reset => bool;
    }
}

// Loading a heavy-secure image (booter on SEC2) by DMA: nova-core `falcon.rs` `dma_wr`/`load`.

register! {
    /// Boot vector: IMEM address the falcon starts at.
    pub NV_PFALCON_FALCON_BOOTVEC @ Falcon + 0x104 {
        /// Address.
        31:0 value;
    }
}

register! {
    /// DMA control.
    pub NV_PFALCON_FALCON_DMACTL @ Falcon + 0x10c {
        /// DMA requires a context.
        0:0 require_ctx => bool;
        /// DMEM scrubbing in progress.
        1:1 dmem_scrubbing => bool;
        /// IMEM scrubbing in progress.
        2:2 imem_scrubbing => bool;
        /// DMA queue depth.
        6:3 dmaq_num;
        /// Secure status.
        7:7 secure_stat => bool;
    }
}

register! {
    /// DMA transfer base: source address bits 39:8.
    pub NV_PFALCON_FALCON_DMATRFBASE @ Falcon + 0x110 {
        /// Address >> 8 (low 32 bits).
        31:0 base;
    }
}

register! {
    /// DMA transfer: offset in falcon memory.
    pub NV_PFALCON_FALCON_DMATRFMOFFS @ Falcon + 0x114 {
        /// IMEM/DMEM offset.
        23:0 offs;
    }
}

register! {
    /// DMA transfer command; writing it starts one 256-byte transfer.
    pub NV_PFALCON_FALCON_DMATRFCMD @ Falcon + 0x118 {
        /// The DMA queue is full.
        0:0 full => bool;
        /// The DMA engine is idle.
        1:1 idle => bool;
        /// Security level of the transfer (1: secure IMEM).
        3:2 sec;
        /// Target is IMEM (else DMEM).
        4:4 imem => bool;
        /// Falcon-to-memory (else memory-to-falcon).
        5:5 is_write => bool;
        /// Transfer size: 6 = 256 bytes.
        10:8 size;
        /// Context DMA index.
        14:12 ctxdma;
        /// Set the DMA tag.
        16:16 set_dmtag => bool;
    }
}

register! {
    /// DMA transfer: offset from the base in the source.
    pub NV_PFALCON_FALCON_DMATRFFBOFFS @ Falcon + 0x11c {
        /// Offset.
        31:0 offs;
    }
}

register! {
    /// DMA transfer base, high bits (address bits 48:40).
    pub NV_PFALCON_FALCON_DMATRFBASE1 @ Falcon + 0x128 {
        /// Address >> 40.
        8:0 base;
    }
}

register! {
    /// CPU control alias (used when `CPUCTL.alias_en` is set).
    pub NV_PFALCON_FALCON_CPUCTL_ALIAS @ Falcon + 0x130 {
        /// Start the CPU.
        1:1 startcpu => bool;
    }
}

register! {
    /// Framebuffer interface transfer config of context 0 (`NV_PFALCON_FBIF_TRANSCFG(0)`).
    pub NV_PFALCON_FBIF_TRANSCFG_0 @ Falcon + 0x600 {
        /// Target: 0 local FB, 1 coherent sysmem, 2 non-coherent sysmem.
        1:0 target;
        /// Physical (else virtual) addressing.
        2:2 mem_type => bool;
    }
}

register! {
    /// Framebuffer interface control.
    pub NV_PFALCON_FBIF_CTL @ Falcon + 0x624 {
        /// Allow physical DMA without a context.
        7:7 allow_phys_no_ctx => bool;
    }
}

// --- PRISCV (falcon2 block: falcon base + 0x1000) --------------------------------------------

register! {
    /// RISC-V core status (TU10x and GA100 only).
    pub NV_PRISCV_RISCV_CORE_SWITCH_RISCV_STATUS @ Falcon2 + 0x240 {
        /// The RISC-V core is active.
        0:0 active_stat => bool;
    }
}

register! {
    /// RISC-V CPU control (GA102 and later).
    pub NV_PRISCV_RISCV_CPUCTL @ Falcon2 + 0x388 {
        /// The RISC-V core is halted.
        0:0 halted => bool;
        /// The RISC-V core is active.
        7:7 active_stat => bool;
    }
}

register! {
    /// Signature algorithm the boot ROM checks (GA102 and later).
    pub NV_PFALCON2_FALCON_MOD_SEL @ Falcon2 + 0x180 {
        /// Algorithm: 1 = RSA-3K.
        7:0 algo;
    }
}

register! {
    /// Microcode id the boot ROM checks the signature for.
    pub NV_PFALCON2_FALCON_BROM_CURR_UCODE_ID @ Falcon2 + 0x198 {
        /// Id.
        7:0 ucode_id;
    }
}

register! {
    /// Engine id mask the boot ROM checks.
    pub NV_PFALCON2_FALCON_BROM_ENGIDMASK @ Falcon2 + 0x19c {
        /// Mask.
        31:0 value;
    }
}

register! {
    /// `NV_PFALCON2_FALCON_BROM_PARAADDR(0)`: where in DMEM the signature is (pkc_data_offset).
    pub NV_PFALCON2_FALCON_BROM_PARAADDR_0 @ Falcon2 + 0x210 {
        /// DMEM offset.
        31:0 value;
    }
}

/// Which core of a dual falcon/RISC-V engine runs (`NV_PRISCV_RISCV_BCR_CTRL_CORE_SELECT`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeregrineCoreSelect {
    /// The falcon core.
    Falcon = 0,
    /// The RISC-V core.
    Riscv = 1,
}

impl TryFrom<u32> for PeregrineCoreSelect {
    type Error = FieldError;

    fn try_from(v: u32) -> Result<Self, FieldError> {
        match v {
            0 => Ok(Self::Falcon),
            1 => Ok(Self::Riscv),
            _ => Err(FieldError::InvalidValue),
        }
    }
}

impl From<PeregrineCoreSelect> for u32 {
    fn from(v: PeregrineCoreSelect) -> u32 {
        // CAST: a fieldless `repr(u32)` enum converts losslessly.
        v as u32
    }
}

register! {
    /// Boot configuration of a dual-core engine (GA102 and later).
    pub NV_PRISCV_RISCV_BCR_CTRL @ Falcon2 + 0x668 {
        /// The configuration is valid.
        0:0 valid => bool;
        /// Core to run.
        4:4 core_select ?=> PeregrineCoreSelect;
        /// Boot ROM fetch enabled.
        8:8 br_fetch => bool;
    }
}

register! {
    /// SEC2 microcode fuse versions, one per ucode id 1..=16.
    pub NV_FUSE_OPT_FPF_SEC2_UCODE1_VERSION @ 0x0082_4140 [16, stride 4] {
        /// Version bit mask.
        15:0 data;
    }
}

register! {
    /// NVDEC microcode fuse versions.
    pub NV_FUSE_OPT_FPF_NVDEC_UCODE1_VERSION @ 0x0082_4100 [16, stride 4] {
        /// Version bit mask.
        15:0 data;
    }
}

register! {
    /// GSP microcode fuse versions.
    pub NV_FUSE_OPT_FPF_GSP_UCODE1_VERSION @ 0x0082_41c0 [16, stride 4] {
        /// Version bit mask.
        15:0 data;
    }
}

/// The fuse version a heavy-secure image's signature must match (nova-core falcon `ga102`
/// `signature_reg_fuse_version`): the highest set bit of the engine's fuse register for
/// `ucode_id` (1..=16), for [`crate::elf::Booter::signature`].
///
/// # Errors
/// [`MmioError::BadIndex`] for a ucode id outside 1..=16 or an engine mask naming none of SEC2
/// (bit 0), NVDEC (bit 2) or GSP (bit 10); the MMIO error otherwise.
pub fn fuse_version<M: Mmio + ?Sized>(
    io: &mut M,
    engine_id_mask: u16,
    ucode_id: u8,
) -> Result<u32, MmioError> {
    let index = usize::from(ucode_id)
        .checked_sub(1)
        .ok_or(MmioError::BadIndex)?;
    let bits = if engine_id_mask & 0x0001 != 0 {
        NV_FUSE_OPT_FPF_SEC2_UCODE1_VERSION::read(io, index)?.data()
    } else if engine_id_mask & 0x0004 != 0 {
        NV_FUSE_OPT_FPF_NVDEC_UCODE1_VERSION::read(io, index)?.data()
    } else if engine_id_mask & 0x0400 != 0 {
        NV_FUSE_OPT_FPF_GSP_UCODE1_VERSION::read(io, index)?.data()
    } else {
        return Err(MmioError::BadIndex);
    };
    Ok(u32::BITS - bits.leading_zeros())
}

/// Registers of Maxwell-to-Turing chips (only for code that matched on the chip).
pub mod gm107 {
    register! {
        /// Display fuse (TU10x).
        pub NV_FUSE_STATUS_OPT_DISPLAY @ 0x0002_1c04 {
            /// The display engine is fused off.
            0:0 display_disabled => bool;
        }
    }
}

/// Registers of GA100 and later (only for code that matched on the chip).
pub mod ga100 {
    register! {
        /// Display fuse (GA100 and later).
        pub NV_FUSE_STATUS_OPT_DISPLAY @ 0x0082_0c04 {
            /// The display engine is fused off.
            0:0 display_disabled => bool;
        }
    }
}

/// Register the sysmem flush page at DMA address `addr` (reference 1.3): `addr >> 8` into
/// `NV_PFB_NISO_FLUSH_SYSMEM_ADDR`, and on GA100 and later `addr >> 40` into the `_HI` register
/// first. Must happen before any falcon is reset.
///
/// # Errors
/// [`FieldError::TooWide`] (as [`RegError::Field`]) on Turing when `addr` does not fit 40 bits;
/// the MMIO error otherwise.
pub fn write_sysmem_flush_page<M: Mmio + ?Sized>(
    io: &mut M,
    chip: Chipset,
    addr: u64,
) -> Result<(), RegError> {
    // CAST: keeps address bits 39:8, the low register's field; bits 63:40 go to `hi`.
    let lo = (addr >> 8) as u32;
    // CAST: a u64 shifted right by 40 has at most 24 significant bits.
    let hi = (addr >> 40) as u32;
    if chip.has_sysmem_flush_hi() {
        NV_PFB_NISO_FLUSH_SYSMEM_ADDR_HI::default()
            .set(|w| w.adr_63_40(hi))?
            .write(io)?;
    } else if hi != 0 {
        return Err(FieldError::TooWide.into());
    }
    NV_PFB_NISO_FLUSH_SYSMEM_ADDR::default()
        .set(|w| w.adr_39_08(lo))?
        .write(io)?;
    Ok(())
}

/// Read back the registered sysmem flush page address.
///
/// # Errors
/// The MMIO error.
pub fn read_sysmem_flush_page<M: Mmio + ?Sized>(
    io: &mut M,
    chip: Chipset,
) -> Result<u64, MmioError> {
    let lo = u64::from(NV_PFB_NISO_FLUSH_SYSMEM_ADDR::read(io)?.adr_39_08()) << 8;
    if chip.has_sysmem_flush_hi() {
        Ok(lo | u64::from(NV_PFB_NISO_FLUSH_SYSMEM_ADDR_HI::read(io)?.adr_63_40()) << 40)
    } else {
        Ok(lo)
    }
}

/// Whether the display engine is present (nova-core `fb/hal`: the chip's display fuse).
///
/// # Errors
/// The MMIO error.
pub fn display_enabled<M: Mmio + ?Sized>(io: &mut M, chip: Chipset) -> Result<bool, MmioError> {
    Ok(if chip.has_ga100_display_fuse() {
        !ga100::NV_FUSE_STATUS_OPT_DISPLAY::read(io)?.display_disabled()
    } else {
        !gm107::NV_FUSE_STATUS_OPT_DISPLAY::read(io)?.display_disabled()
    })
}

#[cfg(test)]
pub(crate) mod test_mmio {
    //! A register file for tests: a map from offset to value, with an access log.
    extern crate std;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    use super::{Mmio, MmioError};

    /// Registers as a map; unknown offsets read as 0; `limit` bounds BAR0.
    #[derive(Debug, Default)]
    pub struct MapMmio {
        pub regs: BTreeMap<u32, u32>,
        pub writes: Vec<(u32, u32)>,
        pub fail: bool,
    }

    impl Mmio for MapMmio {
        fn read32(&mut self, offset: u32) -> Result<u32, MmioError> {
            if self.fail {
                return Err(MmioError::Unavailable);
            }
            if offset % 4 != 0 {
                return Err(MmioError::Unaligned);
            }
            if offset >= 0x0100_0000 {
                return Err(MmioError::OutOfRange);
            }
            Ok(self.regs.get(&offset).copied().unwrap_or(0))
        }
        fn write32(&mut self, offset: u32, value: u32) -> Result<(), MmioError> {
            if self.fail {
                return Err(MmioError::Unavailable);
            }
            self.writes.push((offset, value));
            self.regs.insert(offset, value);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_mmio::MapMmio;
    use super::*;

    #[test]
    fn fields_read_their_bits() {
        let r = NV_PMC_BOOT_42::from_raw(0x1720_a000 | 0x0001_0000);
        assert_eq!(r.architecture(), Ok(Architecture::Ampere));
        assert_eq!(r.implementation(), 2);
        assert_eq!(r.major_revision(), 1);
        assert_eq!(r.minor_revision(), 0xa);
        assert_eq!(
            NV_PMC_BOOT_42::from_raw(0x3f00_0000).architecture(),
            Err(FieldError::InvalidValue)
        );
        let cpuctl = NV_PFALCON_FALCON_CPUCTL::from_raw(1 << 4);
        assert!(cpuctl.halted());
        assert!(!cpuctl.startcpu());
    }

    #[test]
    fn writer_sets_fields_and_refuses_too_wide_values() {
        let r = NV_PFALCON_FALCON_CPUCTL::default()
            .set(|w| w.startcpu(true).alias_en(true))
            .unwrap();
        assert_eq!(r.into_raw(), 0b100_0010);
        let hi = NV_PFB_NISO_FLUSH_SYSMEM_ADDR_HI::default().set(|w| w.adr_63_40(0x100_0000));
        assert_eq!(hi, Err(FieldError::TooWide));
        let ok = NV_PFB_NISO_FLUSH_SYSMEM_ADDR_HI::default()
            .set(|w| w.adr_63_40(0xff_ffff))
            .unwrap();
        assert_eq!(ok.into_raw(), 0xff_ffff);
        // A field in the middle keeps its neighbours.
        let b = NV_PRISCV_RISCV_BCR_CTRL::from_raw(0x101)
            .set(|w| w.core_select(PeregrineCoreSelect::Riscv))
            .unwrap();
        assert_eq!(b.into_raw(), 0x111);
        assert_eq!(b.core_select(), Ok(PeregrineCoreSelect::Riscv));
    }

    #[test]
    fn field_mask_covers_edges() {
        assert_eq!(field_mask(31, 0), u32::MAX);
        assert_eq!(field_mask(0, 0), 1);
        assert_eq!(field_mask(31, 31), 0x8000_0000);
        assert_eq!(field_mask(23, 20), 0x00f0_0000);
    }

    #[test]
    fn falcon_relative_offsets() {
        assert_eq!(NV_PFALCON_FALCON_MAILBOX0::offset(Falcon::Gsp), 0x110040);
        assert_eq!(NV_PFALCON_FALCON_MAILBOX1::offset(Falcon::Sec2), 0x840044);
        assert_eq!(NV_PFALCON_FALCON_IRQSTAT::offset(Falcon::Gsp), 0x110008);
        assert_eq!(NV_PFALCON_FALCON_ENGINE::offset(Falcon::Gsp), 0x1103c0);
        assert_eq!(
            NV_PRISCV_RISCV_CPUCTL::offset(Falcon2(Falcon::Gsp)),
            0x111388
        );
        assert_eq!(
            NV_PRISCV_RISCV_BCR_CTRL::offset(Falcon2(Falcon::Sec2)),
            0x841668
        );
        assert_eq!(
            NV_PRISCV_RISCV_CORE_SWITCH_RISCV_STATUS::offset(Falcon2(Falcon::Gsp)),
            0x111240
        );
    }

    #[test]
    fn array_registers_bound_their_index() {
        assert_eq!(NV_PGSP_QUEUE_HEAD::offset(0), Ok(0x110c00));
        assert_eq!(NV_PGSP_QUEUE_HEAD::offset(7), Ok(0x110c38));
        assert_eq!(NV_PGSP_QUEUE_HEAD::offset(8), Err(MmioError::BadIndex));
        let mut io = MapMmio::default();
        assert_eq!(
            NV_PGSP_QUEUE_HEAD::default().write(&mut io, 8),
            Err(MmioError::BadIndex)
        );
        NV_PGSP_QUEUE_HEAD::default().write(&mut io, 0).unwrap();
        assert_eq!(io.writes, [(0x110c00, 0)]);
    }

    #[test]
    fn read_write_go_through_mmio() {
        let mut io = MapMmio::default();
        io.regs.insert(0x1fa824, 0x0123_4560);
        io.regs.insert(0x1fa828, 0x0123_4670);
        let lo = NV_PFB_PRI_MMU_WPR2_ADDR_LO::read(&mut io).unwrap();
        let hi = NV_PFB_PRI_MMU_WPR2_ADDR_HI::read(&mut io).unwrap();
        assert_eq!(lo.lower_bound(), 0x12_3456 << 12);
        assert_eq!(hi.higher_bound(), 0x12_3467 << 12);
        NV_PFALCON_FALCON_MAILBOX0::default()
            .set(|w| w.value(0xdead_beef))
            .unwrap()
            .write(&mut io, Falcon::Sec2)
            .unwrap();
        assert_eq!(io.regs[&0x840040], 0xdead_beef);
        io.fail = true;
        assert_eq!(NV_PMC_BOOT_0::read(&mut io), Err(MmioError::Unavailable));
    }

    #[test]
    fn decoded_sizes_and_addresses() {
        // 24 GiB: mag 3 << scale 13 MiB.
        let r = NV_PFB_PRI_MMU_LOCAL_MEMORY_RANGE::from_raw(3 << 4 | 13);
        assert_eq!(r.usable_fb_size(), 24 << 30);
        let ecc = NV_PFB_PRI_MMU_LOCAL_MEMORY_RANGE::from_raw(1 << 30 | 1 << 4 | 14);
        assert_eq!(ecc.usable_fb_size(), (16u64 << 30) / 16 * 15);
        assert_eq!(
            NV_USABLE_FB_SIZE_IN_MB::from_raw(24576).usable_fb_size(),
            24 << 30
        );
        let vga = NV_PDISP_VGA_WORKSPACE_BASE::from_raw(0x05ff_f008);
        assert_eq!(vga.vga_workspace_addr(), Some(0x05_fff0 << 16));
        assert_eq!(
            NV_PDISP_VGA_WORKSPACE_BASE::from_raw(0x05ff_f000).vga_workspace_addr(),
            None
        );
        assert!(NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_0_GFW_BOOT::from_raw(0x1ff).completed());
        assert!(!NV_PGC6_AON_SECURE_SCRATCH_GROUP_05_0_GFW_BOOT::from_raw(0xfe).completed());
        assert_eq!(
            NV_PBUS_SW_SCRATCH_0E_FRTS_ERR::from_raw(0x0042_0000).frts_err_code(),
            0x42
        );
    }

    #[test]
    fn sysmem_flush_page_per_chip() {
        let mut io = MapMmio::default();
        let addr = 0x12 << 40 | 0x34_5678_9000;
        write_sysmem_flush_page(&mut io, Chipset::GA102, addr).unwrap();
        assert_eq!(io.writes, [(0x100c40, 0x12), (0x100c10, 0x3456_7890)]);
        assert_eq!(read_sysmem_flush_page(&mut io, Chipset::GA102), Ok(addr));
        let mut tu = MapMmio::default();
        assert_eq!(
            write_sysmem_flush_page(&mut tu, Chipset::TU102, 1 << 40),
            Err(RegError::Field(FieldError::TooWide))
        );
        assert!(tu.writes.is_empty());
        write_sysmem_flush_page(&mut tu, Chipset::TU102, 0xff_ffff_f000).unwrap();
        assert_eq!(tu.writes, [(0x100c10, 0xffff_fff0)]);
        assert_eq!(
            read_sysmem_flush_page(&mut tu, Chipset::TU102),
            Ok(0xff_ffff_f000)
        );
    }

    #[test]
    fn fuse_version_is_the_highest_set_bit() {
        let mut io = MapMmio::default();
        io.regs.insert(0x824140 + 4 * 2, 0b0111); // SEC2, ucode id 3
        io.regs.insert(0x8241c0, 0x8000); // GSP, ucode id 1
        assert_eq!(fuse_version(&mut io, 1, 3), Ok(3));
        assert_eq!(fuse_version(&mut io, 0x400, 1), Ok(16));
        assert_eq!(fuse_version(&mut io, 4, 1), Ok(0));
        assert_eq!(fuse_version(&mut io, 1, 0), Err(MmioError::BadIndex));
        assert_eq!(fuse_version(&mut io, 1, 17), Err(MmioError::BadIndex));
        assert_eq!(fuse_version(&mut io, 2, 1), Err(MmioError::BadIndex));
        assert_eq!(NV_PFALCON_FALCON_DMATRFCMD::offset(Falcon::Sec2), 0x840118);
        assert_eq!(
            NV_PFALCON2_FALCON_BROM_PARAADDR_0::offset(Falcon2(Falcon::Sec2)),
            0x841210
        );
    }

    #[test]
    fn display_fuse_per_chip() {
        let mut io = MapMmio::default();
        io.regs.insert(0x21c04, 1);
        assert_eq!(display_enabled(&mut io, Chipset::TU102), Ok(false));
        assert_eq!(display_enabled(&mut io, Chipset::GA102), Ok(true));
    }
}
