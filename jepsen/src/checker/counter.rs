//! Counters (`INCRBY` plus `GET`): every observed value must be explainable by the increments.
//!
//! A key belongs to this checker when some operation on it is an `Add`.
//!
//! For an `Ok` read invoked at `i` and completed at `c`, linearizability puts
//! its effect at some instant in `[i, c]`. At that instant:
//! - every `Ok` increment that *completed before `i`* has certainly been
//!   applied (the "acknowledged" set);
//! - no increment invoked after `c` can have been applied, nor any `Fail`
//!   one; the others (`Ok` increments invoked by `c`, and `Info` increments
//!   invoked by `c`, which may land at any time after invocation) may or may
//!   not have been.
//!
//! So the value read lies between `acked + (sum of the negative possible
//! deltas)` and `acked + (sum of the positive possible deltas)`. With only
//! positive deltas this is exactly "at least the acknowledged sum, at most
//! the attempted sum". An `Ok` increment that returns the new total is a read
//! fused with its own increment: the same bounds apply to the other
//! increments, plus its own delta. Ties in timestamps are treated as
//! concurrency (an increment completing at the instant a read is invoked is
//! not counted as acknowledged), which can only widen the bounds.
//!
//! A missing key reads as `nil`, i.e. 0. The final read (an `Ok` read
//! invoked after every increment on the key has completed or been given up
//! on) gets the tightest bounds of all; when `require_final_read` is set a
//! key without one is `Unknown`, since lost acknowledged increments would
//! otherwise go unnoticed at the end of the run.

use serde_json::json;

use super::{by_key, push_capped, uses, CheckResult, Checker, Validity};
use crate::history::{Outcome, Pair, Value, F};

/// The counter checker.
#[derive(Debug, Clone, Copy)]
pub struct Counter {
    /// Demand a final read per counter key.
    pub require_final_read: bool,
    /// Anomalies listed per run (all are counted in the stats).
    pub max_anomalies: usize,
}

impl Default for Counter {
    fn default() -> Self {
        Self {
            require_final_read: true,
            max_anomalies: 50,
        }
    }
}

/// Running sums of a set of increments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sums {
    total: i128,
    positive: i128,
    negative: i128,
}

impl Sums {
    fn of(delta: i64) -> Self {
        let d = i128::from(delta);
        Self {
            total: d,
            positive: d.max(0),
            negative: d.min(0),
        }
    }

    fn plus(self, o: Self) -> Self {
        Self {
            total: self.total + o.total,
            positive: self.positive + o.positive,
            negative: self.negative + o.negative,
        }
    }

    fn minus(self, o: Self) -> Self {
        Self {
            total: self.total - o.total,
            positive: self.positive - o.positive,
            negative: self.negative - o.negative,
        }
    }
}

/// Increments sorted by a timestamp, with prefix sums for O(log n) queries.
struct Prefix {
    times: Vec<u64>,
    sums: Vec<Sums>,
}

impl Prefix {
    fn new(mut items: Vec<(u64, i64)>) -> Self {
        items.sort_unstable();
        let mut sums = Vec::with_capacity(items.len() + 1);
        let mut acc = Sums::default();
        sums.push(acc);
        for &(_, d) in &items {
            acc = acc.plus(Sums::of(d));
            sums.push(acc);
        }
        Self {
            times: items.into_iter().map(|(t, _)| t).collect(),
            sums,
        }
    }

    /// Sums of the items with time `< t`.
    fn before(&self, t: u64) -> Sums {
        self.sums[self.times.partition_point(|&x| x < t)]
    }

    /// Sums of the items with time `<= t`.
    fn up_to(&self, t: u64) -> Sums {
        self.sums[self.times.partition_point(|&x| x <= t)]
    }
}

/// What a counter value must lie within.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    lower: i128,
    upper: i128,
}

impl Counter {
    fn check_key(
        &self,
        key: &str,
        ops: &[&Pair],
        anomalies: &mut Vec<String>,
        counts: &mut Counts,
    ) -> Validity {
        let mut validity = Validity::Valid;
        let mut acked = Vec::new();
        let mut possible = Vec::new();
        let mut last_add_end: u64 = 0;
        for op in ops.iter().filter(|op| op.f == F::Add) {
            let Value::Int(delta) = op.args else {
                counts.malformed += 1;
                push_capped(
                    anomalies,
                    self.max_anomalies,
                    format!("key {key:?}: {} has no integer delta", op.describe()),
                );
                return Validity::Unknown;
            };
            match op.outcome {
                Outcome::Fail => continue,
                Outcome::Ok => acked.push((op.effect_deadline_ns(), delta)),
                Outcome::Info => {}
            }
            possible.push((op.invoke_ns, delta));
            last_add_end = last_add_end.max(op.complete_ns.unwrap_or(u64::MAX));
        }
        let acked = Prefix::new(acked);
        let possible = Prefix::new(possible);
        let bounds = |invoke: u64, complete: u64, own: Option<i64>| {
            let definite = acked.before(invoke);
            let mut maybe = possible.up_to(complete).minus(definite);
            let own = own.map_or(Sums::default(), Sums::of);
            maybe = maybe.minus(own);
            Bounds {
                lower: definite.total + maybe.negative + own.total,
                upper: definite.total + maybe.positive + own.total,
            }
        };

        let mut final_read: Option<(&Pair, i128, Bounds)> = None;
        for op in ops.iter().filter(|op| op.is_ok()) {
            let own = match (op.f, &op.args) {
                (F::Read, _) => None,
                (F::Add, Value::Int(d)) => Some(*d),
                _ => continue,
            };
            let observed = match (&op.result, own) {
                (Value::Int(v), _) => i128::from(*v),
                (Value::Nil, None) => 0,
                // An increment whose total was not recorded observes nothing.
                (Value::Nil, Some(_)) => continue,
                (Value::Str(s), _) => match s.parse::<i64>() {
                    Ok(v) => i128::from(v),
                    Err(_) => {
                        validity = Validity::Invalid;
                        counts.out_of_bounds += 1;
                        push_capped(
                            anomalies,
                            self.max_anomalies,
                            format!("key {key:?}: {} returned a non-integer", op.describe()),
                        );
                        continue;
                    }
                },
                _ => {
                    counts.malformed += 1;
                    validity = validity.and(Validity::Unknown);
                    push_capped(
                        anomalies,
                        self.max_anomalies,
                        format!(
                            "key {key:?}: {} has an uninterpretable result",
                            op.describe()
                        ),
                    );
                    continue;
                }
            };
            let complete = op.effect_deadline_ns();
            let b = bounds(op.invoke_ns, complete, own);
            counts.observations += 1;
            if observed < b.lower || observed > b.upper {
                validity = Validity::Invalid;
                counts.out_of_bounds += 1;
                push_capped(
                    anomalies,
                    self.max_anomalies,
                    format!(
                        "key {key:?}: {} observed {observed}, outside [{}, {}]",
                        op.describe(),
                        b.lower,
                        b.upper
                    ),
                );
            }
            let is_final = op.f == F::Read && op.invoke_ns >= last_add_end;
            if is_final && final_read.is_none_or(|(f, _, _)| op.invoke_ns > f.invoke_ns) {
                final_read = Some((op, observed, b));
            }
        }
        match final_read {
            Some((_, value, b)) => {
                counts.finals.push(json!({
                    "key": key, "value": value.to_string(),
                    "lower": b.lower.to_string(), "upper": b.upper.to_string(),
                }));
            }
            None if self.require_final_read => {
                validity = validity.and(Validity::Unknown);
                push_capped(
                    anomalies,
                    self.max_anomalies,
                    format!("key {key:?}: no final read after all increments completed"),
                );
            }
            None => {}
        }
        validity
    }
}

#[derive(Default)]
struct Counts {
    observations: u64,
    out_of_bounds: u64,
    malformed: u64,
    finals: Vec<serde_json::Value>,
}

impl Checker for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn check(&self, ops: &[Pair]) -> CheckResult {
        let mut valid = Validity::Valid;
        let mut anomalies = Vec::new();
        let mut counts = Counts::default();
        let mut keys = 0;
        for (key, key_ops) in by_key(ops) {
            if !uses(&key_ops, &[F::Add]) {
                continue;
            }
            keys += 1;
            if uses(
                &key_ops,
                &[
                    F::Write,
                    F::Swap,
                    F::Check,
                    F::Acquire,
                    F::Release,
                    F::Append,
                ],
            ) {
                valid = valid.and(Validity::Unknown);
                push_capped(
                    &mut anomalies,
                    self.max_anomalies,
                    format!("key {key:?} mixes increments with other writes"),
                );
                continue;
            }
            valid = valid.and(self.check_key(key, &key_ops, &mut anomalies, &mut counts));
        }
        CheckResult {
            name: self.name().to_owned(),
            valid,
            anomalies,
            stats: json!({
                "keys": keys,
                "observations": counts.observations,
                "out_of_bounds": counts.out_of_bounds,
                "malformed": counts.malformed,
                "final_reads": counts.finals,
            }),
        }
    }
}
