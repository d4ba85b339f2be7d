//! The ACL command on the receiving node: checks each subcommand's name and
//! arity, answers the node-local subcommands (WHOAMI, CAT, LOG, DRYRUN,
//! GENPASS, HELP, SAVE), and prepares SETUSER for the log — its rules are
//! validated against the full command table and every `>password` becomes
//! `#<sha256>` (`<password` becomes `!<sha256>`) before the command is
//! proposed, so no password reaches the Raft log, a snapshot or a peer.

use std::fmt::Write as _;

use bytes::Bytes;
use raftlimit_engine::{hash_password, to_hex, valid_user_name, RuleError, User, CATEGORIES};
use raftlimit_engine::rule_error;
use raftlimit_engine::{is, parse_i64};
use raftlimit_engine::{all_specs, arity_ok};
use raftlimit_engine::Reply;

use super::catalog::{acl_subcommand, AclKind, ServerCatalog, ACL_SUBCOMMANDS};
use super::{permission, Denial};
use crate::cmd::{self, LocalSpec, Session};
use crate::dispatch::{route, Route};
use crate::shared::Shared;

/// The connection-level half of ACL (never listed on its own: COMMAND
/// reports `acl` once, from the keyspace table).
pub static ACL_LOCAL: LocalSpec = LocalSpec {
    name: "acl",
    arity: -2,
    flags: &["noscript", "loading", "stale"],
    categories: &["slow"],
    run: acl_local,
};

/// Whether `ACL <sub>` is answered by the connection (unknown subcommands
/// too, to get Redis's error).
pub fn is_local(argv: &[Bytes]) -> bool {
    argv.get(1)
        .is_some_and(|sub| acl_subcommand(sub).is_none_or(|s| s.kind == AclKind::Local))
}

/// Redis's checks before authentication: the subcommand exists and has the
/// right number of arguments.
pub fn precheck(argv: &[Bytes]) -> Option<Reply> {
    let sub = argv.get(1)?;
    match acl_subcommand(sub) {
        None => Some(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&sub[..sub.len().min(128)])
        ))),
        Some(s) if !arity_ok(s.arity, argv.len()) => Some(Reply::error(format!(
            "ERR wrong number of arguments for 'acl|{}' command",
            s.name
        ))),
        Some(_) => None,
    }
}

/// Rewrites `ACL SETUSER` for the log: passwords hashed, rules checked
/// against every command this server knows. Other commands pass unchanged.
pub fn prepare_write(argv: Vec<Bytes>) -> Result<Vec<Bytes>, Reply> {
    if !(argv.len() >= 3 && is(&argv[0], "ACL") && is(&argv[1], "SETUSER")) {
        return Ok(argv);
    }
    if !valid_user_name(&argv[2]) {
        return Err(Reply::error(
            "ERR Usernames can't contain spaces or null characters",
        ));
    }
    let mut out = Vec::with_capacity(argv.len());
    out.extend_from_slice(&argv[..3]);
    for op in &argv[3..] {
        let op = match op.first() {
            Some(b'>') => Bytes::from(format!("#{}", to_hex(&hash_password(&op[1..])))),
            Some(b'<') => Bytes::from(format!("!{}", to_hex(&hash_password(&op[1..])))),
            _ => op.clone(),
        };
        // Each rule alone on a fresh user: this finds unknown names and
        // syntax errors; errors that depend on the user (removing a password
        // it does not have, a pattern after allkeys) are found in apply.
        match User::new("check").apply_rule(&op, &ServerCatalog) {
            Ok(()) | Err(RuleError::NoSuchPassword) => {}
            Err(err) => return Err(rule_error(&op, err)),
        }
        out.push(op);
    }
    Ok(out)
}

/// ACL WHOAMI, CAT, LOG, DRYRUN, GENPASS, HELP and SAVE.
pub fn acl_local(session: &mut Session, shared: &Shared, argv: &[Bytes]) -> Reply {
    if let Some(reply) = precheck(argv) {
        return reply;
    }
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    match sub.as_str() {
        "whoami" => Reply::bulk(session.auth.user.clone().into_bytes()),
        "cat" => cat(argv),
        "log" => log(shared, argv),
        "dryrun" => dryrun(shared, argv),
        "genpass" => genpass(argv),
        "save" => Reply::error(
            "ERR ACL SAVE is not supported: ACL changes are replicated through the Raft log and kept in its snapshots",
        ),
        _ => help(),
    }
}

fn cat(argv: &[Bytes]) -> Reply {
    let Some(category) = argv.get(2) else {
        return Reply::Array(CATEGORIES.iter().map(|c| Reply::bulk(*c)).collect());
    };
    if argv.len() > 3 {
        return Reply::syntax_error();
    }
    let category = String::from_utf8_lossy(category).to_ascii_lowercase();
    if !CATEGORIES.contains(&category.as_str()) {
        return Reply::error(format!("ERR Unknown category '{category}'"));
    }
    let mut names: Vec<String> = Vec::new();
    let has = |cats: &[&str]| cats.contains(&category.as_str());
    names.extend(
        all_specs()
            .iter()
            .filter(|s| s.name != "acl" && has(s.categories))
            .map(|s| s.name.to_owned()),
    );
    names.extend(
        cmd::all()
            .iter()
            .filter(|s| has(s.categories))
            .map(|s| s.name.to_owned()),
    );
    names.extend(
        cmd::raft::MEMBERSHIP_SPECS
            .iter()
            .filter(|s| has(s.categories))
            .map(|s| s.name.to_owned()),
    );
    names.extend(
        ACL_SUBCOMMANDS
            .iter()
            .filter(|s| has(s.categories))
            .map(|s| format!("acl|{}", s.name)),
    );
    names.sort();
    Reply::Array(
        names
            .into_iter()
            .map(|n| Reply::bulk(n.into_bytes()))
            .collect(),
    )
}

fn log(shared: &Shared, argv: &[Bytes]) -> Reply {
    let count = match argv.get(2) {
        None => 10,
        Some(arg) if argv.len() == 3 && is(arg, "RESET") => {
            shared.security.acl_log.reset();
            return Reply::Ok;
        }
        Some(arg) if argv.len() == 3 => match parse_i64(arg) {
            Some(n) if n >= 0 => n as usize,
            _ => return Reply::error("ERR value is out of range, must be positive"),
        },
        Some(_) => return Reply::syntax_error(),
    };
    shared.security.acl_log.reply(count)
}

fn dryrun(shared: &Shared, argv: &[Bytes]) -> Reply {
    let name = String::from_utf8_lossy(&argv[2]).into_owned();
    let Some(user) = shared.node.state().read().data.acl.user(&name).cloned() else {
        return Reply::error(format!("ERR User '{name}' not found"));
    };
    let command = &argv[3..];
    let routed = route(command);
    let Some(checked) = super::Checked::of(&routed) else {
        return Reply::error(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(&command[0])
        ));
    };
    let arity = match routed {
        Route::Local(spec) => spec.arity,
        Route::Keyspace(spec) => spec.arity,
        Route::Unknown => 0,
    };
    if !arity_ok(arity, command.len()) {
        return Reply::wrong_arity(checked.name);
    }
    match permission(&user, command, &checked) {
        Ok(()) => Reply::Ok,
        Err(Denial::Command(full)) => Reply::bulk(
            format!(
                "User {} has no permissions to run the '{full}' command",
                user.name
            )
            .into_bytes(),
        ),
        Err(Denial::Key(index)) => Reply::bulk(
            format!(
                "No permissions to access the '{}' key",
                String::from_utf8_lossy(&command[index])
            )
            .into_bytes(),
        ),
    }
}

fn genpass(argv: &[Bytes]) -> Reply {
    let bits = match argv.get(2) {
        None => 256,
        Some(arg) if argv.len() == 3 => match parse_i64(arg) {
            Some(n) if (1..=4096).contains(&n) => n as usize,
            _ => {
                return Reply::error(
                    "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                )
            }
        },
        Some(_) => return Reply::syntax_error(),
    };
    let chars = bits.div_ceil(4);
    let mut out = String::with_capacity(chars + 1);
    while out.len() < chars {
        let _ = write!(out, "{:02x}", rand::random::<u8>());
    }
    out.truncate(chars);
    Reply::bulk(out.into_bytes())
}

fn help() -> Reply {
    Reply::Array(
        [
            "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Forget runtime changes: every node returns to the users of its configuration.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
            "HELP",
            "    Print this help.",
        ]
        .iter()
        .map(|s| Reply::status(*s))
        .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split_whitespace()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn setuser_passwords_are_hashed_before_the_log() {
        let out = prepare_write(argv(
            "ACL SETUSER bob on >hunter2 <old ~app:* +get +@limiter",
        ))
        .unwrap_or_default();
        let hash = to_hex(&hash_password(b"hunter2"));
        assert_eq!(out[4], Bytes::from(format!("#{hash}")));
        assert!(out[5].starts_with(b"!"));
        assert!(!out.iter().any(|a| a.windows(7).any(|w| w == b"hunter2")));
        let err = prepare_write(argv("ACL SETUSER bob >x +nosuch")).err();
        assert_eq!(
            err,
            Some(Reply::error(
                "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
            ))
        );
        assert!(prepare_write(argv("ACL SETUSER bob +config|get -acl|setuser")).is_ok());
        assert!(prepare_write(argv("ACL SETUSER bob +acl|nosuch")).is_err());
        let passthrough = argv("SET k v");
        assert_eq!(prepare_write(passthrough.clone()).ok(), Some(passthrough));
    }

    #[test]
    fn subcommand_checks() {
        assert!(precheck(&argv("ACL WHOAMI")).is_none());
        assert_eq!(
            precheck(&argv("ACL WHOAMI x")),
            Some(Reply::error(
                "ERR wrong number of arguments for 'acl|whoami' command"
            ))
        );
        assert_eq!(
            precheck(&argv("ACL FOO")),
            Some(Reply::error("ERR unknown subcommand 'FOO'. Try ACL HELP."))
        );
        assert!(is_local(&argv("ACL LOG")) && !is_local(&argv("ACL SETUSER x")));
    }
}
