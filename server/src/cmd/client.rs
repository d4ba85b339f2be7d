//! CLIENT ID|SETNAME|GETNAME|SETINFO|INFO|LIST and the harmless options
//! client libraries send on connect.

use bytes::Bytes;
use raftlimit_engine::{is, Reply};

use super::{subcommand, unknown_subcommand};
use crate::session::Session;
use crate::shared::Shared;

/// Names may not contain spaces or control characters (Redis's rule).
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

pub fn set_name(session: &mut Session, name: &[u8]) -> Result<(), Reply> {
    if !valid_name(name) {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    session.info.lock().name =
        (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned());
    Ok(())
}

pub fn client(session: &mut Session, shared: &Shared, argv: &[Bytes]) -> Reply {
    let sub = subcommand(argv);
    match (sub.as_str(), argv.len()) {
        ("id", 2) => Reply::Int(session.id() as i64),
        ("getname", 2) => Reply::bulk_or_nil(session.info.lock().name.clone().map(Bytes::from)),
        ("setname", 3) => match set_name(session, &argv[2]) {
            Ok(()) => Reply::Ok,
            Err(err) => err,
        },
        ("setinfo", 4) => {
            if !valid_name(&argv[3]) {
                return Reply::error(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(&argv[2]).to_ascii_lowercase()
                ));
            }
            let value = String::from_utf8_lossy(&argv[3]).into_owned();
            let mut info = session.info.lock();
            if is(&argv[2], "LIB-NAME") {
                info.lib_name = Some(value);
            } else if is(&argv[2], "LIB-VER") {
                info.lib_ver = Some(value);
            } else {
                return Reply::error(format!(
                    "ERR Unrecognized option '{}'",
                    String::from_utf8_lossy(&argv[2])
                ));
            }
            Reply::Ok
        }
        ("info", 2) => Reply::bulk(format!("{}\n", session.info.lock().line()).into_bytes()),
        ("list", _) => {
            let mut text = String::new();
            for client in shared.clients.snapshot() {
                text.push_str(&client.line());
                text.push('\n');
            }
            Reply::bulk(text.into_bytes())
        }
        // Accepted and ignored: they tune behaviour we do not have.
        ("no-evict" | "no-touch" | "reply", 3) => Reply::Ok,
        ("help", 2) => Reply::Array(
            [
                "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
                "ID",
                "GETNAME",
                "SETNAME <name>",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "INFO",
                "LIST",
            ]
            .iter()
            .map(|s| Reply::status(*s))
            .collect(),
        ),
        ("id" | "getname" | "setname" | "setinfo" | "info", _) => Reply::error(format!(
            "ERR wrong number of arguments for 'client|{sub}' command"
        )),
        _ => unknown_subcommand("client", argv),
    }
}
