//! Channels: what the GPU's host (PBDMA) and copy engine do when a channel's doorbell rings.
//!
//! On a work-submit token written to the usermode doorbell, the channel's `GPPut` is read from
//! its USERD, and every GPFIFO entry from `GPGet` up to it is fetched *through the channel's GPU
//! virtual address space* (the driver's page tables, walked with [`gsp::mmu::translate`]); each
//! entry's push-buffer segment is decoded (`clc36f.h` method headers) and its methods executed.
//! `GPGet` is written back after each entry, as the hardware does.
//!
//! The methods modelled, strictly (anything else stops the channel with an error):
//! - host: `SET_OBJECT` (the class must be the copy-engine object allocated on the channel),
//!   `NOP`, `WFI`, `MEM_OP_A..D`, `SET_REFERENCE`, `NON_STALL_INTERRUPT` (no effect), semaphore
//!   release and already-satisfied acquires through `SEMAPHOREA..D` (cl906f style) and
//!   `SEM_ADDR_LO..SEM_EXECUTE` (Volta+);
//! - copy engine (`clc5b5.h` family): pitch-linear copies, single or multi-line, virtual or
//!   physical addressing, and one-word / four-word semaphore releases on `LAUNCH_DMA`.
//!
//! Faults are data, not crashes: an invalid or missing PTE becomes [`ChannelError::MmuFault`]
//! (reported to the driver as `MMU_FAULT_QUEUED` plus `RC_TRIGGERED` Xid 31), a bad push buffer or
//! unknown method becomes [`ChannelError::Pbdma`] (Xid 32) or [`ChannelError::CopyEngine`]
//! (Xid 39), and the channel stays stopped until it is freed. A semaphore acquire that is not yet
//! satisfied is also an error here: the model does not block a channel.
use crate::phys::{Memory, PhysError};
use gsp::fw::current::rm::{copy, host, rc, RmClass};
use gsp::mmu::{translate, Target, Translation, WalkError};
use host::{GpEntry, MethodHeader, SecOp};

/// Channels the model runs at once (channel ids 0..MAX_CHANNELS).
pub const MAX_CHANNELS: usize = 32;
/// The runlist id in every work-submit token (`runlist << 16 | chid`, as nouveau computes it).
pub const RUNLIST: u32 = 1;
/// Largest GPFIFO ring accepted (entries).
pub const MAX_GPFIFO_ENTRIES: u32 = 1 << 20;

/// Why a channel stopped. Each maps to an RC error number (Xid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// A GPU virtual (or physical) access faulted.
    MmuFault {
        /// The faulting address.
        addr: u64,
        /// Whether it was a write.
        write: bool,
        /// What the walk or the memory said.
        reason: FaultReason,
    },
    /// The host (PBDMA) refused the push buffer: `what`, with the offending value.
    Pbdma {
        /// What was wrong.
        what: &'static str,
        /// The offending value (method, opcode, index).
        value: u64,
    },
    /// The copy engine refused a method or launch.
    CopyEngine {
        /// What was wrong.
        what: &'static str,
        /// The offending value.
        value: u64,
    },
}

impl ChannelError {
    /// The ROBUST_CHANNEL_* number RM reports for it.
    pub const fn xid(&self) -> u32 {
        match self {
            Self::MmuFault { .. } => rc::FIFO_ERROR_MMU_ERR_FLT,
            Self::Pbdma { .. } => rc::PBDMA_ERROR,
            Self::CopyEngine { .. } => rc::CE0_ERROR,
        }
    }
}

impl core::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::MmuFault {
                addr,
                write,
                reason,
            } => {
                let rw = if *write { "write" } else { "read" };
                write!(f, "MMU fault on {rw} of {addr:#x}: {reason:?}")
            }
            Self::Pbdma { what, value } => write!(f, "PBDMA error: {what} ({value:#x})"),
            Self::CopyEngine { what, value } => write!(f, "copy engine error: {what} ({value:#x})"),
        }
    }
}

/// Why an access faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultReason {
    /// The channel's VA space has no page directory registered.
    NoPageDirectory,
    /// The walk found no mapping (invalid PDE or PTE).
    NotMapped,
    /// The walk found a malformed entry.
    Malformed,
    /// A page table or the page itself is not backed by memory.
    Unbacked,
    /// A write to a read-only page.
    ReadOnly,
    /// The VA is beyond 49 bits.
    VaOutOfRange,
}

/// Host semaphore state (`SEMAPHOREA..C`, `SEM_ADDR_*`, `SEM_PAYLOAD_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct HostState {
    sem_a: u32,
    sem_b: u32,
    sem_c: u32,
    addr_lo: u32,
    addr_hi: u32,
    payload_lo: u32,
    payload_hi: u32,
}

/// Copy-engine method state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CeState {
    offset_in: u64,
    offset_out: u64,
    pitch_in: u32,
    pitch_out: u32,
    line_length: u32,
    line_count: u32,
    sem_addr: u64,
    sem_payload: u32,
    src_phys: u32,
    dst_phys: u32,
}

/// What the driver told RM about a channel at allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Owning client.
    pub client: u32,
    /// The channel object's handle.
    pub handle: u32,
    /// Handle of its VA space (same client).
    pub vaspace: u32,
    /// NV2080_ENGINE_TYPE_COPYn.
    pub engine: u32,
    /// GPU VA of the GPFIFO ring.
    pub gpfifo_va: u64,
    /// Ring entries (a power of two).
    pub entries: u32,
    /// Where USERD lives.
    pub userd: (Target, u64),
}

/// One channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Its configuration.
    pub config: ChannelConfig,
    /// `NVA06F_CTRL_CMD_BIND` done.
    pub bound: bool,
    /// `NVA06F_CTRL_CMD_GPFIFO_SCHEDULE` enabled it.
    pub scheduled: bool,
    /// The copy-engine object on this channel: (handle, class).
    pub copy_object: Option<(u32, RmClass)>,
    /// The GPFIFO read index.
    pub gp_get: u32,
    /// Set once the channel hit an error; it runs no more.
    pub error: Option<ChannelError>,
    subchannels: [Option<RmClass>; 8],
    host: HostState,
    ce: CeState,
}

impl Channel {
    /// A freshly allocated channel.
    pub const fn new(config: ChannelConfig) -> Self {
        Self {
            config,
            bound: false,
            scheduled: false,
            copy_object: None,
            gp_get: 0,
            error: None,
            subchannels: [None; 8],
            host: HostState {
                sem_a: 0,
                sem_b: 0,
                sem_c: 0,
                addr_lo: 0,
                addr_hi: 0,
                payload_lo: 0,
                payload_hi: 0,
            },
            ce: CeState {
                offset_in: 0,
                offset_out: 0,
                pitch_in: 0,
                pitch_out: 0,
                line_length: 0,
                line_count: 0,
                sem_addr: 0,
                sem_payload: 0,
                src_phys: 0,
                dst_phys: 0,
            },
        }
    }
}

/// The work-submit token of channel `chid` (`NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN`).
pub const fn work_submit_token(chid: usize) -> u32 {
    // CAST: chid < MAX_CHANNELS (32) fits 16 bits.
    (RUNLIST << 16) | (chid as u32 & 0xffff)
}

/// The channel id a token names, if it is well formed.
pub const fn token_chid(token: u32) -> Option<usize> {
    let chid = (token & 0xffff) as usize;
    if token >> 16 == RUNLIST && chid < MAX_CHANNELS {
        Some(chid)
    } else {
        None
    }
}

/// Everything one kick needs besides the channel.
#[derive(Clone, Copy, Debug)]
pub struct Context<'m> {
    /// Physical memory.
    pub mem: &'m Memory,
    /// The VA space's page directory (PD3), if registered.
    pub root: Option<(Target, u64)>,
    /// PTIMER nanoseconds, for semaphore timestamps.
    pub now_ns: u64,
}

/// A resolved piece of an access: where `len` bytes starting at an address go.
enum Piece {
    Mem { target: Target, addr: u64, len: u64 },
    Sparse { len: u64 },
}

impl Context<'_> {
    fn fault(addr: u64, write: bool, reason: FaultReason) -> ChannelError {
        ChannelError::MmuFault {
            addr,
            write,
            reason,
        }
    }

    /// Resolve the virtual address `va` for an access of up to `max` bytes.
    fn resolve_va(&self, va: u64, max: u64, write: bool) -> Result<Piece, ChannelError> {
        let root = self
            .root
            .ok_or(Self::fault(va, write, FaultReason::NoPageDirectory))?;
        let mut pt = self.mem;
        let tr = translate(&mut pt, root, va).map_err(|e| {
            let reason = match e {
                WalkError::Memory { .. } => FaultReason::Unbacked,
                WalkError::NotMapped { .. } => FaultReason::NotMapped,
                WalkError::Malformed { .. } => FaultReason::Malformed,
                WalkError::VaOutOfRange => FaultReason::VaOutOfRange,
            };
            Self::fault(va, write, reason)
        })?;
        let len = tr.bytes_to_page_end(va).min(max);
        Ok(match tr {
            Translation::Mapped {
                target,
                phys,
                flags,
                ..
            } => {
                if write && flags.read_only {
                    return Err(Self::fault(va, write, FaultReason::ReadOnly));
                }
                Piece::Mem {
                    target,
                    addr: phys,
                    len,
                }
            }
            Translation::Sparse => Piece::Sparse { len },
        })
    }

    /// Read `buf.len()` bytes at GPU VA `va` (sparse reads as zero).
    fn read_va(&self, va: u64, buf: &mut [u8]) -> Result<(), ChannelError> {
        let mut done = 0usize;
        while done < buf.len() {
            // CAST: usize to u64 is lossless.
            let at = va.wrapping_add(done as u64);
            let rest = buf.get_mut(done..).unwrap_or_default();
            // CAST: usize to u64 is lossless.
            let piece = self.resolve_va(at, rest.len() as u64, false)?;
            let n = match piece {
                Piece::Mem { target, addr, len } => {
                    // CAST: len <= rest.len(), a usize.
                    let n = len as usize;
                    let dst = rest.get_mut(..n).unwrap_or_default();
                    self.mem
                        .read(target, addr, dst)
                        .map_err(|_| Self::fault(at, false, FaultReason::Unbacked))?;
                    n
                }
                Piece::Sparse { len } => {
                    // CAST: len <= rest.len(), a usize.
                    let n = len as usize;
                    rest.get_mut(..n).unwrap_or_default().fill(0);
                    n
                }
            };
            done += n;
        }
        Ok(())
    }

    /// Write `buf` at GPU VA `va` (sparse drops the bytes).
    fn write_va(&self, va: u64, buf: &[u8]) -> Result<(), ChannelError> {
        let mut done = 0usize;
        while done < buf.len() {
            // CAST: usize to u64 is lossless.
            let at = va.wrapping_add(done as u64);
            let rest = buf.get(done..).unwrap_or_default();
            // CAST: usize to u64 is lossless.
            let n = match self.resolve_va(at, rest.len() as u64, true)? {
                Piece::Mem { target, addr, len } => {
                    // CAST: len <= rest.len(), a usize.
                    let n = len as usize;
                    self.mem
                        .write(target, addr, rest.get(..n).unwrap_or_default())
                        .map_err(|_| Self::fault(at, true, FaultReason::Unbacked))?;
                    n
                }
                // CAST: len <= rest.len(), a usize.
                Piece::Sparse { len } => len as usize,
            };
            done += n;
        }
        Ok(())
    }
}

/// An address the copy engine reads or writes: virtual, or physical in an aperture.
#[derive(Clone, Copy, Debug)]
enum CeAddr {
    Virtual(u64),
    Physical(Target, u64),
}

impl CeAddr {
    fn offset(self, by: u64) -> Self {
        match self {
            Self::Virtual(a) => Self::Virtual(a.wrapping_add(by)),
            Self::Physical(t, a) => Self::Physical(t, a.wrapping_add(by)),
        }
    }
}

/// A push-buffer segment read one dword at a time, fetched page by page through the MMU.
struct Push<'c, 'm> {
    ctx: &'c Context<'m>,
    va: u64,
    remaining: u32,
    buf: [u32; 256],
    pos: usize,
    len: usize,
}

impl<'c, 'm> Push<'c, 'm> {
    fn new(ctx: &'c Context<'m>, va: u64, dwords: u32) -> Self {
        Self {
            ctx,
            va,
            remaining: dwords,
            buf: [0; 256],
            pos: 0,
            len: 0,
        }
    }

    fn next(&mut self) -> Result<Option<u32>, ChannelError> {
        if self.pos == self.len {
            if self.remaining == 0 {
                return Ok(None);
            }
            // Up to the end of the 4 KiB page or of the buffer, whichever is first.
            let page_room = (0x1000 - (self.va & 0xfff)) / 4;
            // CAST: page_room <= 1024 and the result is bounded by the buffer length.
            let n = (page_room as usize)
                .min(self.buf.len())
                .min(self.remaining as usize);
            let mut bytes = [0u8; 1024];
            let chunk = bytes.get_mut(..n * 4).unwrap_or_default();
            self.ctx.read_va(self.va, chunk)?;
            for (slot, b) in self.buf.iter_mut().zip(chunk.chunks_exact(4)) {
                *slot = u32::from_le_bytes([
                    b.first().copied().unwrap_or(0),
                    b.get(1).copied().unwrap_or(0),
                    b.get(2).copied().unwrap_or(0),
                    b.get(3).copied().unwrap_or(0),
                ]);
            }
            // CAST: n <= 256.
            self.va += n as u64 * 4;
            self.remaining -= n as u32;
            (self.pos, self.len) = (0, n);
        }
        let dw = self.buf.get(self.pos).copied();
        self.pos += 1;
        Ok(dw)
    }

    /// The next dword, which a method header promised.
    fn data(&mut self, header: u32) -> Result<u32, ChannelError> {
        self.next()?.ok_or(ChannelError::Pbdma {
            what: "method data past the end of the segment",
            value: u64::from(header),
        })
    }
}

impl Channel {
    /// Run everything between `GPGet` and the driver's `GPPut`. Returns the error that stopped
    /// the channel, if one did (it is also kept in [`Channel::error`]).
    pub fn kick(&mut self, ctx: &Context<'_>) -> Result<(), ChannelError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let r = self.run(ctx);
        if let Err(e) = r {
            self.error = Some(e);
        }
        r
    }

    fn run(&mut self, ctx: &Context<'_>) -> Result<(), ChannelError> {
        let (ut, ua) = self.config.userd;
        let gp_put = ctx
            .mem
            .read_u32(ut, ua + host::USERD_GP_PUT)
            .map_err(|_| Context::fault(ua + host::USERD_GP_PUT, false, FaultReason::Unbacked))?;
        if gp_put >= self.config.entries {
            return Err(ChannelError::Pbdma {
                what: "GPPut beyond the GPFIFO ring",
                value: u64::from(gp_put),
            });
        }
        while self.gp_get != gp_put {
            let at = self.config.gpfifo_va + u64::from(self.gp_get) * host::GP_ENTRY_SIZE;
            let mut raw = [0u8; 8];
            ctx.read_va(at, &mut raw)?;
            let raw = u64::from_le_bytes(raw);
            let entry = GpEntry::decode(raw);
            if entry.dwords == 0 {
                // A control entry: only NOP (GP_ENTRY1_OPCODE 7:0 == 0) is modelled.
                if (raw >> 32) & 0xff != 0 {
                    return Err(ChannelError::Pbdma {
                        what: "GPFIFO control opcode",
                        value: (raw >> 32) & 0xff,
                    });
                }
            } else {
                self.segment(ctx, entry)?;
            }
            self.gp_get = (self.gp_get + 1) % self.config.entries;
            ctx.mem
                .write_u32(ut, ua + host::USERD_GP_GET, self.gp_get)
                .map_err(|_| {
                    Context::fault(ua + host::USERD_GP_GET, true, FaultReason::Unbacked)
                })?;
        }
        Ok(())
    }

    fn segment(&mut self, ctx: &Context<'_>, entry: GpEntry) -> Result<(), ChannelError> {
        let mut push = Push::new(ctx, entry.va, entry.dwords);
        while let Some(dw) = push.next()? {
            if dw == 0 {
                continue; // NVC36F_DMA_NOP
            }
            let h = MethodHeader::decode(dw);
            match h.op {
                SecOp::IncMethod | SecOp::NonIncMethod | SecOp::OneInc => {
                    for i in 0..h.count {
                        let data = push.data(dw)?;
                        let step = match h.op {
                            SecOp::IncMethod => i,
                            SecOp::OneInc => i.min(1),
                            _ => 0,
                        };
                        self.method(ctx, h.subchannel, h.method + 4 * step, data)?;
                    }
                }
                SecOp::ImmdDataMethod => self.method(ctx, h.subchannel, h.method, h.count)?,
                SecOp::EndPbSegment => break,
                SecOp::Grp0UseTert | SecOp::Grp2UseTert | SecOp::Reserved6 => {
                    return Err(ChannelError::Pbdma {
                        what: "unsupported push-buffer opcode",
                        value: u64::from(dw),
                    })
                }
            }
        }
        Ok(())
    }

    fn method(
        &mut self,
        ctx: &Context<'_>,
        subch: u8,
        mthd: u32,
        data: u32,
    ) -> Result<(), ChannelError> {
        if mthd < host::HOST_METHOD_LIMIT {
            return self.host_method(ctx, subch, mthd, data);
        }
        match self.subchannels.get(usize::from(subch)).copied().flatten() {
            Some(_) => self.copy_method(ctx, mthd, data),
            None => Err(ChannelError::Pbdma {
                what: "method to a subchannel with no object",
                value: u64::from(mthd),
            }),
        }
    }

    fn host_method(
        &mut self,
        ctx: &Context<'_>,
        subch: u8,
        mthd: u32,
        data: u32,
    ) -> Result<(), ChannelError> {
        let h = &mut self.host;
        match mthd {
            host::SET_OBJECT => {
                let class = data & 0xffff;
                match self.copy_object {
                    Some((_, c)) if u32::from(c) == class => {
                        if let Some(s) = self.subchannels.get_mut(usize::from(subch)) {
                            *s = Some(c);
                        }
                    }
                    _ => {
                        return Err(ChannelError::Pbdma {
                            what: "SET_OBJECT of a class not allocated on the channel",
                            value: u64::from(class),
                        })
                    }
                }
            }
            host::NOP
            | host::WFI
            | host::MEM_OP_A
            | host::MEM_OP_B
            | host::MEM_OP_C
            | host::MEM_OP_D => {}
            host::SET_REFERENCE | host::NON_STALL_INTERRUPT => {}
            host::SEMAPHOREA => h.sem_a = data,
            host::SEMAPHOREB => h.sem_b = data,
            host::SEMAPHOREC => h.sem_c = data,
            host::SEMAPHORED => {
                let addr = (u64::from(h.sem_a & 0xff) << 32) | u64::from(h.sem_b & !3);
                let payload = h.sem_c;
                match data & 0x1f {
                    host::SEMAPHORED_OPERATION_RELEASE => {
                        // RELEASE_SIZE 24:24: 4BYTE (1) writes the payload, 16BYTE (0) payload + timestamp.
                        if data & (1 << 24) != 0 {
                            ctx.write_va(addr, &payload.to_le_bytes())?;
                        } else {
                            four_word_release(ctx, addr, payload)?;
                        }
                    }
                    // ACQUIRE (1): equal; ACQ_GEQ (4): >=.
                    op @ (1 | 4) => acquire(ctx, addr, u64::from(payload), op == 4, false)?,
                    op => {
                        return Err(ChannelError::Pbdma {
                            what: "SEMAPHORED operation",
                            value: u64::from(op),
                        })
                    }
                }
            }
            host::SEM_ADDR_LO => h.addr_lo = data,
            host::SEM_ADDR_HI => h.addr_hi = data,
            host::SEM_PAYLOAD_LO => h.payload_lo = data,
            host::SEM_PAYLOAD_HI => h.payload_hi = data,
            host::SEM_EXECUTE => {
                let addr = (u64::from(h.addr_hi & 0xff) << 32) | u64::from(h.addr_lo & !3);
                let wide = data & (1 << 24) != 0;
                let payload = if wide {
                    (u64::from(h.payload_hi) << 32) | u64::from(h.payload_lo)
                } else {
                    u64::from(h.payload_lo)
                };
                match data & 0x7 {
                    host::SEM_EXECUTE_OPERATION_RELEASE => {
                        if wide {
                            ctx.write_va(addr, &payload.to_le_bytes())?;
                        } else {
                            // CAST: the 32-bit payload was built from payload_lo.
                            ctx.write_va(addr, &(payload as u32).to_le_bytes())?;
                        }
                        // RELEASE_TIMESTAMP 25:25: the timestamp follows at +8.
                        if data & (1 << 25) != 0 {
                            ctx.write_va(addr + 8, &ctx.now_ns.to_le_bytes())?;
                        }
                    }
                    // ACQUIRE (0): equal; ACQ_STRICT_GEQ (2): >=.
                    op @ (0 | 2) => acquire(ctx, addr, payload, op == 2, wide)?,
                    op => {
                        return Err(ChannelError::Pbdma {
                            what: "SEM_EXECUTE operation",
                            value: u64::from(op),
                        })
                    }
                }
            }
            _ => {
                return Err(ChannelError::Pbdma {
                    what: "unknown host method",
                    value: u64::from(mthd),
                })
            }
        }
        Ok(())
    }

    fn copy_method(&mut self, ctx: &Context<'_>, mthd: u32, data: u32) -> Result<(), ChannelError> {
        let ce = &mut self.ce;
        match mthd {
            0x100 => {} // NVC5B5_NOP
            copy::SET_SEMAPHORE_A => {
                ce.sem_addr = (u64::from(data & 0x1_ffff) << 32) | (ce.sem_addr & 0xffff_ffff)
            }
            copy::SET_SEMAPHORE_B => ce.sem_addr = (ce.sem_addr & !0xffff_ffff) | u64::from(data),
            copy::SET_SEMAPHORE_PAYLOAD => ce.sem_payload = data,
            0x260 => ce.src_phys = data, // SET_SRC_PHYS_MODE
            0x264 => ce.dst_phys = data, // SET_DST_PHYS_MODE
            copy::OFFSET_IN_UPPER => {
                ce.offset_in = (u64::from(data & 0x1_ffff) << 32) | (ce.offset_in & 0xffff_ffff)
            }
            copy::OFFSET_IN_LOWER => ce.offset_in = (ce.offset_in & !0xffff_ffff) | u64::from(data),
            copy::OFFSET_OUT_UPPER => {
                ce.offset_out = (u64::from(data & 0x1_ffff) << 32) | (ce.offset_out & 0xffff_ffff)
            }
            copy::OFFSET_OUT_LOWER => {
                ce.offset_out = (ce.offset_out & !0xffff_ffff) | u64::from(data)
            }
            copy::PITCH_IN => ce.pitch_in = data,
            copy::PITCH_OUT => ce.pitch_out = data,
            copy::LINE_LENGTH_IN => ce.line_length = data,
            copy::LINE_COUNT => ce.line_count = data,
            copy::LAUNCH_DMA => return self.launch(ctx, data),
            _ => {
                return Err(ChannelError::CopyEngine {
                    what: "unknown copy-engine method",
                    value: u64::from(mthd),
                })
            }
        }
        Ok(())
    }

    fn launch(&mut self, ctx: &Context<'_>, data: u32) -> Result<(), ChannelError> {
        let ce = self.ce;
        let bad = |what| {
            Err(ChannelError::CopyEngine {
                what,
                value: u64::from(data),
            })
        };
        if data & (copy::LAUNCH_REMAP_ENABLE | copy::LAUNCH_SEMAPHORE_REDUCTION_ENABLE) != 0 {
            return bad("remap and semaphore reduction are not modelled");
        }
        if data & copy::LAUNCH_DATA_TRANSFER_TYPE_MASK != 0 {
            let pitch = copy::LAUNCH_SRC_LAYOUT_PITCH | copy::LAUNCH_DST_LAYOUT_PITCH;
            if data & pitch != pitch {
                return bad("block-linear layout is not modelled");
            }
            let src = ce_addr(
                ce.offset_in,
                data & copy::LAUNCH_SRC_TYPE_PHYSICAL != 0,
                ce.src_phys,
            )?;
            let dst = ce_addr(
                ce.offset_out,
                data & copy::LAUNCH_DST_TYPE_PHYSICAL != 0,
                ce.dst_phys,
            )?;
            let lines = if data & copy::LAUNCH_MULTI_LINE_ENABLE != 0 {
                ce.line_count
            } else {
                1
            };
            for l in 0..u64::from(lines) {
                copy_line(
                    ctx,
                    src.offset(l * u64::from(ce.pitch_in)),
                    dst.offset(l * u64::from(ce.pitch_out)),
                    u64::from(ce.line_length),
                )?;
            }
        }
        match (data >> copy::LAUNCH_SEMAPHORE_TYPE_SHIFT) & 0b11 {
            0 => Ok(()),
            1 => ctx.write_va(ce.sem_addr, &ce.sem_payload.to_le_bytes()),
            2 => four_word_release(ctx, ce.sem_addr, ce.sem_payload),
            _ => bad("conditional-interrupt semaphore is not modelled"),
        }
    }
}

/// A four-word (16-byte) semaphore release: payload, zero, then the 64-bit timestamp.
fn four_word_release(ctx: &Context<'_>, addr: u64, payload: u32) -> Result<(), ChannelError> {
    let mut rec = [0u8; 16];
    let (p, t) = rec.split_at_mut(8);
    p.get_mut(..4)
        .unwrap_or_default()
        .copy_from_slice(&payload.to_le_bytes());
    t.copy_from_slice(&ctx.now_ns.to_le_bytes());
    ctx.write_va(addr, &rec)
}

/// An acquire the model can only honour if it is already satisfied.
fn acquire(
    ctx: &Context<'_>,
    addr: u64,
    want: u64,
    geq: bool,
    wide: bool,
) -> Result<(), ChannelError> {
    let mut b = [0u8; 8];
    let n = if wide { 8 } else { 4 };
    ctx.read_va(addr, b.get_mut(..n).unwrap_or_default())?;
    let have = u64::from_le_bytes(b);
    if have == want || (geq && have >= want) {
        Ok(())
    } else {
        Err(ChannelError::Pbdma {
            what: "semaphore acquire not satisfied (the model does not block)",
            value: addr,
        })
    }
}

/// Resolve a copy-engine operand: virtual, or physical with `SET_*_PHYS_MODE` TARGET (1:0).
fn ce_addr(addr: u64, physical: bool, phys_mode: u32) -> Result<CeAddr, ChannelError> {
    if !physical {
        return Ok(CeAddr::Virtual(addr));
    }
    let target = match phys_mode & 0b11 {
        0 => Target::Vram,
        1 => Target::SysCoherent,
        2 => Target::SysNonCoherent,
        _ => {
            return Err(ChannelError::CopyEngine {
                what: "peer physical mode is not modelled",
                value: u64::from(phys_mode),
            })
        }
    };
    Ok(CeAddr::Physical(target, addr))
}

/// Copy `len` bytes from `src` to `dst`, a page (or buffer) at a time.
fn copy_line(ctx: &Context<'_>, src: CeAddr, dst: CeAddr, len: u64) -> Result<(), ChannelError> {
    let mut buf = [0u8; 4096];
    let mut done = 0u64;
    while done < len {
        // CAST: usize to u64 is lossless.
        let n = (len - done).min(buf.len() as u64);
        // CAST: n <= 4096.
        let chunk = buf.get_mut(..n as usize).unwrap_or_default();
        match src.offset(done) {
            CeAddr::Virtual(va) => ctx.read_va(va, chunk)?,
            CeAddr::Physical(t, a) => ctx
                .mem
                .read(t, a, chunk)
                .map_err(|e| phys_fault(e, a, false))?,
        }
        match dst.offset(done) {
            CeAddr::Virtual(va) => ctx.write_va(va, chunk)?,
            CeAddr::Physical(t, a) => ctx
                .mem
                .write(t, a, chunk)
                .map_err(|e| phys_fault(e, a, true))?,
        }
        done += n;
    }
    Ok(())
}

fn phys_fault(_e: PhysError, addr: u64, write: bool) -> ChannelError {
    ChannelError::MmuFault {
        addr,
        write,
        reason: FaultReason::Unbacked,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use crate::phys::FbLayout;
    use gsp::mmu::{DualPde, Level, PageSize, Pde, Pte, PteFlags};
    use pd_core::shm::Region;
    use std::vec;

    /// A VRAM-backed VA space: PD3..PD0 at FB 0x0..0x4000, a 4 KiB page table at 0x5000,
    /// pages at 0x100000+; identity-ish mapping helper.
    pub(crate) struct Space {
        pub mem: Memory,
        pub root: (Target, u64),
    }

    pub(crate) const PT: u64 = 0x5000;

    impl Space {
        pub(crate) fn new() -> Self {
            let mut mem = Memory::new(FbLayout {
                reported_size: 64 << 20,
            });
            mem.add_vram(Region::from_static(vec![0u8; 8 << 20].leak()))
                .unwrap();
            mem.sys
                .add(0x8000_0000, Region::from_static(vec![0u8; 1 << 20].leak()))
                .unwrap();
            let s = Self {
                mem,
                root: (Target::Vram, 0x1000),
            };
            // Only VA 0..2 MiB: PD3[0] -> PD2[0] -> PD1[0] -> PD0[0] -> PT.
            let w = |a: u64, v: u64| s.mem.write(Target::Vram, a, &v.to_le_bytes()).unwrap();
            w(0x1000, Pde::table(Target::Vram, 0x2000).unwrap().0);
            w(0x2000, Pde::table(Target::Vram, 0x3000).unwrap().0);
            w(0x3000, Pde::table(Target::Vram, 0x4000).unwrap().0);
            let d = DualPde::tables(None, Some((Target::Vram, PT))).unwrap();
            w(0x4000, d.big);
            w(0x4008, d.small);
            s
        }

        /// Map the 4 KiB page at `va` (< 2 MiB) to `phys` in `target`.
        pub(crate) fn map(&self, va: u64, target: Target, phys: u64, read_only: bool) {
            let f = PteFlags {
                read_only,
                ..PteFlags::default()
            };
            let pte = Pte::page(target, phys, PageSize::K4, f).unwrap();
            self.mem
                .write(
                    Target::Vram,
                    PT + Level::PtSmall.entry_offset(va),
                    &pte.0.to_le_bytes(),
                )
                .unwrap();
        }

        pub(crate) fn ctx(&self) -> Context<'_> {
            Context {
                mem: &self.mem,
                root: Some(self.root),
                now_ns: 0x1122_3344_5566_7788,
            }
        }
    }

    /// Channel at VA: GPFIFO 0x10000 (16 entries), USERD in FB at 0x6000, push buffer 0x11000.
    pub(crate) fn channel(s: &Space) -> Channel {
        s.map(0x10000, Target::Vram, 0x10_0000, false);
        s.map(0x11000, Target::Vram, 0x10_1000, false);
        s.map(0x12000, Target::Vram, 0x10_2000, false);
        let mut ch = Channel::new(ChannelConfig {
            client: 1,
            handle: 2,
            vaspace: 3,
            engine: 9,
            gpfifo_va: 0x10000,
            entries: 16,
            userd: (Target::Vram, 0x6000),
        });
        ch.copy_object = Some((4, RmClass::AmpereDmaCopyB));
        ch.scheduled = true;
        ch.bound = true;
        ch
    }

    /// Write `pb` at VA 0x11000, one GPFIFO entry for it at index `slot`, and GPPut = slot + 1.
    pub(crate) fn submit(s: &Space, slot: u32, pb: &[u32]) {
        let bytes: std::vec::Vec<u8> = pb.iter().flat_map(|d| d.to_le_bytes()).collect();
        s.ctx().write_va(0x11000, &bytes).unwrap();
        let e = GpEntry {
            va: 0x11000,
            dwords: pb.len() as u32,
            sync_wait: false,
        }
        .encode();
        s.ctx()
            .write_va(0x10000 + u64::from(slot) * 8, &e.to_le_bytes())
            .unwrap();
        s.mem
            .write_u32(Target::Vram, 0x6000 + host::USERD_GP_PUT, slot + 1)
            .unwrap();
    }

    pub(crate) fn inc(sub: u8, mthd: u32, data: &[u32]) -> std::vec::Vec<u32> {
        let mut v = vec![MethodHeader::encode(
            SecOp::IncMethod,
            sub,
            mthd,
            data.len() as u32,
        )];
        v.extend_from_slice(data);
        v
    }

    /// A push buffer: SET_OBJECT(c7b5) on subchannel 4, copy `len` bytes src->dst, then a
    /// one-word semaphore release of `payload` at `sem` — written with every header form the
    /// host decodes (incrementing, increment-once, non-incrementing, immediate).
    pub(crate) fn copy_pb(
        src: u64,
        dst: u64,
        len: u32,
        sem: u64,
        payload: u32,
    ) -> std::vec::Vec<u32> {
        let hdr = |op, mthd, count| MethodHeader::encode(op, 4, mthd, count);
        let hi = |a: u64| (a >> 32) as u32;
        let lo = |a: u64| a as u32;
        let mut pb = inc(4, host::SET_OBJECT, &[0xc7b5]);
        pb.extend([
            hdr(SecOp::IncMethod, copy::OFFSET_IN_UPPER, 4),
            hi(src),
            lo(src),
            hi(dst),
            lo(dst),
        ]);
        pb.extend([hdr(SecOp::ImmdDataMethod, copy::LINE_LENGTH_IN, len)]);
        pb.extend([
            hdr(SecOp::OneInc, copy::SET_SEMAPHORE_A, 2),
            hi(sem),
            lo(sem),
        ]);
        pb.extend([
            hdr(SecOp::NonIncMethod, copy::SET_SEMAPHORE_PAYLOAD, 2),
            payload ^ 1,
            payload,
        ]);
        let launch = 2
            | copy::LAUNCH_SRC_LAYOUT_PITCH
            | copy::LAUNCH_DST_LAYOUT_PITCH
            | (1 << copy::LAUNCH_SEMAPHORE_TYPE_SHIFT);
        pb.extend([0, hdr(SecOp::ImmdDataMethod, copy::LAUNCH_DMA, launch)]);
        pb
    }

    #[test]
    fn copy_lands_at_the_right_physical_pages_and_releases_the_semaphore() {
        let s = Space::new();
        let mut ch = channel(&s);
        // Source: sysmem page at bus 0x8000_3000 mapped at VA 0x20000; destination spans two
        // discontiguous VRAM pages (VA 0x21000 -> FB 0x30_0000, VA 0x22000 -> FB 0x20_0000).
        s.map(0x20000, Target::SysCoherent, 0x8000_3000, true);
        s.map(0x21000, Target::Vram, 0x30_0000, false);
        s.map(0x22000, Target::Vram, 0x20_0000, false);
        s.map(0x23000, Target::SysNonCoherent, 0x8000_4000, false);
        let data: std::vec::Vec<u8> = (0..0x1000u32).map(|i| (i * 7 + 3) as u8).collect();
        s.mem
            .write(Target::SysCoherent, 0x8000_3000, &data)
            .unwrap();
        submit(&s, 0, &copy_pb(0x20000, 0x21800, 0x1000, 0x23010, 0xfeed));
        ch.kick(&s.ctx()).unwrap();
        let mut got = vec![0u8; 0x800];
        s.mem.read(Target::Vram, 0x30_0800, &mut got).unwrap();
        assert_eq!(got, data[..0x800]);
        s.mem.read(Target::Vram, 0x20_0000, &mut got).unwrap();
        assert_eq!(got, data[0x800..]);
        assert_eq!(
            s.mem.read_u32(Target::SysNonCoherent, 0x8000_4010),
            Ok(0xfeed)
        );
        assert_eq!(
            s.mem.read_u32(Target::Vram, 0x6000 + host::USERD_GP_GET),
            Ok(1)
        );
        assert_eq!(ch.gp_get, 1);
    }

    #[test]
    fn host_semaphores_release_with_and_without_timestamps() {
        let s = Space::new();
        let mut ch = channel(&s);
        s.map(0x23000, Target::Vram, 0x40_0000, false);
        // SEM_EXECUTE: 64-bit payload + timestamp; SEMAPHORED: 4-byte release.
        let mut pb = inc(0, host::SEM_ADDR_LO, &[0x23000, 0, 0xaaaa_bbbb, 0x1]);
        pb.extend(inc(0, host::SEM_EXECUTE, &[1 | (1 << 24) | (1 << 25)]));
        pb.extend(inc(0, host::SEMAPHOREA, &[0, 0x23020, 7, 2 | (1 << 24)]));
        submit(&s, 0, &pb);
        ch.kick(&s.ctx()).unwrap();
        let mut b = [0u8; 8];
        s.mem.read(Target::Vram, 0x40_0000, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0x1_aaaa_bbbb);
        s.mem.read(Target::Vram, 0x40_0008, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0x1122_3344_5566_7788);
        assert_eq!(s.mem.read_u32(Target::Vram, 0x40_0020), Ok(7));
        // An acquire already satisfied passes; one that is not stops the channel.
        submit(&s, 1, &inc(0, host::SEMAPHOREA, &[0, 0x23020, 7, 1]));
        ch.kick(&s.ctx()).unwrap();
        submit(&s, 2, &inc(0, host::SEMAPHOREA, &[0, 0x23020, 8, 1]));
        assert!(matches!(ch.kick(&s.ctx()), Err(ChannelError::Pbdma { .. })));
    }

    #[test]
    fn invalid_pte_is_an_mmu_fault_not_a_crash() {
        let s = Space::new();
        let mut ch = channel(&s);
        s.map(0x20000, Target::Vram, 0x30_0000, false);
        // Destination VA 0x40000 has no PTE.
        submit(&s, 0, &copy_pb(0x20000, 0x40000, 0x100, 0x20000, 1));
        let e = ch.kick(&s.ctx()).unwrap_err();
        assert_eq!(
            e,
            ChannelError::MmuFault {
                addr: 0x40000,
                write: true,
                reason: FaultReason::NotMapped
            }
        );
        assert_eq!(e.xid(), 31);
        // The channel stays stopped; GPGet did not advance past the faulting entry.
        assert_eq!(ch.kick(&s.ctx()), Err(e));
        assert_eq!(ch.gp_get, 0);
        // A read-only destination faults too.
        let mut ch = channel(&s);
        s.map(0x24000, Target::Vram, 0x31_0000, true);
        submit(&s, 0, &copy_pb(0x20000, 0x24000, 0x10, 0x20000, 1));
        assert!(matches!(
            ch.kick(&s.ctx()),
            Err(ChannelError::MmuFault {
                reason: FaultReason::ReadOnly,
                ..
            })
        ));
        // No page directory at all.
        let mut ch = channel(&s);
        let ctx = Context {
            root: None,
            ..s.ctx()
        };
        assert!(matches!(
            ch.kick(&ctx),
            Err(ChannelError::MmuFault {
                reason: FaultReason::NoPageDirectory,
                ..
            })
        ));
    }

    #[test]
    fn unknown_methods_and_bad_push_buffers_are_errors() {
        let s = Space::new();
        for (pb, xid) in [
            (inc(0, 0x44, &[1]), 32),  // unknown host method
            (inc(4, 0x300, &[0]), 32), // subchannel never bound
            ([inc(4, 0, &[0xc7b5]), inc(4, 0x0500, &[1])].concat(), 39), // unknown CE method
            (inc(4, 0, &[0xc5b5]), 32), // class not on channel
            (
                std::vec![MethodHeader::encode(SecOp::IncMethod, 0, 0x50, 3), 1],
                32,
            ), // truncated
            (std::vec![0x4000_0000], 32), // GRP2 opcode
            ([inc(4, 0, &[0xc7b5]), inc(4, 0x300, &[2])].concat(), 39), // block-linear copy
        ] {
            let mut ch = channel(&s);
            submit(&s, 0, &pb);
            assert_eq!(ch.kick(&s.ctx()).map_err(|e| e.xid()), Err(xid), "{pb:x?}");
        }
        let mut ch = channel(&s);
        s.mem
            .write_u32(Target::Vram, 0x6000 + host::USERD_GP_PUT, 99)
            .unwrap();
        assert!(matches!(
            ch.kick(&s.ctx()),
            Err(ChannelError::Pbdma {
                what: "GPPut beyond the GPFIFO ring",
                ..
            })
        ));
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(token_chid(work_submit_token(5)), Some(5));
        assert_eq!(token_chid(5), None);
        assert_eq!(token_chid(work_submit_token(0) | 0xffff), None);
    }
}
