//! What the ACL rules can name: every command of both tables, the
//! subcommands of container commands, and the categories of ACL's own
//! subcommands (which differ per subcommand, as in Redis).

use raftlimit_engine::Catalog;


use crate::cmd;

/// Where an ACL subcommand runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclKind {
    /// Answered by the connection (WHOAMI, LOG, CAT, …).
    Local,
    /// Through the read or write path of the replicated user table.
    Replicated,
}

/// An ACL subcommand: name, arity (counting `ACL` and the subcommand),
/// categories, where it runs.
#[derive(Debug)]
pub struct AclSubcommand {
    pub name: &'static str,
    pub arity: i32,
    pub categories: &'static [&'static str],
    pub kind: AclKind,
}

const ADMIN: &[&str] = &["admin", "slow", "dangerous"];
const SLOW: &[&str] = &["slow"];

pub static ACL_SUBCOMMANDS: &[AclSubcommand] = &[
    sub("cat", -2, SLOW, AclKind::Local),
    sub("deluser", -3, ADMIN, AclKind::Replicated),
    sub("dryrun", -4, ADMIN, AclKind::Local),
    sub("genpass", -2, SLOW, AclKind::Local),
    sub("getuser", 3, ADMIN, AclKind::Replicated),
    sub("help", 2, SLOW, AclKind::Local),
    sub("list", 2, ADMIN, AclKind::Replicated),
    sub("load", 2, ADMIN, AclKind::Replicated),
    sub("log", -2, ADMIN, AclKind::Local),
    sub("save", 2, ADMIN, AclKind::Local),
    sub("setuser", -3, ADMIN, AclKind::Replicated),
    sub("users", 2, ADMIN, AclKind::Replicated),
    sub("whoami", 2, SLOW, AclKind::Local),
];

const fn sub(
    name: &'static str,
    arity: i32,
    categories: &'static [&'static str],
    kind: AclKind,
) -> AclSubcommand {
    AclSubcommand {
        name,
        arity,
        categories,
        kind,
    }
}

/// The ACL subcommand named by `argv[1]`.
pub fn acl_subcommand(arg: &[u8]) -> Option<&'static AclSubcommand> {
    ACL_SUBCOMMANDS
        .iter()
        .find(|s| arg.eq_ignore_ascii_case(s.name.as_bytes()))
}

/// Subcommands of the container commands (for `+config|get` rules and for
/// naming the command in NOPERM errors as Redis does: `'acl|setuser'`).
pub fn subcommands(command: &str) -> Option<&'static [&'static str]> {
    Some(match command {
        "acl" => &[
            "cat", "deluser", "dryrun", "genpass", "getuser", "help", "list", "load", "log",
            "save", "setuser", "users", "whoami",
        ],
        "client" => &[
            "getname", "help", "id", "info", "list", "no-evict", "no-touch", "reply", "setinfo",
            "setname",
        ],
        "config" => &["get", "help", "resetstat", "set"],
        "command" => &["count", "docs", "help", "info", "list"],
        _ => return None,
    })
}

/// The command's name as ACL errors and logs show it: `get`, `acl|setuser`.
pub fn full_name(command: &str, first_arg: Option<&[u8]>) -> String {
    if let (Some(subs), Some(arg)) = (subcommands(command), first_arg) {
        if let Some(sub) = subs.iter().find(|s| arg.eq_ignore_ascii_case(s.as_bytes())) {
            return format!("{command}|{sub}");
        }
    }
    command.to_owned()
}

/// The full command set, for validating rules on the node that receives them.
#[derive(Debug, Clone, Copy)]
pub struct ServerCatalog;

impl Catalog for ServerCatalog {
    fn has_command(&self, name: &str) -> bool {
        cmd::lookup(name.as_bytes()).is_some()
            || cmd::raft::lookup(name.as_bytes()).is_some()
            || raftlimit_engine::lookup(name.as_bytes()).is_some()
    }

    fn has_subcommand(&self, name: &str, sub: &str) -> bool {
        // Commands without subcommands accept a first-argument rule
        // (`+select|0`), as Redis does.
        subcommands(name).is_none_or(|subs| subs.contains(&sub))
    }
}
