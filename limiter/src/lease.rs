//! Concurrency leases: at most `limit` requests in flight per key, each
//! holding a lease until it is released or its TTL runs out (so a crashed
//! client cannot hold a slot forever).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The leases held on one key.
///
/// A `BTreeMap` keeps iteration and serialization order identical on every
/// replica. Lease ids come from the caller (derived from the Raft log index),
/// so nothing here is random.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseSet {
    /// Lease id to its absolute expiry in nanoseconds since the epoch.
    pub leases: BTreeMap<String, u64>,
}

impl LeaseSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the leases whose expiry is at or before `now_ns`.
    pub fn prune(&mut self, now_ns: u64) {
        self.leases.retain(|_, expires_at| *expires_at > now_ns);
    }

    /// Takes a lease named `new_id` for `ttl_ns` if fewer than `limit` are
    /// held, after dropping expired ones.
    ///
    /// Returns the id and the number held afterwards, or `Err(held)` when
    /// the key is at its limit. Acquiring an id that is already held renews
    /// it (its expiry only ever moves later) without counting it twice, and
    /// succeeds even at the limit. A `ttl_ns` of 0 is taken as 1 ns.
    pub fn acquire(
        &mut self,
        limit: u64,
        ttl_ns: u64,
        now_ns: u64,
        new_id: String,
    ) -> Result<(String, u64), u64> {
        self.prune(now_ns);
        let expires_at = now_ns.saturating_add(ttl_ns.max(1));
        if let Some(current) = self.leases.get_mut(&new_id) {
            *current = (*current).max(expires_at);
            return Ok((new_id, self.count()));
        }
        let held = self.count();
        if held >= limit {
            return Err(held);
        }
        self.leases.insert(new_id.clone(), expires_at);
        Ok((new_id, held + 1))
    }

    /// Releases lease `id`; true if it was held and had not expired.
    pub fn release(&mut self, id: &str, now_ns: u64) -> bool {
        self.prune(now_ns);
        self.leases.remove(id).is_some()
    }

    /// Leases still held at `now_ns`.
    pub fn held(&self, now_ns: u64) -> u64 {
        let live = self.leases.values().filter(|&&e| e > now_ns).count();
        u64::try_from(live).unwrap_or(u64::MAX)
    }

    /// The latest expiry: the key's TTL, after which every lease is gone.
    /// 0 for an empty set, which the caller deletes.
    pub fn expires_at_ns(&self) -> u64 {
        self.leases.values().copied().max().unwrap_or(0)
    }

    /// True when no lease is recorded (expired ones included).
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    fn count(&self) -> u64 {
        u64::try_from(self.leases.len()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn limits_concurrent_leases() {
        let mut set = LeaseSet::new();
        assert_eq!(set.acquire(2, 100, 0, "a".into()), Ok(("a".into(), 1)));
        assert_eq!(set.acquire(2, 100, 10, "b".into()), Ok(("b".into(), 2)));
        assert_eq!(set.acquire(2, 100, 20, "c".into()), Err(2));
        assert_eq!(set.held(20), 2);
        assert_eq!(set.expires_at_ns(), 110);
        assert!(set.release("a", 30));
        assert!(!set.release("a", 30));
        assert_eq!(set.acquire(2, 100, 40, "c".into()), Ok(("c".into(), 2)));
    }

    #[test]
    fn expired_leases_free_their_slot() {
        let mut set = LeaseSet::new();
        set.acquire(1, 100, 0, "a".into()).unwrap();
        assert_eq!(set.acquire(1, 100, 99, "b".into()), Err(1));
        assert_eq!(set.held(100), 0);
        assert_eq!(set.acquire(1, 100, 100, "b".into()), Ok(("b".into(), 1)));
        assert!(!set.release("a", 100));
        assert_eq!(set.leases.len(), 1);
    }

    #[test]
    fn renewing_an_id_does_not_count_twice() {
        let mut set = LeaseSet::new();
        set.acquire(1, 100, 0, "a".into()).unwrap();
        assert_eq!(set.acquire(1, 500, 50, "a".into()), Ok(("a".into(), 1)));
        assert_eq!(set.expires_at_ns(), 550);
        // Renewal never shortens a lease.
        set.acquire(1, 1, 60, "a".into()).unwrap();
        assert_eq!(set.expires_at_ns(), 550);
    }

    #[test]
    fn edge_cases() {
        let mut set = LeaseSet::new();
        assert!(set.is_empty());
        assert_eq!(set.expires_at_ns(), 0);
        assert_eq!(set.acquire(0, 100, 0, "a".into()), Err(0));
        assert_eq!(set.acquire(1, 0, 5, "z".into()), Ok(("z".into(), 1)));
        assert_eq!(set.expires_at_ns(), 6);
        assert_eq!(
            set.acquire(1, u64::MAX, u64::MAX - 1, "y".into()),
            Ok(("y".into(), 1))
        );
        assert_eq!(set.expires_at_ns(), u64::MAX);
    }
}
