//! nouveau's `NVIF` ioctl (nr 0x47, size varies per call), as Linux answers it since v6.11:
//! `nouveau_abi16_ioctl` in `drivers/gpu/drm/nouveau/nouveau_abi16.c` ("drm/nouveau: handle
//! limited nvif in abi16", which replaced `nouveau_usif.c`). User space only ever used a fraction
//! of NVIF, and that is what Linux still serves:
//!
//! - `NEW` of an `NV_DEVICE` under the client (object 0, route 0): records the object name;
//! - `MTHD` `NV_DEVICE_V0_INFO` on such a device: fills `nv_device_info_v0`
//!   (`nvkm_udevice_info`: platform, chipset, family, VRAM size, chip name);
//! - `DEL` of an object (unknown names are fine);
//! - `SCLASS`/`NEW` on an abi16 channel (route 0xff, token = channel id): this shim offers no
//!   engine objects through NVIF, so a channel lists no classes and creating one is `EINVAL`;
//! - every other call (NOP, RD/WR, MAP, NTFY_*, other classes and methods): `EINVAL`.
//!
//! Object names are user-space pointers (libdrm passes the address of its `nouveau_object`): they
//! are kept per file and compared, never dereferenced.

use crate::Call;
use drm_api::errno::Errno;
use drm_api::nvif::*;
use gpu_api::DeviceInfo;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes};

/// NVIF device objects per file (libdrm makes one per `nouveau_device_new`).
pub const MAX_OBJECTS: usize = 8;

/// The NVIF objects a file created: device object names.
#[derive(Debug, Default)]
pub struct Objects {
    devices: [Option<u64>; MAX_OBJECTS],
}

impl Objects {
    fn contains(&self, name: u64) -> bool {
        self.devices.contains(&Some(name))
    }

    /// `nouveau_abi16_obj_new`: `EEXIST` for a name in use, `ENOMEM` when the table is full.
    fn insert(&mut self, name: u64) -> Result<(), Errno> {
        if self.contains(name) {
            return Err(Errno::EEXIST);
        }
        let slot = self
            .devices
            .iter_mut()
            .find(|d| d.is_none())
            .ok_or(Errno::ENOMEM)?;
        *slot = Some(name);
        Ok(())
    }

    fn remove(&mut self, name: u64) {
        for d in self.devices.iter_mut().filter(|d| **d == Some(name)) {
            *d = None;
        }
    }
}

/// Sizes of the fixed parts.
const HDR: usize = core::mem::size_of::<nvif_ioctl_v0>();
const NEW: usize = core::mem::size_of::<nvif_ioctl_new_v0>();
const MTHD: usize = core::mem::size_of::<nvif_ioctl_mthd_v0>();
const SCLASS: usize = core::mem::size_of::<nvif_ioctl_sclass_v0>();
const OCLASS: usize = core::mem::size_of::<nvif_ioctl_sclass_oclass_v0>();
const INFO: usize = core::mem::size_of::<nv_device_info_v0>();

/// One NVIF call of `size` bytes (the request's size field).
pub(crate) fn dispatch(cx: &mut Call<'_, '_>, size: usize) -> Result<(), Errno> {
    // The kernel checks the size, then copies the whole block in (EFAULT when it is not all user
    // memory: here, not all inside the client's buffer).
    let argc = size.checked_sub(HDR).ok_or(Errno::EINVAL)?;
    let last = cx.arg_at.checked_add(size - 1).ok_or(Errno::EFAULT)?;
    cx.mem.arg::<u8>(last)?;
    let hdr: nvif_ioctl_v0 = cx.arg()?;
    if hdr.version != 0
        || !matches!(
            hdr.route,
            NVIF_IOCTL_V0_ROUTE_NVIF | NVIF_IOCTL_V0_ROUTE_HIDDEN
        )
    {
        return Err(Errno::EINVAL);
    }
    let body = cx.arg_at + HDR;
    match hdr.type_ {
        ty::SCLASS => sclass(cx, &hdr, body, argc),
        ty::NEW => new(cx, &hdr, body, argc),
        ty::DEL => del(cx, &hdr, argc),
        ty::MTHD => mthd(cx, &hdr, body, argc),
        _ => Err(Errno::EINVAL),
    }
}

impl Call<'_, '_> {
    fn body<T: FromBytes + IntoBytes>(&self, at: usize) -> Result<T, Errno> {
        self.mem.arg(at)
    }

    fn put_body<T: IntoBytes + Immutable>(&self, at: usize, v: &T) -> Result<(), Errno> {
        self.mem.put_arg(at, v)
    }

    /// `nouveau_abi16_chan`: the route-0xff token names one of the file's channels.
    fn has_channel(&self, token: u64) -> bool {
        u32::try_from(token).is_ok_and(|id| self.file.chans.get(id).is_some())
    }
}

fn sclass(cx: &mut Call<'_, '_>, hdr: &nvif_ioctl_v0, at: usize, argc: usize) -> Result<(), Errno> {
    if hdr.route == NVIF_IOCTL_V0_ROUTE_NVIF || argc < SCLASS {
        return Err(Errno::EINVAL);
    }
    let mut s: nvif_ioctl_sclass_v0 = cx.body(at)?;
    if argc - SCLASS != usize::from(s.count) * OCLASS || !cx.has_channel(hdr.token) {
        return Err(Errno::EINVAL);
    }
    // No engine classes are offered through NVIF (module doc).
    s.count = 0;
    cx.put_body(at, &s)
}

fn new(cx: &mut Call<'_, '_>, hdr: &nvif_ioctl_v0, at: usize, argc: usize) -> Result<(), Errno> {
    if argc < NEW {
        return Err(Errno::EINVAL);
    }
    let n: nvif_ioctl_new_v0 = cx.body(at)?;
    if n.version != 0 {
        return Err(Errno::EINVAL);
    }
    if hdr.route == NVIF_IOCTL_V0_ROUTE_NVIF {
        if hdr.object != 0 || n.oclass != NV_DEVICE {
            return Err(Errno::EINVAL);
        }
        return cx.file.nvif.insert(n.object);
    }
    if !cx.has_channel(hdr.token) {
        return Err(Errno::EINVAL);
    }
    // An engine object on a channel: the name is checked first, as Linux does, then the class
    // is refused because none is offered.
    if cx.file.nvif.contains(n.object) {
        return Err(Errno::EEXIST);
    }
    Err(Errno::EINVAL)
}

fn del(cx: &mut Call<'_, '_>, hdr: &nvif_ioctl_v0, argc: usize) -> Result<(), Errno> {
    if hdr.route != NVIF_IOCTL_V0_ROUTE_NVIF || argc != 0 {
        return Err(Errno::EINVAL);
    }
    cx.file.nvif.remove(hdr.object);
    Ok(())
}

fn mthd(cx: &mut Call<'_, '_>, hdr: &nvif_ioctl_v0, at: usize, argc: usize) -> Result<(), Errno> {
    if hdr.route != NVIF_IOCTL_V0_ROUTE_NVIF || argc < MTHD {
        return Err(Errno::EINVAL);
    }
    let m: nvif_ioctl_mthd_v0 = cx.body(at)?;
    if !cx.file.nvif.contains(hdr.object) || m.method != NV_DEVICE_V0_INFO || argc - MTHD != INFO {
        return Err(Errno::EINVAL);
    }
    let at = at + MTHD;
    let asked: nv_device_info_v0 = cx.body(at)?;
    if asked.version != 0 {
        return Err(Errno::EINVAL);
    }
    cx.put_body(at, &device_info(&cx.device)?)
}

/// `nvkm_udevice_info` for the GPU the GSP reported: a PCIe device, the family and chip name of
/// its chipset, all VRAM usable (no instance memory is carved out of it here), revision 0 (not
/// reported), and the chip name as the device name (nvkm's fallback when the PCI id has no
/// marketing name in its table).
///
/// # Errors
/// `EIO` when the reported chipset does not fit the 16-bit field (a broken device report).
pub(crate) fn device_info(d: &DeviceInfo) -> Result<nv_device_info_v0, Errno> {
    let chipset = u16::try_from(d.chipset).map_err(|_| Errno::EIO)?;
    let mut info = nv_device_info_v0::new_zeroed();
    info.platform = platform::PCIE;
    info.chipset = chipset;
    info.family = family_of(chipset);
    info.gsp_rm = 1;
    info.ram_size = d.fb_size;
    info.ram_user = d.fb_size;
    let chip = chip_name(chipset);
    if let (Some(c), Some(n)) = (
        info.chip.get_mut(..chip.len()),
        info.name.get_mut(..chip.len()),
    ) {
        c.copy_from_slice(&chip);
        n.copy_from_slice(&chip);
    }
    Ok(info)
}

/// nouveau's `card_type` → `NV_DEVICE_INFO_V0_*` family (`nvkm_udevice_info`), for the GSP-era
/// chipsets; 0 ("unknown") otherwise, as nouveau reports it.
fn family_of(chipset: u16) -> u8 {
    match chipset >> 4 {
        0x14 => family::VOLTA,
        0x16 => family::TURING,
        0x17 => family::AMPERE,
        0x18 => family::HOPPER,
        0x19 => family::ADA,
        0x1a | 0x1b => family::BLACKWELL,
        _ => 0,
    }
}

/// The chip's name as nouveau's chipset tables spell it ("GA102" for 0x172); "NVxxx" (hex) for a
/// chipset outside the GSP-era families.
fn chip_name(chipset: u16) -> [u8; 5] {
    let hex = |n: u16| {
        b"0123456789ABCDEF"
            .get(usize::from(n & 0xf))
            .copied()
            .unwrap_or(b'?')
    };
    let prefix: &[u8; 3] = match chipset >> 4 {
        0x14 => b"GV1",
        0x16 => b"TU1",
        0x17 => b"GA1",
        0x18 => b"GH1",
        0x19 => b"AD1",
        0x1a => b"GB1",
        0x1b => b"GB2",
        _ => {
            return [
                b'N',
                b'V',
                hex(chipset >> 8),
                hex(chipset >> 4),
                hex(chipset),
            ]
        }
    };
    // Two exceptions to "low nibble as the model number" (nouveau's nv167/nv168 tables).
    let model = match chipset {
        0x167 => 17,
        0x168 => 16,
        _ => chipset & 0xf,
    };
    let digit = |n: u16| b'0' + u8::try_from(n % 10).unwrap_or(0);
    [
        prefix[0],
        prefix[1],
        prefix[2],
        digit(model / 10),
        digit(model),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chip_names_and_families_follow_nouveau_tables() {
        assert_eq!(&chip_name(0x172), b"GA102");
        assert_eq!(&chip_name(0x167), b"TU117");
        assert_eq!(&chip_name(0x168), b"TU116");
        assert_eq!(&chip_name(0x194), b"AD104");
        assert_eq!(&chip_name(0x1b7), b"GB207");
        assert_eq!(&chip_name(0x0a5), b"NV0A5");
        assert_eq!(family_of(0x172), family::AMPERE);
        assert_eq!(family_of(0x164), family::TURING);
        assert_eq!(family_of(0x194), family::ADA);
        assert_eq!(family_of(0x0a5), 0);
    }

    #[test]
    fn object_table_refuses_duplicates_and_overflow() {
        let mut o = Objects::default();
        o.insert(0x1000).unwrap();
        assert_eq!(o.insert(0x1000), Err(Errno::EEXIST));
        for i in 1..MAX_OBJECTS as u64 {
            o.insert(0x1000 + i).unwrap();
        }
        assert_eq!(o.insert(0x9999), Err(Errno::ENOMEM));
        o.remove(0x1000);
        assert!(!o.contains(0x1000));
        o.insert(0x9999).unwrap();
    }
}
