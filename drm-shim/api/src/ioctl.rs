//! The Linux ioctl request encoding (`include/uapi/asm-generic/ioctl.h`): bits 0..8 nr, 8..16
//! type, 16..30 size, 30..32 direction (1 = write i.e. user→kernel, 2 = read). DRM uses type
//! `'d'` (0x64) and driver ioctls start at `DRM_COMMAND_BASE` 0x40.

/// No data transfer.
pub const IOC_NONE: u32 = 0;
/// User writes, kernel reads (`_IOW`).
pub const IOC_WRITE: u32 = 1;
/// Kernel writes, user reads (`_IOR`).
pub const IOC_READ: u32 = 2;
/// DRM's ioctl type letter.
pub const DRM_IOCTL_BASE: u32 = b'd' as u32;
/// First driver-private ioctl number.
pub const DRM_COMMAND_BASE: u32 = 0x40;

/// `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    // CAST: ioctl sizes are 14 bits; every struct here is far smaller (pinned below).
    (dir << 30) | ((size as u32 & 0x3fff) << 16) | (ty << 8) | nr
}

/// `DRM_IOWR(nr, T)`.
pub const fn drm_iowr<T>(nr: u32) -> u32 {
    ioc(
        IOC_READ | IOC_WRITE,
        DRM_IOCTL_BASE,
        nr,
        core::mem::size_of::<T>(),
    )
}

/// `DRM_IOW(nr, T)`.
pub const fn drm_iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, DRM_IOCTL_BASE, nr, core::mem::size_of::<T>())
}

/// A request number split into its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// `IOC_*` direction bits.
    pub dir: u32,
    /// Type letter (`'d'` for DRM).
    pub ty: u32,
    /// Number within the type.
    pub nr: u32,
    /// Argument size in bytes.
    pub size: usize,
}

impl Request {
    /// Split a request number.
    pub const fn decode(req: u32) -> Self {
        Self {
            dir: req >> 30,
            ty: (req >> 8) & 0xff,
            nr: req & 0xff,
            size: ((req >> 16) & 0x3fff) as usize,
        }
    }
}

use crate::uapi::*;

/// DRM core and driver request numbers. Each is computed from its struct, and pinned against the
/// value in the Linux headers (drm.h, nouveau_drm.h, nova_drm.h) just below.
pub mod nr {
    use super::*;
    pub const VERSION: u32 = drm_iowr::<drm_version>(0x00);
    pub const GEM_CLOSE: u32 = drm_iow::<drm_gem_close>(0x09);
    pub const GET_CAP: u32 = drm_iowr::<drm_get_cap>(0x0c);
    pub const SYNCOBJ_CREATE: u32 = drm_iowr::<drm_syncobj_create>(0xbf);
    pub const SYNCOBJ_DESTROY: u32 = drm_iowr::<drm_syncobj_destroy>(0xc0);
    pub const SYNCOBJ_WAIT: u32 = drm_iowr::<drm_syncobj_wait>(0xc3);

    pub const NOUVEAU_GETPARAM: u32 = drm_iowr::<drm_nouveau_getparam>(DRM_COMMAND_BASE);
    pub const NOUVEAU_CHANNEL_ALLOC: u32 =
        drm_iowr::<drm_nouveau_channel_alloc>(DRM_COMMAND_BASE + 0x02);
    pub const NOUVEAU_CHANNEL_FREE: u32 =
        drm_iow::<drm_nouveau_channel_free>(DRM_COMMAND_BASE + 0x03);
    /// NVIF: nr 0x47, size varies per call (libdrm's `nouveau_object_ioctl`).
    pub const NOUVEAU_NVIF_NR: u32 = DRM_COMMAND_BASE + 0x07;
    pub const NOUVEAU_VM_INIT: u32 = drm_iowr::<drm_nouveau_vm_init>(DRM_COMMAND_BASE + 0x10);
    pub const NOUVEAU_VM_BIND: u32 = drm_iowr::<drm_nouveau_vm_bind>(DRM_COMMAND_BASE + 0x11);
    pub const NOUVEAU_EXEC: u32 = drm_iowr::<drm_nouveau_exec>(DRM_COMMAND_BASE + 0x12);
    pub const NOUVEAU_GEM_NEW: u32 = drm_iowr::<drm_nouveau_gem_new>(DRM_COMMAND_BASE + 0x40);
    pub const NOUVEAU_GEM_CPU_PREP: u32 =
        drm_iow::<drm_nouveau_gem_cpu_prep>(DRM_COMMAND_BASE + 0x42);
    pub const NOUVEAU_GEM_CPU_FINI: u32 =
        drm_iow::<drm_nouveau_gem_cpu_fini>(DRM_COMMAND_BASE + 0x43);
    pub const NOUVEAU_GEM_INFO: u32 = drm_iowr::<drm_nouveau_gem_info>(DRM_COMMAND_BASE + 0x44);

    pub const NOVA_GETPARAM: u32 = drm_iowr::<drm_nova_getparam>(DRM_COMMAND_BASE);
    pub const NOVA_GEM_CREATE: u32 = drm_iowr::<drm_nova_gem_create>(DRM_COMMAND_BASE + 0x01);
    pub const NOVA_GEM_INFO: u32 = drm_iowr::<drm_nova_gem_info>(DRM_COMMAND_BASE + 0x02);

    // Pinned against the Linux headers (values as the kernel's `DRM_IOCTL_*` macros expand,
    // e.g. in Debian's libdrm-dev `drm.h`/`nouveau_drm.h` and ../shared/reference/drm-clients.md).
    const _: () = assert!(VERSION == 0xc040_6400);
    const _: () = assert!(GEM_CLOSE == 0x4008_6409);
    const _: () = assert!(GET_CAP == 0xc010_640c);
    const _: () = assert!(SYNCOBJ_CREATE == 0xc008_64bf);
    const _: () = assert!(SYNCOBJ_DESTROY == 0xc008_64c0);
    const _: () = assert!(SYNCOBJ_WAIT == 0xc028_64c3);
    const _: () = assert!(NOUVEAU_GETPARAM == 0xc010_6440);
    const _: () = assert!(NOUVEAU_CHANNEL_ALLOC == 0xc058_6442);
    const _: () = assert!(NOUVEAU_CHANNEL_FREE == 0x4004_6443);
    const _: () = assert!(NOUVEAU_VM_INIT == 0xc010_6450);
    const _: () = assert!(NOUVEAU_VM_BIND == 0xc028_6451);
    const _: () = assert!(NOUVEAU_EXEC == 0xc028_6452);
    const _: () = assert!(NOUVEAU_GEM_NEW == 0xc030_6480);
    const _: () = assert!(NOUVEAU_GEM_CPU_PREP == 0x4008_6482);
    const _: () = assert!(NOUVEAU_GEM_CPU_FINI == 0x4004_6483);
    const _: () = assert!(NOUVEAU_GEM_INFO == 0xc028_6484);
    const _: () = assert!(NOVA_GETPARAM == 0xc010_6440);
    const _: () = assert!(NOVA_GEM_CREATE == 0xc010_6441);
    const _: () = assert!(NOVA_GEM_INFO == 0xc010_6442);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_splits_the_fields() {
        let r = Request::decode(nr::NOUVEAU_VM_BIND);
        assert_eq!(
            r,
            Request {
                dir: IOC_READ | IOC_WRITE,
                ty: 0x64,
                nr: 0x51,
                size: 40
            }
        );
        let r = Request::decode(nr::GEM_CLOSE);
        assert_eq!((r.dir, r.nr, r.size), (IOC_WRITE, 0x09, 8));
        assert_eq!(Request::decode(0).dir, IOC_NONE);
    }
}
