//! Users and what they may do: Redis's ACL model — rules, canonical
//! descriptions, password hashes and permission checks.
//!
//! A [`User`] is changed by applying rule strings (`on`, `>password`,
//! `~app:*`, `+@read`, `-flushall`, …) exactly as `ACL SETUSER` does. Everything
//! here is deterministic, because `ACL SETUSER` runs inside the state machine.
//!
//! Passwords exist here only as SHA-256 hashes. A `>password` rule is hashed
//! when it is parsed; the server rewrites it to `#<hash>` before a command
//! reaches the Raft log, so the log and snapshots never hold a password.

mod table;

use std::fmt::Write as _;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keyspace::glob_match;

pub use table::{AclTable, Users};

/// The user every connection starts as.
pub const DEFAULT_USER: &str = "default";

/// A password's SHA-256 digest.
pub type PasswordHash = [u8; 32];

/// Redis's ACL categories, plus `limiter` for the native limiter commands.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
    "limiter",
];

/// SHA-256 of a password.
pub fn hash_password(password: &[u8]) -> PasswordHash {
    Sha256::digest(password).into()
}

/// Lower-case hex, as Redis prints password hashes.
pub fn to_hex(hash: &PasswordHash) -> String {
    let mut out = String::with_capacity(64);
    for byte in hash {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Parses a 64-character lower-case hex hash (Redis accepts nothing else).
pub fn from_hex(text: &[u8]) -> Option<PasswordHash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Compares two hashes in constant time.
fn hashes_equal(a: &PasswordHash, b: &PasswordHash) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A key pattern and the access it grants (`~p` both, `%R~p` read, `%W~p` write).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPattern {
    pub pattern: Bytes,
    pub read: bool,
    pub write: bool,
}

/// What a command rule names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandTarget {
    /// `@all`
    All,
    /// `@category`
    Category(String),
    /// `command`
    Command(String),
    /// `command|subcommand` (or `command|first-arg`)
    Subcommand(String, String),
}

impl CommandTarget {
    fn matches(&self, cmd: &CommandRef<'_>) -> bool {
        match self {
            CommandTarget::All => true,
            CommandTarget::Category(c) => cmd.categories.iter().any(|x| x == c),
            CommandTarget::Command(name) => cmd.name == name,
            CommandTarget::Subcommand(name, sub) => {
                cmd.name == name
                    && cmd
                        .sub
                        .is_some_and(|s| s.eq_ignore_ascii_case(sub.as_bytes()))
            }
        }
    }

    fn text(&self) -> String {
        match self {
            CommandTarget::All => "@all".into(),
            CommandTarget::Category(c) => format!("@{c}"),
            CommandTarget::Command(name) => name.clone(),
            CommandTarget::Subcommand(name, sub) => format!("{name}|{sub}"),
        }
    }
}

/// `+target` or `-target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRule {
    pub allow: bool,
    pub target: CommandTarget,
}

/// A command as the permission check sees it.
#[derive(Debug, Clone, Copy)]
pub struct CommandRef<'a> {
    /// Lower-case command name.
    pub name: &'a str,
    /// The first argument, which names the subcommand of container commands.
    pub sub: Option<&'a [u8]>,
    /// The ACL categories of the command (or of its subcommand).
    pub categories: &'a [&'a str],
    /// Commands every client may run (AUTH, HELLO, QUIT, RESET).
    pub no_auth: bool,
}

/// Which commands exist, to reject rules naming unknown ones. Inside the
/// state machine every name is accepted: the node that received the command
/// has already validated it.
pub trait Catalog {
    fn has_command(&self, name: &str) -> bool;
    /// Whether `name|sub` names something a rule may allow or deny.
    fn has_subcommand(&self, name: &str, sub: &str) -> bool;
}

/// A catalog that accepts every name (used inside the state machine).
#[derive(Debug, Clone, Copy)]
pub struct AnyCommand;

impl Catalog for AnyCommand {
    fn has_command(&self, _name: &str) -> bool {
        true
    }
    fn has_subcommand(&self, _name: &str, _sub: &str) -> bool {
        true
    }
}

/// Why a rule was refused; `message` is Redis's text for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    UnknownName,
    Syntax,
    KeyAfterAllKeys,
    ChannelAfterAllChannels,
    NoSuchPassword,
    BadHash,
    Selectors,
}

impl RuleError {
    pub fn message(self) -> &'static str {
        match self {
            RuleError::UnknownName => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAllKeys => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAllChannels => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::Selectors => "Selectors are not supported",
        }
    }
}

/// One ACL user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    pub skip_sanitize_payload: bool,
    /// SHA-256 hashes, in the order they were added.
    pub passwords: Vec<PasswordHash>,
    pub all_keys: bool,
    pub keys: Vec<KeyPattern>,
    pub all_channels: bool,
    pub channels: Vec<Bytes>,
    /// Evaluated in order, the last matching rule deciding; an implicit
    /// `-@all` comes first.
    pub commands: Vec<CommandRule>,
}

impl User {
    /// A new user as `ACL SETUSER name` creates it: off, no passwords, no
    /// keys, no channels, no commands.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_owned(),
            enabled: false,
            nopass: false,
            skip_sanitize_payload: false,
            passwords: Vec::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels: false,
            channels: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// The `default` user of a server without configuration:
    /// `on nopass ~* &* +@all`.
    pub fn default_user() -> User {
        let mut user = User::new(DEFAULT_USER);
        user.enabled = true;
        user.nopass = true;
        user.all_keys = true;
        user.all_channels = true;
        user.commands.push(CommandRule {
            allow: true,
            target: CommandTarget::All,
        });
        user
    }

    /// Applies rules in order; on error the user is left unchanged and the
    /// failing rule's index is returned with the reason.
    pub fn apply_rules<R: AsRef<[u8]>>(
        &mut self,
        rules: &[R],
        catalog: &dyn Catalog,
    ) -> Result<(), (usize, RuleError)> {
        let mut next = self.clone();
        for (i, rule) in rules.iter().enumerate() {
            next.apply_rule(rule.as_ref(), catalog)
                .map_err(|err| (i, err))?;
        }
        *self = next;
        Ok(())
    }

    /// Applies one rule.
    pub fn apply_rule(&mut self, op: &[u8], catalog: &dyn Catalog) -> Result<(), RuleError> {
        let is = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.skip_sanitize_payload = true;
        } else if is("sanitize-payload") {
            self.skip_sanitize_payload = false;
        } else if is("allkeys") {
            self.all_keys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.all_keys = false;
            self.keys.clear();
        } else if is("allchannels") {
            self.all_channels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.all_channels = false;
            self.channels.clear();
        } else if is("allcommands") {
            self.set_all_commands(true);
        } else if is("nocommands") {
            self.set_all_commands(false);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if is("reset") {
            for word in [
                "resetpass",
                "resetkeys",
                "resetchannels",
                "off",
                "-@all",
                "sanitize-payload",
            ] {
                self.apply_rule(word.as_bytes(), catalog)?;
            }
        } else if is("clearselectors") {
            // There are no selectors to clear.
        } else {
            match op.first() {
                Some(b'>') => self.add_password(hash_password(&op[1..])),
                Some(b'#') => self.add_password(from_hex(&op[1..]).ok_or(RuleError::BadHash)?),
                Some(b'<') => self.remove_password(&hash_password(&op[1..]))?,
                Some(b'!') => {
                    self.remove_password(&from_hex(&op[1..]).ok_or(RuleError::BadHash)?)?
                }
                Some(b'~') => self.add_key_pattern(&op[1..], true, true)?,
                Some(b'%') => {
                    let tilde = op
                        .iter()
                        .position(|&c| c == b'~')
                        .ok_or(RuleError::Syntax)?;
                    let (mut read, mut write) = (false, false);
                    for &c in &op[1..tilde] {
                        match c.to_ascii_uppercase() {
                            b'R' => read = true,
                            b'W' => write = true,
                            _ => return Err(RuleError::Syntax),
                        }
                    }
                    if !read && !write {
                        return Err(RuleError::Syntax);
                    }
                    self.add_key_pattern(&op[tilde + 1..], read, write)?;
                }
                Some(b'&') => self.add_channel(&op[1..])?,
                Some(b'+') | Some(b'-') => self.add_command_rule(op, catalog)?,
                Some(b'(') => return Err(RuleError::Selectors),
                _ => return Err(RuleError::Syntax),
            }
        }
        Ok(())
    }

    fn add_password(&mut self, hash: PasswordHash) {
        if !self.passwords.contains(&hash) {
            self.passwords.push(hash);
        }
        self.nopass = false;
    }

    fn remove_password(&mut self, hash: &PasswordHash) -> Result<(), RuleError> {
        let before = self.passwords.len();
        self.passwords.retain(|h| h != hash);
        if self.passwords.len() == before {
            return Err(RuleError::NoSuchPassword);
        }
        Ok(())
    }

    fn add_key_pattern(
        &mut self,
        pattern: &[u8],
        read: bool,
        write: bool,
    ) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::KeyAfterAllKeys);
        }
        if pattern.iter().any(|c| c.is_ascii_whitespace() || *c == 0) {
            return Err(RuleError::Syntax);
        }
        if pattern == b"*" && read && write {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        if let Some(existing) = self.keys.iter_mut().find(|k| k.pattern == pattern) {
            existing.read |= read;
            existing.write |= write;
        } else {
            self.keys.push(KeyPattern {
                pattern: Bytes::copy_from_slice(pattern),
                read,
                write,
            });
        }
        Ok(())
    }

    fn add_channel(&mut self, pattern: &[u8]) -> Result<(), RuleError> {
        if self.all_channels {
            return Err(RuleError::ChannelAfterAllChannels);
        }
        if pattern.iter().any(|c| c.is_ascii_whitespace() || *c == 0) {
            return Err(RuleError::Syntax);
        }
        if pattern == b"*" {
            self.all_channels = true;
            self.channels.clear();
        } else if !self.channels.iter().any(|c| c == pattern) {
            self.channels.push(Bytes::copy_from_slice(pattern));
        }
        Ok(())
    }

    fn set_all_commands(&mut self, allow: bool) {
        self.commands.clear();
        if allow {
            self.commands.push(CommandRule {
                allow: true,
                target: CommandTarget::All,
            });
        }
    }

    fn add_command_rule(&mut self, op: &[u8], catalog: &dyn Catalog) -> Result<(), RuleError> {
        let allow = op[0] == b'+';
        let text = std::str::from_utf8(&op[1..])
            .map_err(|_| RuleError::UnknownName)?
            .to_ascii_lowercase();
        let target = if let Some(category) = text.strip_prefix('@') {
            if category == "all" {
                self.set_all_commands(allow);
                return Ok(());
            }
            if !CATEGORIES.contains(&category) {
                return Err(RuleError::UnknownName);
            }
            CommandTarget::Category(category.to_owned())
        } else if let Some((name, sub)) = text.split_once('|') {
            if sub.is_empty() || sub.contains('|') || !catalog.has_command(name) {
                return Err(RuleError::UnknownName);
            }
            if !catalog.has_subcommand(name, sub) {
                return Err(RuleError::UnknownName);
            }
            CommandTarget::Subcommand(name.to_owned(), sub.to_owned())
        } else {
            if text.is_empty() || !catalog.has_command(&text) {
                return Err(RuleError::UnknownName);
            }
            CommandTarget::Command(text)
        };
        // A later rule on the same target overrides earlier ones, so the
        // earlier ones can go: the description stays short and equivalent.
        self.commands.retain(|rule| {
            rule.target != target
                && !matches!((&target, &rule.target),
                    (CommandTarget::Command(c), CommandTarget::Subcommand(n, _)) if c == n)
        });
        self.commands.push(CommandRule { allow, target });
        Ok(())
    }

    /// Whether `password` is one of the user's passwords (or the user needs none).
    pub fn check_password(&self, password: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let given = hash_password(password);
        // Compare with every stored hash, so timing does not tell which matched.
        self.passwords
            .iter()
            .fold(false, |found, h| hashes_equal(h, &given) | found)
    }

    /// Whether the user may run the command (key permissions aside).
    pub fn can_run(&self, cmd: &CommandRef<'_>) -> bool {
        if cmd.no_auth {
            return true;
        }
        let mut allowed = false;
        for rule in &self.commands {
            if rule.target.matches(cmd) {
                allowed = rule.allow;
            }
        }
        allowed
    }

    /// Whether the user may access `key` with the given kind of access.
    pub fn can_access_key(&self, key: &[u8], read: bool, write: bool) -> bool {
        self.all_keys
            || self
                .keys
                .iter()
                .any(|p| (!read || p.read) && (!write || p.write) && glob_match(&p.pattern, key))
    }

    /// The flags ACL GETUSER reports.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        flags.push(if self.skip_sanitize_payload {
            "skip-sanitize-payload"
        } else {
            "sanitize-payload"
        });
        flags
    }

    /// Key patterns as rules (`~*`, `~app:*`, `%R~logs:*`).
    pub fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let mut parts = Vec::new();
        for k in &self.keys {
            let prefix = match (k.read, k.write) {
                (true, true) => "~",
                (true, false) => "%R~",
                _ => "%W~",
            };
            parts.push(format!("{prefix}{}", String::from_utf8_lossy(&k.pattern)));
        }
        parts.join(" ")
    }

    /// Channel patterns as rules (`&*`, or `resetchannels &news`).
    fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        let mut out = String::from("resetchannels");
        for c in &self.channels {
            out.push_str(" &");
            out.push_str(&String::from_utf8_lossy(c));
        }
        out
    }

    /// Channel patterns as ACL GETUSER reports them (`&*`, `&news`, or empty).
    pub fn channels_field(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        self.channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Command rules, starting with `+@all` or `-@all` (`-@all +get`).
    pub fn describe_commands(&self) -> String {
        let mut rules = self.commands.iter().peekable();
        let mut out = String::new();
        if let Some(CommandRule {
            allow: true,
            target: CommandTarget::All,
        }) = rules.peek()
        {
            out.push_str("+@all");
            rules.next();
        } else {
            out.push_str("-@all");
        }
        for rule in rules {
            out.push(' ');
            out.push(if rule.allow { '+' } else { '-' });
            out.push_str(&rule.target.text());
        }
        out
    }

    /// The canonical rule string, as ACL LIST prints it after `user NAME`.
    /// Passwords appear only as `#<sha256>`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.flags().iter().map(|f| (*f).to_owned()).collect();
        parts.extend(self.passwords.iter().map(|h| format!("#{}", to_hex(h))));
        let keys = self.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        parts.push(self.describe_channels());
        parts.push(self.describe_commands());
        parts.join(" ")
    }
}

/// Whether a user name is acceptable (Redis: no spaces or NUL).
pub fn valid_user_name(name: &[u8]) -> bool {
    !name.is_empty() && !name.iter().any(|c| c.is_ascii_whitespace() || *c == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> User {
        let mut u = User::new("alice");
        let rules: Vec<&str> = rules.split_whitespace().collect();
        assert!(u.apply_rules(&rules, &AnyCommand).is_ok(), "{rules:?}");
        u
    }

    fn cmd<'a>(name: &'a str, categories: &'a [&'a str]) -> CommandRef<'a> {
        CommandRef {
            name,
            sub: None,
            categories,
            no_auth: false,
        }
    }

    #[test]
    fn describes_like_redis() {
        assert_eq!(
            User::default_user().describe(),
            "on nopass sanitize-payload ~* &* +@all"
        );
        assert_eq!(
            user("~cache:* +get +set").describe(),
            "off sanitize-payload ~cache:* resetchannels -@all +get +set"
        );
        assert_eq!(
            user("on +@all -@dangerous +get +get -set +set").describe(),
            "on sanitize-payload resetchannels +@all -@dangerous +get +set"
        );
        let u = user("on >secret %R~logs:* ~app:* &news");
        assert_eq!(
            u.describe(),
            format!(
                "on sanitize-payload #{} %R~logs:* ~app:* resetchannels &news -@all",
                to_hex(&hash_password(b"secret"))
            )
        );
        assert!(!u.describe().contains("secret "));
    }

    #[test]
    fn passwords_are_hashed_and_checked() {
        let mut u = user("on >one >two");
        assert_eq!(u.passwords.len(), 2);
        assert!(u.check_password(b"one") && u.check_password(b"two"));
        assert!(!u.check_password(b"three"));
        assert_eq!(
            u.apply_rules(&["<three"], &AnyCommand),
            Err((0, RuleError::NoSuchPassword))
        );
        let hash = to_hex(&hash_password(b"one"));
        assert!(u.apply_rules(&[format!("!{hash}")], &AnyCommand).is_ok());
        assert!(!u.check_password(b"one"));
        assert_eq!(
            u.apply_rules(&["#ABC"], &AnyCommand),
            Err((0, RuleError::BadHash))
        );
        assert!(u.apply_rules(&["nopass"], &AnyCommand).is_ok());
        assert!(u.check_password(b"anything"));
    }

    #[test]
    fn failed_rules_change_nothing() {
        let mut u = user("on +get");
        let before = u.clone();
        assert_eq!(
            u.apply_rules(&["+set", "~*", "~more"], &AnyCommand),
            Err((2, RuleError::KeyAfterAllKeys))
        );
        assert_eq!(u, before);
        assert_eq!(
            u.apply_rules(&["+@nosuch"], &AnyCommand),
            Err((0, RuleError::UnknownName))
        );
        assert_eq!(
            u.apply_rules(&["bogus"], &AnyCommand),
            Err((0, RuleError::Syntax))
        );
    }

    #[test]
    fn command_rules_last_match_wins() {
        let u = user("+@all -@dangerous +flushall");
        assert!(u.can_run(&cmd("get", &["read", "string"])));
        assert!(!u.can_run(&cmd("keys", &["keyspace", "dangerous"])));
        assert!(u.can_run(&cmd("flushall", &["keyspace", "dangerous"])));
        let u = user("+@limiter -rl.reset");
        assert!(u.can_run(&cmd("rl.check", &["limiter", "write"])));
        assert!(!u.can_run(&cmd("rl.reset", &["limiter", "write"])));
        assert!(!u.can_run(&cmd("get", &["read"])));
        let u = user("-@all +acl|whoami");
        let mut whoami = cmd("acl", &["slow"]);
        whoami.sub = Some(b"WHOAMI");
        assert!(u.can_run(&whoami));
        whoami.sub = Some(b"setuser");
        assert!(!u.can_run(&whoami));
        let mut auth = cmd("auth", &["connection"]);
        auth.no_auth = true;
        assert!(u.can_run(&auth));
    }

    #[test]
    fn key_patterns() {
        let u = user("~app:* %R~logs:*");
        assert!(u.can_access_key(b"app:1", true, true));
        assert!(u.can_access_key(b"logs:1", true, false));
        assert!(!u.can_access_key(b"logs:1", false, true));
        assert!(!u.can_access_key(b"other", true, false));
        let u = user("allkeys");
        assert!(u.can_access_key(b"anything", true, true));
        let u = user("~* resetkeys ~a");
        assert!(!u.all_keys && u.can_access_key(b"a", true, true));
    }

    #[test]
    fn hex_round_trip() {
        let h = hash_password(b"x");
        assert_eq!(from_hex(to_hex(&h).as_bytes()), Some(h));
        assert_eq!(from_hex(b"zz"), None);
    }
}
