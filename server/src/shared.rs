//! State shared by every connection of one server.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use raftlimit_raft::RaftNode;

use crate::config::Config;
use crate::session::ClientRegistry;

/// Counters reported by INFO stats.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
}

/// Everything a connection handler needs besides its own socket.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub node: Arc<RaftNode>,
    pub clients: ClientRegistry,
    pub stats: Stats,
    pub started: Instant,
    /// Random per process, as Redis's `run_id`.
    pub run_id: String,
    /// ACL LOG and the cross-protocol warning's rate limit.
    pub security: crate::acl_log::Security,
}

impl Shared {
    pub fn new(config: Config, node: Arc<RaftNode>) -> Self {
        let run_id = (0..40)
            .map(|_| char::from(b"0123456789abcdef"[rand::random::<usize>() % 16]))
            .collect();
        Shared {
            config,
            node,
            clients: ClientRegistry::default(),
            stats: Stats::default(),
            started: Instant::now(),
            run_id,
            security: Default::default(),
        }
    }
}
