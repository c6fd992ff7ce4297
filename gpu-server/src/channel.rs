//! GPFIFO channels and job submission, as nouveau's r535 path sets them up through RM: instance
//! block, RAMFC and USERD in VRAM, the fault method buffer in system memory, the GPFIFO ring and a
//! fence page mapped into the kernel-managed part of the context's VA space; then the channel
//! object, its copy-engine object, BIND, GPFIFO_SCHEDULE and the work-submit token.
//!
//! A job is the client's push segments plus one kernel segment that releases the channel's fence
//! semaphore with the job's sequence number (host `SEMAPHOREA..D`, `clc36f.h`). GPPut goes to
//! USERD, then the token to the usermode doorbell (`NOTIFY_CHANNEL_PENDING`). A fence has
//! signalled when the semaphore word has reached its sequence number.

use crate::ctx::{handle, Bo, Ctx, Place, Win, MAX_CHANS};
use crate::Session;
use gpu_api::{ChanId, Fence, GpuError, Push, Submitted};
use gsp::fw::current::rm::{self, host, usermode, RmControl};
use host::{GpEntry, MethodHeader, SecOp};
use zerocopy::{FromZeros, IntoBytes};

/// GPFIFO entries per channel ring.
pub const ENTRIES: u32 = 512;
/// Bytes of a kernel push segment: 4 methods with their headers.
const FENCE_SEGMENT: u64 = 32;
/// Kernel push segments per channel (one per job in flight, reused round robin).
const SEGMENTS: u64 = 0x1000 / FENCE_SEGMENT;

/// A channel's objects and state.
#[derive(Clone, Copy, Debug)]
pub struct Chan {
    /// Slot index (RM handles derive from it).
    pub index: u32,
    /// The token for the usermode doorbell.
    pub token: u32,
    /// FB address of USERD.
    pub userd_fb: u64,
    /// FB address and kernel VA of the GPFIFO ring.
    pub ring: (u64, u64),
    /// FB address and kernel VA of the fence page (semaphore at offset 0).
    pub fence: (u64, u64),
    /// FB address and kernel VA of the kernel push segments.
    pub push: (u64, u64),
    /// Next ring slot (GPPut).
    pub put: u32,
    /// Sequence number of the last job submitted.
    pub seqno: u32,
    /// BO ids of its kernel objects, freed with it.
    pub objects: [gpu_api::BoId; 5],
    /// DMA buffer of the fault method buffer.
    pub mthdbuf: crate::deps::DmaBuf,
}

impl Session<'_> {
    /// A zeroed VRAM object in the general window, optionally mapped at a fresh kernel VA.
    fn kernel_object(
        &mut self,
        c: usize,
        size: u64,
        map: bool,
    ) -> Result<(gpu_api::BoId, u64, u64), GpuError> {
        let fb = self.srv.vram.alloc(size, size.min(0x1000))?;
        let bo = Bo {
            size,
            domain: 0,
            place: Place::Vram {
                fb,
                win: Win::General,
            },
            map_addr: 0,
            kernel: true,
        };
        let ctx = self.srv.ctx_mut(c)?;
        let id = match ctx.add_bo(bo) {
            Ok(id) => id,
            Err(e) => {
                let _ = self.srv.vram.free(fb, size);
                return Err(e);
            }
        };
        let va = if map {
            let va = ctx.kva(size)?;
            let range = ctx
                .va
                .as_mut()
                .ok_or(GpuError::NoVaSpace)?
                .map_kernel(id, 0, va, size)?;
            self.write_ptes(c, range)?;
            va
        } else {
            0
        };
        Ok((id, fb, va))
    }

    pub(crate) fn channel_alloc_impl(&mut self, c: usize) -> Result<ChanId, GpuError> {
        let ctx = self.srv.ctx_mut(c)?;
        let vaspace = ctx.rm.vaspace.ok_or(GpuError::NoVaSpace)?;
        let index = ctx
            .chans
            .iter()
            .position(Option::is_none)
            .ok_or(GpuError::NoMemory)?;
        let (hclient, hdevice, hsub) = (ctx.rm.client, ctx.rm.device, ctx.rm.subdevice);
        // CAST: index < MAX_CHANS.
        let index = index as u32;
        let (inst, inst_fb, _) = self.kernel_object(c, 0x1000, false)?;
        let (userd, userd_fb, _) = self.kernel_object(c, 0x1000, false)?;
        let (ring, ring_fb, ring_va) =
            self.kernel_object(c, u64::from(ENTRIES) * host::GP_ENTRY_SIZE, true)?;
        let (fence, fence_fb, fence_va) = self.kernel_object(c, 0x1000, true)?;
        let (push, push_fb, push_va) = self.kernel_object(c, SEGMENTS * FENCE_SEGMENT, true)?;

        let mut size = rm::NV2080_CTRL_CE_GET_FAULT_METHOD_BUFFER_SIZE_PARAMS::new_zeroed();
        self.p.rm_control(
            hclient,
            hsub,
            RmControl::CeGetFaultMethodBufferSize.into(),
            size.as_mut_bytes(),
        )?;
        let mthdbuf = self.p.dma_alloc(
            crate::deps::Pool::Server,
            u64::from(size.size).max(0x1000),
            0x1000,
        )?;

        let engine = rm::NV2080_ENGINE_TYPE_COPY0;
        let fbmem = |base, size| rm::NV_MEMORY_DESC_PARAMS {
            base,
            size,
            addressSpace: rm::ADDR_FBMEM,
            cacheAttrib: 0,
        };
        let mut p = rm::NV_CHANNEL_ALLOC_PARAMS::new_zeroed();
        p.gpFifoOffset = ring_va;
        p.gpFifoEntries = ENTRIES;
        p.hVASpace = vaspace;
        p.engineType = engine;
        p.cid = index;
        p.subDeviceId = 1;
        p.instanceMem = fbmem(inst_fb, 0x1000);
        p.ramfcMem = fbmem(inst_fb, 0x200);
        p.userdMem = fbmem(userd_fb, host::USERD_SIZE);
        p.mthdbufMem = rm::NV_MEMORY_DESC_PARAMS {
            base: mthdbuf.dev_addr,
            size: mthdbuf.size,
            addressSpace: rm::ADDR_SYSMEM,
            cacheAttrib: 1,
        };
        let hchan = handle::channel(index);
        let class = u32::from(self.srv.cfg.classes.channel);
        let result = self
            .p
            .rm_alloc(hclient, hdevice, hchan, class, p.as_bytes())
            .and_then(|()| {
                let ce = rm::NVB0B5_ALLOCATION_PARAMETERS {
                    version: rm::NVB0B5_ALLOCATION_PARAMETERS_VERSION_1,
                    engineType: engine,
                };
                self.p.rm_alloc(
                    hclient,
                    hchan,
                    handle::copy(index),
                    u32::from(self.srv.cfg.classes.copy),
                    ce.as_bytes(),
                )?;
                let mut bind = rm::NVA06F_CTRL_BIND_PARAMS { engineType: engine };
                self.p
                    .rm_control(hclient, hchan, RmControl::Bind.into(), bind.as_mut_bytes())?;
                let mut sched = rm::NVA06F_CTRL_GPFIFO_SCHEDULE_PARAMS {
                    bEnable: 1,
                    bSkipSubmit: 0,
                };
                self.p.rm_control(
                    hclient,
                    hchan,
                    RmControl::GpfifoSchedule.into(),
                    sched.as_mut_bytes(),
                )?;
                let mut tok = rm::NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS::new_zeroed();
                self.p.rm_control(
                    hclient,
                    hchan,
                    RmControl::GpfifoGetWorkSubmitToken.into(),
                    tok.as_mut_bytes(),
                )?;
                Ok(tok.workSubmitToken)
            });
        let objects = [inst, userd, ring, fence, push];
        let token = match result {
            Ok(t) => t,
            Err(e) => {
                let _ = self.p.rm_free(hclient, hdevice, hchan);
                let _ = self.p.dma_free(crate::deps::Pool::Server, mthdbuf);
                for id in objects {
                    self.free_kernel_object(c, id);
                }
                return Err(e);
            }
        };
        let chan = Chan {
            index,
            token,
            userd_fb,
            ring: (ring_fb, ring_va),
            fence: (fence_fb, fence_va),
            push: (push_fb, push_va),
            put: 0,
            seqno: 0,
            objects,
            mthdbuf,
        };
        let ctx = self.srv.ctx_mut(c)?;
        if let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|i| ctx.chans.get_mut(i))
        {
            *slot = Some(chan);
        }
        Ok(ChanId(index + 1))
    }

    fn free_kernel_object(&mut self, c: usize, id: gpu_api::BoId) {
        let Ok(ctx) = self.srv.ctx_mut(c) else { return };
        let Some(bo) = ctx.take_bo(id) else { return };
        let gone = ctx.va.as_mut().map(|va| va.unmap_bo(id));
        if let Some(ranges) = gone {
            for r in ranges {
                let _ = self.write_ptes(c, r);
            }
        }
        if let Place::Vram { fb, .. } = bo.place {
            let _ = self.srv.vram.free(fb, bo.size);
        }
    }

    /// Free a channel: the RM objects first (RM stops it), then its memory.
    pub(crate) fn channel_free_impl(&mut self, c: usize, id: ChanId) -> Result<(), GpuError> {
        let ctx = self.srv.ctx_mut(c)?;
        let chan = *ctx.chan(id)?;
        let (hclient, hdevice) = (ctx.rm.client, ctx.rm.device);
        if let Some(s) = usize::try_from(chan.index)
            .ok()
            .and_then(|i| ctx.chans.get_mut(i))
        {
            *s = None;
        }
        let freed = self
            .p
            .rm_free(hclient, hdevice, handle::channel(chan.index));
        let _ = self.p.dma_free(crate::deps::Pool::Server, chan.mthdbuf);
        for o in chan.objects {
            self.free_kernel_object(c, o);
        }
        freed
    }

    pub(crate) fn exec_impl(
        &mut self,
        c: usize,
        id: ChanId,
        pushes: &[Push],
    ) -> Result<Submitted, GpuError> {
        if pushes.len() >= ENTRIES as usize {
            return Err(GpuError::Invalid);
        }
        for p in pushes {
            if p.len == 0 || p.len % 4 != 0 || p.va % 4 != 0 || p.len / 4 > 0x1f_ffff {
                return Err(GpuError::Invalid);
            }
        }
        let ctx = self.srv.ctx_mut(c)?;
        let mut chan = *ctx.chan(id)?;
        let seqno = chan.seqno.wrapping_add(1);
        // The kernel segment: release the fence semaphore with `seqno` (4-byte release).
        let slot = u64::from(seqno) % SEGMENTS;
        let seg_fb = chan.push.0 + slot * FENCE_SEGMENT;
        let seg_va = chan.push.1 + slot * FENCE_SEGMENT;
        let sem = chan.fence.1;
        let words: [u32; 5] = [
            MethodHeader::encode(SecOp::IncMethod, 0, host::SEMAPHOREA, 4),
            // CAST: SEMAPHOREA takes VA bits 39:32, SEMAPHOREB bits 31:2.
            ((sem >> 32) & 0xff) as u32,
            (sem & 0xffff_fffc) as u32,
            seqno,
            host::SEMAPHORED_OPERATION_RELEASE | (1 << 24),
        ];
        self.srv.vram.write(seg_fb, words.as_bytes())?;
        let ring_mask = ENTRIES - 1;
        let mut put = chan.put;
        let entries = pushes
            .iter()
            .map(|p| GpEntry {
                va: p.va,
                dwords: p.len / 4,
                sync_wait: false,
            })
            .chain(core::iter::once(GpEntry {
                va: seg_va,
                dwords: 5,
                sync_wait: false,
            }));
        for e in entries {
            let at = chan.ring.0 + u64::from(put) * host::GP_ENTRY_SIZE;
            self.srv.vram.write(at, &e.encode().to_le_bytes())?;
            put = (put + 1) & ring_mask;
        }
        self.srv
            .vram
            .write(chan.userd_fb + host::USERD_GP_PUT, &put.to_le_bytes())?;
        chan.put = put;
        chan.seqno = seqno;
        *self.srv.ctx_mut(c)?.chan(id)? = chan;
        self.p
            .write32(
                usermode::BASE + usermode::NOTIFY_CHANNEL_PENDING,
                chan.token,
            )
            .map_err(|_| GpuError::Device)?;
        let fence = Fence {
            chan: id,
            seqno: u64::from(seqno),
        };
        // One read of the semaphore now saves drm a PPC per wait when the job is done already.
        let done = self.fence_signaled_impl(c, fence)?;
        Ok(Submitted { fence, done })
    }

    pub(crate) fn fence_signaled_impl(&mut self, c: usize, fence: Fence) -> Result<bool, GpuError> {
        let chan = *self.srv.ctx_mut(c)?.chan(fence.chan)?;
        let want = u32::try_from(fence.seqno).map_err(|_| GpuError::Invalid)?;
        if want.wrapping_sub(chan.seqno) as i32 > 0 {
            return Err(GpuError::Invalid);
        }
        let now = self.srv.vram.read_u32(chan.fence.0)?;
        // Wrap-safe: signalled once the semaphore is at or past `want`.
        Ok(now.wrapping_sub(want) as i32 >= 0)
    }

    /// Whether any channel of the context still has jobs in flight (for `bo_busy`).
    pub(crate) fn ctx_busy(&mut self, c: usize) -> Result<bool, GpuError> {
        let chans: [Option<Chan>; MAX_CHANS] = self.srv.ctx_mut(c)?.chans;
        for chan in chans.iter().flatten() {
            if self.srv.vram.read_u32(chan.fence.0)? != chan.seqno {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Nothing of a dead context may stay scheduled: used by [`Ctx`] teardown.
pub(crate) fn channel_ids(ctx: &Ctx) -> impl Iterator<Item = ChanId> + '_ {
    ctx.chans.iter().flatten().map(|c| ChanId(c.index + 1))
}
