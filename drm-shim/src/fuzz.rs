//! The fuzzing entry point: arbitrary request numbers and argument bytes from arbitrary clients,
//! against a shim over a small deterministic GPU. Errors, never panics. Used by
//! `drm-shim/fuzz/fuzz_targets/ioctl.rs` and by the stable test suite.

use crate::user::UserMem;
use crate::Shim;
use gpu_api::{
    BoDesc, BoId, ChanId, ClientId, CtxId, DeviceInfo, Fence, GpuError, GpuOps, Push, Submitted,
};
use pd_core::shm::{ReadWrite, Region};
use pd_core::{MessageInfo, MessageRegisters};

/// A GPU that accepts everything plausible and keeps no state beyond counters.
#[derive(Debug, Default)]
pub struct CountingGpu {
    next: u32,
}

impl CountingGpu {
    fn id(&mut self) -> u32 {
        self.next = self.next.wrapping_add(1);
        self.next
    }
}

impl GpuOps for CountingGpu {
    fn device_info(&mut self) -> Result<DeviceInfo, GpuError> {
        Ok(DeviceInfo {
            vendor: 0x10de,
            device: 0x2204,
            chipset: 0x172,
            fb_size: 1 << 34,
            vram_bar_size: 1 << 28,
            graph_units: 1,
            exec_push_max: 64,
        })
    }
    fn vram_used(&mut self) -> Result<u64, GpuError> {
        Ok(0)
    }
    fn ptimer_ns(&mut self) -> Result<u64, GpuError> {
        Ok(u64::from(self.id()))
    }
    fn ctx_open(&mut self, _: ClientId) -> Result<CtxId, GpuError> {
        Ok(CtxId(self.id()))
    }
    fn ctx_close(&mut self, _: CtxId) -> Result<(), GpuError> {
        Ok(())
    }
    fn bo_new(&mut self, _: CtxId, domain: u32, size: u64, _: u64) -> Result<BoDesc, GpuError> {
        if size > 1 << 30 {
            return Err(GpuError::NoMemory);
        }
        Ok(BoDesc {
            id: BoId(self.id()),
            size,
            domain,
            map_addr: 0,
        })
    }
    fn bo_free(&mut self, _: CtxId, _: BoId) -> Result<(), GpuError> {
        Ok(())
    }
    fn bo_busy(&mut self, _: CtxId, _: BoId) -> Result<bool, GpuError> {
        Ok(false)
    }
    fn vm_init(&mut self, _: CtxId, _: u64, _: u64) -> Result<(), GpuError> {
        Ok(())
    }
    fn vm_map(
        &mut self,
        _: CtxId,
        _: Option<BoId>,
        _: u64,
        _: u64,
        _: u64,
    ) -> Result<(), GpuError> {
        Ok(())
    }
    fn vm_unmap(&mut self, _: CtxId, _: u64, _: u64) -> Result<(), GpuError> {
        Ok(())
    }
    fn channel_alloc(&mut self, _: CtxId) -> Result<ChanId, GpuError> {
        Ok(ChanId(self.id()))
    }
    fn channel_free(&mut self, _: CtxId, _: ChanId) -> Result<(), GpuError> {
        Ok(())
    }
    fn exec(&mut self, _: CtxId, chan: ChanId, _: &[Push]) -> Result<Submitted, GpuError> {
        let seqno = self.id();
        // Both ways a job can come back: done already, or to be asked about later.
        Ok(Submitted {
            fence: Fence {
                chan,
                seqno: u64::from(seqno),
            },
            done: seqno & 1 == 0,
        })
    }
    fn fence_signaled(&mut self, _: CtxId, _: Fence) -> Result<bool, GpuError> {
        Ok(true)
    }
}

/// Feed `data` as a sequence of requests: each one is 1 byte of client, 8 of label, 8 of file,
/// 2 of argument offset, 1 of length, then that many bytes copied into the client's buffer.
pub fn ioctl_sequence(buf: &Region<ReadWrite>, data: &[u8]) {
    let mut shim = Shim::new();
    let mut gpu = CountingGpu::default();
    let mut mrs = MessageRegisters::default();
    let mem = UserMem::new(buf, 0x3000_0000);
    let mut rest = data;
    while let Some((head, tail)) = rest.split_first_chunk::<20>() {
        let [c, l0, l1, l2, l3, l4, l5, l6, l7, f0, f1, f2, f3, f4, f5, f6, f7, o0, o1, n] = *head;
        let len = usize::from(n).min(tail.len());
        let (payload, next) = tail.split_at(len);
        let _ = buf.write_bytes(usize::from(u16::from_le_bytes([o0, o1])), payload);
        mrs.set(0, u64::from_le_bytes([f0, f1, f2, f3, f4, f5, f6, f7]));
        mrs.set(1, u64::from(u16::from_le_bytes([o0, o1])));
        let label = u64::from_le_bytes([l0, l1, l2, l3, l4, l5, l6, l7]);
        let _ = shim.handle(
            &mut gpu,
            ClientId(c % 3),
            &mem,
            MessageInfo::new(label, 2),
            &mut mrs,
        );
        rest = next;
    }
}
