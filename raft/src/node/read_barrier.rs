//! Batched ReadIndex: concurrent linearizable reads share one leadership
//! confirmation round.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::types::{NodeId, Raft};

/// Why a read barrier failed.
#[derive(Debug, Clone)]
pub enum BarrierError {
    /// This node is not (or no longer) the leader.
    NotLeader(Option<NodeId>),
    /// Leadership could not be confirmed in time (no quorum reachable).
    Timeout,
}

type Waiter = oneshot::Sender<Result<(), BarrierError>>;

#[derive(Clone)]
pub struct ReadBarrier {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl ReadBarrier {
    pub fn spawn(raft: Raft, timeout: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx, timeout));
        ReadBarrier { tx }
    }

    /// Resolves once every write committed before this call is applied
    /// locally and this node was leader at some point after the call.
    pub async fn wait(&self) -> Result<(), BarrierError> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(tx).is_err() {
            return Err(BarrierError::NotLeader(None));
        }
        rx.await.unwrap_or(Err(BarrierError::NotLeader(None)))
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Waiter>, timeout: Duration) {
    while let Some(first) = rx.recv().await {
        // Only waiters that arrived before the round starts may share it;
        // later ones wait for the next round.
        let mut waiters = vec![first];
        while let Ok(next) = rx.try_recv() {
            waiters.push(next);
        }
        let result = match tokio::time::timeout(timeout, raft.ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(BarrierError::NotLeader(
                err.forward_to_leader().and_then(|f| f.leader_id),
            )),
            Err(_) => Err(BarrierError::Timeout),
        };
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}
