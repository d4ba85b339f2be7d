//! The server's half of the command registry: the handlers of the commands
//! the connection answers, one file per command (or per small family), and
//! [`BINDINGS`], which binds each of them to its spec in the engine's
//! command table (`raftlimit_engine::lookup`).
//!
//! A spec says what a command is and where it runs; a binding says how the
//! server runs a [`Route::Local`](raftlimit_engine::Route) invocation and how
//! MULTI treats it. Keyspace commands need no binding: the router sends them
//! to the Raft node as their route says.
//!
//! Each handler parses its arguments and returns a reply, like mini-redis's
//! `parse_frames` → `apply`, but synchronously: none of them waits on Raft,
//! except EXEC and WATCH (`exec.rs`, `watch.rs`), which the router awaits.

mod acl;
mod client;
mod command;
mod config;
pub mod exec;
pub mod hello;
mod info;
mod multi;
mod ping;
mod quit;
mod raft;
mod role;
mod select;
mod sentinel;
mod time;
mod wait;
pub mod watch;

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use raftlimit_engine::{CommandSpec, Reply};

use crate::session::Session;
use crate::shared::Shared;

/// A connection command's handler.
pub type LocalFn = fn(&mut Session, &Shared, &[Bytes]) -> Reply;

/// Rewrites a command's arguments before they are proposed (hashing the
/// passwords of ACL SETUSER), or refuses it.
pub type PrepareFn = fn(Vec<Bytes>) -> Result<Vec<Bytes>, Reply>;

/// The user and password an authenticating command carries, if any.
pub type CredentialsFn = fn(&[Bytes]) -> Option<(&[u8], &[u8])>;

/// How the server runs a bound command.
#[derive(Clone, Copy)]
pub enum Run {
    /// Answered at once by the connection.
    Session(LocalFn),
    /// Answered by the connection from this node's user table (AUTH,
    /// HELLO … AUTH). A follower that would refuse the credentials first
    /// catches up with the leader: the user may have just been created.
    Authenticate {
        run: LocalFn,
        credentials: CredentialsFn,
    },
    /// EXEC: the queued commands go to the log as one transaction.
    Exec,
    /// WATCH: the keys are observed through a linearizable read.
    Watch,
}

/// What MULTI does with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InMulti {
    /// Queued until EXEC.
    Queue,
    /// Runs at once (MULTI, EXEC, DISCARD, WATCH, QUIT, RESET).
    RunNow,
}

/// The server's behaviour for one command of the engine's table.
#[derive(Clone, Copy)]
pub struct Binding {
    /// The spec's name in the engine's command table.
    pub name: &'static str,
    pub run: Run,
    pub in_multi: InMulti,
    /// Applied to every invocation that goes to the Raft node or is queued
    /// in MULTI.
    pub prepare: Option<PrepareFn>,
}

const fn session(name: &'static str, run: LocalFn) -> Binding {
    Binding {
        name,
        run: Run::Session(run),
        in_multi: InMulti::Queue,
        prepare: None,
    }
}

const fn now(name: &'static str, run: Run) -> Binding {
    Binding {
        name,
        run,
        in_multi: InMulti::RunNow,
        prepare: None,
    }
}

const fn authenticate(name: &'static str, run: LocalFn, credentials: CredentialsFn) -> Binding {
    Binding {
        name,
        run: Run::Authenticate { run, credentials },
        in_multi: InMulti::Queue,
        prepare: None,
    }
}

/// Every command the connection runs, by its spec's name.
pub static BINDINGS: &[Binding] = &[
    session("ping", ping::ping),
    session("echo", ping::echo),
    authenticate("hello", hello::hello, hello::hello_credentials),
    authenticate("auth", hello::auth, hello::auth_credentials),
    session("select", select::select),
    now("quit", Run::Session(quit::quit)),
    now("reset", Run::Session(quit::reset)),
    session("client", client::client),
    session("command", command::command),
    session("info", info::info),
    session("config", config::config),
    session("time", time::time),
    now("multi", Run::Session(multi::multi)),
    now("exec", Run::Exec),
    now("discard", Run::Session(multi::discard)),
    session("unwatch", multi::unwatch),
    now("watch", Run::Watch),
    session("role", role::role),
    session("raft.members", raft::members),
    session("sentinel", sentinel::sentinel),
    session("wait", wait::wait),
    // ACL's connection subcommands (WHOAMI, CAT, LOG, DRYRUN, …); the
    // replicated ones route to the Raft node, SETUSER without passwords.
    Binding {
        prepare: Some(acl::prepare_write),
        ..session("acl", acl::acl_local)
    },
];

/// The binding of `spec`, if the server runs it itself.
pub fn binding(spec: &CommandSpec) -> Option<&'static Binding> {
    static INDEX: OnceLock<HashMap<&'static str, &'static Binding>> = OnceLock::new();
    INDEX
        .get_or_init(|| BINDINGS.iter().map(|b| (b.name, b)).collect())
        .get(spec.name)
        .copied()
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

#[cfg(test)]
mod tests {
    use raftlimit_engine::{all_specs, Handler};

    use super::*;

    /// Every connection command of the engine's table has a binding, every
    /// binding names a command of the table, and only commands with
    /// connection subcommands are bound beside those.
    #[test]
    fn bindings_match_the_command_table() {
        for spec in all_specs() {
            let local = matches!(spec.handler, Handler::Local);
            let local_sub = spec
                .subcommands
                .iter()
                .any(|s| matches!(s.handler, Handler::Local))
                && matches!(spec.handler, Handler::BySubcommand);
            let read_by_loop = spec.name == "watch";
            assert_eq!(
                binding(spec).is_some(),
                local || local_sub || read_by_loop,
                "{}",
                spec.name
            );
        }
        for b in BINDINGS {
            assert!(
                raftlimit_engine::lookup(b.name.as_bytes()).is_some(),
                "{}",
                b.name
            );
        }
    }
}
