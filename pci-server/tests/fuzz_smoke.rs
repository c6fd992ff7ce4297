//! The fuzz targets' bodies on the stable toolchain: thousands of pseudo-random inputs each
//! (cargo-fuzz itself needs nightly). The property is the fuzzers': no panic, no hang.

/// xorshift64*: a small deterministic generator, no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_config_spaces_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..1500 {
        // Mostly-empty spaces exercise the "nothing there" paths, full ones everything else.
        let len = if i % 3 == 0 {
            (rng.next() % 300) as usize
        } else {
            4096 + 64
        };
        pci_server::fuzz::config_space(&rng.bytes(len));
    }
}

#[test]
fn random_topologies_never_panic() {
    let mut rng = Rng(0xd1b5_4a32_d192_ed03);
    for _ in 0..3000 {
        let len = (rng.next() % 400) as usize;
        pci_server::fuzz::topology(&rng.bytes(len));
    }
}
