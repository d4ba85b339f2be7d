//! What a Raft log entry carries: a batch of client commands stamped with the
//! leader's clock, and what applying it returns.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::reply::Reply;

/// Identifies one client request across forwarding and retries, so the state
/// machine applies it at most once. `origin` is random per node process and
/// `seq` counts up within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId {
    pub origin: u64,
    pub seq: u64,
}

/// One Raft log entry's application data. Group commit puts many concurrent
/// commands into one entry.
///
/// `stamp_ns` is the leader's wall clock when it proposed the entry. The state
/// machine never lets time go backwards: it uses `max(stamp_ns, last applied
/// stamp)`, so every replica computes the same expiry and limiter state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPayload {
    pub stamp_ns: u64,
    pub ops: Vec<Proposal>,
}

/// What a client asks the log to do.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub enum WriteOp {
    /// One write command, by argument vector.
    Command(Vec<Bytes>),
    /// MULTI/EXEC: the commands run back to back, atomically, in one apply.
    /// With a watch, nothing runs (the reply is a nil array) if a watched key
    /// changed after the watch's log index.
    Transaction {
        watch: Option<Watch>,
        commands: Vec<Vec<Bytes>>,
    },
}

/// Keys a transaction depends on, and the applied log index at which the
/// client observed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    pub index: u64,
    pub keys: Vec<Bytes>,
}

/// One replicated operation inside a [`LogPayload`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Proposal {
    /// A client's write, with its id for de-duplication.
    Client { id: RequestId, op: WriteOp },
    /// Physically remove up to `max_keys` keys whose expiry has passed. The
    /// leader proposes it periodically; which keys go is decided from the
    /// replicated state and stamp, so replicas stay identical.
    Sweep { max_keys: u32 },
}

impl std::fmt::Debug for WriteOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteOp::Command(argv) => f.debug_tuple("Command").field(&LoggedArgv(argv)).finish(),
            WriteOp::Transaction { watch, commands } => f
                .debug_struct("Transaction")
                .field("watch", watch)
                .field(
                    "commands",
                    &commands
                        .iter()
                        .map(|argv| LoggedArgv(argv))
                        .collect::<Vec<_>>(),
                )
                .finish(),
        }
    }
}

impl WriteOp {
    /// Whether applying this changes ACL users (connections then re-check theirs).
    pub fn touches_acl(&self) -> bool {
        let is_acl =
            |argv: &Vec<Bytes>| argv.first().is_some_and(|n| n.eq_ignore_ascii_case(b"acl"));
        match self {
            WriteOp::Command(argv) => is_acl(argv),
            WriteOp::Transaction { commands, .. } => commands.iter().any(is_acl),
        }
    }
}

/// An argument vector as logs may show it: the arguments of commands that
/// carry credentials (AUTH, HELLO, ACL, CONFIG) are replaced by a count.
pub struct LoggedArgv<'a>(pub &'a [Bytes]);

impl std::fmt::Debug for LoggedArgv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sensitive = self.0.first().is_some_and(|name| {
            ["acl", "auth", "hello", "config"]
                .iter()
                .any(|s| name.eq_ignore_ascii_case(s.as_bytes()))
        });
        if sensitive {
            let name = String::from_utf8_lossy(&self.0[0]);
            return write!(f, "[{name:?}, <{} redacted>]", self.0.len() - 1);
        }
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// Result of applying one log entry: one reply per [`Proposal`], in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplyResponse {
    pub replies: Vec<Reply>,
}
