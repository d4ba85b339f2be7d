//! `raftlimit status`: what each node says about the cluster.
//!
//! Each seed is asked directly (`INFO replication` for its own Raft view,
//! `RAFT.MEMBERS` for the membership), because a node that cannot be
//! reached is exactly what an operator running `status` wants to see.
//! Lag is measured against the leader's commit index, readiness as the
//! nodes' `/readyz` defines it: a known leader and everything committed applied.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use redis::Value;

use crate::client::{value_text, Client};
use crate::error::ClientError;

use super::{print, EXIT_DENIED, EXIT_ERROR, EXIT_OK};

#[derive(Debug, Default, Clone)]
struct Row {
    addr: String,
    reachable: bool,
    id: Option<u64>,
    leader_id: Option<u64>,
    term: Option<u64>,
    commit: Option<u64>,
    applied: Option<u64>,
    membership: Option<String>,
    seed: bool,
}

fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// RAFT.MEMBERS in RESP2: one flat field/value array per member.
fn parse_members(value: &Value) -> Vec<BTreeMap<String, String>> {
    let Value::Array(members) = value else {
        return Vec::new();
    };
    members
        .iter()
        .filter_map(|m| match m {
            Value::Array(fields) => Some(
                fields
                    .chunks(2)
                    .filter_map(|pair| match pair {
                        [k, v] => Some((value_text(k)?, value_text(v)?)),
                        _ => None,
                    })
                    .collect(),
            ),
            Value::Map(pairs) => Some(
                pairs
                    .iter()
                    .filter_map(|(k, v)| Some((value_text(k)?, value_text(v)?)))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

pub(super) async fn run(
    client: &Client,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, ClientError> {
    let nodes = client.nodes();
    let timeout = client
        .config()
        .connect_timeout
        .max(Duration::from_millis(500));
    let mut info_cmd = redis::cmd("INFO");
    info_cmd.arg("replication");
    let members_cmd = redis::cmd("RAFT.MEMBERS");
    let asks = (0..nodes.len()).map(|i| {
        let (info_cmd, members_cmd) = (&info_cmd, &members_cmd);
        async move {
            let info = tokio::time::timeout(timeout, client.execute_on(i, info_cmd)).await;
            let members = tokio::time::timeout(timeout, client.execute_on(i, members_cmd)).await;
            (i, info, members)
        }
    });
    let answers = futures::future::join_all(asks).await;
    let mut rows = Vec::new();
    let mut members: Vec<BTreeMap<String, String>> = Vec::new();
    for (i, info, member_reply) in answers {
        let mut row = Row {
            addr: nodes[i].to_string(),
            seed: true,
            ..Row::default()
        };
        if let Ok(Ok(value)) = info {
            if let Some(text) = value_text(&value) {
                let info = parse_info(&text);
                let num = |k: &str| info.get(k).and_then(|v| v.parse::<u64>().ok());
                row.reachable = true;
                row.id = num("raft_node_id");
                row.leader_id = num("raft_leader_id");
                row.term = num("raft_term");
                row.commit = num("raft_commit_index");
                row.applied = num("raft_applied_index");
            }
        }
        if let Ok(Ok(value)) = member_reply {
            let view = parse_members(&value);
            if view.len() > members.len() || row.leader_id == row.id {
                members = view;
            }
        }
        rows.push(row);
    }
    if !rows.iter().any(|r| r.reachable) {
        return Err(ClientError::Unavailable(format!(
            "no node answered: {}",
            nodes
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for member in &members {
        let id = member.get("id").and_then(|v| v.parse::<u64>().ok());
        let role = member.get("role").cloned();
        match rows.iter_mut().find(|r| r.id.is_some() && r.id == id) {
            Some(row) => row.membership = role,
            None => rows.push(Row {
                addr: member.get("resp_addr").cloned().unwrap_or_default(),
                id,
                membership: role,
                ..Row::default()
            }),
        }
    }
    let leader_id = rows
        .iter()
        .filter_map(|r| r.leader_id)
        .max_by_key(|id| rows.iter().filter(|r| r.leader_id == Some(*id)).count());
    let leader = rows
        .iter()
        .find(|r| r.reachable && r.id.is_some() && r.id == leader_id);
    let leader_commit = leader.and_then(|r| r.commit);
    let term = leader
        .and_then(|r| r.term)
        .or_else(|| rows.iter().filter_map(|r| r.term).max());
    let ready = |r: &Row| {
        r.reachable && r.leader_id.is_some() && r.applied >= r.commit && r.applied.is_some()
    };
    let lag = |r: &Row| match (leader_commit.or(r.commit), r.applied) {
        (Some(c), Some(a)) => Some(c.saturating_sub(a)),
        _ => None,
    };
    let healthy = leader.is_some() && rows.iter().all(ready);
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let value = serde_json::json!({
        "leader": leader_id,
        "term": term,
        "commit_index": leader_commit,
        "healthy": healthy,
        "nodes": rows.iter().map(|r| serde_json::json!({
            "id": r.id,
            "address": r.addr,
            "reachable": r.reachable,
            "seed": r.seed,
            "role": role_of(r, leader_id),
            "membership": r.membership,
            "term": r.term,
            "commit_index": r.commit,
            "applied_index": r.applied,
            "lag": lag(r),
            "ready": ready(r),
        })).collect::<Vec<_>>(),
    });
    let mut text = format!(
        "{:<5} {:<22} {:<9} {:<8} {:>6} {:>9} {:>9} {:>6}  {}\n",
        "NODE", "ADDRESS", "ROLE", "MEMBER", "TERM", "COMMIT", "APPLIED", "LAG", "READY"
    );
    for r in &rows {
        text.push_str(&format!(
            "{:<5} {:<22} {:<9} {:<8} {:>6} {:>9} {:>9} {:>6}  {}\n",
            opt(r.id),
            r.addr,
            role_of(r, leader_id),
            r.membership.as_deref().unwrap_or("-"),
            opt(r.term),
            opt(r.commit),
            opt(r.applied),
            opt(lag(r)),
            if ready(r) { "yes" } else { "no" },
        ));
    }
    text.push_str(&match leader {
        Some(l) => format!(
            "leader: node {} ({}), term {}",
            opt(l.id),
            l.addr,
            opt(term)
        ),
        None => "leader: none".to_string(),
    });
    print(out, json, value, text)?;
    Ok(if healthy {
        EXIT_OK
    } else if leader.is_some() {
        EXIT_DENIED
    } else {
        EXIT_ERROR
    })
}

fn role_of(r: &Row, leader_id: Option<u64>) -> &'static str {
    if !r.reachable {
        if r.seed {
            "down"
        } else {
            "unknown"
        }
    } else if r.id.is_some() && r.id == leader_id {
        "leader"
    } else {
        "follower"
    }
}
