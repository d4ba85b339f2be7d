//! The one ACL permission check: may this user run this invocation? The
//! server asks it before a command runs, and the script host before each
//! command a script issues, so both refuse with the same words.

use bytes::Bytes;

use crate::acl::{CommandRef, User};
use crate::commands::CommandSpec;

/// Why a user may not run a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The command, by its full name (`get`, `acl|setuser`).
    Command(String),
    /// The index in argv of the first key it may not access.
    Key(usize),
}

impl Denial {
    /// Redis's NOPERM error text for this denial of `user`.
    pub fn message(&self, user: &str) -> String {
        match self {
            Denial::Command(name) => {
                format!("NOPERM User {user} has no permissions to run the '{name}' command")
            }
            Denial::Key(_) => "NOPERM No permissions to access a key".to_owned(),
        }
    }
}

/// Checks a user's command and key permissions for `argv`, an invocation
/// of `spec` (a command, not a subcommand's spec).
pub fn permission(user: &User, spec: &'static CommandSpec, argv: &[Bytes]) -> Result<(), Denial> {
    let command = CommandRef {
        name: spec.name,
        sub: argv.get(1).map(|b| &b[..]),
        categories: spec.categories_for(argv),
        no_auth: spec.flags.contains(&"no_auth"),
    };
    if !user.can_run(&command) {
        return Err(Denial::Command(spec.full_name(argv)));
    }
    if !user.all_keys {
        let (read, write) = spec.key_access(argv);
        for key in spec.acl_keys(argv) {
            if !user.can_access_key(key, read, write) {
                let index = argv.iter().position(|a| std::ptr::eq(a, key)).unwrap_or(0);
                return Err(Denial::Key(index));
            }
        }
    }
    Ok(())
}
