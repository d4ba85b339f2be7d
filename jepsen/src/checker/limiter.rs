//! Rate limits (`RL.CHECK key limit period ALGO gcra|sliding|fixed`): no key admits more than its limit allows.
//!
//! # What can be known
//!
//! The server decides with a timestamp the Raft leader stamps on each entry
//! (its wall clock, in nanoseconds; see `docs/limiter.md`); we only know that
//! each operation took effect at some real instant `r ∈ [invoke, complete]`
//! of our monotonic clock. Every node's clock is assumed to run at the real
//! rate with one unknown common offset, up to a skew `σ` between nodes.
//! `time_slack_ns` (`s`) must be at least `2σ + 1 ms` (the 1 ms covers
//! `reset_after_ms`, which the server rounds up); the default of 5 ms suits
//! nodes sharing one host clock. A clock nemesis that skews nodes further
//! must raise it: a correct server really does admit more when its leaders'
//! clocks disagree.
//!
//! An `Info` check (a timeout, a lost connection) counts as an admission,
//! as the worst case: it may have been admitted, and may have taken effect
//! at any instant after its invocation, so it is counted in every span it
//! could reach (every span ending at or after its invocation). A correct
//! server can fail this rule, since the check may in fact have been denied
//! or never run; the harness keeps it honest by resolving indeterminate
//! checks instead. Each check carries an idempotency token (`ID`) and a
//! worker resends an indeterminate one, to any node, until it gets the
//! server's answer (`docs/limiter.md`), so only a check that stayed unknown
//! through every resend is counted this way. `Fail` checks never count.
//!
//! Every criterion takes a set `S` of `Ok`-admitted checks whose whole
//! intervals lie inside one span `[x, y]` of our clock (`d = y - x`), plus
//! the `Info` checks invoked by `y`. Their
//! timestamps lie in one span of length at most `d + 2σ ≤ d + s`, wherever
//! the offset and the effect instants really were. Each bound is the most a
//! *correct* server can admit in such a span, so exceeding it cannot happen
//! on correct behaviour.
//!
//! # `fixed` and `sliding`: staircase bound
//!
//! Fixed windows are consecutive half-open intervals of length `P` on the
//! server's clock, each counting at most `L`. (When a leader's clock is
//! behind, the server counts the request in the window already stored,
//! never an earlier one, so the windows `S` is counted in are still among
//! those its timestamps' span meets, give or take `σ`.) A closed span of
//! length `ℓ` meets at most `⌈ℓ/P⌉ + 1` windows (write its start as
//! `qP + r`, `0 ≤ r < P`; it meets windows `q..=q + ⌊(r + ℓ)/P⌋`). So if
//! `d ≤ (m-1)·P - s`, `S` is counted in at most `m` windows and
//! `|S| ≤ m·L`. For `m = 2`: in any span of length `P - s`, at most `2L` —
//! a correct server really can admit `L` just before a boundary and `L`
//! just after it. Larger `m` catch a sustained excess that never shows in one
//! period (admitting `1.5·L` per window is caught once `1.5·(m-1) > m`,
//! i.e. `m ≥ 4`). The checker tries `m = 2..=8` and then powers of two up to
//! the length of the run. The sliding window also counts at most `L` per
//! aligned window, so the same bound applies to it.
//!
//! A single extra admission in one window cannot be seen this way: without
//! knowing where the server's window boundaries are, `L + 1` admissions close
//! together may straddle a boundary. The server's replies tell us: for
//! `fixed`, `reset_after_ms` (`R`) is the time from the request's timestamp
//! to the end of the window it was counted in, rounded up to a millisecond,
//! so that window ends, on our clock shifted by the unknown offset, within
//! `E = [invoke + R - s, complete + R + s]`. Ends of distinct windows are at
//! least `P` apart. If admissions' `E` intervals share a common point and
//! each is shorter than `P/2`, any two of their ends are less than `P`
//! apart, so they all claim the *same* window: more than `L` of them is an
//! over-admission by the server's own account. This catches one admission
//! too many per window whenever latency is well under half a period.
//!
//! # `gcra`: token-bucket bound
//!
//! GCRA with limit `L` per `P` and burst `B` (default `L`) has emission
//! interval `T = P/L` and admits a request at `t` only if
//! `max(TAT, t) + T - t ≤ B·T`, then sets `TAT = max(TAT, t) + T`. Every
//! admission raises the TAT by at least `T`, whatever the timestamps' order,
//! so if `k` admissions are stamped `t₁, …, t_k` in log order, the TAT before
//! the `k`-th is at least `t₁ + (k-1)·T` and admitting it needs
//! `t₁ + (k-1)·T ≤ t_k + (B-1)·T`, i.e. `k ≤ B + (t_k - t₁)/T`. Hence any set
//! of admissions stamped within a span of length `ℓ` has at most
//! `B + ⌊ℓ·L/P⌋` members, and `S` at most `B + ⌊(d + s)·L/P⌋`. A sweep over
//! left ends with a range-add/max segment tree finds the worst span in
//! `O(n log n)`. (This needs `T` not rounded down; the server keeps it exact.)
//!
//! # Availability: lost admissions
//!
//! A denial is a *lost admission* when, assuming the server never
//! over-admits, it certainly had room. Possible admissions (`Ok` admitted
//! or `Info`) that could share a fixed window with the denial must have
//! intervals meeting `[invoke - P - s, complete + P + s]`; fewer than `L`
//! such means room. A sliding-window denial needs `L` counted in the current
//! and previous windows, i.e. meeting `[invoke - 2P - s, complete + s]`. For
//! GCRA, with `H = B·P/L`, the bucket was short of a unit only if more than
//! `B - 1` possible admissions could lie in the preceding `H` (older ones are
//! paid for by refill when the server is correct), i.e. meet
//! `[invoke - H - s, complete + s]`. This is a lower estimate, reported as a
//! statistic, never a failure.

mod fenwick;
mod max_tree;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::intervals::Intervals;
use super::{by_key, push_capped, CheckResult, Checker, Validity};
use crate::history::{Algo, LimitArgs, Outcome, Pair, Value, F};
use fenwick::Fenwick;
use max_tree::MaxTree;

const NS_PER_MS: i128 = 1_000_000;

/// The rate-limit checker.
#[derive(Debug, Clone, Copy)]
pub struct Limiter {
    /// Allowance for server clock granularity, reply rounding and clock
    /// differences between nodes, in nanoseconds (see module docs).
    pub time_slack_ns: u64,
    /// Anomalies listed per run (all are counted in the stats).
    pub max_anomalies: usize,
}

impl Default for Limiter {
    fn default() -> Self {
        Self {
            // 1 ms of reply rounding plus twice a 2 ms skew between nodes:
            // generous for nodes that share one host clock.
            time_slack_ns: 5_000_000,
            max_anomalies: 50,
        }
    }
}

/// An admitted check, or an indeterminate one counted as admitted: where on
/// our clock it could have taken effect.
#[derive(Debug, Clone, Copy)]
struct Admission {
    inv: i128,
    /// The completion; for an indeterminate check, its invocation (it sorts
    /// as a point there, and counts in every span reaching it).
    cmp: i128,
    index: usize,
    reset_after_ms: Option<u64>,
    indeterminate: bool,
}

/// A set of admissions proven too large.
#[derive(Debug, Clone)]
struct Witness {
    from: i128,
    to: i128,
    members: Vec<usize>,
    bound: i128,
    rule: String,
}

/// Per-key tallies, reported as stats.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct KeyStats {
    admitted: u64,
    denied: u64,
    indeterminate: u64,
    failed: u64,
    lost_admissions: u64,
    claims_checked: u64,
    claims_too_wide: u64,
}

impl Limiter {
    fn check_key(
        &self,
        key: &str,
        ops: &[&Pair],
        stats: &mut KeyStats,
        anomalies: &mut Vec<String>,
    ) -> Validity {
        let slack = i128::from(self.time_slack_ns);
        let mut params: Option<LimitArgs> = None;
        let mut admitted = Vec::new();
        let mut denied = Vec::new();
        // (invoke, latest effect) of every op that may have been admitted.
        let mut possible: Vec<(i128, i128)> = Vec::new();
        for op in ops.iter().filter(|op| op.f == F::Check) {
            let Value::Limit(args) = op.args else {
                return self.undecided(
                    key,
                    anomalies,
                    format!("{} has no limit arguments", op.describe()),
                );
            };
            match params {
                None => params = Some(args),
                Some(p) if p != args => {
                    return self.undecided(
                        key,
                        anomalies,
                        format!("key is checked with different parameters ({p:?} and {args:?})"),
                    );
                }
                Some(_) => {}
            }
            let inv = i128::from(op.invoke_ns);
            let cmp = i128::from(op.effect_deadline_ns());
            match (op.outcome, &op.result) {
                (Outcome::Fail, _) => stats.failed += 1,
                (Outcome::Info, _) => {
                    stats.indeterminate += 1;
                    possible.push((inv, cmp));
                    admitted.push(Admission {
                        inv,
                        cmp: inv,
                        index: op.index,
                        reset_after_ms: None,
                        indeterminate: true,
                    });
                }
                (Outcome::Ok, Value::Verdict(v)) if v.allowed => {
                    stats.admitted += 1;
                    possible.push((inv, cmp));
                    admitted.push(Admission {
                        inv,
                        cmp,
                        index: op.index,
                        reset_after_ms: v.reset_after_ms,
                        indeterminate: false,
                    });
                }
                (Outcome::Ok, Value::Verdict(_)) => {
                    stats.denied += 1;
                    denied.push((inv, cmp));
                }
                (Outcome::Ok, _) => {
                    return self.undecided(
                        key,
                        anomalies,
                        format!("{} has no verdict", op.describe()),
                    );
                }
            }
        }
        let Some(args) = params else {
            return Validity::Valid;
        };
        let limit = i128::from(args.limit);
        let burst = i128::from(args.burst.unwrap_or(args.limit));
        let period = i128::from(args.period_ms) * NS_PER_MS;
        // Bounded so every product below fits in an i128 with room to spare.
        if !(1..=i128::from(u32::MAX)).contains(&limit)
            || !(1..=i128::from(u32::MAX)).contains(&burst)
            || !(1..=i128::from(u32::MAX)).contains(&i128::from(args.period_ms))
        {
            return self.undecided(key, anomalies, format!("parameters out of range: {args:?}"));
        }

        let witnesses = match args.algo {
            Algo::Fixed => {
                let mut w = fixed_spans(&admitted, limit, period, slack);
                w.extend(claimed_windows(&admitted, limit, period, slack, stats));
                w
            }
            Algo::Sliding => fixed_spans(&admitted, limit, period, slack),
            Algo::Gcra => gcra_span(&admitted, limit, burst, period, slack)
                .into_iter()
                .collect(),
        };
        stats.lost_admissions = match args.algo {
            Algo::Fixed => lost(&denied, &possible, period + slack, period + slack, limit),
            Algo::Sliding => lost(&denied, &possible, 2 * period + slack, slack, limit),
            Algo::Gcra => lost(
                &denied,
                &possible,
                burst * period / limit + slack,
                slack,
                burst,
            ),
        };

        for w in &witnesses {
            let shown: Vec<String> = w.members.iter().take(12).map(|i| i.to_string()).collect();
            push_capped(
                anomalies,
                self.max_anomalies,
                format!(
                    "key {key:?} ({:?}, limit {} per {} ms): {} admissions (ops [{}{}]) all took \
                     effect within [{}, {}] ns, but {} allows at most {}",
                    args.algo,
                    args.limit,
                    args.period_ms,
                    w.members.len(),
                    shown.join(", "),
                    if w.members.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    },
                    w.from,
                    w.to,
                    w.rule,
                    w.bound
                ),
            );
        }
        if witnesses.is_empty() {
            Validity::Valid
        } else {
            Validity::Invalid
        }
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

impl Checker for Limiter {
    fn name(&self) -> &'static str {
        "limiter"
    }

    fn check(&self, ops: &[Pair]) -> CheckResult {
        let mut valid = Validity::Valid;
        let mut anomalies = Vec::new();
        let mut per_key = BTreeMap::new();
        let mut total = KeyStats::default();
        for (key, key_ops) in by_key(ops) {
            if !key_ops.iter().any(|op| op.f == F::Check) {
                continue;
            }
            let mut stats = KeyStats::default();
            valid = valid.and(self.check_key(key, &key_ops, &mut stats, &mut anomalies));
            total.admitted += stats.admitted;
            total.denied += stats.denied;
            total.indeterminate += stats.indeterminate;
            total.failed += stats.failed;
            total.lost_admissions += stats.lost_admissions;
            total.claims_checked += stats.claims_checked;
            total.claims_too_wide += stats.claims_too_wide;
            per_key.insert(key.to_owned(), stats);
        }
        CheckResult {
            name: self.name().to_owned(),
            valid,
            anomalies,
            stats: json!({ "total": total, "keys": per_key }),
        }
    }
}

/// Rank of each admission when sorted by completion, and the sorted completions.
fn by_completion(adm: &[Admission]) -> (Vec<usize>, Vec<i128>) {
    let mut order: Vec<usize> = (0..adm.len()).collect();
    order.sort_by_key(|&i| (adm[i].cmp, i));
    let mut rank = vec![0; adm.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    (rank, order.iter().map(|&i| adm[i].cmp).collect())
}

/// Admissions in descending invocation order, grouped by equal invocation time.
fn groups_by_invoke_desc(adm: &[Admission]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..adm.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(adm[i].inv));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match groups.last_mut() {
            Some(g) if g.first().is_some_and(|&j| adm[j].inv == adm[i].inv) => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    groups
}

/// History indices of the admissions counted in `[from, to]`: those whose
/// intervals lie within it, and indeterminate ones invoked by `to`.
fn contained(adm: &[Admission], from: i128, to: i128) -> Vec<usize> {
    let mut v: Vec<usize> = adm
        .iter()
        .filter(|a| {
            if a.indeterminate {
                a.inv <= to
            } else {
                a.inv >= from && a.cmp <= to
            }
        })
        .map(|a| a.index)
        .collect();
    v.sort_unstable();
    v
}

/// Invocation times of the indeterminate admissions, ascending: how many
/// reach a span ending at `t` is the partition point of `t`.
fn indeterminate_invokes(adm: &[Admission]) -> Vec<i128> {
    let mut v: Vec<i128> = adm
        .iter()
        .filter(|a| a.indeterminate)
        .map(|a| a.inv)
        .collect();
    v.sort_unstable();
    v
}

/// Indeterminate admissions invoked at or before `t`.
fn reaching(indeterminate: &[i128], t: i128) -> i128 {
    i128::try_from(indeterminate.partition_point(|&inv| inv <= t)).unwrap_or(i128::MAX)
}

/// The `fixed` staircase bound: in spans of length `(m-1)·P - s`, at most `m·L`.
fn fixed_spans(adm: &[Admission], limit: i128, period: i128, slack: i128) -> Vec<Witness> {
    let (Some(first), Some(last)) = (
        adm.iter().map(|a| a.inv).min(),
        adm.iter().map(|a| a.cmp).max(),
    ) else {
        return Vec::new();
    };
    let run = last - first;
    let (rank, cmps) = by_completion(adm);
    let groups = groups_by_invoke_desc(adm);
    let unknown = indeterminate_invokes(adm);
    let mut ms: Vec<i128> = (2..=8).collect();
    let mut m = 16;
    while (m - 1) * period <= run + period {
        ms.push(m);
        m *= 2;
    }
    let mut witnesses = Vec::new();
    for m in ms {
        let length = (m - 1) * period - slack;
        if length < 0 {
            continue;
        }
        let bound = m * limit;
        let mut tree = Fenwick::new(adm.len());
        // (excess, from, to) of the worst span for this m
        let mut worst: Option<(i128, i128, i128)> = None;
        // Left ends at every invocation, indeterminate ones included: past
        // the last admitted check, spans still gather indeterminate ones.
        for group in &groups {
            for &i in group {
                if !adm[i].indeterminate {
                    tree.insert(rank[i]);
                }
            }
            let Some(&g) = group.first() else { continue };
            let from = adm[g].inv;
            let to = from + length;
            let count = i128::from(tree.count_below(cmps.partition_point(|&c| c <= to)))
                + reaching(&unknown, to);
            if count > bound && worst.is_none_or(|(e, _, _)| count - bound > e) {
                worst = Some((count - bound, from, to));
            }
        }
        if let Some((_, from, to)) = worst {
            witnesses.push(Witness {
                from,
                to,
                members: contained(adm, from, to),
                bound,
                rule: format!("{m} consecutive aligned windows ({m}·limit)"),
            });
        }
    }
    witnesses
}

/// The `fixed` claimed-window check built on `reset_after_ms` (module docs).
fn claimed_windows(
    adm: &[Admission],
    limit: i128,
    period: i128,
    slack: i128,
    stats: &mut KeyStats,
) -> Option<Witness> {
    // (coordinate, 0 = start / 1 = end, admission)
    let mut events: Vec<(i128, u8, usize)> = Vec::new();
    for (i, a) in adm.iter().enumerate() {
        let Some(reset) = a.reset_after_ms else {
            continue;
        };
        // May exceed the period: a request stamped before the stored window
        // (a new leader's clock slightly behind) is counted in that window,
        // and its reply still names that window's end.
        let reset = i128::from(reset) * NS_PER_MS;
        let (lo, hi) = (a.inv + reset - slack, a.cmp + reset + slack);
        if 2 * (hi - lo) >= period {
            stats.claims_too_wide += 1;
            continue;
        }
        stats.claims_checked += 1;
        events.push((lo, 0, i));
        events.push((hi, 1, i));
    }
    // Starts sort before ends at one coordinate: the intervals are closed.
    events.sort_unstable();
    let mut active = BTreeSet::new();
    let mut worst: Option<(usize, i128, Vec<usize>)> = None;
    for (at, kind, i) in events {
        if kind == 1 {
            active.remove(&i);
            continue;
        }
        active.insert(i);
        let n = active.len();
        if i128::try_from(n).unwrap_or(i128::MAX) > limit
            && worst.as_ref().is_none_or(|(w, _, _)| n > *w)
        {
            worst = Some((n, at, active.iter().copied().collect()));
        }
    }
    let (_, at, members) = worst?;
    let mut members_idx: Vec<usize> = members.iter().map(|&i| adm[i].index).collect();
    members_idx.sort_unstable();
    let from = members.iter().map(|&i| adm[i].inv).min().unwrap_or(at);
    let to = members.iter().map(|&i| adm[i].cmp).max().unwrap_or(at);
    Some(Witness {
        from,
        to,
        members: members_idx,
        bound: limit,
        rule: format!(
            "their reset_after_ms replies place them all in the window ending at {at} ns \
             (our clock, ± offset), and one window"
        ),
    })
}

/// The `gcra` bound: at most `B + ⌊(d + s)·L/P⌋` admissions in a span of length `d`.
///
/// Sweeping left ends `x` from the latest invocation down, the active
/// admissions are those invoked at or after `x`. For each active admission
/// `j`, with `count_j` the active admissions completing no later than it
/// plus the indeterminate checks invoked by then (whenever that was), the
/// span `[x, cmp_j]` is violated iff `count_j·P - cmp_j·L > B·P + (s - x)·L`.
/// The tree holds `count_j·P - cmp_j·L` per admission (inactive ones pushed
/// far below by `HIDDEN`), so each step is two range adds and a max query.
fn gcra_span(
    adm: &[Admission],
    limit: i128,
    burst: i128,
    period: i128,
    slack: i128,
) -> Option<Witness> {
    const HIDDEN: i128 = 1 << 110;
    let (rank, cmps) = by_completion(adm);
    let unknown = indeterminate_invokes(adm);
    // An indeterminate check is an item too, so spans may end at its
    // invocation; it is counted through `reaching`, never by the range adds.
    let initial: Vec<i128> = cmps
        .iter()
        .map(|&c| -c * limit - HIDDEN + reaching(&unknown, c) * period)
        .collect();
    let mut tree = MaxTree::new(&initial);
    // (excess, from, to)
    let mut worst: Option<(i128, i128, i128)> = None;
    for group in groups_by_invoke_desc(adm) {
        for &i in &group {
            if !adm[i].indeterminate {
                tree.add(rank[i], adm.len(), period);
            }
            tree.add(rank[i], rank[i] + 1, HIDDEN);
        }
        let Some(&g) = group.first() else { continue };
        let from = adm[g].inv;
        let threshold = burst * period + (slack - from) * limit;
        let (best, at) = tree.max();
        let excess = best - threshold;
        if excess > 0 && worst.is_none_or(|(e, _, _)| excess > e) {
            worst = Some((excess, from, cmps.get(at).copied().unwrap_or(from)));
        }
    }
    let (_, from, to) = worst?;
    Some(Witness {
        from,
        to,
        members: contained(adm, from, to),
        bound: burst + (to - from + slack) * limit / period,
        rule: "GCRA (burst + span·limit/period)".to_owned(),
    })
}

/// Denials whose window certainly had room: fewer than `room` possible
/// admissions meet `[invoke - before, complete + after]`.
fn lost(
    denied: &[(i128, i128)],
    possible: &[(i128, i128)],
    before: i128,
    after: i128,
    room: i128,
) -> u64 {
    let index = Intervals::new(possible);
    let lost = denied
        .iter()
        .filter(|&&(inv, cmp)| {
            let meeting = index.meeting(inv - before, cmp + after);
            i128::try_from(meeting).unwrap_or(i128::MAX) < room
        })
        .count();
    lost as u64
}
