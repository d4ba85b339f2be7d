//! What a Raft log entry carries: a batch of client commands stamped with the
//! leader's clock, and what applying it returns.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::reply::Reply;

/// Identifies one client request across forwarding and retries, so the state
/// machine applies it at most once. A node issues ids with a random `origin`
/// per process (top bit clear) and `seq` counting up within it; a request
/// that carries the client's own idempotency token gets an id derived from
/// it (top bit set), so the client's resend, to any node, is the same request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId {
    pub origin: u64,
    pub seq: u64,
}

impl RequestId {
    /// Set in `origin` for ids derived from a client's token, clear for a
    /// node's own, so the two kinds never collide.
    const FROM_TOKEN: u64 = 1 << 63;

    /// Whether this id was derived from a client's idempotency token.
    pub fn is_from_token(&self) -> bool {
        self.origin & Self::FROM_TOKEN != 0
    }

    /// A node process's origin, from a random number.
    pub fn node_origin(random: u64) -> u64 {
        random & !Self::FROM_TOKEN
    }

    /// The id of a write that carries an idempotency token (`RL.CHECK … ID
    /// token`, see [`crate::commands::limiter::idempotency_token`]).
    ///
    /// The id hashes the user and the whole command, token included: a
    /// resend of the same command is the same request, while another
    /// user's, or a different command reusing the token, is not.
    pub fn for_idempotent(user: &str, argv: &[Bytes]) -> RequestId {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in std::iter::once(user.as_bytes()).chain(argv.iter().map(|a| &a[..])) {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        let digest = hash.finalize();
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[at..at + 8]);
            u64::from_be_bytes(bytes)
        };
        RequestId {
            origin: word(0) | Self::FROM_TOKEN,
            seq: word(8),
        }
    }
}

/// One Raft log entry's application data. Group commit puts many concurrent
/// commands into one entry.
///
/// `stamp_ns` is the leader's wall clock when it proposed the entry. The state
/// machine never lets time go backwards: it uses `max(stamp_ns, last applied
/// stamp)`, so every replica computes the same expiry and limiter state.
///
/// `ops` is shared: openraft clones an entry for every follower it sends it
/// to and the log keeps recent entries in memory, so a clone is a reference
/// count, not a copy of every command (the encoding is the same as a `Vec`'s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPayload {
    pub stamp_ns: u64,
    pub ops: std::sync::Arc<Vec<Proposal>>,
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
    /// EVAL and its kin on behalf of an ACL user, whose permissions apply
    /// to every command the script issues. The leader's script executor
    /// serves it; it never reaches the log.
    Script { user: String, argv: Vec<Bytes> },
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
    /// What the leader's script executor ran in one round: the scripts'
    /// effects, not the scripts. Its reply is an array with one reply per
    /// run (see [`ScriptRound`]).
    Scripts(ScriptRound),
}

/// Scripts that ran once, on the leader, against the state at `base_index`,
/// replicated as the write commands they issued.
///
/// Applying a round replays each run's effects at the round's own time with
/// the op indexes the leader used, so every replica reproduces exactly what
/// the script saw and did. A run whose premises no longer hold — a key it
/// read changed after `base_index`, or expired between the round's time and
/// the apply time — is not applied and answers [`SCRIPT_CONFLICT`]; neither
/// is any later run of the round, since it may have read that run's writes.
/// The executor runs those again in a later round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptRound {
    /// The applied log index the runs read their keys at.
    pub base_index: u64,
    /// The round's time (Unix nanoseconds): what `TIME` answered inside the
    /// scripts, and the time their effects are applied at.
    pub at_ns: u64,
    /// Script bodies to add to the replicated script cache (EVAL and
    /// SCRIPT LOAD), so EVALSHA works on every node and after failover.
    pub loads: Vec<Bytes>,
    pub runs: Vec<ScriptRun>,
}

/// One script execution inside a [`ScriptRound`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptRun {
    /// The client's request id, so a retried EVAL is answered, not rerun.
    pub id: RequestId,
    /// Keys this run read from the applied state (not from earlier runs).
    pub reads: Vec<Bytes>,
    /// The write commands the script issued, each with the op index it ran
    /// with on the leader (commands such as SPOP derive their choice from it).
    pub effects: Vec<(u32, Vec<Bytes>)>,
    /// What the script returned on the leader.
    pub reply: Reply,
}

/// The reply of a [`ScriptRun`] that was not applied because its premises
/// changed. It never reaches a client: the executor runs the script again.
pub const SCRIPT_CONFLICT: &str = "SCRIPTCONFLICT the keys this script read changed";

impl std::fmt::Debug for ScriptRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptRun")
            .field("id", &self.id)
            .field("reads", &self.reads.len())
            .field(
                "effects",
                &self
                    .effects
                    .iter()
                    .map(|(_, argv)| LoggedArgv(argv))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
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
            WriteOp::Script { user, argv } => f
                .debug_struct("Script")
                .field("user", user)
                .field("argv", &LoggedArgv(argv))
                .finish(),
        }
    }
}

impl Proposal {
    /// Copies a client command's arguments into one buffer of their own. A
    /// command decoded from a connection borrows that connection's read
    /// buffer; whatever apply stores from it (a key's value, a list element)
    /// would keep the whole buffer alive for as long as the key lives.
    pub fn detached(self) -> Self {
        fn detach(argv: Vec<Bytes>) -> Vec<Bytes> {
            let total = argv.iter().map(Bytes::len).sum();
            let mut buf = bytes::BytesMut::with_capacity(total);
            for arg in &argv {
                buf.extend_from_slice(arg);
            }
            let mut all = buf.freeze();
            argv.iter().map(|arg| all.split_to(arg.len())).collect()
        }
        match self {
            Proposal::Client { id, op } => Proposal::Client {
                id,
                op: match op {
                    WriteOp::Command(argv) => WriteOp::Command(detach(argv)),
                    WriteOp::Transaction { watch, commands } => WriteOp::Transaction {
                        watch,
                        commands: commands.into_iter().map(detach).collect(),
                    },
                    script @ WriteOp::Script { .. } => script,
                },
            },
            other => other,
        }
    }

    /// Roughly how many bytes this adds to an entry: its arguments' lengths
    /// plus a little per argument. Group commit caps entries with it.
    pub fn size_hint(&self) -> usize {
        fn argv_size(argv: &[Bytes]) -> usize {
            argv.iter().map(|a| a.len() + 4).sum()
        }
        match self {
            Proposal::Client { op, .. } => match op {
                WriteOp::Command(argv) | WriteOp::Script { argv, .. } => argv_size(argv),
                WriteOp::Transaction { commands, .. } => {
                    commands.iter().map(|argv| argv_size(argv)).sum()
                }
            },
            Proposal::Sweep { .. } => 8,
            Proposal::Scripts(round) => {
                round.loads.iter().map(Bytes::len).sum::<usize>()
                    + round
                        .runs
                        .iter()
                        .map(|run| {
                            run.effects
                                .iter()
                                .map(|(_, argv)| argv_size(argv))
                                .sum::<usize>()
                                + run.reads.iter().map(|k| k.len() + 4).sum::<usize>()
                        })
                        .sum::<usize>()
            }
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
            WriteOp::Script { .. } => false,
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

#[cfg(test)]
mod tests {
    use super::RequestId;
    use bytes::Bytes;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    #[test]
    fn token_ids_never_collide_with_node_ids() {
        let check = argv("RL.CHECK k 5 1s ID t");
        let id = RequestId::for_idempotent("default", &check);
        assert_eq!(id, RequestId::for_idempotent("default", &check));
        assert_ne!(id.origin & (1 << 63), 0);
        assert_eq!(RequestId::node_origin(u64::MAX) & (1 << 63), 0);
        // Another user, or another command with the same token, is another request.
        assert_ne!(id, RequestId::for_idempotent("app", &check));
        assert_ne!(
            id,
            RequestId::for_idempotent("default", &argv("RL.CHECK k 6 1s ID t"))
        );
        // Length prefixes keep argument boundaries apart.
        assert_ne!(
            RequestId::for_idempotent("a", &argv("b c")),
            RequestId::for_idempotent("ab", &argv("c"))
        );
    }
}
