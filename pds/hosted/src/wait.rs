//! Spin, then block: how every waiter of the runtime waits for a word to change.
//!
//! On the shared 2-vCPU machines this project is measured on, a blocking wake-up (futex or eventfd)
//! costs 7–165 µs while a shared-memory round trip between two spinning processes costs ~0.1 µs
//! (DESIGN.md). So a waiter first polls the word for a short time and only then announces itself
//! with the [`WAITING`] bit and sleeps; a writer calls `futex_wake` only when it sees that bit, so
//! the fast path has no system call on either side.
//!
//! The protocol has no lost wake-ups: the waiter sets [`WAITING`] with a compare-and-swap on the
//! value it checked, and the kernel sleeps only if the word still holds that value.

use crate::pages::WAITING;
use crate::sys::{clock, futex};
use std::sync::atomic::{AtomicU32, Ordering};

/// How long to spin before sleeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spin {
    /// Spin budget in nanoseconds (0: block at once).
    pub ns: u64,
}

impl Default for Spin {
    /// 20 µs: well above a spinning round trip, well below a blocking one.
    fn default() -> Self {
        Self { ns: 20_000 }
    }
}

impl Spin {
    /// Poll `ready` until it returns `Some` or the spin budget is used up.
    pub fn poll<T>(self, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
        let mut start = None;
        let mut i = 0u32;
        loop {
            if let Some(v) = ready() {
                return Some(v);
            }
            i = i.wrapping_add(1);
            if i & 63 == 0 {
                let now = clock::now_ns();
                let t0 = *start.get_or_insert(now);
                if now.saturating_sub(t0) >= self.ns {
                    return None;
                }
            }
            std::hint::spin_loop();
        }
    }
}

/// Wait until `done(value)` holds for `word`, spinning first; returns that value. Sleeps until
/// `deadline` (absolute monotonic ns) at most, then returns `None`.
pub fn wait_word(
    word: &AtomicU32,
    spin: Spin,
    deadline: Option<u64>,
    done: impl Fn(u32) -> bool,
) -> Option<u32> {
    let check = || {
        let v = word.load(Ordering::Acquire);
        done(v & !WAITING).then_some(v)
    };
    if let Some(v) = spin.poll(check) {
        return Some(v & !WAITING);
    }
    loop {
        let v = word.load(Ordering::Acquire);
        if done(v & !WAITING) {
            word.fetch_and(!WAITING, Ordering::AcqRel);
            return Some(v & !WAITING);
        }
        if deadline.is_some_and(|d| clock::now_ns() >= d) {
            word.fetch_and(!WAITING, Ordering::AcqRel);
            return None;
        }
        let announced = v | WAITING;
        if v == announced
            || word
                .compare_exchange(v, announced, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            futex::wait(word, announced, deadline);
        }
    }
}

/// Set `bits` in `word` and wake its waiter if it announced itself.
pub fn ring(word: &AtomicU32, bits: u32) {
    let old = word.fetch_or(bits, Ordering::SeqCst);
    if old & WAITING != 0 {
        futex::wake(word);
    }
}

/// Take (clear and return) the event bits of `word`, keeping [`WAITING`].
pub fn take(word: &AtomicU32) -> u32 {
    word.fetch_and(WAITING, Ordering::AcqRel) & !WAITING
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_ring_wakes_a_sleeping_waiter_and_events_are_taken_once() {
        let word = Arc::new(AtomicU32::new(0));
        let w = Arc::clone(&word);
        let waiter = std::thread::spawn(move || {
            // No spinning: go straight to sleep, so the wake-up path is what is tested.
            wait_word(&w, Spin { ns: 0 }, None, |v| v & 1 != 0)
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        ring(&word, 1);
        assert_eq!(waiter.join().unwrap(), Some(1));
        assert_eq!(word.load(Ordering::SeqCst) & WAITING, 0);
        assert_eq!(take(&word), 1);
        assert_eq!(take(&word), 0);
    }

    #[test]
    fn a_deadline_ends_the_wait() {
        let word = AtomicU32::new(0);
        let deadline = clock::now_ns() + 5_000_000;
        assert_eq!(
            wait_word(&word, Spin::default(), Some(deadline), |v| v != 0),
            None
        );
        assert!(clock::now_ns() >= deadline);
        assert_eq!(word.load(Ordering::SeqCst), 0);
    }
}
