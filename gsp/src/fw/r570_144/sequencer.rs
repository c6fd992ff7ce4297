//! rpc_run_cpu_sequencer_v17_00 and the sequencer opcodes (570.144).
//!
//! Sources: OpenRM 570.144 `src/nvidia/arch/nvalloc/common/inc/rmgspseq.h` (opcodes, payloads) and
//! `g_rpc-structures.h` (the RPC), pinned by `gsp_abi_check.c`; nova-core
//! `gsp/fw/r570_144/bindings.rs`. Reference section 7.
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `rpc_run_cpu_sequencer_v17_00`, followed by `commandBuffer[]` (u32 words).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct rpc_run_cpu_sequencer_v17_00 {
    /// Capacity of `commandBuffer` in dwords.
    pub bufferSizeDWord: u32,
    /// How much of `commandBuffer` is used (dwords in OpenRM/nouveau; commands in nova).
    pub cmdIndex: u32,
    /// Values saved by REG_STORE.
    pub regSaveArea: [u32; 8],
}

// g_rpc-structures.h; gsp_abi_check.c; reference section 7 (commandBuffer @40).
const _: () = assert!(size_of::<rpc_run_cpu_sequencer_v17_00>() == 40);
const _: () = assert!(offset_of!(rpc_run_cpu_sequencer_v17_00, bufferSizeDWord) == 0);
const _: () = assert!(offset_of!(rpc_run_cpu_sequencer_v17_00, cmdIndex) == 4);
const _: () = assert!(offset_of!(rpc_run_cpu_sequencer_v17_00, regSaveArea) == 8);

/// Entries in `regSaveArea`.
pub const GSP_SEQ_REG_SAVE_AREA_LEN: usize = 8;

/// `GSP_SEQ_BUF_OPCODE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum GSP_SEQ_BUF_OPCODE {
    /// {addr, val}: write val.
    REG_WRITE = 0,
    /// {addr, mask, val}: new = (old & !mask) | val.
    REG_MODIFY = 1,
    /// {addr, mask, val, timeout_us, error}: poll until (reg & mask) == val.
    REG_POLL = 2,
    /// {val}: wait val microseconds.
    DELAY_US = 3,
    /// {addr, index}: regSaveArea[index] = read(addr).
    REG_STORE = 4,
    /// Reset the GSP core.
    CORE_RESET = 5,
    /// Start the GSP core.
    CORE_START = 6,
    /// Wait for the GSP core to halt.
    CORE_WAIT_FOR_HALT = 7,
    /// Resume GSP-RM through SEC2.
    CORE_RESUME = 8,
}

impl TryFrom<u32> for GSP_SEQ_BUF_OPCODE {
    type Error = u32;

    fn try_from(v: u32) -> Result<Self, u32> {
        use GSP_SEQ_BUF_OPCODE::*;
        Ok(match v {
            0 => REG_WRITE,
            1 => REG_MODIFY,
            2 => REG_POLL,
            3 => DELAY_US,
            4 => REG_STORE,
            5 => CORE_RESET,
            6 => CORE_START,
            7 => CORE_WAIT_FOR_HALT,
            8 => CORE_RESUME,
            other => return Err(other),
        })
    }
}

impl GSP_SEQ_BUF_OPCODE {
    /// Payload dwords that follow the opcode dword (the sizes of the `GSP_SEQ_BUF_PAYLOAD_*`).
    pub const fn payload_dwords(self) -> usize {
        match self {
            Self::REG_WRITE => size_of::<GSP_SEQ_BUF_PAYLOAD_REG_WRITE>() / 4,
            Self::REG_MODIFY => size_of::<GSP_SEQ_BUF_PAYLOAD_REG_MODIFY>() / 4,
            Self::REG_POLL => size_of::<GSP_SEQ_BUF_PAYLOAD_REG_POLL>() / 4,
            Self::DELAY_US => size_of::<GSP_SEQ_BUF_PAYLOAD_DELAY_US>() / 4,
            Self::REG_STORE => size_of::<GSP_SEQ_BUF_PAYLOAD_REG_STORE>() / 4,
            Self::CORE_RESET | Self::CORE_START | Self::CORE_WAIT_FOR_HALT | Self::CORE_RESUME => 0,
        }
    }
}

/// `GSP_SEQ_BUF_PAYLOAD_REG_WRITE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GSP_SEQ_BUF_PAYLOAD_REG_WRITE {
    /// BAR0 offset.
    pub addr: u32,
    /// Value.
    pub val: u32,
}
const _: () = assert!(size_of::<GSP_SEQ_BUF_PAYLOAD_REG_WRITE>() == 8);
const _: () = assert!(offset_of!(GSP_SEQ_BUF_PAYLOAD_REG_WRITE, val) == 4);

/// `GSP_SEQ_BUF_PAYLOAD_REG_MODIFY`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GSP_SEQ_BUF_PAYLOAD_REG_MODIFY {
    /// BAR0 offset.
    pub addr: u32,
    /// Bits to clear.
    pub mask: u32,
    /// Bits to set.
    pub val: u32,
}
const _: () = assert!(size_of::<GSP_SEQ_BUF_PAYLOAD_REG_MODIFY>() == 12);
const _: () = assert!(offset_of!(GSP_SEQ_BUF_PAYLOAD_REG_MODIFY, mask) == 4);
const _: () = assert!(offset_of!(GSP_SEQ_BUF_PAYLOAD_REG_MODIFY, val) == 8);

/// `GSP_SEQ_BUF_PAYLOAD_REG_POLL`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GSP_SEQ_BUF_PAYLOAD_REG_POLL {
    /// BAR0 offset.
    pub addr: u32,
    /// Bits compared.
    pub mask: u32,
    /// Expected value of the masked bits.
    pub val: u32,
    /// Microseconds (0: the drivers' default of 4 s).
    pub timeout: u32,
    /// Error code to report on timeout.
    pub error: u32,
}
const _: () = assert!(size_of::<GSP_SEQ_BUF_PAYLOAD_REG_POLL>() == 20);
const _: () = assert!(offset_of!(GSP_SEQ_BUF_PAYLOAD_REG_POLL, timeout) == 12);
const _: () = assert!(offset_of!(GSP_SEQ_BUF_PAYLOAD_REG_POLL, error) == 16);

/// `GSP_SEQ_BUF_PAYLOAD_DELAY_US`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GSP_SEQ_BUF_PAYLOAD_DELAY_US {
    /// Microseconds.
    pub val: u32,
}
const _: () = assert!(size_of::<GSP_SEQ_BUF_PAYLOAD_DELAY_US>() == 4);

/// `GSP_SEQ_BUF_PAYLOAD_REG_STORE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GSP_SEQ_BUF_PAYLOAD_REG_STORE {
    /// BAR0 offset.
    pub addr: u32,
    /// Index into `regSaveArea`.
    pub index: u32,
}
const _: () = assert!(size_of::<GSP_SEQ_BUF_PAYLOAD_REG_STORE>() == 8);
const _: () = assert!(offset_of!(GSP_SEQ_BUF_PAYLOAD_REG_STORE, index) == 4);

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn opcodes_round_trip_and_sizes_match_rmgspseq() {
        let sizes = [2, 3, 5, 1, 2, 0, 0, 0, 0];
        for (v, &n) in sizes.iter().enumerate() {
            let op = GSP_SEQ_BUF_OPCODE::try_from(u32::try_from(v).unwrap()).unwrap();
            assert_eq!(op as usize, v);
            assert_eq!(op.payload_dwords(), n);
        }
        assert_eq!(GSP_SEQ_BUF_OPCODE::try_from(9), Err(9));
    }

    #[test]
    fn run_cpu_sequencer_golden_bytes() {
        let mut r = rpc_run_cpu_sequencer_v17_00::new_zeroed();
        r.bufferSizeDWord = 0x100;
        r.cmdIndex = 3;
        r.regSaveArea[7] = 0xdead_beef;
        let b = r.as_bytes();
        assert_eq!(b[..8], [0, 1, 0, 0, 3, 0, 0, 0]);
        assert_eq!(b[36..40], [0xef, 0xbe, 0xad, 0xde]);
    }
}
