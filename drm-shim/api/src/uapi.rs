//! DRM uAPI argument structs, byte for byte as Linux defines them (LP64). Names are the C names so
//! they grep against the headers. Every size and field offset is pinned at compile time.
//!
//! Sources: `include/uapi/drm/drm.h` (core), `include/uapi/drm/nouveau_drm.h` (the uAPI Mesa's NVK
//! uses), `include/uapi/drm/nova_drm.h` (not yet a stable uAPI); cross-checked with
//! `../shared/reference/gsp-protocol.md` section 9 and `../shared/reference/drm-clients.md`.
#![allow(non_camel_case_types)]

use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

macro_rules! pin {
    ($t:ty, size $s:expr $(, $f:ident @ $o:expr)* $(,)?) => {
        const _: () = assert!(size_of::<$t>() == $s);
        $(const _: () = assert!(offset_of!($t, $f) == $o);)*
    };
}

// ---- DRM core (drm.h) ----

/// `struct drm_version`: ints, then (len, user pointer) pairs for name, date, desc.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_version {
    pub version_major: i32,
    pub version_minor: i32,
    pub version_patchlevel: i32,
    pub _pad: u32,
    pub name_len: u64,
    pub name: u64,
    pub date_len: u64,
    pub date: u64,
    pub desc_len: u64,
    pub desc: u64,
}
pin!(drm_version, size 64, version_patchlevel @ 8, name_len @ 16, name @ 24, date_len @ 32, date @ 40, desc_len @ 48, desc @ 56);

/// `struct drm_gem_close`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_gem_close {
    pub handle: u32,
    pub pad: u32,
}
pin!(drm_gem_close, size 8, handle @ 0, pad @ 4);

/// `struct drm_get_cap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_get_cap {
    pub capability: u64,
    pub value: u64,
}
pin!(drm_get_cap, size 16, capability @ 0, value @ 8);

/// `DRM_CAP_SYNCOBJ`, `DRM_CAP_SYNCOBJ_TIMELINE` (drm.h).
pub const DRM_CAP_SYNCOBJ: u64 = 0x13;
/// Timeline syncobjs.
pub const DRM_CAP_SYNCOBJ_TIMELINE: u64 = 0x14;

/// `struct drm_syncobj_create`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_syncobj_create {
    pub handle: u32,
    pub flags: u32,
}
pin!(drm_syncobj_create, size 8, handle @ 0, flags @ 4);
/// `DRM_SYNCOBJ_CREATE_SIGNALED`.
pub const DRM_SYNCOBJ_CREATE_SIGNALED: u32 = 1 << 0;

/// `struct drm_syncobj_destroy`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_syncobj_destroy {
    pub handle: u32,
    pub pad: u32,
}
pin!(drm_syncobj_destroy, size 8, handle @ 0, pad @ 4);

/// `struct drm_syncobj_wait`: `handles` is a user pointer to `count_handles` u32s.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_syncobj_wait {
    pub handles: u64,
    pub timeout_nsec: i64,
    pub count_handles: u32,
    pub flags: u32,
    pub first_signaled: u32,
    pub pad: u32,
    pub deadline_nsec: u64,
}
pin!(drm_syncobj_wait, size 40, timeout_nsec @ 8, count_handles @ 16, flags @ 20, first_signaled @ 24, pad @ 28, deadline_nsec @ 32);
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL`.
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL: u32 = 1 << 0;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT`.
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT: u32 = 1 << 1;

// ---- nouveau (nouveau_drm.h) ----

/// `struct drm_nouveau_getparam`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_getparam {
    pub param: u64,
    pub value: u64,
}
pin!(drm_nouveau_getparam, size 16, param @ 0, value @ 8);

/// `NOUVEAU_GETPARAM_*`.
pub mod getparam {
    pub const PCI_VENDOR: u64 = 3;
    pub const PCI_DEVICE: u64 = 4;
    pub const BUS_TYPE: u64 = 5;
    pub const FB_SIZE: u64 = 8;
    pub const AGP_SIZE: u64 = 9;
    pub const CHIPSET_ID: u64 = 11;
    pub const VM_VRAM_BASE: u64 = 12;
    pub const GRAPH_UNITS: u64 = 13;
    pub const PTIMER_TIME: u64 = 14;
    pub const HAS_BO_USAGE: u64 = 15;
    pub const HAS_PAGEFLIP: u64 = 16;
    pub const EXEC_PUSH_MAX: u64 = 17;
    pub const VRAM_BAR_SIZE: u64 = 18;
    pub const VRAM_USED: u64 = 19;
    pub const HAS_VMA_TILEMODE: u64 = 20;
    /// `NV_PCIE` bus type value returned for BUS_TYPE (nouveau_abi16.c).
    pub const BUS_TYPE_PCIE: u64 = 2;
}

/// `struct drm_nouveau_channel_alloc` (88 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_channel_alloc {
    pub fb_ctxdma_handle: u32,
    pub tt_ctxdma_handle: u32,
    pub channel: i32,
    pub pushbuf_domains: u32,
    pub notifier_handle: u32,
    pub subchan: [drm_nouveau_subchan; 8],
    pub nr_subchan: u32,
}
/// One `subchan[]` entry of `drm_nouveau_channel_alloc`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_subchan {
    pub handle: u32,
    pub grclass: u32,
}
pin!(drm_nouveau_channel_alloc, size 88, channel @ 8, pushbuf_domains @ 12, notifier_handle @ 16, subchan @ 20, nr_subchan @ 84);

/// `struct drm_nouveau_channel_free`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_channel_free {
    pub channel: i32,
}
pin!(drm_nouveau_channel_free, size 4, channel @ 0);

/// `NOUVEAU_GEM_DOMAIN_*`.
pub mod domain {
    pub const CPU: u32 = 1 << 0;
    pub const VRAM: u32 = 1 << 1;
    pub const GART: u32 = 1 << 2;
    pub const MAPPABLE: u32 = 1 << 3;
    pub const COHERENT: u32 = 1 << 4;
    pub const NO_SHARE: u32 = 1 << 5;
    /// `NOUVEAU_GEM_VALID_DOMAINS`... as the kernel checks them.
    pub const VALID: u32 = CPU | VRAM | GART | MAPPABLE | COHERENT | NO_SHARE;
}

/// `struct drm_nouveau_gem_info` (40 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct drm_nouveau_gem_info {
    pub handle: u32,
    pub domain: u32,
    pub size: u64,
    pub offset: u64,
    pub map_handle: u64,
    pub tile_mode: u32,
    pub tile_flags: u32,
}
pin!(drm_nouveau_gem_info, size 40, domain @ 4, size @ 8, offset @ 16, map_handle @ 24, tile_mode @ 32, tile_flags @ 36);

/// `struct drm_nouveau_gem_new` (48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_gem_new {
    pub info: drm_nouveau_gem_info,
    pub channel_hint: u32,
    pub align: u32,
}
pin!(drm_nouveau_gem_new, size 48, info @ 0, channel_hint @ 40, align @ 44);

/// `struct drm_nouveau_gem_cpu_prep`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_gem_cpu_prep {
    pub handle: u32,
    pub flags: u32,
}
pin!(drm_nouveau_gem_cpu_prep, size 8, handle @ 0, flags @ 4);
/// `NOUVEAU_GEM_CPU_PREP_NOWAIT`.
pub const NOUVEAU_GEM_CPU_PREP_NOWAIT: u32 = 0x1;
/// `NOUVEAU_GEM_CPU_PREP_WRITE`.
pub const NOUVEAU_GEM_CPU_PREP_WRITE: u32 = 0x4;

/// `struct drm_nouveau_gem_cpu_fini`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_gem_cpu_fini {
    pub handle: u32,
}
pin!(drm_nouveau_gem_cpu_fini, size 4, handle @ 0);

/// `struct drm_nouveau_sync` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_sync {
    pub flags: u32,
    pub handle: u32,
    pub timeline_value: u64,
}
pin!(drm_nouveau_sync, size 16, flags @ 0, handle @ 4, timeline_value @ 8);
/// `DRM_NOUVEAU_SYNC_SYNCOBJ`.
pub const DRM_NOUVEAU_SYNC_SYNCOBJ: u32 = 0x0;
/// `DRM_NOUVEAU_SYNC_TIMELINE_SYNCOBJ`.
pub const DRM_NOUVEAU_SYNC_TIMELINE_SYNCOBJ: u32 = 0x1;
/// `DRM_NOUVEAU_SYNC_TYPE_MASK`.
pub const DRM_NOUVEAU_SYNC_TYPE_MASK: u32 = 0xf;

/// `struct drm_nouveau_vm_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_vm_init {
    pub kernel_managed_addr: u64,
    pub kernel_managed_size: u64,
}
pin!(drm_nouveau_vm_init, size 16, kernel_managed_addr @ 0, kernel_managed_size @ 8);

/// `struct drm_nouveau_vm_bind_op` (40 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_vm_bind_op {
    pub op: u32,
    pub flags: u32,
    pub handle: u32,
    pub pad: u32,
    pub addr: u64,
    pub bo_offset: u64,
    pub range: u64,
}
pin!(drm_nouveau_vm_bind_op, size 40, flags @ 4, handle @ 8, pad @ 12, addr @ 16, bo_offset @ 24, range @ 32);
/// `DRM_NOUVEAU_VM_BIND_OP_MAP`.
pub const DRM_NOUVEAU_VM_BIND_OP_MAP: u32 = 0x0;
/// `DRM_NOUVEAU_VM_BIND_OP_UNMAP`.
pub const DRM_NOUVEAU_VM_BIND_OP_UNMAP: u32 = 0x1;
/// `DRM_NOUVEAU_VM_BIND_SPARSE` (op flag).
pub const DRM_NOUVEAU_VM_BIND_SPARSE: u32 = 1 << 8;

/// `struct drm_nouveau_vm_bind` (40 bytes); the `*_ptr` fields are user pointers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_vm_bind {
    pub op_count: u32,
    pub flags: u32,
    pub wait_count: u32,
    pub sig_count: u32,
    pub wait_ptr: u64,
    pub sig_ptr: u64,
    pub op_ptr: u64,
}
pin!(drm_nouveau_vm_bind, size 40, flags @ 4, wait_count @ 8, sig_count @ 12, wait_ptr @ 16, sig_ptr @ 24, op_ptr @ 32);
/// `DRM_NOUVEAU_VM_BIND_RUN_ASYNC`.
pub const DRM_NOUVEAU_VM_BIND_RUN_ASYNC: u32 = 0x1;

/// `struct drm_nouveau_exec_push` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_exec_push {
    pub va: u64,
    pub va_len: u32,
    pub flags: u32,
}
pin!(drm_nouveau_exec_push, size 16, va @ 0, va_len @ 8, flags @ 12);
/// `DRM_NOUVEAU_EXEC_PUSH_NO_PREFETCH`.
pub const DRM_NOUVEAU_EXEC_PUSH_NO_PREFETCH: u32 = 0x1;

/// `struct drm_nouveau_exec` (40 bytes); the `*_ptr` fields are user pointers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nouveau_exec {
    pub channel: u32,
    pub push_count: u32,
    pub wait_count: u32,
    pub sig_count: u32,
    pub wait_ptr: u64,
    pub sig_ptr: u64,
    pub push_ptr: u64,
}
pin!(drm_nouveau_exec, size 40, push_count @ 4, wait_count @ 8, sig_count @ 12, wait_ptr @ 16, sig_ptr @ 24, push_ptr @ 32);

// ---- nova (nova_drm.h) ----

/// `struct drm_nova_getparam`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nova_getparam {
    pub param: u64,
    pub value: u64,
}
pin!(drm_nova_getparam, size 16, param @ 0, value @ 8);
/// `NOVA_GETPARAM_VRAM_BAR_SIZE`.
pub const NOVA_GETPARAM_VRAM_BAR_SIZE: u64 = 0x1;

/// `struct drm_nova_gem_create`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nova_gem_create {
    pub handle: u32,
    pub pad: u32,
    pub size: u64,
}
pin!(drm_nova_gem_create, size 16, handle @ 0, pad @ 4, size @ 8);

/// `struct drm_nova_gem_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct drm_nova_gem_info {
    pub handle: u32,
    pub pad: u32,
    pub size: u64,
}
pin!(drm_nova_gem_info, size 16, handle @ 0, pad @ 4, size @ 8);
