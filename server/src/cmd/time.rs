//! TIME: this node's clock, as Redis reports it (seconds, microseconds).

use bytes::Bytes;
use raftlimit_raft::Reply;

use super::Session;
use crate::shared::Shared;

pub fn time(_session: &mut Session, shared: &Shared, _argv: &[Bytes]) -> Reply {
    let ns = shared.node.config().clock.now_ns();
    Reply::Array(vec![
        Reply::bulk((ns / 1_000_000_000).to_string().into_bytes()),
        Reply::bulk(((ns / 1_000) % 1_000_000).to_string().into_bytes()),
    ])
}
