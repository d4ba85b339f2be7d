//! Outbound Raft RPC: openraft's `RaftNetwork` over [`PeerClient`].

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::message::{RpcRequest, RpcResponse};
use super::peer::{PeerClient, PeerContext};
use crate::error::Error;
use crate::types::{NodeId, NodeInfo, TypeConfig};

/// A peer's pooled client and the address it was created for.
type PooledPeer = (String, Arc<PeerClient>);

/// Keeps one replication connection per peer, separate from the
/// connections that forward client commands, so heartbeats never queue
/// behind client traffic. openraft asks for a client per replication stream
/// and per leadership check; they all share the peer's pooled connection.
#[derive(Clone)]
pub struct NetworkFactory {
    ctx: PeerContext,
    pool: Arc<Mutex<HashMap<NodeId, PooledPeer>>>,
}

impl NetworkFactory {
    pub fn new(ctx: PeerContext) -> Self {
        NetworkFactory {
            ctx,
            pool: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Self::Network {
        let mut pool = self.pool.lock();
        let client = match pool.get(&target) {
            Some((addr, client)) if *addr == node.raft_addr => client.clone(),
            _ => {
                let client = Arc::new(PeerClient::new(
                    self.ctx.clone(),
                    target,
                    node.raft_addr.clone(),
                ));
                pool.insert(target, (node.raft_addr.clone(), client.clone()));
                client
            }
        };
        PeerNetwork { client }
    }
}

/// The RPC client openraft uses to replicate to one peer.
pub struct PeerNetwork {
    client: Arc<PeerClient>,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>;

fn unreachable<E: std::error::Error>(err: Error) -> RPCError<NodeId, NodeInfo, E> {
    RPCError::Unreachable(Unreachable::new(&err))
}

fn unexpected<E: std::error::Error>(got: RpcResponse) -> RPCError<NodeId, NodeInfo, E> {
    let err = Error::Raft(format!("unexpected response: {got:?}"));
    RPCError::Unreachable(Unreachable::new(&err))
}

impl PeerNetwork {
    // The error type is openraft's, fixed by the `RaftNetwork` trait.
    #[allow(clippy::result_large_err)]
    fn remote<T, E: std::error::Error>(
        &self,
        result: Result<T, RaftError<NodeId, E>>,
    ) -> Result<T, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>> {
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.client.target(), e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        match self
            .client
            .call(RpcRequest::AppendEntries(rpc), option.hard_ttl())
            .await
        {
            Ok(RpcResponse::AppendEntries(result)) => self.remote(result),
            Ok(other) => Err(unexpected(other)),
            Err(err) => Err(unreachable(err)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self
            .client
            .call(RpcRequest::InstallSnapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(RpcResponse::InstallSnapshot(result)) => self.remote(result),
            Ok(other) => Err(unexpected(other)),
            Err(err) => Err(unreachable(err)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self
            .client
            .call(RpcRequest::Vote(rpc), option.hard_ttl())
            .await
        {
            Ok(RpcResponse::Vote(result)) => self.remote(result),
            Ok(other) => Err(unexpected(other)),
            Err(err) => Err(unreachable(err)),
        }
    }
}
