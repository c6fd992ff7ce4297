//! msgqTxHeader, msgqRxHeader, GSP_MSG_QUEUE_ELEMENT (570.144).
//!
//! Sources: OpenRM 570.144 `src/common/shared/msgq/inc/msgq/msgq_priv.h` (queue headers) and
//! `src/nvidia/inc/kernel/gpu/gsp/message_queue_priv.h` (element), both pinned by
//! `src/nvidia/interface/gsp_abi_check.c`; the same layouts in nova-core
//! `gsp/fw/r570_144/bindings.rs`. See `../shared/reference/gsp-protocol.md` sections 5 and 6.
use super::rpc::rpc_message_header_v03_00;
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `msgqTxHeader`: written only by the queue's sender, at the start of its queue.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct msgqTxHeader {
    /// Queue format version (0).
    pub version: u32,
    /// Bytes in the whole queue (headers + entries), page aligned.
    pub size: u32,
    /// Bytes per entry (one 4 KiB page).
    pub msgSize: u32,
    /// Entries in the ring (63).
    pub msgCount: u32,
    /// Index of the next entry the sender writes, below `msgCount`.
    pub writePtr: u32,
    /// [`MSGQ_FLAGS_SWAP_RX`]: each side keeps its read pointer in its *own* queue's rx header.
    pub flags: u32,
    /// Offset of the `msgqRxHeader` from the start of the queue.
    pub rxHdrOff: u32,
    /// Offset of entry 0 from the start of the queue.
    pub entryOff: u32,
}

// msgq_priv.h; gsp_abi_check.c pins sizeof(msgqTxHeader) == 32 and these offsets.
const _: () = assert!(size_of::<msgqTxHeader>() == 32);
const _: () = assert!(offset_of!(msgqTxHeader, version) == 0);
const _: () = assert!(offset_of!(msgqTxHeader, size) == 4);
const _: () = assert!(offset_of!(msgqTxHeader, msgSize) == 8);
const _: () = assert!(offset_of!(msgqTxHeader, msgCount) == 12);
const _: () = assert!(offset_of!(msgqTxHeader, writePtr) == 16);
const _: () = assert!(offset_of!(msgqTxHeader, flags) == 20);
const _: () = assert!(offset_of!(msgqTxHeader, rxHdrOff) == 24);
const _: () = assert!(offset_of!(msgqTxHeader, entryOff) == 28);

/// `msgqRxHeader`: the read pointer (with SWAP_RX: of the *other* side's queue).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct msgqRxHeader {
    /// Index of the next entry the reader consumes.
    pub readPtr: u32,
}

// msgq_priv.h.
const _: () = assert!(size_of::<msgqRxHeader>() == 4);
const _: () = assert!(offset_of!(msgqRxHeader, readPtr) == 0);

/// `MSGQ_FLAGS_SWAP_RX` (msgq_priv.h): read pointers live in the reader's own queue.
pub const MSGQ_FLAGS_SWAP_RX: u32 = 1;

/// `GSP_MSG_QUEUE_ELEMENT`: the header of every message in a ring, followed by the RPC header
/// (which this struct includes, as OpenRM's does) and the payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GSP_MSG_QUEUE_ELEMENT {
    /// Confidential-computing authentication tag (unused here: zero).
    pub authTagBuffer: [u8; 16],
    /// Confidential-computing additional data (unused here: zero).
    pub aadBuffer: [u8; 16],
    /// XOR checksum over the message; the receiver's recomputation must give 0.
    pub checkSum: u32,
    /// Per-queue message sequence number, from 0, +1 per message.
    pub seqNum: u32,
    /// Ring entries the message occupies: ceil((48 + rpc.length) / 4096).
    pub elemCount: u32,
    /// Explicit padding (zero).
    pub padding: u32,
    /// The RPC header.
    pub rpc: rpc_message_header_v03_00,
}

// message_queue_priv.h; gsp_abi_check.c pins these offsets (reference section 6).
const _: () = assert!(size_of::<GSP_MSG_QUEUE_ELEMENT>() == 80);
const _: () = assert!(offset_of!(GSP_MSG_QUEUE_ELEMENT, authTagBuffer) == 0);
const _: () = assert!(offset_of!(GSP_MSG_QUEUE_ELEMENT, aadBuffer) == 16);
const _: () = assert!(offset_of!(GSP_MSG_QUEUE_ELEMENT, checkSum) == 32);
const _: () = assert!(offset_of!(GSP_MSG_QUEUE_ELEMENT, seqNum) == 36);
const _: () = assert!(offset_of!(GSP_MSG_QUEUE_ELEMENT, elemCount) == 40);
const _: () = assert!(offset_of!(GSP_MSG_QUEUE_ELEMENT, padding) == 44);
const _: () = assert!(offset_of!(GSP_MSG_QUEUE_ELEMENT, rpc) == 48);

/// `GSP_MSG_QUEUE_ELEMENT_HDR_SIZE`: bytes before the RPC header.
pub const GSP_MSG_QUEUE_ELEMENT_HDR_SIZE: usize = offset_of!(GSP_MSG_QUEUE_ELEMENT, rpc);
/// `GSP_MSG_QUEUE_ELEMENT_SIZE_MIN`: one ring entry (4 KiB).
pub const GSP_MSG_QUEUE_ELEMENT_SIZE_MIN: usize = 0x1000;
/// `GSP_MSG_QUEUE_ELEMENT_SIZE_MAX`: the largest message, headers included (16 entries).
pub const GSP_MSG_QUEUE_ELEMENT_SIZE_MAX: usize = 0x10000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fw::r570_144::rpc::{NV_VGPU_MSG_SIGNATURE_VALID, RPC_HEADER_VERSION_V03_00};
    use zerocopy::FromZeros;

    /// Golden bytes: a cmdq tx header as OpenRM's `msgqTxCreate` leaves it (reference section 5).
    #[test]
    fn tx_header_golden_bytes() {
        let h = msgqTxHeader {
            version: 0,
            size: 0x40000,
            msgSize: 0x1000,
            msgCount: 63,
            writePtr: 5,
            flags: MSGQ_FLAGS_SWAP_RX,
            rxHdrOff: 0x20,
            entryOff: 0x1000,
        };
        let golden: [u8; 32] = [
            0, 0, 0, 0, 0, 0, 4, 0, 0, 0x10, 0, 0, 63, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0x20, 0, 0,
            0, 0, 0x10, 0, 0,
        ];
        assert_eq!(h.as_bytes(), &golden);
        assert_eq!(msgqTxHeader::read_from_bytes(&golden).unwrap(), h);
    }

    /// Golden bytes: an element header with its RPC header (reference sections 6 and 7).
    #[test]
    fn element_golden_bytes() {
        let mut e = GSP_MSG_QUEUE_ELEMENT::new_zeroed();
        e.checkSum = 0xa1b2_c3d4;
        e.seqNum = 7;
        e.elemCount = 2;
        e.rpc.header_version = RPC_HEADER_VERSION_V03_00;
        e.rpc.signature = NV_VGPU_MSG_SIGNATURE_VALID;
        e.rpc.length = 0x1010;
        e.rpc.function = 76;
        e.rpc.rpc_result = 0xffff_ffff;
        e.rpc.rpc_result_private = 0xffff_ffff;
        e.rpc.sequence = 9;
        let b = e.as_bytes();
        assert!(b[..32].iter().all(|&x| x == 0));
        assert_eq!(
            b[32..48],
            [0xd4, 0xc3, 0xb2, 0xa1, 7, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            b[48..80],
            [
                0, 0, 0, 3, b'V', b'R', b'P', b'C', 0x10, 0x10, 0, 0, 76, 0, 0, 0, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 9, 0, 0, 0, 0, 0, 0, 0
            ]
        );
    }
}
