//! The typed values a key can hold.
//!
//! Every container is ordered (`VecDeque`, `BTreeMap`, `BTreeSet`), so
//! iterating a value — for a reply, a snapshot or a deterministic pick — gives
//! the same sequence on every replica.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::mem::size_of;

use bytes::Bytes;
use raftlimit_limiter::{LeaseSet, LimiterState};
use serde::{Deserialize, Serialize};

use super::stream::Stream;
use super::zset::ZSet;

/// A list: elements from head (index 0) to tail.
pub type List = VecDeque<Bytes>;
/// A hash: field → value, ordered by field bytes.
pub type Hash = BTreeMap<Bytes, Bytes>;
/// A set of members, ordered by member bytes.
pub type Set = BTreeSet<Bytes>;

/// A key's value. Each variant is one Redis type as `TYPE` reports it.
///
/// New variants go at the end: snapshots store values with postcard, which
/// numbers variants by position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Str(Bytes),
    /// Rate-limiter state written by RL.CHECK and friends.
    Limiter(Box<LimiterState>),
    /// Concurrency leases written by RL.ACQUIRE.
    Leases(LeaseSet),
    List(List),
    Hash(Hash),
    Set(Set),
    ZSet(ZSet),
    Stream(Stream),
}

/// A B-tree slot costs its key and value plus the unused share of its node;
/// nodes are on average about two-thirds full.
fn btree_slot<T>() -> usize {
    size_of::<T>() * 3 / 2
}

impl Value {
    /// The name `TYPE` and `SCAN … TYPE` use.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Limiter(_) => "ratelimit",
            Value::Leases(_) => "ratelease",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// An approximation of the heap bytes this value holds (MEMORY USAGE, INFO).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(data) => data.len(),
            Value::Limiter(_) => std::mem::size_of::<LimiterState>(),
            Value::Leases(set) => set.leases.keys().map(|id| id.len() + 32).sum(),
            Value::List(list) => {
                list.capacity() * size_of::<Bytes>() + list.iter().map(Bytes::len).sum::<usize>()
            }
            Value::Hash(hash) => hash
                .iter()
                .map(|(field, value)| btree_slot::<(Bytes, Bytes)>() + field.len() + value.len())
                .sum(),
            Value::Set(set) => set
                .iter()
                .map(|member| btree_slot::<Bytes>() + member.len())
                .sum(),
            Value::ZSet(zset) => zset.heap_size(),
            Value::Stream(stream) => stream.heap_size(),
        }
    }
}

/// A value type that commands access through [`Value`]: how to find it in a
/// value, wrap it into one, and tell when it is empty (an emptied aggregate
/// deletes its key).
pub trait Aggregate: Default + Sized {
    fn of(value: &Value) -> Option<&Self>;
    fn of_mut(value: &mut Value) -> Option<&mut Self>;
    fn wrap(self) -> Value;
    fn is_empty(&self) -> bool;
}

macro_rules! aggregate {
    ($ty:ty, $variant:ident) => {
        impl Aggregate for $ty {
            fn of(value: &Value) -> Option<&Self> {
                match value {
                    Value::$variant(inner) => Some(inner),
                    _ => None,
                }
            }

            fn of_mut(value: &mut Value) -> Option<&mut Self> {
                match value {
                    Value::$variant(inner) => Some(inner),
                    _ => None,
                }
            }

            fn wrap(self) -> Value {
                Value::$variant(self)
            }

            fn is_empty(&self) -> bool {
                <$ty>::is_empty(self)
            }
        }
    };
}

aggregate!(List, List);
aggregate!(Hash, Hash);
aggregate!(Set, Set);
aggregate!(ZSet, ZSet);
aggregate!(Stream, Stream);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sizes() {
        let list: List = [Bytes::from_static(b"abc")].into_iter().collect();
        let value = Value::List(list);
        assert_eq!(value.type_name(), "list");
        assert!(value.heap_size() >= 3 + size_of::<Bytes>());
        assert_eq!(Value::Hash(Hash::new()).type_name(), "hash");
        assert_eq!(Value::Set(Set::new()).type_name(), "set");
        assert_eq!(Value::ZSet(ZSet::default()).type_name(), "zset");
        assert_eq!(Value::Set(Set::new()).heap_size(), 0);
    }

    #[test]
    fn every_type_survives_postcard() {
        let mut zset = ZSet::default();
        if let Some(score) = crate::keyspace::Score::new(2.5) {
            zset.insert(Bytes::from_static(b"m"), score);
        }
        let mut stream = Stream::default();
        stream.append(
            crate::keyspace::StreamId { ms: 5, seq: 1 },
            vec![Bytes::from_static(b"f"), Bytes::from_static(b"v")],
        );
        let values = vec![
            Value::Str(Bytes::from_static(b"s")),
            Value::List(
                [Bytes::from_static(b"a"), Bytes::from_static(b"b")]
                    .into_iter()
                    .collect(),
            ),
            Value::Hash(
                [(Bytes::from_static(b"f"), Bytes::from_static(b"v"))]
                    .into_iter()
                    .collect(),
            ),
            Value::Set([Bytes::from_static(b"x")].into_iter().collect()),
            Value::ZSet(zset),
            Value::Stream(stream),
        ];
        let bytes = postcard::to_stdvec(&values).unwrap_or_default();
        let back: Vec<Value> = postcard::from_bytes(&bytes).unwrap_or_default();
        assert_eq!(back, values);
    }
}
