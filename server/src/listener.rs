//! The RESP listener and the per-client loop: decode what is buffered, run
//! or submit each command in order, then write every reply in order.
//!
//! Pipelining: writes are submitted to the Raft node as they are decoded and
//! complete together (group commit); a read waits for the connection's
//! earlier writes so a client always reads its own writes, and a write waits
//! for earlier reads so they cannot observe it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use raftlimit_raft::commands::unknown_command;
use raftlimit_raft::payload::Watch;
use raftlimit_raft::Reply;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::cmd::Session;
use crate::connection::{Connection, Limits};
use crate::dispatch::{route, Route};
use crate::metrics::{COMMANDS_TOTAL, COMMAND_DURATION, COMMAND_ERRORS_TOTAL};
use crate::session::TlsPeer;
use crate::shared::Shared;
use crate::tls::TlsContext;

/// Most replies held back before they are written out.
const MAX_PENDING: usize = 1024;

enum Pending {
    Ready(Reply),
    Waiting {
        reply: BoxFuture<'static, Reply>,
        is_write: bool,
    },
}

/// Serves plaintext RESP clients on `listener`.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    accept_loop(listener, shared, None).await
}

/// Serves RESP clients over TLS on `listener`. A connection whose handshake
/// fails (plaintext, a rejected certificate, a timeout) is closed.
pub async fn serve_tls(listener: TcpListener, shared: Arc<Shared>, tls: Arc<TlsContext>) {
    accept_loop(listener, shared, Some(tls)).await
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: Option<Arc<TlsContext>>) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                // Out of file descriptors and similar: back off, keep serving.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        shared
            .stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        let over_limit = shared.clients.len() >= shared.config.limits.maxclients;
        if over_limit {
            shared
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
        }
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(addr);
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            // The handshake runs on the connection's own task, so a slow
            // client cannot hold up the accept loop.
            match tls {
                None if over_limit => reject(stream).await,
                None => client_loop(stream, addr, local, shared, None).await,
                Some(tls) => match tls.accept_client(stream).await {
                    Ok((stream, _)) if over_limit => reject(stream).await,
                    Ok((stream, peer)) => {
                        client_loop(stream, addr, local, shared, Some(peer)).await
                    }
                    Err(err) => tracing::debug!(%addr, %err, "TLS handshake failed; closing"),
                },
            }
        });
    }
}

async fn reject<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    let mut conn = Connection::new(stream);
    conn.queue(&Reply::error("ERR max number of clients reached"));
    let _ = conn.shutdown().await;
}

/// Times a command and counts it (and its error, if any) by name. Names come
/// from the command tables, so label cardinality is bounded.
fn observe(name: &'static str, started: Instant, reply: &Reply) {
    metrics::histogram!(COMMAND_DURATION, "command" => name)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(COMMANDS_TOTAL, "command" => name).increment(1);
    if let Some(code) = reply.error_code() {
        let code = match code {
            "ERR" | "WRONGTYPE" | "CLUSTERDOWN" | "TRYAGAIN" | "NOPERM" | "NOAUTH" | "NOSCRIPT" => {
                code
            }
            _ => "OTHER",
        };
        metrics::counter!(COMMAND_ERRORS_TOTAL, "command" => name, "code" => code.to_owned())
            .increment(1);
    }
}

async fn drain<S>(conn: &mut Connection<S>, pending: &mut VecDeque<Pending>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(item) = pending.pop_front() {
        let reply = match item {
            Pending::Ready(reply) => reply,
            Pending::Waiting { reply, .. } => reply.await,
        };
        conn.queue(&reply);
    }
}

fn limits(shared: &Shared) -> Limits {
    Limits {
        max_bulk_len: shared.config.limits.proto_max_bulk_len,
        max_multibulk_len: shared.config.limits.max_multibulk_len,
    }
}

/// One client, over any stream (TCP or TLS): `tls` carries what the TLS
/// handshake proved, if there was one.
async fn client_loop<S>(
    stream: S,
    addr: SocketAddr,
    local: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<TlsPeer>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let info = shared.clients.register(addr, local);
    let id = info.lock().id;
    let mut session = match tls {
        Some(peer) => Session::with_tls(info.clone(), peer),
        None => Session::new(info.clone()),
    };
    let mut conn = Connection::new(stream);
    let limits = limits(&shared);
    let idle = Duration::from_secs(shared.config.limits.timeout);
    let output_limit = shared.config.limits.output_buffer_limit;
    let mut pending: VecDeque<Pending> = VecDeque::new();
    'conn: loop {
        loop {
            let argv = match conn.buffered_command(&limits) {
                Ok(Some(argv)) => argv,
                Ok(None) => break,
                Err(err) => {
                    drain(&mut conn, &mut pending).await;
                    conn.queue(&Reply::error(format!("ERR {err}")));
                    let _ = conn.flush().await;
                    tracing::debug!(client = id, %err, "protocol error; closing");
                    break 'conn;
                }
            };
            handle(&shared, &mut session, &mut conn, &mut pending, argv).await;
            if session.closing {
                break;
            }
            if pending.len() >= MAX_PENDING {
                drain(&mut conn, &mut pending).await;
            }
            if conn.queued_len() > output_limit {
                tracing::warn!(client = id, "output buffer limit reached; closing");
                break 'conn;
            }
        }
        drain(&mut conn, &mut pending).await;
        if conn.flush().await.is_err() {
            break;
        }
        if session.closing {
            // A clean close (TLS close_notify), so the client sees the reply
            // followed by the end of the stream rather than a truncation.
            let _ = conn.shutdown().await;
            break;
        }
        let more = if idle.is_zero() {
            conn.fill().await
        } else {
            match tokio::time::timeout(idle, conn.fill()).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::debug!(client = id, "idle timeout; closing");
                    break;
                }
            }
        };
        if !matches!(more, Ok(true)) {
            break;
        }
    }
    shared.clients.unregister(id);
}

async fn handle<S>(
    shared: &Arc<Shared>,
    session: &mut Session,
    conn: &mut Connection<S>,
    pending: &mut VecDeque<Pending>,
    argv: Vec<Bytes>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    shared
        .stats
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let route = route(&argv[0]);
    {
        let mut info = session.info.lock();
        info.last_active = started;
        info.last_command = match &route {
            Route::Local(spec) => spec.name.to_owned(),
            Route::Keyspace(spec) => spec.name.to_owned(),
            Route::Unknown => String::new(),
        };
    }
    let name = argv[0].to_ascii_lowercase();
    if session.multi.is_some()
        && !matches!(
            &name[..],
            b"exec" | b"discard" | b"multi" | b"watch" | b"quit" | b"reset"
        )
    {
        pending.push_back(Pending::Ready(queue_in_transaction(session, &route, argv)));
        return;
    }
    match &name[..] {
        b"exec" => {
            drain(conn, pending).await;
            let reply = exec(shared, session).await;
            observe("exec", started, &reply);
            conn.protocol = session.protocol;
            pending.push_back(Pending::Ready(reply));
            return;
        }
        b"watch" => {
            drain(conn, pending).await;
            let reply = watch(shared, session, argv).await;
            observe("watch", started, &reply);
            pending.push_back(Pending::Ready(reply));
            return;
        }
        _ => {}
    }
    match route {
        Route::Local(spec) => {
            // Session commands (HELLO switches the protocol) must see every
            // earlier reply encoded first.
            drain(conn, pending).await;
            let reply = if raftlimit_raft::commands::arity_ok(spec.arity, argv.len()) {
                (spec.run)(session, shared, &argv)
            } else {
                Reply::wrong_arity(spec.name)
            };
            conn.protocol = session.protocol;
            observe(spec.name, started, &reply);
            pending.push_back(Pending::Ready(reply));
        }
        Route::Keyspace(spec) => {
            if let Some(moved) = redirect(shared) {
                observe(spec.name, started, &moved);
                pending.push_back(Pending::Ready(moved));
                return;
            }
            if !spec.arity_ok(argv.len()) {
                let reply = Reply::wrong_arity(spec.name);
                observe(spec.name, started, &reply);
                pending.push_back(Pending::Ready(reply));
                return;
            }
            let name = spec.name;
            let is_write = spec.is_write();
            // Consecutive writes share entries and consecutive reads share a
            // read barrier, but a read must not run before an earlier write
            // of this connection, nor after a later one: alternation drains.
            if pending
                .iter()
                .any(|p| matches!(p, Pending::Waiting { is_write: w, .. } if *w != is_write))
            {
                drain(conn, pending).await;
            }
            let future = if is_write {
                shared.node.write(argv).boxed()
            } else {
                shared.node.read(argv).boxed()
            };
            let reply = async move {
                let reply = future.await;
                observe(name, started, &reply);
                reply
            }
            .boxed();
            pending.push_back(Pending::Waiting { reply, is_write });
        }
        Route::Unknown => {
            metrics::counter!(COMMAND_ERRORS_TOTAL, "command" => "unknown", "code" => "ERR")
                .increment(1);
            pending.push_back(Pending::Ready(unknown_command(&argv)));
        }
    }
}

/// Queues a command inside MULTI, or rejects it (and dooms the transaction)
/// if it is unknown or has the wrong number of arguments, as Redis does.
fn queue_in_transaction(session: &mut Session, route: &Route, argv: Vec<Bytes>) -> Reply {
    let rejection = match route {
        Route::Unknown => Some(unknown_command(&argv)),
        Route::Local(spec) if !raftlimit_raft::commands::arity_ok(spec.arity, argv.len()) => {
            Some(Reply::wrong_arity(spec.name))
        }
        Route::Keyspace(spec) if !spec.arity_ok(argv.len()) => Some(Reply::wrong_arity(spec.name)),
        _ => None,
    };
    if let Some(reply) = rejection {
        session.multi_failed = true;
        return reply;
    }
    if let Some(queue) = session.multi.as_mut() {
        queue.push(argv);
    }
    Reply::status("QUEUED")
}

/// EXEC: the queued keyspace commands go to the log as one transaction,
/// applied atomically; queued connection commands run here, in their place.
async fn exec(shared: &Arc<Shared>, session: &mut Session) -> Reply {
    let Some(queued) = session.multi.take() else {
        return Reply::error("ERR EXEC without MULTI");
    };
    let watch = session.watch.take();
    if std::mem::take(&mut session.multi_failed) {
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    let mut keyspace_commands = Vec::new();
    let mut slots = Vec::with_capacity(queued.len());
    for argv in queued {
        match route(&argv[0]) {
            Route::Local(spec) => slots.push(Some((spec, argv))),
            _ => {
                slots.push(None);
                keyspace_commands.push(argv);
            }
        }
    }
    let mut results = match shared.node.transaction(watch, keyspace_commands).await {
        Reply::Array(results) => results.into_iter(),
        // A watched key changed (nil), or the cluster could not take it.
        other => return other,
    };
    let replies = slots
        .into_iter()
        .map(|slot| match slot {
            Some((spec, argv)) => (spec.run)(session, shared, &argv),
            None => results
                .next()
                .unwrap_or_else(|| Reply::error("ERR missing transaction reply")),
        })
        .collect();
    Reply::Array(replies)
}

/// WATCH: observes the keys through a linearizable read and remembers the
/// log index they were seen at; EXEC aborts if any changed after it.
async fn watch(shared: &Arc<Shared>, session: &mut Session, argv: Vec<Bytes>) -> Reply {
    if session.multi.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    if argv.len() < 2 {
        return Reply::wrong_arity("watch");
    }
    let keys = argv[1..].to_vec();
    match shared.node.read(argv).await {
        Reply::Int(index) => {
            let index = index.max(0) as u64;
            let watch = session.watch.get_or_insert(Watch {
                index,
                keys: Vec::new(),
            });
            // Several WATCH calls: the earliest observation covers them all.
            watch.index = watch.index.min(index);
            watch.keys.extend(keys);
            Reply::Ok
        }
        other => other,
    }
}

/// In redirect mode, a follower answers keyspace commands with
/// `MOVED 0 leader:port` instead of forwarding them (slot 0: the whole
/// keyspace is one slot), for cluster-mode clients.
fn redirect(shared: &Shared) -> Option<Reply> {
    if shared.config.cluster.follower_mode != crate::config::FollowerMode::Redirect {
        return None;
    }
    let status = shared.node.status();
    if status.is_leader {
        return None;
    }
    let (_, leader) = shared.node.leader()?;
    Some(Reply::error(format!("MOVED 0 {}", leader.resp_addr)))
}
