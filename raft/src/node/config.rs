//! Settings of one Raft node, as the server binary hands them over.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::clock::Clock;
use crate::acl::Users;
use crate::storage::Keyring;
use crate::types::{NodeId, NodeInfo};

/// Everything a node needs to join its group.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Peers must present the same name; it keeps two clusters on one host apart.
    pub cluster_name: String,
    /// RocksDB lives here.
    pub data_dir: PathBuf,
    /// The initial voters, this node included.
    pub members: BTreeMap<NodeId, NodeInfo>,
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot (and compact the log) every this many applied entries.
    pub snapshot_every: u64,
    /// How long a command waits for a leader before `CLUSTERDOWN`.
    pub no_leader_timeout: Duration,
    /// Upper bound on one client request, retries included.
    pub request_timeout: Duration,
    /// Most commands grouped into one log entry.
    pub max_batch: usize,
    /// Encryption at rest: every value stored in RocksDB is sealed with the
    /// keyring's current key. `None` stores plaintext. A data directory keeps
    /// the mode it was created with; opening it in the other mode fails.
    pub encryption: Option<Keyring>,
    /// ACL users from the configuration (identical on every node); runtime
    /// changes are replicated on top of them.
    pub acl_users: Arc<Users>,
    /// Where the node's time comes from (entry stamps, script time, reads):
    /// the wall clock in production; tests and clock faults move it.
    pub clock: Clock,
}

impl NodeConfig {
    /// A config with production defaults for the given identity and voters.
    pub fn new(id: NodeId, data_dir: PathBuf, members: BTreeMap<NodeId, NodeInfo>) -> Self {
        NodeConfig {
            id,
            cluster_name: "raftlimit".into(),
            data_dir,
            members,
            heartbeat_interval: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(400),
            election_timeout_max: Duration::from_millis(800),
            snapshot_every: 10_000,
            no_leader_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_batch: 1024,
            encryption: None,
            acl_users: Arc::new(Users::new()),
            clock: Clock::system(),
        }
    }
}
