//! The hash maps of the core and its adapters: foldhash, seeded at random per process.
//!
//! Their keys come from outside (account ids and symbols from the event feed, client order
//! ids from check requests, logins and trade ids from CSV files), so a fixed seed would let
//! crafted ids collide on purpose. foldhash is used without its `std` feature: its
//! [`RandomState`] then seeds from the process's address-space layout (stack, code and
//! static addresses, randomised by the loader) and a per-map counter, with no clock read
//! and no system call, so the core stays pure. That seed is as random as the platform's
//! address randomisation; it is not secret from code inside the process, which is not the
//! threat here.

pub use foldhash::fast::RandomState;

/// A `HashMap` with a randomly seeded foldhash.
pub type HashMap<K, V> = std::collections::HashMap<K, V, RandomState>;

/// A `HashSet` with a randomly seeded foldhash.
pub type HashSet<T> = std::collections::HashSet<T, RandomState>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_nearby_keys_differ() {
        let b = RandomState::default();
        assert_eq!(b.hash_one("BTCUSDT"), b.hash_one("BTCUSDT"));
        let hashes: std::collections::HashSet<u64> = (0..10_000)
            .map(|i| b.hash_one(format!("ACC-{i:05}")))
            .collect();
        assert_eq!(hashes.len(), 10_000);
        assert_ne!(b.hash_one("a"), b.hash_one("a\0"));
    }

    #[test]
    fn each_map_is_seeded_differently() {
        // Keys that collide under one map's seed do not under another's.
        let (one, other) = (RandomState::default(), RandomState::default());
        let differ = (0..64)
            .filter(|i| one.hash_one(format!("order-{i}")) != other.hash_one(format!("order-{i}")))
            .count();
        assert_eq!(differ, 64);
    }
}
