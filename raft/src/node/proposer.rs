//! Group commit: commands that arrive together become one Raft entry.
//!
//! The proposer drains everything queued since its last proposal into one
//! [`LogPayload`], stamps it with the leader's [`Clock`] and hands it to openraft.
//! It then waits until that entry is fsynced on this node before it builds
//! the next one: openraft 0.9 appends each proposal as its own entry with
//! its own fsync, one after another, so proposing every command the instant
//! it arrives would make entries of one command each and queue their
//! fsyncs. Waiting lets every command that arrives during one fsync share
//! the next entry. An idle node proposes a lone command at once, so the
//! wait adds no latency when there is nothing to share with; it does not
//! wait for commit either, so replication of one entry overlaps the local
//! append of the next.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::ClientWriteError;
use tokio::sync::{mpsc, oneshot, watch};

use super::clock::Clock;
use crate::network::ClientOutcome;
use crate::payload::{LogPayload, Proposal};
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

/// Most argument bytes one entry carries: a few huge values do not make
/// one huge entry (and AppendEntries frame); the next entry takes the rest.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// How long the proposer waits for its previous entry to reach the disk
/// before it proposes anyway: a safety valve for an append that openraft
/// never performs (leadership lost in between), not a tuning knob.
const FLUSH_WAIT_LIMIT: Duration = Duration::from_millis(20);

impl Proposer {
    /// `flushed` follows the greatest stamp the local log store has fsynced.
    pub fn spawn(
        raft: Raft,
        applied_stamp: Arc<AtomicU64>,
        flushed: watch::Receiver<u64>,
        max_batch: usize,
        clock: Clock,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(
            raft,
            applied_stamp,
            flushed,
            rx,
            max_batch.max(1),
            clock,
        ));
        Proposer { tx }
    }

    /// Queues a proposal. Never blocks: submission order is log order.
    pub fn submit(&self, proposal: Proposal) -> oneshot::Receiver<ClientOutcome> {
        let (reply, rx) = oneshot::channel();
        let proposal = proposal.detached();
        let _ = self.tx.send(Pending { proposal, reply });
        rx
    }
}

async fn run(
    raft: Raft,
    applied_stamp: Arc<AtomicU64>,
    mut flushed: watch::Receiver<u64>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    max_batch: usize,
    clock: Clock,
) {
    let batch_commands = metrics::histogram!("raftlimit_batch_commands");
    let mut last_stamp = 0u64;
    // A command that did not fit in the previous entry opens the next one.
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(first) => first,
            None => match rx.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut bytes = first.proposal.size_hint();
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(next) => {
                    bytes += next.proposal.size_hint();
                    if bytes > MAX_BATCH_BYTES {
                        carried = Some(next);
                        break;
                    }
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        // The stamp never goes backwards, not even across a leader change:
        // it is at least what this node has already applied. It also always
        // moves forward, so each entry's stamp identifies it to the
        // flush wait below.
        let stamp_ns = clock
            .now_ns()
            .max(last_stamp.saturating_add(1))
            .max(applied_stamp.load(Ordering::Acquire));
        last_stamp = stamp_ns;
        let (ops, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.proposal, p.reply)).unzip();
        batch_commands.record(ops.len() as f64);
        let payload = LogPayload {
            stamp_ns,
            ops: Arc::new(ops),
        };
        match raft.client_write_ff(payload).await {
            Ok(responder) => {
                let (done_tx, done_rx) = oneshot::channel::<()>();
                tokio::spawn(async move {
                    let outcome = responder.await;
                    drop(done_tx);
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
                            // The entry may have been appended before this
                            // node lost leadership, and may still commit under
                            // the next leader: the outcome is unknown, never
                            // "not applied". A retry with the same request id
                            // is de-duplicated.
                            let outcome = match err {
                                ClientWriteError::ForwardToLeader(_) => ClientOutcome::Unknown(
                                    "leadership changed before the write was confirmed".into(),
                                ),
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
                // Wait until the entry is on the local disk (or its fate is
                // known, or the valve opens) while the next batch gathers.
                tokio::select! {
                    _ = flushed.wait_for(|s| *s >= stamp_ns) => {}
                    _ = done_rx => {}
                    () = tokio::time::sleep(FLUSH_WAIT_LIMIT) => {}
                }
            }
            Err(fatal) => {
                for reply in replies {
                    let _ = reply.send(ClientOutcome::Unknown(format!("raft stopped: {fatal}")));
                }
            }
        }
    }
}
