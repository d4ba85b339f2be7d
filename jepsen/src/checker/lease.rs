//! Concurrency leases (`RL.ACQUIRE key limit ttl` / `RL.RELEASE key id`): never more than `limit` held.
//!
//! # When is a lease certainly held?
//!
//! A granted lease is held on the server from its grant until the first of
//! its expiry and the effect of a release of its id. The server measures the
//! TTL with the timestamps the Raft leader stamps on entries (see
//! `docs/limiter.md`): the lease expires for a later command stamped
//! `τ_c` once `τ_c ≥ τ_g + ttl`. With node clocks that agree up to a skew
//! `σ` (and one unknown offset from ours), a command evaluated at real time
//! `r_c` still sees the lease unless `r_c ≥ r_g + ttl - 2σ`, where `r_g`,
//! the grant's real instant, lies in `[acquire invoke, acquire complete]`.
//! `time_slack_ns` (`s`) must be at least `2σ`; the default 5 ms suits nodes
//! sharing one host clock. A release takes effect no earlier than its
//! invocation. So the lease is *certainly* held throughout
//!
//! ```text
//! [acquire complete, min(acquire invoke + ttl - s, invoke of any release of its id))
//! ```
//!
//! because it exists once its acquire has completed, cannot have expired
//! before `invoke + ttl - s`, and nothing can end it before a release is even
//! sent. Releases are those of the same id on the
//! same key that completed `Ok` or `Info` (`Fail` ones had no effect by
//! contract), including releases invoked before the grant if they could still
//! take effect after it (id reuse with a late `Info` release). `Info`
//! acquires are never counted: the lease may not exist. Every choice shrinks
//! the certain intervals, so more than `limit` of them overlapping at one
//! instant is a real violation.
//!
//! Availability statistic: a refusal is a *lost grant* when fewer than
//! `limit` leases could possibly have been held while it was evaluated. A
//! lease may be held from its acquire's invocation until the earliest of
//! `acquire complete + ttl + s` and the completion of an `Ok` release; an
//! `Info` acquire may be granted at any later time, so it may be held forever.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::json;

use super::intervals::Intervals;
use super::{by_key, push_capped, CheckResult, Checker, Validity};
use crate::history::{Outcome, Pair, Value, F};

const NS_PER_MS: i128 = 1_000_000;

/// The lease checker.
#[derive(Debug, Clone, Copy)]
pub struct Leases {
    /// Allowance for server clock error, in nanoseconds.
    pub time_slack_ns: u64,
    /// Anomalies listed per run (all are counted in the stats).
    pub max_anomalies: usize,
}

impl Default for Leases {
    fn default() -> Self {
        Self {
            // Twice a skew of up to 2.5 ms between nodes.
            time_slack_ns: 5_000_000,
            max_anomalies: 50,
        }
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
struct KeyStats {
    granted: u64,
    refused: u64,
    indeterminate: u64,
    releases: u64,
    max_certainly_held: u64,
    violations: u64,
    lost_grants: u64,
}

/// A release that may have taken effect.
#[derive(Debug, Clone, Copy)]
struct Release {
    invoke: i128,
    /// Latest instant it may take effect.
    deadline: i128,
    /// Completion time when it ended `Ok`.
    done: Option<i128>,
}

/// A granted lease.
#[derive(Debug, Clone)]
struct Grant {
    index: usize,
    id: String,
    inv: i128,
    cmp: i128,
    ttl: i128,
}

impl Leases {
    fn check_key(
        &self,
        key: &str,
        ops: &[&Pair],
        stats: &mut KeyStats,
        anomalies: &mut Vec<String>,
    ) -> Validity {
        let slack = i128::from(self.time_slack_ns);
        let mut limit: Option<u64> = None;
        let mut grants = Vec::new();
        let mut refusals = Vec::new();
        // invocations of Info acquires
        let mut maybe_granted: Vec<i128> = Vec::new();
        // Releases that may take effect, by lease id.
        let mut releases: HashMap<&str, Vec<Release>> = HashMap::new();
        for op in ops {
            let inv = i128::from(op.invoke_ns);
            let deadline = i128::from(op.effect_deadline_ns());
            match op.f {
                F::Acquire => {
                    let Value::Lease(args) = op.args else {
                        return self.undecided(
                            key,
                            anomalies,
                            format!("{} has no lease arguments", op.describe()),
                        );
                    };
                    match limit {
                        None => limit = Some(args.limit),
                        Some(l) if l != args.limit => {
                            return self.undecided(
                                key,
                                anomalies,
                                format!("key is acquired with limits {l} and {}", args.limit),
                            );
                        }
                        Some(_) => {}
                    }
                    let ttl = i128::from(args.ttl_ms) * NS_PER_MS;
                    match (op.outcome, &op.result) {
                        (Outcome::Fail, _) => {}
                        (Outcome::Info, _) => {
                            stats.indeterminate += 1;
                            maybe_granted.push(inv);
                        }
                        (Outcome::Ok, Value::Str(id)) => {
                            stats.granted += 1;
                            grants.push(Grant {
                                index: op.index,
                                id: id.clone(),
                                inv,
                                cmp: deadline,
                                ttl,
                            });
                        }
                        (Outcome::Ok, Value::Nil) => {
                            stats.refused += 1;
                            refusals.push((inv, deadline));
                        }
                        (Outcome::Ok, _) => {
                            return self.undecided(
                                key,
                                anomalies,
                                format!("{} has an uninterpretable result", op.describe()),
                            );
                        }
                    }
                }
                F::Release => {
                    let Value::Str(id) = &op.args else {
                        return self.undecided(
                            key,
                            anomalies,
                            format!("{} names no lease id", op.describe()),
                        );
                    };
                    let done = match op.outcome {
                        Outcome::Fail => continue,
                        Outcome::Ok => Some(deadline),
                        Outcome::Info => None,
                    };
                    stats.releases += 1;
                    releases.entry(id.as_str()).or_default().push(Release {
                        invoke: inv,
                        deadline,
                        done,
                    });
                }
                _ => {}
            }
        }
        let Some(limit) = limit else {
            return Validity::Valid;
        };
        let limit_i = i128::from(limit);

        // Certain holding intervals [start, end).
        let mut certain: Vec<(i128, i128, usize)> = Vec::new();
        // Possible holding intervals [start, end].
        let mut possible: Vec<(i128, i128)> = Vec::new();
        for (i, g) in grants.iter().enumerate() {
            let rel = releases
                .get(g.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let mut end = g.inv + g.ttl - slack;
            let mut possible_end = g.cmp + g.ttl + slack;
            for r in rel {
                // A release that must have landed before the grant cannot end it.
                if r.deadline < g.inv {
                    continue;
                }
                end = end.min(r.invoke.max(g.cmp));
                if let Some(done) = r.done {
                    if r.invoke >= g.cmp {
                        possible_end = possible_end.min(done);
                    }
                }
            }
            if end > g.cmp {
                certain.push((g.cmp, end, i));
            }
            possible.push((g.inv, possible_end));
        }
        possible.extend(maybe_granted.iter().map(|&inv| (inv, i128::MAX)));

        let mut validity = Validity::Valid;
        // (time, 0 = release / 1 = acquire, grant): at equal times ends go
        // first, because the intervals are half-open.
        let mut events: Vec<(i128, u8, usize)> = Vec::new();
        for &(s, e, i) in &certain {
            events.push((s, 1, i));
            events.push((e, 0, i));
        }
        events.sort_unstable();
        let mut held = BTreeSet::new();
        let mut in_violation = false;
        for (at, kind, i) in events {
            if kind == 0 {
                held.remove(&i);
                in_violation = i128::try_from(held.len()).unwrap_or(i128::MAX) > limit_i;
                continue;
            }
            held.insert(i);
            let n = held.len();
            stats.max_certainly_held = stats.max_certainly_held.max(n as u64);
            if i128::try_from(n).unwrap_or(i128::MAX) > limit_i {
                if !in_violation {
                    stats.violations += 1;
                    let mut ops: Vec<usize> = held.iter().map(|&g| grants[g].index).collect();
                    ops.sort_unstable();
                    let shown: Vec<String> = ops.iter().map(|i| i.to_string()).collect();
                    push_capped(
                        anomalies,
                        self.max_anomalies,
                        format!(
                            "key {key:?}: {n} leases (granted by ops [{}]) were all certainly held at {at} ns, limit {limit}",
                            shown.join(", ")
                        ),
                    );
                }
                in_violation = true;
                validity = Validity::Invalid;
            }
        }

        stats.lost_grants = lost_grants(&refusals, &possible, slack, limit_i);
        validity
    }

    fn undecided(&self, key: &str, anomalies: &mut Vec<String>, reason: String) -> Validity {
        push_capped(
            anomalies,
            self.max_anomalies,
            format!("key {key:?} undecided: {reason}"),
        );
        Validity::Unknown
    }
}

/// Refusals during which fewer than `limit` leases could possibly be held.
fn lost_grants(
    refusals: &[(i128, i128)],
    possible: &[(i128, i128)],
    slack: i128,
    limit: i128,
) -> u64 {
    let index = Intervals::new(possible);
    let lost = refusals
        .iter()
        .filter(|&&(inv, cmp)| {
            let meeting = index.meeting(inv - slack, cmp + slack);
            i128::try_from(meeting).unwrap_or(i128::MAX) < limit
        })
        .count();
    lost as u64
}

impl Checker for Leases {
    fn name(&self) -> &'static str {
        "lease"
    }

    fn check(&self, ops: &[Pair]) -> CheckResult {
        let mut valid = Validity::Valid;
        let mut anomalies = Vec::new();
        let mut per_key = BTreeMap::new();
        for (key, key_ops) in by_key(ops) {
            if !key_ops
                .iter()
                .any(|op| op.f == F::Acquire || op.f == F::Release)
            {
                continue;
            }
            let mut stats = KeyStats::default();
            valid = valid.and(self.check_key(key, &key_ops, &mut stats, &mut anomalies));
            per_key.insert(key.to_owned(), stats);
        }
        let sum = |f: fn(&KeyStats) -> u64| per_key.values().map(f).sum::<u64>();
        CheckResult {
            name: self.name().to_owned(),
            valid,
            anomalies,
            stats: json!({
                "granted": sum(|s| s.granted),
                "refused": sum(|s| s.refused),
                "indeterminate": sum(|s| s.indeterminate),
                "violations": sum(|s| s.violations),
                "lost_grants": sum(|s| s.lost_grants),
                "keys": per_key,
            }),
        }
    }
}
