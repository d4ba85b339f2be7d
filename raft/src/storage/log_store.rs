//! The Raft log, vote and commit marker in RocksDB.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

/// Raft log storage. Cloning shares the database.
#[derive(Debug, Clone)]
pub struct LogStore {
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
        }
        // One fsync per batch of entries: group commit at the disk level.
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || store.write(ops, true))
            .await
            .map_err(|e| storage_err(StorageIOError::write_logs, &e))?;
        match result {
            Ok(()) => {
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
        self.store
            .write(
                vec![BatchOp::DeleteRange(
                    Cf::Logs,
                    log_key(log_id.index).to_vec(),
                    vec![0xff; 9],
                )],
                true,
            )
            .map_err(|e| storage_err(StorageIOError::write_logs, &e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purging log");
        let marker = encode("last purged log id", &Some(log_id))
            .map_err(|e| storage_err(StorageIOError::write_logs, &e))?;
        self.store
            .write(
                vec![
                    BatchOp::Put(Cf::Meta, LAST_PURGED.to_vec(), marker),
                    BatchOp::DeleteRange(
                        Cf::Logs,
                        log_key(0).to_vec(),
                        log_key(log_id.index.saturating_add(1)).to_vec(),
                    ),
                ],
                true,
            )
            .map_err(|e| storage_err(StorageIOError::write_logs, &e))
    }
}
