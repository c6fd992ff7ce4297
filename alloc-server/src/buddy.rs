//! A binary buddy allocator over the pages of one pool: exact-size grants, lowest address first.
//!
//! Blocks are `2^order` pages, aligned to their size relative to the pool start. The free blocks of
//! each order are bits in a three-level bitmap (block bits, one summary bit per word, one top word),
//! so setting, clearing and finding the lowest free block of an order are a few word operations
//! each (O(log₆₄ n)), and a mask of non-empty orders finds the smallest fitting order with one
//! `trailing_zeros`. Taking the *lowest-addressed* block of the smallest fitting order keeps
//! allocations packed at the bottom of the pool and large blocks whole at the top: in
//! `cargo xtask bench dma` this cut failed requests at 70 % use from thousands to tens compared
//! with the usual LIFO free lists (which were tried first and rejected for it).
//!
//! A pool whose size is not a power of two starts as several maximal aligned blocks; a block never
//! merges with a buddy that would stick out of the pool. A grant of `n` pages takes a block of order
//! `max(ceil(log2 n), log2 align)` and returns the unused tail at once, so a 3 MiB buffer costs
//! 3 MiB, not 4 (client pools are 4 MiB). Freeing returns the range as its maximal aligned blocks,
//! each merging with its buddies as far as they are free.
//!
//! Cost: alloc splits at most `ORDERS` times and trims at most `ORDERS` tail pieces (which never
//! merge: their buddies are inside the grant); free releases at most `2 * ORDERS` pieces, each
//! merging at most `ORDERS` times, and every merge removes a block an earlier operation inserted,
//! so both are amortised O(log n) (worst case O(log² n) for one free, with `ORDERS` = 16),
//! independent of how many buffers are live. No heap: the bitmap words are a slice the caller
//! provides ([`Buddy::words_needed`] of them), the rest is fixed arrays.
//!
//! The allocator trusts its caller (alloc-server's buffer table) to free only what it granted; it
//! still refuses a free that leaves the pool or starts on a free page, and the audit
//! ([`Buddy::count_free`]) checks every structural invariant.

/// Orders 0..=15: blocks of 4 KiB up to 128 MiB.
pub const ORDERS: usize = 16;

/// The most pages one allocator (one pool) can manage: the largest block.
pub const MAX_PAGES: u32 = 1 << (ORDERS - 1);

/// Why the allocator refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuddyError {
    /// The pool has more than [`MAX_PAGES`] pages, or the bitmap slice is too short.
    TooManyPages,
    /// Zero pages, a non-power-of-two alignment, or more pages than the largest block.
    BadRequest,
    /// No free block is large enough.
    NoSpace,
    /// A free names pages outside the pool or pages that are already free.
    NotAllocated,
    /// The bitmaps are inconsistent (a bug), found by an operation or the audit.
    Corrupt,
}

/// Where one order's bitmap levels live in the word slice.
#[derive(Clone, Copy, Debug, Default)]
struct Level {
    /// First word of the block bits (bit `i` = block `i` of this order is free).
    blocks: usize,
    /// First word of the summary bits (bit `w` = block word `w` is non-zero).
    summary: usize,
    /// Blocks of this order that fit in the pool.
    count: u32,
}

/// The free blocks of one pool. The bitmap words live with the caller (one array shared by every
/// pool) and are passed to each call; it must be the same slice every time.
#[derive(Clone, Debug)]
pub struct Buddy {
    pages: u32,
    levels: [Level; ORDERS],
    /// Per order, bit `s` = summary word `s` is non-zero.
    top: [u64; ORDERS],
    /// Bit `o` set: some block of order `o` is free.
    nonempty: u32,
    free_pages: u32,
}

/// The largest `o` with `2^o <= n` (n > 0).
fn floor_log2(n: u32) -> u32 {
    31 - n.leading_zeros()
}

fn word(words: &mut [u64], i: usize) -> Result<&mut u64, BuddyError> {
    words.get_mut(i).ok_or(BuddyError::Corrupt)
}

/// Blocks of order `o` in a pool of `pages` pages, and the words their two levels take.
fn shape(pages: u32, o: usize) -> (u32, usize, usize) {
    let count = pages >> o;
    let block_words = count.div_ceil(64) as usize;
    (count, block_words, block_words.div_ceil(64))
}

impl Buddy {
    /// How many bitmap words a pool of `pages` pages needs.
    pub fn words_needed(pages: u32) -> usize {
        (0..ORDERS)
            .map(|o| {
                let (_, b, s) = shape(pages, o);
                b + s
            })
            .sum()
    }

    /// An allocator of `pages` pages, all free, keeping its bitmaps in `words[..words_needed]`.
    ///
    /// # Errors
    /// [`BuddyError::TooManyPages`] when `pages` exceeds [`MAX_PAGES`] or `words` is too short.
    pub fn new(pages: u32, words: &mut [u64]) -> Result<Self, BuddyError> {
        Self::with_used(pages, words, [])
    }

    /// An allocator of `pages` pages in which exactly the ranges `used` (`(first, pages)`, in
    /// ascending order, none empty or overlapping) are allocated: how a restarted server rebuilds
    /// a pool from its journal. Only allocated and free pages exist, so nothing else is lost.
    ///
    /// # Errors
    /// As [`Buddy::new`]; [`BuddyError::BadRequest`] for an empty, unordered, overlapping or
    /// outside range.
    pub fn with_used(
        pages: u32,
        words: &mut [u64],
        used_ranges: impl IntoIterator<Item = (u32, u32)>,
    ) -> Result<Self, BuddyError> {
        Some(Self::words_needed(pages))
            .filter(|_| pages <= MAX_PAGES)
            .and_then(|n| words.get_mut(..n))
            .ok_or(BuddyError::TooManyPages)?
            .fill(0);
        let mut levels = [Level::default(); ORDERS];
        let mut at = 0;
        for (o, level) in levels.iter_mut().enumerate() {
            let (count, b, s) = shape(pages, o);
            *level = Level {
                blocks: at,
                summary: at + b,
                count,
            };
            at += b + s;
        }
        let mut b = Self {
            pages,
            levels,
            top: [0; ORDERS],
            nonempty: 0,
            free_pages: 0,
        };
        let mut at = 0;
        for (first, n) in used_ranges {
            let end = first
                .checked_add(n)
                .filter(|&e| n > 0 && first >= at && e <= pages)
                .ok_or(BuddyError::BadRequest)?;
            b.release_range(words, at, first)?;
            at = end;
        }
        b.release_range(words, at, pages)?;
        Ok(b)
    }

    /// Pages managed.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Pages currently free.
    pub fn free_pages(&self) -> u32 {
        self.free_pages
    }

    /// Pages in the largest free block (the largest grant possible now), 0 when full.
    pub fn largest_free(&self) -> u32 {
        match self.nonempty {
            0 => 0,
            bits => 1 << floor_log2(bits),
        }
    }

    fn level(&self, order: u32) -> Result<&Level, BuddyError> {
        self.levels.get(order as usize).ok_or(BuddyError::Corrupt)
    }

    /// Whether block `page` of `order` is free (false for a block that does not fit the pool).
    fn is_free(&self, words: &[u64], page: u32, order: u32) -> bool {
        let Ok(l) = self.level(order) else {
            return false;
        };
        let i = page >> order;
        i < l.count
            && words
                .get(l.blocks + (i / 64) as usize)
                .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Mark block `page` of `order` free (it must fit the pool and not be free already).
    fn insert(&mut self, words: &mut [u64], page: u32, order: u32) -> Result<(), BuddyError> {
        let l = *self.level(order)?;
        let i = page >> order;
        if i >= l.count {
            return Err(BuddyError::Corrupt);
        }
        let (w, s) = ((i / 64) as usize, (i / 4096) as usize);
        let block = word(words, l.blocks + w)?;
        let was = *block;
        *block |= 1 << (i % 64);
        // The summary and top bits are already set unless the word was empty.
        if was == 0 {
            *word(words, l.summary + s)? |= 1 << (w % 64);
            if let Some(top) = self.top.get_mut(order as usize) {
                *top |= 1 << s;
            }
        }
        self.nonempty |= 1 << order;
        self.free_pages += 1 << order;
        Ok(())
    }

    /// Mark free block `page` of `order` taken.
    fn remove(&mut self, words: &mut [u64], page: u32, order: u32) -> Result<(), BuddyError> {
        if self.take(words, page, order)? {
            Ok(())
        } else {
            Err(BuddyError::Corrupt)
        }
    }

    /// Take block `page` of `order` if it is free; whether it was.
    fn take(&mut self, words: &mut [u64], page: u32, order: u32) -> Result<bool, BuddyError> {
        let l = *self.level(order)?;
        let i = page >> order;
        if i >= l.count {
            return Ok(false);
        }
        let (w, s) = ((i / 64) as usize, (i / 4096) as usize);
        let block = word(words, l.blocks + w)?;
        if *block & (1 << (i % 64)) == 0 {
            return Ok(false);
        }
        *block &= !(1 << (i % 64));
        if *block == 0 {
            let summary = word(words, l.summary + s)?;
            *summary &= !(1 << (w % 64));
            if *summary == 0 {
                let top = self
                    .top
                    .get_mut(order as usize)
                    .ok_or(BuddyError::Corrupt)?;
                *top &= !(1 << s);
                if *top == 0 {
                    self.nonempty &= !(1 << order);
                }
            }
        }
        self.free_pages -= 1 << order;
        Ok(true)
    }

    /// The lowest-addressed free block of `order` (first page).
    fn lowest(&self, words: &[u64], order: u32) -> Result<u32, BuddyError> {
        let l = *self.level(order)?;
        let top = self.top.get(order as usize).copied().unwrap_or(0);
        if top == 0 {
            return Err(BuddyError::Corrupt);
        }
        let s = top.trailing_zeros() as usize;
        let summary = words.get(l.summary + s).copied().unwrap_or(0);
        let w = s * 64 + summary.trailing_zeros() as usize;
        let block = words.get(l.blocks + w).copied().unwrap_or(0);
        if block == 0 {
            return Err(BuddyError::Corrupt);
        }
        // CAST: w < count / 64 + 1 and count <= 2^15, so the index fits u32.
        Ok(((w * 64) as u32 + block.trailing_zeros()) << order)
    }

    /// Grant `pages` contiguous pages whose first page index is a multiple of `align_pages`
    /// (a power of two); returns the first page.
    ///
    /// # Errors
    /// [`BuddyError::BadRequest`] for zero pages, a bad alignment or a request above the largest
    /// block; [`BuddyError::NoSpace`] when no free block is large enough.
    pub fn alloc(
        &mut self,
        words: &mut [u64],
        pages: u32,
        align_pages: u32,
    ) -> Result<u32, BuddyError> {
        if pages == 0 || pages > MAX_PAGES || !align_pages.is_power_of_two() {
            return Err(BuddyError::BadRequest);
        }
        let need = pages
            .next_power_of_two()
            .trailing_zeros()
            .max(align_pages.trailing_zeros());
        if need >= ORDERS as u32 {
            return Err(BuddyError::BadRequest);
        }
        let avail = self.nonempty >> need;
        if avail == 0 {
            return Err(BuddyError::NoSpace);
        }
        let mut order = need + avail.trailing_zeros();
        let first = self.lowest(words, order)?;
        self.remove(words, first, order)?;
        // Split down to the needed order, keeping the lower half each time.
        while order > need {
            order -= 1;
            self.insert(words, first + (1 << order), order)?;
        }
        // Give back the tail the request does not use, as maximal aligned pieces. None of them can
        // merge: each one's buddy is the block just below it, which overlaps the grant.
        let (mut start, end) = (first + pages, first + (1 << need));
        while start < end {
            let order = start.trailing_zeros().min(floor_log2(end - start));
            self.insert(words, start, order)?;
            start += 1 << order;
        }
        Ok(first)
    }

    /// Return `pages` pages starting at `first` (exactly a range [`Buddy::alloc`] granted).
    ///
    /// # Errors
    /// [`BuddyError::NotAllocated`] when the range leaves the pool or its first page is free.
    pub fn free(&mut self, words: &mut [u64], first: u32, pages: u32) -> Result<(), BuddyError> {
        let end = first
            .checked_add(pages)
            .filter(|&e| pages > 0 && e <= self.pages)
            .ok_or(BuddyError::NotAllocated)?;
        // The first page must not lie in a free block (only orders with free blocks can hold one).
        let mut orders = self.nonempty;
        while orders != 0 {
            let o = orders.trailing_zeros();
            orders &= orders - 1;
            if self.is_free(words, first >> o << o, o) {
                return Err(BuddyError::NotAllocated);
            }
        }
        self.release_range(words, first, end)
    }

    /// Free `start..end` as maximal aligned blocks, merging each with its free buddies.
    fn release_range(
        &mut self,
        words: &mut [u64],
        mut start: u32,
        end: u32,
    ) -> Result<(), BuddyError> {
        while start < end {
            let order = start.trailing_zeros().min(floor_log2(end - start));
            self.release_block(words, start, order)?;
            start += 1 << order;
        }
        Ok(())
    }

    fn release_block(
        &mut self,
        words: &mut [u64],
        mut first: u32,
        mut order: u32,
    ) -> Result<(), BuddyError> {
        while order + 1 < ORDERS as u32 {
            let buddy = first ^ (1 << order);
            if !self.take(words, buddy, order)? {
                break;
            }
            first = first.min(buddy);
            order += 1;
        }
        self.insert(words, first, order)
    }

    /// Recount the free pages from the bitmaps and check every invariant: summaries and masks
    /// agree with the block bits, no free block lies inside a larger free block, no two free
    /// buddies were left unmerged, and the count matches [`Buddy::free_pages`]. O(words + free
    /// blocks × orders); for the audit.
    ///
    /// # Errors
    /// [`BuddyError::Corrupt`] on the first broken invariant.
    pub fn count_free(&self, words: &[u64]) -> Result<u32, BuddyError> {
        let mut total: u32 = 0;
        for (o, l) in (0u32..).zip(self.levels.iter()) {
            let (_, block_words, summary_words) = shape(self.pages, o as usize);
            let blocks = words
                .get(l.blocks..l.blocks + block_words)
                .ok_or(BuddyError::Corrupt)?;
            let summary = words
                .get(l.summary..l.summary + summary_words)
                .ok_or(BuddyError::Corrupt)?;
            let top = self.top.get(o as usize).copied().unwrap_or(0);
            let mut any = false;
            for (w, &bits) in blocks.iter().enumerate() {
                let summarised = summary
                    .get(w / 64)
                    .is_some_and(|s| s & (1 << (w % 64)) != 0);
                let topped = top & (1 << (w / 64)) != 0;
                if (bits != 0) != summarised || (bits != 0 && !topped) {
                    return Err(BuddyError::Corrupt);
                }
                any |= bits != 0;
                let mut rest = bits;
                while rest != 0 {
                    // CAST: w * 64 + bit < count <= 2^15.
                    let page = ((w * 64) as u32 + rest.trailing_zeros()) << o;
                    rest &= rest - 1;
                    let covered =
                        (o + 1..ORDERS as u32).any(|up| self.is_free(words, page >> up << up, up));
                    let unmerged = o + 1 < ORDERS as u32 && self.is_free(words, page ^ (1 << o), o);
                    if covered || unmerged {
                        return Err(BuddyError::Corrupt);
                    }
                    total = total
                        .checked_add(1 << o)
                        .filter(|&t| t <= self.pages)
                        .ok_or(BuddyError::Corrupt)?;
                }
            }
            if any != (self.nonempty & (1 << o) != 0) || (top != 0) != any {
                return Err(BuddyError::Corrupt);
            }
        }
        if total == self.free_pages {
            Ok(total)
        } else {
            Err(BuddyError::Corrupt)
        }
    }
}
