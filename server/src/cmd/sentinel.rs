//! The SENTINEL commands HA-aware clients use to find the primary
//! (redis-py's `Sentinel`, go-redis's `FailoverClient`, ioredis): every node
//! acts as a sentinel for the cluster, and the master it names is the
//! current Raft leader. The master's name is `[cluster] name`.

use bytes::Bytes;
use raftlimit_engine::Reply;
use raftlimit_raft::{NodeId, NodeInfo};

use super::role::split_addr;
use super::{subcommand, unknown_subcommand};
use crate::session::Session;
use crate::shared::Shared;

/// Sentinel's state tables: a map in RESP3, a flat `field value …` array in RESP2.
fn table(fields: Vec<(&str, String)>) -> Reply {
    Reply::Map(
        fields
            .into_iter()
            .map(|(k, v)| {
                (
                    Reply::bulk(k.to_owned().into_bytes()),
                    Reply::bulk(v.into_bytes()),
                )
            })
            .collect(),
    )
}

fn run_id(id: NodeId) -> String {
    format!("{id:040x}")
}

fn master_table(shared: &Shared, leader: NodeId, info: &NodeInfo) -> Reply {
    let (ip, port) = split_addr(&info.resp_addr);
    let members = shared.node.members();
    table(vec![
        ("name", shared.config.cluster.name.clone()),
        ("ip", ip),
        ("port", port.to_string()),
        ("runid", run_id(leader)),
        ("flags", "master".into()),
        ("link-pending-commands", "0".into()),
        ("link-refcount", "1".into()),
        ("last-ping-sent", "0".into()),
        ("last-ok-ping-reply", "0".into()),
        ("last-ping-reply", "0".into()),
        (
            "down-after-milliseconds",
            shared.config.raft.election_timeout_max_ms.to_string(),
        ),
        ("info-refresh", "0".into()),
        ("role-reported", "master".into()),
        ("role-reported-time", "0".into()),
        ("config-epoch", shared.node.status().term.to_string()),
        ("num-slaves", members.len().saturating_sub(1).to_string()),
        (
            "num-other-sentinels",
            members.len().saturating_sub(1).to_string(),
        ),
        ("quorum", (members.len() / 2 + 1).to_string()),
        (
            "failover-timeout",
            shared.config.raft.no_leader_timeout_ms.to_string(),
        ),
        ("parallel-syncs", "1".into()),
    ])
}

fn replica_table(id: NodeId, info: &NodeInfo, leader: &NodeInfo) -> Reply {
    let (ip, port) = split_addr(&info.resp_addr);
    let (master_host, master_port) = split_addr(&leader.resp_addr);
    table(vec![
        ("name", info.resp_addr.clone()),
        ("ip", ip),
        ("port", port.to_string()),
        ("runid", run_id(id)),
        ("flags", "slave".into()),
        ("link-pending-commands", "0".into()),
        ("link-refcount", "1".into()),
        ("master-link-down-time", "0".into()),
        ("master-link-status", "ok".into()),
        ("master-host", master_host),
        ("master-port", master_port.to_string()),
        ("slave-priority", "100".into()),
        ("slave-repl-offset", "0".into()),
    ])
}

fn sentinel_table(id: NodeId, info: &NodeInfo) -> Reply {
    let (ip, port) = split_addr(&info.resp_addr);
    table(vec![
        ("name", run_id(id)),
        ("ip", ip),
        ("port", port.to_string()),
        ("runid", run_id(id)),
        ("flags", "sentinel".into()),
        ("link-pending-commands", "0".into()),
        ("link-refcount", "1".into()),
        ("voted-leader", "?".into()),
    ])
}

pub fn sentinel(_session: &mut Session, shared: &Shared, argv: &[Bytes]) -> Reply {
    let sub = subcommand(argv);
    let name_ok = |i: usize| {
        argv.get(i)
            .is_some_and(|n| n[..] == *shared.config.cluster.name.as_bytes())
    };
    let leader = shared.node.leader();
    let members = shared.node.members();
    match sub.as_str() {
        "get-master-addr-by-name" if argv.len() == 3 => match (&leader, name_ok(2)) {
            (Some((_, info)), true) => {
                let (ip, port) = split_addr(&info.resp_addr);
                Reply::Array(vec![
                    Reply::bulk(ip.into_bytes()),
                    Reply::bulk(port.to_string().into_bytes()),
                ])
            }
            _ => Reply::NilArray,
        },
        "masters" if argv.len() == 2 => Reply::Array(
            leader
                .iter()
                .map(|(id, info)| master_table(shared, *id, info))
                .collect(),
        ),
        "master" if argv.len() == 3 => match (&leader, name_ok(2)) {
            (Some((id, info)), true) => master_table(shared, *id, info),
            _ => Reply::error("ERR No such master with that name"),
        },
        "replicas" | "slaves" if argv.len() == 3 => match (&leader, name_ok(2)) {
            (Some((leader_id, leader_info)), true) => Reply::Array(
                members
                    .iter()
                    .filter(|(id, _)| *id != leader_id)
                    .map(|(id, info)| replica_table(*id, info, leader_info))
                    .collect(),
            ),
            _ => Reply::error("ERR No such master with that name"),
        },
        "sentinels" if argv.len() == 3 => {
            if !name_ok(2) {
                return Reply::error("ERR No such master with that name");
            }
            let me = shared.node.id();
            Reply::Array(
                members
                    .iter()
                    .filter(|(id, _)| **id != me)
                    .map(|(id, info)| sentinel_table(*id, info))
                    .collect(),
            )
        }
        "myid" if argv.len() == 2 => Reply::bulk(run_id(shared.node.id()).into_bytes()),
        _ => unknown_subcommand("sentinel", argv),
    }
}
