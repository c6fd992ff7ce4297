//! `cargo xtask bench dma`: the buddy allocator against a plain first-fit allocator, same run,
//! interleaved, on a pool the size of `gsp_dma` (96 MiB).
//!
//! - Rate: alloc/free pairs per second in steady state (pool about half full; each pair frees a
//!   random live buffer and allocates a new one), sizes 4 KiB to 2 MiB log-uniform, one in eight
//!   requests 64 KiB aligned and one in thirty-two 2 MiB aligned. Ratio: buddy ÷ first-fit (higher
//!   is better for buddy). The same with sizes up to 124 KiB (alignment capped at the size) is
//!   printed for information: many more live buffers, where first-fit's scan grows and the
//!   buddy's cost does not.
//! - Fragmentation: after a random workload that fills the pool to about 70 % and churns, the
//!   largest block each allocator could grant right now ÷ its free bytes (1 = all free space in
//!   one piece). Ratio: buddy's ÷ first-fit's (higher is better for buddy), median of 5 seeds.
//!
//! Only the allocators are measured (no zeroing, no PPC): both run the same request stream, each
//! on its own state, and both keep exact sizes (buddy gives a grant's unused tail back at once).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // A bench may panic on a broken invariant.

use alloc_server::buddy::Buddy;
use benchkit::{compare, fmt_ns, median, report, Comparison, Goal, Op};

/// 96 MiB of 4 KiB pages, like `gsp_dma`.
const POOL_PAGES: u32 = 24576;

/// A tiny deterministic PRNG (xorshift64) and the request mix: sizes below `2^max_log` pages,
/// alignments capped at the size's power of two when `natural`.
struct Rng {
    state: u64,
    max_log: u64,
    natural: bool,
}

impl Rng {
    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A request: pages log-uniform in 1..2^max_log (4 KiB..2 MiB for the goals) and an
    /// alignment in pages.
    fn request(&mut self) -> (u32, u32) {
        let log = self.below(self.max_log) as u32;
        let pages = ((1u32 << log) + self.below(1 << log) as u32).min(512);
        let align = match self.below(32) {
            0 => 512,
            1..=4 => 16,
            _ => 1,
        };
        match self.natural {
            true => (pages, align.min(pages.next_power_of_two())),
            false => (pages, align),
        }
    }
}

/// What both allocators offer the workload.
trait Allocator {
    fn alloc(&mut self, pages: u32, align: u32) -> Option<u32>;
    fn free(&mut self, first: u32, pages: u32);
    /// Pages in the largest grant possible now.
    fn largest(&self) -> u32;
    fn free_pages(&self) -> u32;
}

struct BuddyPool {
    buddy: Buddy,
    words: Vec<u64>,
}

impl BuddyPool {
    fn new() -> Self {
        let mut words = vec![0; Buddy::words_needed(POOL_PAGES)];
        let buddy = Buddy::new(POOL_PAGES, &mut words).unwrap();
        Self { buddy, words }
    }
}

impl Allocator for BuddyPool {
    fn alloc(&mut self, pages: u32, align: u32) -> Option<u32> {
        self.buddy.alloc(&mut self.words, pages, align).ok()
    }
    fn free(&mut self, first: u32, pages: u32) {
        self.buddy.free(&mut self.words, first, pages).unwrap();
    }
    fn largest(&self) -> u32 {
        self.buddy.largest_free()
    }
    fn free_pages(&self) -> u32 {
        self.buddy.free_pages()
    }
}

/// The baseline: free holes sorted by address, first hole that fits (after alignment) wins,
/// neighbours coalesce on free.
struct FirstFit {
    holes: Vec<(u32, u32)>,
    free: u32,
}

impl FirstFit {
    fn new() -> Self {
        Self {
            holes: vec![(0, POOL_PAGES)],
            free: POOL_PAGES,
        }
    }
}

impl Allocator for FirstFit {
    fn alloc(&mut self, pages: u32, align: u32) -> Option<u32> {
        let (i, start, hole) = self.holes.iter().enumerate().find_map(|(i, &(s, len))| {
            let a = s.next_multiple_of(align);
            (a + pages <= s + len).then_some((i, a, (s, len)))
        })?;
        let (s, len) = hole;
        let mut pieces = [(s, start - s), (start + pages, s + len - start - pages)]
            .into_iter()
            .filter(|p| p.1 > 0);
        match (pieces.next(), pieces.next()) {
            (None, _) => {
                self.holes.remove(i);
            }
            (Some(p), None) => self.holes[i] = p,
            (Some(p), Some(q)) => {
                self.holes[i] = p;
                self.holes.insert(i + 1, q);
            }
        }
        self.free -= pages;
        Some(start)
    }

    fn free(&mut self, first: u32, pages: u32) {
        let i = self.holes.partition_point(|&(s, _)| s < first);
        self.holes.insert(i, (first, pages));
        if let Some(&(s, len)) = self.holes.get(i + 1) {
            if first + pages == s {
                self.holes[i].1 += len;
                self.holes.remove(i + 1);
            }
        }
        if i > 0 && self.holes[i - 1].0 + self.holes[i - 1].1 == first {
            self.holes[i - 1].1 += self.holes[i].1;
            self.holes.remove(i);
        }
        self.free += pages;
    }

    fn largest(&self) -> u32 {
        self.holes.iter().map(|h| h.1).max().unwrap_or(0)
    }

    fn free_pages(&self) -> u32 {
        self.free
    }
}

/// An allocator with its live buffers and its own copy of the request stream.
struct Workload<A> {
    alloc: A,
    live: Vec<(u32, u32)>,
    rng: Rng,
    failed: u64,
}

impl<A: Allocator> Workload<A> {
    fn new(alloc: A, seed: u64, max_log: u64, natural: bool) -> Self {
        let rng = Rng {
            state: seed,
            max_log,
            natural,
        };
        Self {
            alloc,
            live: Vec::new(),
            rng,
            failed: 0,
        }
    }

    fn grant(&mut self) {
        let (pages, align) = self.rng.request();
        match self.alloc.alloc(pages, align) {
            Some(first) => self.live.push((first, pages)),
            None => self.failed += 1,
        }
    }

    fn release(&mut self) {
        if !self.live.is_empty() {
            let (first, pages) = self
                .live
                .swap_remove(self.rng.below(self.live.len() as u64) as usize);
            self.alloc.free(first, pages);
        }
    }

    /// Allocate until `percent` of the pool is in use.
    fn fill(&mut self, percent: u32) {
        while (POOL_PAGES - self.alloc.free_pages()) * 100 < POOL_PAGES * percent
            && self.failed < 1000
        {
            self.grant();
        }
    }

    /// `n` random operations keeping occupancy near `percent`.
    fn churn(&mut self, n: u64, percent: u32) {
        for _ in 0..n {
            let used = (POOL_PAGES - self.alloc.free_pages()) * 100 / POOL_PAGES;
            if used < percent && self.rng.below(2) == 0 || self.live.is_empty() {
                self.grant();
            } else {
                self.release();
            }
        }
    }

    fn pairs(&mut self, n: u64) {
        for _ in 0..n {
            self.release();
            self.grant();
        }
    }

    /// Fill to about 70 % and churn there for `ops` operations (the fragmentation workload).
    fn run(&mut self, ops: u64) {
        self.fill(70);
        self.churn(ops, 70);
    }

    fn fragmentation(&self) -> f64 {
        f64::from(self.alloc.largest()) / f64::from(self.alloc.free_pages().max(1))
    }
}

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Steady-state alloc+free pairs with sizes below `2^max_log` pages (alignments capped at the
/// size when `natural`), buddy against first-fit, interleaved; prints the result and returns it.
fn rate(max_log: u64, natural: bool, what: &str) -> Comparison {
    const PAIRS: u64 = 50_000;
    const ROUNDS: usize = 41;
    let mut buddy = Workload::new(BuddyPool::new(), SEED, max_log, natural);
    let mut first = Workload::new(FirstFit::new(), SEED, max_log, natural);
    buddy.fill(50);
    first.fill(50);
    let rate = compare(ROUNDS, PAIRS, || buddy.pairs(PAIRS), || first.pairs(PAIRS));
    println!(
        "dma: alloc+free pair, {what}: buddy {}, first-fit {} (median of {ROUNDS} interleaved rounds \
         of {PAIRS} pairs, 96 MiB pool about half full; {} and {} live buffers, {} first-fit holes, \
         {} and {} failed requests)",
        fmt_ns(rate.subject),
        fmt_ns(rate.baseline),
        buddy.live.len(),
        first.live.len(),
        first.alloc.holes.len(),
        buddy.failed,
        first.failed
    );
    rate
}

fn main() {
    let mixed = rate(10, false, "sizes 4 KiB-2 MiB");
    // Not a goal: many more live buffers, where the buddy's cost independent of their number
    // shows. Alignment capped at the size (as the driver asks), so that neither allocator fails
    // requests and both hold the same buffers.
    rate(
        5,
        true,
        "for information: sizes 4-124 KiB, alignment at most the size",
    );

    const OPS: u64 = 200_000;
    let mut ratios = Vec::new();
    let (mut b_frag, mut f_frag, mut b_failed, mut f_failed) = (Vec::new(), Vec::new(), 0, 0);
    for seed in 1..=5u64 {
        let mut b = Workload::new(BuddyPool::new(), seed * 0x2545_f491_4f6c_dd1d, 10, false);
        let mut f = Workload::new(FirstFit::new(), seed * 0x2545_f491_4f6c_dd1d, 10, false);
        b.run(OPS);
        f.run(OPS);
        b_frag.push(b.fragmentation());
        f_frag.push(f.fragmentation());
        b_failed += b.failed;
        f_failed += f.failed;
        ratios.push(b.fragmentation() / f.fragmentation());
    }
    println!(
        "dma: fragmentation after {OPS} random ops at about 70 % use (largest grantable block / free bytes, \
         1 = unfragmented): buddy {:.3}, first-fit {:.3} (medians of 5 seeds); failed requests buddy {b_failed}, first-fit {f_failed}",
        median(&mut b_frag),
        median(&mut f_frag)
    );
    println!(
        "dma: dma-rate = buddy pairs/s / first-fit pairs/s (sizes 4 KiB-2 MiB); \
         dma-fragmentation = buddy's largest/free / first-fit's; higher is better for the buddy in both"
    );
    let goals = [
        Goal::new("dma-rate", mixed.speed_ratio(), Op::AtLeast, 1.0),
        Goal::new("dma-fragmentation", median(&mut ratios), Op::AtLeast, 1.0),
    ];
    report(&goals);
}
