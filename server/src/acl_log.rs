//! ACL LOG: this node's recent authentication failures and permission
//! denials, grouped as Redis groups them; and the node-wide security state
//! that holds it.

use std::collections::VecDeque;
use std::time::Instant;

use parking_lot::Mutex;
use raftlimit_engine::Reply;
use raftlimit_raft::node::wall_clock_ns;

/// Node-wide security state.
#[derive(Debug, Default)]
pub struct Security {
    pub acl_log: AclLog,
    /// When the cross-protocol warning was last logged (`crate::auth`).
    pub(crate) last_attack_warning: Mutex<Option<Instant>>,
}

/// `acllog-max-len`: entries kept.
pub const MAX_LEN: usize = 128;
/// A denial repeating an entry updated less than this long ago joins it.
const GROUPING_WINDOW_MS: u64 = 60_000;
/// Only the most recent entries are considered for grouping.
const GROUPING_SCAN: usize = 10;

/// Why an entry was logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `auth`: wrong password, unknown or disabled user.
    Auth,
    /// `command`: the user may not run the command.
    Command,
    /// `key`: the user may not access a key.
    Key,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::Auth => "auth",
            Reason::Command => "command",
            Reason::Key => "key",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    count: u64,
    reason: Reason,
    /// The command (`get`, `acl|setuser`), key, or for `auth` the command
    /// used to authenticate. Never a password.
    object: String,
    username: String,
    client_info: String,
    entry_id: u64,
    created_ms: u64,
    updated_ms: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Most recent first.
    entries: VecDeque<Entry>,
    next_id: u64,
}

/// The log of one node (Redis's ACL LOG is per server, too).
#[derive(Debug, Default)]
pub struct AclLog {
    inner: Mutex<Inner>,
}

fn now_ms() -> u64 {
    wall_clock_ns() / 1_000_000
}

impl AclLog {
    /// Records a denial.
    pub fn add(&self, reason: Reason, object: String, username: String, client_info: String) {
        let now = now_ms();
        let mut inner = self.inner.lock();
        let found = inner.entries.iter().take(GROUPING_SCAN).position(|e| {
            e.reason == reason
                && e.object == object
                && e.username == username
                && now.saturating_sub(e.updated_ms) < GROUPING_WINDOW_MS
        });
        if let Some(pos) = found {
            if let Some(mut entry) = inner.entries.remove(pos) {
                entry.count += 1;
                entry.updated_ms = now;
                entry.client_info = client_info;
                inner.entries.push_front(entry);
            }
            return;
        }
        let entry_id = inner.next_id;
        inner.next_id += 1;
        inner.entries.push_front(Entry {
            count: 1,
            reason,
            object,
            username,
            client_info,
            entry_id,
            created_ms: now,
            updated_ms: now,
        });
        inner.entries.truncate(MAX_LEN);
    }

    /// `ACL LOG RESET`
    pub fn reset(&self) {
        self.inner.lock().entries.clear();
    }

    /// `ACL LOG [count]`: the most recent entries, as Redis shapes them.
    pub fn reply(&self, count: usize) -> Reply {
        let now = now_ms();
        let inner = self.inner.lock();
        Reply::Array(
            inner
                .entries
                .iter()
                .take(count)
                .map(|e| {
                    let field = |name: &'static str, value: Reply| (Reply::bulk(name), value);
                    Reply::Map(vec![
                        field("count", Reply::Int(e.count as i64)),
                        field("reason", Reply::bulk(e.reason.name())),
                        field("context", Reply::bulk("toplevel")),
                        field("object", Reply::bulk(e.object.clone().into_bytes())),
                        field("username", Reply::bulk(e.username.clone().into_bytes())),
                        field(
                            "age-seconds",
                            Reply::Double(now.saturating_sub(e.created_ms) as f64 / 1000.0),
                        ),
                        field(
                            "client-info",
                            Reply::bulk(e.client_info.clone().into_bytes()),
                        ),
                        field("entry-id", Reply::Int(e.entry_id as i64)),
                        field("timestamp-created", Reply::Int(e.created_ms as i64)),
                        field("timestamp-last-updated", Reply::Int(e.updated_ms as i64)),
                    ])
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_caps() {
        let log = AclLog::default();
        log.add(Reason::Auth, "AUTH".into(), "bob".into(), "id=1".into());
        log.add(Reason::Auth, "AUTH".into(), "bob".into(), "id=2".into());
        log.add(Reason::Command, "get".into(), "bob".into(), "id=2".into());
        let Reply::Array(entries) = log.reply(10) else {
            panic!("array")
        };
        assert_eq!(entries.len(), 2);
        let Reply::Map(first) = &entries[0] else {
            panic!("map")
        };
        assert_eq!(first[1].1, Reply::bulk("command"));
        let Reply::Map(second) = &entries[1] else {
            panic!("map")
        };
        assert_eq!(second[0].1, Reply::Int(2));
        for i in 0..200 {
            log.add(Reason::Key, format!("k{i}"), "bob".into(), String::new());
        }
        let Reply::Array(entries) = log.reply(usize::MAX) else {
            panic!("array")
        };
        assert_eq!(entries.len(), MAX_LEN);
        log.reset();
        assert_eq!(log.reply(10), Reply::Array(Vec::new()));
    }
}
