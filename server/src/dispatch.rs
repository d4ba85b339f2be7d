//! Decides where a command runs: in the connection (PING, HELLO, …), through
//! the Raft log (writes), or against the applied state after a read barrier
//! (reads). The membership changes (RAFT.ADD, RAFT.REMOVE) take the write
//! path, which brings them to the leader; the Raft node executes them as
//! membership changes rather than log commands.

use bytes::Bytes;
use raftlimit_engine::{self as commands, Spec};

use crate::cmd::{self, LocalSpec};

/// Where a command goes.
pub enum Route {
    Local(&'static LocalSpec),
    Keyspace(&'static Spec),
    Unknown,
}

/// Routes `argv` (non-empty) by its command name. ACL is split: its
/// replicated subcommands take the keyspace path, the others stay local.
pub fn route(argv: &[Bytes]) -> Route {
    let name = &argv[0];
    if let Some(spec) = cmd::lookup(name) {
        Route::Local(spec)
    } else if let Some(spec) = cmd::raft::lookup(name) {
        Route::Keyspace(spec)
    } else if let Some(spec) = commands::lookup(name) {
        if spec.name == "acl" && crate::auth::acl_cmd::is_local(argv) {
            return Route::Local(&crate::auth::acl_cmd::ACL_LOCAL);
        }
        Route::Keyspace(spec)
    } else {
        Route::Unknown
    }
}
