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
use parking_lot::Mutex;
use raftlimit_engine::unknown_command;
use raftlimit_engine::Watch;
use raftlimit_engine::Reply;
use tokio::net::TcpListener;

use crate::auth;
use crate::cmd::Session;
use crate::connection::{Connection, Exchange, Limits};
use crate::dispatch::{route, Route};
use crate::metrics::{COMMANDS_TOTAL, COMMAND_DURATION, COMMAND_ERRORS_TOTAL};
use crate::session::{ClientInfo, TlsPeer};
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

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    accept_loop(listener, shared, None).await
}

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
        if shared.clients.len() >= shared.config.limits.maxclients {
            shared
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            match tls.clone() {
                None => {
                    tokio::spawn(reject(stream));
                }
                Some(tls) => {
                    tokio::spawn(async move {
                        if let Ok((stream, _)) = tls.accept_client(stream).await {
                            reject(stream).await;
                        }
                    });
                }
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(addr);
        // Registered before the next accept, so `maxclients` holds exactly.
        let info = shared.clients.register(addr, local);
        let shared = shared.clone();
        match tls.clone() {
            None => {
                tokio::spawn(serve_client(stream, info, shared, None));
            }
            Some(tls) => {
                // The handshake runs on the connection's own task, so a slow
                // client cannot hold up the accept loop.
                tokio::spawn(async move {
                    match tls.accept_client(stream).await {
                        Ok((stream, peer)) => serve_client(stream, info, shared, Some(peer)).await,
                        Err(err) => {
                            let id = info.lock().id;
                            shared.clients.unregister(id);
                            tracing::debug!(%addr, %err, "TLS handshake failed; closing");
                        }
                    }
                });
            }
        }
    }
}

async fn reject<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut conn = Connection::new(stream);
    conn.queue(&Reply::error("ERR max number of clients reached"));
    let _ = tokio::time::timeout(CLOSING_FLUSH, conn.flush()).await;
}

/// Times a command and counts it (and its error, if any) by name. Names come
/// from the command tables, so label cardinality is bounded.
fn observe(name: &'static str, started: Instant, reply: &Reply) {
    metrics::histogram!(COMMAND_DURATION, "command" => name)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(COMMANDS_TOTAL, "command" => name).increment(1);
    if let Some(code) = reply.error_code() {
        let code = match code {
            "ERR" | "WRONGTYPE" | "CLUSTERDOWN" | "TRYAGAIN" | "NOPERM" | "NOAUTH"
            | "WRONGPASS" | "NOSCRIPT" => code,
            _ => "OTHER",
        };
        metrics::counter!(COMMAND_ERRORS_TOTAL, "command" => name, "code" => code.to_owned())
            .increment(1);
    }
}

/// Encodes the pending replies in order. Stops early, returning false, if
/// the queued output passes `output_limit`.
async fn drain<S>(
    conn: &mut Connection<S>,
    pending: &mut VecDeque<Pending>,
    output_limit: usize,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(item) = pending.pop_front() {
        let reply = match item {
            Pending::Ready(reply) => reply,
            Pending::Waiting { reply, .. } => reply.await,
        };
        conn.queue(&reply);
        if conn.queued_len() > output_limit {
            return false;
        }
    }
    true
}

fn limits(shared: &Shared) -> Limits {
    Limits {
        max_bulk_len: shared.config.limits.proto_max_bulk_len,
        max_multibulk_len: shared.config.limits.max_multibulk_len,
        unauthenticated: false,
    }
}

/// Longest wait for a last reply (an error, a refusal) to go out before closing.
const CLOSING_FLUSH: Duration = Duration::from_secs(5);

/// Writes what is queued, waiting at most [`CLOSING_FLUSH`].
async fn flush_and_close<S>(conn: &mut Connection<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // A clean close (TLS close_notify), so the client sees the reply
    // followed by the end of the stream rather than a truncation.
    let _ = tokio::time::timeout(CLOSING_FLUSH, async {
        conn.flush().await?;
        conn.shutdown().await
    })
    .await;
}

/// Serves one client until it leaves, breaks the protocol, idles past
/// `timeout`, or exceeds the output limit. `info` must already be registered
/// in `shared.clients`; it is unregistered on return. Any stream works (TCP,
/// TLS).
pub async fn serve_client<S>(
    stream: S,
    info: Arc<Mutex<ClientInfo>>,
    shared: Arc<Shared>,
    tls: Option<TlsPeer>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let (id, addr) = {
        let info = info.lock();
        (info.id, info.addr)
    };
    let mut session = match tls {
        Some(peer) => Session::with_tls(info, peer),
        None => Session::new(info),
    };
    let mut conn = Connection::new(stream);
    if auth::protected_mode_denies(&shared, addr.ip()) {
        conn.queue(&Reply::error(auth::PROTECTED_MODE_DENIED));
        flush_and_close(&mut conn).await;
        shared.clients.unregister(id);
        return;
    }
    auth::on_connect(&mut session, &shared);
    // A client certificate that names a user (`auth_clients_user = "cn"`)
    // authenticates the connection as that user, like Redis's
    // `tls-auth-clients-user`.
    if let Some(user) = session.cert_user.clone() {
        if auth::authenticate_as(&mut session, &shared, &user).is_err() {
            tracing::debug!(user = %user, "certificate names no enabled user; staying unauthenticated");
        }
    }
    client_loop(&mut conn, &mut session, id, addr, &shared).await;
    shared.clients.unregister(id);
}

/// The per-client loop: decode, check, run or submit, reply.
async fn client_loop<S>(
    conn: &mut Connection<S>,
    session: &mut Session,
    id: u64,
    addr: SocketAddr,
    shared: &Arc<Shared>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let base_limits = limits(shared);
    let idle = Duration::from_secs(shared.config.limits.timeout);
    let output_limit = shared.config.limits.output_buffer_limit;
    let mut pending: VecDeque<Pending> = VecDeque::new();
    // `timeout` counts from the last complete command (or reply taken by the
    // client), not the last byte: a client trickling a command byte by byte
    // is closed like an idle one.
    let mut last_activity = Instant::now();
    'conn: loop {
        loop {
            let limits = auth::decode_limits(session, shared, &base_limits);
            let argv = match conn.buffered_command(&limits) {
                Ok(Some(argv)) => argv,
                Ok(None) => break,
                Err(err) => {
                    if drain(conn, &mut pending, output_limit).await {
                        conn.queue(&Reply::error(format!("ERR {err}")));
                        flush_and_close(conn).await;
                    }
                    tracing::debug!(client = id, %err, "protocol error; closing");
                    return;
                }
            };
            if auth::is_cross_protocol(&argv) {
                // Dropped without a reply, as Redis does.
                auth::warn_cross_protocol(shared, addr);
                return;
            }
            last_activity = Instant::now();
            handle(shared, session, conn, &mut pending, argv).await;
            if session.closing {
                break;
            }
            if pending.len() >= MAX_PENDING && !drain(conn, &mut pending, output_limit).await {
                break 'conn;
            }
            if conn.queued_len() > output_limit {
                break 'conn;
            }
        }
        if !drain(conn, &mut pending, output_limit).await {
            break;
        }
        if session.closing {
            flush_and_close(conn).await;
            return;
        }
        // Write the replies; take more requests meanwhile if the client is
        // not reading, and wait for the next one once all are written.
        loop {
            let activity = conn
                .last_write()
                .map_or(last_activity, |w| w.max(last_activity));
            let io = async {
                match conn.exchange().await? {
                    Exchange::Flushed => Ok(if conn.fill().await? {
                        Exchange::Input
                    } else {
                        Exchange::Eof
                    }),
                    other => Ok(other),
                }
            };
            let result: std::io::Result<Exchange> = if idle.is_zero() {
                io.await
            } else {
                match tokio::time::timeout_at((activity + idle).into(), io).await {
                    Ok(result) => result,
                    // Replies were taken meanwhile: not idle, wait again.
                    Err(_) if conn.last_write().is_some_and(|w| w > activity) => continue,
                    Err(_) => {
                        tracing::debug!(client = id, "idle timeout; closing");
                        return;
                    }
                }
            };
            match result {
                Ok(Exchange::Input) => continue 'conn,
                Ok(Exchange::Eof) => {
                    // The client may half-close and still read its replies.
                    flush_and_close(conn).await;
                    return;
                }
                Ok(Exchange::Flushed) | Err(_) => return,
            }
        }
    }
    tracing::warn!(
        client = id,
        "Client id={id} addr={addr} scheduled to be closed ASAP for overcoming of output buffer limits."
    );
}

async fn handle<S>(
    shared: &Arc<Shared>,
    session: &mut Session,
    conn: &mut Connection<S>,
    pending: &mut VecDeque<Pending>,
    argv: Vec<Bytes>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    shared
        .stats
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let route = route(&argv);
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
    let in_multi = session.multi.is_some()
        && !matches!(
            &name[..],
            b"exec" | b"discard" | b"multi" | b"watch" | b"quit" | b"reset"
        );
    if let Some(reply) = admit(shared, session, &route, &argv) {
        if in_multi {
            // A command refused while queuing dooms the transaction.
            session.multi_failed = true;
        }
        match &route {
            Route::Local(spec) => observe(spec.name, started, &reply),
            Route::Keyspace(spec) => observe(spec.name, started, &reply),
            Route::Unknown => {
                metrics::counter!(COMMAND_ERRORS_TOTAL, "command" => "unknown", "code" => "ERR")
                    .increment(1);
            }
        }
        pending.push_back(Pending::Ready(reply));
        return;
    }
    if session.closing {
        return;
    }
    if in_multi {
        let argv = match (&route, auth::acl_cmd::prepare_write(argv)) {
            (Route::Keyspace(_), Ok(argv)) => argv,
            (Route::Keyspace(_), Err(reply)) => {
                session.multi_failed = true;
                pending.push_back(Pending::Ready(reply));
                return;
            }
            (_, Ok(argv)) => argv,
            (_, Err(reply)) => {
                pending.push_back(Pending::Ready(reply));
                return;
            }
        };
        if let Some(queue) = session.multi.as_mut() {
            queue.push(argv);
        }
        pending.push_back(Pending::Ready(Reply::status("QUEUED")));
        return;
    }
    match &name[..] {
        b"exec" => {
            drain(conn, pending, usize::MAX).await;
            let reply = exec(shared, session).await;
            observe("exec", started, &reply);
            conn.protocol = session.protocol;
            pending.push_back(Pending::Ready(reply));
            return;
        }
        b"watch" => {
            drain(conn, pending, usize::MAX).await;
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
            drain(conn, pending, usize::MAX).await;
            // AUTH is answered from this node's copy of the user table: on a
            // follower that would refuse, first catch up with the leader, so
            // a user just created through another node can log in here.
            if auth::may_be_behind_for(shared, &argv) {
                shared.node.catch_up().await;
            }
            let reply = (spec.run)(session, shared, &argv);
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
            let name = spec.name;
            let is_write = spec.writes(&argv);
            let argv = if is_write {
                match auth::acl_cmd::prepare_write(argv) {
                    Ok(argv) => argv,
                    Err(reply) => {
                        observe(name, started, &reply);
                        pending.push_back(Pending::Ready(reply));
                        return;
                    }
                }
            } else {
                argv
            };
            // Consecutive writes share entries and consecutive reads share a
            // read barrier, but a read must not run before an earlier write
            // of this connection, nor after a later one: alternation drains.
            if pending
                .iter()
                .any(|p| matches!(p, Pending::Waiting { is_write: w, .. } if *w != is_write))
            {
                drain(conn, pending, usize::MAX).await;
            }
            let future = if raftlimit_engine::EVAL_COMMANDS.contains(&name) {
                // The script's own commands are checked against this user
                // on the leader.
                let user = session.info.lock().user.clone();
                shared.node.eval(user, argv).boxed()
            } else if is_write {
                if raftlimit_engine::idempotency_token(&argv).is_some() {
                    let user = session.info.lock().user.clone();
                    let id = raftlimit_engine::RequestId::for_idempotent(&user, &argv);
                    shared.node.write_as(id, argv).boxed()
                } else {
                    shared.node.write(argv).boxed()
                }
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
        Route::Unknown => {}
    }
}

/// The checks before a command runs, in Redis's order: it exists, has the
/// right arity, the client is authenticated (NOAUTH), and its user may run
/// it on these keys (NOPERM). Returns the refusal, if any. A client whose
/// user was deleted is marked for closing.
fn admit(shared: &Shared, session: &mut Session, route: &Route, argv: &[Bytes]) -> Option<Reply> {
    let arity = match route {
        Route::Local(spec) => spec.arity,
        Route::Keyspace(spec) => spec.arity,
        Route::Unknown => return Some(unknown_command(argv)),
    };
    let checked = auth::Checked::of(route)?;
    if !raftlimit_engine::arity_ok(arity, argv.len()) {
        return Some(Reply::wrong_arity(checked.name));
    }
    if checked.name == "acl" {
        if let Some(reply) = auth::acl_cmd::precheck(argv) {
            return Some(reply);
        }
    }
    match auth::check(session, shared, argv, &checked) {
        auth::Verdict::Allow => None,
        auth::Verdict::Deny(reply) => Some(reply),
        auth::Verdict::Close => {
            tracing::debug!("the connection's user was deleted; closing");
            session.closing = true;
            None
        }
    }
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
        match route(&argv) {
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
