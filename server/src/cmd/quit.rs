//! QUIT and RESET.

use bytes::Bytes;
use raftlimit_engine::Reply;

use crate::connection::Protocol;
use crate::session::Session;
use crate::shared::Shared;

pub fn quit(session: &mut Session, _shared: &Shared, _argv: &[Bytes]) -> Reply {
    session.closing = true;
    Reply::Ok
}

/// Returns the connection to its initial state: RESP2, no name, the
/// default user (authenticated only if it needs no password).
pub fn reset(session: &mut Session, shared: &Shared, _argv: &[Bytes]) -> Reply {
    session.protocol = Protocol::Resp2;
    session.multi = None;
    session.multi_failed = false;
    session.watch = None;
    {
        let mut info = session.info.lock();
        info.name = None;
        info.protocol = Protocol::Resp2;
    }
    crate::auth::reset(session, shared);
    Reply::status("RESET")
}
