//! Append-only lists (`RPUSH`/`LRANGE` inside `MULTI`): every read is a linearizable view of one order of appends.
//!
//! A key belongs to this checker when some operation on it is an `Append`.
//! The workload appends unique integers; an append runs `MULTI; RPUSH k e;
//! LRANGE k 0 -1; EXEC`, so its `Ok` completion carries the list right after
//! the append (`List`), and a read (`ReadList`) carries the whole list.
//!
//! # What is checked
//!
//! 1. **One order.** Every observed list must be a prefix of the longest
//!    one, `L`. Two lists that disagree at some position show a reordered
//!    or lost-then-replaced append, or two diverged copies of the list.
//! 2. **No invented, duplicated or failed elements.** Each element of `L`
//!    was appended by an operation that did not `Fail`, exactly once, and an
//!    append's own observation ends with its element (the transaction is
//!    atomic).
//! 3. **Real time.** Linearizability places the append of `L[p]` at an
//!    instant `t_p`, in `[invoke, complete]` (`[invoke, ∞)` for `Info`),
//!    with `t_0 ≤ t_1 ≤ …` in list order; a read of length `ℓ` at an instant
//!    of its own interval between `t_{ℓ-1}` and `t_ℓ`. That instant exists
//!    iff `t_{ℓ-1} ≤ read complete` and `t_ℓ ≥ read invoke`. So each `t_p`
//!    has a lower bound (its invocation, the invocation of every read that
//!    does not contain it) and an upper bound (its completion, the completion
//!    of every read that contains it), and an order-respecting choice exists
//!    iff the greedy choice `t_p = max(lower_p, t_{p-1})` stays under every
//!    upper bound. An `Ok` append missing from `L` took effect after every
//!    observation, so it must not have completed before some read was
//!    invoked: that is a **lost append**. The same greedy pass names a
//!    **stale read** when a read misses an append that completed before the
//!    read was invoked (a **lost append** again when the last read misses
//!    it too: the element is gone, not just late).
//!
//! Ties in timestamps count as concurrency, which only widens the bounds, so
//! every anomaly is real. Like the counter checker, a key without a final
//! read (an `Ok` read invoked after every append on it completed) is
//! `Unknown` when `require_final_read` is set: a lost acknowledged append at
//! the end of the run would otherwise go unseen.

use std::collections::HashMap;

use serde_json::json;

use super::{by_key, push_capped, uses, CheckResult, Checker, Validity};
use crate::history::{Outcome, Pair, Value, F};

/// The list-append checker.
#[derive(Debug, Clone, Copy)]
pub struct ListAppend {
    /// Demand a final read per list key.
    pub require_final_read: bool,
    /// Anomalies listed per run (all are counted in the stats).
    pub max_anomalies: usize,
}

impl Default for ListAppend {
    fn default() -> Self {
        Self {
            require_final_read: true,
            max_anomalies: 50,
        }
    }
}

/// Anomaly counts, reported as stats.
#[derive(Debug, Default)]
struct Counts {
    appends: u64,
    reads: u64,
    divergent: u64,
    duplicated: u64,
    phantom: u64,
    failed_seen: u64,
    misplaced: u64,
    lost: u64,
    stale: u64,
    malformed: u64,
    longest: usize,
}

/// One observation of a list: by a read or by an append's own transaction.
struct Observation<'a> {
    op: &'a Pair,
    list: &'a [i64],
}

impl ListAppend {
    fn check_key(
        &self,
        key: &str,
        ops: &[&Pair],
        anomalies: &mut Vec<String>,
        counts: &mut Counts,
    ) -> Validity {
        let mut valid = Validity::Valid;
        // Violations found; any one makes the key invalid.
        let mut found: Vec<String> = Vec::new();
        // element -> the append that wrote it
        let mut appends: HashMap<i64, &Pair> = HashMap::new();
        let mut observations: Vec<Observation> = Vec::new();
        for op in ops {
            match (op.f, &op.args, op.outcome, &op.result) {
                (F::Append, Value::Int(e), outcome, result) => {
                    counts.appends += 1;
                    if appends.insert(*e, op).is_some() {
                        counts.malformed += 1;
                        found.push(format!(
                            "element {e} appended twice; the workload must use unique elements"
                        ));
                    }
                    if let (Outcome::Ok, Value::List(list)) = (outcome, result) {
                        if list.last() != Some(e) {
                            counts.misplaced += 1;
                            found.push(format!(
                                "{} saw {list:?} right after appending {e}, which is not last",
                                op.describe()
                            ));
                        }
                        observations.push(Observation { op, list });
                    }
                }
                (F::ReadList, _, Outcome::Ok, Value::List(list)) => {
                    counts.reads += 1;
                    observations.push(Observation { op, list });
                }
                (F::ReadList, _, _, _) => {}
                _ => {
                    counts.malformed += 1;
                    valid = valid.and(Validity::Unknown);
                    push_capped(
                        anomalies,
                        self.max_anomalies,
                        format!("key {key:?}: cannot interpret {}", op.describe()),
                    );
                }
            }
        }

        // 1. One order: the longest observation, and everything a prefix of it.
        let longest: &[i64] = observations
            .iter()
            .map(|o| o.list)
            .max_by_key(|l| l.len())
            .unwrap_or_default();
        counts.longest = counts.longest.max(longest.len());
        for o in &observations {
            if longest.get(..o.list.len()) != Some(o.list) {
                counts.divergent += 1;
                let at = o
                    .list
                    .iter()
                    .zip(longest)
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                found.push(
                    format!(
                        "{} is not a prefix of the longest read {longest:?} (differs at position {at}): appends reordered, lost or diverged",
                        o.op.describe()
                    ),
                );
            }
        }

        // 2. Every element of the order: appended once, by an append that may have happened.
        let mut position: HashMap<i64, usize> = HashMap::new();
        let mut order_ok = true;
        for (p, e) in longest.iter().enumerate() {
            if position.insert(*e, p).is_some() {
                counts.duplicated += 1;
                order_ok = false;
                found.push(format!("element {e} appears twice in {longest:?}"));
                continue;
            }
            match appends.get(e) {
                None => {
                    counts.phantom += 1;
                    order_ok = false;
                    found.push(format!("element {e} was never appended"));
                }
                Some(a) if a.outcome == Outcome::Fail => {
                    counts.failed_seen += 1;
                    found.push(format!("{} failed, yet its element was read", a.describe()));
                }
                Some(_) => {}
            }
        }
        if !order_ok || counts.divergent > 0 {
            // Without one order of distinct, real elements there is nothing to place in time.
            return self.conclude(key, valid, found, anomalies);
        }

        // 3. Real time: bounds on each append's instant, then the greedy placement.
        let n = longest.len();
        let mut lower: Vec<u64> = Vec::with_capacity(n);
        let mut upper: Vec<u64> = Vec::with_capacity(n);
        for e in longest {
            let a = appends.get(e);
            lower.push(a.map_or(0, |a| a.invoke_ns));
            upper.push(a.map_or(u64::MAX, |a| a.effect_deadline_ns()));
        }
        // A read of length ℓ: t_p ≥ its invocation for p ≥ ℓ, t_p ≤ its completion for p < ℓ.
        // Suffix maxima / prefix minima fold the reads in at O(n + reads).
        let mut inv_from = vec![0u64; n + 1]; // max invocation of reads of length ℓ, at ℓ
        let mut cmp_until = vec![u64::MAX; n + 1]; // min completion of reads of length ℓ, at ℓ
        let mut stale_witness: Vec<Option<&Pair>> = vec![None; n + 1];
        let mut last_read_invoke = 0u64;
        for o in &observations {
            let len = o.list.len();
            if let Some(slot) = inv_from.get_mut(len) {
                if o.op.invoke_ns >= *slot {
                    *slot = o.op.invoke_ns;
                    if let Some(w) = stale_witness.get_mut(len) {
                        *w = Some(o.op);
                    }
                }
            }
            if let Some(slot) = cmp_until.get_mut(len) {
                *slot = (*slot).min(o.op.effect_deadline_ns());
            }
            last_read_invoke = last_read_invoke.max(o.op.invoke_ns);
        }
        // lower_p also covers reads of every length ≤ p: a running maximum.
        let mut running: (u64, Option<&Pair>) = (0, None);
        let mut read_lower: Vec<(u64, Option<&Pair>)> = Vec::with_capacity(n);
        for p in 0..n {
            let here = inv_from.get(p).copied().unwrap_or(0);
            if here >= running.0 && here > 0 {
                running = (here, stale_witness.get(p).copied().flatten());
            }
            read_lower.push(running);
        }
        // upper_p also covers reads of every length > p: a running minimum from the end.
        let mut read_upper = vec![u64::MAX; n];
        let mut min_after = cmp_until.get(n).copied().unwrap_or(u64::MAX);
        for p in (0..n).rev() {
            if let Some(slot) = read_upper.get_mut(p) {
                *slot = min_after;
            }
            min_after = min_after.min(cmp_until.get(p).copied().unwrap_or(u64::MAX));
        }
        let last_len = observations
            .iter()
            .max_by_key(|o| o.op.invoke_ns)
            .map_or(0, |o| o.list.len());
        let mut t = 0u64;
        for (p, e) in longest.iter().enumerate() {
            let (read_lo, witness) = read_lower.get(p).copied().unwrap_or((0, None));
            let own_lo = lower.get(p).copied().unwrap_or(0);
            let lo = own_lo.max(read_lo).max(t);
            let own_hi = upper.get(p).copied().unwrap_or(u64::MAX);
            let hi = own_hi.min(read_upper.get(p).copied().unwrap_or(u64::MAX));
            if lo > hi {
                let append = appends.get(e).map_or_else(String::new, |a| a.describe());
                match witness {
                    Some(r) if r.invoke_ns > own_hi && p >= last_len => {
                        // Not even the last read has it: gone for good, not just late.
                        counts.lost += 1;
                        found.push(format!(
                            "lost append: element {e} at position {p}, appended by {append}, is missing from {} and from the last read",
                            r.describe()
                        ));
                    }
                    Some(r) if r.invoke_ns > own_hi => {
                        counts.stale += 1;
                        found.push(
                            format!(
                                "stale read: {} misses element {e} at position {p}, appended by {append}, which completed before the read began",
                                r.describe()
                            ),
                        );
                    }
                    _ => {
                        counts.stale += 1;
                        found.push(
                            format!(
                                "no linearization places element {e} at position {p} ({append}): the reads around it and the appends before it leave no instant for it"
                            ),
                        );
                    }
                }
                // Keep going from the latest bound so later positions are judged on their own.
                t = own_lo.max(t);
                continue;
            }
            t = lo;
        }
        // Ok appends that no read saw: they took effect after every observation.
        let floor = t.max(last_read_invoke);
        let mut missing: Vec<&&Pair> = appends
            .iter()
            .filter(|(e, a)| a.outcome == Outcome::Ok && !position.contains_key(e))
            .map(|(_, a)| a)
            .collect();
        missing.sort_by_key(|a| a.index);
        for a in missing {
            if a.effect_deadline_ns() < floor {
                counts.lost += 1;
                found.push(format!(
                    "lost append: {} was acknowledged, but no later read contains it",
                    a.describe()
                ));
            }
        }
        self.conclude(key, valid, found, anomalies)
    }

    /// The key's verdict: `Invalid` if anything was found, each finding listed.
    fn conclude(
        &self,
        key: &str,
        valid: Validity,
        found: Vec<String>,
        anomalies: &mut Vec<String>,
    ) -> Validity {
        let verdict = if found.is_empty() {
            valid
        } else {
            valid.and(Validity::Invalid)
        };
        for text in found {
            push_capped(
                anomalies,
                self.max_anomalies,
                format!("key {key:?}: {text}"),
            );
        }
        verdict
    }
}

impl Checker for ListAppend {
    fn name(&self) -> &'static str {
        "list-append"
    }

    fn check(&self, ops: &[Pair]) -> CheckResult {
        let mut valid = Validity::Valid;
        let mut anomalies = Vec::new();
        let mut counts = Counts::default();
        let mut keys = 0;
        let mut without_final = 0;
        for (key, key_ops) in by_key(ops) {
            if !uses(&key_ops, &[F::Append]) {
                continue;
            }
            keys += 1;
            if uses(
                &key_ops,
                &[
                    F::Write,
                    F::Swap,
                    F::Add,
                    F::Check,
                    F::Acquire,
                    F::Release,
                    F::Read,
                ],
            ) {
                valid = valid.and(Validity::Unknown);
                push_capped(
                    &mut anomalies,
                    self.max_anomalies,
                    format!("key {key:?} mixes appends with other commands"),
                );
                continue;
            }
            valid = valid.and(self.check_key(key, &key_ops, &mut anomalies, &mut counts));
            if self.require_final_read && !has_final_read(&key_ops) {
                without_final += 1;
                valid = valid.and(Validity::Unknown);
                push_capped(
                    &mut anomalies,
                    self.max_anomalies,
                    format!("key {key:?} has no final read after its last append"),
                );
            }
        }
        CheckResult {
            name: self.name().to_owned(),
            valid,
            anomalies,
            stats: json!({
                "keys": keys,
                "appends": counts.appends,
                "reads": counts.reads,
                "longest_list": counts.longest,
                "divergent": counts.divergent,
                "duplicated": counts.duplicated,
                "phantom": counts.phantom,
                "failed_seen": counts.failed_seen,
                "misplaced": counts.misplaced,
                "lost": counts.lost,
                "stale": counts.stale,
                "malformed": counts.malformed,
                "keys_without_final_read": without_final,
            }),
        }
    }
}

/// Whether an `Ok` read was invoked after every append on the key had
/// completed (or been given up on: an `Info` completion still bounds when
/// the client stopped waiting, and the read is then the best view there is).
fn has_final_read(ops: &[&Pair]) -> bool {
    let last_append = ops
        .iter()
        .filter(|op| op.f == F::Append)
        .map(|op| op.complete_ns.unwrap_or(u64::MAX))
        .max()
        .unwrap_or(0);
    ops.iter()
        .any(|op| op.f == F::ReadList && op.is_ok() && op.invoke_ns > last_append)
}
