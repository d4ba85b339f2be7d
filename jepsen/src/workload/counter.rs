//! `counter`: `INCRBY` with small positive deltas and `GET`s, on a few keys; reads must lie between acknowledged and attempted sums.

use rand::rngs::StdRng;
use rand::Rng;

use super::{error_completion, unexpected, Completion, Previous, Request, Workload};
use crate::checker::{Checker, Counter};
use crate::client::Resp;
use crate::history::{Value, F};

/// Counter keys.
const KEYS: u64 = 2;

/// The counter workload.
#[derive(Debug)]
pub struct CounterWorkload {
    prefix: String,
}

impl CounterWorkload {
    /// Keys are named `jepsen:<run_id>:ctr:<k>`.
    pub fn new(run_id: &str) -> Self {
        Self {
            prefix: format!("jepsen:{run_id}:ctr"),
        }
    }

    fn key(&self, k: u64) -> String {
        format!("{}:{k}", self.prefix)
    }
}

impl Workload for CounterWorkload {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn next(&self, _worker: usize, _previous: Option<&Previous>, rng: &mut StdRng) -> Request {
        let key = self.key(rng.gen_range(0..KEYS));
        if rng.gen_bool(0.3) {
            Request::new(F::Read, key, Value::Nil)
        } else {
            Request::new(F::Add, key, Value::Int(rng.gen_range(1..=5)))
        }
    }

    fn commands(&self, request: &Request) -> Vec<Vec<String>> {
        let key = request.key.clone();
        vec![match (&request.f, &request.value) {
            (F::Add, Value::Int(d)) => vec!["INCRBY".into(), key, d.to_string()],
            _ => vec!["GET".into(), key],
        }]
    }

    fn complete(&self, request: &Request, replies: &[Resp]) -> Completion {
        let is_write = request.f == F::Add;
        match (request.f, replies.first()) {
            (_, Some(Resp::Error(e))) => error_completion(is_write, e),
            (F::Add, Some(Resp::Int(total))) => Completion::Ok(Value::Int(*total)),
            (F::Read, Some(Resp::Bulk(None))) => Completion::Ok(Value::Nil),
            (F::Read, Some(Resp::Bulk(Some(v)))) => {
                match String::from_utf8_lossy(v).parse::<i64>() {
                    Ok(n) => Completion::Ok(Value::Int(n)),
                    Err(_) => unexpected(false, &Resp::Bulk(Some(v.clone()))),
                }
            }
            (_, Some(other)) => unexpected(is_write, other),
            (_, None) => unexpected(is_write, &Resp::Array(None)),
        }
    }

    fn final_reads(&self) -> Vec<Request> {
        (0..KEYS)
            .map(|k| Request::new(F::Read, self.key(k), Value::Nil))
            .collect()
    }

    fn checkers(&self) -> Vec<Box<dyn Checker + Send + Sync>> {
        vec![Box::new(Counter::default())]
    }
}
