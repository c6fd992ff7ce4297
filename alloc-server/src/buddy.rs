//! A binary buddy allocator over the pages of one pool, with exact-size grants.
//!
//! Blocks are `2^order` pages, aligned to their size relative to the pool start. Each order has an
//! intrusive doubly-linked free list threaded through a caller-provided [`PageMeta`] array (one
//! entry per page, no heap), and a bitmap says which lists are non-empty, so finding a block is one
//! `trailing_zeros`. A pool whose size is not a power of two starts as several maximal aligned
//! blocks; a block never merges with a buddy that would stick out of the pool.
//!
//! A grant of `n` pages takes the smallest block of order `max(ceil(log2 n), log2 align)` and at
//! once returns the unused tail to the free lists, so a 3 MiB buffer costs 3 MiB, not 4 (client
//! pools are 4 MiB). Freeing returns the range as its maximal aligned blocks, each merging with its
//! buddies as far as they are free. Cost: alloc and free do at most `ORDERS` list operations per
//! block and touch at most `2 * ORDERS` blocks, independent of how many buffers are live; every
//! merge removes a free block some earlier operation inserted, so both are amortised O(log n)
//! (worst case O(log² n) for one free, with `ORDERS` = 16).
//!
//! The allocator trusts its caller (alloc-server's buffer table) to free only what it granted; it
//! checks bounds and the first page so that a caller bug gives an error rather than corruption
//! where that is cheap.

/// Orders 0..=15: blocks of 4 KiB up to 128 MiB.
pub const ORDERS: usize = 16;

/// The most pages one allocator (one pool) can manage: the largest block.
pub const MAX_PAGES: u32 = 1 << (ORDERS - 1);

/// "No page" in a free-list link.
const NIL: u16 = u16::MAX;

/// Tag bit of a page that heads a free block; the low bits are the block's order.
const FREE: u8 = 0x80;

/// Per-page state: only the first page of a free block carries anything (its order and links).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageMeta {
    next: u16,
    prev: u16,
    tag: u8,
}

impl PageMeta {
    /// A page that heads no free block.
    pub const EMPTY: Self = Self {
        next: NIL,
        prev: NIL,
        tag: 0,
    };
}

/// Why the allocator refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuddyError {
    /// The pool has more than [`MAX_PAGES`] pages, or the metadata slice is shorter than the pool.
    TooManyPages,
    /// Zero pages, a non-power-of-two alignment, or more pages than the largest block.
    BadRequest,
    /// No free block is large enough.
    NoSpace,
    /// A free names pages outside the pool or pages that are already free.
    NotAllocated,
    /// A link or tag points outside the metadata (state corrupted by a bug).
    Corrupt,
}

/// The free lists of one pool. The page metadata lives with the caller (one arena shared by every
/// pool) and is passed to each call; it must be the same slice every time.
#[derive(Clone, Debug)]
pub struct Buddy {
    pages: u32,
    heads: [u16; ORDERS],
    /// Bit `o` set: the order-`o` list is non-empty.
    nonempty: u32,
    free_pages: u32,
}

fn meta_at(meta: &mut [PageMeta], page: u32) -> Result<&mut PageMeta, BuddyError> {
    usize::try_from(page)
        .ok()
        .and_then(|i| meta.get_mut(i))
        .ok_or(BuddyError::Corrupt)
}

/// The largest `o` with `2^o <= n` (n > 0).
fn floor_log2(n: u32) -> u32 {
    31 - n.leading_zeros()
}

impl Buddy {
    /// An allocator of `pages` pages, all free, writing its state into `meta[..pages]`.
    ///
    /// # Errors
    /// [`BuddyError::TooManyPages`] when `pages` exceeds [`MAX_PAGES`] or `meta` is too short.
    pub fn new(pages: u32, meta: &mut [PageMeta]) -> Result<Self, BuddyError> {
        let used = usize::try_from(pages)
            .ok()
            .filter(|_| pages <= MAX_PAGES)
            .and_then(|n| meta.get_mut(..n))
            .ok_or(BuddyError::TooManyPages)?;
        used.fill(PageMeta::EMPTY);
        let mut b = Self {
            pages,
            heads: [NIL; ORDERS],
            nonempty: 0,
            free_pages: 0,
        };
        b.release_range(meta, 0, pages)?;
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

    /// Grant `pages` contiguous pages whose first page index is a multiple of `align_pages`
    /// (a power of two); returns the first page.
    ///
    /// # Errors
    /// [`BuddyError::BadRequest`] for zero pages, a bad alignment or a request above the largest
    /// block; [`BuddyError::NoSpace`] when no free block is large enough.
    pub fn alloc(
        &mut self,
        meta: &mut [PageMeta],
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
        let first = self.pop(meta, order)?;
        // Split down to the needed order, keeping the lower half each time.
        while order > need {
            order -= 1;
            self.push(meta, first + (1 << order), order)?;
        }
        // Give back the tail the request does not use.
        self.release_range(meta, first + pages, first + (1 << need))?;
        Ok(first)
    }

    /// Return `pages` pages starting at `first` (exactly a range [`Buddy::alloc`] granted).
    ///
    /// # Errors
    /// [`BuddyError::NotAllocated`] when the range leaves the pool or starts on a free block.
    pub fn free(
        &mut self,
        meta: &mut [PageMeta],
        first: u32,
        pages: u32,
    ) -> Result<(), BuddyError> {
        let end = first
            .checked_add(pages)
            .filter(|&e| pages > 0 && e <= self.pages)
            .ok_or(BuddyError::NotAllocated)?;
        if meta_at(meta, first)?.tag & FREE != 0 {
            return Err(BuddyError::NotAllocated);
        }
        self.release_range(meta, first, end)
    }

    /// Free `start..end` as maximal aligned blocks, merging each with its free buddies.
    fn release_range(
        &mut self,
        meta: &mut [PageMeta],
        mut start: u32,
        end: u32,
    ) -> Result<(), BuddyError> {
        while start < end {
            let order = start.trailing_zeros().min(floor_log2(end - start));
            self.release_block(meta, start, order)?;
            start += 1 << order;
        }
        Ok(())
    }

    fn release_block(
        &mut self,
        meta: &mut [PageMeta],
        mut first: u32,
        mut order: u32,
    ) -> Result<(), BuddyError> {
        while order + 1 < ORDERS as u32 {
            let buddy = first ^ (1 << order);
            let inside = buddy + (1 << order) <= self.pages;
            // CAST: order < ORDERS = 16 fits the tag's low bits.
            if !inside || meta_at(meta, buddy)?.tag != FREE | order as u8 {
                break;
            }
            self.unlink(meta, buddy, order)?;
            first = first.min(buddy);
            order += 1;
        }
        self.push(meta, first, order)
    }

    fn push(&mut self, meta: &mut [PageMeta], page: u32, order: u32) -> Result<(), BuddyError> {
        let slot = self
            .heads
            .get_mut(order as usize)
            .ok_or(BuddyError::Corrupt)?;
        let old = *slot;
        let link = u16::try_from(page).map_err(|_| BuddyError::Corrupt)?;
        *slot = link;
        // CAST: order < ORDERS = 16 fits the tag's low bits.
        *meta_at(meta, page)? = PageMeta {
            next: old,
            prev: NIL,
            tag: FREE | order as u8,
        };
        if old != NIL {
            meta_at(meta, old.into())?.prev = link;
        }
        self.nonempty |= 1 << order;
        self.free_pages += 1 << order;
        Ok(())
    }

    fn pop(&mut self, meta: &mut [PageMeta], order: u32) -> Result<u32, BuddyError> {
        let head = *self.heads.get(order as usize).ok_or(BuddyError::Corrupt)?;
        if head == NIL {
            return Err(BuddyError::Corrupt);
        }
        self.unlink(meta, head.into(), order)?;
        Ok(head.into())
    }

    fn unlink(&mut self, meta: &mut [PageMeta], page: u32, order: u32) -> Result<(), BuddyError> {
        let PageMeta { next, prev, .. } = *meta_at(meta, page)?;
        *meta_at(meta, page)? = PageMeta::EMPTY;
        if next != NIL {
            meta_at(meta, next.into())?.prev = prev;
        }
        let head = self
            .heads
            .get_mut(order as usize)
            .ok_or(BuddyError::Corrupt)?;
        if prev == NIL {
            *head = next;
        } else {
            meta_at(meta, prev.into())?.next = next;
        }
        if *head == NIL {
            self.nonempty &= !(1 << order);
        }
        self.free_pages = self.free_pages.saturating_sub(1 << order);
        Ok(())
    }

    /// Walk every free list and count its pages (O(free blocks)): the audit's cross-check of
    /// [`Buddy::free_pages`] and of the list links.
    ///
    /// # Errors
    /// [`BuddyError::Corrupt`] when a link leaves the pool, a tag disagrees with its list, or a
    /// list is longer than the pool could hold.
    pub fn count_free(&self, meta: &[PageMeta]) -> Result<u32, BuddyError> {
        let mut total: u32 = 0;
        for (order, &head) in (0u32..).zip(self.heads.iter()) {
            let mut page = head;
            let mut prev = NIL;
            while page != NIL {
                let m = meta.get(usize::from(page)).ok_or(BuddyError::Corrupt)?;
                // CAST: order < ORDERS = 16 fits the tag's low bits.
                if m.tag != FREE | order as u8 || m.prev != prev {
                    return Err(BuddyError::Corrupt);
                }
                total = total
                    .checked_add(1 << order)
                    .filter(|&t| t <= self.pages)
                    .ok_or(BuddyError::Corrupt)?;
                prev = page;
                page = m.next;
            }
        }
        Ok(total)
    }
}
