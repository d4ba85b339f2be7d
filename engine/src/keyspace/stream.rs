//! The stream value: entries ordered by ID, and the last ID ever added so new
//! IDs never go backwards, even after the newest entries are deleted.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A stream entry ID, `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// The next ID in order, `None` after the last possible one.
    pub fn next(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(StreamId { ms: ms + 1, seq: 0 }),
            (ms, seq) => Some(StreamId { ms, seq: seq + 1 }),
        }
    }

    /// The previous ID in order, `None` before `0-0`.
    pub fn prev(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(StreamId {
                ms: ms - 1,
                seq: u64::MAX,
            }),
            (ms, seq) => Some(StreamId { ms, seq: seq - 1 }),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A stream: ID → the entry's field/value pairs, flattened in the order given.
///
/// Consumer groups are not kept (see docs/compatibility.md), so an entry is
/// only its fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    entries: BTreeMap<StreamId, Vec<Bytes>>,
    last_id: StreamId,
    /// Entries ever appended, trimmed or deleted ones included.
    entries_added: u64,
}

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The largest ID ever added (`0-0` for a new stream).
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// Whether this stream never held an entry. A stream key outlives its
    /// entries (as in Redis), so this, not `len() == 0`, is what decides
    /// whether a key is stored.
    pub fn is_empty(&self) -> bool {
        self.entries_added == 0 && self.entries.is_empty()
    }

    /// Appends an entry. The caller has checked that `id` is above
    /// [`Stream::last_id`]; an ID that is not is refused with `false`.
    pub fn append(&mut self, id: StreamId, fields: Vec<Bytes>) -> bool {
        if id <= self.last_id {
            return false;
        }
        self.entries.insert(id, fields);
        self.last_id = id;
        self.entries_added += 1;
        true
    }

    pub fn remove(&mut self, id: StreamId) -> bool {
        self.entries.remove(&id).is_some()
    }

    /// Removes the oldest entries while more than `max_len` remain, at most
    /// `limit` of them (0: no limit). Returns how many went.
    pub fn trim_max_len(&mut self, max_len: u64, limit: u64) -> u64 {
        let mut removed = 0;
        while self.entries.len() as u64 > max_len && (limit == 0 || removed < limit) {
            self.entries.pop_first();
            removed += 1;
        }
        removed
    }

    /// Removes the entries with an ID below `min_id`, at most `limit` of them
    /// (0: no limit). Returns how many went.
    pub fn trim_min_id(&mut self, min_id: StreamId, limit: u64) -> u64 {
        let mut removed = 0;
        while self
            .entries
            .first_key_value()
            .is_some_and(|(id, _)| *id < min_id)
            && (limit == 0 || removed < limit)
        {
            self.entries.pop_first();
            removed += 1;
        }
        removed
    }

    /// The entries with IDs in `start..=end`, oldest first.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
    ) -> impl DoubleEndedIterator<Item = (&StreamId, &Vec<Bytes>)> {
        // An empty interval must not reach `BTreeMap::range`, which panics on it.
        (start <= end)
            .then(|| self.entries.range(start..=end))
            .into_iter()
            .flatten()
    }

    /// An approximation of the heap bytes held (MEMORY USAGE).
    pub fn heap_size(&self) -> usize {
        let slot = std::mem::size_of::<(StreamId, Vec<Bytes>)>() * 3 / 2;
        self.entries
            .values()
            .map(|fields| {
                slot + fields.capacity() * std::mem::size_of::<Bytes>()
                    + fields.iter().map(Bytes::len).sum::<usize>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    fn fields() -> Vec<Bytes> {
        vec![Bytes::from_static(b"f"), Bytes::from_static(b"v")]
    }

    #[test]
    fn ids_step_across_sequence_and_time() {
        assert_eq!(id(1, 5).next(), Some(id(1, 6)));
        assert_eq!(id(1, u64::MAX).next(), Some(id(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(id(2, 0).prev(), Some(id(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
        assert!(id(1, u64::MAX) < id(2, 0));
        assert_eq!(id(7, 3).to_string(), "7-3");
    }

    #[test]
    fn append_refuses_ids_at_or_below_the_last() {
        let mut s = Stream::default();
        assert!(s.is_empty());
        assert!(!s.append(StreamId::MIN, fields()));
        assert!(s.append(id(5, 0), fields()));
        assert!(!s.append(id(5, 0), fields()));
        assert!(!s.append(id(4, 9), fields()));
        assert!(s.remove(id(5, 0)));
        // Deleting the newest entry does not lower the last ID.
        assert_eq!(s.last_id(), id(5, 0));
        assert!(!s.append(id(5, 0), fields()));
        assert_eq!(s.len(), 0);
        assert!(!s.is_empty(), "a stream that held entries stays a stream");
    }

    #[test]
    fn trimming_and_ranges() {
        let mut s = Stream::default();
        for ms in 1..=10 {
            s.append(id(ms, 0), fields());
        }
        assert_eq!(s.trim_max_len(8, 1), 1);
        assert_eq!(s.len(), 9);
        assert_eq!(s.trim_max_len(5, 0), 4);
        assert_eq!(s.trim_min_id(id(7, 1), 0), 2);
        let ids: Vec<u64> = s
            .range(StreamId::MIN, StreamId::MAX)
            .map(|(i, _)| i.ms)
            .collect();
        assert_eq!(ids, vec![8, 9, 10]);
        let rev: Vec<u64> = s
            .range(id(9, 0), StreamId::MAX)
            .rev()
            .map(|(i, _)| i.ms)
            .collect();
        assert_eq!(rev, vec![10, 9]);
        assert_eq!(s.range(id(10, 0), id(9, 0)).count(), 0);
        assert!(s.heap_size() > 0);
    }
}
