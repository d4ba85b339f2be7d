//! Group commit: commands that arrive together become one Raft entry.
//!
//! The proposer drains everything queued since its last proposal into one
//! [`LogPayload`], stamps it with the leader's [`Clock`] and hands it to openraft
//! without waiting for the previous entry to commit. openraft in turn hands
//! the log store batches of entries, which are written with one fsync.

use std::sync::Arc;

use openraft::error::ClientWriteError;
use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot};

use super::clock::Clock;
use crate::network::ClientOutcome;
use crate::payload::{LogPayload, Proposal};
use crate::storage::AppliedState;
use crate::types::Raft;

struct Pending {
    proposal: Proposal,
    reply: oneshot::Sender<ClientOutcome>,
}

/// Handle to the proposer task.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Proposer {
    pub fn spawn(
        raft: Raft,
        state: Arc<RwLock<AppliedState>>,
        max_batch: usize,
        clock: Clock,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, state, rx, max_batch.max(1), clock));
        Proposer { tx }
    }

    /// Queues a proposal. Never blocks: submission order is log order.
    pub fn submit(&self, proposal: Proposal) -> oneshot::Receiver<ClientOutcome> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Pending { proposal, reply });
        rx
    }
}

async fn run(
    raft: Raft,
    state: Arc<RwLock<AppliedState>>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    max_batch: usize,
    clock: Clock,
) {
    let mut last_stamp = 0u64;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // The stamp never goes backwards, not even across a leader change:
        // it is at least what this node has already applied.
        let applied_stamp = state.read().last_stamp_ns;
        let stamp_ns = clock.now_ns().max(last_stamp).max(applied_stamp);
        last_stamp = stamp_ns;
        let (ops, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.proposal, p.reply)).unzip();
        metrics::histogram!("raftlimit_batch_commands").record(ops.len() as f64);
        match raft.client_write_ff(LogPayload { stamp_ns, ops }).await {
            Ok(responder) => {
                tokio::spawn(async move {
                    let outcome = responder.await;
                    match outcome {
                        Ok(Ok(response)) => {
                            let mut results = response.data.replies.into_iter();
                            for reply in replies {
                                let outcome =
                                    results.next().map(ClientOutcome::Reply).unwrap_or_else(|| {
                                        ClientOutcome::Unknown("missing reply".into())
                                    });
                                let _ = reply.send(outcome);
                            }
                        }
                        Ok(Err(err)) => {
                            // The entry may still commit under the next leader:
                            // report the outcome as unknown; a retry with the
                            // same request id is de-duplicated.
                            let outcome = match err {
                                ClientWriteError::ForwardToLeader(fwd) => {
                                    ClientOutcome::NotLeader {
                                        leader: fwd.leader_id,
                                    }
                                }
                                other => ClientOutcome::Unknown(other.to_string()),
                            };
                            for reply in replies {
                                let _ = reply.send(outcome.clone());
                            }
                        }
                        Err(_) => {
                            for reply in replies {
                                let _ =
                                    reply.send(ClientOutcome::Unknown("leadership lost".into()));
                            }
                        }
                    }
                });
            }
            Err(fatal) => {
                for reply in replies {
                    let _ = reply.send(ClientOutcome::Unknown(format!("raft stopped: {fatal}")));
                }
            }
        }
    }
}
