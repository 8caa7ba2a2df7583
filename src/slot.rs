//! Engine keys: a Python key's hash, plus a probe number for hash collisions.
//!
//! The engine never sees Python objects as keys. It stores each entry under a
//! [`Slot`], a plain `u64` derived from the key's Python hash, and the entry's node
//! remembers the Python key. Because slots compare as integers, moka can compare and
//! move keys during its maintenance without ever running Python code — the property
//! that keeps this binding deadlock-free (see `store.rs`).
//!
//! Two different Python keys may share a hash. The first one lives at probe 0; the
//! others take probes 1, 2, ... whose slots are derived from the same hash.
//! Equality of the Python keys themselves is checked by the caller, outside the
//! engine.
//!
//! Nothing here touches Python: it is plain Rust and unit-tested as such.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

/// The key under which the engine stores an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(u64);

/// Spreads probe numbers across the slot space; any odd constant with mixed bits works.
const PROBE_STRIDE: u64 = 0xA24B_AED4_963E_E407;

impl Slot {
    /// The slot of probe `probe` for a key whose Python hash is `hash`.
    #[inline]
    pub fn new(hash: isize, probe: u32) -> Slot {
        Slot(hash as u64 ^ probe_offset(probe))
    }

    /// The Python hash of the key stored at this slot under probe `probe`.
    #[inline]
    pub fn hash_for_probe(self, probe: u32) -> isize {
        (self.0 ^ probe_offset(probe)) as isize
    }
}

#[inline]
fn probe_offset(probe: u32) -> u64 {
    u64::from(probe).wrapping_mul(PROBE_STRIDE)
}

impl Hash for Slot {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// Builds the hasher moka uses to place slots in its tables.
///
/// Python hashes of small or sequential ints are the ints themselves; placed as they
/// are, they cluster in moka's table and inserts get 30-40x slower. A per-process
/// random seed and a 64-bit finalizer fix that at the cost of two multiplications.
#[derive(Clone, Debug)]
pub struct SlotHasherBuilder {
    seed: u64,
}

impl SlotHasherBuilder {
    /// A builder seeded from the standard library's per-process random keys.
    pub fn new() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x006d_6f6b_612d_7079);
        Self::with_seed(hasher.finish())
    }

    /// A builder with a fixed seed, for reproducible tests.
    pub fn with_seed(seed: u64) -> Self {
        SlotHasherBuilder { seed }
    }
}

impl Default for SlotHasherBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BuildHasher for SlotHasherBuilder {
    type Hasher = SlotHasher;

    #[inline]
    fn build_hasher(&self) -> SlotHasher {
        SlotHasher { state: self.seed }
    }
}

/// The hasher built by [`SlotHasherBuilder`]; it only ever receives one `u64`.
#[derive(Debug)]
pub struct SlotHasher {
    state: u64,
}

impl Hasher for SlotHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.state = mix(self.state ^ value);
    }

    fn write(&mut self, bytes: &[u8]) {
        // Slots only ever call `write_u64`; this keeps the hasher total anyway.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
}

/// The murmur3 64-bit finalizer: every input bit affects every output bit.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn hash_of(builder: &SlotHasherBuilder, slot: Slot) -> u64 {
        builder.hash_one(slot)
    }

    #[test]
    fn probe_zero_is_the_python_hash() {
        assert_eq!(Slot::new(12345, 0), Slot(12345));
        assert_eq!(Slot::new(-2, 0), Slot(-2isize as u64));
    }

    #[test]
    fn probes_of_one_hash_are_distinct_and_reversible() {
        for hash in [0isize, 1, -1, -2, isize::MAX, isize::MIN, 0x5555_5555] {
            let slots: HashSet<_> = (0..64).map(|p| Slot::new(hash, p).0).collect();
            assert_eq!(slots.len(), 64);
            for probe in 0..64 {
                assert_eq!(Slot::new(hash, probe).hash_for_probe(probe), hash);
            }
        }
    }

    #[test]
    fn sequential_ints_spread_over_low_bits() {
        // moka's table indexes buckets with the low bits of the hash: 4096 sequential
        // keys must fill most of 4096 buckets, not pile into a few.
        let builder = SlotHasherBuilder::with_seed(7);
        let buckets: HashSet<u64> = (0..4096)
            .map(|i| hash_of(&builder, Slot::new(i, 0)) & 4095)
            .collect();
        assert!(buckets.len() > 2400, "only {} buckets used", buckets.len());
        // Strided keys, the classic failure of pass-through hashing.
        let strided: HashSet<u64> = (0..4096)
            .map(|i| hash_of(&builder, Slot::new(i * 4096, 0)) & 4095)
            .collect();
        assert!(strided.len() > 2400, "only {} buckets used", strided.len());
    }

    #[test]
    fn seeds_change_the_placement() {
        let a = SlotHasherBuilder::with_seed(1);
        let b = SlotHasherBuilder::with_seed(2);
        let slot = Slot::new(42, 0);
        assert_ne!(hash_of(&a, slot), hash_of(&b, slot));
        assert_eq!(hash_of(&a, slot), hash_of(&a, slot));
    }

    #[test]
    fn byte_writes_are_total() {
        let mut hasher = SlotHasherBuilder::with_seed(3).build_hasher();
        hasher.write(b"abcdefghij");
        assert_ne!(hasher.finish(), 3);
    }
}

#[cfg(test)]
mod probing_properties {
    //! Properties of probing and hashing over the whole input space, which the store's
    //! collision handling relies on (see `Store::locate`).

    use super::*;
    use proptest::prelude::*;

    fn table_hash(builder: &SlotHasherBuilder, slot: Slot) -> u64 {
        builder.hash_one(slot)
    }

    proptest! {
        /// A slot gives back the hash it was made from, and two probes of one hash
        /// never share a slot: a key's chain is a set of distinct slots.
        #[test]
        fn probes_are_reversible_and_distinct(hash in any::<isize>(), a in 0u32..4096, b in 0u32..4096) {
            prop_assert_eq!(Slot::new(hash, a).hash_for_probe(a), hash);
            prop_assert_eq!(Slot::new(hash, a) == Slot::new(hash, b), a == b);
        }

        /// Probe `a` of one hash and probe `b` of another share a slot exactly when the
        /// hashes differ by the two probe offsets. Such slots exist for every pair of
        /// distinct probes, so a write must compare keys at any slot it takes, including
        /// past its own chain, or it would overwrite a key of another hash.
        #[test]
        fn slots_of_two_hashes_coincide_exactly_by_probe_offsets(
            hash in any::<isize>(),
            other in any::<isize>(),
            a in 0u32..64,
            b in 0u32..64,
        ) {
            let coincide = Slot::new(hash, a) == Slot::new(other, b);
            let by_offsets = (hash ^ other) as u64 == probe_offset(a) ^ probe_offset(b);
            prop_assert_eq!(coincide, by_offsets);
            let partner = (hash as u64 ^ probe_offset(a) ^ probe_offset(b)) as isize;
            prop_assert_eq!(Slot::new(hash, a), Slot::new(partner, b));
            prop_assert_eq!(partner == hash, a == b);
        }

        /// The table hash is a bijection of the slot for every seed (the murmur3
        /// finalizer is invertible): two slots never collide in moka's table hash.
        #[test]
        fn distinct_slots_never_share_a_table_hash(seed in any::<u64>(), x in any::<u64>(), y in any::<u64>()) {
            prop_assume!(x != y);
            let builder = SlotHasherBuilder::with_seed(seed);
            prop_assert_ne!(table_hash(&builder, Slot(x)), table_hash(&builder, Slot(y)));
        }

        /// Byte input (never used by slots, kept total) hashes without panicking, and
        /// is deterministic.
        #[test]
        fn byte_writes_are_deterministic(seed in any::<u64>(), bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let builder = SlotHasherBuilder::with_seed(seed);
            let mut one = builder.build_hasher();
            let mut two = builder.build_hasher();
            one.write(&bytes);
            two.write(&bytes);
            prop_assert_eq!(one.finish(), two.finish());
        }
    }
}
