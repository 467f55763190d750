//! FNV-1a, the hash of pwru-core's indexes of kernel names (BTF type names, kallsyms
//! symbols): a few times faster than the standard library's SipHash on short strings, which
//! matters when ~150,000 names are hashed per session under an emulator. The names come from
//! the kernel, not from whoever sends packets, so hash flooding is not a concern.

/// FNV-1a of `bytes`.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::default();
    std::hash::Hasher::write(&mut h, bytes);
    h.0
}

/// A `HashMap` hasher building [`Fnv1a`] states.
#[derive(Clone, Copy, Default)]
pub(crate) struct BuildFnv;

impl std::hash::BuildHasher for BuildFnv {
    type Hasher = Fnv1a;
    fn build_hasher(&self) -> Fnv1a {
        Fnv1a::default()
    }
}

/// The FNV-1a state.
pub(crate) struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    /// The published FNV-1a 64-bit test vectors.
    #[test]
    fn known_vectors() {
        assert_eq!(super::hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(super::hash(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
