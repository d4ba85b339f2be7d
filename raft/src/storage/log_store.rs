//! The Raft log, vote and commit marker in RocksDB, with the log's recent
//! tail also kept in memory.
//!
//! Why the tail cache: openraft reads every entry back right after appending
//! it — once per follower to replicate it, once more to apply it — and each
//! read was a RocksDB iterator, a copy, an unseal and a decode. Entries are
//! cheap to clone (their commands are shared), so the log keeps the entries
//! since the last purge, up to [`TAIL_MAX_BYTES`], and serves those reads
//! from memory; only a follower far behind reads from RocksDB.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{EntryPayload, LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};
use tokio::sync::watch;

use super::db::{BatchOp, Cf, Store};
use super::storage_err;
use crate::error::Error;
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// Log keys are big-endian so RocksDB's byte order is log order.
fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn decode<T: serde::de::DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, Error> {
    postcard::from_bytes(bytes).map_err(Error::decode(what))
}

fn encode<T: serde::Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_stdvec(value).map_err(Error::encode(what))
}

/// Most bytes of entries (by their commands' size) the tail cache holds.
const TAIL_MAX_BYTES: usize = 4 << 20;

/// Most bytes of entries one AppendEntries carries (at least one entry):
/// openraft 0.9 bounds a batch by its number of entries only.
const APPEND_MAX_BYTES: usize = 4 << 20;

/// The recent end of the log: consecutive entries from `first`.
#[derive(Debug, Default)]
struct Tail {
    first: u64,
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
}

fn entry_size(entry: &Entry) -> usize {
    match &entry.payload {
        EntryPayload::Normal(payload) => {
            64 + payload.ops.iter().map(|op| op.size_hint()).sum::<usize>()
        }
        _ => 64,
    }
}

impl Tail {
    fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// Adds entries that follow the tail; anything else restarts it.
    fn push(&mut self, entry: Entry) {
        let index = entry.log_id.index;
        if self.entries.is_empty() || index != self.end() {
            self.entries.clear();
            self.bytes = 0;
            self.first = index;
        }
        let size = entry_size(&entry);
        self.bytes += size;
        self.entries.push_back((entry, size));
        while self.bytes > TAIL_MAX_BYTES && self.entries.len() > 1 {
            if let Some((_, size)) = self.entries.pop_front() {
                self.bytes -= size;
                self.first += 1;
            }
        }
    }

    /// Entries `[from, to)` if the tail holds all of them.
    fn get(&self, from: u64, to: u64, max_bytes: usize) -> Option<Vec<Entry>> {
        if from < self.first || to > self.end() || from >= to {
            return None;
        }
        let mut out = Vec::with_capacity((to - from) as usize);
        let mut bytes = 0;
        for (entry, size) in self
            .entries
            .range((from - self.first) as usize..(to - self.first) as usize)
        {
            if !out.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            out.push(entry.clone());
        }
        Some(out)
    }

    /// Drops entries at or after `index`.
    fn truncate(&mut self, index: u64) {
        while self.end() > index && !self.entries.is_empty() {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Drops entries at or before `index`.
    fn purge(&mut self, index: u64) {
        while self.first <= index && !self.entries.is_empty() {
            if let Some((_, size)) = self.entries.pop_front() {
                self.bytes -= size;
                self.first += 1;
            }
        }
    }
}

/// Raft log storage. Cloning shares the database and the tail cache.
#[derive(Debug, Clone)]
pub struct LogStore {
    tail: Arc<Mutex<Tail>>,
    store: Arc<Store>,
    /// Highest committed index this node has been told about, for INFO and /readyz.
    committed_index: Arc<AtomicU64>,
    /// The greatest entry stamp durably appended here. Stamps strictly
    /// increase, so the proposer learns from it that its last entry is on
    /// disk and the next batch may go (see `node::proposer`).
    flushed_stamp: Arc<watch::Sender<u64>>,
}

impl LogStore {
    pub fn new(store: Arc<Store>) -> Self {
        LogStore {
            tail: Arc::new(Mutex::new(Tail::default())),
            store,
            committed_index: Arc::new(AtomicU64::new(0)),
            flushed_stamp: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Follows the greatest stamp of an entry appended and fsynced here.
    pub fn flushed_stamp(&self) -> watch::Receiver<u64> {
        self.flushed_stamp.subscribe()
    }

    /// The latest commit index seen (0 before the first).
    pub fn committed_index(&self) -> Arc<AtomicU64> {
        self.committed_index.clone()
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, Error> {
        self.store
            .get(Cf::Meta, key)?
            .map(|bytes| decode(what, &bytes))
            .transpose()
    }

    fn last_purged(&self) -> Result<Option<LogId>, Error> {
        Ok(self
            .read_meta::<Option<LogId>>(LAST_PURGED, "last purged log id")?
            .flatten())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => i.checked_add(1),
            Bound::Excluded(&i) => Some(i),
            Bound::Unbounded => None,
        };
        if let Some(entries) = to.and_then(|to| self.tail.lock().get(from, to, usize::MAX)) {
            return Ok(entries);
        }
        let to_key = to.map_or_else(|| vec![0xff; 9], |i| log_key(i).to_vec());
        let rows = self
            .store
            .range(Cf::Logs, &log_key(from), &to_key, usize::MAX)
            .map_err(|e| storage_err(StorageIOError::read_logs, &e))?;
        rows.iter()
            .map(|(_, value)| decode::<Entry>("log entry", value))
            .collect::<Result<_, _>>()
            .map_err(|e| storage_err(StorageIOError::read_logs, &e))
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        self.append_batch(start, end).await
    }
}

impl LogStore {
    /// A synced write of log changes on a blocking thread: a sync can take
    /// milliseconds, and the runtime's threads serve everything else.
    async fn write_synced(&self, ops: Vec<BatchOp>) -> Result<(), StorageError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.write(ops, true))
            .await
            .map_err(|e| storage_err(StorageIOError::write_logs, &e))?
            .map_err(|e| storage_err(StorageIOError::write_logs, &e))
    }

    /// Entries `[start, end)` for one AppendEntries: as many as fit in
    /// [`APPEND_MAX_BYTES`], at least one.
    async fn append_batch(&mut self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        if let Some(entries) = self.tail.lock().get(start, end, APPEND_MAX_BYTES) {
            return Ok(entries);
        }
        let mut entries = self.try_get_log_entries(start..end).await?;
        let mut bytes = 0;
        let keep = entries
            .iter()
            .take_while(|entry| {
                bytes += entry_size(entry);
                bytes <= APPEND_MAX_BYTES
            })
            .count()
            .max(1);
        entries.truncate(keep);
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged = self
            .last_purged()
            .map_err(|e| storage_err(StorageIOError::read_logs, &e))?;
        let last = self
            .store
            .last(Cf::Logs)
            .map_err(|e| storage_err(StorageIOError::read_logs, &e))?
            .map(|(_, value)| decode::<Entry>("log entry", &value).map(|e| e.log_id))
            .transpose()
            .map_err(|e| storage_err(StorageIOError::read_logs, &e))?;
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes =
            encode("vote", vote).map_err(|e| storage_err(StorageIOError::write_vote, &e))?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            store.write(vec![BatchOp::Put(Cf::Meta, VOTE.to_vec(), bytes)], true)
        })
        .await
        .map_err(|e| storage_err(StorageIOError::write_vote, &e))?
        .map_err(|e| storage_err(StorageIOError::write_vote, &e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(VOTE, "vote")
            .map_err(|e| storage_err(StorageIOError::read_vote, &e))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if let Some(log_id) = committed {
            self.committed_index
                .fetch_max(log_id.index, Ordering::Relaxed);
        }
        // Not synced: losing it only means re-learning the commit index from
        // the leader; it lets a restarted node re-apply its log promptly.
        let bytes =
            encode("committed", &committed).map_err(|e| storage_err(StorageIOError::write, &e))?;
        self.store
            .write(
                vec![BatchOp::Put(Cf::Meta, COMMITTED.to_vec(), bytes)],
                false,
            )
            .map_err(|e| storage_err(StorageIOError::write, &e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed = self
            .read_meta::<Option<LogId>>(COMMITTED, "committed")
            .map_err(|e| storage_err(StorageIOError::read, &e))?
            .flatten();
        if let Some(log_id) = committed {
            self.committed_index
                .fetch_max(log_id.index, Ordering::Relaxed);
        }
        Ok(committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut ops = Vec::new();
        let mut stamp = 0;
        let mut appended = Vec::new();
        for entry in entries {
            if let EntryPayload::Normal(payload) = &entry.payload {
                stamp = stamp.max(payload.stamp_ns);
            }
            let bytes = encode("log entry", &entry)
                .map_err(|e| storage_err(StorageIOError::write_logs, &e))?;
            ops.push(BatchOp::Put(
                Cf::Logs,
                log_key(entry.log_id.index).to_vec(),
                bytes,
            ));
            appended.push(entry);
        }
        // One fsync per batch of entries: group commit at the disk level.
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || store.write(ops, true))
            .await
            .map_err(|e| storage_err(StorageIOError::write_logs, &e))?;
        match result {
            Ok(()) => {
                {
                    let mut tail = self.tail.lock();
                    for entry in appended {
                        tail.push(entry);
                    }
                }
                callback.log_io_completed(Ok(()));
                self.flushed_stamp.send_if_modified(|flushed| {
                    let newer = stamp > *flushed;
                    if newer {
                        *flushed = stamp;
                    }
                    newer
                });
                Ok(())
            }
            Err(err) => {
                callback.log_io_completed(Err(std::io::Error::other(err.to_string())));
                Err(storage_err(StorageIOError::write_logs, &err))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncating log");
        self.tail.lock().truncate(log_id.index);
        self.write_synced(vec![BatchOp::DeleteRange(
            Cf::Logs,
            log_key(log_id.index).to_vec(),
            vec![0xff; 9],
        )])
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purging log");
        self.tail.lock().purge(log_id.index);
        let marker = encode("last purged log id", &Some(log_id))
            .map_err(|e| storage_err(StorageIOError::write_logs, &e))?;
        self.write_synced(vec![
            BatchOp::Put(Cf::Meta, LAST_PURGED.to_vec(), marker),
            BatchOp::DeleteRange(
                Cf::Logs,
                log_key(0).to_vec(),
                log_key(log_id.index.saturating_add(1)).to_vec(),
            ),
        ])
        .await
    }
}
