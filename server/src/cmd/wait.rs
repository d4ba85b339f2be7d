//! WAIT: Raft already waited for a majority before acknowledging any write,
//! so this answers at once with the number of replicas holding the log up to
//! this node's commit index.

use bytes::Bytes;
use raftlimit_engine::{parse_i64, Reply};

use crate::session::Session;
use crate::shared::Shared;

pub fn wait(_session: &mut Session, shared: &Shared, argv: &[Bytes]) -> Reply {
    // Redis's checks and texts: any integer is a replica count, the timeout
    // must not be negative.
    if parse_i64(&argv[1]).is_none() {
        return Reply::not_integer();
    }
    match parse_i64(&argv[2]) {
        None => return Reply::error("ERR timeout is not an integer or out of range"),
        Some(timeout) if timeout < 0 => return Reply::error("ERR timeout is negative"),
        Some(_) => {}
    }
    let status = shared.node.status();
    let replicas = if status.is_leader {
        shared
            .node
            .replication()
            .values()
            .filter(|&&matched| matched >= status.commit_index)
            .count()
    } else {
        // Every committed entry is on a majority of the voters: at least
        // that many besides the leader.
        shared.node.membership().voters.len() / 2
    };
    Reply::Int(replicas as i64)
}
