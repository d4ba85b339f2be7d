//! ACL on the receiving node: answers the connection subcommands (WHOAMI,
//! CAT, LOG, DRYRUN, GENPASS, HELP, SAVE; the replicated ones are the
//! engine's, `raftlimit_engine` commands/acl.rs), and prepares SETUSER for the log — its rules are
//! validated against the full command table and every `>password` becomes
//! `#<sha256>` (`<password` becomes `!<sha256>`) before the command is
//! proposed, so no password reaches the Raft log, a snapshot or a peer.

use std::fmt::Write as _;

use bytes::Bytes;
use raftlimit_engine::{
    all_specs, hash_password, is, lookup, parse_i64, permission, rule_error, to_hex,
    valid_user_name, CommandTable, Denial, Handler, Reply, RuleError, User, CATEGORIES,
};

use crate::session::Session;
use crate::shared::Shared;

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
        match User::new("check").apply_rule(&op, &CommandTable) {
            Ok(()) | Err(RuleError::NoSuchPassword) => {}
            Err(err) => return Err(rule_error(&op, err)),
        }
        out.push(op);
    }
    Ok(out)
}

/// ACL WHOAMI, CAT, LOG, DRYRUN, GENPASS, HELP and SAVE.
/// The router has checked the subcommand and its arity (see
/// `CommandSpec::check_subcommand`).
pub fn acl_local(session: &mut Session, shared: &Shared, argv: &[Bytes]) -> Reply {
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
    for spec in all_specs() {
        // A command that runs by subcommand is listed by its subcommands
        // (`acl|setuser`), each in its own categories.
        if matches!(spec.handler, Handler::BySubcommand) {
            names.extend(
                spec.subcommands
                    .iter()
                    .filter(|s| has(s.categories))
                    .map(|s| format!("{}|{}", spec.name, s.name)),
            );
        } else if has(spec.categories) {
            names.push(spec.name.to_owned());
        }
    }
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
    let Some(spec) = lookup(&command[0]) else {
        return Reply::error(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(&command[0])
        ));
    };
    if !spec.arity_ok(command.len()) {
        return Reply::wrong_arity(spec.name);
    }
    match permission(&user, spec, command) {
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
        use raftlimit_engine::Route;
        let Some(acl) = lookup(b"acl") else {
            panic!("ACL is in the command table");
        };
        let precheck = |line: &str| acl.check_subcommand(&argv(line));
        let is_local = |line: &str| acl.route(&argv(line)) == Route::Local;
        assert!(precheck("ACL WHOAMI").is_none());
        assert_eq!(
            precheck("ACL WHOAMI x"),
            Some(Reply::error(
                "ERR wrong number of arguments for 'acl|whoami' command"
            ))
        );
        assert_eq!(
            precheck("ACL FOO"),
            Some(Reply::error("ERR unknown subcommand 'FOO'. Try ACL HELP."))
        );
        assert!(is_local("ACL LOG") && !is_local("ACL SETUSER x"));
    }
}
