//! Diagnostics without printf (Hubris' ringbuf + counters): every server records a `Copy` trace
//! event at each recovery decision into a fixed ring, and counts each kind. The hosted runtime and
//! xtask dump them; nothing allocates.

/// A server's trace event: a small `Copy` enum with a stable kind index per variant.
pub trait TraceEvent: Copy + core::fmt::Debug {
    /// How many kinds (variants) there are; counters are indexed by [`TraceEvent::kind`].
    const KINDS: usize;
    /// This event's kind, below [`TraceEvent::KINDS`].
    fn kind(&self) -> usize;
    /// The kind's name, for dumps.
    fn kind_name(kind: usize) -> &'static str;
}

/// One ring entry: the event, and how many times it repeated back to back (de-duplication).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<T> {
    /// The event.
    pub event: T,
    /// Consecutive repeats folded into this entry (1 = once).
    pub count: u32,
}

/// A fixed ring of the last `N` events plus per-kind counters (`K` must be `T::KINDS`).
#[derive(Debug)]
pub struct TraceRing<T: TraceEvent, const N: usize, const K: usize> {
    ring: [Option<Entry<T>>; N],
    next: usize,
    counts: [u32; K],
}

impl<T: TraceEvent + PartialEq, const N: usize, const K: usize> Default for TraceRing<T, N, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: TraceEvent + PartialEq, const N: usize, const K: usize> TraceRing<T, N, K> {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            ring: [None; N],
            next: 0,
            counts: [0; K],
        }
    }

    /// Record `event`: bump its kind's counter, and fold it into the newest entry if identical.
    pub fn record(&mut self, event: T) {
        if let Some(c) = self.counts.get_mut(event.kind()) {
            *c = c.saturating_add(1);
        }
        let last = self.next.checked_sub(1).unwrap_or(N.saturating_sub(1));
        if let Some(Some(e)) = self.ring.get_mut(last) {
            if e.event == event {
                e.count = e.count.saturating_add(1);
                return;
            }
        }
        if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = Some(Entry { event, count: 1 });
            self.next = (self.next + 1) % N.max(1);
        }
    }

    /// How many events of `kind` were recorded.
    pub fn count(&self, kind: usize) -> u32 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    /// Non-zero counters as (kind name, count).
    pub fn counters(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(k, &c)| (T::kind_name(k), c))
    }

    /// The ring's entries, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &Entry<T>> + '_ {
        let (a, b) = self.ring.split_at(self.next.min(N));
        b.iter().chain(a.iter()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Ev {
        Bad(u32),
        Good,
    }
    impl TraceEvent for Ev {
        const KINDS: usize = 2;
        fn kind(&self) -> usize {
            match self {
                Ev::Bad(_) => 0,
                Ev::Good => 1,
            }
        }
        fn kind_name(kind: usize) -> &'static str {
            ["Bad", "Good"].get(kind).copied().unwrap_or("?")
        }
    }

    #[test]
    fn ring_dedups_wraps_and_counts() {
        let mut r: TraceRing<Ev, 3, 2> = TraceRing::new();
        r.record(Ev::Good);
        r.record(Ev::Good);
        assert_eq!(
            r.recent().next(),
            Some(&Entry {
                event: Ev::Good,
                count: 2
            })
        );
        for i in 0..4 {
            r.record(Ev::Bad(i));
        }
        let events: [Ev; 3] = {
            let mut it = r.recent().map(|e| e.event);
            [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(events, [Ev::Bad(1), Ev::Bad(2), Ev::Bad(3)]);
        assert_eq!((r.count(0), r.count(1)), (4, 2));
        assert_eq!(r.counters().count(), 2);
    }
}
