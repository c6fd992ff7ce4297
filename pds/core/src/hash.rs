//! FNV-1a, 64-bit: the one checksum PDs use to notice bytes that were garbled or torn on the way
//! (alloc's journal records and grants, the fault campaign's canaries and seeds). It catches
//! accidents, not a peer that wants to forge a value: that peer can compute it too.

/// The hash of no bytes: where every FNV-1a starts.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a's 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Continue the FNV-1a hash `h` over `bytes` (start from [`FNV_OFFSET`]), so a value spread over
/// several pieces hashes as one.
pub fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_pieces_hash_as_one() {
        // The FNV-1a test vectors (Fowler, Noll, Vo: draft-eastlake-fnv).
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(
            fnv1a(fnv1a(FNV_OFFSET, b"foo"), b"bar"),
            fnv1a(FNV_OFFSET, b"foobar")
        );
    }
}
