//! The supervisor's status page (region `status`): one entry per child PD of the supervisor,
//! indexed by child id, that every driver maps read-only. A server that the supervisor notifies
//! reads the entries of its clients and, when a generation moved, reclaims what the old instance
//! owned (its DMA buffers, handles, BAR grants).
//!
//! Layout (ours, pinned below): a [`Header`] then [`SLOTS`] [`PdStatus`] entries. Each field is
//! written and read as one aligned 32-bit atomic, so a reader never sees a torn field; the writer
//! stores the state before the generation, so a reader that sees a new generation also sees the
//! state it came with.

use core::mem::{offset_of, size_of};
use core::sync::atomic::Ordering;
use pd_core::shm::{Access, ReadWrite, Region, RegionError};
use pd_core::Child;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `SUPV`, little-endian: the page was written by a supervisor of this layout.
pub const MAGIC: u32 = u32::from_le_bytes(*b"SUPV");
/// One entry per possible child id (`pd_core::MAX_CHANNELS`).
pub const SLOTS: usize = pd_core::MAX_CHANNELS as usize;

/// The page header.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`SLOTS`].
    pub slots: u32,
}

/// One child's status.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PdStatus {
    /// How many times the child was started (1 after boot, +1 per restart; 0: not a child).
    pub generation: u32,
    /// A [`PdState`] value.
    pub state: u32,
    /// Restarts so far.
    pub restarts: u32,
    /// A [`FaultCode`] value for the last fault (0: none).
    pub last_fault: u32,
}

// Layout pinned (our own wire format; the source of truth is this file).
const _: () = assert!(size_of::<Header>() == 8);
const _: () = assert!(size_of::<PdStatus>() == 16);
const _: () = assert!(offset_of!(PdStatus, generation) == 0);
const _: () = assert!(offset_of!(PdStatus, state) == 4);
const _: () = assert!(offset_of!(PdStatus, restarts) == 8);
const _: () = assert!(offset_of!(PdStatus, last_fault) == 12);
/// Entries follow the header.
pub const ENTRIES: usize = size_of::<Header>();
/// Bytes the page needs.
pub const PAGE_BYTES: usize = ENTRIES + SLOTS * size_of::<PdStatus>();
const _: () = assert!(PAGE_BYTES <= 0x1000);

/// A child's lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum PdState {
    /// Started and not known to have faulted.
    Running = 1,
    /// Faulted; a restart is scheduled (minimum run time throttle).
    Restarting = 2,
    /// Faulted and held (its disposition is `Hold`): not restarted.
    Held = 3,
    /// Faulted too often: stopped for good.
    Failed = 4,
}

impl TryFrom<u32> for PdState {
    type Error = StatusError;
    fn try_from(v: u32) -> Result<Self, StatusError> {
        match v {
            1 => Ok(Self::Running),
            2 => Ok(Self::Restarting),
            3 => Ok(Self::Held),
            4 => Ok(Self::Failed),
            _ => Err(StatusError::BadState(v)),
        }
    }
}

/// The kind of a child's last fault, as recorded on the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum FaultCode {
    /// VM fault.
    VmFault = 1,
    /// Abort.
    Abort = 2,
    /// Killed by a signal.
    Signal = 3,
    /// Exited.
    Exited = 4,
    /// Missed its watchdog deadline.
    Watchdog = 5,
    /// Anything else.
    Other = 6,
}

impl From<pd_core::FaultKind> for FaultCode {
    fn from(k: pd_core::FaultKind) -> Self {
        use pd_core::FaultKind as K;
        match k {
            K::VmFault { .. } => Self::VmFault,
            K::Abort => Self::Abort,
            K::Signal(_) => Self::Signal,
            K::Exited(_) => Self::Exited,
            K::Watchdog => Self::Watchdog,
            K::Other(_) => Self::Other,
        }
    }
}

/// Why the page could not be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StatusError {
    /// The page has no valid header (not written yet, or not a status page).
    BadMagic = 1,
    /// An entry holds an unknown state value.
    BadState(u32) = 2,
    /// The region is too small or misaligned for the layout.
    Region(RegionError) = 3,
}

impl From<RegionError> for StatusError {
    fn from(e: RegionError) -> Self {
        Self::Region(e)
    }
}

fn entry(child: Child) -> usize {
    ENTRIES + usize::from(child.index()) * size_of::<PdStatus>()
}

/// Read `child`'s entry.
///
/// # Errors
/// [`StatusError::BadMagic`] before the supervisor wrote the page, [`StatusError::Region`] when the
/// region is too small.
pub fn read<A: Access>(page: &Region<A>, child: Child) -> Result<PdStatus, StatusError> {
    if page.load_u32(0, Ordering::Acquire)? != MAGIC {
        return Err(StatusError::BadMagic);
    }
    let at = entry(child);
    // Generation first (Acquire): pairs with the writer storing it last.
    let generation = page.load_u32(at, Ordering::Acquire)?;
    Ok(PdStatus {
        generation,
        state: page.load_u32(at + 4, Ordering::Relaxed)?,
        restarts: page.load_u32(at + 8, Ordering::Relaxed)?,
        last_fault: page.load_u32(at + 12, Ordering::Relaxed)?,
    })
}

/// Write `child`'s entry (supervisor only).
///
/// # Errors
/// [`StatusError::Region`] when the region is too small.
pub fn write(page: &Region<ReadWrite>, child: Child, s: &PdStatus) -> Result<(), StatusError> {
    let at = entry(child);
    page.store_u32(at + 4, s.state, Ordering::Relaxed)?;
    page.store_u32(at + 8, s.restarts, Ordering::Relaxed)?;
    page.store_u32(at + 12, s.last_fault, Ordering::Relaxed)?;
    page.store_u32(at, s.generation, Ordering::Release)?;
    Ok(())
}

/// Clear the page and write its header (supervisor `init`: the region may hold a previous run's
/// bytes).
///
/// # Errors
/// [`StatusError::Region`] when the region is too small.
pub fn reset(page: &Region<ReadWrite>) -> Result<(), StatusError> {
    page.fill(0, PAGE_BYTES, 0)?;
    // CAST: SLOTS is below 64.
    page.write(
        0,
        &Header {
            magic: MAGIC,
            slots: SLOTS as u32,
        },
    )?;
    Ok(())
}

/// The generations of some children as a server last saw them: after the supervisor's
/// notification, [`Watch::moved`] says which of them restarted (or stopped) since.
#[derive(Debug)]
pub struct Watch<const N: usize> {
    children: [Child; N],
    seen: [u32; N],
}

impl<const N: usize> Watch<N> {
    /// Watch `children`, taking their current generations as seen.
    pub fn new<A: Access>(page: &Region<A>, children: [Child; N]) -> Self {
        let mut w = Self {
            children,
            seen: [0; N],
        };
        let _ = w.moved(page);
        w
    }

    /// The watched children whose generation or state changed since the last call. A child seen
    /// for the first time (the page was not written yet, or it had not started) is not reported.
    pub fn moved<A: Access>(&mut self, page: &Region<A>) -> heapless::Vec<Child, N> {
        let mut out = heapless::Vec::new();
        for (c, seen) in self.children.iter().zip(self.seen.iter_mut()) {
            let now = read(page, *c).map_or(*seen, |s| s.generation ^ (s.state << 24));
            if now != *seen {
                if *seen != 0 {
                    let _ = out.push(*c);
                }
                *seen = now;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn page() -> Region<ReadWrite> {
        Region::from_static(std::vec![0u8; 0x1000].leak())
    }

    #[test]
    fn entries_round_trip_after_reset() {
        let p = page();
        assert_eq!(read(&p, Child::new(3)), Err(StatusError::BadMagic));
        reset(&p).unwrap();
        let s = PdStatus {
            generation: 2,
            state: PdState::Running as u32,
            restarts: 1,
            last_fault: FaultCode::Signal as u32,
        };
        write(&p, Child::new(3), &s).unwrap();
        assert_eq!(read(&p.read_only(), Child::new(3)), Ok(s));
        assert_eq!(read(&p, Child::new(4)).map(|s| s.generation), Ok(0));
        assert_eq!(PdState::try_from(s.state), Ok(PdState::Running));
        assert_eq!(PdState::try_from(9), Err(StatusError::BadState(9)));
    }

    #[test]
    fn a_small_region_is_an_error_not_a_panic() {
        let p = Region::from_static(std::vec![0u8; 16].leak());
        assert!(matches!(reset(&p), Err(StatusError::Region(_))));
        assert!(matches!(
            write(
                &p,
                Child::new(61),
                &PdStatus {
                    generation: 1,
                    state: 1,
                    restarts: 0,
                    last_fault: 0
                }
            ),
            Err(StatusError::Region(_))
        ));
    }
}
