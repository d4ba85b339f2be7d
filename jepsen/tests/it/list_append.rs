//! Append-only lists: one order of appends, no invented or lost elements, reads that respect real time.

use proptest::prelude::*;
use raftlimit_jepsen::checker::{CheckResult, ListAppend, Validity};
use raftlimit_jepsen::history::{History, Op, OpKind, Value, F};
use rand::Rng;

use crate::support::{assert_verdict, run, simulate, End, Planted, Request, SimConfig};

fn check(history: &History) -> CheckResult {
    run(&ListAppend::default(), history)
}

fn list(v: &[i64]) -> Value {
    Value::List(v.to_vec())
}

fn append(p: Planted, process: u64, e: i64, at: u64, end: End) -> Planted {
    p.op(process, F::Append, "l", Value::Int(e), at, end)
}

fn read(p: Planted, process: u64, at: u64, seen: &[i64], done: u64) -> Planted {
    p.op(
        process,
        F::ReadList,
        "l",
        Value::Nil,
        at,
        End::Ok(list(seen), done),
    )
}

#[test]
fn concurrent_appends_with_timeouts_and_failures_pass() {
    let mut p = Planted::new();
    p = append(p, 0, 1, 0, End::Ok(list(&[1]), 10));
    p = append(p, 1, 2, 5, End::Ok(list(&[1, 2]), 12)); // concurrent with 1, after it
    p = append(p, 2, 3, 6, End::Info(8)); // lands late (after 4)
    p = append(p, 3, 4, 7, End::Fail(9)); // never lands
    p = read(p, 4, 11, &[1], 13); // concurrent with the append of 2: may miss it
    p = append(p, 5, 5, 14, End::Ok(list(&[1, 2, 5]), 15));
    p = append(p, 6, 6, 20, End::Info(21)); // never lands: nobody sees it
    p = read(p, 4, 30, &[1, 2, 5, 3], 31); // the Info append of 3 landed late
    let r = check(&p.build());
    assert_verdict(&r, Validity::Valid);
    assert_eq!(r.stats["longest_list"], 4);
    assert_eq!(r.stats["reads"], 2);
}

#[test]
fn a_lost_acknowledged_append_is_caught() {
    let mut p = Planted::new();
    p = append(p, 0, 1, 0, End::Ok(list(&[1]), 1));
    p = append(p, 1, 2, 2, End::Ok(list(&[1, 2]), 3));
    p = read(p, 2, 10, &[1], 11); // final read: 2 is gone
    let r = check(&p.build());
    assert_verdict(&r, Validity::Invalid);
    assert_eq!(r.stats["lost"], 1, "{:?}", r.anomalies);
    assert!(
        r.anomalies.iter().any(|a| a.contains("lost append")),
        "{:?}",
        r.anomalies
    );
}

#[test]
fn an_acknowledged_append_missing_from_every_read_is_lost() {
    // No read ever contains 2, and the final read began after it was acknowledged.
    let mut p = Planted::new();
    p = append(p, 0, 1, 0, End::Ok(list(&[1]), 1));
    p = p.op(1, F::Append, "l", Value::Int(2), 2, End::Ok(Value::Nil, 3));
    p = read(p, 2, 10, &[1], 11);
    let r = check(&p.build());
    assert_verdict(&r, Validity::Invalid);
    assert_eq!(r.stats["lost"], 1, "{:?}", r.anomalies);
}

#[test]
fn reordered_appends_are_caught() {
    let mut p = Planted::new();
    p = append(p, 0, 1, 0, End::Ok(list(&[1]), 1));
    p = append(p, 1, 2, 2, End::Ok(list(&[1, 2]), 3));
    p = read(p, 2, 10, &[2, 1], 11);
    let r = check(&p.build());
    assert_verdict(&r, Validity::Invalid);
    assert!(
        r.stats["divergent"].as_u64().unwrap_or(0) >= 1,
        "{}",
        r.stats
    );
}

#[test]
fn two_diverged_copies_are_caught() {
    // Each side accepted its own append after 1: split brain.
    let mut p = Planted::new();
    p = append(p, 0, 1, 0, End::Ok(list(&[1]), 1));
    p = append(p, 1, 2, 2, End::Ok(list(&[1, 2]), 3));
    p = append(p, 2, 3, 2, End::Ok(list(&[1, 3]), 3));
    p = read(p, 3, 10, &[1, 2, 3], 11);
    let r = check(&p.build());
    assert_verdict(&r, Validity::Invalid);
    assert!(
        r.stats["divergent"].as_u64().unwrap_or(0) >= 1,
        "{}",
        r.stats
    );
}

#[test]
fn a_stale_read_is_caught() {
    // The read began after [1, 2] was acknowledged but returns the older [1].
    let mut p = Planted::new();
    p = append(p, 0, 1, 0, End::Ok(list(&[1]), 1));
    p = append(p, 1, 2, 2, End::Ok(list(&[1, 2]), 3));
    p = read(p, 2, 5, &[1], 6);
    p = read(p, 2, 10, &[1, 2], 11);
    let r = check(&p.build());
    assert_verdict(&r, Validity::Invalid);
    assert_eq!(r.stats["stale"], 1, "{:?}", r.anomalies);
    assert!(
        r.anomalies.iter().any(|a| a.contains("stale read")),
        "{:?}",
        r.anomalies
    );
}

#[test]
fn reads_going_backwards_in_real_time_are_caught() {
    // Neither read is stale against an acknowledged append (3 is still in
    // flight), but once one read has seen 3 a later one must too.
    let mut p = Planted::new();
    p = append(p, 0, 1, 0, End::Ok(list(&[1]), 1));
    p = append(p, 1, 3, 2, End::Info(3));
    p = read(p, 2, 4, &[1, 3], 5);
    p = read(p, 3, 6, &[1], 7);
    p = read(p, 2, 10, &[1, 3], 11);
    let r = check(&p.build());
    assert_verdict(&r, Validity::Invalid);
}

#[test]
fn phantom_duplicate_and_failed_elements_are_caught() {
    let base = || append(Planted::new(), 0, 1, 0, End::Ok(list(&[1]), 1));
    let phantom = read(base(), 1, 10, &[1, 99], 11);
    let r = check(&phantom.build());
    assert_verdict(&r, Validity::Invalid);
    assert_eq!(r.stats["phantom"], 1);

    let duplicate = read(base(), 1, 10, &[1, 1], 11);
    let r = check(&duplicate.build());
    assert_verdict(&r, Validity::Invalid);
    assert_eq!(r.stats["duplicated"], 1);

    let failed = read(append(base(), 1, 2, 2, End::Fail(3)), 2, 10, &[1, 2], 11);
    let r = check(&failed.build());
    assert_verdict(&r, Validity::Invalid);
    assert_eq!(r.stats["failed_seen"], 1);

    // An append's own transaction must see its element last.
    let misplaced = append(base(), 1, 2, 2, End::Ok(list(&[2, 1]), 3));
    let r = check(&read(misplaced, 2, 10, &[2, 1], 11).build());
    assert_verdict(&r, Validity::Invalid);
    assert_eq!(r.stats["misplaced"], 1);
}

#[test]
fn a_key_without_a_final_read_is_unknown() {
    let mut p = Planted::new();
    p = read(p, 1, 0, &[], 1);
    p = append(p, 0, 1, 2, End::Ok(list(&[1]), 3));
    let r = check(&p.build());
    assert_verdict(&r, Validity::Unknown);
    assert_eq!(r.stats["keys_without_final_read"], 1);
}

/// A correct single list under the simulator's timeouts and failures, with a final read.
fn simulated(seed: u64) -> History {
    let mut applied: Vec<i64> = Vec::new();
    let mut next = 0i64;
    let cfg = SimConfig {
        workers: 5,
        ops_per_worker: 40,
        ..SimConfig::default()
    };
    let (mut history, end) = simulate(
        seed,
        cfg,
        |_, req| {
            if let Value::Int(e) = req.args {
                applied.push(e);
            }
            Value::List(applied.clone())
        },
        |rng, _, _| {
            if rng.gen_bool(0.5) {
                next += 1;
                Some(Request::new(F::Append, "l", Value::Int(next)))
            } else {
                Some(Request::new(F::ReadList, "l", Value::Nil))
            }
        },
    );
    let invoke = Op::invoke(1_000, F::ReadList, "l", Value::Nil, end + 1);
    let done = invoke.complete(OpKind::Ok, Value::List(applied), end + 2);
    history.push(invoke);
    history.push(done);
    history
}

/// Removes the element of the first acknowledged append from every list
/// except that append's own observation: the server lost it right after
/// acknowledging it. `None` when no append was acknowledged.
fn lose_first_acknowledged(history: &History) -> Option<History> {
    let pairs = history.pairs().ok()?;
    let victim = pairs
        .iter()
        .find(|p| p.f == F::Append && p.is_ok())
        .and_then(|p| Some((p.completion_index?, p.args.clone())))?;
    let (own, Value::Int(e)) = victim else {
        return None;
    };
    let mut lost = history.clone();
    for (i, op) in lost.ops_mut().iter_mut().enumerate() {
        if let (true, Value::List(l)) = (i != own, &mut op.value) {
            l.retain(|x| *x != e);
        }
    }
    Some(lost)
}

proptest! {
    #![proptest_config(crate::support::cases(32))]

    #[test]
    fn simulated_correct_lists_pass(seed in any::<u64>()) {
        let r = check(&simulated(seed));
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r.anomalies);
    }

    #[test]
    fn simulated_lost_elements_are_caught(seed in any::<u64>()) {
        let lost = lose_first_acknowledged(&simulated(seed));
        prop_assume!(lost.is_some());
        let r = check(&lost.unwrap());
        prop_assert_eq!(r.valid, Validity::Invalid, "{}", r.stats);
    }
}
