//! Per-file handle tables. Like Linux's per-`drm_file` idr, a handle is the lowest free number
//! from 1 and means nothing outside the file that got it.

/// A fixed table of `N` objects named by handles `1..=N`.
#[derive(Debug)]
pub struct HandleTable<T, const N: usize> {
    slots: [Option<T>; N],
}

impl<T, const N: usize> Default for HandleTable<T, N> {
    fn default() -> Self {
        Self {
            slots: core::array::from_fn(|_| None),
        }
    }
}

impl<T, const N: usize> HandleTable<T, N> {
    fn index(handle: u32) -> Option<usize> {
        usize::try_from(handle).ok()?.checked_sub(1)
    }

    /// Store `v` under the lowest free handle, or give it back when the table is full.
    ///
    /// # Errors
    /// Returns `v` when all `N` handles are taken.
    pub fn insert(&mut self, v: T) -> Result<u32, T> {
        match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = Some(v);
                }
                // CAST: i < N, and tables are far smaller than u32::MAX.
                Ok(i as u32 + 1)
            }
            None => Err(v),
        }
    }

    /// The object named `handle`.
    pub fn get(&self, handle: u32) -> Option<&T> {
        self.slots.get(Self::index(handle)?)?.as_ref()
    }

    /// The object named `handle`, mutably.
    pub fn get_mut(&mut self, handle: u32) -> Option<&mut T> {
        self.slots.get_mut(Self::index(handle)?)?.as_mut()
    }

    /// Remove and return the object named `handle`.
    pub fn remove(&mut self, handle: u32) -> Option<T> {
        self.slots.get_mut(Self::index(handle)?)?.take()
    }

    /// Remove every object, yielding them (file close).
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.slots.iter_mut().filter_map(Option::take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_handle_from_one_and_full_table_refuses() {
        let mut t: HandleTable<u8, 2> = HandleTable::default();
        assert_eq!(t.insert(10), Ok(1));
        assert_eq!(t.insert(20), Ok(2));
        assert_eq!(t.insert(30), Err(30));
        assert_eq!(t.remove(1), Some(10));
        assert_eq!(t.get(0), None);
        assert_eq!(t.get(3), None);
        assert_eq!(t.insert(40), Ok(1));
        assert_eq!(t.drain().count(), 2);
        assert_eq!(t.get(2), None);
    }
}
