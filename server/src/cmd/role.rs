//! ROLE, as Redis answers it, from the Raft view: the leader is the master
//! and the other voters its replicas.

use bytes::Bytes;
use raftlimit_engine::Reply;

use crate::session::Session;
use crate::shared::Shared;

/// Splits `host:port`; a malformed address yields the whole text and port 0.
pub fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(0)),
        None => (addr.to_owned(), 0),
    }
}

pub fn role(_session: &mut Session, shared: &Shared, _argv: &[Bytes]) -> Reply {
    let node = &shared.node;
    let status = node.status();
    if status.is_leader {
        let members = node.members();
        let replicas = node
            .replication()
            .into_iter()
            .map(|(id, matched)| {
                let (host, port) = members
                    .get(&id)
                    .map_or((String::new(), 0), |m| split_addr(&m.resp_addr));
                Reply::Array(vec![
                    Reply::bulk(host.into_bytes()),
                    Reply::bulk(port.to_string().into_bytes()),
                    Reply::bulk(matched.to_string().into_bytes()),
                ])
            })
            .collect();
        Reply::Array(vec![
            Reply::bulk("master"),
            Reply::Int(status.commit_index as i64),
            Reply::Array(replicas),
        ])
    } else {
        let (host, port, state) = match node.leader() {
            Some((_, info)) => {
                let (host, port) = split_addr(&info.resp_addr);
                (host, port, "connected")
            }
            None => (String::new(), 0, "connect"),
        };
        Reply::Array(vec![
            Reply::bulk("slave"),
            Reply::bulk(host.into_bytes()),
            Reply::Int(i64::from(port)),
            Reply::bulk(state),
            Reply::Int(status.applied_index as i64),
        ])
    }
}
