//! openraft type configuration: what a log entry carries and how nodes are addressed.

use std::fmt;
use std::io::Cursor;

use raftlimit_engine::{ApplyResponse, LogPayload};
use serde::{Deserialize, Serialize};

pub type NodeId = u64;

/// How to reach a cluster member: its client (RESP) address and its
/// inter-node (Raft RPC) address. Stored in the membership config, so every
/// node can tell clients where the leader is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub resp_addr: String,
    pub raft_addr: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resp={} raft={}", self.resp_addr, self.raft_addr)
    }
}

openraft::declare_raft_types!(
    /// The raftlimit Raft group: entries carry [`LogPayload`] batches and
    /// applying one yields an [`ApplyResponse`].
    pub TypeConfig:
        D = LogPayload,
        R = ApplyResponse,
        NodeId = NodeId,
        Node = NodeInfo,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeInfo>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
