//! The RESP listener and the per-client loop: accept connections (with
//! `maxclients` and the TLS handshake), then decode what is buffered, hand
//! each command to the router (`crate::router`) in order, and write every
//! reply in order. Only this loop and `crate::connection` touch the socket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use raftlimit_engine::Reply;
use tokio::net::TcpListener;

use crate::auth;
use crate::connection::{Connection, Exchange, Limits};
use crate::router::{drain, handle, Pending};
use crate::session::{ClientInfo, Session};
use crate::shared::Shared;
use crate::tls::{TlsContext, TlsPeer};

/// Most replies held back before they are written out.
const MAX_PENDING: usize = 1024;

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
