//! `GSP_ARGUMENTS_CACHED` (RMARGS) and `MESSAGE_QUEUE_INIT_ARGUMENTS` (570.144).
//!
//! RMARGS tells GSP-RM where the shared message-queue region is (reference sections 4 and 5):
//! its DMA address, its page count (the PTE page lists every page) and where the command and
//! status queues start in it. Those numbers are the queue crate's ([`crate::cmdq`]); this module
//! only lays them out. The struct is padded to 4 KiB ([`GspArgumentsPadded`]) because LibOS
//! regions must be page multiples on Turing/GA100 (nova-core `GspArgumentsPadded`).
//!
//! Source: OpenRM 570.144 `src/nvidia/inc/kernel/gpu/gsp/gsp_init_args.h` and
//! `message_queue_priv.h`, pinned by `gsp_abi_check.c`. 535.113.01 differs (48-byte queue
//! arguments with lockless offsets, no `bDmemStack`; reference section 4).

use core::mem::{offset_of, size_of};

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::cmdq::{CMDQ_OFFSET, PTE_COUNT, STATQ_OFFSET};
use crate::radix3::{DmaWrite, OutOfBounds, PAGE_SIZE};

/// Where the message queues are.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MESSAGE_QUEUE_INIT_ARGUMENTS {
    /// DMA address of the shared region (its first page is the PTE page).
    pub sharedMemPhysAddr: u64,
    /// Pages of the region listed in the PTE page (0x81).
    pub pageTableEntryCount: u32,
    /// Explicit padding (zero).
    pub padding: u32,
    /// Offset of the command queue (CPU → GSP) in the region (0x1000).
    pub cmdQueueOffset: u64,
    /// Offset of the status queue (GSP → CPU) in the region (0x41000).
    pub statQueueOffset: u64,
}

// message_queue_priv.h; gsp_abi_check.c (570.144) pins size 32 and these offsets.
const _: () = assert!(size_of::<MESSAGE_QUEUE_INIT_ARGUMENTS>() == 32);
const _: () = assert!(offset_of!(MESSAGE_QUEUE_INIT_ARGUMENTS, sharedMemPhysAddr) == 0);
const _: () = assert!(offset_of!(MESSAGE_QUEUE_INIT_ARGUMENTS, pageTableEntryCount) == 8);
const _: () = assert!(offset_of!(MESSAGE_QUEUE_INIT_ARGUMENTS, cmdQueueOffset) == 16);
const _: () = assert!(offset_of!(MESSAGE_QUEUE_INIT_ARGUMENTS, statQueueOffset) == 24);

/// Suspend/resume state (zero at cold boot).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GSP_SR_INIT_ARGUMENTS {
    /// Power level before suspend.
    pub oldLevel: u32,
    /// Flags.
    pub flags: u32,
    /// A power-management transition is in progress.
    pub bInPMTransition: u8,
    /// Explicit padding (zero).
    pub padding: [u8; 3],
}

// gsp_init_args.h; gsp_abi_check.c (570.144).
const _: () = assert!(size_of::<GSP_SR_INIT_ARGUMENTS>() == 12);
const _: () = assert!(offset_of!(GSP_SR_INIT_ARGUMENTS, flags) == 4);
const _: () = assert!(offset_of!(GSP_SR_INIT_ARGUMENTS, bInPMTransition) == 8);

/// Profiler buffer (none at boot).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GSP_PROFILER_ARGS {
    /// DMA address.
    pub pa: u64,
    /// Size.
    pub size: u64,
}

/// The RM arguments (RMARGS region).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GSP_ARGUMENTS_CACHED {
    /// Where the message queues are.
    pub messageQueueInitArguments: MESSAGE_QUEUE_INIT_ARGUMENTS,
    /// Suspend/resume state.
    pub srInitArguments: GSP_SR_INIT_ARGUMENTS,
    /// GPU instance (0).
    pub gpuInstance: u32,
    /// Run GSP-RM with its stack in DMEM (OpenRM and nova-core set 1).
    pub bDmemStack: u8,
    /// Explicit padding (zero).
    pub padding: [u8; 7],
    /// Profiler buffer.
    pub profilerArgs: GSP_PROFILER_ARGS,
}

// gsp_init_args.h; gsp_abi_check.c (570.144) pins size 72 and these offsets (reference 4).
const _: () = assert!(size_of::<GSP_ARGUMENTS_CACHED>() == 72);
const _: () = assert!(offset_of!(GSP_ARGUMENTS_CACHED, messageQueueInitArguments) == 0);
const _: () = assert!(offset_of!(GSP_ARGUMENTS_CACHED, srInitArguments) == 32);
const _: () = assert!(offset_of!(GSP_ARGUMENTS_CACHED, gpuInstance) == 44);
const _: () = assert!(offset_of!(GSP_ARGUMENTS_CACHED, bDmemStack) == 48);
const _: () = assert!(offset_of!(GSP_ARGUMENTS_CACHED, profilerArgs) == 56);

/// [`GSP_ARGUMENTS_CACHED`] padded to one page.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GspArgumentsPadded {
    /// The arguments.
    pub inner: GSP_ARGUMENTS_CACHED,
    /// Zero up to 4 KiB.
    pub padding: [u8; PAGE_SIZE - size_of::<GSP_ARGUMENTS_CACHED>()],
}

const _: () = assert!(size_of::<GspArgumentsPadded>() == PAGE_SIZE);

impl GSP_ARGUMENTS_CACHED {
    /// The cold-boot arguments for a message-queue region at DMA address `msgq_pa` laid out as
    /// [`crate::cmdq`] lays it out (nova-core `GspArgumentsCached::new`).
    pub fn new(msgq_pa: u64) -> Self {
        let mut args = Self::new_zeroed();
        args.messageQueueInitArguments = MESSAGE_QUEUE_INIT_ARGUMENTS {
            sharedMemPhysAddr: msgq_pa,
            // CAST: PTE_COUNT is 0x81 (asserted in cmdq).
            pageTableEntryCount: PTE_COUNT as u32,
            padding: 0,
            cmdQueueOffset: CMDQ_OFFSET as u64,
            statQueueOffset: STATQ_OFFSET as u64,
        };
        args.bDmemStack = 1;
        args
    }
}

/// Write the RMARGS page for a message-queue region at `msgq_pa` into `page` (4 KiB).
///
/// # Errors
/// [`OutOfBounds`] if `page` is shorter than 4 KiB.
pub fn write_rmargs<W: DmaWrite + ?Sized>(page: &mut W, msgq_pa: u64) -> Result<(), OutOfBounds> {
    let mut padded = GspArgumentsPadded::new_zeroed();
    padded.inner = GSP_ARGUMENTS_CACHED::new(msgq_pa);
    page.write_at(0, padded.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;

    #[test]
    fn rmargs_golden_bytes() {
        let mut page = vec![0xffu8; PAGE_SIZE];
        write_rmargs(page.as_mut_slice(), 0x1234_5000).unwrap();
        let word = |o: usize| u64::from_le_bytes(page[o..o + 8].try_into().unwrap());
        assert_eq!(word(0), 0x1234_5000);
        assert_eq!(u32::from_le_bytes(page[8..12].try_into().unwrap()), 0x81);
        assert_eq!(word(16), 0x1000);
        assert_eq!(word(24), 0x41000);
        assert!(page[32..48].iter().all(|b| *b == 0));
        assert_eq!(page[48], 1);
        assert!(page[49..].iter().all(|b| *b == 0));
        assert_eq!(write_rmargs(&mut page[..4095], 0), Err(OutOfBounds));
    }
}
