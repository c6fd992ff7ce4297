//! The fuzz entry point on the stable toolchain: thousands of pseudo-random inputs.

use crate::fuzz::requests;

/// xorshift64: a tiny deterministic PRNG, so the inputs are the same every run.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn the_request_fuzzer_finds_nothing_on_pseudo_random_traffic() {
    let mut s = 0x2545_f491_4f6c_dd1d;
    for i in 0..3000 {
        let len = (xorshift(&mut s) % 400) as usize;
        let data: super::Vec<u8> = (0..len).map(|_| xorshift(&mut s) as u8).collect();
        assert_eq!(requests(&data), Ok(()), "input {i}: {data:?}");
    }
    assert_eq!(requests(&[]), Ok(()));
}
