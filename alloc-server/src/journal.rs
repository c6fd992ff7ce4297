//! The journal: the buffer table's copy in a region of its own (`alloc_journal` in `system.xml`,
//! mapped into alloc only), which outlives the server. A restarted alloc-server adopts the buffers
//! its clients still use instead of pulling their memory from under them: gsp's buffers hold the
//! GSP's live message queues, and scrubbing them broke the firmware's queues, so one alloc fault
//! cost a GSP reboot. MINIX 3's reincarnation server brings stateful drivers back the same way,
//! from state they keep in its data store outside the driver.
//!
//! Layout (this crate's own, pinned below): the header (magic, version, slot count, the handles'
//! epoch) at 0, the PD's marks at [`MARKS_AT`], one [`Record`] per buffer-table slot from
//! [`RECORDS_AT`]. Each of the three kinds carries a checksum over its bytes and its place, so a
//! write torn by a fault is recognised.
//!
//! Crash consistency, which the server's order of work gives: a slot's record is written after
//! the buddy granted the pages and before the reply (a fault in between leaves the pages free in
//! the journal, and the caller never got a handle), and a buffer's record is marked free before
//! its pages are zeroed and returned (a fault in between leaves them free in the journal, and the
//! restarted server zeroes every free page). So a torn record never names a buffer someone still
//! holds, and adopting it as free is right.
//!
//! Trust: only alloc maps the region. Its contents are still checked as untrusted on adoption
//! (checksums, then every buffer against the pools, the clients and every other buffer), since a
//! fault may have left anything there; anything inconsistent makes the server start fresh.

use crate::MAX_BUFFERS;
use core::mem::{offset_of, size_of};
use pd_core::hash::{fnv1a, FNV_OFFSET};
use pd_core::shm::{ReadWrite, Region};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// "ALLOCJNL" as a little-endian word.
const MAGIC: u64 = u64::from_le_bytes(*b"ALLOCJNL");
/// Layout version: bump on any change below.
const VERSION: u32 = 1;
/// How many marks the PD keeps (see [`Journal::marks`]).
pub const MARKS: usize = 8;
/// Where the marks live.
const MARKS_AT: usize = 64;
/// Where the records start.
const RECORDS_AT: usize = 4096;
/// The region size the journal needs: the header page and one record per slot.
pub const JOURNAL_SIZE: usize = RECORDS_AT + MAX_BUFFERS * size_of::<Record>();

/// The journal's header. Source: this module (the only writer and reader).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Header {
    magic: u64,
    version: u32,
    /// Slots recorded (= [`MAX_BUFFERS`] of the build that wrote it).
    slots: u16,
    /// The epoch every handle of this journal carries.
    epoch: u16,
    check: u64,
}
const _: () = assert!(size_of::<Header>() == 24);
const _: () = assert!(offset_of!(Header, version) == 8);
const _: () = assert!(offset_of!(Header, slots) == 12);
const _: () = assert!(offset_of!(Header, epoch) == 14);
const _: () = assert!(offset_of!(Header, check) == 16);

/// The PD's marks. Source: this module.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Marks {
    values: [u32; MARKS],
    check: u64,
}
const _: () = assert!(size_of::<Marks>() == 40);
const _: () = assert!(offset_of!(Marks, check) == 32);
const _: () =
    assert!(MARKS_AT >= size_of::<Header>() && MARKS_AT + size_of::<Marks>() <= RECORDS_AT);

/// What a slot carries. Source: this module.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub(crate) struct Record {
    /// The slot's generation (handles carry it); 0: never used.
    pub(crate) generation: u32,
    /// One of the `STATE_*` values.
    pub(crate) state: u8,
    /// For a live buffer: its pool, holder and charged account.
    pub(crate) pool: u8,
    pub(crate) holder: u8,
    pub(crate) account: u8,
    /// For a live buffer: its first page and length in pages.
    pub(crate) first: u32,
    pub(crate) pages: u32,
    _reserved: [u8; 8],
    check: u64,
}
const _: () = assert!(size_of::<Record>() == 32);
const _: () = assert!(offset_of!(Record, state) == 4);
const _: () = assert!(offset_of!(Record, pool) == 5);
const _: () = assert!(offset_of!(Record, holder) == 6);
const _: () = assert!(offset_of!(Record, account) == 7);
const _: () = assert!(offset_of!(Record, first) == 8);
const _: () = assert!(offset_of!(Record, pages) == 12);
const _: () = assert!(offset_of!(Record, check) == 24);

/// [`Record::state`]: the slot never carried a buffer.
pub(crate) const STATE_NEVER: u8 = 0;
/// Live buffer.
pub(crate) const STATE_LIVE: u8 = 1;
/// Its holder freed the last buffer.
pub(crate) const STATE_FREED: u8 = 2;
/// A reclaim took the last buffer back.
pub(crate) const STATE_RECLAIMED: u8 = 3;

impl Record {
    /// A record of `generation` in `state`, no buffer fields (its checksum is set when written).
    pub(crate) fn new(generation: u32, state: u8) -> Self {
        Self {
            generation,
            state,
            ..Self::default()
        }
    }

    /// A live buffer's record: generation, `[pool, holder, account]`, first page, pages.
    pub(crate) fn live(generation: u32, ids: [u8; 3], first: u32, pages: u32) -> Self {
        let [pool, holder, account] = ids;
        Self {
            pool,
            holder,
            account,
            first,
            pages,
            ..Self::new(generation, STATE_LIVE)
        }
    }
}

/// FNV-1a over where `bytes` live, then the bytes, so a record copied to another place fails.
fn checksum(place: u64, bytes: &[u8]) -> u64 {
    fnv1a(fnv1a(FNV_OFFSET, &place.to_le_bytes()), bytes)
}

/// The checksum of a header, marks or record: over every byte before its `check` field.
fn check_of<T: IntoBytes + Immutable>(place: u64, value: &T) -> u64 {
    let bytes = value.as_bytes();
    checksum(
        place,
        bytes.get(..bytes.len().saturating_sub(8)).unwrap_or(&[]),
    )
}

/// Why a region cannot hold a journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooSmall {
    /// Its size.
    pub size: usize,
    /// [`JOURNAL_SIZE`].
    pub needed: usize,
}

/// The journal over its region.
#[derive(Debug)]
pub struct Journal {
    region: Region<ReadWrite>,
}

impl Journal {
    /// The journal in `region`, which must hold [`JOURNAL_SIZE`] bytes. Nothing is read or
    /// written yet.
    ///
    /// # Errors
    /// [`TooSmall`] when it does not.
    pub fn new(region: Region<ReadWrite>) -> Result<Self, TooSmall> {
        if region.size() < JOURNAL_SIZE {
            return Err(TooSmall {
                size: region.size(),
                needed: JOURNAL_SIZE,
            });
        }
        Ok(Self { region })
    }

    /// The epoch of a valid journal of this layout, `None` for anything else (a first boot's
    /// zeroed region, another version, a torn header).
    pub(crate) fn epoch(&self) -> Option<u16> {
        let h: Header = self.region.read(0).ok()?;
        let valid = h.magic == MAGIC
            && h.version == VERSION
            && usize::from(h.slots) == MAX_BUFFERS
            && h.check == check_of(0, &h);
        valid.then_some(h.epoch)
    }

    /// Start over with no buffers and `epoch`: the header cleared, every record written unused,
    /// then the header written (so a fault in between leaves no valid journal, never a
    /// half-cleared one).
    pub(crate) fn reset(&self, epoch: u16) -> Result<(), JournalError> {
        self.region
            .fill(0, RECORDS_AT, 0)
            .map_err(|_| JournalError)?;
        for index in (0u16..).take(MAX_BUFFERS) {
            self.write(index, Record::new(0, STATE_NEVER))?;
        }
        let mut h = Header {
            magic: MAGIC,
            version: VERSION,
            // CAST: MAX_BUFFERS (1024) fits; a build with more fails the assert in lib.rs.
            slots: MAX_BUFFERS as u16,
            epoch,
            check: 0,
        };
        h.check = check_of(0, &h);
        self.region.write(0, &h).map_err(|_| JournalError)
    }

    /// Slot `index`'s record, `None` when its checksum fails (torn, or never written).
    pub(crate) fn record(&self, index: u16) -> Option<Record> {
        let r: Record = self.region.read(record_at(index)).ok()?;
        (r.check == check_of(place(index), &r)).then_some(r)
    }

    /// Write slot `index`'s record.
    pub(crate) fn write(&self, index: u16, mut record: Record) -> Result<(), JournalError> {
        record.check = check_of(place(index), &record);
        self.region
            .write(record_at(index), &record)
            .map_err(|_| JournalError)
    }

    /// The PD's marks: a few words of the PD's own recovery state that must survive with the
    /// buffer table (alloc's PD keeps the last ended generation of each pool owner it reclaimed,
    /// so an owner that died while alloc was down is still reclaimed). `None` when never written
    /// or torn.
    pub fn marks(&self) -> Option<[u32; MARKS]> {
        let m: Marks = self.region.read(MARKS_AT).ok()?;
        (m.check == check_of(MARKS_AT as u64, &m)).then_some(m.values)
    }

    /// Keep `values` as the marks.
    ///
    /// # Errors
    /// [`JournalError`] if the region refused the write (it cannot: the size was checked).
    pub fn set_marks(&self, values: [u32; MARKS]) -> Result<(), JournalError> {
        let mut m = Marks { values, check: 0 };
        m.check = check_of(MARKS_AT as u64, &m);
        self.region.write(MARKS_AT, &m).map_err(|_| JournalError)
    }
}

/// The journal's region refused an access (its size was checked at construction, so this means
/// a broken platform).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalError;

fn record_at(index: u16) -> usize {
    RECORDS_AT + usize::from(index) * size_of::<Record>()
}

fn place(index: u16) -> u64 {
    // CAST: usize to u64 is lossless on every target.
    record_at(index) as u64
}
