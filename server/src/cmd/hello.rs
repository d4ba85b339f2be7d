//! HELLO (protocol switch and handshake) and AUTH. Credentials are checked
//! by `crate::auth`; their arguments are never logged.

use bytes::Bytes;
use raftlimit_engine::{is, parse_i64, Reply, DEFAULT_USER};

use crate::auth;
use crate::connection::Protocol;
use crate::session::Session;
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
    let mut credentials = None;
    while i < argv.len() {
        if is(&argv[i], "AUTH") && i + 2 < argv.len() {
            credentials = Some((&argv[i + 1], &argv[i + 2]));
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
    if let Some((user, password)) = credentials {
        if let Err(err) = auth::authenticate(session, shared, user, password, &argv[0]) {
            return err;
        }
    }
    if auth::auth_required(session, shared) {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
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

/// `AUTH password` (the default user) or `AUTH user password`.
pub fn auth(session: &mut Session, shared: &Shared, argv: &[Bytes]) -> Reply {
    let result = match argv.len() {
        2 if auth::default_nopass(session, shared) => {
            return Reply::error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            )
        }
        2 => auth::authenticate(session, shared, b"default", &argv[1], &argv[0]),
        3 => auth::authenticate(session, shared, &argv[1], &argv[2], &argv[0]),
        _ => return Reply::syntax_error(),
    };
    match result {
        Ok(()) => Reply::Ok,
        Err(err) => err,
    }
}

/// The credentials of `AUTH [user] password`.
pub fn auth_credentials(argv: &[Bytes]) -> Option<(&[u8], &[u8])> {
    match argv {
        [_, password] => Some((DEFAULT_USER.as_bytes(), password)),
        [_, user, password] => Some((user, password)),
        _ => None,
    }
}

/// The credentials of `HELLO … AUTH user password …`.
pub fn hello_credentials(argv: &[Bytes]) -> Option<(&[u8], &[u8])> {
    let at = argv
        .iter()
        .skip(2)
        .position(|a| a.eq_ignore_ascii_case(b"auth"))?
        + 2;
    Some((argv.get(at + 1)?, argv.get(at + 2)?))
}
