//! The openraft state machine: an adapter around the engine's
//! [`AppliedState`] that records the last applied log id and membership,
//! counts apply effects in the metrics, and builds, stores and installs
//! snapshots in RocksDB.
//!
//! What applying an entry does is the engine's (`raftlimit_engine`, its
//! `state` module); this file only feeds it entries in log order.

use std::borrow::Borrow;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use parking_lot::RwLock;
use raftlimit_engine::{AppliedState, ApplyResponse, Effect, Users};
use serde::{Deserialize, Serialize};

use super::db::{BatchOp, Cf, Store};
use super::storage_err;
use crate::error::Error;
use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const CURRENT_SNAPSHOT: &[u8] = b"current";

/// The applied state with the Raft position it reflects. Shared with readers
/// behind a lock; only [`StateMachine::apply`] and snapshot installation
/// write it.
#[derive(Debug, Default)]
pub struct ReplicaState {
    pub applied: AppliedState,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

impl ReplicaState {
    /// The last applied log index (0 before the first entry).
    pub fn applied_index(&self) -> u64 {
        self.last_applied.map_or(0, |l| l.index)
    }
}

impl Borrow<AppliedState> for ReplicaState {
    fn borrow(&self) -> &AppliedState {
        &self.applied
    }
}

/// Readers (the read path, the script executor, INFO) see the applied state
/// through the replica's; only the state machine writes it, by field.
impl std::ops::Deref for ReplicaState {
    type Target = AppliedState;

    fn deref(&self) -> &AppliedState {
        &self.applied
    }
}

/// Counts what applying did (leader only, so each decision is counted once).
fn count(effects: &[Effect]) {
    for effect in effects {
        match effect {
            Effect::Check { policy, outcome } => {
                metrics::counter!("raftlimit_limiter_checks_total", "policy" => policy.clone(), "outcome" => outcome.label())
                    .increment(1);
            }
            Effect::Lease { acquired } => {
                let outcome = if *acquired { "acquired" } else { "denied" };
                metrics::counter!("raftlimit_leases_total", "outcome" => outcome).increment(1);
            }
        }
    }
}

/// A stored snapshot: its metadata and data, as one RocksDB value.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine handed to openraft. Cloning shares the state.
#[derive(Debug, Clone)]
pub struct StateMachine {
    state: Arc<RwLock<ReplicaState>>,
    /// Set by the node while it leads; only gates metrics (see `count`).
    is_leader: Arc<AtomicBool>,
    store: Arc<Store>,
    snapshot_seq: Arc<AtomicU64>,
}

impl StateMachine {
    /// Opens the state machine over the configured ACL users, restoring the
    /// latest stored snapshot. The log after it is replayed by openraft.
    pub fn open(store: Arc<Store>, acl_base: Arc<Users>) -> Result<Self, Error> {
        let mut state = ReplicaState {
            applied: AppliedState::with_acl_base(acl_base),
            ..ReplicaState::default()
        };
        if let Some(stored) = Self::load_snapshot(&store)? {
            restore(&mut state, &stored.meta, &stored.data)?;
            tracing::info!(last_applied = ?state.last_applied, keys = state.applied.data.keyspace.len(), "restored snapshot");
        }
        Ok(StateMachine {
            state: Arc::new(RwLock::new(state)),
            is_leader: Arc::new(AtomicBool::new(false)),
            store,
            snapshot_seq: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The flag the node sets while it leads.
    pub fn leader_flag(&self) -> Arc<AtomicBool> {
        self.is_leader.clone()
    }

    /// Shared read access for the read path, INFO and metrics.
    pub fn state(&self) -> Arc<RwLock<ReplicaState>> {
        self.state.clone()
    }

    fn load_snapshot(store: &Store) -> Result<Option<StoredSnapshot>, Error> {
        store
            .get(Cf::Snapshot, CURRENT_SNAPSHOT)?
            .map(|bytes| postcard::from_bytes(&bytes).map_err(Error::decode("snapshot")))
            .transpose()
    }

    fn save_snapshot(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), Error> {
        let record = postcard::to_stdvec(&StoredSnapshot {
            meta: meta.clone(),
            data: data.to_vec(),
        })
        .map_err(Error::encode("snapshot"))?;
        self.store.write(
            vec![BatchOp::Put(
                Cf::Snapshot,
                CURRENT_SNAPSHOT.to_vec(),
                record,
            )],
            true,
        )
    }
}

/// Replaces `state` with a snapshot's content.
fn restore(state: &mut ReplicaState, meta: &SnapshotMeta, data: &[u8]) -> Result<(), Error> {
    state.applied.restore(data)?;
    state.last_applied = meta.last_log_id;
    state.membership = meta.last_membership.clone();
    Ok(())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (meta, data) = {
            let state = self.state.read();
            let data = state
                .applied
                .image()
                .map_err(|e| storage_err(StorageIOError::read_state_machine, &e))?;
            let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
            let snapshot_id = match state.last_applied {
                Some(id) => format!("{}-{}-{seq}", id.leader_id, id.index),
                None => format!("none-{seq}"),
            };
            let meta = SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
                snapshot_id,
            };
            (meta, data)
        };
        self.save_snapshot(&meta, &data).map_err(|e| {
            storage_err(
                |err| StorageIOError::write_snapshot(Some(meta.signature()), err),
                &e,
            )
        })?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.state.read();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let observe = self.is_leader.load(Ordering::Relaxed);
        let mut effects = Vec::new();
        let mut state = self.state.write();
        let mut responses = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            let replies = match entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(ref payload) => state.applied.apply_payload(
                    entry.log_id.index,
                    payload,
                    observe.then_some(&mut effects),
                ),
                EntryPayload::Membership(ref membership) => {
                    state.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                    Vec::new()
                }
            };
            responses.push(ApplyResponse { replies });
        }
        drop(state);
        count(&effects);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let sig = || Some(meta.signature());
        {
            let mut fresh = ReplicaState {
                applied: self.state.read().applied.empty_like(),
                ..ReplicaState::default()
            };
            restore(&mut fresh, meta, &data)
                .map_err(|e| storage_err(|err| StorageIOError::read_snapshot(sig(), err), &e))?;
            let mut state = self.state.write();
            *state = fresh;
            state
                .applied
                .acl_generation()
                .fetch_add(1, Ordering::Release);
        }
        self.save_snapshot(meta, &data)
            .map_err(|e| storage_err(|err| StorageIOError::write_snapshot(sig(), err), &e))?;
        tracing::info!(snapshot = %meta.snapshot_id, "installed snapshot from leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let stored = Self::load_snapshot(&self.store)
            .map_err(|e| storage_err(|err| StorageIOError::read_snapshot(None, err), &e))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
