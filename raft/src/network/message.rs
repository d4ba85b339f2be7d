//! The RPC messages exchanged between nodes.

use bytes::Bytes;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use raftlimit_engine::{LoggedArgv, RequestId, WriteOp};
use serde::{Deserialize, Serialize};

use super::client_api::{ClientOutcome, MembershipChange};
use crate::types::{NodeId, TypeConfig};

/// Every frame carries an id so responses can be matched to requests on a
/// multiplexed connection.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: u64,
    pub body: T,
}

#[derive(Serialize, Deserialize)]
pub enum RpcRequest {
    /// First frame on a connection: who is calling, and for which cluster.
    Hello {
        from: NodeId,
        cluster: String,
    },
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A client write forwarded by a follower; `id` makes retries idempotent.
    Write {
        id: RequestId,
        op: WriteOp,
    },
    /// A client read forwarded by a follower, served after a read barrier.
    Read {
        argv: Vec<Bytes>,
    },
    /// A membership change forwarded by a follower (`RAFT.ADD`,
    /// `RAFT.REMOVE`); answered with [`RpcResponse::Client`]. Appended last
    /// so the encoding of the older variants does not move.
    Membership(MembershipChange),
}

impl std::fmt::Debug for RpcRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcRequest::Hello { from, cluster } => f
                .debug_struct("Hello")
                .field("from", from)
                .field("cluster", cluster)
                .finish(),
            RpcRequest::AppendEntries(req) => f.debug_tuple("AppendEntries").field(req).finish(),
            RpcRequest::Vote(req) => f.debug_tuple("Vote").field(req).finish(),
            RpcRequest::InstallSnapshot(req) => {
                f.debug_tuple("InstallSnapshot").field(req).finish()
            }
            // Forwarded commands may carry credentials: see `LoggedArgv`.
            RpcRequest::Write { id, op } => f
                .debug_struct("Write")
                .field("id", id)
                .field("op", op)
                .finish(),
            RpcRequest::Read { argv } => f
                .debug_struct("Read")
                .field("argv", &LoggedArgv(argv))
                .finish(),
            RpcRequest::Membership(change) => f.debug_tuple("Membership").field(change).finish(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcResponse {
    Hello,
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Client(ClientOutcome),
    /// The request was refused (wrong cluster, unexpected message).
    Rejected(String),
}
