//! The buffer table: what each handle names, and how an untrusted handle is classified.
//!
//! A handle is `generation << 32 | epoch << 16 | slot`. Each slot counts the allocations it has
//! carried (its generation, from 1, so no handle is 0) and remembers why its last buffer went
//! away, so a handle that is not live can be told apart as never issued (forged), stale (its slot
//! carries a newer buffer, or it is from a previous life of the server), freed twice, or
//! reclaimed. Slots are reused first-in first-out, so a freed slot waits as long as possible
//! before its generation moves on (which keeps a double free recognisable as one). A generation
//! wraps after 2^32 reuses of one slot; a handle that old would be taken for a live one only if
//! its holder kept it that long, and it would still name only the holder's own buffer.
//!
//! With a [`Journal`], every change of a slot is written through to it before the server acts on
//! it, and [`Slots::adopt`] brings a journal's table back after a restart (the journal's module
//! says why that is crash-consistent). A slot whose record is torn comes back unused (generation
//! 0): no one held its buffer, and a stale handle to it is refused as never issued.

use crate::journal::{Journal, JournalError, Record};
use crate::journal::{STATE_FREED, STATE_LIVE, STATE_NEVER, STATE_RECLAIMED};
use crate::MAX_BUFFERS;
use alloc_api::{AllocError, ClientId, DmaHandle, PoolId};
use heapless::Deque;

/// A live buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Live {
    pub(crate) pool: PoolId,
    pub(crate) first: u32,
    pub(crate) pages: u32,
    /// The caller that allocated it: the only one who may free it.
    pub(crate) holder: ClientId,
    /// The pool's owner: charged for it.
    pub(crate) account: ClientId,
}

/// Why a slot's last buffer went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// The slot never carried a buffer.
    Never,
    /// Its holder freed it.
    Freed,
    /// A reclaim took it back.
    Reclaimed,
}

#[derive(Clone, Copy, Debug)]
enum State {
    Free(Release),
    Live(Live),
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    generation: u32,
    state: State,
}

impl Slot {
    const UNUSED: Self = Self {
        generation: 0,
        state: State::Free(Release::Never),
    };

    fn record(&self) -> Record {
        match self.state {
            State::Live(live) => Record::live(
                self.generation,
                [live.pool.0, live.holder.0, live.account.0],
                live.first,
                live.pages,
            ),
            State::Free(Release::Never) => Record::new(self.generation, STATE_NEVER),
            State::Free(Release::Freed) => Record::new(self.generation, STATE_FREED),
            State::Free(Release::Reclaimed) => Record::new(self.generation, STATE_RECLAIMED),
        }
    }

    /// The slot a record describes, `None` for an unknown state.
    fn from_record(r: &Record) -> Option<Self> {
        let state = match r.state {
            STATE_LIVE => State::Live(Live {
                pool: PoolId(r.pool),
                first: r.first,
                pages: r.pages,
                holder: ClientId(r.holder),
                account: ClientId(r.account),
            }),
            STATE_NEVER => State::Free(Release::Never),
            STATE_FREED => State::Free(Release::Freed),
            STATE_RECLAIMED => State::Free(Release::Reclaimed),
            _ => return None,
        };
        Some(Self {
            generation: r.generation,
            state,
        })
    }
}

/// The fixed table of [`MAX_BUFFERS`] slots.
#[derive(Debug)]
pub(crate) struct Slots {
    slots: [Slot; MAX_BUFFERS],
    /// Free slots, oldest release first.
    idle: Deque<u16, MAX_BUFFERS>,
    epoch: u16,
    journal: Option<Journal>,
}

impl Slots {
    /// An empty table whose handles carry `epoch`.
    pub(crate) fn new(epoch: u16) -> Self {
        let mut idle = Deque::new();
        for i in (0u16..).take(MAX_BUFFERS) {
            // The deque holds exactly MAX_BUFFERS entries, so this never overflows.
            let _ = idle.push_back(i);
        }
        Self {
            slots: [Slot::UNUSED; MAX_BUFFERS],
            idle,
            epoch,
            journal: None,
        }
    }

    /// An empty table whose handles carry `epoch`, written through to `journal` (reset now).
    pub(crate) fn journaled(epoch: u16, journal: Journal) -> Result<Self, JournalError> {
        journal.reset(epoch)?;
        Ok(Self {
            journal: Some(journal),
            ..Self::new(epoch)
        })
    }

    /// The table `journal` holds, with the number of torn records; the journal back when it holds
    /// none (first boot, other layout, torn header). The live buffers are as recorded: the server
    /// checks them against its pools and clients before trusting them.
    pub(crate) fn adopt(journal: Journal) -> Result<(Self, u32), Journal> {
        let Some(epoch) = journal.epoch() else {
            return Err(journal);
        };
        let mut table = Self {
            slots: [Slot::UNUSED; MAX_BUFFERS],
            idle: Deque::new(),
            epoch,
            journal: None,
        };
        let mut torn = 0;
        for (index, slot) in (0u16..).zip(table.slots.iter_mut()) {
            match journal.record(index).and_then(|r| Slot::from_record(&r)) {
                Some(s) => *slot = s,
                None => torn += 1,
            }
        }
        // Unused slots first, released ones after: a released slot waits as long as it can
        // (the order among them is lost, which only shortens some waits).
        for released in [false, true] {
            for (index, slot) in (0u16..).zip(table.slots.iter()) {
                if let State::Free(why) = slot.state {
                    if (why != Release::Never) == released {
                        // At most MAX_BUFFERS slots: the deque cannot overflow.
                        let _ = table.idle.push_back(index);
                    }
                }
            }
        }
        table.journal = Some(journal);
        Ok((table, torn))
    }

    /// The epoch handles carry.
    pub(crate) fn epoch(&self) -> u16 {
        self.epoch
    }

    /// The journal, if any.
    pub(crate) fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Take the journal out (the server starts fresh on it after a failed adoption).
    pub(crate) fn take_journal(&mut self) -> Option<Journal> {
        self.journal.take()
    }

    /// Set slot `index` to `slot`, in the journal first.
    fn set(&mut self, index: u16, slot: Slot) -> Result<(), AllocError> {
        if let Some(j) = &self.journal {
            j.write(index, slot.record())
                .map_err(|_| AllocError::Internal)?;
        }
        *self
            .slots
            .get_mut(usize::from(index))
            .ok_or(AllocError::Internal)? = slot;
        Ok(())
    }

    /// Whether a new buffer would find a slot.
    pub(crate) fn has_room(&self) -> bool {
        !self.idle.is_empty()
    }

    /// Record `live` in the oldest free slot and return its handle.
    pub(crate) fn insert(&mut self, live: Live) -> Result<DmaHandle, AllocError> {
        let index = *self.idle.front().ok_or(AllocError::NoSlots)?;
        let old = self
            .slots
            .get(usize::from(index))
            .ok_or(AllocError::Internal)?;
        let generation = old.generation.checked_add(1).unwrap_or(1);
        self.set(
            index,
            Slot {
                generation,
                state: State::Live(live),
            },
        )?;
        self.idle.pop_front();
        Ok(DmaHandle::from_raw(
            u64::from(generation) << 32 | u64::from(self.epoch) << 16 | u64::from(index),
        ))
    }

    /// The live buffer `handle` names, if `caller` holds it.
    ///
    /// # Errors
    /// [`AllocError::StaleHandle`] (other epoch, or the slot moved on), [`AllocError::BadHandle`]
    /// (slot or generation never issued), [`AllocError::DoubleFree`], [`AllocError::Reclaimed`],
    /// [`AllocError::NotOwner`].
    pub(crate) fn lookup(
        &self,
        handle: DmaHandle,
        caller: ClientId,
    ) -> Result<(u16, Live), AllocError> {
        let raw = handle.raw();
        // CAST: each field is masked or shifted to its width first.
        let (generation, epoch, index) = ((raw >> 32) as u32, (raw >> 16) as u16, raw as u16);
        if epoch != self.epoch {
            return Err(AllocError::StaleHandle);
        }
        let slot = self
            .slots
            .get(usize::from(index))
            .ok_or(AllocError::BadHandle)?;
        if generation == 0 || generation > slot.generation {
            return Err(AllocError::BadHandle);
        }
        if generation < slot.generation {
            return Err(AllocError::StaleHandle);
        }
        match slot.state {
            State::Live(live) if live.holder == caller => Ok((index, live)),
            State::Live(_) => Err(AllocError::NotOwner),
            State::Free(Release::Freed) => Err(AllocError::DoubleFree),
            State::Free(Release::Reclaimed) => Err(AllocError::Reclaimed),
            State::Free(Release::Never) => Err(AllocError::BadHandle),
        }
    }

    /// The live buffer in slot `index`, if any.
    pub(crate) fn get(&self, index: u16) -> Option<Live> {
        match self.slots.get(usize::from(index))?.state {
            State::Live(live) => Some(live),
            State::Free(_) => None,
        }
    }

    /// End the live buffer in slot `index`, remembering `why`.
    pub(crate) fn remove(&mut self, index: u16, why: Release) -> Result<(), AllocError> {
        let slot = *self
            .slots
            .get(usize::from(index))
            .ok_or(AllocError::Internal)?;
        if !matches!(slot.state, State::Live(_)) {
            return Err(AllocError::Internal);
        }
        self.set(
            index,
            Slot {
                state: State::Free(why),
                ..slot
            },
        )?;
        self.idle.push_back(index).map_err(|_| AllocError::Internal)
    }

    /// Every live buffer with its slot index.
    pub(crate) fn live(&self) -> impl Iterator<Item = (u16, Live)> + '_ {
        (0u16..)
            .zip(self.slots.iter())
            .filter_map(|(i, s)| match s.state {
                State::Live(live) => Some((i, live)),
                State::Free(_) => None,
            })
    }
}
