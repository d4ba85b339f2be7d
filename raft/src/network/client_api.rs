//! What a node answers to a forwarded client command.

use serde::{Deserialize, Serialize};

use crate::reply::Reply;
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
