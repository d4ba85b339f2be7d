//! The payload of an operation record: command arguments on invocations, replies on completions.
//!
//! Values are externally tagged in JSON (`"nil"`, `{"int":5}`, `{"str":"a"}`,
//! `{"verdict":{...}}`) rather than untagged: an untagged `5` could be either a
//! counter delta or a register string after a round trip through a text
//! protocol, and an ambiguous history is worse than a verbose one.

use serde::{Deserialize, Serialize};

/// Arguments or result carried by an [`super::Op`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// No value: a read's invocation, an absent key, a refused acquire.
    #[default]
    Nil,
    /// An integer: an `INCRBY` delta or result, a counter read, a list element.
    Int(i64),
    /// A string: a register value, a lease id.
    Str(String),
    /// A boolean: whether a release found its lease.
    Bool(bool),
    /// A list read.
    List(Vec<i64>),
    /// `RL.CHECK` arguments.
    Limit(LimitArgs),
    /// `RL.CHECK` reply.
    Verdict(Verdict),
    /// `RL.ACQUIRE` arguments.
    Lease(LeaseArgs),
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Self {
        Self::Str(s.into())
    }
}

/// Rate-limiting algorithm named in an `RL.CHECK` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algo {
    /// At most `limit` admissions per window `[k·period, (k+1)·period)` of the
    /// server's clock.
    Fixed,
    /// Generic cell rate algorithm: a token bucket of capacity `burst` that
    /// refills at `limit` tokens per `period`.
    Gcra,
}

/// Arguments of `RL.CHECK key limit period ALGO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitArgs {
    /// Admissions allowed per period.
    pub limit: u64,
    /// Period length in milliseconds.
    pub period_ms: u64,
    /// Which algorithm the server applies.
    pub algo: Algo,
    /// GCRA bucket capacity; `None` means the server default, `burst = limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

/// Reply of `RL.CHECK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the request was admitted (and consumed quota).
    pub admitted: bool,
    /// Quota left after this request, as the server reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// For `fixed`: milliseconds from the moment the server evaluated this
    /// request until the end of the window it was counted in. For `gcra`: the
    /// server's time until the bucket is full again (recorded, not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_after_ms: Option<u64>,
}

/// Arguments of `RL.ACQUIRE key limit ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseArgs {
    /// Maximum number of leases held at once on the key.
    pub limit: u64,
    /// Lease lifetime in milliseconds, measured by the server from the grant.
    pub ttl_ms: u64,
}
