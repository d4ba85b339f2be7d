//! A pooled, multiplexed RPC connection to one peer.
//!
//! Requests are submitted synchronously into a queue, so the order in which
//! callers submit is the order on the wire: a follower forwarding a client's
//! pipelined commands keeps their order. One task owns the connection,
//! (re)connects on demand and writes frames; another reads responses and
//! matches them to requests by id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::frame::{decode, encode, read_frame, write_frame};
use super::message::{Envelope, RpcRequest, RpcResponse};
use super::transport::{BoxStream, NetFilter, Transport};
use crate::error::Error;
use crate::types::NodeId;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

type ResponseTx = oneshot::Sender<Result<RpcResponse, Error>>;
type Pending = Arc<Mutex<HashMap<u64, ResponseTx>>>;

struct Outgoing {
    body: RpcRequest,
    reply: ResponseTx,
}

/// Identity and plumbing a peer connection needs.
#[derive(Clone)]
pub struct PeerContext {
    pub me: NodeId,
    pub cluster: String,
    pub transport: Arc<dyn Transport>,
    pub filter: NetFilter,
}

/// A client for one peer. Dropping it closes the connection.
pub struct PeerClient {
    target: NodeId,
    tx: mpsc::UnboundedSender<Outgoing>,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient")
            .field("target", &self.target)
            .finish()
    }
}

impl PeerClient {
    pub fn new(ctx: PeerContext, target: NodeId, addr: String) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_connection(ctx, target, addr, rx));
        PeerClient { target, tx }
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Queues a request; the response (or a transport error) arrives on the
    /// returned channel. Never blocks, so submission order is wire order.
    pub fn submit(&self, body: RpcRequest) -> oneshot::Receiver<Result<RpcResponse, Error>> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(out)) = self.tx.send(Outgoing { body, reply }) {
            let _ = out.reply.send(Err(Error::Unreachable(
                self.target,
                "connection task stopped".into(),
            )));
        }
        rx
    }

    /// Submits a request and waits for its response, at most `timeout`.
    pub async fn call(&self, body: RpcRequest, timeout: Duration) -> Result<RpcResponse, Error> {
        let rx = self.submit(body);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Unreachable(self.target, "connection closed".into())),
            Err(_) => Err(Error::Unreachable(
                self.target,
                format!("no response within {timeout:?}"),
            )),
        }
    }
}

struct Live {
    writer: BufWriter<WriteHalf<BoxStream>>,
    dead: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Live {
    /// The socket closes only when both halves are gone: stop the reader
    /// too, or every dropped connection would leak a file descriptor.
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn fail_all(pending: &Pending, target: NodeId, why: &str) {
    for (_, tx) in pending.lock().drain() {
        let _ = tx.send(Err(Error::Unreachable(target, why.to_owned())));
    }
}

async fn connect(
    ctx: &PeerContext,
    target: NodeId,
    addr: &str,
    pending: &Pending,
) -> Result<Live, Error> {
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        ctx.transport.connect(addr.to_owned(), target),
    )
    .await
    .map_err(|_| Error::Unreachable(target, "connect timed out".into()))?
    .map_err(|e| Error::Unreachable(target, e.to_string()))?;
    let (reader, writer) = tokio::io::split(stream);
    let mut writer = BufWriter::new(writer);
    let hello = encode(&Envelope {
        id: 0,
        body: RpcRequest::Hello {
            from: ctx.me,
            cluster: ctx.cluster.clone(),
        },
    })?;
    write_frame(&mut writer, &hello).await?;
    writer.flush().await?;
    let dead = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_responses(
        reader,
        pending.clone(),
        dead.clone(),
        target,
    ));
    Ok(Live {
        writer,
        dead,
        reader,
    })
}

async fn read_responses(
    mut reader: ReadHalf<BoxStream>,
    pending: Pending,
    dead: Arc<AtomicBool>,
    target: NodeId,
) {
    loop {
        match read_frame(&mut reader).await {
            Ok(Some(frame)) => match decode::<Envelope<RpcResponse>>(&frame) {
                Ok(envelope) => {
                    if let Some(tx) = pending.lock().remove(&envelope.id) {
                        let _ = tx.send(Ok(envelope.body));
                    }
                }
                Err(err) => {
                    tracing::warn!(peer = target, %err, "undecodable response; closing connection");
                    break;
                }
            },
            Ok(None) => break,
            Err(err) => {
                tracing::debug!(peer = target, %err, "peer connection failed");
                break;
            }
        }
    }
    dead.store(true, Ordering::Release);
    fail_all(&pending, target, "connection lost");
}

async fn run_connection(
    ctx: PeerContext,
    target: NodeId,
    addr: String,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let mut live: Option<Live> = None;
    let mut next_id: u64 = 1;
    // Requests a frozen node "sent": never answered until it thaws.
    let mut held = Vec::new();
    while let Some(out) = rx.recv().await {
        if ctx.filter.is_frozen() {
            held.push(out.reply);
            continue;
        }
        held.clear();
        if ctx.filter.is_blocked(target) {
            live = None;
            fail_all(&pending, target, "peer is cut off");
            let _ = out
                .reply
                .send(Err(Error::Unreachable(target, "peer is cut off".into())));
            continue;
        }
        if live
            .as_ref()
            .is_some_and(|l| l.dead.load(Ordering::Acquire))
        {
            live = None;
        }
        let conn = match live.as_mut() {
            Some(conn) => conn,
            None => match connect(&ctx, target, &addr, &pending).await {
                Ok(conn) => live.insert(conn),
                Err(err) => {
                    let _ = out.reply.send(Err(err));
                    continue;
                }
            },
        };
        let id = next_id;
        next_id += 1;
        let frame = match encode(&Envelope { id, body: out.body }) {
            Ok(frame) => frame,
            Err(err) => {
                let _ = out.reply.send(Err(err));
                continue;
            }
        };
        pending.lock().insert(id, out.reply);
        let mut written = write_frame(&mut conn.writer, &frame).await;
        // Flush only when nothing else is queued: back-to-back requests share
        // one write syscall.
        if written.is_ok() && rx.is_empty() {
            written = conn.writer.flush().await.map_err(Error::from);
        }
        if let Err(err) = written {
            tracing::debug!(peer = target, %err, "write to peer failed");
            live = None;
            fail_all(&pending, target, "write failed");
        }
    }
}
