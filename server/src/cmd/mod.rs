//! Connection-level commands, one file each: they touch the session or the
//! server, not the replicated keyspace (those live in the raft crate).
//!
//! Each handler parses its arguments and returns a reply, like mini-redis's
//! `parse_frames` → `apply`, but synchronously: none of them waits on Raft.

mod client;
mod command;
mod config;
mod hello;
mod info;
mod multi;
mod ping;
mod quit;
pub mod raft;
mod role;
mod select;
mod sentinel;
mod time;
mod wait;

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use raftlimit_engine::Watch;
use raftlimit_engine::Reply;

use crate::connection::Protocol;
use crate::session::{ClientInfo, TlsPeer};
use crate::shared::Shared;

/// A connection's mutable state, as the commands here see it.
#[derive(Debug)]
pub struct Session {
    pub info: Arc<Mutex<ClientInfo>>,
    pub protocol: Protocol,
    /// Set by QUIT: close after flushing the reply.
    pub closing: bool,
    /// Commands queued since MULTI.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A queued command was rejected: EXEC will answer EXECABORT.
    pub multi_failed: bool,
    /// Keys WATCHed and the log index they were observed at.
    pub watch: Option<Watch>,
    /// Set on connections to the TLS port: what the handshake proved.
    pub tls: Option<TlsPeer>,
    /// The user authenticated by the client certificate, if any; the
    /// connection starts as this user (also in `ClientInfo::user`).
    pub cert_user: Option<String>,
    /// Who the connection is (see `crate::auth`).
    pub auth: crate::auth::AuthState,
}

impl Session {
    pub fn new(info: Arc<Mutex<ClientInfo>>) -> Self {
        Session {
            info,
            protocol: Protocol::Resp2,
            closing: false,
            multi: None,
            multi_failed: false,
            watch: None,
            tls: None,
            cert_user: None,
            auth: Default::default(),
        }
    }

    /// A session on a TLS connection. A certificate that names a user makes
    /// it the connection's user.
    pub fn with_tls(info: Arc<Mutex<ClientInfo>>, tls: TlsPeer) -> Self {
        let cert_user = tls.user.clone();
        if let Some(user) = &cert_user {
            info.lock().user = user.clone();
        }
        Session {
            tls: Some(tls),
            cert_user,
            ..Session::new(info)
        }
    }

    pub fn id(&self) -> u64 {
        self.info.lock().id
    }
}

pub type LocalFn = fn(&mut Session, &Shared, &[Bytes]) -> Reply;

/// A command answered by the connection itself.
pub struct LocalSpec {
    pub name: &'static str,
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub run: LocalFn,
}

const CONN: &[&str] = &["connection", "fast"];
const CONN_SLOW: &[&str] = &["connection", "slow"];
const ADMIN: &[&str] = &["admin", "slow", "dangerous"];
const TXN: &[&str] = &["fast", "transaction"];
const FLAGS_FAST: &[&str] = &["fast", "loading", "stale"];
const FLAGS_SLOW: &[&str] = &["loading", "stale"];
/// Commands a client may run before it authenticates.
const FLAGS_NO_AUTH: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];

static LOCAL: &[LocalSpec] = &[
    LocalSpec {
        name: "ping",
        arity: -1,
        flags: FLAGS_FAST,
        categories: CONN,
        run: ping::ping,
    },
    LocalSpec {
        name: "echo",
        arity: 2,
        flags: FLAGS_FAST,
        categories: CONN,
        run: ping::echo,
    },
    LocalSpec {
        name: "hello",
        arity: -1,
        flags: FLAGS_NO_AUTH,
        categories: CONN,
        run: hello::hello,
    },
    LocalSpec {
        name: "auth",
        arity: -2,
        flags: FLAGS_NO_AUTH,
        categories: CONN,
        run: hello::auth,
    },
    LocalSpec {
        name: "select",
        arity: 2,
        flags: FLAGS_FAST,
        categories: CONN,
        run: select::select,
    },
    LocalSpec {
        name: "quit",
        arity: -1,
        flags: FLAGS_NO_AUTH,
        categories: CONN,
        run: quit::quit,
    },
    LocalSpec {
        name: "reset",
        arity: 1,
        flags: FLAGS_NO_AUTH,
        categories: CONN,
        run: quit::reset,
    },
    LocalSpec {
        name: "client",
        arity: -2,
        flags: FLAGS_SLOW,
        categories: CONN_SLOW,
        run: client::client,
    },
    LocalSpec {
        name: "command",
        arity: -1,
        flags: FLAGS_SLOW,
        categories: CONN_SLOW,
        run: command::command,
    },
    LocalSpec {
        name: "info",
        arity: -1,
        flags: FLAGS_SLOW,
        categories: &["slow", "dangerous"],
        run: info::info,
    },
    LocalSpec {
        name: "config",
        arity: -2,
        flags: FLAGS_SLOW,
        categories: ADMIN,
        run: config::config,
    },
    LocalSpec {
        name: "time",
        arity: 1,
        flags: FLAGS_FAST,
        categories: &["fast"],
        run: time::time,
    },
    LocalSpec {
        name: "multi",
        arity: 1,
        flags: FLAGS_FAST,
        categories: TXN,
        run: multi::multi,
    },
    LocalSpec {
        name: "exec",
        arity: 1,
        flags: FLAGS_SLOW,
        categories: &["slow", "transaction"],
        run: multi::handled_by_client_loop,
    },
    LocalSpec {
        name: "discard",
        arity: 1,
        flags: FLAGS_FAST,
        categories: TXN,
        run: multi::discard,
    },
    LocalSpec {
        name: "unwatch",
        arity: 1,
        flags: FLAGS_FAST,
        categories: TXN,
        run: multi::unwatch,
    },
    LocalSpec {
        name: "role",
        arity: 1,
        flags: FLAGS_FAST,
        categories: &["admin", "fast", "dangerous"],
        run: role::role,
    },
    LocalSpec {
        name: "raft.members",
        arity: 1,
        flags: FLAGS_SLOW,
        categories: ADMIN,
        run: raft::members,
    },
    LocalSpec {
        name: "sentinel",
        arity: -2,
        flags: FLAGS_SLOW,
        categories: ADMIN,
        run: sentinel::sentinel,
    },
    LocalSpec {
        name: "wait",
        arity: 3,
        flags: FLAGS_SLOW,
        categories: &["slow", "connection"],
        run: wait::wait,
    },
];

/// Finds a connection-level command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static LocalSpec> {
    LOCAL
        .iter()
        .find(|spec| name.eq_ignore_ascii_case(spec.name.as_bytes()))
}

pub fn all() -> &'static [LocalSpec] {
    LOCAL
}

/// The lower-cased first argument (a subcommand), or empty.
fn subcommand(argv: &[Bytes]) -> String {
    argv.get(1)
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .unwrap_or_default()
}

/// Redis's reply to an unknown subcommand.
fn unknown_subcommand(command: &str, argv: &[Bytes]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(argv.get(1).map_or(&b""[..], |b| &b[..])),
        command.to_ascii_uppercase()
    ))
}
