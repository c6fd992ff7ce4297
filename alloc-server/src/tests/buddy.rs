//! The buddy allocator on its own.

use super::*;
use crate::buddy::{Buddy, BuddyError, PageMeta, MAX_PAGES};

fn buddy(pages: u32) -> (Buddy, Vec<PageMeta>) {
    let mut meta = vec![PageMeta::EMPTY; pages as usize];
    let b = Buddy::new(pages, &mut meta).unwrap();
    (b, meta)
}

#[test]
fn a_pool_that_is_not_a_power_of_two_starts_as_maximal_blocks() {
    // 96 MiB, like gsp_dma: a 64 MiB block and a 32 MiB block.
    let (b, meta) = buddy(24576);
    assert_eq!((b.free_pages(), b.largest_free()), (24576, 16384));
    assert_eq!(b.count_free(&meta), Ok(24576));
}

#[test]
fn grants_are_exact_aligned_and_give_their_tail_back() {
    let (mut b, mut meta) = buddy(64);
    let a = b.alloc(&mut meta, 3, 1).unwrap();
    assert_eq!(a, 0);
    assert_eq!(b.free_pages(), 61, "a 3-page grant costs 3 pages");
    // The freed tail page is usable at once.
    assert_eq!(b.alloc(&mut meta, 1, 1), Ok(3));
    let big = b.alloc(&mut meta, 5, 16).unwrap();
    assert_eq!(big % 16, 0);
    assert_eq!(b.count_free(&meta), Ok(b.free_pages()));
}

#[test]
fn freeing_everything_merges_back_to_the_initial_blocks() {
    let (mut b, mut meta) = buddy(48);
    let mut grants = Vec::new();
    for n in [1, 3, 7, 2, 5, 1, 8] {
        grants.push((b.alloc(&mut meta, n, 1).unwrap(), n));
    }
    // Free in an order unrelated to allocation.
    grants.sort_by_key(|&(first, n)| (first * 7 + n) % 11);
    for (first, n) in grants {
        b.free(&mut meta, first, n).unwrap();
    }
    assert_eq!((b.free_pages(), b.largest_free()), (48, 32));
    assert_eq!(b.count_free(&meta), Ok(48));
    assert_eq!(b.alloc(&mut meta, 32, 1), Ok(0));
}

#[test]
fn bad_requests_and_bad_frees_are_typed_errors() {
    let (mut b, mut meta) = buddy(16);
    assert_eq!(b.alloc(&mut meta, 0, 1), Err(BuddyError::BadRequest));
    assert_eq!(b.alloc(&mut meta, 1, 3), Err(BuddyError::BadRequest));
    assert_eq!(b.alloc(&mut meta, 1, 1 << 20), Err(BuddyError::BadRequest));
    assert_eq!(b.alloc(&mut meta, 17, 1), Err(BuddyError::NoSpace));
    let a = b.alloc(&mut meta, 16, 1).unwrap();
    assert_eq!(b.alloc(&mut meta, 1, 1), Err(BuddyError::NoSpace));
    assert_eq!(b.largest_free(), 0);
    assert_eq!(b.free(&mut meta, 10, 8), Err(BuddyError::NotAllocated));
    assert_eq!(b.free(&mut meta, 0, 0), Err(BuddyError::NotAllocated));
    b.free(&mut meta, a, 16).unwrap();
    assert_eq!(b.free(&mut meta, a, 16), Err(BuddyError::NotAllocated));
    assert_eq!(b.free_pages(), 16);
}

#[test]
fn the_metadata_must_cover_the_pool() {
    let mut meta = vec![PageMeta::EMPTY; 8];
    assert_eq!(
        Buddy::new(9, &mut meta).err(),
        Some(BuddyError::TooManyPages)
    );
    let mut meta = vec![PageMeta::EMPTY; MAX_PAGES as usize + 1];
    assert_eq!(
        Buddy::new(MAX_PAGES + 1, &mut meta).err(),
        Some(BuddyError::TooManyPages)
    );
    assert!(Buddy::new(MAX_PAGES, &mut meta).is_ok());
}
