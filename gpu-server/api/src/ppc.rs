//! [`GpuOps`] over a channel: one PPC per operation (label = [`Op`], arguments and results in
//! message registers, EXEC's push list in the `drm_gpu` region, written by drm and read by gpu).
//! [`GpuClient`] is the caller's side, [`serve`] the callee's; both live here so the protocol has
//! one definition.

use crate::{
    BoDesc, BoId, ChanId, ClientId, CtxId, DeviceInfo, Fence, GpuError, GpuOps, Push, Submitted,
};
use pd_core::shm::{Access, ReadWrite, Region};
use pd_core::{Channel, Kernel, MessageInfo, MessageRegisters};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Most pushes one EXEC carries (nouveau's `NOUVEAU_GEM_MAX_PUSH`).
pub const MAX_PUSHES: usize = 512;
/// One push entry as it sits in the bulk region (our own wire format, not a uAPI struct).
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct PushWire {
    va: u64,
    len: u32,
    flags: u32,
}
const PUSH_BYTES: usize = 16;
const _: () = assert!(core::mem::size_of::<PushWire>() == PUSH_BYTES);

/// Operation codes (the PPC label). Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Op {
    DeviceInfo = 1,
    VramUsed = 2,
    PtimerNs = 3,
    CtxOpen = 4,
    CtxClose = 5,
    BoNew = 6,
    BoFree = 7,
    BoBusy = 8,
    VmInit = 9,
    VmMap = 10,
    VmUnmap = 11,
    ChannelAlloc = 12,
    ChannelFree = 13,
    Exec = 14,
    FenceSignaled = 15,
}

impl Op {
    fn from_label(l: u64) -> Option<Self> {
        use Op::*;
        [
            DeviceInfo,
            VramUsed,
            PtimerNs,
            CtxOpen,
            CtxClose,
            BoNew,
            BoFree,
            BoBusy,
            VmInit,
            VmMap,
            VmUnmap,
            ChannelAlloc,
            ChannelFree,
            Exec,
            FenceSignaled,
        ]
        .into_iter()
        .find(|op| *op as u64 == l)
    }
}

/// Reply label: 0 = ok, else the [`GpuError`] discriminant.
fn reply_label(e: Option<GpuError>) -> u64 {
    e.map_or(0, |e| e as u64)
}

/// The caller's side: a PPC channel to `gpu` and the bulk region.
pub struct GpuClient<'a> {
    k: &'a mut dyn Kernel,
    ch: Channel,
    bulk: &'a Region<ReadWrite>,
}

impl core::fmt::Debug for GpuClient<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GpuClient")
            .field("ch", &self.ch)
            .finish_non_exhaustive()
    }
}

impl<'a> GpuClient<'a> {
    /// Calls over `ch` with bulk arguments in `bulk` (the `drm_gpu` region).
    pub fn new(k: &'a mut dyn Kernel, ch: Channel, bulk: &'a Region<ReadWrite>) -> Self {
        Self { k, ch, bulk }
    }

    fn call(&mut self, op: Op, args: &[u64]) -> Result<&MessageRegisters, GpuError> {
        let mrs = self.k.mrs();
        for (i, a) in args.iter().enumerate() {
            mrs.set(i, *a);
        }
        let reply = self
            .k
            .ppcall(self.ch, MessageInfo::new(op as u64, args.len()))
            .map_err(|_| GpuError::ContextLost)?;
        match reply.label() {
            0 => Ok(self.k.mrs()),
            e => Err(GpuError::from_wire(e)),
        }
    }
}

impl GpuOps for GpuClient<'_> {
    fn device_info(&mut self) -> Result<DeviceInfo, GpuError> {
        let m = self.call(Op::DeviceInfo, &[])?;
        Ok(DeviceInfo {
            // CAST: the server packs vendor/device into 16 bits each.
            vendor: (m.get(0) & 0xffff) as u16,
            device: ((m.get(0) >> 16) & 0xffff) as u16,
            chipset: (m.get(0) >> 32) as u32,
            fb_size: m.get(1),
            vram_bar_size: m.get(2),
            graph_units: m.get(3),
            exec_push_max: u32::try_from(m.get(4)).unwrap_or(0),
        })
    }
    fn vram_used(&mut self) -> Result<u64, GpuError> {
        Ok(self.call(Op::VramUsed, &[])?.get(0))
    }
    fn ptimer_ns(&mut self) -> Result<u64, GpuError> {
        Ok(self.call(Op::PtimerNs, &[])?.get(0))
    }
    fn ctx_open(&mut self, client: ClientId) -> Result<CtxId, GpuError> {
        let v = self.call(Op::CtxOpen, &[u64::from(client.0)])?.get(0);
        u32::try_from(v).map(CtxId).map_err(|_| GpuError::Device)
    }
    fn ctx_close(&mut self, ctx: CtxId) -> Result<(), GpuError> {
        self.call(Op::CtxClose, &[u64::from(ctx.0)]).map(|_| ())
    }
    fn bo_new(
        &mut self,
        ctx: CtxId,
        domain: u32,
        size: u64,
        align: u64,
    ) -> Result<BoDesc, GpuError> {
        let m = self.call(
            Op::BoNew,
            &[u64::from(ctx.0), u64::from(domain), size, align],
        )?;
        Ok(BoDesc {
            id: BoId(u32::try_from(m.get(0)).map_err(|_| GpuError::Device)?),
            size: m.get(1),
            domain: u32::try_from(m.get(2)).map_err(|_| GpuError::Device)?,
            map_addr: m.get(3),
        })
    }
    fn bo_free(&mut self, ctx: CtxId, bo: BoId) -> Result<(), GpuError> {
        self.call(Op::BoFree, &[u64::from(ctx.0), u64::from(bo.0)])
            .map(|_| ())
    }
    fn bo_busy(&mut self, ctx: CtxId, bo: BoId) -> Result<bool, GpuError> {
        Ok(self
            .call(Op::BoBusy, &[u64::from(ctx.0), u64::from(bo.0)])?
            .get(0)
            != 0)
    }
    fn vm_init(&mut self, ctx: CtxId, kernel_addr: u64, kernel_size: u64) -> Result<(), GpuError> {
        self.call(Op::VmInit, &[u64::from(ctx.0), kernel_addr, kernel_size])
            .map(|_| ())
    }
    fn vm_map(
        &mut self,
        ctx: CtxId,
        bo: Option<BoId>,
        addr: u64,
        bo_offset: u64,
        range: u64,
    ) -> Result<(), GpuError> {
        // Sparse (no BO) travels as u64::MAX, which no BoId (u32) can be.
        let bo = bo.map_or(u64::MAX, |b| u64::from(b.0));
        self.call(Op::VmMap, &[u64::from(ctx.0), bo, addr, bo_offset, range])
            .map(|_| ())
    }
    fn vm_unmap(&mut self, ctx: CtxId, addr: u64, range: u64) -> Result<(), GpuError> {
        self.call(Op::VmUnmap, &[u64::from(ctx.0), addr, range])
            .map(|_| ())
    }
    fn channel_alloc(&mut self, ctx: CtxId) -> Result<ChanId, GpuError> {
        let v = self.call(Op::ChannelAlloc, &[u64::from(ctx.0)])?.get(0);
        u32::try_from(v).map(ChanId).map_err(|_| GpuError::Device)
    }
    fn channel_free(&mut self, ctx: CtxId, chan: ChanId) -> Result<(), GpuError> {
        self.call(Op::ChannelFree, &[u64::from(ctx.0), u64::from(chan.0)])
            .map(|_| ())
    }
    fn exec(&mut self, ctx: CtxId, chan: ChanId, pushes: &[Push]) -> Result<Submitted, GpuError> {
        if pushes.len() > MAX_PUSHES {
            return Err(GpuError::Invalid);
        }
        for (i, p) in pushes.iter().enumerate() {
            let wire = PushWire {
                va: p.va,
                len: p.len,
                flags: p.flags,
            };
            self.bulk
                .write(i * PUSH_BYTES, &wire)
                .map_err(|_| GpuError::Invalid)?;
        }
        // CAST: bounded by MAX_PUSHES above.
        let m = self.call(
            Op::Exec,
            &[u64::from(ctx.0), u64::from(chan.0), pushes.len() as u64],
        )?;
        Ok(Submitted {
            fence: Fence {
                chan,
                seqno: m.get(0),
            },
            done: m.get(1) != 0,
        })
    }
    fn fence_signaled(&mut self, ctx: CtxId, fence: Fence) -> Result<bool, GpuError> {
        let m = self.call(
            Op::FenceSignaled,
            &[u64::from(ctx.0), u64::from(fence.chan.0), fence.seqno],
        )?;
        Ok(m.get(0) != 0)
    }
}

fn u32_arg(mrs: &MessageRegisters, i: usize) -> Result<u32, GpuError> {
    u32::try_from(mrs.get(i)).map_err(|_| GpuError::Invalid)
}

/// The callee's side: decode one PPC from `mrs` (+ `bulk`), run it on `ops`, encode the reply into
/// `mrs`. Unknown labels and malformed arguments are [`GpuError::Invalid`], never a panic.
pub fn serve<A: Access>(
    ops: &mut dyn GpuOps,
    msg: MessageInfo,
    mrs: &mut MessageRegisters,
    bulk: &Region<A>,
) -> MessageInfo {
    let (result, count) = match dispatch(ops, msg, mrs, bulk) {
        Ok(n) => (None, n),
        Err(e) => (Some(e), 0),
    };
    MessageInfo::new(reply_label(result), count)
}

fn dispatch<A: Access>(
    ops: &mut dyn GpuOps,
    msg: MessageInfo,
    mrs: &mut MessageRegisters,
    bulk: &Region<A>,
) -> Result<usize, GpuError> {
    let op = Op::from_label(msg.label()).ok_or(GpuError::Invalid)?;
    let ctx = || u32_arg(mrs, 0).map(CtxId);
    match op {
        Op::DeviceInfo => {
            let d = ops.device_info()?;
            mrs.set(
                0,
                u64::from(d.vendor) | u64::from(d.device) << 16 | u64::from(d.chipset) << 32,
            );
            mrs.set(1, d.fb_size);
            mrs.set(2, d.vram_bar_size);
            mrs.set(3, d.graph_units);
            mrs.set(4, u64::from(d.exec_push_max));
            Ok(5)
        }
        Op::VramUsed => {
            let v = ops.vram_used()?;
            mrs.set(0, v);
            Ok(1)
        }
        Op::PtimerNs => {
            let v = ops.ptimer_ns()?;
            mrs.set(0, v);
            Ok(1)
        }
        Op::CtxOpen => {
            let client = u8::try_from(mrs.get(0)).map_err(|_| GpuError::Invalid)?;
            let c = ops.ctx_open(ClientId(client))?;
            mrs.set(0, u64::from(c.0));
            Ok(1)
        }
        Op::CtxClose => ops.ctx_close(ctx()?).map(|()| 0),
        Op::BoNew => {
            let d = ops.bo_new(ctx()?, u32_arg(mrs, 1)?, mrs.get(2), mrs.get(3))?;
            mrs.set(0, u64::from(d.id.0));
            mrs.set(1, d.size);
            mrs.set(2, u64::from(d.domain));
            mrs.set(3, d.map_addr);
            Ok(4)
        }
        Op::BoFree => ops.bo_free(ctx()?, BoId(u32_arg(mrs, 1)?)).map(|()| 0),
        Op::BoBusy => {
            let busy = ops.bo_busy(ctx()?, BoId(u32_arg(mrs, 1)?))?;
            mrs.set(0, u64::from(busy));
            Ok(1)
        }
        Op::VmInit => ops.vm_init(ctx()?, mrs.get(1), mrs.get(2)).map(|()| 0),
        Op::VmMap => {
            let bo = match mrs.get(1) {
                u64::MAX => None,
                b => Some(BoId(u32::try_from(b).map_err(|_| GpuError::Invalid)?)),
            };
            ops.vm_map(ctx()?, bo, mrs.get(2), mrs.get(3), mrs.get(4))
                .map(|()| 0)
        }
        Op::VmUnmap => ops.vm_unmap(ctx()?, mrs.get(1), mrs.get(2)).map(|()| 0),
        Op::ChannelAlloc => {
            let c = ops.channel_alloc(ctx()?)?;
            mrs.set(0, u64::from(c.0));
            Ok(1)
        }
        Op::ChannelFree => ops
            .channel_free(ctx()?, ChanId(u32_arg(mrs, 1)?))
            .map(|()| 0),
        Op::Exec => {
            let n = usize::try_from(mrs.get(2)).map_err(|_| GpuError::Invalid)?;
            if n > MAX_PUSHES {
                return Err(GpuError::Invalid);
            }
            let mut pushes = [Push::default(); MAX_PUSHES];
            for (i, p) in pushes.iter_mut().take(n).enumerate() {
                let w: PushWire = bulk.read(i * PUSH_BYTES).map_err(|_| GpuError::Invalid)?;
                *p = Push {
                    va: w.va,
                    len: w.len,
                    flags: w.flags,
                };
            }
            let s = ops.exec(
                ctx()?,
                ChanId(u32_arg(mrs, 1)?),
                pushes.get(..n).unwrap_or(&[]),
            )?;
            mrs.set(0, s.fence.seqno);
            mrs.set(1, u64::from(s.done));
            Ok(2)
        }
        Op::FenceSignaled => {
            let fence = Fence {
                chan: ChanId(u32_arg(mrs, 1)?),
                seqno: mrs.get(2),
            };
            let s = ops.fence_signaled(ctx()?, fence)?;
            mrs.set(0, u64::from(s));
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Records what the server side saw and answers with fixed values.
    #[derive(Default)]
    struct Fake {
        pushes: Vec<Push>,
        mapped: Option<(Option<BoId>, u64, u64, u64)>,
    }
    impl GpuOps for Fake {
        fn device_info(&mut self) -> Result<DeviceInfo, GpuError> {
            Ok(DeviceInfo {
                vendor: 0x10de,
                device: 0x2204,
                chipset: 0x172,
                fb_size: 24 << 30,
                vram_bar_size: 256 << 20,
                graph_units: 7,
                exec_push_max: 512,
            })
        }
        fn vram_used(&mut self) -> Result<u64, GpuError> {
            Err(GpuError::NotReady)
        }
        fn ptimer_ns(&mut self) -> Result<u64, GpuError> {
            Ok(5)
        }
        fn ctx_open(&mut self, c: ClientId) -> Result<CtxId, GpuError> {
            Ok(CtxId(100 + u32::from(c.0)))
        }
        fn ctx_close(&mut self, _: CtxId) -> Result<(), GpuError> {
            Err(GpuError::ContextLost)
        }
        fn bo_new(&mut self, _: CtxId, d: u32, s: u64, _: u64) -> Result<BoDesc, GpuError> {
            Ok(BoDesc {
                id: BoId(3),
                size: s,
                domain: d,
                map_addr: 0x9000_0000,
            })
        }
        fn bo_free(&mut self, _: CtxId, _: BoId) -> Result<(), GpuError> {
            Ok(())
        }
        fn bo_busy(&mut self, _: CtxId, _: BoId) -> Result<bool, GpuError> {
            Ok(true)
        }
        fn vm_init(&mut self, _: CtxId, _: u64, _: u64) -> Result<(), GpuError> {
            Ok(())
        }
        fn vm_map(
            &mut self,
            _: CtxId,
            bo: Option<BoId>,
            a: u64,
            o: u64,
            r: u64,
        ) -> Result<(), GpuError> {
            self.mapped = Some((bo, a, o, r));
            Ok(())
        }
        fn vm_unmap(&mut self, _: CtxId, _: u64, _: u64) -> Result<(), GpuError> {
            Ok(())
        }
        fn channel_alloc(&mut self, _: CtxId) -> Result<ChanId, GpuError> {
            Ok(ChanId(1))
        }
        fn channel_free(&mut self, _: CtxId, _: ChanId) -> Result<(), GpuError> {
            Ok(())
        }
        fn exec(&mut self, _: CtxId, _: ChanId, p: &[Push]) -> Result<Submitted, GpuError> {
            self.pushes = p.to_vec();
            Ok(Submitted {
                fence: Fence {
                    chan: ChanId(1),
                    seqno: 42,
                },
                done: true,
            })
        }
        fn fence_signaled(&mut self, _: CtxId, f: Fence) -> Result<bool, GpuError> {
            Ok(f.seqno <= 42)
        }
    }

    /// A kernel whose every PPC is served by `serve` on `fake`, sharing one bulk buffer.
    struct Loopback<'a> {
        mrs: MessageRegisters,
        fake: &'a mut Fake,
        bulk: Region<ReadWrite>,
    }
    impl Kernel for Loopback<'_> {
        fn pd_name(&self) -> &str {
            "test"
        }
        fn notify(&mut self, _: Channel) -> Result<(), pd_core::IpcError> {
            Ok(())
        }
        fn ppcall(
            &mut self,
            _: Channel,
            msg: MessageInfo,
        ) -> Result<MessageInfo, pd_core::IpcError> {
            Ok(serve(self.fake, msg, &mut self.mrs, &self.bulk))
        }
        fn mrs(&mut self) -> &mut MessageRegisters {
            &mut self.mrs
        }
        fn now_ns(&self) -> u64 {
            0
        }
    }

    #[test]
    fn every_operation_round_trips_through_the_wire_encoding() {
        let bulk_c = Region::from_static(std::vec![0u8; 16 * MAX_PUSHES].leak());
        let bulk_s = bulk_c.alias();
        let mut fake = Fake::default();
        let mut k = Loopback {
            mrs: MessageRegisters::default(),
            fake: &mut fake,
            bulk: bulk_s,
        };
        let mut c = GpuClient::new(&mut k, Channel::new(1), &bulk_c);
        assert_eq!(c.device_info().unwrap().chipset, 0x172);
        assert_eq!(c.device_info().unwrap().device, 0x2204);
        assert_eq!(c.vram_used(), Err(GpuError::NotReady));
        let ctx = c.ctx_open(ClientId(1)).unwrap();
        assert_eq!(ctx, CtxId(101));
        assert_eq!(c.ctx_close(ctx), Err(GpuError::ContextLost));
        let bo = c.bo_new(ctx, 0xa, 4096, 0).unwrap();
        assert_eq!(
            (bo.id, bo.size, bo.domain, bo.map_addr),
            (BoId(3), 4096, 0xa, 0x9000_0000)
        );
        assert!(c.bo_busy(ctx, bo.id).unwrap());
        c.vm_map(ctx, None, 0x1000, 0, 0x2000).unwrap();
        let pushes: Vec<Push> = (0..64)
            .map(|i| Push {
                va: 0x10_0000 + i * 8,
                len: 8,
                flags: 1,
            })
            .collect();
        let job = c.exec(ctx, ChanId(1), &pushes).unwrap();
        assert_eq!((job.fence.seqno, job.done), (42, true));
        assert!(c.fence_signaled(ctx, job.fence).unwrap());
        assert_eq!(
            c.exec(ctx, ChanId(1), &std::vec![Push::default(); MAX_PUSHES + 1]),
            Err(GpuError::Invalid)
        );
        drop(c);
        assert_eq!(fake.pushes, pushes);
        assert_eq!(fake.mapped, Some((None, 0x1000, 0, 0x2000)));
    }

    #[test]
    fn malformed_requests_are_invalid_not_panics() {
        let bulk = Region::from_static(std::vec![0u8; 16].leak());
        let mut fake = Fake::default();
        let mut mrs = MessageRegisters::default();
        assert_eq!(
            serve(&mut fake, MessageInfo::new(999, 0), &mut mrs, &bulk).label(),
            GpuError::Invalid as u64
        );
        mrs.set(0, u64::MAX);
        assert_eq!(
            serve(
                &mut fake,
                MessageInfo::new(Op::CtxOpen as u64, 1),
                &mut mrs,
                &bulk
            )
            .label(),
            GpuError::Invalid as u64
        );
        mrs.set(0, 1);
        mrs.set(2, 2); // two pushes, but the bulk region holds only one
        assert_eq!(
            serve(
                &mut fake,
                MessageInfo::new(Op::Exec as u64, 3),
                &mut mrs,
                &bulk
            )
            .label(),
            GpuError::Invalid as u64
        );
    }
}
