//! Shared (cross-process) futexes on words in `MAP_SHARED` pages: wait on one word, wait on any of
//! several (`futex_waitv`, Linux 5.16), wake. Deadlines are absolute `CLOCK_MONOTONIC` nanoseconds.
//!
//! The flags are deliberately not `FUTEX_PRIVATE_FLAG`: the waiter and the waker are different
//! processes that map the same memfd, so the kernel must key the futex on the file page.

use super::clock::timespec;
use std::sync::atomic::AtomicU32;

/// `futex_waitv`'s per-word entry (`struct futex_waitv` in `<linux/futex.h>`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct WaitvEntry {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// `FUTEX2_SIZE_U32`: the words are 32 bits wide (and shared, so no `FUTEX2_PRIVATE`).
const FUTEX2_SIZE_U32: u32 = 2;

/// A pointer to `ts`, or null: the kernel's "no timeout".
fn optional(ts: Option<&libc::timespec>) -> *const libc::timespec {
    ts.map_or(std::ptr::null(), std::ptr::from_ref)
}

/// Wake the (single) waiter on `word`, if any.
pub fn wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE only reads its address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// Sleep while `word == expected`, until woken or until `deadline` (absolute monotonic ns).
/// Returns early on a spurious wake-up or signal; the caller re-checks its condition.
pub fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) {
    let ts = deadline.map(timespec);
    let tp = optional(ts.as_ref());
    // SAFETY: `word` is a live, aligned u32 and `tp` is null or points at `ts`, alive for the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET,
            expected,
            tp,
            std::ptr::null::<u32>(),
            libc::FUTEX_BITSET_MATCH_ANY,
        )
    };
}

/// A fixed set of words to wait on together (a PD's channel pages and its control page).
#[derive(Debug, Default)]
pub struct WaitSet {
    entries: Vec<WaitvEntry>,
}

impl WaitSet {
    /// The kernel accepts at most 128 words per wait.
    pub const MAX: usize = 128;

    /// Add a word. The word must outlive the set (it lives in a mapping the PD keeps for good).
    ///
    /// # Errors
    /// `false` when the set already holds [`WaitSet::MAX`] words.
    pub fn push(&mut self, word: &'static AtomicU32) -> bool {
        if self.entries.len() >= Self::MAX {
            return false;
        }
        self.entries.push(WaitvEntry {
            val: 0,
            // CAST: a user-space pointer fits u64 on every Linux target.
            uaddr: word.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        });
        true
    }

    /// Sleep until one of the words differs from its `expected` value (in push order), a wake-up,
    /// or `deadline` (absolute monotonic ns).
    pub fn wait(&mut self, expected: impl IntoIterator<Item = u32>, deadline: Option<u64>) {
        for (e, v) in self.entries.iter_mut().zip(expected) {
            e.val = u64::from(v);
        }
        let ts = deadline.map(timespec);
        let tp = optional(ts.as_ref());
        // SAFETY: `entries` is a valid array of `len` futex_waitv entries whose addresses point at
        // 'static words (see `push`); `tp` is null or points at `ts`, alive for the call.
        unsafe {
            libc::syscall(
                libc::SYS_futex_waitv,
                self.entries.as_ptr(),
                self.entries.len(),
                0,
                tp,
                libc::CLOCK_MONOTONIC,
            )
        };
    }
}
