//! PING and ECHO.

use bytes::Bytes;
use raftlimit_engine::Reply;

use crate::session::Session;
use crate::shared::Shared;

pub fn ping(_session: &mut Session, _shared: &Shared, argv: &[Bytes]) -> Reply {
    match argv.len() {
        1 => Reply::status("PONG"),
        2 => Reply::Bulk(argv[1].clone()),
        _ => Reply::wrong_arity("ping"),
    }
}

pub fn echo(_session: &mut Session, _shared: &Shared, argv: &[Bytes]) -> Reply {
    Reply::Bulk(argv[1].clone())
}
