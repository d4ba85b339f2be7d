//! Register linearizability: planted anomalies, correct concurrent histories, and random histories.

use std::collections::HashMap;

use proptest::prelude::*;
use raftlimit_jepsen::checker::{Checker, Linearizable, Validity};
use raftlimit_jepsen::history::{History, OpKind, Value, F};
use rand::Rng;

use crate::support::{assert_verdict, run, s, simulate, End, Planted, Request, SimConfig};

fn check(history: &History) -> raftlimit_jepsen::checker::CheckResult {
    run(&Linearizable::default(), history)
}

fn nil() -> Value {
    Value::Nil
}

#[test]
fn sequential_reads_and_writes_pass() {
    let h = Planted::new()
        .op(0, F::Read, "k", nil(), 0, End::Ok(nil(), 1))
        .op(0, F::Write, "k", s("a"), 2, End::Ok(s("a"), 3))
        .op(1, F::Read, "k", nil(), 4, End::Ok(s("a"), 5))
        .op(1, F::Swap, "k", s("b"), 6, End::Ok(s("a"), 7))
        .op(0, F::Read, "k", nil(), 8, End::Ok(s("b"), 9))
        .build();
    let r = check(&h);
    assert_verdict(&r, Validity::Valid);
    assert_eq!(r.stats["keys"], 1);
    assert_eq!(r.stats["ops"], 5);
}

#[test]
fn concurrent_operations_may_take_effect_in_any_overlapping_order() {
    // Two overlapping writes; readers during and after the overlap see
    // either, but every later reader agrees on the last one.
    let h = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Ok(nil(), 10))
        .op(1, F::Write, "k", s("b"), 2, End::Ok(nil(), 12))
        .op(2, F::Read, "k", nil(), 3, End::Ok(s("b"), 5))
        .op(3, F::Read, "k", nil(), 4, End::Ok(s("a"), 11))
        .op(2, F::Read, "k", nil(), 13, End::Ok(s("a"), 14))
        .op(3, F::Read, "k", nil(), 15, End::Ok(s("a"), 16))
        .build();
    assert_verdict(&check(&h), Validity::Valid);
}

#[test]
fn stale_read_is_caught_and_explained() {
    let h = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Ok(nil(), 1))
        .op(0, F::Write, "k", s("b"), 2, End::Ok(nil(), 3))
        .op(1, F::Read, "k", nil(), 4, End::Ok(s("a"), 5))
        .build();
    let r = check(&h);
    assert_verdict(&r, Validity::Invalid);
    let reports = Linearizable::default().check_keys(&h.pairs().unwrap());
    let v = reports[0].violation.as_ref().unwrap();
    // The stale read is op 4 (records: w a, ok, w b, ok, read, ok).
    assert_eq!(v.op, 4);
    assert_eq!(v.prefix, vec![0, 2]);
    assert_eq!(v.state_after_prefix.as_deref(), Some("b"));
    assert!(r.anomalies[0].contains("op 4"), "{}", r.anomalies[0]);
}

#[test]
fn lost_acknowledged_write_is_caught() {
    // The write was acknowledged, yet a later read finds the key absent.
    let h = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Ok(nil(), 1))
        .op(1, F::Read, "k", nil(), 5, End::Ok(nil(), 6))
        .build();
    assert_verdict(&check(&h), Validity::Invalid);

    // Also when the loss shows up only after a second reader saw it.
    let h = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Ok(nil(), 1))
        .op(1, F::Read, "k", nil(), 2, End::Ok(s("a"), 3))
        .op(2, F::Write, "k", s("b"), 4, End::Ok(nil(), 5))
        .op(1, F::Read, "k", nil(), 6, End::Ok(s("a"), 7))
        .build();
    assert_verdict(&check(&h), Validity::Invalid);
}

#[test]
fn swap_returning_a_wrong_previous_value_is_caught() {
    let h = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Ok(nil(), 1))
        .op(0, F::Write, "k", s("b"), 2, End::Ok(nil(), 3))
        .op(1, F::Swap, "k", s("c"), 4, End::Ok(s("a"), 5))
        .build();
    let r = check(&h);
    assert_verdict(&r, Validity::Invalid);
    assert!(r.anomalies[0].contains("Swap"), "{}", r.anomalies[0]);

    // Two swaps cannot both observe the same previous value.
    let h = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Ok(nil(), 1))
        .op(1, F::Swap, "k", s("b"), 2, End::Ok(s("a"), 10))
        .op(2, F::Swap, "k", s("c"), 3, End::Ok(s("a"), 11))
        .build();
    assert_verdict(&check(&h), Validity::Invalid);
}

#[test]
fn concurrent_swaps_that_chain_pass() {
    let h = Planted::new()
        .op(0, F::Swap, "k", s("a"), 0, End::Ok(nil(), 10))
        .op(1, F::Swap, "k", s("b"), 1, End::Ok(s("c"), 11))
        .op(2, F::Swap, "k", s("c"), 2, End::Ok(s("a"), 12))
        .op(3, F::Read, "k", nil(), 13, End::Ok(s("b"), 14))
        .build();
    assert_verdict(&check(&h), Validity::Valid);
}

#[test]
fn indeterminate_write_may_take_effect_long_after_it_timed_out() {
    let h = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Info(5))
        .op(1, F::Read, "k", nil(), 10, End::Ok(nil(), 11))
        .op(1, F::Read, "k", nil(), 100, End::Ok(s("a"), 101))
        .build();
    assert_verdict(&check(&h), Validity::Valid);
}

#[test]
fn indeterminate_write_may_never_take_effect() {
    let h = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Info(5))
        .op(1, F::Write, "k", s("b"), 1, End::Never)
        .op(2, F::Read, "k", nil(), 10, End::Ok(nil(), 11))
        .build();
    assert_verdict(&check(&h), Validity::Valid);
}

#[test]
fn indeterminate_write_takes_effect_at_most_once() {
    // Seen, then overwritten, then seen again with nobody writing it twice.
    let h = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Info(5))
        .op(1, F::Read, "k", nil(), 10, End::Ok(s("a"), 11))
        .op(1, F::Write, "k", s("b"), 12, End::Ok(nil(), 13))
        .op(1, F::Read, "k", nil(), 14, End::Ok(s("a"), 15))
        .build();
    assert_verdict(&check(&h), Validity::Invalid);
}

#[test]
fn indeterminate_write_cannot_take_effect_before_it_was_sent() {
    let h = Planted::new()
        .op(1, F::Read, "k", nil(), 0, End::Ok(s("a"), 1))
        .op(0, F::Write, "k", s("a"), 5, End::Info(6))
        .build();
    assert_verdict(&check(&h), Validity::Invalid);
}

#[test]
fn failed_writes_did_not_happen() {
    let unseen = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Fail(1))
        .op(1, F::Read, "k", nil(), 2, End::Ok(nil(), 3))
        .build();
    assert_verdict(&check(&unseen), Validity::Valid);
    let seen = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Fail(1))
        .op(1, F::Read, "k", nil(), 2, End::Ok(s("a"), 3))
        .build();
    assert_verdict(&check(&seen), Validity::Invalid);
}

#[test]
fn indeterminate_swap_accepts_any_previous_value_but_still_writes() {
    let h = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Ok(nil(), 1))
        .op(1, F::Swap, "k", s("b"), 2, End::Info(3))
        .op(2, F::Read, "k", nil(), 4, End::Ok(s("b"), 5))
        .build();
    assert_verdict(&check(&h), Validity::Valid);
    // It cannot supply a value it did not write.
    let h = Planted::new()
        .op(1, F::Swap, "k", s("b"), 2, End::Info(3))
        .op(2, F::Read, "k", nil(), 4, End::Ok(s("c"), 5))
        .build();
    assert_verdict(&check(&h), Validity::Invalid);
}

#[test]
fn reads_without_a_result_constrain_nothing() {
    let h = Planted::new()
        .op(0, F::Write, "k", s("a"), 0, End::Ok(nil(), 1))
        .op(1, F::Read, "k", nil(), 2, End::Info(3))
        .op(2, F::Read, "k", nil(), 2, End::Fail(3))
        .op(3, F::Read, "k", nil(), 4, End::Never)
        .build();
    assert_verdict(&check(&h), Validity::Valid);
}

#[test]
fn keys_are_judged_independently() {
    let h = Planted::new()
        .op(0, F::Write, "good", s("a"), 0, End::Ok(nil(), 1))
        .op(1, F::Read, "good", nil(), 2, End::Ok(s("a"), 3))
        .op(0, F::Write, "bad", s("a"), 4, End::Ok(nil(), 5))
        .op(1, F::Read, "bad", nil(), 6, End::Ok(s("z"), 7))
        .build();
    let reports = Linearizable::default().check_keys(&h.pairs().unwrap());
    let verdicts: Vec<(&str, Validity)> = reports
        .iter()
        .map(|r| (r.key.as_str(), r.validity))
        .collect();
    assert_eq!(
        verdicts,
        vec![("bad", Validity::Invalid), ("good", Validity::Valid)]
    );
    let r = check(&h);
    assert_verdict(&r, Validity::Invalid);
    assert_eq!(r.anomalies.len(), 1);
    assert!(r.anomalies[0].contains("\"bad\""));
}

#[test]
fn exhausted_search_is_unknown_never_valid() {
    // Twelve concurrent writes and a read of a value nobody wrote: refuting
    // it means visiting every (subset of writes, last write) configuration.
    let mut p = Planted::new();
    for i in 0..12 {
        p = p.op(
            i,
            F::Write,
            "k",
            s(&format!("v{i}")),
            0,
            End::Ok(nil(), 100),
        );
    }
    let h = p
        .op(99, F::Read, "k", nil(), 0, End::Ok(s("never"), 100))
        .build();
    let few_steps = Linearizable {
        max_steps: 1_000,
        max_cache_entries: 1_000_000,
    };
    let r = run(&few_steps, &h);
    assert_verdict(&r, Validity::Unknown);
    assert!(r.anomalies[0].contains("budget"), "{}", r.anomalies[0]);
    let small_cache = Linearizable {
        max_steps: u64::MAX,
        max_cache_entries: 100,
    };
    assert_verdict(&run(&small_cache, &h), Validity::Unknown);
    // With the default budget the same history is decided.
    assert_verdict(&check(&h), Validity::Invalid);
}

#[test]
fn keys_owned_by_other_workloads_are_left_alone() {
    // Reads of a counter key belong to the counter checker.
    let h = Planted::new()
        .op(0, F::Add, "c", Value::Int(1), 0, End::Ok(Value::Int(1), 1))
        .op(1, F::Read, "c", nil(), 2, End::Ok(s("1"), 3))
        .build();
    let r = check(&h);
    assert_verdict(&r, Validity::Valid);
    assert_eq!(r.stats["keys"], 0);
}

#[test]
fn uninterpretable_keys_are_unknown() {
    let mixed = Planted::new()
        .op(0, F::Write, "k", s("1"), 0, End::Ok(nil(), 1))
        .op(1, F::Add, "k", Value::Int(1), 2, End::Ok(Value::Int(2), 3))
        .build();
    assert_verdict(&check(&mixed), Validity::Unknown);
    let not_a_string = Planted::new()
        .op(0, F::Write, "k", Value::Int(1), 0, End::Ok(nil(), 1))
        .build();
    assert_verdict(&check(&not_a_string), Validity::Unknown);
}

/// A register workload against a real sequential register; linearizable by
/// construction. Every written value is unique.
fn random_register_history(seed: u64, workers: usize, ops: usize, keys: usize) -> History {
    let mut register: HashMap<String, String> = HashMap::new();
    let mut written = 0u64;
    let cfg = SimConfig {
        workers,
        ops_per_worker: ops,
        ..SimConfig::default()
    };
    let (mut history, end) = simulate(
        seed,
        cfg,
        |_, req| match req.f {
            F::Read => register
                .get(&req.key)
                .map_or(Value::Nil, |v| Value::str(v.as_str())),
            F::Write | F::Swap => {
                let Value::Str(v) = &req.args else {
                    return Value::Nil;
                };
                let prev = register.insert(req.key.clone(), v.clone());
                if req.f == F::Swap {
                    prev.map_or(Value::Nil, Value::Str)
                } else {
                    req.args.clone()
                }
            }
            _ => Value::Nil,
        },
        |rng, _, _| {
            let key = format!("r{}", rng.gen_range(0..keys));
            Some(match rng.gen_range(0..3) {
                0 => Request::new(F::Read, &key, Value::Nil),
                n => {
                    written += 1;
                    let f = if n == 1 { F::Write } else { F::Swap };
                    Request::new(f, &key, Value::str(format!("v{written}")))
                }
            })
        },
    );
    // A final read of every key, so each history has reads to corrupt.
    for k in 0..keys {
        let key = format!("r{k}");
        let read = raftlimit_jepsen::history::Op::invoke(
            1_000_000 + k as u64,
            F::Read,
            &key,
            Value::Nil,
            end + 1,
        );
        let value = register
            .get(&key)
            .map_or(Value::Nil, |v| Value::str(v.as_str()));
        history.push(read.clone());
        history.push(read.complete(OpKind::Ok, value, end + 2));
    }
    history
}

/// Replaces the value of the `pick`-th `Ok` read with one nobody wrote.
fn corrupt_one_read(history: &mut History, pick: usize) {
    let reads: Vec<usize> = history
        .ops()
        .iter()
        .enumerate()
        .filter(|(_, op)| op.f == F::Read && op.kind == OpKind::Ok)
        .map(|(i, _)| i)
        .collect();
    let at = reads[pick % reads.len()];
    history.ops_mut()[at].value = Value::str("never-written");
}

proptest! {
    #![proptest_config(crate::support::cases(96))]

    #[test]
    fn random_linearizable_histories_are_valid(
        seed in any::<u64>(), workers in 1usize..7, ops in 1usize..40, keys in 1usize..4,
    ) {
        let h = random_register_history(seed, workers, ops, keys);
        let r = check(&h);
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r.anomalies);
    }

    #[test]
    fn one_corrupted_read_makes_a_random_history_invalid(
        seed in any::<u64>(), workers in 1usize..7, ops in 1usize..40, keys in 1usize..4, pick in any::<usize>(),
    ) {
        let mut h = random_register_history(seed, workers, ops, keys);
        corrupt_one_read(&mut h, pick);
        let r = check(&h);
        prop_assert_eq!(r.valid, Validity::Invalid, "{:?}", r.anomalies);
    }
}

#[test]
fn a_long_concurrent_history_is_decided_quickly() {
    // 8 workers x 500 ops on 2 keys, many of them indeterminate.
    let h = random_register_history(7, 8, 500, 2);
    let start = std::time::Instant::now();
    let r = check(&h);
    assert_verdict(&r, Validity::Valid);
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

#[test]
fn a_long_corrupted_history_is_refuted_not_left_unknown() {
    // Ten workers on one key, 3000 operations, about 10% indeterminate.
    let mut h = random_register_history(11, 10, 300, 1);
    corrupt_one_read(&mut h, 1234);
    assert_verdict(&check(&h), Validity::Invalid);
}

#[test]
fn result_names_the_checker() {
    assert_eq!(Linearizable::default().name(), "linearizable");
}
