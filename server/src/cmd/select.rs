//! SELECT: raftlimit has one database, as a Redis with `databases 1`.

use bytes::Bytes;
use raftlimit_engine::{parse_i64, Reply};

use crate::session::Session;
use crate::shared::Shared;

pub fn select(_session: &mut Session, _shared: &Shared, argv: &[Bytes]) -> Reply {
    match parse_i64(&argv[1]) {
        Some(0) => Reply::Ok,
        Some(_) => Reply::error("ERR DB index is out of range"),
        None => Reply::not_integer(),
    }
}
