//! A fast, non-cryptographic hasher for the grouping's maps: keys are kernel packet ids,
//! skb addresses and function names, not input an attacker picks to collide, so the
//! standard library's flood-resistant SipHash is not worth its cost per event here.

use std::hash::{BuildHasherDefault, Hasher};

/// An odd constant with well-mixed bits (the fractional part of the golden ratio).
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// Rotate, xor in eight bytes at a time, multiply.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(MIX);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // A last avalanche so the low bits (the table index) depend on every input bit.
        let h = self.0;
        (h ^ (h >> 29)).wrapping_mul(MIX) ^ (h >> 32)
    }
}

/// The maps' hasher builder.
pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_ids_spread_over_the_low_bits() {
        let b = FastBuild::default();
        let mut seen = std::collections::HashSet::new();
        for id in 0..1024u64 {
            seen.insert(b.hash_one(id) & 1023);
        }
        // A perfect spread gives 1024; a poor hash collapses to few buckets.
        assert!(seen.len() > 600, "{}", seen.len());
        let s = |x: &str| b.hash_one(x);
        assert_ne!(s("ip_rcv"), s("ip_rcv_core"));
        assert_ne!(s("a"), s("a\0"));
    }
}
