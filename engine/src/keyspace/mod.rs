//! The in-memory dataset the state machine mutates: keys with typed values and
//! expiry times, plus an expiry index for deterministic sweeping.

mod glob;
mod stream;
mod value;
mod zset;

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use glob::glob_match;
pub use stream::{Stream, StreamId};
pub use value::{Aggregate, Hash, List, Set, Value};
pub use zset::{Score, ScoreBound, ZSet};

/// One key's value and absolute expiry (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub value: Value,
    pub expire_at_ms: Option<u64>,
    /// Log index of the last change to this key (for WATCH).
    #[serde(default)]
    pub version: u64,
}

/// How many deletions are remembered for WATCH. Older ones are forgotten and
/// a transaction watching such a key conservatively aborts.
const MAX_TOMBSTONES: usize = 100_000;

/// Redis's rule: a key is expired once the clock is strictly past its expiry,
/// so at exactly `expire_at_ms` it still exists with a TTL of 0.
fn is_expired(expire_at_ms: Option<u64>, now_ms: u64) -> bool {
    matches!(expire_at_ms, Some(at) if now_ms > at)
}

/// The keyspace. Only the state machine's apply path mutates it, so every
/// mutation is a function of the replicated log and the entry's stamp.
///
/// Architecture invariant: nothing here reads a clock; callers pass `now_ms`.
#[derive(Debug, Default)]
pub struct Keyspace {
    map: HashMap<Bytes, Entry>,
    /// `(expire_at_ms, key)` for every key with a TTL. Ordered, so the sweep
    /// picks the same keys on every replica.
    expires: BTreeSet<(u64, Bytes)>,
    /// The log index being applied: the version every change is stamped with.
    clock: u64,
    /// Recently deleted keys and when, so WATCH notices a deletion.
    tombstones: HashMap<Bytes, u64>,
    tombstone_order: VecDeque<(u64, Bytes)>,
    /// Deletions before this version have been forgotten.
    tombstone_floor: u64,
    /// Version of the last FLUSHDB/FLUSHALL, which touches every key.
    flushed_at: u64,
}

/// The WATCH bookkeeping that snapshots carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub tombstones: Vec<(u64, Bytes)>,
    pub tombstone_floor: u64,
    pub flushed_at: u64,
}

impl Keyspace {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of keys that carry a TTL (for INFO keyspace).
    pub fn expiring_len(&self) -> usize {
        self.expires.len()
    }

    /// The live entry under `key`, or `None` if absent or logically expired.
    pub fn get(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.map
            .get(key)
            .filter(|entry| !is_expired(entry.expire_at_ms, now_ms))
    }

    /// Mutable access to a live value. An expired key is removed first, so
    /// the caller sees exactly what [`Keyspace::get`] would.
    pub fn value_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Value> {
        self.purge_if_expired(key, now_ms);
        let clock = self.clock;
        self.map.get_mut(key).map(|entry| {
            // Handing out mutable access counts as a change: conservative for WATCH.
            entry.version = clock;
            &mut entry.value
        })
    }

    /// Whether a live key exists.
    pub fn contains(&self, key: &[u8], now_ms: u64) -> bool {
        self.get(key, now_ms).is_some()
    }

    /// Stores `value` under `key` with the given expiry, replacing any
    /// previous entry and its TTL.
    pub fn insert(&mut self, key: Bytes, value: Value, expire_at_ms: Option<u64>) {
        if let Some(old) = self.map.get(&key) {
            if let Some(at) = old.expire_at_ms {
                self.expires.remove(&(at, key.clone()));
            }
        }
        if let Some(at) = expire_at_ms {
            self.expires.insert((at, key.clone()));
        }
        self.tombstones.remove(&key);
        self.map.insert(
            key,
            Entry {
                value,
                expire_at_ms,
                version: self.clock,
            },
        );
    }

    /// Replaces the value of `key` keeping its current TTL (if the key is live).
    pub fn insert_keep_ttl(&mut self, key: Bytes, value: Value, now_ms: u64) {
        let ttl = self.get(&key, now_ms).and_then(|e| e.expire_at_ms);
        self.insert(key, value, ttl);
    }

    /// Sets or clears the expiry of a live key. Returns false if the key is absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at_ms: Option<u64>, now_ms: u64) -> bool {
        self.purge_if_expired(key, now_ms);
        let Some(entry) = self.map.get_mut(key) else {
            return false;
        };
        let key = Bytes::copy_from_slice(key);
        if let Some(at) = entry.expire_at_ms {
            self.expires.remove(&(at, key.clone()));
        }
        if let Some(at) = expire_at_ms {
            self.expires.insert((at, key));
        }
        entry.expire_at_ms = expire_at_ms;
        entry.version = self.clock;
        true
    }

    /// Removes a key. Returns the entry if it was live.
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        let key = Bytes::copy_from_slice(key);
        if let Some(at) = entry.expire_at_ms {
            self.expires.remove(&(at, key.clone()));
        }
        self.bury(key);
        (!is_expired(entry.expire_at_ms, now_ms)).then_some(entry)
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.expires.clear();
        self.tombstones.clear();
        self.tombstone_order.clear();
        self.flushed_at = self.clock;
    }

    /// Sets the version that changes made from now on carry: the index of
    /// the log entry being applied.
    pub fn set_clock(&mut self, log_index: u64) {
        self.clock = log_index;
    }

    /// Whether `key` may have changed after log index `since` (WATCH). Errs
    /// on the side of "changed" when the history needed is gone.
    pub fn changed_since(&self, key: &[u8], since: u64) -> bool {
        if self.flushed_at > since {
            return true;
        }
        match (self.map.get(key), self.tombstones.get(key)) {
            (Some(entry), _) => entry.version > since,
            (None, Some(&deleted)) => deleted > since,
            (None, None) => self.tombstone_floor > since,
        }
    }

    fn bury(&mut self, key: Bytes) {
        self.tombstones.insert(key.clone(), self.clock);
        self.tombstone_order.push_back((self.clock, key));
        while self.tombstone_order.len() > MAX_TOMBSTONES {
            if let Some((version, old)) = self.tombstone_order.pop_front() {
                if self.tombstones.get(&old) == Some(&version) {
                    self.tombstones.remove(&old);
                }
                self.tombstone_floor = self.tombstone_floor.max(version + 1);
            }
        }
    }

    /// WATCH bookkeeping, for snapshots.
    pub fn versions(&self) -> Versions {
        Versions {
            tombstones: self
                .tombstone_order
                .iter()
                .filter(|(v, k)| self.tombstones.get(k) == Some(v))
                .cloned()
                .collect(),
            tombstone_floor: self.tombstone_floor,
            flushed_at: self.flushed_at,
        }
    }

    /// Iterates live keys in no particular order.
    pub fn live(&self, now_ms: u64) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.map
            .iter()
            .filter(move |(_, e)| !is_expired(e.expire_at_ms, now_ms))
    }

    /// Earliest expiry in the index, if any.
    pub fn first_expiry(&self) -> Option<u64> {
        self.expires.first().map(|(at, _)| *at)
    }

    /// Physically removes up to `max_keys` expired keys, earliest first.
    /// Deterministic: the index is ordered and `now_ms` comes from the log.
    pub fn sweep(&mut self, now_ms: u64, max_keys: usize) -> usize {
        let mut removed = 0;
        while removed < max_keys {
            let Some((at, key)) = self.expires.first().cloned() else {
                break;
            };
            if !is_expired(Some(at), now_ms) {
                break;
            }
            self.expires.remove(&(at, key.clone()));
            self.map.remove(&key);
            self.bury(key);
            removed += 1;
        }
        removed
    }

    fn purge_if_expired(&mut self, key: &[u8], now_ms: u64) {
        let expired = self
            .map
            .get(key)
            .is_some_and(|e| is_expired(e.expire_at_ms, now_ms));
        if expired {
            self.remove(key, now_ms);
        }
    }

    /// All entries, for snapshots.
    pub fn entries(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.map.iter()
    }

    /// Rebuilds a keyspace from snapshot entries.
    pub fn from_entries(
        entries: impl IntoIterator<Item = (Bytes, Entry)>,
        versions: Versions,
    ) -> Self {
        let mut keyspace = Keyspace::default();
        for (key, entry) in entries {
            keyspace.clock = entry.version;
            keyspace.insert(key, entry.value, entry.expire_at_ms);
        }
        keyspace.clock = 0;
        for (version, key) in versions.tombstones {
            keyspace.tombstones.insert(key.clone(), version);
            keyspace.tombstone_order.push_back((version, key));
        }
        keyspace.tombstone_floor = versions.tombstone_floor;
        keyspace.flushed_at = versions.flushed_at;
        keyspace
    }
}
