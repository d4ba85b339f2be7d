//! One recorded event of a history: an invocation or a completion of an operation.

use serde::{Deserialize, Serialize};

use super::Value;

/// Whether an [`Op`] starts an operation or reports how it ended.
///
/// The meaning of the completion kinds is a contract between the runner and the
/// checkers, and the checkers' soundness rests on it:
/// - `Ok`: the operation took effect exactly once, somewhere between its
///   invocation and this completion, and `value` is what it returned.
/// - `Fail`: the operation certainly did not take effect (for example the server
///   rejected it before doing anything). Only record `Fail` when that is certain.
/// - `Info`: the outcome is unknown (timeout, dropped connection, crash). The
///   operation may take effect at any time after its invocation, even after this
///   record, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A client is about to send the request.
    Invoke,
    /// The request took effect and returned `value`.
    Ok,
    /// The request certainly had no effect.
    Fail,
    /// The request's outcome is indeterminate.
    Info,
}

/// The function an operation applies, i.e. which command the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum F {
    /// `GET key`; returns the register's value, or `Nil` when the key is absent.
    /// On a counter key the completion carries the number read.
    Read,
    /// `SET key value`; the invocation carries the value written.
    Write,
    /// `SET key value GET`: writes the invocation's value and returns the previous
    /// one (`Nil` when the key was absent) in the completion.
    Swap,
    /// `INCRBY key delta`; the invocation carries `Int(delta)`, an `Ok`
    /// completion may carry `Int(total)` (the value after the increment).
    Add,
    /// `RL.CHECK key limit period ALGO`; the invocation carries
    /// [`Value::Limit`], the completion [`Value::Verdict`].
    Check,
    /// `RL.ACQUIRE key limit ttl`; the invocation carries [`Value::Lease`], an
    /// `Ok` completion `Str(lease_id)` when granted or `Nil` when refused.
    Acquire,
    /// `RL.RELEASE key lease_id`; the invocation carries `Str(lease_id)`.
    Release,
    /// Appends the invocation's `Int(element)` to a list.
    Append,
    /// Reads a whole list; the completion carries `List(elements)`.
    ReadList,
}

/// One line of a history: a Jepsen-style operation record.
///
/// A history is the sequence of these records in the order the runner observed
/// them. Each logical operation appears twice: an `Invoke` record and, unless the
/// run ended first, one completion record (`Ok`, `Fail` or `Info`) from the same
/// process with the same `f` and `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Logical process (a single-threaded client) that issued the operation.
    pub process: u64,
    /// Invocation or completion, and how it completed.
    pub kind: OpKind,
    /// The command.
    pub f: F,
    /// The key the command addresses.
    pub key: String,
    /// Arguments on an invocation, the returned value on a completion.
    #[serde(default)]
    pub value: Value,
    /// Monotonic nanoseconds since the start of the run. Invocations must be
    /// stamped before the request is sent and completions after the reply (or
    /// the failure) is observed, so the true effect lies inside the interval.
    pub time_ns: u64,
    /// The node the request was sent to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Error text for `Fail` and `Info` completions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// An invocation record.
    pub fn invoke(process: u64, f: F, key: impl Into<String>, value: Value, time_ns: u64) -> Self {
        Self {
            process,
            kind: OpKind::Invoke,
            f,
            key: key.into(),
            value,
            time_ns,
            node: None,
            error: None,
        }
    }

    /// The completion record matching this invocation: same process, function,
    /// key and node, with the given outcome, value and time.
    pub fn complete(&self, kind: OpKind, value: Value, time_ns: u64) -> Self {
        Self {
            process: self.process,
            kind,
            f: self.f,
            key: self.key.clone(),
            value,
            time_ns,
            node: self.node.clone(),
            error: None,
        }
    }

    /// Sets the node the request went to.
    pub fn with_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// Sets the error text.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
}
