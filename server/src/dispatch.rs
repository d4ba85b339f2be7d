//! Decides where a command runs: in the connection (PING, HELLO, …), through
//! the Raft log (writes), or against the applied state after a read barrier
//! (reads).

use bytes::Bytes;
use raftlimit_raft::commands::{self, Spec};

use crate::cmd::{self, LocalSpec};

/// Where a command goes.
pub enum Route {
    Local(&'static LocalSpec),
    Keyspace(&'static Spec),
    Unknown,
}

pub fn route(name: &Bytes) -> Route {
    if let Some(spec) = cmd::lookup(name) {
        Route::Local(spec)
    } else if let Some(spec) = commands::lookup(name) {
        Route::Keyspace(spec)
    } else {
        Route::Unknown
    }
}
