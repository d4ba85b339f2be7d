//! The user table: the users of the node's configuration, overlaid with the
//! runtime changes (`ACL SETUSER`, `ACL DELUSER`) replicated through the log.
//!
//! Only the overlay is replicated and snapshotted. The configured users are
//! loaded by every node from its own configuration at start, which must be
//! the same on every node (as `[[cluster.nodes]]` must).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Catalog, RuleError, User, DEFAULT_USER};

/// Users by name.
pub type Users = BTreeMap<String, Arc<User>>;

/// Configured users plus replicated changes.
#[derive(Debug, Clone)]
pub struct AclTable {
    base: Arc<Users>,
    /// `Some(user)` replaces (or adds) a user; `None` deletes a configured one.
    overrides: BTreeMap<String, Option<Arc<User>>>,
    /// Counts changes, so apply can tell whether a command changed users.
    /// Not replicated: only compared before and after one command.
    changes: u64,
}

impl Default for AclTable {
    fn default() -> Self {
        AclTable::new(Arc::new(Users::new()))
    }
}

impl AclTable {
    /// A table over the configured users. A configuration without a
    /// `default` user gets Redis's: `on nopass ~* &* +@all`.
    pub fn new(mut base: Arc<Users>) -> Self {
        if !base.contains_key(DEFAULT_USER) {
            Arc::make_mut(&mut base).insert(DEFAULT_USER.into(), Arc::new(User::default_user()));
        }
        AclTable {
            base,
            overrides: BTreeMap::new(),
            changes: 0,
        }
    }

    /// The configured users this table starts from.
    pub fn base(&self) -> &Arc<Users> {
        &self.base
    }

    /// A user as currently defined.
    pub fn user(&self, name: &str) -> Option<&Arc<User>> {
        match self.overrides.get(name) {
            Some(entry) => entry.as_ref(),
            None => self.base.get(name),
        }
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<&Arc<User>> {
        let mut names: Vec<&String> = self.base.keys().chain(self.overrides.keys()).collect();
        names.sort();
        names.dedup();
        names.into_iter().filter_map(|n| self.user(n)).collect()
    }

    /// `ACL SETUSER`: creates the user if needed and applies the rules, all
    /// or nothing.
    pub fn set_user<R: AsRef<[u8]>>(
        &mut self,
        name: &str,
        rules: &[R],
        catalog: &dyn Catalog,
    ) -> Result<(), (usize, RuleError)> {
        let mut user = self
            .user(name)
            .map_or_else(|| User::new(name), |u| User::clone(u));
        user.apply_rules(rules, catalog)?;
        self.overrides.insert(name.to_owned(), Some(Arc::new(user)));
        self.changes += 1;
        Ok(())
    }

    /// `ACL DELUSER` of one user; whether it existed.
    pub fn del_user(&mut self, name: &str) -> bool {
        if self.user(name).is_none() {
            return false;
        }
        if self.base.contains_key(name) {
            self.overrides.insert(name.to_owned(), None);
        } else {
            self.overrides.remove(name);
        }
        self.changes += 1;
        true
    }

    /// `ACL LOAD`: forgets every runtime change.
    pub fn reset_to_base(&mut self) {
        self.overrides.clear();
        self.changes += 1;
    }

    /// A counter that moves whenever the users change.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The replicated part, for snapshots.
    pub fn overrides(&self) -> &BTreeMap<String, Option<Arc<User>>> {
        &self.overrides
    }

    /// Replaces the replicated part (snapshot install).
    pub fn set_overrides(&mut self, overrides: BTreeMap<String, Option<Arc<User>>>) {
        self.overrides = overrides;
    }
}

#[cfg(test)]
mod tests {
    use super::super::AnyCommand;
    use super::*;

    #[test]
    fn overlay_over_configured_users() {
        let mut alice = User::new("alice");
        assert!(alice
            .apply_rules(&["on", "nopass", "+get"], &AnyCommand)
            .is_ok());
        let base: Users = [("alice".to_owned(), Arc::new(alice))]
            .into_iter()
            .collect();
        let mut table = AclTable::new(Arc::new(base));
        assert!(table.user("default").is_some_and(|u| u.nopass));
        // Changing a configured user starts from its configured rules.
        assert!(table.set_user("alice", &["+set"], &AnyCommand).is_ok());
        assert_eq!(
            table.user("alice").map(|u| u.describe_commands()),
            Some("-@all +get +set".into())
        );
        assert!(table.del_user("alice"));
        assert!(!table.del_user("alice"));
        assert!(table.user("alice").is_none());
        assert!(table.set_user("bob", &["on"], &AnyCommand).is_ok());
        let names: Vec<&str> = table.users().iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["bob", "default"]);
        table.reset_to_base();
        assert!(table.user("alice").is_some() && table.user("bob").is_none());
    }
}
