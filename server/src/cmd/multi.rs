//! MULTI, DISCARD and UNWATCH: the session side of transactions. EXEC and
//! WATCH need the cluster and are completed by the client loop
//! (`listener.rs`), which queues commands while a transaction is open.

use bytes::Bytes;
use raftlimit_engine::Reply;

use super::Session;
use crate::shared::Shared;

pub fn multi(session: &mut Session, _shared: &Shared, _argv: &[Bytes]) -> Reply {
    if session.multi.is_some() {
        return Reply::error("ERR MULTI calls can not be nested");
    }
    session.multi = Some(Vec::new());
    session.multi_failed = false;
    Reply::Ok
}

pub fn discard(session: &mut Session, _shared: &Shared, _argv: &[Bytes]) -> Reply {
    if session.multi.take().is_none() {
        return Reply::error("ERR DISCARD without MULTI");
    }
    session.watch = None;
    Reply::Ok
}

pub fn unwatch(session: &mut Session, _shared: &Shared, _argv: &[Bytes]) -> Reply {
    session.watch = None;
    Reply::Ok
}

/// EXEC's and WATCH's table entries: the client loop runs them, so reaching
/// this means a bug in routing.
pub fn handled_by_client_loop(_session: &mut Session, _shared: &Shared, argv: &[Bytes]) -> Reply {
    Reply::error(format!(
        "ERR {} is handled by the connection",
        String::from_utf8_lossy(&argv[0])
    ))
}
