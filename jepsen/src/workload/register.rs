//! `register`: `GET`, `SET` and `SET … GET` (an atomic swap) over a few keys, checked for linearizability.
//!
//! Values are unique (`<worker>-<n>`), which lets the checker drop
//! indeterminate writes nobody observed. The linearizability search grows
//! with the number of operations concurrent on a key, so keys rotate to a
//! fresh generation every [`OPS_PER_GENERATION`] operations, as Jepsen's
//! independent-key workloads do.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::StdRng;
use rand::Rng;

use super::{error_completion, unexpected, Completion, Previous, Request, Workload};
use crate::checker::{Checker, Linearizable};
use crate::client::Resp;
use crate::history::{Value, F};

/// Keys in use at any time.
const KEYS: u64 = 3;
/// Operations (over all keys) before moving to fresh keys.
const OPS_PER_GENERATION: u64 = 600;

/// The register workload.
#[derive(Debug)]
pub struct RegisterWorkload {
    prefix: String,
    issued: AtomicU64,
}

impl RegisterWorkload {
    /// Keys are named `jepsen:<run_id>:reg:<generation>:<k>`.
    pub fn new(run_id: &str) -> Self {
        Self {
            prefix: format!("jepsen:{run_id}:reg"),
            issued: AtomicU64::new(0),
        }
    }
}

impl Workload for RegisterWorkload {
    fn name(&self) -> &'static str {
        "register"
    }

    fn next(&self, worker: usize, _previous: Option<&Previous>, rng: &mut StdRng) -> Request {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        let key = format!(
            "{}:{}:{}",
            self.prefix,
            n / OPS_PER_GENERATION,
            rng.gen_range(0..KEYS)
        );
        let value = Value::Str(format!("{worker}-{n}"));
        match rng.gen_range(0..3) {
            0 => Request::new(F::Read, key, Value::Nil),
            1 => Request::new(F::Write, key, value),
            _ => Request::new(F::Swap, key, value),
        }
    }

    fn commands(&self, request: &Request) -> Vec<Vec<String>> {
        let value = match &request.value {
            Value::Str(v) => v.clone(),
            _ => String::new(),
        };
        let key = request.key.clone();
        vec![match request.f {
            F::Write => vec!["SET".into(), key, value],
            F::Swap => vec!["SET".into(), key, value, "GET".into()],
            _ => vec!["GET".into(), key],
        }]
    }

    fn complete(&self, request: &Request, replies: &[Resp]) -> Completion {
        let is_write = request.f != F::Read;
        match (request.f, replies.first()) {
            (_, Some(Resp::Error(e))) => error_completion(is_write, e),
            (F::Write, Some(Resp::Simple(ok))) if ok == "OK" => Completion::Ok(Value::Nil),
            (F::Read | F::Swap, Some(Resp::Bulk(None))) => Completion::Ok(Value::Nil),
            (F::Read | F::Swap, Some(Resp::Bulk(Some(v)))) => {
                Completion::Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
            }
            (_, Some(other)) => unexpected(is_write, other),
            (_, None) => unexpected(is_write, &Resp::Array(None)),
        }
    }

    fn checkers(&self) -> Vec<Box<dyn Checker + Send + Sync>> {
        vec![Box::new(Linearizable::default())]
    }
}
