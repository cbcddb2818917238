//! A keyed bijection on `[0, n)`: the scan order.
//!
//! A balanced Feistel network over the smallest even number of bits that
//! covers `n`, with cycle-walking to stay inside `[0, n)` (Black & Rogaway's
//! construction, as in masscan's "BlackRock"). It needs no memory, maps any
//! index in a few hash rounds, and the same seed gives the same order, so a
//! scan is reproducible and shards can be cut from the same sequence.

/// Feistel rounds. Four rounds of a good mixing function give an order with
/// no visible structure, which is all a scanner needs (this is not crypto).
const ROUNDS: usize = 4;

#[derive(Debug, Clone)]
pub struct Permutation {
    n: u128,
    /// Bits in each half.
    half: u32,
    keys: [u64; ROUNDS],
}

/// SplitMix64's finaliser: a fast, well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Permutation {
    pub fn new(n: u128, seed: u64) -> Self {
        let bits = 128 - n.saturating_sub(1).leading_zeros();
        let half = bits.div_ceil(2).max(1);
        let mut keys = [0u64; ROUNDS];
        let mut state = seed;
        for k in &mut keys {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            *k = mix(state);
        }
        Permutation { n, half, keys }
    }

    pub fn len(&self) -> u128 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn mask(&self) -> u64 {
        if self.half >= 64 {
            u64::MAX
        } else {
            (1u64 << self.half) - 1
        }
    }

    fn feistel(&self, x: u128) -> u128 {
        let mask = self.mask();
        let mut left = (x >> self.half) as u64 & mask;
        let mut right = x as u64 & mask;
        for (round, key) in self.keys.iter().enumerate() {
            let f = mix(right ^ key ^ (round as u64).rotate_left(32)) & mask;
            let next = left ^ f;
            left = right;
            right = next;
        }
        (u128::from(left) << self.half) | u128::from(right)
    }

    /// The index visited at position `i` (`i < n`).
    pub fn apply(&self, i: u128) -> u128 {
        debug_assert!(i < self.n);
        // The Feistel domain is at most 4n, so this loop runs ~2 times on average.
        let mut x = self.feistel(i);
        while x >= self.n {
            x = self.feistel(x);
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sizes_are_bijections() {
        for n in 1..=300u128 {
            let p = Permutation::new(n, 42);
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let x = p.apply(i);
                assert!(x < n);
                assert!(!seen[x as usize], "n={n}: {x} twice");
                seen[x as usize] = true;
            }
        }
    }

    #[test]
    fn order_depends_on_the_seed_and_is_not_sequential() {
        let a: Vec<u128> = (0..1000)
            .map(|i| Permutation::new(1000, 1).apply(i))
            .collect();
        let b: Vec<u128> = (0..1000)
            .map(|i| Permutation::new(1000, 2).apply(i))
            .collect();
        let again: Vec<u128> = (0..1000)
            .map(|i| Permutation::new(1000, 1).apply(i))
            .collect();
        assert_eq!(a, again);
        assert_ne!(a, b);
        let in_place = a
            .iter()
            .enumerate()
            .filter(|(i, x)| *i as u128 == **x)
            .count();
        assert!(in_place < 20, "{in_place} fixed points");
    }

    #[test]
    fn huge_spaces_map_inside() {
        let n = (1u128 << 100) + 12345;
        let p = Permutation::new(n, 7);
        for i in [0, 1, n / 2, n - 1] {
            assert!(p.apply(i) < n);
        }
        let full = Permutation::new(u128::MAX, 7);
        assert!(full.apply(u128::MAX - 1) < u128::MAX);
    }

    proptest::proptest! {
        #[test]
        fn odd_sizes_are_bijections(half in 0u32..2000, seed: u64) {
            let n = u128::from(half) * 2 + 1;
            let p = Permutation::new(n, seed);
            let mut seen = std::collections::HashSet::new();
            for i in 0..n {
                let x = p.apply(i);
                proptest::prop_assert!(x < n);
                proptest::prop_assert!(seen.insert(x));
            }
        }
    }
}
