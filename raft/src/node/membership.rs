//! Membership changes (`RAFT.ADD`, `RAFT.REMOVE`): which changes are
//! allowed, and carrying them out on the leader through openraft's joint
//! consensus.
//!
//! Decisions:
//! - A removed voter stays a learner. The leader keeps replicating to it, so
//!   it knows it no longer votes and who leads (clients connected to it are
//!   still served, by forwarding), and adding it back only has to promote
//!   it. The leader itself is the exception, because openraft keeps a
//!   leader that is merely a learner in office: removing the leader drops
//!   it from the membership, it steps down once that applies, the remaining
//!   voters elect a successor, and the successor adds every configured node
//!   missing from the membership back as a learner.
//! - Only nodes of the static cluster configuration can be added: their
//!   addresses come from there, never from the command.
//! - A node is promoted only once it has replicated the leader's log up to
//!   the moment of the request, so a voter that is down or far behind is
//!   never added (it would make the quorum harder to reach).
//! - The last voter cannot be removed; a change while another one is still
//!   in its joint phase is refused (openraft allows one at a time). A joint
//!   configuration left behind by a leader that failed half-way is completed
//!   by the next change request before that request is considered.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use raftlimit_engine::Reply;

use crate::network::MembershipChange;
use crate::types::{NodeId, NodeInfo};

/// The command names, lower-case.
pub const ADD: &str = "raft.add";
pub const REMOVE: &str = "raft.remove";

/// The voters, learners and addresses of one membership configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipView {
    /// Nodes that vote (in either half of a joint configuration).
    pub voters: BTreeSet<NodeId>,
    /// Nodes that replicate the log without voting.
    pub learners: BTreeSet<NodeId>,
    /// Every node's addresses.
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// A change is half-way: the old and the new voter sets both decide.
    pub joint: bool,
    /// In a joint configuration, the voter set it is changing to.
    pub next_voters: Option<BTreeSet<NodeId>>,
    /// The log index of the entry that set this configuration.
    pub log_index: Option<u64>,
}

impl MembershipView {
    /// Reads the view out of openraft's stored membership.
    pub fn of(stored: &crate::types::StoredMembership) -> Self {
        let membership = stored.membership();
        MembershipView {
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            nodes: membership
                .nodes()
                .map(|(id, info)| (*id, info.clone()))
                .collect(),
            joint: membership.get_joint_config().len() > 1,
            next_voters: match membership.get_joint_config().as_slice() {
                [_, next] => Some(next.clone()),
                _ => None,
            },
            log_index: stored.log_id().as_ref().map(|l| l.index),
        }
    }
}

/// What the leader has to do for an allowed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make `id` a voter; first add it as a learner at `info` when it is not
    /// in the membership at all.
    Promote {
        id: NodeId,
        add_learner: Option<NodeInfo>,
    },
    /// Turn voter `id` into a learner.
    Demote(NodeId),
}

/// Recognises `RAFT.ADD <id>` and `RAFT.REMOVE <id>`: `None` for any other
/// command, the change or the error reply for these.
pub fn parse_command(argv: &[Bytes]) -> Option<Result<MembershipChange, Reply>> {
    let name = argv.first()?;
    let (name, make): (&str, fn(NodeId) -> MembershipChange) =
        if name.eq_ignore_ascii_case(ADD.as_bytes()) {
            (ADD, MembershipChange::Add)
        } else if name.eq_ignore_ascii_case(REMOVE.as_bytes()) {
            (REMOVE, MembershipChange::Remove)
        } else {
            return None;
        };
    if argv.len() != 2 {
        return Some(Err(Reply::wrong_arity(name)));
    }
    let id = std::str::from_utf8(&argv[1])
        .ok()
        .and_then(|s| s.parse::<NodeId>().ok())
        .filter(|&id| id > 0);
    Some(match id {
        Some(id) => Ok(make(id)),
        None => Err(Reply::error(format!(
            "ERR invalid node id '{}'",
            String::from_utf8_lossy(&argv[1])
        ))),
    })
}

/// Decides whether `change` is allowed on `view`, given the statically
/// `configured` nodes; the refusal is the client's error reply.
pub fn plan(
    change: MembershipChange,
    view: &MembershipView,
    configured: &BTreeMap<NodeId, NodeInfo>,
) -> Result<Step, Reply> {
    let id = change.node();
    let known = configured.contains_key(&id) || view.nodes.contains_key(&id);
    match change {
        MembershipChange::Remove(_) if !known => {
            return Err(Reply::error(format!("ERR unknown node id {id}")))
        }
        MembershipChange::Add(_) if !configured.contains_key(&id) => {
            return Err(Reply::error(format!(
                "ERR node {id} is not in the cluster configuration; only configured nodes can be added"
            )))
        }
        _ => {}
    }
    if view.joint {
        return Err(Reply::error(
            "ERR another membership change is in progress; retry",
        ));
    }
    match change {
        MembershipChange::Remove(_) => {
            if !view.voters.contains(&id) {
                Err(Reply::error(format!("ERR node {id} is not a voter")))
            } else if view.voters.len() <= 1 {
                Err(Reply::error(format!(
                    "ERR node {id} is the last voter and cannot be removed"
                )))
            } else {
                Ok(Step::Demote(id))
            }
        }
        MembershipChange::Add(_) => {
            if view.voters.contains(&id) {
                return Err(Reply::error(format!("ERR node {id} is already a voter")));
            }
            let add_learner = if view.nodes.contains_key(&id) {
                None
            } else {
                configured.get(&id).cloned()
            };
            Ok(Step::Promote { id, add_learner })
        }
    }
}

/// The error reply when a node to add has not caught up in time.
pub fn not_caught_up(id: NodeId) -> Reply {
    Reply::error(format!(
        "ERR node {id} has not caught up with the leader's log (is it running?); it stays a learner, retry RAFT.ADD"
    ))
}

/// The error reply when a change's fate is unknown.
pub fn unknown_outcome() -> Reply {
    Reply::error(
        "TRYAGAIN membership change outcome unknown: the leader changed while it was under way; check RAFT.MEMBERS",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: NodeId) -> NodeInfo {
        NodeInfo {
            resp_addr: format!("127.0.0.1:{}", 6000 + n),
            raft_addr: format!("127.0.0.1:{}", 7000 + n),
        }
    }

    fn configured() -> BTreeMap<NodeId, NodeInfo> {
        (1..=3).map(|n| (n, info(n))).collect()
    }

    fn view(voters: &[NodeId], learners: &[NodeId]) -> MembershipView {
        MembershipView {
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
            nodes: voters
                .iter()
                .chain(learners)
                .map(|&n| (n, info(n)))
                .collect(),
            joint: false,
            next_voters: None,
            log_index: Some(1),
        }
    }

    fn error(result: Result<Step, Reply>) -> String {
        match result {
            Err(Reply::Error(text)) => text,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_commands() {
        let argv = |a: &[&str]| -> Vec<Bytes> {
            a.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        };
        assert_eq!(parse_command(&argv(&["GET", "k"])), None);
        assert_eq!(
            parse_command(&argv(&["raft.add", "2"])),
            Some(Ok(MembershipChange::Add(2)))
        );
        assert_eq!(
            parse_command(&argv(&["RAFT.REMOVE", "3"])),
            Some(Ok(MembershipChange::Remove(3)))
        );
        assert_eq!(
            parse_command(&argv(&["RAFT.REMOVE"])),
            Some(Err(Reply::wrong_arity("raft.remove")))
        );
        for bad in ["x", "0", "-1", ""] {
            assert_eq!(
                parse_command(&argv(&["RAFT.ADD", bad])),
                Some(Err(Reply::error(format!("ERR invalid node id '{bad}'"))))
            );
        }
    }

    #[test]
    fn remove_demotes_a_voter_but_never_the_last() {
        let c = configured();
        assert_eq!(
            plan(MembershipChange::Remove(2), &view(&[1, 2, 3], &[]), &c),
            Ok(Step::Demote(2))
        );
        assert_eq!(
            plan(MembershipChange::Remove(1), &view(&[1, 3], &[2]), &c),
            Ok(Step::Demote(1))
        );
        assert_eq!(
            error(plan(MembershipChange::Remove(3), &view(&[3], &[1, 2]), &c)),
            "ERR node 3 is the last voter and cannot be removed"
        );
        assert_eq!(
            error(plan(MembershipChange::Remove(2), &view(&[1, 3], &[2]), &c)),
            "ERR node 2 is not a voter"
        );
        assert_eq!(
            error(plan(
                MembershipChange::Remove(9),
                &view(&[1, 2, 3], &[]),
                &c
            )),
            "ERR unknown node id 9"
        );
    }

    #[test]
    fn add_promotes_configured_nodes_only() {
        let c = configured();
        assert_eq!(
            plan(MembershipChange::Add(2), &view(&[1, 3], &[2]), &c),
            Ok(Step::Promote {
                id: 2,
                add_learner: None
            })
        );
        // Not in the membership at all: added as a learner first, at its
        // configured addresses.
        assert_eq!(
            plan(MembershipChange::Add(2), &view(&[1, 3], &[]), &c),
            Ok(Step::Promote {
                id: 2,
                add_learner: Some(info(2))
            })
        );
        assert_eq!(
            error(plan(MembershipChange::Add(2), &view(&[1, 2, 3], &[]), &c)),
            "ERR node 2 is already a voter"
        );
        assert_eq!(
            error(plan(MembershipChange::Add(4), &view(&[1, 2, 3], &[]), &c)),
            "ERR node 4 is not in the cluster configuration; only configured nodes can be added"
        );
    }

    #[test]
    fn one_change_at_a_time() {
        let mut joint = view(&[1, 2, 3], &[]);
        joint.joint = true;
        for change in [MembershipChange::Add(2), MembershipChange::Remove(2)] {
            assert_eq!(
                error(plan(change, &joint, &configured())),
                "ERR another membership change is in progress; retry"
            );
        }
    }
}
