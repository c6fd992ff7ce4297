//! The buddy allocator on its own.

use super::*;
use crate::buddy::{Buddy, BuddyError, MAX_PAGES};

fn buddy(pages: u32) -> (Buddy, Vec<u64>) {
    let mut words = vec![0; Buddy::words_needed(pages)];
    let b = Buddy::new(pages, &mut words).unwrap();
    (b, words)
}

#[test]
fn a_pool_that_is_not_a_power_of_two_starts_as_maximal_blocks() {
    // 96 MiB, like gsp_dma: a 64 MiB block and a 32 MiB block.
    let (b, words) = buddy(24576);
    assert_eq!((b.free_pages(), b.largest_free()), (24576, 16384));
    assert_eq!(b.count_free(&words), Ok(24576));
}

#[test]
fn grants_are_exact_aligned_and_give_their_tail_back() {
    let (mut b, mut words) = buddy(64);
    let a = b.alloc(&mut words, 3, 1).unwrap();
    assert_eq!(a, 0);
    assert_eq!(b.free_pages(), 61, "a 3-page grant costs 3 pages");
    // The freed tail page is usable at once.
    assert_eq!(b.alloc(&mut words, 1, 1), Ok(3));
    let big = b.alloc(&mut words, 5, 16).unwrap();
    assert_eq!(big % 16, 0);
    assert_eq!(b.count_free(&words), Ok(b.free_pages()));
}

#[test]
fn freeing_everything_merges_back_to_the_initial_blocks() {
    let (mut b, mut words) = buddy(48);
    let mut grants = Vec::new();
    for n in [1, 3, 7, 2, 5, 1, 8] {
        grants.push((b.alloc(&mut words, n, 1).unwrap(), n));
    }
    // Free in an order unrelated to allocation.
    grants.sort_by_key(|&(first, n)| (first * 7 + n) % 11);
    for (first, n) in grants {
        b.free(&mut words, first, n).unwrap();
    }
    assert_eq!((b.free_pages(), b.largest_free()), (48, 32));
    assert_eq!(b.count_free(&words), Ok(48));
    assert_eq!(b.alloc(&mut words, 32, 1), Ok(0));
}

#[test]
fn bad_requests_and_bad_frees_are_typed_errors() {
    let (mut b, mut words) = buddy(16);
    assert_eq!(b.alloc(&mut words, 0, 1), Err(BuddyError::BadRequest));
    assert_eq!(b.alloc(&mut words, 1, 3), Err(BuddyError::BadRequest));
    assert_eq!(b.alloc(&mut words, 1, 1 << 20), Err(BuddyError::BadRequest));
    assert_eq!(b.alloc(&mut words, 17, 1), Err(BuddyError::NoSpace));
    let a = b.alloc(&mut words, 16, 1).unwrap();
    assert_eq!(b.alloc(&mut words, 1, 1), Err(BuddyError::NoSpace));
    assert_eq!(b.largest_free(), 0);
    assert_eq!(b.free(&mut words, 10, 8), Err(BuddyError::NotAllocated));
    assert_eq!(b.free(&mut words, 0, 0), Err(BuddyError::NotAllocated));
    b.free(&mut words, a, 16).unwrap();
    assert_eq!(b.free(&mut words, a, 16), Err(BuddyError::NotAllocated));
    assert_eq!(b.free_pages(), 16);
}

#[test]
fn the_bitmaps_must_fit_and_the_pool_must_not_exceed_the_largest_block() {
    let mut words = vec![0; Buddy::words_needed(9) - 1];
    assert_eq!(
        Buddy::new(9, &mut words).err(),
        Some(BuddyError::TooManyPages)
    );
    let mut words = vec![0; Buddy::words_needed(MAX_PAGES + 1)];
    assert_eq!(
        Buddy::new(MAX_PAGES + 1, &mut words).err(),
        Some(BuddyError::TooManyPages)
    );
    assert!(Buddy::new(MAX_PAGES, &mut words).is_ok());
}

#[test]
fn the_lowest_free_block_of_the_smallest_fitting_order_is_taken() {
    let (mut b, mut words) = buddy(64);
    let grants: Vec<u32> = (0..8).map(|_| b.alloc(&mut words, 4, 1).unwrap()).collect();
    assert_eq!(grants, [0, 4, 8, 12, 16, 20, 24, 28]);
    for &g in &[20, 4, 12] {
        b.free(&mut words, g, 4).unwrap();
    }
    // Three free 4-page blocks: the lowest goes first, and an 8-page request skips them all
    // for the lowest 8-page block.
    assert_eq!(b.alloc(&mut words, 8, 1), Ok(32));
    assert_eq!(b.alloc(&mut words, 3, 1), Ok(4));
    assert_eq!(b.alloc(&mut words, 4, 1), Ok(12));
}

#[test]
fn the_audit_notices_broken_bitmaps() {
    let (mut b, mut words) = buddy(64);
    let a = b.alloc(&mut words, 8, 1).unwrap();
    assert_eq!(b.count_free(&words), Ok(56));
    // Words of a 64-page pool: per order, block bits then summary bits; order 3 is words 6, 7.
    // The granted block marked free behind the allocator's back.
    let mut broken = words.clone();
    broken[6] |= 1 << (a >> 3);
    assert_eq!(b.count_free(&broken), Err(BuddyError::Corrupt));
    // The free block [8, 16) lost, its summary bit left behind.
    let mut broken = words.clone();
    broken[6] &= !(1 << 1);
    assert_eq!(b.count_free(&broken), Err(BuddyError::Corrupt));
    b.free(&mut words, a, 8).unwrap();
    assert_eq!((b.count_free(&words), b.largest_free()), (Ok(64), 64));
}

#[test]
fn a_rebuilt_allocator_has_exactly_the_used_ranges_allocated() {
    let mut words = vec![0; Buddy::words_needed(48)];
    let used = [(0, 3), (5, 1), (16, 9), (40, 8)];
    let mut b = Buddy::with_used(48, &mut words, used).unwrap();
    assert_eq!(b.free_pages(), 48 - 21);
    assert_eq!(b.count_free(&words), Ok(27));
    // Every used range frees as a grant would, and then the pool is whole again.
    for (first, n) in used {
        b.free(&mut words, first, n).unwrap();
    }
    assert_eq!((b.free_pages(), b.largest_free()), (48, 32));
    assert_eq!(b.count_free(&words), Ok(48));
}

#[test]
fn a_rebuild_refuses_unordered_overlapping_empty_or_outside_ranges() {
    let mut words = vec![0; Buddy::words_needed(16)];
    for used in [
        [(4, 2), (0, 1)],
        [(0, 4), (3, 1)],
        [(0, 1), (2, 0)],
        [(0, 1), (15, 2)],
        [(0, 1), (u32::MAX, 2)],
    ] {
        assert_eq!(
            Buddy::with_used(16, &mut words, used).map(|_| ()),
            Err(BuddyError::BadRequest),
            "{used:?}"
        );
    }
}
