//! Workloads: what each worker sends, how a reply becomes an `ok`/`fail`/`info` completion, and which checker judges the run.
//!
//! A workload is pure: it turns a worker's situation into the next
//! [`Request`], a request into RESP commands, and the replies into a
//! [`Completion`]. The runner does all I/O and timing, so the same code
//! serves every backend.
//!
//! How replies map to outcomes is what keeps the checkers sound:
//! a reply error on a read is `Fail` (a read changes nothing); on a write it
//! is `Fail` only when the server promises the write was not applied —
//! `CLUSTERDOWN` (the node never found a leader to submit it to; an
//! uncertain submission answers `TRYAGAIN` instead, see
//! `docs/ARCHITECTURE.md`, Failover) and rejections before execution
//! (`NOAUTH`, `NOPERM`, `WRONGTYPE`, `EXECABORT`, syntax). Everything else
//! on a write, a timeout or a lost connection is `Info`.

mod counter;
mod lease;
mod limiter;
mod list_append;
mod register;

use std::str::FromStr;

pub use counter::CounterWorkload;
pub use lease::LeaseWorkload;
pub use limiter::LimiterWorkload;
pub use list_append::ListAppendWorkload;
pub use register::RegisterWorkload;

use crate::checker::Checker;
use crate::client::Resp;
use crate::history::{Outcome, Value, F};
use crate::Error;

/// One operation a worker is about to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The function, as recorded in the history.
    pub f: F,
    /// The key.
    pub key: String,
    /// The invocation's value (arguments).
    pub value: Value,
    /// An idempotency token the commands carry (`RL.CHECK … ID token`): the
    /// server answers a resend with the first reply instead of applying it
    /// again, so the runner resends an indeterminate request until it learns
    /// the outcome.
    pub token: Option<String>,
}

impl Request {
    /// A request.
    pub fn new(f: F, key: impl Into<String>, value: Value) -> Self {
        Self {
            f,
            key: key.into(),
            value,
            token: None,
        }
    }

    /// The same request, carrying an idempotency token.
    pub fn with_token(self, token: String) -> Self {
        Self {
            token: Some(token),
            ..self
        }
    }
}

/// How an operation ended, before it is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Took effect; the value returned.
    Ok(Value),
    /// Certainly had no effect; the error text.
    Fail(String),
    /// Unknown; the error text.
    Info(String),
}

/// The last operation a worker completed, which some workloads follow up on.
#[derive(Debug, Clone)]
pub struct Previous {
    /// What was sent.
    pub request: Request,
    /// How it ended.
    pub outcome: Outcome,
    /// The value returned (`Nil` unless `Ok`).
    pub result: Value,
}

/// A workload; see the module docs.
pub trait Workload: Send + Sync {
    /// The name used on the command line and in reports.
    fn name(&self) -> &'static str;
    /// Workers when the run does not say.
    fn default_workers(&self) -> usize {
        10
    }
    /// Operations per second per worker when the run does not say.
    fn default_rate(&self) -> f64 {
        10.0
    }
    /// The next request of `worker`, given what it did last.
    fn next(
        &self,
        worker: usize,
        previous: Option<&Previous>,
        rng: &mut rand::rngs::StdRng,
    ) -> Request;
    /// The commands that perform `request`, sent in one write; one reply each.
    fn commands(&self, request: &Request) -> Vec<Vec<String>>;
    /// Interprets the replies to [`Workload::commands`].
    fn complete(&self, request: &Request, replies: &[Resp]) -> Completion;
    /// Reads made once the cluster has healed and gone quiet.
    fn final_reads(&self) -> Vec<Request> {
        Vec::new()
    }
    /// The checkers that judge the history.
    fn checkers(&self) -> Vec<Box<dyn Checker + Send + Sync>>;
}

/// Workload names, in `make chaos` order.
pub const NAMES: [&str; 5] = ["register", "counter", "limiter", "lease", "list-append"];

/// The workload called `name`; `run_id` keeps its keys apart from earlier runs on the same cluster.
pub fn by_name(name: &str, run_id: &str) -> Result<Box<dyn Workload>, Error> {
    Ok(match name {
        "register" => Box::new(RegisterWorkload::new(run_id)),
        "counter" => Box::new(CounterWorkload::new(run_id)),
        "limiter" => Box::new(LimiterWorkload::new(run_id)),
        "lease" => Box::new(LeaseWorkload::new(run_id)),
        "list-append" => Box::new(ListAppendWorkload::new(run_id)),
        other => {
            return Err(Error::Config(format!(
                "unknown workload {other:?} ({})",
                NAMES.join(", ")
            )))
        }
    })
}

/// A workload name checked against [`NAMES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadName(pub String);

impl FromStr for WorkloadName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        by_name(s, "check").map(|_| Self(s.to_owned()))
    }
}

/// Error codes after which a write certainly did not happen.
const DEFINITE_WRITE_ERRORS: [&str; 8] = [
    "CLUSTERDOWN",
    "NOAUTH",
    "WRONGPASS",
    "NOPERM",
    "WRONGTYPE",
    "EXECABORT",
    "ERR syntax",
    "ERR wrong number",
];

/// The completion for an error reply (see the module docs).
pub fn error_completion(is_write: bool, error: &str) -> Completion {
    if !is_write || DEFINITE_WRITE_ERRORS.iter().any(|p| error.starts_with(p)) {
        Completion::Fail(error.to_owned())
    } else {
        Completion::Info(error.to_owned())
    }
}

/// The completion for a reply nobody expected: never evidence of anything.
pub fn unexpected(is_write: bool, reply: &Resp) -> Completion {
    let text = format!("unexpected reply {reply:?}");
    if is_write {
        Completion::Info(text)
    } else {
        Completion::Fail(text)
    }
}

/// The single reply of a one-command request, or the first error among
/// several (a transaction's `MULTI`/`QUEUED` replies).
pub fn first_error(replies: &[Resp]) -> Option<&str> {
    replies.iter().find_map(|r| match r {
        Resp::Error(e) => Some(e.as_str()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_promised_failures_fail_a_write() {
        assert_eq!(
            error_completion(true, "CLUSTERDOWN No raft leader"),
            Completion::Fail("CLUSTERDOWN No raft leader".into())
        );
        assert!(matches!(
            error_completion(true, "TRYAGAIN write outcome unknown"),
            Completion::Info(_)
        ));
        assert!(matches!(
            error_completion(true, "ERR something else"),
            Completion::Info(_)
        ));
        assert!(matches!(
            error_completion(false, "TRYAGAIN whatever"),
            Completion::Fail(_)
        ));
    }
}
