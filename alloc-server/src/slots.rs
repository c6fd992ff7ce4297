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

/// The fixed table of [`MAX_BUFFERS`] slots.
#[derive(Debug)]
pub(crate) struct Slots {
    slots: [Slot; MAX_BUFFERS],
    /// Free slots, oldest release first.
    idle: Deque<u16, MAX_BUFFERS>,
    epoch: u16,
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
            slots: [Slot {
                generation: 0,
                state: State::Free(Release::Never),
            }; MAX_BUFFERS],
            idle,
            epoch,
        }
    }

    /// Whether a new buffer would find a slot.
    pub(crate) fn has_room(&self) -> bool {
        !self.idle.is_empty()
    }

    /// Record `live` in the oldest free slot and return its handle.
    pub(crate) fn insert(&mut self, live: Live) -> Result<DmaHandle, AllocError> {
        let index = self.idle.pop_front().ok_or(AllocError::NoSlots)?;
        let slot = self
            .slots
            .get_mut(usize::from(index))
            .ok_or(AllocError::Internal)?;
        slot.generation = slot.generation.checked_add(1).unwrap_or(1);
        slot.state = State::Live(live);
        Ok(DmaHandle::from_raw(
            u64::from(slot.generation) << 32 | u64::from(self.epoch) << 16 | u64::from(index),
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
        let slot = self
            .slots
            .get_mut(usize::from(index))
            .ok_or(AllocError::Internal)?;
        if !matches!(slot.state, State::Live(_)) {
            return Err(AllocError::Internal);
        }
        slot.state = State::Free(why);
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
