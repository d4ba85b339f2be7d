//! The replicated part of ACL: SETUSER, DELUSER and LOAD run in apply;
//! GETUSER, LIST and USERS read the applied user table. The node-local
//! subcommands (WHOAMI, LOG, CAT, DRYRUN, GENPASS) live in the server.
//!
//! Arguments arrive already checked by the node that received the command:
//! it validated the rules against the full command table and replaced every
//! `>password` with `#<sha256>`, so the log never holds a password.

use bytes::Bytes;

use super::args::is;
use super::{ReadCtx, WriteCtx};
use crate::acl::{self, AclTable, AnyCommand, User, DEFAULT_USER};
use crate::reply::Reply;

/// A rule as an error message may quote it: never a password.
pub fn quote_rule(op: &[u8]) -> String {
    match op.first() {
        Some(b'>') | Some(b'<') => format!("{}(redacted)", char::from(op[0])),
        _ => String::from_utf8_lossy(op).into_owned(),
    }
}

/// Redis's reply to a refused SETUSER rule.
pub fn rule_error(op: &[u8], err: acl::RuleError) -> Reply {
    Reply::error(format!(
        "ERR Error in ACL SETUSER modifier '{}': {}",
        quote_rule(op),
        err.message()
    ))
}

fn name_error() -> Reply {
    Reply::error("ERR Usernames can't contain spaces or null characters")
}

/// SETUSER, DELUSER and LOAD, inside apply. Read subcommands are answered too,
/// so any ACL invocation is safe to put in the log.
pub fn acl_write(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let table = &mut ctx.data.acl;
    let sub = &argv[1];
    if is(sub, "SETUSER") && argv.len() >= 3 {
        if !acl::valid_user_name(&argv[2]) {
            return name_error();
        }
        let name = String::from_utf8_lossy(&argv[2]).into_owned();
        match table.set_user(&name, &argv[3..], &AnyCommand) {
            Ok(()) => Reply::Ok,
            Err((i, err)) => rule_error(&argv[3 + i], err),
        }
    } else if is(sub, "DELUSER") && argv.len() >= 3 {
        if argv[2..]
            .iter()
            .any(|n| n.as_ref() == DEFAULT_USER.as_bytes())
        {
            return Reply::error("ERR The 'default' user cannot be removed");
        }
        let mut deleted = 0;
        for name in &argv[2..] {
            if table.del_user(&String::from_utf8_lossy(name)) {
                deleted += 1;
            }
        }
        Reply::Int(deleted)
    } else if is(sub, "LOAD") && argv.len() == 2 {
        table.reset_to_base();
        Reply::Ok
    } else {
        read(table, argv)
    }
}

/// GETUSER, LIST and USERS, against the applied state.
pub fn acl_read(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    read(&ctx.data.acl, argv)
}

fn read(table: &AclTable, argv: &[Bytes]) -> Reply {
    let sub = &argv[1];
    if is(sub, "GETUSER") && argv.len() == 3 {
        let name = String::from_utf8_lossy(&argv[2]);
        table.user(&name).map_or(Reply::Nil, |u| getuser_reply(u))
    } else if is(sub, "LIST") && argv.len() == 2 {
        Reply::Array(
            table
                .users()
                .iter()
                .map(|u| Reply::bulk(format!("user {} {}", u.name, u.describe()).into_bytes()))
                .collect(),
        )
    } else if is(sub, "USERS") && argv.len() == 2 {
        Reply::Array(
            table
                .users()
                .iter()
                .map(|u| Reply::bulk(u.name.clone().into_bytes()))
                .collect(),
        )
    } else {
        Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            String::from_utf8_lossy(sub)
        ))
    }
}

/// ACL GETUSER's map: flags, password hashes, commands, keys, channels, selectors.
pub fn getuser_reply(user: &User) -> Reply {
    Reply::Map(vec![
        (
            Reply::bulk("flags"),
            Reply::Array(user.flags().into_iter().map(Reply::bulk).collect()),
        ),
        (
            Reply::bulk("passwords"),
            Reply::Array(
                user.passwords
                    .iter()
                    .map(|h| Reply::bulk(acl::to_hex(h).into_bytes()))
                    .collect(),
            ),
        ),
        (
            Reply::bulk("commands"),
            Reply::bulk(user.describe_commands().into_bytes()),
        ),
        (
            Reply::bulk("keys"),
            Reply::bulk(user.describe_keys().into_bytes()),
        ),
        (
            Reply::bulk("channels"),
            Reply::bulk(user.channels_field().into_bytes()),
        ),
        (Reply::bulk("selectors"), Reply::Array(Vec::new())),
    ])
}

#[cfg(test)]
mod tests {
    use crate::reply::Reply;
    use crate::testing::Harness;

    #[test]
    fn setuser_getuser_deluser() {
        let mut h = Harness::new();
        assert_eq!(h.run("ACL SETUSER alice on nopass ~app:* +get"), Reply::Ok);
        let list = h.run("ACL LIST");
        assert_eq!(
            list,
            Reply::Array(vec![
                Reply::bulk(
                    "user alice on nopass sanitize-payload ~app:* resetchannels -@all +get"
                ),
                Reply::bulk("user default on nopass sanitize-payload ~* &* +@all"),
            ])
        );
        assert_eq!(h.run("ACL SETUSER alice ~more ~*"), Reply::Ok);
        assert_eq!(
            h.run("ACL SETUSER alice ~x"),
            Reply::error("ERR Error in ACL SETUSER modifier '~x': Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")
        );
        assert_eq!(
            h.run("ACL SETUSER alice +nosuch|x @bad"),
            Reply::error("ERR Error in ACL SETUSER modifier '@bad': Syntax error")
        );
        assert_eq!(
            h.run("ACL DELUSER default"),
            Reply::error("ERR The 'default' user cannot be removed")
        );
        assert_eq!(h.run("ACL DELUSER alice nobody"), Reply::Int(1));
        assert_eq!(h.run("ACL GETUSER alice"), Reply::Nil);
        assert_eq!(
            h.run("ACL USERS"),
            Reply::Array(vec![Reply::bulk("default")])
        );
    }
}
