//! `lease`: workers take concurrency leases (`RL.ACQUIRE`) on one key and give them back (`RL.RELEASE`); never more than the limit held.
//!
//! A worker that was granted a lease releases it with its next operation
//! (most of the time; sometimes it lets the lease expire instead, so expiry
//! is exercised too); otherwise it tries to acquire.

use rand::rngs::StdRng;
use rand::Rng;

use super::{error_completion, unexpected, Completion, Previous, Request, Workload};
use crate::checker::{Checker, Leases};
use crate::client::Resp;
use crate::history::{LeaseArgs, Outcome, Value, F};

const ARGS: LeaseArgs = LeaseArgs {
    limit: 2,
    ttl_ms: 2000,
};

/// The lease workload.
#[derive(Debug)]
pub struct LeaseWorkload {
    key: String,
}

impl LeaseWorkload {
    /// The key is `jepsen:<run_id>:sem`.
    pub fn new(run_id: &str) -> Self {
        Self {
            key: format!("jepsen:{run_id}:sem"),
        }
    }
}

impl Workload for LeaseWorkload {
    fn name(&self) -> &'static str {
        "lease"
    }

    fn default_workers(&self) -> usize {
        6
    }

    fn next(&self, _worker: usize, previous: Option<&Previous>, rng: &mut StdRng) -> Request {
        if let Some(p) = previous {
            if let (F::Acquire, Outcome::Ok, Value::Str(id)) = (p.request.f, p.outcome, &p.result) {
                if rng.gen_bool(0.9) {
                    return Request::new(F::Release, self.key.clone(), Value::Str(id.clone()));
                }
            }
        }
        Request::new(F::Acquire, self.key.clone(), Value::Lease(ARGS))
    }

    fn commands(&self, request: &Request) -> Vec<Vec<String>> {
        let key = request.key.clone();
        vec![match &request.value {
            Value::Str(id) => vec!["RL.RELEASE".into(), key, id.clone()],
            Value::Lease(a) => vec![
                "RL.ACQUIRE".into(),
                key,
                a.limit.to_string(),
                format!("{}ms", a.ttl_ms),
            ],
            _ => vec!["PING".into()],
        }]
    }

    fn complete(&self, request: &Request, replies: &[Resp]) -> Completion {
        match (request.f, replies.first()) {
            (_, Some(Resp::Error(e))) => error_completion(true, e),
            (F::Release, Some(Resp::Int(n))) => Completion::Ok(Value::Bool(*n == 1)),
            (F::Acquire, Some(Resp::Array(Some(items)))) => match items.as_slice() {
                [Resp::Int(1), id, ..] => match id.as_text() {
                    Some(id) => Completion::Ok(Value::Str(id)),
                    None => unexpected(true, id),
                },
                [Resp::Int(0), ..] => Completion::Ok(Value::Nil),
                _ => unexpected(true, &Resp::Array(Some(items.clone()))),
            },
            (_, Some(other)) => unexpected(true, other),
            (_, None) => unexpected(true, &Resp::Array(None)),
        }
    }

    fn checkers(&self) -> Vec<Box<dyn Checker + Send + Sync>> {
        vec![Box::new(Leases::default())]
    }
}
