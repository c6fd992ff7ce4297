//! Moving one ioctl between the caller's memory and the slot's ioctl buffer, as the kernel's
//! `drm_ioctl` would copy it: the argument block (copied in when the request's direction has
//! `_IOC_WRITE`, zero-filled otherwise; copied out when it has `_IOC_READ`) and the arrays its
//! pointer fields name.
//!
//! The shim reads user pointers as the slot's virtual addresses inside the slot's ioctl buffer
//! (`drm_api::transport`). So each array is copied into the buffer's array area and its pointer
//! field rewritten to the array's slot address; on the way back the caller's own pointers are put
//! back, and arrays the shim fills (VERSION's strings) are copied out to them. Requests without
//! pointer fields (GETPARAM, GEM_*, NVIF, ...) travel as opaque blocks of the request's size.

use drm_api::errno::Errno;
use drm_api::ioctl::{nr, Request, IOC_READ, IOC_WRITE};
use drm_api::transport::{ARG_OFFSET, ARRAYS_OFFSET};
use drm_api::uapi::*;
use pd_core::shm::{ReadWrite, Region};
use std::mem::{offset_of, size_of};

/// The caller's memory, addressed by its own pointers (`copy_from_user`/`copy_to_user`).
pub trait UserMem {
    /// Read `out.len()` bytes at `ptr`.
    ///
    /// # Errors
    /// `EFAULT` for memory the caller cannot read.
    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<(), Errno>;
    /// Write `data` at `ptr`.
    ///
    /// # Errors
    /// `EFAULT` for memory the caller cannot write.
    fn write(&self, ptr: u64, data: &[u8]) -> Result<(), Errno>;
}

/// Which way an array goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// The shim reads it (op lists, sync lists, handles).
    In,
    /// The shim fills it and reports in the count field how many elements it has (VERSION's
    /// strings, `drm_copy_field`): min(asked, reported) elements come back.
    Out,
}

/// A pointer field of an argument struct and the field that counts its elements.
#[derive(Clone, Copy, Debug)]
struct PtrField {
    ptr_at: usize,
    count_at: usize,
    /// Width of the count field (4 or 8 bytes).
    count_size: usize,
    /// Bytes per element.
    elem: usize,
    dir: Dir,
}

const fn field(
    ptr_at: usize,
    count_at: usize,
    count_size: usize,
    elem: usize,
    dir: Dir,
) -> PtrField {
    PtrField {
        ptr_at,
        count_at,
        count_size,
        elem,
        dir,
    }
}

const VERSION: [PtrField; 3] = [
    field(
        offset_of!(drm_version, name),
        offset_of!(drm_version, name_len),
        8,
        1,
        Dir::Out,
    ),
    field(
        offset_of!(drm_version, date),
        offset_of!(drm_version, date_len),
        8,
        1,
        Dir::Out,
    ),
    field(
        offset_of!(drm_version, desc),
        offset_of!(drm_version, desc_len),
        8,
        1,
        Dir::Out,
    ),
];
const SYNCOBJ_WAIT: [PtrField; 1] = [field(
    offset_of!(drm_syncobj_wait, handles),
    offset_of!(drm_syncobj_wait, count_handles),
    4,
    size_of::<u32>(),
    Dir::In,
)];
const SYNC: usize = size_of::<drm_nouveau_sync>();
const VM_BIND: [PtrField; 3] = [
    field(
        offset_of!(drm_nouveau_vm_bind, wait_ptr),
        offset_of!(drm_nouveau_vm_bind, wait_count),
        4,
        SYNC,
        Dir::In,
    ),
    field(
        offset_of!(drm_nouveau_vm_bind, sig_ptr),
        offset_of!(drm_nouveau_vm_bind, sig_count),
        4,
        SYNC,
        Dir::In,
    ),
    field(
        offset_of!(drm_nouveau_vm_bind, op_ptr),
        offset_of!(drm_nouveau_vm_bind, op_count),
        4,
        size_of::<drm_nouveau_vm_bind_op>(),
        Dir::In,
    ),
];
const EXEC: [PtrField; 3] = [
    field(
        offset_of!(drm_nouveau_exec, wait_ptr),
        offset_of!(drm_nouveau_exec, wait_count),
        4,
        SYNC,
        Dir::In,
    ),
    field(
        offset_of!(drm_nouveau_exec, sig_ptr),
        offset_of!(drm_nouveau_exec, sig_count),
        4,
        SYNC,
        Dir::In,
    ),
    field(
        offset_of!(drm_nouveau_exec, push_ptr),
        offset_of!(drm_nouveau_exec, push_count),
        4,
        size_of::<drm_nouveau_exec_push>(),
        Dir::In,
    ),
];

/// The pointer fields of request `req` (by its exact number, size included).
fn ptr_fields(req: u32) -> &'static [PtrField] {
    match req {
        nr::VERSION => &VERSION,
        nr::SYNCOBJ_WAIT => &SYNCOBJ_WAIT,
        nr::NOUVEAU_VM_BIND => &VM_BIND,
        nr::NOUVEAU_EXEC => &EXEC,
        _ => &[],
    }
}

fn get(block: &[u8], at: usize, size: usize) -> u64 {
    let mut b = [0u8; 8];
    if let (Some(d), Some(s)) = (b.get_mut(..size), block.get(at..at.saturating_add(size))) {
        d.copy_from_slice(s);
    }
    u64::from_ne_bytes(b)
}

fn set(block: &mut [u8], at: usize, size: usize, v: u64) {
    if let (Some(d), Some(s)) = (
        block.get_mut(at..at.saturating_add(size)),
        v.to_ne_bytes().get(..size),
    ) {
        d.copy_from_slice(s);
    }
}

/// An array placed in the buffer for one call.
#[derive(Debug)]
struct Placed {
    field: PtrField,
    user_ptr: u64,
    user_count: u64,
    sent_count: u64,
    buf_off: usize,
}

/// The slot's ioctl buffer: mapped here as `buf`, seen by the slot (and so by the shim) at
/// `slot_base`.
#[derive(Debug)]
pub struct SlotBuffer<'a> {
    /// The buffer as this process maps it.
    pub buf: &'a Region<ReadWrite>,
    /// Its address in the slot.
    pub slot_base: u64,
}

/// Issue ioctl `req` with argument pointer `arg` through the slot buffer: copy in, `call` (one PPC
/// with the request number), copy out.
///
/// # Errors
/// `EFAULT` when the argument block or an array is not the caller's memory; `ENOMEM` when an
/// input array does not fit the slot's buffer; `call`'s errno.
pub fn ioctl(
    req: u32,
    arg: u64,
    user: &dyn UserMem,
    slot: &SlotBuffer<'_>,
    call: impl FnOnce(u32) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let r = Request::decode(req);
    let mut block = vec![0u8; r.size];
    if r.dir & IOC_WRITE != 0 && r.size > 0 {
        user.read(arg, &mut block)?;
    }
    let placed = place_arrays(req, &mut block, user, slot)?;
    slot.buf
        .write_bytes(ARG_OFFSET, &block)
        .map_err(|_| Errno::EFAULT)?;
    let result = call(req);
    if r.dir & IOC_READ == 0 {
        return result;
    }
    slot.buf
        .read_bytes(ARG_OFFSET, &mut block)
        .map_err(|_| Errno::EFAULT)?;
    for p in &placed {
        let f = p.field;
        if f.dir == Dir::Out && result.is_ok() {
            let n = p.sent_count.min(get(&block, f.count_at, f.count_size));
            let len = usize::try_from(n).map_err(|_| Errno::EFAULT)? * f.elem;
            let mut out = vec![0u8; len];
            slot.buf
                .read_bytes(p.buf_off, &mut out)
                .map_err(|_| Errno::EFAULT)?;
            user.write(p.user_ptr, &out)?;
        }
        if result.is_err() {
            set(&mut block, f.count_at, f.count_size, p.user_count);
        }
        set(&mut block, f.ptr_at, 8, p.user_ptr);
    }
    user.write(arg, &block)?;
    result
}

/// Copy each array into the buffer's array area (in-arrays with their contents, out-arrays
/// zeroed and clamped to the space left) and point its field at the copy.
fn place_arrays(
    req: u32,
    block: &mut [u8],
    user: &dyn UserMem,
    slot: &SlotBuffer<'_>,
) -> Result<Vec<Placed>, Errno> {
    let mut next = ARRAYS_OFFSET.max(block.len().next_multiple_of(8));
    let mut placed = Vec::new();
    for &f in ptr_fields(req) {
        let user_ptr = get(block, f.ptr_at, 8);
        let user_count = get(block, f.count_at, f.count_size);
        if user_ptr == 0 || user_count == 0 {
            continue;
        }
        let room = slot.buf.size().saturating_sub(next) / f.elem;
        let sent_count = match f.dir {
            Dir::In => user_count,
            // CAST: usize to u64 is lossless on every supported target.
            Dir::Out => user_count.min(room as u64),
        };
        let len = usize::try_from(sent_count)
            .ok()
            .and_then(|n| n.checked_mul(f.elem))
            .filter(|&len| len <= slot.buf.size().saturating_sub(next))
            .ok_or(Errno::ENOMEM)?;
        let mut bytes = vec![0u8; len];
        if f.dir == Dir::In {
            user.read(user_ptr, &mut bytes)?;
        }
        slot.buf
            .write_bytes(next, &bytes)
            .map_err(|_| Errno::ENOMEM)?;
        // CAST: usize to u64 is lossless on every supported target.
        set(block, f.ptr_at, 8, slot.slot_base + next as u64);
        set(block, f.count_at, f.count_size, sent_count);
        placed.push(Placed {
            field: f,
            user_ptr,
            user_count,
            sent_count,
            buf_off: next,
        });
        next = next.saturating_add(len).next_multiple_of(8);
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    //! Against the real shim: the slot buffer is a plain region the shim reads at the slot's
    //! address, the caller's memory is this test's own (through `CallerMem`, the raw-pointer one).
    use super::*;
    use crate::sys::CallerMem;
    use drm_api::nvif;
    use drm_shim::fuzz::CountingGpu;
    use drm_shim::user::UserMem as ShimMem;
    use drm_shim::Shim;
    use gpu_api::ClientId;
    use pd_core::{MessageInfo, MessageRegisters};
    use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes};

    const SLOT_BASE: u64 = 0x3000_0000;

    struct World {
        shim: Shim,
        gpu: CountingGpu,
        buf: Region<ReadWrite>,
        file: u64,
    }

    fn world() -> World {
        let mut w = World {
            shim: Shim::new(),
            gpu: CountingGpu::default(),
            buf: Region::from_static(vec![0u8; 0x10000].leak()),
            file: 0,
        };
        let mut mrs = MessageRegisters::default();
        let mem = ShimMem::new(&w.buf, SLOT_BASE);
        let r = w.shim.handle(
            &mut w.gpu,
            ClientId(2),
            &mem,
            MessageInfo::new(drm_api::transport::op::OPEN, 1),
            &mut mrs,
        );
        assert_eq!(r.label(), 0);
        w.file = mrs.get(0);
        w
    }

    /// One ioctl through the marshalling, with `user` as the caller's memory.
    fn call_with<T: IntoBytes + FromBytes + Immutable>(
        w: &mut World,
        req: u32,
        arg: &mut T,
        user: &dyn UserMem,
    ) -> Result<(), Errno> {
        let World {
            shim,
            gpu,
            buf,
            file,
        } = w;
        let slot = SlotBuffer {
            buf,
            slot_base: SLOT_BASE,
        };
        let arg = (arg as *mut T) as u64;
        ioctl(req, arg, user, &slot, |req| {
            let mem = ShimMem::new(buf, SLOT_BASE);
            let mut mrs = MessageRegisters::default();
            mrs.set(0, *file);
            mrs.set(1, ARG_OFFSET as u64);
            let r = shim.handle(
                gpu,
                ClientId(2),
                &mem,
                MessageInfo::new(u64::from(req), 2),
                &mut mrs,
            );
            drm_api::transport::result_of(r.label())
        })
    }

    fn call<T: IntoBytes + FromBytes + Immutable>(
        w: &mut World,
        req: u32,
        arg: &mut T,
    ) -> Result<(), Errno> {
        call_with(w, req, arg, &CallerMem)
    }

    fn addr<T>(v: &mut [T]) -> u64 {
        v.as_mut_ptr() as u64
    }

    #[test]
    fn version_strings_land_in_the_callers_buffers_with_linux_lengths() {
        let mut w = world();
        let mut name = [0xaau8; 8];
        let mut date = [0xaau8; 64];
        let mut v = drm_version {
            name_len: 4,
            name: addr(&mut name),
            date_len: 64,
            date: addr(&mut date),
            desc_len: 5, // with a null pointer: nothing copied, length still reported
            ..Default::default()
        };
        let (name_ptr, date_ptr) = (v.name, v.date);
        call(&mut w, nr::VERSION, &mut v).unwrap();
        assert_eq!((v.version_major, v.version_minor), (1, 4));
        assert_eq!((v.name_len, v.date_len), (7, 8));
        assert!(v.desc_len > 5);
        assert_eq!(
            (v.name, v.date, v.desc),
            (name_ptr, date_ptr, 0),
            "caller's pointers back"
        );
        assert_eq!(
            &name, b"nouv\xaa\xaa\xaa\xaa",
            "min(asked, actual) bytes, no more"
        );
        assert_eq!(&date[..9], b"20120801\xaa");
    }

    #[test]
    fn input_arrays_are_copied_into_the_slot_buffer() {
        let mut w = world();
        let mut init = drm_nouveau_vm_init {
            kernel_managed_addr: 0,
            kernel_managed_size: 0x100_0000,
        };
        call(&mut w, nr::NOUVEAU_VM_INIT, &mut init).unwrap();
        let mut n = drm_nouveau_gem_new::default();
        n.info.domain = domain::VRAM;
        n.info.size = 0x2000;
        call(&mut w, nr::NOUVEAU_GEM_NEW, &mut n).unwrap();
        let mut ops = [drm_nouveau_vm_bind_op {
            op: DRM_NOUVEAU_VM_BIND_OP_MAP,
            handle: n.info.handle,
            addr: 0x200_0000,
            range: 0x2000,
            ..Default::default()
        }];
        let mut b = drm_nouveau_vm_bind {
            op_count: 1,
            op_ptr: addr(&mut ops),
            ..Default::default()
        };
        let ptr = b.op_ptr;
        call(&mut w, nr::NOUVEAU_VM_BIND, &mut b).unwrap();
        assert_eq!(b.op_ptr, ptr);
        // The shim saw the op itself: a bad handle in it is ENOENT, a misaligned range EINVAL.
        ops[0].handle = 9;
        b.op_ptr = addr(&mut ops);
        assert_eq!(
            call(&mut w, nr::NOUVEAU_VM_BIND, &mut b),
            Err(Errno::ENOENT)
        );
        ops[0].handle = n.info.handle;
        ops[0].range = 0x1800;
        b.op_ptr = addr(&mut ops);
        assert_eq!(
            call(&mut w, nr::NOUVEAU_VM_BIND, &mut b),
            Err(Errno::EINVAL)
        );
        // SYNCOBJ_WAIT reads its handle array: an unknown handle is ENOENT.
        let mut handles = [77u32];
        let mut wt = drm_syncobj_wait {
            handles: addr(&mut handles),
            count_handles: 1,
            ..Default::default()
        };
        assert_eq!(call(&mut w, nr::SYNCOBJ_WAIT, &mut wt), Err(Errno::ENOENT));
    }

    /// Caller memory where nothing is readable.
    struct Unmapped;
    impl UserMem for Unmapped {
        fn read(&self, _: u64, _: &mut [u8]) -> Result<(), Errno> {
            Err(Errno::EFAULT)
        }
        fn write(&self, _: u64, _: &[u8]) -> Result<(), Errno> {
            Err(Errno::EFAULT)
        }
    }

    #[test]
    fn bad_caller_memory_and_oversized_arrays_are_refused_before_the_call() {
        let mut w = world();
        let mut g = drm_nouveau_getparam {
            param: getparam::FB_SIZE,
            value: 0,
        };
        assert_eq!(
            call_with(&mut w, nr::NOUVEAU_GETPARAM, &mut g, &Unmapped),
            Err(Errno::EFAULT)
        );
        // An op list bigger than the whole slot buffer: ENOMEM, nothing read or sent.
        let mut b = drm_nouveau_vm_bind {
            op_count: 100_000,
            op_ptr: 0x1000,
            ..Default::default()
        };
        let slot = SlotBuffer {
            buf: &w.buf,
            slot_base: SLOT_BASE,
        };
        let arg = (&mut b as *mut drm_nouveau_vm_bind) as u64;
        let sent = ioctl(nr::NOUVEAU_VM_BIND, arg, &CallerMem, &slot, |_| {
            panic!("an oversized request must not reach the slot")
        });
        assert_eq!(sent, Err(Errno::ENOMEM));
    }

    #[test]
    fn nvif_blocks_travel_whole_at_their_own_size() {
        let mut w = world();
        let mut n = nvif::nvif_new_device::default();
        n.ioctl.type_ = nvif::ty::NEW;
        n.new.object = 0x7000;
        n.new.oclass = nvif::NV_DEVICE;
        call(&mut w, nvif::request(72), &mut n).unwrap();
        let mut m = nvif::nvif_device_info {
            ioctl: nvif::nvif_ioctl_v0 {
                type_: nvif::ty::MTHD,
                object: 0x7000,
                ..Default::default()
            },
            mthd: nvif::nvif_ioctl_mthd_v0::default(),
            info: nvif::nv_device_info_v0::new_zeroed(),
        };
        call(&mut w, nvif::request(136), &mut m).unwrap();
        assert_eq!(m.info.chipset, 0x172);
    }
}
