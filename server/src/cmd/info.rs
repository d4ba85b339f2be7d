//! INFO: server, clients, memory, stats, replication (with Raft fields) and
//! keyspace sections, in Redis's `field:value` format.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use raftlimit_engine::Reply;

use super::hello::REDIS_VERSION;
use crate::session::Session;
use crate::shared::Shared;

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "stats",
    "replication",
    "keyspace",
];

/// Resident memory of this process, from /proc (0 where unavailable).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "K", "M", "G"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

fn section(shared: &Shared, name: &str, out: &mut String) {
    let status = shared.node.status();
    match name {
        "server" => {
            let uptime = shared.started.elapsed().as_secs();
            let _ = write!(
                out,
                "# Server\r\nredis_version:{REDIS_VERSION}\r\nraftlimit_version:{}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nexecutable:raftlimit-server\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                shared.run_id,
                shared.config.resp_addr.port(),
                uptime / 86_400,
            );
        }
        "clients" => {
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n",
                shared.clients.len(),
                shared.config.limits.maxclients,
            );
        }
        "memory" => {
            let rss = resident_bytes();
            let _ = write!(
                out,
                "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n",
                human(rss),
                human(rss),
            );
        }
        "stats" => {
            let stats = &shared.stats;
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\n",
                stats.connections_received.load(Ordering::Relaxed),
                stats.commands_processed.load(Ordering::Relaxed),
                stats.rejected_connections.load(Ordering::Relaxed),
            );
        }
        "replication" => {
            let members = shared.node.members();
            let _ = write!(out, "# Replication\r\n");
            if status.is_leader {
                let followers: Vec<_> =
                    members.iter().filter(|(id, _)| **id != status.id).collect();
                let _ = write!(
                    out,
                    "role:master\r\nconnected_slaves:{}\r\n",
                    followers.len()
                );
                for (i, (id, info)) in followers.iter().enumerate() {
                    let (ip, port) = info
                        .resp_addr
                        .rsplit_once(':')
                        .unwrap_or((&info.resp_addr, "0"));
                    let _ = write!(out, "slave{i}:ip={ip},port={port},state=online,offset={},lag=0,raft_node_id={id}\r\n", status.commit_index);
                }
            } else {
                let _ = write!(out, "role:slave\r\n");
                match shared.node.leader() {
                    Some((_, info)) => {
                        let (ip, port) = info
                            .resp_addr
                            .rsplit_once(':')
                            .unwrap_or((&info.resp_addr, "0"));
                        let _ = write!(
                            out,
                            "master_host:{ip}\r\nmaster_port:{port}\r\nmaster_link_status:up\r\n"
                        );
                    }
                    None => {
                        let _ = write!(
                            out,
                            "master_host:\r\nmaster_port:0\r\nmaster_link_status:down\r\n"
                        );
                    }
                }
                let _ = write!(
                    out,
                    "slave_repl_offset:{}\r\nslave_read_only:0\r\nconnected_slaves:0\r\n",
                    status.applied_index
                );
            }
            let _ = write!(
                out,
                "raft_node_id:{}\r\nraft_leader_id:{}\r\nraft_term:{}\r\nraft_commit_index:{}\r\nraft_applied_index:{}\r\nraft_last_log_index:{}\r\nraft_snapshot_index:{}\r\n",
                status.id,
                status.leader.map_or(-1, |l| l as i64),
                status.term,
                status.commit_index,
                status.applied_index,
                status.last_log_index,
                status.snapshot_index.map_or(-1, |i| i as i64),
            );
        }
        "keyspace" => {
            let state = shared.node.state().read();
            let keys = state.data.keyspace.len();
            let _ = write!(out, "# Keyspace\r\n");
            if keys > 0 {
                let _ = write!(
                    out,
                    "db0:keys={keys},expires={},avg_ttl=0\r\n",
                    state.data.keyspace.expiring_len()
                );
            }
        }
        _ => {}
    }
}

pub fn info(_session: &mut Session, shared: &Shared, argv: &[Bytes]) -> Reply {
    let requested: Vec<String> = argv[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let sections: Vec<&str> = if requested.is_empty()
        || requested
            .iter()
            .any(|s| matches!(s.as_str(), "all" | "everything" | "default"))
    {
        DEFAULT_SECTIONS.to_vec()
    } else {
        DEFAULT_SECTIONS
            .iter()
            .copied()
            .filter(|s| requested.iter().any(|r| r == s))
            .collect()
    };
    let mut out = String::new();
    for (i, name) in sections.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        section(shared, name, &mut out);
    }
    Reply::bulk(out.into_bytes())
}
