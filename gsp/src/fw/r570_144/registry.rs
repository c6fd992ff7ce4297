//! PACKED_REGISTRY_TABLE (570.144; the same in 535.113.01).
//!
//! Sources: OpenRM 570.144 `src/nvidia/inc/kernel/gpu/gsp/gsp_registry.h` (pinned by
//! `gsp_abi_check.c`), nova-core `gsp/fw/r570_144/bindings.rs` (`PACKED_REGISTRY_TABLE`,
//! `PACKED_REGISTRY_ENTRY`). Reference section 7. The table is the header, `numEntries` entries,
//! then the NUL-terminated names each `nameOffset` points at (from the table start).
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `PACKED_REGISTRY_TABLE` without its flexible `entries[]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PACKED_REGISTRY_TABLE {
    /// Table size in bytes (whose bytes count differs between drivers: see `rpc::RegistrySize`).
    pub size: u32,
    /// Entries that follow.
    pub numEntries: u32,
}
const _: () = assert!(size_of::<PACKED_REGISTRY_TABLE>() == 8);
const _: () = assert!(offset_of!(PACKED_REGISTRY_TABLE, numEntries) == 4);

/// `PACKED_REGISTRY_ENTRY`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PACKED_REGISTRY_ENTRY {
    /// Offset of the NUL-terminated name from the table start.
    pub nameOffset: u32,
    /// `REGISTRY_TABLE_ENTRY_TYPE_*`.
    pub type_: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
    /// The DWORD value (or an offset, for BINARY/STRING).
    pub data: u32,
    /// Length of the value (OpenRM/nouveau: 4 for DWORD; nova: 0).
    pub length: u32,
}
const _: () = assert!(size_of::<PACKED_REGISTRY_ENTRY>() == 16);
const _: () = assert!(offset_of!(PACKED_REGISTRY_ENTRY, type_) == 4);
const _: () = assert!(offset_of!(PACKED_REGISTRY_ENTRY, data) == 8);
const _: () = assert!(offset_of!(PACKED_REGISTRY_ENTRY, length) == 12);

/// `REGISTRY_TABLE_ENTRY_TYPE_DWORD`.
pub const REGISTRY_TABLE_ENTRY_TYPE_DWORD: u8 = 1;
/// `REGISTRY_TABLE_ENTRY_TYPE_BINARY`.
pub const REGISTRY_TABLE_ENTRY_TYPE_BINARY: u8 = 2;
/// `REGISTRY_TABLE_ENTRY_TYPE_STRING`.
pub const REGISTRY_TABLE_ENTRY_TYPE_STRING: u8 = 3;
