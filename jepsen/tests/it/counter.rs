//! Counters: reads and `INCRBY` totals bounded by acknowledged and attempted increments.

use std::collections::HashMap;

use proptest::prelude::*;
use raftlimit_jepsen::checker::{CheckResult, Counter, Validity};
use raftlimit_jepsen::history::{History, Op, OpKind, Value, F};
use rand::Rng;

use crate::support::{assert_verdict, run, s, simulate, End, Planted, Request, SimConfig};

fn check(history: &History) -> CheckResult {
    run(&Counter::default(), history)
}

fn int(v: i64) -> Value {
    Value::Int(v)
}

fn nil() -> Value {
    Value::Nil
}

#[test]
fn concurrent_increments_with_failures_and_timeouts_pass() {
    let h = Planted::new()
        .op(0, F::Add, "c", int(1), 0, End::Ok(int(1), 10))
        .op(1, F::Add, "c", int(2), 5, End::Info(20)) // lands late
        .op(2, F::Add, "c", int(4), 6, End::Fail(7)) // never lands
        .op(3, F::Read, "c", nil(), 8, End::Ok(s("1"), 9)) // the first add already landed
        .op(3, F::Read, "c", nil(), 11, End::Ok(s("1"), 12)) // the Info add has not landed yet
        .op(4, F::Add, "c", int(8), 13, End::Ok(int(11), 15)) // Info add landed before this
        .op(3, F::Read, "c", nil(), 30, End::Ok(int(11), 31)) // final read
        .build();
    let r = check(&h);
    assert_verdict(&r, Validity::Valid);
    assert_eq!(r.stats["observations"], 5);
    assert_eq!(r.stats["final_reads"][0]["value"], "11");
    assert_eq!(r.stats["final_reads"][0]["lower"], "9");
    assert_eq!(r.stats["final_reads"][0]["upper"], "11");
}

#[test]
fn a_missing_key_reads_as_zero() {
    let h = Planted::new()
        .op(0, F::Read, "c", nil(), 0, End::Ok(nil(), 1))
        .op(0, F::Add, "c", int(3), 2, End::Ok(int(3), 3))
        .op(0, F::Read, "c", nil(), 4, End::Ok(int(3), 5))
        .build();
    assert_verdict(&check(&h), Validity::Valid);
}

#[test]
fn read_below_the_acknowledged_sum_is_caught() {
    // Both increments were acknowledged before the read was sent: a lost
    // acknowledged increment.
    let h = Planted::new()
        .op(0, F::Add, "c", int(1), 0, End::Ok(int(1), 1))
        .op(1, F::Add, "c", int(1), 2, End::Ok(int(2), 3))
        .op(2, F::Read, "c", nil(), 4, End::Ok(int(1), 5))
        .build();
    let r = check(&h);
    assert_verdict(&r, Validity::Invalid);
    assert_eq!(r.stats["out_of_bounds"], 1);
    assert!(
        r.anomalies[0].contains("outside [2, 2]"),
        "{}",
        r.anomalies[0]
    );
}

#[test]
fn read_above_the_attempted_sum_is_caught() {
    let h = Planted::new()
        .op(0, F::Add, "c", int(1), 0, End::Ok(int(1), 10))
        .op(1, F::Add, "c", int(2), 1, End::Info(11))
        .op(2, F::Read, "c", nil(), 2, End::Ok(int(4), 5))
        .build();
    let r = check(&h);
    assert_verdict(&r, Validity::Invalid);
    assert!(
        r.anomalies[0].contains("outside [0, 3]"),
        "{}",
        r.anomalies[0]
    );
}

#[test]
fn an_increment_invoked_after_the_read_completed_cannot_count() {
    let h = Planted::new()
        .op(0, F::Read, "c", nil(), 0, End::Ok(int(5), 1))
        .op(1, F::Add, "c", int(5), 2, End::Ok(int(5), 3))
        .op(0, F::Read, "c", nil(), 4, End::Ok(int(5), 5))
        .build();
    assert_verdict(&check(&h), Validity::Invalid);
}

#[test]
fn failed_increments_never_count() {
    let h = Planted::new()
        .op(0, F::Add, "c", int(5), 0, End::Fail(1))
        .op(1, F::Read, "c", nil(), 2, End::Ok(int(5), 3))
        .build();
    assert_verdict(&check(&h), Validity::Invalid);
}

#[test]
fn incrby_totals_are_checked_like_reads() {
    // The second INCRBY reports a total that skips the first, acknowledged one.
    let h = Planted::new()
        .op(0, F::Add, "c", int(1), 0, End::Ok(int(1), 1))
        .op(1, F::Add, "c", int(1), 2, End::Ok(int(1), 3))
        .op(1, F::Read, "c", nil(), 4, End::Ok(int(2), 5))
        .build();
    let r = check(&h);
    assert_verdict(&r, Validity::Invalid);
    assert!(r.anomalies[0].contains("Add"), "{}", r.anomalies[0]);

    // Concurrent INCRBYs may report totals in either order.
    let h = Planted::new()
        .op(0, F::Add, "c", int(1), 0, End::Ok(int(3), 10))
        .op(1, F::Add, "c", int(2), 1, End::Ok(int(2), 11))
        .op(1, F::Read, "c", nil(), 12, End::Ok(int(3), 13))
        .build();
    assert_verdict(&check(&h), Validity::Valid);
}

#[test]
fn negative_deltas_widen_the_bounds_downwards() {
    let h = Planted::new()
        .op(0, F::Add, "c", int(10), 0, End::Ok(int(10), 1))
        .op(1, F::Add, "c", int(-4), 2, End::Ok(int(6), 10))
        .op(2, F::Read, "c", nil(), 3, End::Ok(int(10), 4)) // decrement not landed yet
        .op(2, F::Read, "c", nil(), 5, End::Ok(int(6), 6)) // now it has
        .op(2, F::Read, "c", nil(), 11, End::Ok(int(6), 12))
        .build();
    assert_verdict(&check(&h), Validity::Valid);
    let h = Planted::new()
        .op(0, F::Add, "c", int(10), 0, End::Ok(int(10), 1))
        .op(1, F::Add, "c", int(-4), 2, End::Ok(int(6), 3))
        .op(2, F::Read, "c", nil(), 4, End::Ok(int(10), 5))
        .build();
    assert_verdict(&check(&h), Validity::Invalid);
}

#[test]
fn bounds_are_per_observation_not_a_full_linearizability_check() {
    // Each read alone is explainable (6 and 10 both lie in [6, 10]), though
    // no single order explains 6 followed by 10. This checker is a bounds
    // check by design; the register checker is the linearizability one.
    let h = Planted::new()
        .op(0, F::Add, "c", int(10), 0, End::Ok(int(10), 1))
        .op(1, F::Add, "c", int(-4), 2, End::Ok(int(6), 10))
        .op(2, F::Read, "c", nil(), 3, End::Ok(int(6), 4))
        .op(2, F::Read, "c", nil(), 5, End::Ok(int(10), 6))
        .op(2, F::Read, "c", nil(), 11, End::Ok(int(6), 12))
        .build();
    assert_verdict(&check(&h), Validity::Valid);
}

#[test]
fn a_final_read_is_required_unless_disabled() {
    let h = Planted::new()
        .op(0, F::Add, "c", int(1), 0, End::Ok(int(1), 10))
        .op(1, F::Read, "c", nil(), 5, End::Ok(int(0), 6))
        .build();
    let r = check(&h);
    assert_verdict(&r, Validity::Unknown);
    assert!(r.anomalies[0].contains("final read"), "{}", r.anomalies[0]);
    let lenient = Counter {
        require_final_read: false,
        ..Counter::default()
    };
    assert_verdict(&run(&lenient, &h), Validity::Valid);
}

#[test]
fn a_final_read_that_lost_acknowledged_increments_is_caught() {
    let h = Planted::new()
        .op(0, F::Add, "c", int(1), 0, End::Ok(int(1), 1))
        .op(1, F::Add, "c", int(1), 0, End::Ok(int(2), 2))
        .op(2, F::Add, "c", int(1), 0, End::Info(3))
        .op(0, F::Read, "c", nil(), 10, End::Ok(int(1), 11))
        .build();
    assert_verdict(&check(&h), Validity::Invalid);
}

#[test]
fn non_numeric_reads_are_invalid_and_malformed_ops_unknown() {
    let h = Planted::new()
        .op(0, F::Add, "c", int(1), 0, End::Ok(int(1), 1))
        .op(0, F::Read, "c", nil(), 2, End::Ok(s("one"), 3))
        .op(0, F::Read, "c", nil(), 4, End::Ok(int(1), 5))
        .build();
    assert_verdict(&check(&h), Validity::Invalid);
    let h = Planted::new()
        .op(0, F::Add, "c", s("1"), 0, End::Ok(int(1), 1))
        .op(0, F::Read, "c", nil(), 4, End::Ok(int(1), 5))
        .build();
    assert_verdict(&check(&h), Validity::Unknown);
    let h = Planted::new()
        .op(0, F::Add, "c", int(1), 0, End::Ok(int(1), 1))
        .op(0, F::Write, "c", s("9"), 2, End::Ok(nil(), 3))
        .build();
    assert_verdict(&check(&h), Validity::Unknown);
}

/// A counter workload against a real counter, with a final read per key.
fn random_counter_history(seed: u64, workers: usize, ops: usize, negative: bool) -> History {
    let mut counters: HashMap<String, i64> = HashMap::new();
    let cfg = SimConfig {
        workers,
        ops_per_worker: ops,
        ..SimConfig::default()
    };
    let keys = ["c0", "c1"];
    let (mut history, end) = simulate(
        seed,
        cfg,
        |_, req| match (req.f, &req.args) {
            (F::Add, Value::Int(d)) => {
                let v = counters.entry(req.key.clone()).or_insert(0);
                *v += d;
                Value::Int(*v)
            }
            // GET replies are strings, or nil for a missing key.
            _ => counters
                .get(&req.key)
                .map_or(Value::Nil, |v| Value::str(v.to_string())),
        },
        |rng, _, _| {
            let key = keys[rng.gen_range(0..keys.len())];
            Some(if rng.gen_bool(0.6) {
                let d = if negative {
                    rng.gen_range(-5..=5)
                } else {
                    rng.gen_range(1..=5)
                };
                Request::new(F::Add, key, Value::Int(d))
            } else {
                Request::new(F::Read, key, Value::Nil)
            })
        },
    );
    for (k, key) in keys.iter().enumerate() {
        let read = Op::invoke(1_000_000 + k as u64, F::Read, *key, Value::Nil, end + 1);
        let value = counters.get(*key).map_or(Value::Nil, |v| Value::Int(*v));
        history.push(read.clone());
        history.push(read.complete(OpKind::Ok, value, end + 2));
        // Make sure every key has an increment so the checker owns it.
        let add = Op::invoke(2_000_000 + k as u64, F::Add, *key, Value::Int(0), end + 3);
        history.push(add.clone());
        history.push(add.complete(OpKind::Fail, Value::Nil, end + 4));
    }
    history
}

proptest! {
    #![proptest_config(crate::support::cases(64))]

    #[test]
    fn random_correct_counters_are_valid(
        seed in any::<u64>(), workers in 1usize..7, ops in 1usize..60, negative in any::<bool>(),
    ) {
        let r = check(&random_counter_history(seed, workers, ops, negative));
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r.anomalies);
    }

    #[test]
    fn a_final_read_off_by_one_is_invalid(
        seed in any::<u64>(), workers in 1usize..7, ops in 1usize..60, up in any::<bool>(),
    ) {
        // Positive deltas only, so the final read's bounds are
        // [acknowledged, attempted] and stepping outside is certain.
        let mut h = random_counter_history(seed, workers, ops, false);
        let pairs = h.pairs().unwrap_or_default();
        let final_read = pairs.iter().rev().find(|p| p.f == F::Read).map(|p| p.completion_index);
        let Some(Some(at)) = final_read else { return Err(TestCaseError::fail("no final read")) };
        let key = h.ops()[at].key.clone();
        let ok: Vec<_> = pairs.iter().filter(|p| p.key == key && p.f == F::Add).collect();
        let acked: i64 = ok.iter().filter(|p| p.is_ok()).map(|p| match p.args { Value::Int(d) => d, _ => 0 }).sum();
        let attempted: i64 = ok.iter().filter(|p| p.outcome != raftlimit_jepsen::history::Outcome::Fail)
            .map(|p| match p.args { Value::Int(d) => d, _ => 0 }).sum();
        h.ops_mut()[at].value = Value::Int(if up { attempted + 1 } else { acked - 1 });
        let r = check(&h);
        prop_assert_eq!(r.valid, Validity::Invalid, "{:?}", r.anomalies);
    }
}
