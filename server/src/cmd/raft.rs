//! The membership commands: RAFT.MEMBERS (answered here, from this node's
//! view of the replicated membership) and RAFT.ADD / RAFT.REMOVE, which take
//! the write path so they reach the leader from any node; the Raft node
//! turns them into openraft membership changes (see
//! `raftlimit_raft::node::membership`).

use bytes::Bytes;
use raftlimit_engine::{Handler, Spec, WriteCtx};
use raftlimit_raft::node::membership;
use raftlimit_engine::Reply;

use super::Session;
use crate::shared::Shared;

const FLAGS: &[&str] = &["admin", "noscript", "loading", "stale"];
const CATEGORIES: &[&str] = &["admin", "slow", "dangerous"];

/// RAFT.ADD and RAFT.REMOVE as the keyspace path sees them: writes without
/// keys. The raft node intercepts them before the log, so the handler only
/// runs if one reaches the state machine some other way (it cannot).
pub static MEMBERSHIP_SPECS: [Spec; 2] = [spec(membership::ADD), spec(membership::REMOVE)];

/// `RAFT.ADD <id>` or `RAFT.REMOVE <id>`: the same shape, named `name`.
const fn spec(name: &'static str) -> Spec {
    Spec {
        name,
        arity: 2,
        flags: FLAGS,
        first_key: 0,
        last_key: 0,
        step: 0,
        categories: CATEGORIES,
        handler: Handler::Write(not_in_log),
    }
}

fn not_in_log(_ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    Reply::error(format!(
        "ERR {} cannot run inside a transaction or a script",
        String::from_utf8_lossy(&argv[0]).to_ascii_uppercase()
    ))
}

/// The membership command named `name`, if it is one.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    MEMBERSHIP_SPECS
        .iter()
        .find(|spec| name.eq_ignore_ascii_case(spec.name.as_bytes()))
}

/// RAFT.MEMBERS: every node of the membership, by id: its role (`voter` or
/// `learner`), its addresses, and whether this node sees it as the leader.
pub fn members(_session: &mut Session, shared: &Shared, _argv: &[Bytes]) -> Reply {
    let view = shared.node.membership();
    let leader = shared.node.status().leader;
    let nodes = view
        .nodes
        .iter()
        .map(|(id, info)| {
            let role = if view.voters.contains(id) {
                "voter"
            } else {
                "learner"
            };
            Reply::Map(vec![
                (Reply::bulk("id"), Reply::Int(*id as i64)),
                (Reply::bulk("role"), Reply::bulk(role)),
                (
                    Reply::bulk("resp_addr"),
                    Reply::bulk(info.resp_addr.clone()),
                ),
                (
                    Reply::bulk("raft_addr"),
                    Reply::bulk(info.raft_addr.clone()),
                ),
                (
                    Reply::bulk("leader"),
                    Reply::Int(i64::from(leader == Some(*id))),
                ),
            ])
        })
        .collect();
    Reply::Array(nodes)
}
