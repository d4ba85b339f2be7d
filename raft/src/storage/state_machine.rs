//! The deterministic state machine: applies committed entries to the dataset
//! and builds, stores and installs snapshots.
//!
//! Architecture invariant: applying an entry depends only on the state and the
//! entry (including its stamp). No local clock, no randomness, no iteration
//! over unordered maps decides anything here.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Cursor, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::db::{BatchOp, Cf, Store};
use super::snapshot_file::{self, SnapshotDir};
use super::storage_err;
use crate::acl::{AclTable, User, Users};
use crate::commands::limiter::Policy;
use crate::commands::{execute_write, Dataset, WriteCtx};
use crate::error::Error;
use crate::keyspace::{Entry as KeyEntry, Keyspace, KeyspaceImage, Versions};
use crate::payload::{
    ApplyResponse, LogPayload, Proposal, RequestId, ScriptRound, WriteOp, SCRIPT_CONFLICT,
};
use crate::reply::Reply;
use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const CURRENT_SNAPSHOT: &[u8] = b"current";

/// How long a request id derived from a client's idempotency token is
/// remembered: a client resending an `RL.CHECK … ID token` has this long to do
/// it (docs/limiter.md).
const TOKEN_DEDUP_WINDOW_NS: u64 = 60 * 1_000_000_000;

/// How long a node's own request id is remembered. A node re-sends a write
/// whose outcome it does not know only within [`RETRY_HORIZON`] of first
/// sending it, so older ids are never asked about again; keeping them the
/// full token window would hold a reply per write for a minute. The other
/// half of the window is slack for the clocks of two leaders in a row.
const NODE_DEDUP_WINDOW_NS: u64 = 2 * RETRY_HORIZON.as_nanos() as u64;

/// How long after first sending a write a node may still re-send it with the
/// same request id (see [`NODE_DEDUP_WINDOW_NS`]). After that, a write whose
/// outcome is unknown is answered `TRYAGAIN`.
pub const RETRY_HORIZON: std::time::Duration = std::time::Duration::from_secs(5);

/// Replies to recently applied requests, so a retried request is answered
/// from here instead of being applied twice.
///
/// Memory: one map slot (a 16-byte id and a reply, which for RL.CHECK is a
/// boxed 40-byte decision) and one queue slot per write of the last
/// [`NODE_DEDUP_WINDOW_NS`], plus per token-carrying write of the last
/// [`TOKEN_DEDUP_WINDOW_NS`]: about 140 bytes per write, so 40k writes/s
/// hold about 55 MB. Entries leave in apply order, decided by entry stamps,
/// so every replica forgets the same ids at the same log index.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DedupTable {
    replies: HashMap<RequestId, Reply>,
    /// `(stamp_ns, id)` of node-origin ids in apply order.
    order: VecDeque<(u64, RequestId)>,
    /// `(stamp_ns, id)` of ids derived from client tokens, in apply order.
    #[serde(default)]
    token_order: VecDeque<(u64, RequestId)>,
}

impl DedupTable {
    fn get(&self, id: &RequestId) -> Option<&Reply> {
        self.replies.get(id)
    }

    fn insert(&mut self, id: RequestId, stamp_ns: u64, reply: Reply) {
        self.replies.insert(id, reply);
        if id.is_from_token() {
            self.token_order.push_back((stamp_ns, id));
        } else {
            self.order.push_back((stamp_ns, id));
        }
    }

    fn prune(&mut self, now_ns: u64) {
        for (order, window) in [
            (&mut self.order, NODE_DEDUP_WINDOW_NS),
            (&mut self.token_order, TOKEN_DEDUP_WINDOW_NS),
        ] {
            while let Some(&(stamp, id)) = order.front() {
                if now_ns.saturating_sub(stamp) <= window {
                    break;
                }
                order.pop_front();
                self.replies.remove(&id);
            }
        }
    }

    /// When the oldest remembered id is due to be forgotten (stamp time), if any.
    fn next_expiry_ns(&self) -> Option<u64> {
        let node = self.order.front().map(|(s, _)| s + NODE_DEDUP_WINDOW_NS);
        let token = self
            .token_order
            .front()
            .map(|(s, _)| s + TOKEN_DEDUP_WINDOW_NS);
        node.into_iter().chain(token).min()
    }

    fn len(&self) -> usize {
        self.replies.len()
    }
}

/// Everything the log has produced so far. Shared with readers behind a lock;
/// only [`StateMachine::apply`] and snapshot installation write it.
#[derive(Debug, Default)]
pub struct AppliedState {
    pub data: Dataset,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    /// The greatest stamp applied; time never goes below it.
    pub last_stamp_ns: u64,
    dedup: DedupTable,
    /// Bumped after every change of the user table, so connections can
    /// cache their user between changes. Shared across snapshot installs.
    acl_generation: Arc<AtomicU64>,
}

impl AppliedState {
    /// An empty state over the configured ACL users.
    fn with_acl_base(acl_base: Arc<Users>) -> Self {
        let mut state = AppliedState::default();
        state.data.acl = AclTable::new(acl_base);
        state
    }

    /// An empty state with the same configured users and generation counter.
    fn empty_like(&self) -> Self {
        let mut state = AppliedState::with_acl_base(self.data.acl.base().clone());
        state.acl_generation = self.acl_generation.clone();
        state
    }

    /// The counter bumped whenever the user table changes.
    pub fn acl_generation(&self) -> Arc<AtomicU64> {
        self.acl_generation.clone()
    }

    /// The time a read should use on this node: the replicated clock, or the
    /// local one if it is ahead (a key past its expiry is logically gone).
    pub fn read_now_ms(&self, wall_ns: u64) -> u64 {
        wall_ns.max(self.last_stamp_ns) / 1_000_000
    }

    fn apply_payload(&mut self, log_index: u64, payload: &LogPayload, observe: bool) -> Vec<Reply> {
        self.data.keyspace.set_clock(log_index);
        let now_ns = payload.stamp_ns.max(self.last_stamp_ns);
        self.last_stamp_ns = now_ns;
        let now_ms = now_ns / 1_000_000;
        let mut replies = Vec::with_capacity(payload.ops.len());
        for (op_index, op) in payload.ops.iter().enumerate() {
            let reply = match op {
                Proposal::Client { id, op } => {
                    if let Some(reply) = self.dedup.get(id) {
                        reply.clone()
                    } else {
                        let mut ctx = WriteCtx {
                            data: &mut self.data,
                            now_ms,
                            now_ns,
                            log_index,
                            op_index: op_index as u32,
                            observe,
                        };
                        let reply = apply_op(&mut ctx, op);
                        if op.touches_acl() {
                            self.acl_generation.fetch_add(1, Ordering::Release);
                        }
                        self.dedup.insert(*id, now_ns, reply.clone());
                        reply
                    }
                }
                Proposal::Sweep { max_keys } => {
                    let removed = self.data.keyspace.sweep(now_ms, *max_keys as usize);
                    Reply::Int(removed as i64)
                }
                Proposal::Scripts(round) => self.apply_scripts(round, now_ms, observe),
            };
            replies.push(reply);
        }
        self.dedup.prune(now_ns);
        replies
    }

    /// When the de-duplication table next has ids to forget: the leader then
    /// proposes an entry (an empty sweep) so an idle cluster forgets them too.
    pub fn dedup_expiry_ns(&self) -> Option<u64> {
        self.dedup.next_expiry_ns()
    }

    /// How many request ids the de-duplication table holds.
    pub fn dedup_len(&self) -> usize {
        self.dedup.len()
    }

    /// The reply already given to request `id`, if it was applied recently.
    pub fn applied_reply(&self, id: &RequestId) -> Option<&Reply> {
        self.dedup.get(id)
    }

    /// Applies a round of script effects (see [`ScriptRound`]): one reply
    /// per run, [`SCRIPT_CONFLICT`] for runs whose premises changed.
    fn apply_scripts(&mut self, round: &ScriptRound, now_ms: u64, observe: bool) -> Reply {
        for body in &round.loads {
            self.data
                .scripts
                .insert(crate::script::sha1_hex(body), body.clone());
        }
        let at_ms = round.at_ns / 1_000_000;
        let mut chain_holds = true;
        let mut replies = Vec::with_capacity(round.runs.len());
        for run in &round.runs {
            if let Some(reply) = self.dedup.get(&run.id) {
                // Applied in an earlier entry: later runs may have read this
                // run's writes as the leader computed them again, so they
                // are run once more rather than trusted.
                replies.push(reply.clone());
                chain_holds = false;
                continue;
            }
            let ks = &self.data.keyspace;
            let premises_hold = chain_holds
                && run.reads.iter().all(|key| {
                    !ks.changed_since(key, round.base_index)
                        && ks.contains(key, at_ms) == ks.contains(key, now_ms)
                });
            if !premises_hold {
                chain_holds = false;
                replies.push(Reply::error(SCRIPT_CONFLICT));
                continue;
            }
            for (op_index, argv) in &run.effects {
                let mut ctx = WriteCtx {
                    data: &mut self.data,
                    now_ms: at_ms,
                    now_ns: round.at_ns,
                    log_index: round.base_index,
                    op_index: *op_index,
                    observe,
                };
                execute_write(&mut ctx, argv);
            }
            // The keys written carry this entry's index as their version
            // (the keyspace clock), so WATCH and later rounds see the change.
            self.dedup.insert(run.id, round.at_ns, run.reply.clone());
            replies.push(run.reply.clone());
        }
        Reply::Array(replies)
    }
}

/// Executes one client write: a command, or a transaction all at once.
fn apply_op(ctx: &mut WriteCtx<'_>, op: &WriteOp) -> Reply {
    match op {
        WriteOp::Command(argv) => execute_write(ctx, argv),
        WriteOp::Script { .. } => Reply::error("ERR scripts run on the leader, not in the log"),
        WriteOp::Transaction { watch, commands } => {
            if let Some(watch) = watch {
                let ks = &ctx.data.keyspace;
                if watch
                    .keys
                    .iter()
                    .any(|key| ks.changed_since(key, watch.index))
                {
                    return Reply::NilArray;
                }
            }
            Reply::Array(
                commands
                    .iter()
                    .map(|argv| execute_write(ctx, argv))
                    .collect(),
            )
        }
    }
}

/// The version of the image layout below, written first in every snapshot
/// file. Snapshots stored by older versions (as one RocksDB value, without a
/// version) are read through [`LegacyImage`].
const IMAGE_VERSION: u16 = 2;

/// A snapshot's data, taken under the state lock in O(keys) pointer copies
/// (the keyspace) plus the de-duplication table already encoded, and
/// serialized afterwards without the lock.
struct Capture {
    meta: SnapshotMeta,
    last_stamp_ns: u64,
    keyspace: KeyspaceImage,
    policies: BTreeMap<String, Policy>,
    scripts: BTreeMap<String, Bytes>,
    versions: Versions,
    /// `DedupTable` as postcard: encoding it is faster than copying it.
    dedup: Vec<u8>,
    /// Runtime ACL changes; passwords only as SHA-256 hashes.
    acl: BTreeMap<String, Option<Arc<User>>>,
}

impl Capture {
    fn of(state: &AppliedState, snapshot_id: String) -> Result<Self, Error> {
        Ok(Capture {
            meta: SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
                snapshot_id,
            },
            last_stamp_ns: state.last_stamp_ns,
            keyspace: state.data.keyspace.image(),
            policies: state.data.policies.clone(),
            scripts: state.data.scripts.clone(),
            versions: state.data.keyspace.versions(),
            dedup: postcard::to_stdvec(&state.dedup).map_err(Error::encode("dedup table"))?,
            acl: state.data.acl.overrides().clone(),
        })
    }

    /// The image as [`Image`] reads it, after the version and the metadata.
    fn write_image(&self, out: &mut (impl std::io::Write + ?Sized)) -> Result<(), Error> {
        let enc = Error::encode("snapshot");
        postcard::to_io(&self.last_stamp_ns, &mut *out).map_err(enc)?;
        postcard::to_io(&self.keyspace, &mut *out).map_err(Error::encode("snapshot keys"))?;
        postcard::to_io(&self.policies, &mut *out).map_err(Error::encode("snapshot policies"))?;
        postcard::to_io(&self.scripts, &mut *out).map_err(Error::encode("snapshot scripts"))?;
        postcard::to_io(&self.versions, &mut *out).map_err(Error::encode("snapshot versions"))?;
        out.write_all(&self.dedup)?;
        postcard::to_io(&self.acl, &mut *out).map_err(Error::encode("snapshot acl"))?;
        Ok(())
    }

    /// The image as bytes (for a follower that needs the snapshot now).
    fn image_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.write_image(&mut out)?;
        Ok(out)
    }
}

#[derive(Deserialize)]
struct Image {
    last_stamp_ns: u64,
    keyspace: Vec<(Bytes, KeyEntry)>,
    policies: BTreeMap<String, Policy>,
    scripts: BTreeMap<String, Bytes>,
    versions: Versions,
    dedup: DedupTable,
    acl: BTreeMap<String, Option<Arc<User>>>,
}

/// The de-duplication table before ids from client tokens had a queue of
/// their own.
#[derive(Deserialize)]
struct LegacyDedup {
    replies: HashMap<RequestId, Reply>,
    order: VecDeque<(u64, RequestId)>,
}

/// An image as versions before [`IMAGE_VERSION`] 2 stored it.
#[derive(Deserialize)]
struct LegacyImage {
    last_stamp_ns: u64,
    keyspace: Vec<(Bytes, KeyEntry)>,
    policies: BTreeMap<String, Policy>,
    scripts: BTreeMap<String, Bytes>,
    versions: Versions,
    dedup: LegacyDedup,
    acl: BTreeMap<String, Option<Arc<User>>>,
}

impl From<LegacyImage> for Image {
    fn from(old: LegacyImage) -> Self {
        let mut dedup = DedupTable {
            replies: old.dedup.replies,
            ..DedupTable::default()
        };
        for (stamp, id) in old.dedup.order {
            if id.is_from_token() {
                dedup.token_order.push_back((stamp, id));
            } else {
                dedup.order.push_back((stamp, id));
            }
        }
        Image {
            last_stamp_ns: old.last_stamp_ns,
            keyspace: old.keyspace,
            policies: old.policies,
            scripts: old.scripts,
            versions: old.versions,
            dedup,
            acl: old.acl,
        }
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
    state: Arc<RwLock<AppliedState>>,
    /// Set by the node while it leads; only gates metrics (see `WriteCtx::observe`).
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
        let mut state = AppliedState::with_acl_base(acl_base);
        let mut snapshot_bytes = 0;
        if let Some(loaded) = Self::load_snapshot(&store, &snapshots)? {
            snapshot_bytes = loaded.image.len() as u64;
            restore(&mut state, &loaded.meta, loaded.version, &loaded.image)?;
            tracing::info!(last_applied = ?state.last_applied, keys = state.data.keyspace.len(), "restored snapshot");
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
    pub fn state(&self) -> Arc<RwLock<AppliedState>> {
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
    state: &mut AppliedState,
    meta: &SnapshotMeta,
    version: u16,
    data: &[u8],
) -> Result<(), Error> {
    let image: Image = match version {
        1 => postcard::from_bytes::<LegacyImage>(data)
            .map_err(Error::decode("snapshot data"))?
            .into(),
        IMAGE_VERSION => postcard::from_bytes(data).map_err(Error::decode("snapshot data"))?,
        other => {
            return Err(Error::Snapshot(format!(
                "image version {other} is newer than this build reads ({IMAGE_VERSION}); upgrade the node"
            )))
        }
    };
    let mut acl = AclTable::new(state.data.acl.base().clone());
    acl.set_overrides(image.acl);
    state.data = Dataset {
        keyspace: Keyspace::from_entries(image.keyspace, image.versions),
        policies: image.policies,
        scripts: image.scripts,
        acl,
    };
    state.last_stamp_ns = image.last_stamp_ns;
    state.dedup = image.dedup;
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
        let mut state = self.state.write();
        let mut responses = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            let replies = match entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(ref payload) => {
                    state.apply_payload(entry.log_id.index, payload, observe)
                }
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
            state.acl_generation.fetch_add(1, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{hash_password, to_hex, AnyCommand};

    fn argv(line: &str) -> Vec<Bytes> {
        line.split_whitespace()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn client(seq: u64, line: &str) -> Proposal {
        Proposal::Client {
            id: RequestId { origin: 1, seq },
            op: WriteOp::Command(argv(line)),
        }
    }

    fn run(seq: u64, reads: &[&str], effects: &[&str], reply: Reply) -> crate::payload::ScriptRun {
        crate::payload::ScriptRun {
            id: RequestId { origin: 2, seq },
            reads: reads.iter().map(|k| Bytes::from(k.to_string())).collect(),
            effects: effects
                .iter()
                .enumerate()
                .map(|(i, line)| (crate::script::FIRST_SCRIPT_OP + i as u32, argv(line)))
                .collect(),
            reply,
        }
    }

    const T0: u64 = 1_700_000_000_000_000_000;

    fn payload(stamp_ns: u64, ops: Vec<Proposal>) -> LogPayload {
        LogPayload {
            stamp_ns,
            ops: Arc::new(ops),
        }
    }

    #[test]
    fn script_rounds_replay_effects_at_the_round_time() {
        let mut state = AppliedState::with_acl_base(Arc::new(Users::new()));
        state.apply_payload(1, &payload(T0, vec![client(1, "SET a 1")]), false);
        let round = ScriptRound {
            base_index: 1,
            at_ns: T0 + 1_000_000,
            loads: vec![Bytes::from_static(b"return 1")],
            runs: vec![run(
                1,
                &["a"],
                &["INCR a", "SET b x PX 1000"],
                Reply::Int(2),
            )],
        };
        // The entry is stamped later than the round ran: effects still use the round's time.
        let replies = state.apply_payload(
            2,
            &payload(T0 + 500_000_000, vec![Proposal::Scripts(round.clone())]),
            false,
        );
        assert_eq!(replies, vec![Reply::Array(vec![Reply::Int(2)])]);
        let now = (T0 + 500_000_000) / 1_000_000;
        let b = state.data.keyspace.get(b"b", now).map(|e| e.expire_at_ms);
        assert_eq!(b, Some(Some(T0 / 1_000_000 + 1 + 1000)));
        assert!(state
            .data
            .scripts
            .contains_key(&crate::script::sha1_hex(b"return 1")));
        // The same round again (a retried proposal) is answered from the dedup table.
        let again = state.apply_payload(
            3,
            &payload(T0 + 600_000_000, vec![Proposal::Scripts(round)]),
            false,
        );
        assert_eq!(again, vec![Reply::Array(vec![Reply::Int(2)])]);
        let a = state.data.keyspace.get(b"a", now).map(|e| e.value.clone());
        assert_eq!(
            a,
            Some(crate::keyspace::Value::Str(Bytes::from_static(b"2")))
        );
    }

    #[test]
    fn a_script_whose_reads_changed_is_not_applied_nor_are_later_runs() {
        let mut state = AppliedState::with_acl_base(Arc::new(Users::new()));
        state.apply_payload(1, &payload(T0, vec![client(1, "SET a 1")]), false);
        // Another client's write lands between the scripts' reads and their round.
        state.apply_payload(2, &payload(T0, vec![client(2, "SET a 10")]), false);
        let round = ScriptRound {
            base_index: 1,
            at_ns: T0,
            loads: Vec::new(),
            runs: vec![
                run(1, &["a"], &["INCR a"], Reply::Int(2)),
                run(2, &[], &["INCR a"], Reply::Int(3)),
            ],
        };
        let replies = state.apply_payload(3, &payload(T0, vec![Proposal::Scripts(round)]), false);
        let conflict = Reply::error(SCRIPT_CONFLICT);
        assert_eq!(
            replies,
            vec![Reply::Array(vec![conflict.clone(), conflict])]
        );
        let a = state
            .data
            .keyspace
            .get(b"a", T0 / 1_000_000)
            .map(|e| e.value.clone());
        assert_eq!(
            a,
            Some(crate::keyspace::Value::Str(Bytes::from_static(b"10")))
        );
    }

    #[test]
    fn a_key_that_expired_after_the_round_ran_is_a_conflict() {
        let mut state = AppliedState::with_acl_base(Arc::new(Users::new()));
        let t0_ms = T0 / 1_000_000;
        state.apply_payload(
            1,
            &payload(T0, vec![client(1, &format!("SET a 1 PXAT {}", t0_ms + 5))]),
            false,
        );
        let round = ScriptRound {
            base_index: 1,
            at_ns: T0,
            loads: Vec::new(),
            runs: vec![run(1, &["a"], &["INCR a"], Reply::Int(2))],
        };
        // Applied 10 ms later: the script saw `a` alive, the replica would not.
        let replies = state.apply_payload(
            2,
            &payload(T0 + 10_000_000, vec![Proposal::Scripts(round)]),
            false,
        );
        assert_eq!(
            replies,
            vec![Reply::Array(vec![Reply::error(SCRIPT_CONFLICT)])]
        );
    }

    #[test]
    fn snapshot_image_carries_acl_changes_as_hashes() {
        let mut state = AppliedState::with_acl_base(Arc::new(Users::new()));
        let hash = to_hex(&hash_password(b"s3cret-pass"));
        assert!(state
            .data
            .acl
            .set_user(
                "alice",
                &["on", &format!("#{hash}"), "~app:*", "+get"],
                &AnyCommand
            )
            .is_ok());
        assert!(state
            .data
            .acl
            .set_user("default", &["resetpass", ">another-pass"], &AnyCommand)
            .is_ok());
        let data = Capture::of(&state, "t".into())
            .and_then(|capture| capture.image_bytes())
            .unwrap_or_default();
        assert!(!data.windows(11).any(|w| w == b"s3cret-pass"));
        assert!(!data.windows(12).any(|w| w == b"another-pass"));
        let mut fresh = state.empty_like();
        let meta = SnapshotMeta::default();
        assert!(restore(&mut fresh, &meta, IMAGE_VERSION, &data).is_ok());
        let alice = fresh.data.acl.user("alice").cloned();
        assert!(alice.is_some_and(|u| u.check_password(b"s3cret-pass") && u.enabled));
        let default = fresh.data.acl.user("default").cloned();
        assert!(default.is_some_and(|u| !u.nopass && u.check_password(b"another-pass")));
    }
}
