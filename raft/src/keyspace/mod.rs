//! The in-memory dataset the state machine mutates: keys with typed values and
//! expiry times, plus an expiry index for deterministic sweeping.

mod glob;
mod stream;
mod value;
mod zset;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::{DefaultHashBuilder, HashTable};
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

/// One key and its entry, in one allocation behind an `Arc`: the table holds
/// only a pointer per key, and a snapshot shares every slot with the live
/// keyspace until a write copies the one it changes (see [`Keyspace::image`]).
#[derive(Debug, Clone)]
struct Slot {
    key: Box<[u8]>,
    entry: Entry,
}

/// The keyspace. Only the state machine's apply path mutates it, so every
/// mutation is a function of the replicated log and the entry's stamp.
///
/// Memory per key: an 8-byte table slot (at a load of at least 44%), the
/// slot allocation (the key's box, the entry), the key bytes, and 16 bytes
/// in the expiry index when the key has a TTL. The expiry index holds the
/// key's hash, not the key: the hasher's seed is this process's own, so the
/// index only finds candidates, and which keys a sweep removes is decided by
/// expiry and key bytes (see [`Keyspace::sweep`]), the same on every replica.
///
/// Architecture invariant: nothing here reads a clock; callers pass `now_ms`.
/// Nothing decides anything by the table's or the hasher's order.
pub struct Keyspace {
    table: HashTable<Arc<Slot>>,
    hasher: DefaultHashBuilder,
    /// `(expire_at_ms, hash of key)` for every key with a TTL.
    expires: BTreeSet<(u64, u64)>,
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

impl Default for Keyspace {
    fn default() -> Self {
        Keyspace {
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            expires: BTreeSet::new(),
            clock: 0,
            tombstones: HashMap::new(),
            tombstone_order: VecDeque::new(),
            tombstone_floor: 0,
            flushed_at: 0,
        }
    }
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("keys", &self.table.len())
            .field("expiring", &self.expires.len())
            .finish()
    }
}

/// The WATCH bookkeeping that snapshots carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub tombstones: Vec<(u64, Bytes)>,
    pub tombstone_floor: u64,
    pub flushed_at: u64,
}

/// A frozen copy of every key, taken in O(keys) pointer copies: it shares
/// each key's storage with the keyspace, which copies a key only when it
/// changes it afterwards. Serializes as the sequence of `(key, entry)`
/// pairs, in no particular order.
#[derive(Debug, Clone, Default)]
pub struct KeyspaceImage {
    slots: Vec<Arc<Slot>>,
}

impl KeyspaceImage {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl Serialize for KeyspaceImage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.slots
                .iter()
                .map(|slot| (serde_bytes_ref(&slot.key), &slot.entry)),
        )
    }
}

/// A byte slice that serializes as bytes (as `Bytes` does), not as a
/// sequence of integers.
struct BytesRef<'a>(&'a [u8]);

fn serde_bytes_ref(bytes: &[u8]) -> BytesRef<'_> {
    BytesRef(bytes)
}

impl Serialize for BytesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl Keyspace {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Number of keys that carry a TTL (for INFO keyspace).
    pub fn expiring_len(&self) -> usize {
        self.table
            .iter()
            .filter(|slot| slot.entry.expire_at_ms.is_some())
            .count()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn slot(&self, key: &[u8]) -> Option<&Arc<Slot>> {
        let hash = self.hash(key);
        self.table.find(hash, |slot| &*slot.key == key)
    }

    /// The live entry under `key`, or `None` if absent or logically expired.
    pub fn get(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.slot(key)
            .map(|slot| &slot.entry)
            .filter(|entry| !is_expired(entry.expire_at_ms, now_ms))
    }

    /// Mutable access to a live value. An expired key is removed first, so
    /// the caller sees exactly what [`Keyspace::get`] would.
    pub fn value_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Value> {
        self.purge_if_expired(key, now_ms);
        let clock = self.clock;
        let hash = self.hash(key);
        self.table
            .find_mut(hash, |slot| &*slot.key == key)
            .map(|slot| {
                let entry = &mut Arc::make_mut(slot).entry;
                // Handing out mutable access counts as a change: conservative for WATCH.
                entry.version = clock;
                &mut entry.value
            })
    }

    /// Whether a live key exists.
    pub fn contains(&self, key: &[u8], now_ms: u64) -> bool {
        self.get(key, now_ms).is_some()
    }

    /// Adds `(at, hash)` to the expiry index.
    fn index_expiry(&mut self, at: u64, hash: u64) {
        self.expires.insert((at, hash));
    }

    /// Drops `(at, hash)` from the expiry index unless another key with the
    /// same hash (a collision) still expires at `at`.
    fn unindex_expiry(&mut self, at: u64, hash: u64, except: &[u8]) {
        let shared = self.table.iter_hash(hash).any(|slot| {
            &*slot.key != except
                && slot.entry.expire_at_ms == Some(at)
                && self.hasher.hash_one(&*slot.key) == hash
        });
        if !shared {
            self.expires.remove(&(at, hash));
        }
    }

    /// Stores `value` under `key` with the given expiry, replacing any
    /// previous entry and its TTL.
    pub fn insert(&mut self, key: Bytes, value: Value, expire_at_ms: Option<u64>) {
        let hash = self.hash(&key);
        let entry = Entry {
            value,
            expire_at_ms,
            version: self.clock,
        };
        let old_expiry = match self.table.find_mut(hash, |slot| *slot.key == *key) {
            Some(slot) => {
                let slot = Arc::make_mut(slot);
                let old = slot.entry.expire_at_ms;
                slot.entry = entry;
                Some(old)
            }
            None => {
                let slot = Arc::new(Slot {
                    key: Box::from(&key[..]),
                    entry,
                });
                let hasher = &self.hasher;
                self.table
                    .insert_unique(hash, slot, |s| hasher.hash_one(&*s.key));
                None
            }
        };
        if let Some(Some(at)) = old_expiry {
            if Some(at) != expire_at_ms {
                self.unindex_expiry(at, hash, &key);
            }
        }
        if let Some(at) = expire_at_ms {
            self.index_expiry(at, hash);
        }
        self.tombstones.remove(&key);
    }

    /// Replaces the value of `key` keeping its current TTL (if the key is live).
    pub fn insert_keep_ttl(&mut self, key: Bytes, value: Value, now_ms: u64) {
        let ttl = self.get(&key, now_ms).and_then(|e| e.expire_at_ms);
        self.insert(key, value, ttl);
    }

    /// Sets or clears the expiry of a live key. Returns false if the key is absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at_ms: Option<u64>, now_ms: u64) -> bool {
        self.purge_if_expired(key, now_ms);
        let hash = self.hash(key);
        let clock = self.clock;
        let Some(slot) = self.table.find_mut(hash, |slot| &*slot.key == key) else {
            return false;
        };
        let entry = &mut Arc::make_mut(slot).entry;
        let old = entry.expire_at_ms;
        entry.expire_at_ms = expire_at_ms;
        entry.version = clock;
        if let Some(at) = old {
            if Some(at) != expire_at_ms {
                self.unindex_expiry(at, hash, key);
            }
        }
        if let Some(at) = expire_at_ms {
            self.index_expiry(at, hash);
        }
        true
    }

    /// Removes a key. Returns the entry if it was live.
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Option<Entry> {
        let hash = self.hash(key);
        let slot = self
            .table
            .find_entry(hash, |slot| &*slot.key == key)
            .ok()?
            .remove()
            .0;
        let entry = Arc::unwrap_or_clone(slot).entry;
        if let Some(at) = entry.expire_at_ms {
            self.unindex_expiry(at, hash, key);
        }
        self.bury(Bytes::copy_from_slice(key));
        (!is_expired(entry.expire_at_ms, now_ms)).then_some(entry)
    }

    pub fn clear(&mut self) {
        self.table.clear();
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
        match (self.slot(key), self.tombstones.get(key)) {
            (Some(slot), _) => slot.entry.version > since,
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
    pub fn live(&self, now_ms: u64) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.table
            .iter()
            .filter(move |slot| !is_expired(slot.entry.expire_at_ms, now_ms))
            .map(|slot| (&*slot.key, &slot.entry))
    }

    /// Earliest expiry in the index, if any.
    pub fn first_expiry(&self) -> Option<u64> {
        self.expires.first().map(|(at, _)| *at)
    }

    /// Physically removes up to `max_keys` expired keys: the earliest by
    /// expiry, then by key bytes. Deterministic: `now_ms` comes from the log
    /// and the order depends on nothing local.
    pub fn sweep(&mut self, now_ms: u64, max_keys: usize) -> usize {
        let mut removed = 0;
        while removed < max_keys {
            let Some(&(at, _)) = self.expires.first() else {
                break;
            };
            if !is_expired(Some(at), now_ms) {
                break;
            }
            // Every key expiring at `at`, in byte order.
            let hashes: Vec<u64> = self
                .expires
                .range((at, 0)..=(at, u64::MAX))
                .map(|&(_, hash)| hash)
                .collect();
            let mut group: Vec<Bytes> = Vec::new();
            for hash in hashes {
                group.extend(
                    self.table
                        .iter_hash(hash)
                        .filter(|slot| {
                            slot.entry.expire_at_ms == Some(at)
                                && self.hasher.hash_one(&*slot.key) == hash
                        })
                        .map(|slot| Bytes::copy_from_slice(&slot.key)),
                );
                // Index entries whose keys are gone (none should be) go too.
                self.expires.remove(&(at, hash));
            }
            group.sort_unstable();
            group.dedup();
            let take = group.len().min(max_keys - removed);
            for key in group.drain(..take) {
                let hash = self.hash(&key);
                if let Ok(found) = self.table.find_entry(hash, |slot| *slot.key == *key) {
                    found.remove();
                }
                self.bury(key);
                removed += 1;
            }
            // Keys of the group not removed this time stay indexed.
            for key in group {
                let hash = self.hash(&key);
                self.expires.insert((at, hash));
            }
        }
        removed
    }

    fn purge_if_expired(&mut self, key: &[u8], now_ms: u64) {
        let expired = self
            .slot(key)
            .is_some_and(|slot| is_expired(slot.entry.expire_at_ms, now_ms));
        if expired {
            self.remove(key, now_ms);
        }
    }

    /// All entries, for snapshots.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.table.iter().map(|slot| (&*slot.key, &slot.entry))
    }

    /// A frozen copy of every key, for a snapshot built while writes go on.
    pub fn image(&self) -> KeyspaceImage {
        KeyspaceImage {
            slots: self.table.iter().cloned().collect(),
        }
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
