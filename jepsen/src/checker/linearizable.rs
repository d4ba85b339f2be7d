//! Linearizability of registers (`GET`, `SET`, `SET … GET`), checked key by key.
//!
//! Linearizability is compositional (Herlihy & Wing's locality, the
//! "P-compositionality" Porcupine exploits): a history is linearizable iff its
//! restriction to each key is, so every key is searched on its own, which
//! keeps the exponential search small.
//!
//! Per key, operations are translated into the register model:
//! - `Fail` operations are dropped: by contract they did not happen.
//! - Reads that did not complete `Ok` are dropped: a read without a result
//!   neither changes nor constrains the register.
//! - `Info` writes and swaps may take effect at any point after their
//!   invocation (their completion is +∞) or never; an `Info` swap's returned
//!   value is unknown, so it accepts any previous value.
//! - `Ok` reads must return the register's value, `Ok` swaps must return the
//!   previous value, and every `Ok` operation takes effect between its
//!   invocation and completion timestamps.
//! - `Info` writes and swaps whose value no `Ok` read or swap ever returned
//!   are dropped before the search. This is exact, not a heuristic: in any
//!   linearization that includes such an operation, the register holds its
//!   value until the next write or swap, so nothing in between checks the
//!   state (that would observe the value), and the next operation is a write
//!   or an `Info` swap, neither of which checks it either (an `Ok` swap would
//!   return the value). Removing the operation therefore leaves a valid
//!   linearization. This matters because every indeterminate operation left
//!   in doubles the configurations a refutation must visit; with unique
//!   written values (which the runner should use) most of them go.
//!
//! The register starts absent (`nil`): runs use fresh keys.
//!
//! The search (see `search.rs`) has no wall-clock limit. It has a step and a
//! memo-size budget, and running out of either yields `Unknown` for that key,
//! never `Valid`.
//!
//! Cost grows with the number of operations concurrent on one key. Measured
//! on simulated histories with about 10% indeterminate results: ten clients
//! on a key with 3,000 operations decide in milliseconds, twenty in
//! seconds, thirty exhaust the default budget. A workload should therefore
//! keep around ten clients per key and move to fresh keys every few thousand
//! operations, as Jepsen's independent-key workloads do.

mod search;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::json;

use super::{by_key, uses, CheckResult, Checker, Validity};
use crate::history::{Outcome, Pair, Value, F};
use search::{Budget, SearchOp, State, Step};

/// Functions that make a key a register.
const REGISTER_FS: [F; 3] = [F::Read, F::Write, F::Swap];
/// Functions that change a key in some other model; a key that mixes them
/// with register writes cannot be judged as a register.
const OTHER_WRITERS: [F; 5] = [F::Add, F::Check, F::Acquire, F::Release, F::Append];

/// The register linearizability checker.
#[derive(Debug, Clone, Copy)]
pub struct Linearizable {
    /// Search steps (list entries visited) allowed per key.
    pub max_steps: u64,
    /// Memoised configurations allowed per key; each costs one bit per
    /// operation on the key, so this bounds memory.
    pub max_cache_entries: usize,
}

impl Default for Linearizable {
    fn default() -> Self {
        Self {
            max_steps: 100_000_000,
            max_cache_entries: 2_000_000,
        }
    }
}

/// The verdict for one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyReport {
    /// The key.
    pub key: String,
    /// `Valid`, `Invalid`, or `Unknown` (budget exhausted or uninterpretable).
    pub validity: Validity,
    /// Operations that entered the search.
    pub ops: usize,
    /// Search steps taken.
    pub steps: u64,
    /// Configurations memoised.
    pub cache_entries: usize,
    /// Why the key is not linearizable.
    pub violation: Option<Violation>,
    /// Why the verdict is `Unknown`.
    pub reason: Option<String>,
}

/// A minimal explanation of a non-linearizable key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// History index of the operation the search could not get past: every
    /// order consistent with the longest prefix reaches its completion before
    /// it can be linearized.
    pub op: usize,
    /// Human-readable form of that operation.
    pub op_description: String,
    /// History indices of the longest consistently linearized prefix, in
    /// linearization order.
    pub prefix: Vec<usize>,
    /// The register after that prefix (`None` = absent).
    pub state_after_prefix: Option<String>,
}

impl Linearizable {
    /// Checks every register key and returns one report per key.
    pub fn check_keys(&self, ops: &[Pair]) -> Vec<KeyReport> {
        by_key(ops)
            .into_iter()
            .filter(|(_, key_ops)| uses(key_ops, &REGISTER_FS))
            .filter_map(|(key, key_ops)| {
                let writes = uses(&key_ops, &[F::Write, F::Swap]);
                let foreign = uses(&key_ops, &OTHER_WRITERS);
                match (writes, foreign) {
                    // Reads of a key owned by another workload (e.g. counter reads).
                    (false, true) => None,
                    (true, true) => Some(unknown(
                        key,
                        "key mixes register writes with other commands".to_owned(),
                    )),
                    _ => Some(self.check_key(key, &key_ops)),
                }
            })
            .collect()
    }

    fn check_key(&self, key: &str, key_ops: &[&Pair]) -> KeyReport {
        let (search_ops, origin, values) = match translate(key_ops) {
            Ok(t) => t,
            Err(reason) => return unknown(key, reason),
        };
        let budget = Budget {
            max_steps: self.max_steps,
            max_cache_entries: self.max_cache_entries,
        };
        let (outcome, effort) = search::search(&search_ops, budget);
        let mut report = KeyReport {
            key: key.to_owned(),
            validity: Validity::Valid,
            ops: search_ops.len(),
            steps: effort.steps,
            cache_entries: effort.cache_entries,
            violation: None,
            reason: None,
        };
        match outcome {
            search::Outcome::Linearizable => {}
            search::Outcome::Exhausted => {
                report.validity = Validity::Unknown;
                report.reason = Some(format!(
                    "search budget exhausted after {} steps and {} memoised configurations",
                    effort.steps, effort.cache_entries
                ));
            }
            search::Outcome::Violation {
                blocked,
                prefix,
                state,
            } => {
                report.validity = Validity::Invalid;
                let blocked_pair = key_ops[origin[blocked]];
                report.violation = Some(Violation {
                    op: blocked_pair.index,
                    op_description: blocked_pair.describe(),
                    prefix: prefix.iter().map(|&i| key_ops[origin[i]].index).collect(),
                    state_after_prefix: value_of(&values, state),
                });
            }
        }
        report
    }
}

impl Checker for Linearizable {
    fn name(&self) -> &'static str {
        "linearizable"
    }

    fn check(&self, ops: &[Pair]) -> CheckResult {
        let reports = self.check_keys(ops);
        let mut valid = Validity::Valid;
        let mut anomalies = Vec::new();
        for r in &reports {
            valid = valid.and(r.validity);
            if let Some(v) = &r.violation {
                let tail: Vec<String> = v.prefix[v.prefix.len().saturating_sub(5)..]
                    .iter()
                    .map(|i| i.to_string())
                    .collect();
                anomalies.push(format!(
                    "key {:?} is not linearizable: {} cannot be linearized after the longest \
                     consistent prefix ({} ops, ending with ops [{}]), which leaves the register at {}",
                    r.key,
                    v.op_description,
                    v.prefix.len(),
                    tail.join(", "),
                    v.state_after_prefix.as_deref().map_or("nil".to_owned(), |s| format!("{s:?}")),
                ));
            }
            if let Some(reason) = &r.reason {
                anomalies.push(format!("key {:?} undecided: {reason}", r.key));
            }
        }
        let count = |v: Validity| reports.iter().filter(|r| r.validity == v).count();
        CheckResult {
            name: self.name().to_owned(),
            valid,
            anomalies,
            stats: json!({
                "keys": reports.len(),
                "valid_keys": count(Validity::Valid),
                "invalid_keys": count(Validity::Invalid),
                "unknown_keys": count(Validity::Unknown),
                "ops": reports.iter().map(|r| r.ops).sum::<usize>(),
                "steps": reports.iter().map(|r| r.steps).sum::<u64>(),
                "max_cache_entries": reports.iter().map(|r| r.cache_entries).max().unwrap_or(0),
            }),
        }
    }
}

fn unknown(key: &str, reason: String) -> KeyReport {
    KeyReport {
        key: key.to_owned(),
        validity: Validity::Unknown,
        ops: 0,
        steps: 0,
        cache_entries: 0,
        violation: None,
        reason: Some(reason),
    }
}

/// Interns register values: id 0 is absent, id `i` is `values[i - 1]`.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, State>,
    values: Vec<String>,
}

impl Interner {
    fn id(&mut self, value: &Value, what: &str, op: &Pair) -> Result<State, String> {
        match value {
            Value::Nil => Ok(0),
            Value::Str(s) => {
                if let Some(&id) = self.ids.get(s) {
                    return Ok(id);
                }
                self.values.push(s.clone());
                let id = State::try_from(self.values.len())
                    .map_err(|_| "too many distinct register values".to_owned())?;
                self.ids.insert(s.clone(), id);
                Ok(id)
            }
            other => Err(format!(
                "{what} of op {} is {other:?}, not a register value",
                op.index
            )),
        }
    }
}

fn value_of(values: &[String], state: State) -> Option<String> {
    (state as usize)
        .checked_sub(1)
        .and_then(|i| values.get(i))
        .cloned()
}

type Translated = (Vec<SearchOp>, Vec<usize>, Vec<String>);

/// Builds the search's operations; `origin[i]` is the position in `key_ops`
/// of search operation `i`.
fn translate(key_ops: &[&Pair]) -> Result<Translated, String> {
    let observed: HashSet<&str> = key_ops
        .iter()
        .filter(|op| op.is_ok() && matches!(op.f, F::Read | F::Swap))
        .filter_map(|op| match &op.result {
            Value::Str(v) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    let mut interner = Interner::default();
    let mut ops = Vec::new();
    let mut origin = Vec::new();
    for (pos, op) in key_ops.iter().enumerate() {
        let ret = match op.outcome {
            Outcome::Fail => continue,
            // An unobserved indeterminate write can be dropped (module docs).
            Outcome::Info
                if matches!(op.f, F::Write | F::Swap)
                    && !matches!(&op.args, Value::Str(v) if observed.contains(v.as_str())) =>
            {
                continue
            }
            Outcome::Info => None,
            // An Ok op always has a completion time; `effect_deadline_ns` is
            // +∞ only for ops without one, which keeps the op mandatory.
            Outcome::Ok => Some(op.effect_deadline_ns()),
        };
        let step = match op.f {
            F::Read if ret.is_none() => continue,
            F::Read => Step::Read(interner.id(&op.result, "read result", op)?),
            F::Write => {
                if op.args == Value::Nil {
                    return Err(format!("write op {} carries no value", op.index));
                }
                Step::Write(interner.id(&op.args, "written value", op)?)
            }
            F::Swap => {
                if op.args == Value::Nil {
                    return Err(format!("swap op {} carries no value", op.index));
                }
                let new = interner.id(&op.args, "swapped-in value", op)?;
                let prev = match ret {
                    Some(_) => Some(interner.id(&op.result, "swap's previous value", op)?),
                    None => None,
                };
                Step::Swap { new, prev }
            }
            other => return Err(format!("op {} is {other:?}, not a register op", op.index)),
        };
        ops.push(SearchOp {
            step,
            call: op.invoke_ns,
            ret,
        });
        origin.push(pos);
    }
    Ok((ops, origin, interner.values))
}
