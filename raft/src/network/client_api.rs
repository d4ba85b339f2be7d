//! What a node answers to a forwarded client command.

use raftlimit_engine::Reply;
use serde::{Deserialize, Serialize};

use crate::types::NodeId;

/// The result of executing (or trying to execute) a client command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientOutcome {
    /// The command ran; here is its reply (which may be a Redis error).
    Reply(Reply),
    /// This node is not the leader. The command was not proposed here.
    NotLeader { leader: Option<NodeId> },
    /// The command may or may not have been applied (leadership was lost
    /// after it was proposed). Retrying with the same request id is safe.
    Unknown(String),
}

/// A voter-set change a follower forwards to the leader (`RAFT.ADD`,
/// `RAFT.REMOVE`). Node addresses are not carried: a node can only be added
/// with the addresses the cluster configuration gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Make a configured node a voter (as a learner first, until it has
    /// caught up).
    Add(NodeId),
    /// Stop counting a voter; it stays (or, when it led, becomes again) a
    /// learner and keeps replicating, so it can be added back.
    Remove(NodeId),
}

impl MembershipChange {
    /// The node the change is about.
    pub fn node(self) -> NodeId {
        match self {
            MembershipChange::Add(id) | MembershipChange::Remove(id) => id,
        }
    }
}
