//! MULTI, DISCARD and UNWATCH: the session side of transactions. EXEC and
//! WATCH need the cluster (`exec.rs`, `watch.rs`); the router queues
//! commands while a transaction is open.

use bytes::Bytes;
use raftlimit_engine::Reply;

use crate::session::Session;
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
