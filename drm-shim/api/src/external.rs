//! The external client slot (hosted mode): how an outside Linux process drives a client slot of
//! `system.xml` (e.g. `client2`, program `client-ext.elf`) through a Unix stream socket.
//!
//! The slot's PD listens on the socket and accepts one process. Right after accepting it sends a
//! [`Hello`] whose ancillary data (`SCM_RIGHTS`) carries one descriptor per region the slot maps,
//! in [`Hello::regions`] order: the process gets the slot's memory itself (its ioctl buffer, DMA
//! pool and VRAM window), exactly what `system.xml` maps into the slot, nothing else. A second
//! process gets a `Hello` with [`status::BUSY`] and no descriptors, and is disconnected.
//!
//! Then each [`Frame`] the process sends is one PPC the slot's PD makes on its channel to `drm`
//! (label and message registers as in [`crate::transport`]); the reply comes back as a `Frame`
//! with the callee's label and registers, or with `ipc_error` set when the call failed (the
//! callee faulted or missed its deadline; [`pd_core::IpcError`] discriminants). The runtime checks
//! the PD's calls against `system.xml` as for any PD, so the process can do nothing the slot
//! could not. When the process goes away, the PD closes every DRM file it left open.
//!
//! All integers are native-endian (both ends are processes on one machine).

use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// First bytes of every [`Hello`] (protocol version 1).
pub const MAGIC: [u8; 8] = *b"DRMSLOT\x01";
/// Regions one slot may map (system.xml gives a client three).
pub const MAX_REGIONS: usize = 4;
/// Message registers a [`Frame`] carries (the DRM transport uses two).
pub const FRAME_MRS: usize = 4;

/// [`Hello::status`] values.
pub mod status {
    /// Attached: the descriptors came with the hello.
    pub const ATTACHED: u32 = 0;
    /// Refused: another process is attached to this slot (`EBUSY`).
    pub const BUSY: u32 = 16;
}

/// One region the slot maps.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct RegionInfo {
    /// The mapping's `setvar_vaddr` symbol in system.xml (`ioctl_vaddr`, `dma_vaddr`,
    /// `vram_vaddr`), NUL padded: the region's role for the slot's program.
    pub symbol: [u8; 24],
    /// Where the slot sees the region: the user addresses its ioctl arguments and BO map handles
    /// use.
    pub vaddr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// 1 when the slot maps it writable.
    pub writable: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<RegionInfo>() == 48);
const _: () = assert!(offset_of!(RegionInfo, vaddr) == 24);
const _: () = assert!(offset_of!(RegionInfo, size) == 32);
const _: () = assert!(offset_of!(RegionInfo, writable) == 40);

impl RegionInfo {
    /// The `setvar_vaddr` symbol without its padding.
    pub fn symbol(&self) -> &[u8] {
        let n = self
            .symbol
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.symbol.len());
        self.symbol.get(..n).unwrap_or(&[])
    }
}

/// The slot's first message.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Hello {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`status`]`::*`.
    pub status: u32,
    /// Valid entries of `regions` (and descriptors attached).
    pub nregions: u32,
    pub regions: [RegionInfo; MAX_REGIONS],
}
const _: () = assert!(size_of::<Hello>() == 16 + 48 * MAX_REGIONS);
const _: () = assert!(offset_of!(Hello, status) == 8);
const _: () = assert!(offset_of!(Hello, nregions) == 12);
const _: () = assert!(offset_of!(Hello, regions) == 16);

impl Hello {
    /// The valid region entries.
    pub fn regions(&self) -> &[RegionInfo] {
        let n = usize::try_from(self.nregions).unwrap_or(0).min(MAX_REGIONS);
        self.regions.get(..n).unwrap_or(&[])
    }

    /// The region the slot maps under `symbol`.
    pub fn region(&self, symbol: &[u8]) -> Option<(usize, &RegionInfo)> {
        self.regions()
            .iter()
            .enumerate()
            .find(|(_, r)| r.symbol() == symbol)
    }
}

/// One PPC (process → slot) or its reply (slot → process).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Frame {
    /// The message label (request: the DRM transport's request number or op; reply: 0 or errno).
    pub label: u64,
    /// Valid entries of `mrs` (at most [`FRAME_MRS`]).
    pub count: u32,
    /// Reply only: 0 when the PPC completed, else the `pd_core::IpcError` discriminant.
    pub ipc_error: u32,
    pub mrs: [u64; FRAME_MRS],
}
const _: () = assert!(size_of::<Frame>() == 48);
const _: () = assert!(offset_of!(Frame, count) == 8);
const _: () = assert!(offset_of!(Frame, ipc_error) == 12);
const _: () = assert!(offset_of!(Frame, mrs) == 16);

/// A `symbol` field from a string (truncated to 23 bytes, NUL padded).
pub fn symbol_field(s: &str) -> [u8; 24] {
    let mut f = [0u8; 24];
    for (d, s) in f.iter_mut().take(23).zip(s.bytes()) {
        *d = s;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_found_by_symbol_and_counts_are_bounded() {
        let mut h = Hello {
            magic: MAGIC,
            nregions: 2,
            ..Default::default()
        };
        h.regions[0].symbol = symbol_field("ioctl_vaddr");
        h.regions[1].symbol = symbol_field("vram_vaddr");
        h.regions[1].vaddr = 0x9000_0000;
        assert_eq!(
            h.region(b"vram_vaddr").map(|(i, r)| (i, r.vaddr)),
            Some((1, 0x9000_0000))
        );
        assert!(h.region(b"dma_vaddr").is_none());
        h.nregions = 99;
        assert_eq!(h.regions().len(), MAX_REGIONS);
        assert_eq!(symbol_field("a_very_long_symbol_name_indeed")[23], 0);
    }
}
