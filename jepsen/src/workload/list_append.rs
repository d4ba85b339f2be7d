//! `list-append`: unique integers appended with `MULTI; RPUSH; LRANGE; EXEC` and lists read with `MULTI; LRANGE; EXEC`, as Jepsen runs it against RedisRaft.
//!
//! Each transaction touches one key, so the history stays in the
//! single-key format every checker reads; an append's transaction also
//! reads the list it produced, which gives the checker an observation per
//! append.

use std::sync::atomic::{AtomicI64, Ordering};

use rand::rngs::StdRng;
use rand::Rng;

use super::{error_completion, first_error, unexpected, Completion, Previous, Request, Workload};
use crate::checker::{Checker, ListAppend};
use crate::client::Resp;
use crate::history::{Value, F};

/// List keys.
const KEYS: u64 = 3;

/// The list-append workload.
#[derive(Debug)]
pub struct ListAppendWorkload {
    prefix: String,
    next_element: AtomicI64,
}

impl ListAppendWorkload {
    /// Keys are named `jepsen:<run_id>:list:<k>`.
    pub fn new(run_id: &str) -> Self {
        Self {
            prefix: format!("jepsen:{run_id}:list"),
            next_element: AtomicI64::new(1),
        }
    }

    fn key(&self, k: u64) -> String {
        format!("{}:{k}", self.prefix)
    }
}

/// The list an `LRANGE` returned, if it is one of integers.
fn list(reply: &Resp) -> Option<Vec<i64>> {
    match reply {
        Resp::Array(Some(items)) => items
            .iter()
            .map(|i| i.as_text().and_then(|t| t.parse().ok()))
            .collect(),
        _ => None,
    }
}

impl Workload for ListAppendWorkload {
    fn name(&self) -> &'static str {
        "list-append"
    }

    fn next(&self, _worker: usize, _previous: Option<&Previous>, rng: &mut StdRng) -> Request {
        let key = self.key(rng.gen_range(0..KEYS));
        if rng.gen_bool(0.4) {
            Request::new(F::ReadList, key, Value::Nil)
        } else {
            let e = self.next_element.fetch_add(1, Ordering::Relaxed);
            Request::new(F::Append, key, Value::Int(e))
        }
    }

    fn commands(&self, request: &Request) -> Vec<Vec<String>> {
        let key = request.key.clone();
        let lrange = vec!["LRANGE".into(), key.clone(), "0".into(), "-1".into()];
        match &request.value {
            Value::Int(e) => vec![
                vec!["MULTI".into()],
                vec!["RPUSH".into(), key, e.to_string()],
                lrange,
                vec!["EXEC".into()],
            ],
            _ => vec![vec!["MULTI".into()], lrange, vec!["EXEC".into()]],
        }
    }

    fn complete(&self, request: &Request, replies: &[Resp]) -> Completion {
        let is_write = request.f == F::Append;
        // MULTI and QUEUED replies come first; EXEC's reply is the last.
        let Some(exec) = replies.last() else {
            return unexpected(is_write, &Resp::Array(None));
        };
        if let Resp::Error(e) = exec {
            return error_completion(is_write, e);
        }
        if let Some(e) = first_error(replies) {
            // A command refused while queuing aborts the whole transaction (EXECABORT).
            return error_completion(is_write, e);
        }
        let Resp::Array(Some(results)) = exec else {
            return unexpected(is_write, exec);
        };
        match results.last().and_then(list) {
            Some(l) => Completion::Ok(Value::List(l)),
            None => unexpected(is_write, exec),
        }
    }

    fn final_reads(&self) -> Vec<Request> {
        (0..KEYS)
            .map(|k| Request::new(F::ReadList, self.key(k), Value::Nil))
            .collect()
    }

    fn checkers(&self) -> Vec<Box<dyn Checker + Send + Sync>> {
        vec![Box::new(ListAppend::default())]
    }
}
