//! The openraft state machine: an adapter around the engine's
//! [`AppliedState`] that records the last applied log id and membership,
//! counts apply effects in the metrics, and builds, stores and installs
//! snapshots (sealed chunked files, `snapshot_file.rs`).
//!
//! What applying an entry does, and what a snapshot image holds, is the
//! engine's (`raftlimit_engine`, its `state` module); this file feeds it
//! entries in log order and moves its images to and from disk.

use std::borrow::Borrow;
use std::io::{Cursor, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use parking_lot::RwLock;
use raftlimit_engine::{
    AppliedState, ApplyResponse, Effect, SnapshotCapture, Users, IMAGE_VERSION,
};
use serde::{Deserialize, Serialize};

use super::db::{BatchOp, Cf, Store};
use super::snapshot_file::{self, SnapshotDir};
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

    /// An empty state with the same configured users and generation counter.
    fn empty_like(&self) -> Self {
        ReplicaState {
            applied: self.applied.empty_like(),
            ..ReplicaState::default()
        }
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

/// A snapshot's data taken under the state lock: the Raft position and the
/// engine's capture of the applied state, serialized afterwards.
struct Capture {
    meta: SnapshotMeta,
    image: SnapshotCapture,
}

impl Capture {
    fn of(state: &ReplicaState, snapshot_id: String) -> Result<Self, Error> {
        Ok(Capture {
            meta: SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
                snapshot_id,
            },
            image: state.applied.capture()?,
        })
    }

    fn write_image(&self, out: &mut (impl std::io::Write + ?Sized)) -> Result<(), Error> {
        Ok(self.image.write_image(out)?)
    }

    fn image_bytes(&self) -> Result<Vec<u8>, Error> {
        Ok(self.image.image_bytes()?)
    }
}

/// A snapshot as versions before 2 stored it: one RocksDB value.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// A loaded snapshot: its metadata and image, and the image's layout version.
struct Loaded {
    meta: SnapshotMeta,
    version: u16,
    image: Vec<u8>,
}

/// The state machine handed to openraft. Cloning shares the state.
#[derive(Debug, Clone)]
pub struct StateMachine {
    state: Arc<RwLock<ReplicaState>>,
    /// Set by the node while it leads; only gates metrics (see `count`).
    is_leader: Arc<AtomicBool>,
    store: Arc<Store>,
    snapshots: SnapshotDir,
    snapshot_seq: Arc<AtomicU64>,
    /// The greatest applied stamp, readable without the state lock (the
    /// proposer stamps every entry at least this late).
    applied_stamp: Arc<AtomicU64>,
    /// Size of the last snapshot file written, for the snapshot trigger.
    snapshot_bytes: Arc<AtomicU64>,
}

impl StateMachine {
    /// Opens the state machine over the configured ACL users, restoring the
    /// latest stored snapshot (from `snapshot_dir`, or one an older version
    /// kept in RocksDB). The log after it is replayed by openraft.
    pub fn open(
        store: Arc<Store>,
        acl_base: Arc<Users>,
        snapshot_dir: &Path,
    ) -> Result<Self, Error> {
        let snapshots = SnapshotDir::open(snapshot_dir)?;
        let mut state = ReplicaState {
            applied: AppliedState::with_acl_base(acl_base),
            ..ReplicaState::default()
        };
        let mut snapshot_bytes = 0;
        if let Some(loaded) = Self::load_snapshot(&store, &snapshots)? {
            snapshot_bytes = loaded.image.len() as u64;
            restore(&mut state, &loaded.meta, loaded.version, &loaded.image)?;
            tracing::info!(last_applied = ?state.last_applied, keys = state.applied.data.keyspace.len(), "restored snapshot");
        }
        let applied_stamp = Arc::new(AtomicU64::new(state.last_stamp_ns));
        Ok(StateMachine {
            state: Arc::new(RwLock::new(state)),
            is_leader: Arc::new(AtomicBool::new(false)),
            store,
            snapshots,
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            applied_stamp,
            snapshot_bytes: Arc::new(AtomicU64::new(snapshot_bytes)),
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

    /// The greatest stamp applied so far, without taking the state lock.
    pub fn applied_stamp(&self) -> Arc<AtomicU64> {
        self.applied_stamp.clone()
    }

    /// The size of the latest snapshot's image in bytes (0 before the first).
    pub fn snapshot_bytes(&self) -> Arc<AtomicU64> {
        self.snapshot_bytes.clone()
    }

    fn load_snapshot(store: &Store, snapshots: &SnapshotDir) -> Result<Option<Loaded>, Error> {
        if let Some(path) = snapshots.current() {
            let plain = snapshot_file::read_file(&path, store.keyring())?;
            let (version, rest): (u16, _) =
                postcard::take_from_bytes(&plain).map_err(Error::decode("snapshot version"))?;
            let (meta, image): (SnapshotMeta, _) =
                postcard::take_from_bytes(rest).map_err(Error::decode("snapshot metadata"))?;
            let image = image.to_vec();
            return Ok(Some(Loaded {
                meta,
                version,
                image,
            }));
        }
        store
            .get(Cf::Snapshot, CURRENT_SNAPSHOT)?
            .map(|bytes| {
                let stored: StoredSnapshot =
                    postcard::from_bytes(&bytes).map_err(Error::decode("snapshot"))?;
                Ok(Loaded {
                    meta: stored.meta,
                    version: 1,
                    image: stored.data,
                })
            })
            .transpose()
    }

    /// Writes a snapshot file (blocking: call it off the runtime), and drops
    /// a snapshot an older version kept in RocksDB.
    fn save(
        snapshots: &SnapshotDir,
        store: &Store,
        meta: &SnapshotMeta,
        write: impl FnOnce(&mut dyn std::io::Write) -> Result<(), Error>,
    ) -> Result<u64, Error> {
        let size = snapshots.publish(store.keyring().cloned(), |out| {
            postcard::to_io(&IMAGE_VERSION, &mut *out)
                .map_err(Error::encode("snapshot version"))?;
            postcard::to_io(meta, &mut *out).map_err(Error::encode("snapshot metadata"))?;
            write(out)
        })?;
        let mut end = CURRENT_SNAPSHOT.to_vec();
        end.push(0);
        store.write(
            vec![BatchOp::DeleteRange(
                Cf::Snapshot,
                CURRENT_SNAPSHOT.to_vec(),
                end,
            )],
            false,
        )?;
        Ok(size)
    }

    /// Re-seals the snapshot file with the keyring's current key if an older
    /// key sealed it (after a key rotation, as the database's records are).
    /// Returns whether it was rewritten. Blocking.
    pub fn reseal_snapshot(&self) -> Result<bool, Error> {
        let (Some(ring), Some(path)) = (self.store.keyring(), self.snapshots.current()) else {
            return Ok(false);
        };
        if snapshot_file::sealed_with(&path)? == Some(ring.current_key_id()) {
            return Ok(false);
        }
        let plain = snapshot_file::read_file(&path, Some(ring))?;
        self.snapshots
            .publish(Some(ring.clone()), |out| Ok(out.write_all(&plain)?))?;
        Ok(true)
    }
}

/// Replaces `state` with a snapshot's content.
fn restore(
    state: &mut ReplicaState,
    meta: &SnapshotMeta,
    version: u16,
    data: &[u8],
) -> Result<(), Error> {
    state.applied.restore(version, data)?;
    state.last_applied = meta.last_log_id;
    state.membership = meta.last_membership.clone();
    Ok(())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    /// Captures the state under the lock (pointer copies of every key, and
    /// the small tables), then serializes and writes it on a blocking thread:
    /// apply, reads and proposals go on meanwhile. openraft only keeps the
    /// metadata of what this returns; a follower that needs the snapshot
    /// gets it from [`RaftStateMachine::get_current_snapshot`].
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let started = std::time::Instant::now();
        let capture = {
            let state = self.state.read();
            let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
            let snapshot_id = match state.last_applied {
                Some(id) => format!("{}-{}-{seq}", id.leader_id, id.index),
                None => format!("none-{seq}"),
            };
            Capture::of(&state, snapshot_id)
                .map_err(|e| storage_err(StorageIOError::read_state_machine, &e))?
        };
        let captured = started.elapsed();
        let meta = capture.meta.clone();
        let (snapshots, store) = (self.snapshots.clone(), self.store.clone());
        let written = tokio::task::spawn_blocking(move || {
            let meta = capture.meta.clone();
            Self::save(&snapshots, &store, &meta, |out| capture.write_image(out))
        })
        .await
        .map_err(|e| {
            storage_err(
                |err| StorageIOError::write_snapshot(Some(meta.signature()), err),
                &e,
            )
        })?
        .map_err(|e| {
            storage_err(
                |err| StorageIOError::write_snapshot(Some(meta.signature()), err),
                &e,
            )
        })?;
        self.snapshot_bytes.store(written, Ordering::Relaxed);
        tracing::info!(
            snapshot = %meta.snapshot_id,
            bytes = written,
            capture_ms = captured.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "built snapshot"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(Vec::new())),
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
        self.applied_stamp
            .fetch_max(state.last_stamp_ns, Ordering::Release);
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
            let mut fresh = self.state.read().empty_like();
            restore(&mut fresh, meta, IMAGE_VERSION, &data)
                .map_err(|e| storage_err(|err| StorageIOError::read_snapshot(sig(), err), &e))?;
            self.applied_stamp
                .fetch_max(fresh.last_stamp_ns, Ordering::Release);
            let mut state = self.state.write();
            *state = fresh;
            state
                .applied
                .acl_generation()
                .fetch_add(1, Ordering::Release);
        }
        let (snapshots, store, owned_meta) =
            (self.snapshots.clone(), self.store.clone(), meta.clone());
        let written = tokio::task::spawn_blocking(move || {
            Self::save(&snapshots, &store, &owned_meta, |out| {
                Ok(out.write_all(&data)?)
            })
        })
        .await
        .map_err(|e| storage_err(|err| StorageIOError::write_snapshot(sig(), err), &e))?
        .map_err(|e| storage_err(|err| StorageIOError::write_snapshot(sig(), err), &e))?;
        self.snapshot_bytes.store(written, Ordering::Relaxed);
        tracing::info!(snapshot = %meta.snapshot_id, "installed snapshot from leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let (snapshots, store) = (self.snapshots.clone(), self.store.clone());
        let loaded = tokio::task::spawn_blocking(move || Self::load_snapshot(&store, &snapshots))
            .await
            .map_err(|e| storage_err(|err| StorageIOError::read_snapshot(None, err), &e))?
            .map_err(|e| storage_err(|err| StorageIOError::read_snapshot(None, err), &e))?;
        let Some(loaded) = loaded else {
            return Ok(None);
        };
        // Followers install images in the current layout: convert an old one.
        let image = if loaded.version == IMAGE_VERSION {
            loaded.image
        } else {
            let mut state = self.state.read().empty_like();
            restore(&mut state, &loaded.meta, loaded.version, &loaded.image)
                .and_then(|()| Capture::of(&state, loaded.meta.snapshot_id.clone()))
                .and_then(|capture| capture.image_bytes())
                .map_err(|e| storage_err(|err| StorageIOError::read_snapshot(None, err), &e))?
        };
        Ok(Some(Snapshot {
            meta: loaded.meta,
            snapshot: Box::new(Cursor::new(image)),
        }))
    }
}
