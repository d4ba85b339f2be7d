//! A logical operation: an invocation joined with its completion, as checkers consume it.

use serde::{Deserialize, Serialize};

use super::{Value, F};

/// How a logical operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Took effect once, between invocation and completion.
    Ok,
    /// Certainly took no effect.
    Fail,
    /// Unknown: may take effect at any time after the invocation, or never.
    /// Also the outcome of an invocation that never completed.
    Info,
}

/// An invocation and its completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    /// Position of the invocation in the history; identifies the operation in
    /// checker reports.
    pub index: usize,
    /// Position of the completion record, `None` when the run ended first.
    pub completion_index: Option<usize>,
    /// Logical process.
    pub process: u64,
    /// The command.
    pub f: F,
    /// The key.
    pub key: String,
    /// The invocation's value: the command's arguments.
    pub args: Value,
    /// How it ended.
    pub outcome: Outcome,
    /// The completion's value (`Nil` without a completion record).
    pub result: Value,
    /// When the request was about to be sent.
    pub invoke_ns: u64,
    /// When the completion was recorded, `None` without a completion record.
    pub complete_ns: Option<u64>,
    /// Node the request went to (the completion's if set, else the invocation's).
    pub node: Option<String>,
    /// Error text of the completion.
    pub error: Option<String>,
}

impl Pair {
    /// Latest instant at which the operation may have taken effect: the
    /// completion time for `Ok` and `Fail`, unbounded (`u64::MAX`) for `Info`,
    /// whose effect may land after the client gave up on it.
    pub fn effect_deadline_ns(&self) -> u64 {
        match (self.outcome, self.complete_ns) {
            (Outcome::Info, _) | (_, None) => u64::MAX,
            (_, Some(t)) => t,
        }
    }

    /// Whether the operation completed `Ok`.
    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    /// Short human-readable description used in anomaly reports.
    pub fn describe(&self) -> String {
        let end = match self.complete_ns {
            Some(t) => t.to_string(),
            None => "never".to_owned(),
        };
        format!(
            "op {} (process {}: {:?} {:?} {} -> {:?} {}, {}..{} ns)",
            self.index,
            self.process,
            self.f,
            self.key,
            compact(&self.args),
            self.outcome,
            compact(&self.result),
            self.invoke_ns,
            end
        )
    }
}

/// Values in reports, without the enum noise for the common cases.
fn compact(value: &Value) -> String {
    match value {
        Value::Nil => "nil".to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Str(s) => format!("{s:?}"),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}
