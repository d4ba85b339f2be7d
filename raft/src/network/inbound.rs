//! Inbound RPC: accepts peer connections and dispatches their requests to
//! openraft or to the local client API.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use raftlimit_engine::{RequestId, WriteOp};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::client_api::{ClientOutcome, MembershipChange};
use super::frame::{decode, encode, read_frame, write_frame};
use super::message::{Envelope, RpcRequest, RpcResponse};
use super::transport::{BoxStream, NetFilter, Transport};
use crate::types::{NodeId, Raft};

/// What the inbound server needs from the node it serves.
pub trait RpcHandler: Send + Sync + 'static {
    fn raft(&self) -> &Raft;
    fn cluster_name(&self) -> &str;
    fn filter(&self) -> &NetFilter;
    /// Whether `node` is a configured cluster member.
    fn is_member(&self, node: NodeId) -> bool;
    /// Enqueues a forwarded write *before returning*, so writes are proposed
    /// in the order they arrived; the future resolves to its outcome.
    fn forwarded_write(&self, id: RequestId, op: WriteOp) -> BoxFuture<'static, ClientOutcome>;
    fn forwarded_read(&self, argv: Vec<Bytes>) -> BoxFuture<'static, ClientOutcome>;
    /// Carries out a forwarded membership change if this node leads.
    fn forwarded_membership(
        self: Arc<Self>,
        change: MembershipChange,
    ) -> BoxFuture<'static, ClientOutcome>;
}

/// Accepts peer connections until the listener fails or the task is dropped.
pub async fn serve<H: RpcHandler>(
    listener: TcpListener,
    transport: Arc<dyn Transport>,
    handler: Arc<H>,
) {
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(%err, "raft listener accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let transport = transport.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            match transport.accept(tcp).await {
                Ok((stream, proven)) => serve_connection(stream, proven, handler).await,
                Err(err) => tracing::warn!(%addr, %err, "rejected peer connection"),
            }
        });
    }
}

async fn serve_connection<H: RpcHandler>(
    stream: BoxStream,
    proven: Option<NodeId>,
    handler: Arc<H>,
) {
    let (mut reader, writer) = tokio::io::split(stream);
    // The first frame must introduce a member of this cluster; with mTLS its
    // claimed id must match the certificate.
    let from = match read_frame(&mut reader).await {
        Ok(Some(frame)) => match decode::<Envelope<RpcRequest>>(&frame) {
            Ok(Envelope {
                body: RpcRequest::Hello { from, cluster },
                ..
            }) if cluster == handler.cluster_name()
                && handler.is_member(from)
                && proven.is_none_or(|p| p == from) =>
            {
                from
            }
            _ => {
                tracing::warn!("peer failed the handshake; closing");
                return;
            }
        },
        _ => return,
    };
    if handler.filter().is_blocked(from) {
        return;
    }
    let (tx, rx) = mpsc::unbounded_channel::<Envelope<RpcResponse>>();
    let writer_task = tokio::spawn(write_responses(BufWriter::new(writer), rx));
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(err) => {
                tracing::debug!(peer = from, %err, "peer connection closed");
                break;
            }
        };
        if handler.filter().is_blocked(from) {
            break;
        }
        if handler.filter().is_frozen() {
            continue;
        }
        let Envelope { id, body } = match decode::<Envelope<RpcRequest>>(&frame) {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!(peer = from, %err, "undecodable rpc frame; closing");
                break;
            }
        };
        dispatch(&handler, id, body, tx.clone());
    }
    drop(tx);
    let _ = writer_task.await;
}

fn dispatch<H: RpcHandler>(
    handler: &Arc<H>,
    id: u64,
    body: RpcRequest,
    tx: mpsc::UnboundedSender<Envelope<RpcResponse>>,
) {
    let respond = move |body: RpcResponse| {
        let _ = tx.send(Envelope { id, body });
    };
    match body {
        RpcRequest::Hello { .. } => respond(RpcResponse::Rejected("duplicate hello".into())),
        RpcRequest::AppendEntries(rpc) => {
            let raft = handler.raft().clone();
            tokio::spawn(async move {
                respond(RpcResponse::AppendEntries(raft.append_entries(rpc).await))
            });
        }
        RpcRequest::Vote(rpc) => {
            let raft = handler.raft().clone();
            tokio::spawn(async move { respond(RpcResponse::Vote(raft.vote(rpc).await)) });
        }
        RpcRequest::InstallSnapshot(rpc) => {
            let raft = handler.raft().clone();
            tokio::spawn(async move {
                respond(RpcResponse::InstallSnapshot(
                    raft.install_snapshot(rpc).await,
                ))
            });
        }
        RpcRequest::Write { id: request, op } => {
            let outcome = handler.forwarded_write(request, op);
            tokio::spawn(async move { respond(RpcResponse::Client(outcome.await)) });
        }
        RpcRequest::Read { argv } => {
            let outcome = handler.forwarded_read(argv);
            tokio::spawn(async move { respond(RpcResponse::Client(outcome.await)) });
        }
        RpcRequest::Membership(change) => {
            let outcome = handler.clone().forwarded_membership(change);
            tokio::spawn(async move { respond(RpcResponse::Client(outcome.await)) });
        }
    }
}

async fn write_responses(
    mut writer: BufWriter<tokio::io::WriteHalf<BoxStream>>,
    mut rx: mpsc::UnboundedReceiver<Envelope<RpcResponse>>,
) {
    while let Some(envelope) = rx.recv().await {
        let frame = match encode(&envelope) {
            Ok(frame) => frame,
            Err(err) => {
                tracing::error!(%err, "cannot encode rpc response");
                continue;
            }
        };
        if write_frame(&mut writer, &frame).await.is_err() {
            return;
        }
        if rx.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
}
