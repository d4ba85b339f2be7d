//! RAFT.MEMBERS, answered from this node's view of the replicated
//! membership. RAFT.ADD and RAFT.REMOVE route as membership changes (their
//! specs in the engine's table), which the leader's Raft node carries out
//! (`raftlimit_raft::node::membership`).

use bytes::Bytes;
use raftlimit_engine::Reply;

use crate::session::Session;
use crate::shared::Shared;

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
