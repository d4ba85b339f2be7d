//! HELLO (protocol switch and handshake) and AUTH.

use bytes::Bytes;
use raftlimit_raft::commands::args::{is, parse_i64};
use raftlimit_raft::Reply;

use super::Session;
use crate::connection::Protocol;
use crate::shared::Shared;

/// The Redis version we report: clients gate features on it, and we
/// implement the 7.x command semantics.
pub const REDIS_VERSION: &str = "7.2.0";

pub fn hello(session: &mut Session, shared: &Shared, argv: &[Bytes]) -> Reply {
    let mut protocol = session.protocol;
    let mut i = 1;
    if let Some(version) = argv.get(1) {
        protocol = match parse_i64(version) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
            None => return Reply::error("ERR Protocol version is not an integer or out of range"),
        };
        i = 2;
    }
    let mut name = None;
    while i < argv.len() {
        if is(&argv[i], "AUTH") && i + 2 < argv.len() {
            let reply = authenticate(shared, &argv[i + 1], &argv[i + 2]);
            if reply.is_error() {
                return reply;
            }
            i += 3;
        } else if is(&argv[i], "SETNAME") && i + 1 < argv.len() {
            name = Some(argv[i + 1].clone());
            i += 2;
        } else {
            return Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&argv[i])
            ));
        }
    }
    if let Some(name) = name {
        if let Err(err) = super::client::set_name(session, &name) {
            return err;
        }
    }
    session.protocol = protocol;
    let id = {
        let mut info = session.info.lock();
        info.protocol = protocol;
        info.id
    };
    let role = if shared.node.status().is_leader {
        "master"
    } else {
        "replica"
    };
    Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(REDIS_VERSION)),
        (
            Reply::bulk("proto"),
            Reply::Int(if protocol == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (Reply::bulk("id"), Reply::Int(id as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk(role)),
        (Reply::bulk("modules"), Reply::Array(Vec::new())),
    ])
}

/// Checks credentials. With no password configured the default user needs
/// none, as in Redis.
fn authenticate(_shared: &Shared, user: &[u8], _password: &[u8]) -> Reply {
    if user == b"default" {
        Reply::Ok
    } else {
        Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
    }
}

pub fn auth(_session: &mut Session, shared: &Shared, argv: &[Bytes]) -> Reply {
    match argv.len() {
        2 => Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ),
        3 => authenticate(shared, &argv[1], &argv[2]),
        _ => Reply::syntax_error(),
    }
}
