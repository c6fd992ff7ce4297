//! NVIF: nouveau's object interface, reached through `DRM_IOCTL_NOUVEAU_NVIF` (nr 0x47, `DRM_IOWR`
//! with a size that varies per call). libdrm_nouveau (>= 2.4.60) takes this path when VERSION
//! reports >= 1.3.1: it creates the device object (class `NV_DEVICE`) under the client and asks it
//! for `NV_DEVICE_V0_INFO` to learn the chipset.
//!
//! An NVIF call is one argument block: [`nvif_ioctl_v0`], then the type's own struct
//! ([`nvif_ioctl_new_v0`], [`nvif_ioctl_mthd_v0`], [`nvif_ioctl_sclass_v0`], nothing for DEL), then
//! that struct's variable data (class arguments such as [`nv_device_v0`], method arguments such as
//! [`nv_device_info_v0`]). Object names (`object`, `token`) are user-space pointers chosen by the
//! client; the kernel only compares them.
//!
//! Sources (layouts as in the headers; sizes and offsets pinned below):
//! - `nvif/ioctl.h` (Linux `drivers/gpu/drm/nouveau/include/nvif/ioctl.h`, libdrm
//!   `nouveau/nvif/ioctl.h`): `nvif_ioctl_v0`, `nvif_ioctl_new_v0`, `nvif_ioctl_mthd_v0`,
//!   `nvif_ioctl_sclass_v0`, the `NVIF_IOCTL_V0_*` types, owners and routes;
//! - `nvif/class.h`: `NV_DEVICE` = 0x80;
//! - `nvif/cl0080.h`: `nv_device_v0`, `NV_DEVICE_V0_INFO`, `nv_device_info_v0` and its
//!   `NV_DEVICE_INFO_V0_*` platform/family values (Debian's libdrm-dev 2.4.114 ships the same
//!   layout, with `gsp_rm`/`pad07` still one `pad06[2]`);
//! - sizes libdrm sends at open (`../shared/reference/drm-clients.md`): NEW of the device 72 bytes
//!   (24 + 32 + 16), MTHD INFO 136 bytes (24 + 8 + 104).
#![allow(non_camel_case_types)]

use crate::ioctl::{ioc, DRM_IOCTL_BASE, IOC_READ, IOC_WRITE};
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

macro_rules! pin {
    ($t:ty, size $s:expr $(, $f:ident @ $o:expr)* $(,)?) => {
        const _: () = assert!(size_of::<$t>() == $s);
        $(const _: () = assert!(offset_of!($t, $f) == $o);)*
    };
}

/// The request number of an NVIF call of `size` bytes (`DRM_IOWR(DRM_NOUVEAU_NVIF, size)`, as
/// libdrm's `drmCommandWriteRead` builds it).
pub const fn request(size: usize) -> u32 {
    ioc(
        IOC_READ | IOC_WRITE,
        DRM_IOCTL_BASE,
        crate::ioctl::nr::NOUVEAU_NVIF_NR,
        size,
    )
}
const _: () = assert!(request(72) == 0xc048_6447);
const _: () = assert!(request(136) == 0xc088_6447);

/// `struct nvif_ioctl_v0`: the header of every NVIF call.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct nvif_ioctl_v0 {
    pub version: u8,
    /// `NVIF_IOCTL_V0_*` ([`ty`]).
    pub type_: u8,
    pub pad02: [u8; 4],
    /// `NVIF_IOCTL_V0_OWNER_*`.
    pub owner: u8,
    /// `NVIF_IOCTL_V0_ROUTE_*`: 0 for objects made through NVIF, 0xff for abi16 channels
    /// (then `token` is the channel id).
    pub route: u8,
    pub token: u64,
    /// The object the call is on (0 = the client itself).
    pub object: u64,
}
pin!(nvif_ioctl_v0, size 24, type_ @ 1, pad02 @ 2, owner @ 6, route @ 7, token @ 8, object @ 16);

/// `NVIF_IOCTL_V0_*` call types.
pub mod ty {
    pub const NOP: u8 = 0x00;
    pub const SCLASS: u8 = 0x01;
    pub const NEW: u8 = 0x02;
    pub const DEL: u8 = 0x03;
    pub const MTHD: u8 = 0x04;
    pub const RD: u8 = 0x05;
    pub const WR: u8 = 0x06;
    pub const MAP: u8 = 0x07;
    pub const UNMAP: u8 = 0x08;
    pub const NTFY_NEW: u8 = 0x09;
    pub const NTFY_DEL: u8 = 0x0a;
    pub const NTFY_GET: u8 = 0x0b;
    pub const NTFY_PUT: u8 = 0x0c;
}

/// `NVIF_IOCTL_V0_OWNER_ANY`.
pub const NVIF_IOCTL_V0_OWNER_ANY: u8 = 0xff;
/// `NVIF_IOCTL_V0_ROUTE_NVIF`.
pub const NVIF_IOCTL_V0_ROUTE_NVIF: u8 = 0x00;
/// `NVIF_IOCTL_V0_ROUTE_HIDDEN` (libdrm's abi16 objects: channels).
pub const NVIF_IOCTL_V0_ROUTE_HIDDEN: u8 = 0xff;

/// `struct nvif_ioctl_new_v0`, followed by the class's arguments.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct nvif_ioctl_new_v0 {
    pub version: u8,
    pub pad01: [u8; 6],
    pub route: u8,
    pub token: u64,
    /// The new object's name (libdrm: the address of its `struct nouveau_object`).
    pub object: u64,
    pub handle: u32,
    pub oclass: i32,
}
pin!(nvif_ioctl_new_v0, size 32, pad01 @ 1, route @ 7, token @ 8, object @ 16, handle @ 24, oclass @ 28);

/// `struct nvif_ioctl_mthd_v0`, followed by the method's arguments.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct nvif_ioctl_mthd_v0 {
    pub version: u8,
    pub method: u8,
    pub pad02: [u8; 6],
}
pin!(nvif_ioctl_mthd_v0, size 8, method @ 1, pad02 @ 2);

/// `struct nvif_ioctl_sclass_v0`, followed by `count` [`nvif_ioctl_sclass_oclass_v0`].
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct nvif_ioctl_sclass_v0 {
    pub version: u8,
    pub count: u8,
    pub pad02: [u8; 6],
}
pin!(nvif_ioctl_sclass_v0, size 8, count @ 1, pad02 @ 2);

/// One `oclass[]` entry of [`nvif_ioctl_sclass_v0`].
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct nvif_ioctl_sclass_oclass_v0 {
    pub oclass: i32,
    pub minver: i16,
    pub maxver: i16,
}
pin!(nvif_ioctl_sclass_oclass_v0, size 8, minver @ 4, maxver @ 6);

/// `NV_DEVICE` (`nvif/class.h`): the device object class.
pub const NV_DEVICE: i32 = 0x80;

/// `struct nv_device_v0`: `NV_DEVICE`'s class arguments.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct nv_device_v0 {
    pub version: u8,
    /// `priv` in Linux; padding in libdrm's copy.
    pub priv_: u8,
    pub pad02: [u8; 6],
    /// Device identifier, `!0` for the client's default device.
    pub device: u64,
}
pin!(nv_device_v0, size 16, priv_ @ 1, pad02 @ 2, device @ 8);

/// `NV_DEVICE_V0_INFO`: the device method returning [`nv_device_info_v0`].
pub const NV_DEVICE_V0_INFO: u8 = 0x00;
/// `NV_DEVICE_V0_TIME`.
pub const NV_DEVICE_V0_TIME: u8 = 0x01;

/// `struct nv_device_info_v0`: what `NV_DEVICE_V0_INFO` returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct nv_device_info_v0 {
    pub version: u8,
    /// `NV_DEVICE_INFO_V0_*` platform ([`platform`]).
    pub platform: u8,
    /// From `NV_PMC_BOOT_0`/`BOOT_42`, e.g. 0x172.
    pub chipset: u16,
    pub revision: u8,
    /// `NV_DEVICE_INFO_V0_*` family ([`family`]).
    pub family: u8,
    /// Whether the GPU runs GSP-RM (Linux >= 6.7; padding in libdrm's copy).
    pub gsp_rm: u8,
    pub pad07: u8,
    pub ram_size: u64,
    pub ram_user: u64,
    /// Chip name, NUL padded ("GA102").
    pub chip: [u8; 16],
    /// Device name, NUL padded.
    pub name: [u8; 64],
}
pin!(nv_device_info_v0, size 104, platform @ 1, chipset @ 2, revision @ 4, family @ 5, gsp_rm @ 6, pad07 @ 7, ram_size @ 8, ram_user @ 16, chip @ 24, name @ 40);

/// `NV_DEVICE_INFO_V0_*` platforms.
pub mod platform {
    pub const IGP: u8 = 0x00;
    pub const PCI: u8 = 0x01;
    pub const AGP: u8 = 0x02;
    pub const PCIE: u8 = 0x03;
    pub const SOC: u8 = 0x04;
}

/// `NV_DEVICE_INFO_V0_*` families of the chips a GSP drives (Turing and later).
pub mod family {
    pub const VOLTA: u8 = 0x0b;
    pub const TURING: u8 = 0x0c;
    pub const AMPERE: u8 = 0x0d;
    pub const ADA: u8 = 0x0e;
    pub const HOPPER: u8 = 0x0f;
    pub const BLACKWELL: u8 = 0x10;
}

/// The block libdrm sends to create the device: header, NEW, class arguments (72 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct nvif_new_device {
    pub ioctl: nvif_ioctl_v0,
    pub new: nvif_ioctl_new_v0,
    pub device: nv_device_v0,
}
pin!(nvif_new_device, size 72, new @ 24, device @ 56);

/// The block libdrm sends for `NV_DEVICE_V0_INFO`: header, MTHD, info (136 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct nvif_device_info {
    pub ioctl: nvif_ioctl_v0,
    pub mthd: nvif_ioctl_mthd_v0,
    pub info: nv_device_info_v0,
}
pin!(nvif_device_info, size 136, mthd @ 24, info @ 32);
