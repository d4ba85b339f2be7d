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

/// Rate-limiting algorithm named in an `RL.CHECK` command (`ALGO …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algo {
    /// Generic cell rate algorithm (the server's default): a token bucket of
    /// capacity `burst` that refills at `limit` units per `period`.
    Gcra,
    /// Sliding window: at most `limit` per aligned window and a weighted
    /// estimate across the previous one.
    Sliding,
    /// At most `limit` per window `[k·period, (k+1)·period)` of the server's
    /// clock (aligned to the UNIX epoch).
    Fixed,
}

/// Arguments of `RL.CHECK key limit period [BURST n] ALGO algo` (cost 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitArgs {
    /// Units allowed per period.
    pub limit: u64,
    /// Period length in milliseconds.
    pub period_ms: u64,
    /// Which algorithm the server applies.
    pub algo: Algo,
    /// GCRA bucket capacity; `None` means the server default, `burst = limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

/// Reply of `RL.CHECK`: `[allowed, limit, remaining, retry_after_ms, reset_after_ms]`.
///
/// Only `allowed` is required; the rest is recorded when the runner parsed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the request was admitted (and took one unit).
    pub allowed: bool,
    /// The key's capacity as the server reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Units left after this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// `-1` when allowed, else milliseconds (rounded up) until a retry succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<i64>,
    /// Milliseconds, rounded up, from the request's timestamp until the key
    /// is full again. For `fixed` that is the end of the window the request
    /// was counted in, which the limiter checker relies on; for `gcra` the
    /// theoretical arrival time; for `sliding` see the server docs.
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
