//! The users a node is configured with: `requirepass`, `[[users]]` and an
//! `aclfile` in Redis's format, turned into ACL users with hashed passwords.
//!
//! Every node loads them from its own configuration, which must define the
//! same users on every node; runtime changes (`ACL SETUSER`/`DELUSER`) are
//! replicated on top of them through the Raft log.

use std::path::Path;
use std::sync::Arc;

use raftlimit_raft::acl::{self, User, Users, DEFAULT_USER};
use raftlimit_raft::commands::acl::quote_rule;
use serde::{Deserialize, Serialize};

use super::catalog::ServerCatalog;

/// A configured secret. Its `Debug` never shows it; serializing it (to
/// write a node's config file) does.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; only for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// A `[[users]]` entry: a name and ACL rules, e.g.
/// `rules = "on >secret ~app:* +@read +@limiter"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub rules: Secret,
}

/// Builds the configured user table. Errors name the offending user and
/// rule, never a password.
pub fn configured_users(
    requirepass: Option<&Secret>,
    users: &[UserConfig],
    aclfile: Option<&Path>,
) -> Result<Arc<Users>, String> {
    if !users.is_empty() && aclfile.is_some() {
        return Err(
            "users are defined both in [[users]] and in an aclfile: define them in one place"
                .into(),
        );
    }
    let mut defined: Vec<(String, Vec<String>, String)> = users
        .iter()
        .map(|u| {
            (
                u.name.clone(),
                split_rules(u.rules.expose()),
                format!("[[users]] {}", u.name),
            )
        })
        .collect();
    if let Some(path) = aclfile {
        defined = read_aclfile(path)?;
    }
    let mut table = Users::new();
    let mut default = User::default_user();
    if let Some(pass) = requirepass {
        let rules = ["resetpass".to_owned(), format!(">{}", pass.expose())];
        apply(&mut default, &rules, "requirepass")?;
    }
    table.insert(DEFAULT_USER.into(), Arc::new(default));
    let mut seen = Vec::new();
    for (name, rules, origin) in defined {
        if !acl::valid_user_name(name.as_bytes()) {
            return Err(format!(
                "{origin}: usernames can't contain spaces or null characters"
            ));
        }
        if seen.contains(&name) {
            return Err(format!(
                "{origin}: Duplicate user found. A user can only be defined once in config files"
            ));
        }
        if name == DEFAULT_USER && requirepass.is_some() {
            return Err(format!(
                "{origin}: the default user is defined here and by requirepass: use one of them"
            ));
        }
        // As Redis: a user defined in configuration starts from `reset`.
        let mut user = User::new(&name);
        apply(&mut user, &rules, &origin)?;
        table.insert(name.clone(), Arc::new(user));
        seen.push(name);
    }
    Ok(Arc::new(table))
}

fn apply(user: &mut User, rules: &[String], origin: &str) -> Result<(), String> {
    user.apply_rules(rules, &ServerCatalog).map_err(|(i, err)| {
        format!(
            "{origin}: Error in ACL SETUSER modifier '{}': {}",
            quote_rule(rules[i].as_bytes()),
            err.message()
        )
    })
}

fn split_rules(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// Reads `user NAME rules…` lines; blank lines and `#` comments are skipped.
fn read_aclfile(path: &Path) -> Result<Vec<(String, Vec<String>, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read aclfile {}: {e}", path.display()))?;
    let mut users = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let origin = format!("{}:{}", path.display(), i + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = split_rules(line).into_iter();
        if words.next().as_deref() != Some("user") {
            return Err(format!("{origin}: line should start with user keyword"));
        }
        let Some(name) = words.next() else {
            return Err(format!("{origin}: a user name is missing"));
        };
        users.push((name, words.collect(), origin));
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirepass_and_users() {
        let users = [UserConfig {
            name: "app".into(),
            rules: Secret::new("on >app-pass ~app:* +@read +@limiter"),
        }];
        let table = configured_users(Some(&Secret::new("top")), &users, None)
            .unwrap_or_else(|e| panic!("{e}"));
        let default = &table[DEFAULT_USER];
        assert!(!default.nopass && default.check_password(b"top"));
        let app = &table["app"];
        assert!(app.enabled && app.check_password(b"app-pass"));
        assert!(!app.describe().contains("app-pass"));
    }

    #[test]
    fn errors_never_show_passwords() {
        let users = [UserConfig {
            name: "app".into(),
            rules: Secret::new("on >hunter2 +nosuchcommand"),
        }];
        let err = configured_users(None, &users, None)
            .err()
            .unwrap_or_default();
        assert!(err.contains("'+nosuchcommand'"), "{err}");
        assert!(!err.contains("hunter2"));
        let users = [UserConfig {
            name: "app".into(),
            rules: Secret::new("on <hunter2"),
        }];
        let err = configured_users(None, &users, None)
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("'<(redacted)'") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn aclfile() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("users.acl");
        let hash = acl::to_hex(&acl::hash_password(b"pw"));
        let text = format!(
            "# users\nuser default on #{hash} ~* &* +@all\n\nuser reader on nopass ~* +@read\n"
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let table = configured_users(None, &[], Some(&path)).unwrap_or_else(|e| panic!("{e}"));
        assert!(table[DEFAULT_USER].check_password(b"pw"));
        assert!(!table[DEFAULT_USER].nopass);
        assert!(table["reader"].nopass);
        std::fs::write(&path, "usr x on\n").unwrap_or_else(|e| panic!("{e}"));
        let err = configured_users(None, &[], Some(&path))
            .err()
            .unwrap_or_default();
        assert!(
            err.ends_with(":1: line should start with user keyword"),
            "{err}"
        );
    }
}
