//! Protocol-neutral command replies, produced by the state machine and
//! encoded as RESP2 or RESP3 by the server's connection.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A command's reply. It is serializable because replies travel back from the
/// leader to a forwarding follower and are kept in the de-duplication table.
///
/// RESP3-only shapes (`Map`, `Set`, `Double`, `Bool`) are downgraded by the
/// connection when the client speaks RESP2, as Redis does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// `+OK`
    Ok,
    /// A simple string other than OK, e.g. `+PONG` or `+string` from TYPE.
    Status(String),
    /// An error; the text starts with its code, e.g. `ERR syntax error`.
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3 (EXEC after WATCH).
    NilArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(f64),
    Bool(bool),
    /// A reply whose shape differs by protocol, e.g. RL.CHECK: a flat array
    /// of integers in RESP2, a map in RESP3.
    ByProtocol {
        resp2: Box<Reply>,
        resp3: Box<Reply>,
    },
}

impl Reply {
    pub fn error(text: impl Into<String>) -> Self {
        Reply::Error(text.into())
    }

    pub fn bulk(data: impl Into<Bytes>) -> Self {
        Reply::Bulk(data.into())
    }

    pub fn status(text: impl Into<String>) -> Self {
        Reply::Status(text.into())
    }

    /// A bulk string, or nil when absent.
    pub fn bulk_or_nil(data: Option<Bytes>) -> Self {
        data.map_or(Reply::Nil, Reply::Bulk)
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The error code (first word) of an error reply, for metrics.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Reply::Error(text) => text.split(' ').next(),
            _ => None,
        }
    }

    pub fn syntax_error() -> Self {
        Reply::error("ERR syntax error")
    }

    pub fn not_integer() -> Self {
        Reply::error("ERR value is not an integer or out of range")
    }

    pub fn wrong_type() -> Self {
        Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value")
    }

    pub fn wrong_arity(command: &str) -> Self {
        Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            command.to_ascii_lowercase()
        ))
    }

    pub fn no_leader() -> Self {
        Reply::error("CLUSTERDOWN No raft leader")
    }
}
