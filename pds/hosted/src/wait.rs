//! Spin, then block: how every waiter of the runtime waits for a word to change.
//!
//! On the shared 2-vCPU machines this project is measured on, a blocking wake-up (futex or eventfd)
//! costs 7–165 µs while a shared-memory round trip between two spinning processes costs ~0.1 µs
//! (DESIGN.md). So a waiter first polls the word for a short time and only then announces itself
//! with the [`WAITING`] bit and sleeps; a writer calls `futex_wake` only when it sees that bit, so
//! the fast path has no system call on either side.
//!
//! Protocol, for every shared word:
//! - a waiter announces itself by a compare-and-swap of the exact value it checked to that value
//!   plus [`WAITING`], and the kernel sleeps only while the word still holds that announced value,
//!   so no wake-up is lost;
//! - a writer replaces the whole word (the new value never carries [`WAITING`]) and wakes the
//!   word's waiters if the old value had it: the writer consumes the announcement;
//! - a waiter that wakes for another reason withdraws its announcement with a compare-and-swap
//!   from the exact announced value, so it never clears a bit somebody else set meanwhile.

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

/// The two spin budgets of a PD. A caller waits for a reply that a healthy callee is already
/// working on, so it keeps spinning (yielding) far longer than an idle PD waits for a request
/// that may never come: on these machines sleeping costs a wake-up of 7-165 µs, and a chain of
/// sleeping callers (client, drm, gpu during an EXEC the device takes 60 µs over) pays one per
/// link on the way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spins {
    /// An idle PD, waiting for its next event.
    pub idle: Spin,
    /// A caller, waiting for its reply.
    pub call: Spin,
}

impl Default for Spins {
    /// 20 µs idle, 500 µs in a call.
    fn default() -> Self {
        Self {
            idle: Spin::default(),
            call: Spin { ns: 500_000 },
        }
    }
}

impl Spin {
    /// Poll `ready` until it returns `Some` or the spin budget is used up. After the first
    /// [`Spin::BUSY_NS`] the poll yields the CPU between checks, so a spinning PD does not starve
    /// the very PD it waits for when there are more runnable PDs than cores.
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
                let spun = now.saturating_sub(*start.get_or_insert(now));
                if spun >= self.ns {
                    return None;
                }
                if spun >= Self::BUSY_NS {
                    crate::sys::process::yield_now();
                    continue;
                }
            }
            std::hint::spin_loop();
        }
    }

    /// How long a poll spins without yielding.
    pub const BUSY_NS: u64 = 2_000;
}

/// Announce a waiter on `word` unless `ready(value)`; the announced value, or `None` when the word
/// is ready (nothing announced).
pub fn announce(word: &AtomicU32, ready: impl Fn(u32) -> bool) -> Option<u32> {
    let mut v = word.load(Ordering::Acquire);
    loop {
        if ready(v & !WAITING) {
            return None;
        }
        if v & WAITING != 0 {
            return Some(v);
        }
        match word.compare_exchange_weak(v, v | WAITING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(v | WAITING),
            Err(now) => v = now,
        }
    }
}

/// Withdraw an announcement if the word still holds the announced value.
pub fn withdraw(word: &AtomicU32, announced: u32) {
    let _ = word.compare_exchange(
        announced,
        announced & !WAITING,
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
}

/// Wait until `done(value)` holds for `word` (value without [`WAITING`]), spinning first; returns
/// that value. Sleeps until `deadline` (absolute monotonic ns) at most, then returns `None`.
pub fn wait_word(
    word: &AtomicU32,
    spin: Spin,
    deadline: Option<u64>,
    done: impl Fn(u32) -> bool,
) -> Option<u32> {
    let check = || {
        let v = word.load(Ordering::Acquire) & !WAITING;
        done(v).then_some(v)
    };
    if let Some(v) = spin.poll(check) {
        return Some(v);
    }
    loop {
        let Some(announced) = announce(word, &done) else {
            return check();
        };
        if deadline.is_some_and(|d| clock::now_ns() >= d) {
            withdraw(word, announced);
            return check();
        }
        futex::wait(word, announced, deadline);
        if let Some(v) = check() {
            return Some(v);
        }
    }
}

/// Replace `word` by `next(current value)` unless that gives `None`; wake its waiter if one had
/// announced itself. Returns the value replaced (without [`WAITING`]).
pub fn update(word: &AtomicU32, next: impl Fn(u32) -> Option<u32>) -> Option<u32> {
    let mut v = word.load(Ordering::Acquire);
    loop {
        let n = next(v & !WAITING)? & !WAITING;
        match word.compare_exchange_weak(v, n, Ordering::SeqCst, Ordering::Acquire) {
            Ok(_) => {
                if v & WAITING != 0 {
                    futex::wake(word);
                }
                return Some(v & !WAITING);
            }
            Err(now) => v = now,
        }
    }
}

/// Store `value` in `word` and wake its waiter if one had announced itself; the value replaced
/// (without [`WAITING`]).
pub fn publish(word: &AtomicU32, value: u32) -> u32 {
    let old = word.swap(value & !WAITING, Ordering::SeqCst);
    if old & WAITING != 0 {
        futex::wake(word);
    }
    old & !WAITING
}

/// Take (clear and return) the event bits of a bit-set word such as the control page's event
/// word. A word without events is only read, so polling idle words does not steal their cache
/// line from the other side.
pub fn take(word: &AtomicU32) -> u32 {
    if word.load(Ordering::Acquire) & !WAITING == 0 {
        return 0;
    }
    word.fetch_and(WAITING, Ordering::AcqRel) & !WAITING
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_update_wakes_a_sleeping_waiter_and_consumes_its_announcement() {
        let word = Arc::new(AtomicU32::new(0));
        let w = Arc::clone(&word);
        let waiter = std::thread::spawn(move || {
            // No spinning: go straight to sleep, so the wake-up path is what is tested.
            wait_word(&w, Spin { ns: 0 }, None, |v| v & 1 != 0)
        });
        while word.load(Ordering::SeqCst) & WAITING == 0 {
            std::thread::yield_now();
        }
        assert_eq!(update(&word, |v| Some(v | 1)), Some(0));
        assert_eq!(waiter.join().unwrap(), Some(1));
        assert_eq!(word.load(Ordering::SeqCst), 1);
        assert_eq!(take(&word), 1);
        assert_eq!(take(&word), 0);
        assert_eq!(update(&word, |_| None), None);
    }

    #[test]
    fn a_deadline_ends_the_wait_and_withdraws_the_announcement() {
        let word = AtomicU32::new(0);
        let deadline = clock::now_ns() + 5_000_000;
        assert_eq!(
            wait_word(&word, Spin::default(), Some(deadline), |v| v != 0),
            None
        );
        assert!(clock::now_ns() >= deadline);
        assert_eq!(word.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_withdrawal_never_clears_someone_elses_announcement() {
        let word = AtomicU32::new(5);
        let mine = announce(&word, |_| false).unwrap();
        assert_eq!(mine, 5 | WAITING);
        // The writer replaces the word; another waiter announces on the new value.
        publish(&word, 6);
        let theirs = announce(&word, |_| false).unwrap();
        withdraw(&word, mine);
        assert_eq!(word.load(Ordering::SeqCst), theirs);
        assert_eq!(announce(&word, |v| v == 6), None);
    }
}
