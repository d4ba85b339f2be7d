//! TIME: this node's clock, as Redis reports it (seconds, microseconds).

use bytes::Bytes;
use raftlimit_engine::Reply;
use raftlimit_raft::node::wall_clock_ns;

use crate::session::Session;
use crate::shared::Shared;

pub fn time(_session: &mut Session, _shared: &Shared, _argv: &[Bytes]) -> Reply {
    let ns = wall_clock_ns();
    Reply::Array(vec![
        Reply::bulk((ns / 1_000_000_000).to_string().into_bytes()),
        Reply::bulk(((ns / 1_000) % 1_000_000).to_string().into_bytes()),
    ])
}
