//! The router: takes one decoded command from the client loop, checks it
//! (it exists, arity, subcommand, NOAUTH, NOPERM) and sends it where its
//! spec's route says: the connection (`crate::cmd`), the Raft log, the read
//! path, the leader's script executor, or a membership change.
//!
//! Pipelining: writes are submitted to the Raft node as they are decoded and
//! complete together (group commit); a read waits for the connection's
//! earlier writes so a client always reads its own writes, and a write waits
//! for earlier reads so they cannot observe it. Replies wait in [`Pending`],
//! in order, until the client loop drains them.
//!
//! Architecture invariant: the router decides by the fields of a command's
//! `CommandSpec` and its [`Binding`](crate::cmd::Binding), never by the
//! command's name.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use raftlimit_engine::{
    idempotency_token, lookup, unknown_command, CommandSpec, Reply, RequestId, Route,
};

use crate::auth;
use crate::cmd::{self, InMulti, Run};
use crate::connection::Connection;
use crate::metrics::{COMMANDS_TOTAL, COMMAND_DURATION, COMMAND_ERRORS_TOTAL};
use crate::session::Session;
use crate::shared::Shared;

/// A reply, ready or still being computed, in the connection's order.
pub enum Pending {
    Ready(Reply),
    Waiting {
        reply: BoxFuture<'static, Reply>,
        is_write: bool,
    },
}

/// Times a command and counts it (and its error, if any) by name. Names come
/// from the command table, so label cardinality is bounded.
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
pub async fn drain<S>(
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

/// Runs or submits one command; its reply joins `pending`.
pub async fn handle<S>(
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
    let spec = lookup(&argv[0]);
    {
        let mut info = session.info.lock();
        info.last_active = started;
        info.last_command = spec.map_or_else(String::new, |s| s.name.to_owned());
    }
    let binding = spec.and_then(cmd::binding);
    let in_multi =
        session.multi.is_some() && !binding.is_some_and(|b| b.in_multi == InMulti::RunNow);
    let spec = match admit(shared, session, spec, &argv) {
        Ok(spec) => spec,
        Err(reply) => {
            if in_multi {
                // A command refused while queuing dooms the transaction.
                session.multi_failed = true;
            }
            match spec {
                Some(spec) => observe(spec.name, started, &reply),
                None => {
                    metrics::counter!(COMMAND_ERRORS_TOTAL, "command" => "unknown", "code" => "ERR")
                        .increment(1);
                }
            }
            pending.push_back(Pending::Ready(reply));
            return;
        }
    };
    if session.closing {
        return;
    }
    let route = spec.route(&argv);
    let prepare = binding.and_then(|b| b.prepare);
    if in_multi {
        let prepared = match prepare {
            Some(prepare) => prepare(argv),
            None => Ok(argv),
        };
        let argv = match (route, prepared) {
            (_, Ok(argv)) => argv,
            (Route::Local, Err(reply)) => {
                pending.push_back(Pending::Ready(reply));
                return;
            }
            (_, Err(reply)) => {
                session.multi_failed = true;
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
    match binding.map(|b| b.run) {
        Some(Run::Exec) => {
            drain(conn, pending, usize::MAX).await;
            let reply = cmd::exec::exec(shared, session).await;
            observe(spec.name, started, &reply);
            conn.protocol = session.protocol;
            pending.push_back(Pending::Ready(reply));
            return;
        }
        Some(Run::Watch) => {
            drain(conn, pending, usize::MAX).await;
            let reply = cmd::watch::watch(shared, session, argv).await;
            observe(spec.name, started, &reply);
            pending.push_back(Pending::Ready(reply));
            return;
        }
        _ => {}
    }
    if route == Route::Local {
        // Session commands (HELLO switches the protocol) must see every
        // earlier reply encoded first.
        drain(conn, pending, usize::MAX).await;
        let reply = match binding.map(|b| b.run) {
            Some(Run::Session(run)) => run(session, shared, &argv),
            Some(Run::Authenticate { run, credentials }) => {
                // Answered from this node's copy of the user table: on a
                // follower that would refuse, first catch up with the
                // leader, so a user just created through another node can
                // log in here.
                if auth::may_be_behind_for(shared, credentials(&argv)) {
                    shared.node.catch_up().await;
                }
                run(session, shared, &argv)
            }
            _ => Reply::error(format!(
                "ERR '{}' has no handler on this node",
                spec.full_name(&argv)
            )),
        };
        conn.protocol = session.protocol;
        observe(spec.name, started, &reply);
        pending.push_back(Pending::Ready(reply));
        return;
    }
    let command = Submitted {
        spec,
        route,
        prepare,
        started,
    };
    submit(shared, session, conn, pending, command, argv).await;
}

/// A command on its way to the Raft node.
struct Submitted {
    spec: &'static CommandSpec,
    route: Route,
    prepare: Option<cmd::PrepareFn>,
    started: Instant,
}

/// Sends a command to the Raft node: the log, the read path, the script
/// executor or a membership change.
async fn submit<S>(
    shared: &Arc<Shared>,
    session: &mut Session,
    conn: &mut Connection<S>,
    pending: &mut VecDeque<Pending>,
    command: Submitted,
    argv: Vec<Bytes>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Submitted {
        spec,
        route,
        prepare,
        started,
    } = command;
    if let Some(moved) = redirect(shared) {
        observe(spec.name, started, &moved);
        pending.push_back(Pending::Ready(moved));
        return;
    }
    let name = spec.name;
    let is_write = route != Route::Read;
    let argv = match prepare {
        Some(prepare) if is_write => match prepare(argv) {
            Ok(argv) => argv,
            Err(reply) => {
                observe(name, started, &reply);
                pending.push_back(Pending::Ready(reply));
                return;
            }
        },
        _ => argv,
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
    let future = match route {
        Route::Script => {
            // The script's own commands are checked against this user
            // on the leader.
            let user = session.info.lock().user.clone();
            shared.node.eval(user, argv).boxed()
        }
        Route::Read => shared.node.read(argv).boxed(),
        Route::Write if idempotency_token(&argv).is_some() => {
            let user = session.info.lock().user.clone();
            let id = RequestId::for_idempotent(&user, &argv);
            shared.node.write_as(id, argv).boxed()
        }
        // The node carries out RAFT.ADD/REMOVE as membership changes.
        Route::Write | Route::Membership | Route::Local => shared.node.write(argv).boxed(),
    };
    let reply = async move {
        let reply = future.await;
        observe(name, started, &reply);
        reply
    }
    .boxed();
    pending.push_back(Pending::Waiting { reply, is_write });
}

/// The checks before a command runs, in Redis's order: it exists, has the
/// right arity (and subcommand), the client is authenticated (NOAUTH), and
/// its user may run it on these keys (NOPERM). Returns the spec, or the
/// refusal. A client whose user was deleted is marked for closing.
fn admit(
    shared: &Shared,
    session: &mut Session,
    spec: Option<&'static CommandSpec>,
    argv: &[Bytes],
) -> Result<&'static CommandSpec, Reply> {
    let Some(spec) = spec else {
        return Err(unknown_command(argv));
    };
    if !spec.arity_ok(argv.len()) {
        return Err(Reply::wrong_arity(spec.name));
    }
    if let Some(reply) = spec.check_subcommand(argv) {
        return Err(reply);
    }
    match auth::check(session, shared, argv, spec) {
        auth::Verdict::Allow => Ok(spec),
        auth::Verdict::Deny(reply) => Err(reply),
        auth::Verdict::Close => {
            tracing::debug!("the connection's user was deleted; closing");
            session.closing = true;
            Ok(spec)
        }
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
