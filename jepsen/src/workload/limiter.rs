//! `limiter`: many workers hammer `RL.CHECK` on a few keys with small limits, one key per algorithm.
//!
//! The limiter checker proves no key admitted more than its limit allows in
//! any window, counting an indeterminate check as an admission, and counts
//! the admissions lost to denials, the availability cost. Every check
//! carries a unique `ID`, so the runner can resend one whose outcome it
//! did not learn and get the server's first answer rather than a second
//! charge.

use rand::rngs::StdRng;
use rand::Rng;

use super::{error_completion, unexpected, Completion, Previous, Request, Workload};
use crate::checker::{Checker, Limiter};
use crate::client::Resp;
use crate::history::{Algo, LimitArgs, Value, Verdict, F};

/// One key per algorithm, each allowing 5 per second.
const KEYS: [(&str, Algo); 3] = [
    ("fixed", Algo::Fixed),
    ("sliding", Algo::Sliding),
    ("gcra", Algo::Gcra),
];
const LIMIT: u64 = 5;
const PERIOD_MS: u64 = 1000;

/// The limiter workload.
#[derive(Debug)]
pub struct LimiterWorkload {
    prefix: String,
}

impl LimiterWorkload {
    /// Keys are named `jepsen:<run_id>:rl:<algo>`.
    pub fn new(run_id: &str) -> Self {
        Self {
            prefix: format!("jepsen:{run_id}:rl"),
        }
    }
}

fn algo_name(algo: Algo) -> &'static str {
    match algo {
        Algo::Fixed => "fixed",
        Algo::Sliding => "sliding",
        Algo::Gcra => "gcra",
    }
}

impl Workload for LimiterWorkload {
    fn name(&self) -> &'static str {
        "limiter"
    }

    fn default_workers(&self) -> usize {
        15
    }

    fn default_rate(&self) -> f64 {
        20.0
    }

    fn next(&self, worker: usize, _previous: Option<&Previous>, rng: &mut StdRng) -> Request {
        let (name, algo) = KEYS
            .get(rng.gen_range(0..KEYS.len()))
            .copied()
            .unwrap_or(("gcra", Algo::Gcra));
        Request::new(
            F::Check,
            format!("{}:{name}", self.prefix),
            Value::Limit(LimitArgs {
                limit: LIMIT,
                period_ms: PERIOD_MS,
                algo,
                burst: None,
            }),
        )
        .with_token(format!("w{worker}-{:016x}", rng.gen::<u64>()))
    }

    fn commands(&self, request: &Request) -> Vec<Vec<String>> {
        let Value::Limit(args) = &request.value else {
            return vec![vec!["PING".into()]];
        };
        let mut command = vec![
            "RL.CHECK".into(),
            request.key.clone(),
            args.limit.to_string(),
            format!("{}ms", args.period_ms),
            "ALGO".into(),
            algo_name(args.algo).into(),
        ];
        if let Some(token) = &request.token {
            command.extend(["ID".into(), token.clone()]);
        }
        vec![command]
    }

    fn complete(&self, _request: &Request, replies: &[Resp]) -> Completion {
        match replies.first() {
            Some(Resp::Error(e)) => error_completion(true, e),
            Some(Resp::Array(Some(items))) => match verdict(items) {
                Some(v) => Completion::Ok(Value::Verdict(v)),
                None => unexpected(true, &Resp::Array(Some(items.clone()))),
            },
            Some(other) => unexpected(true, other),
            None => unexpected(true, &Resp::Array(None)),
        }
    }

    fn checkers(&self) -> Vec<Box<dyn Checker + Send + Sync>> {
        vec![Box::new(Limiter::default())]
    }
}

/// `[allowed, limit, remaining, retry_after_ms, reset_after_ms]`.
fn verdict(items: &[Resp]) -> Option<Verdict> {
    let int = |i: usize| match items.get(i) {
        Some(Resp::Int(n)) => Some(*n),
        _ => None,
    };
    Some(Verdict {
        allowed: int(0)? == 1,
        limit: int(1).and_then(|n| u64::try_from(n).ok()),
        remaining: int(2).and_then(|n| u64::try_from(n).ok()),
        retry_after_ms: int(3),
        reset_after_ms: int(4).and_then(|n| u64::try_from(n).ok()),
    })
}
