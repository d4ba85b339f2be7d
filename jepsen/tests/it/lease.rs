//! Concurrency leases: planted over-grants, expiry and release subtleties, and simulated servers.

use std::collections::HashMap;

use proptest::prelude::*;
use raftlimit_jepsen::checker::{CheckResult, Leases, Validity};
use raftlimit_jepsen::history::{History, LeaseArgs, Outcome, Value, F};

use crate::support::{assert_verdict, run, s, simulate, End, Planted, Request, SimConfig};

const MS: u64 = 1_000_000;

fn check(history: &History) -> CheckResult {
    run(&Leases::default(), history)
}

fn lease(limit: u64, ttl_ms: u64) -> Value {
    Value::Lease(LeaseArgs { limit, ttl_ms })
}

/// Acquire of "sem" (limit 2, ttl 1 s) by `process` over `[at, at + 1]` ms.
fn acquire(p: Planted, process: u64, at_ms: u64, id: Option<&str>) -> Planted {
    let result = id.map_or(Value::Nil, s);
    p.op(
        process,
        F::Acquire,
        "sem",
        lease(2, 1000),
        at_ms * MS,
        End::Ok(result, at_ms * MS + MS),
    )
}

fn release(p: Planted, process: u64, at_ms: u64, id: &str, end: fn(u64) -> End) -> Planted {
    p.op(
        process,
        F::Release,
        "sem",
        s(id),
        at_ms * MS,
        end(at_ms * MS + MS),
    )
}

fn released(t: u64) -> End {
    End::Ok(Value::Bool(true), t)
}

#[test]
fn acquiring_within_the_limit_and_releasing_passes() {
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = acquire(p, 1, 10, Some("b"));
    let p = acquire(p, 2, 20, None); // refused: two held
    let p = release(p, 0, 30, "a", released);
    let p = acquire(p, 2, 40, Some("c"));
    let r = check(&p.build());
    assert_verdict(&r, Validity::Valid);
    assert_eq!(r.stats["granted"], 3);
    assert_eq!(r.stats["refused"], 1);
    assert_eq!(r.stats["keys"]["sem"]["max_certainly_held"], 2);
}

#[test]
fn one_lease_too_many_is_caught() {
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = acquire(p, 1, 10, Some("b"));
    let p = acquire(p, 2, 20, Some("c"));
    let r = check(&p.build());
    assert_verdict(&r, Validity::Invalid);
    assert_eq!(r.stats["violations"], 1);
    assert!(r.anomalies[0].contains("3 leases"), "{}", r.anomalies[0]);
    assert!(r.anomalies[0].contains("limit 2"), "{}", r.anomalies[0]);
}

#[test]
fn expired_leases_free_their_slot() {
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = acquire(p, 1, 10, Some("b"));
    let p = acquire(p, 2, 1100, Some("c"));
    let p = acquire(p, 3, 1200, Some("d"));
    assert_verdict(&check(&p.build()), Validity::Valid);
}

#[test]
fn a_lease_is_certainly_held_until_just_before_its_ttl() {
    // "a" was granted by 1 ms, so it lives until at least 995 ms (1 s ttl,
    // 5 ms slack); "b" and "c" are certainly held from 991 ms.
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = acquire(p, 1, 990, Some("b"));
    let p = acquire(p, 2, 990, Some("c"));
    assert_verdict(&check(&p.build()), Validity::Invalid);
    // Within the slack of the expiry, it is not certain any more.
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = acquire(p, 1, 996, Some("b"));
    let p = acquire(p, 2, 996, Some("c"));
    assert_verdict(&check(&p.build()), Validity::Valid);
}

#[test]
fn indeterminate_acquires_are_not_counted() {
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = acquire(p, 1, 10, Some("b"));
    let p = p.op(
        2,
        F::Acquire,
        "sem",
        lease(2, 1000),
        20 * MS,
        End::Info(25 * MS),
    );
    let p = p.op(3, F::Acquire, "sem", lease(2, 1000), 30 * MS, End::Never);
    let r = check(&p.build());
    assert_verdict(&r, Validity::Valid);
    assert_eq!(r.stats["indeterminate"], 2);
}

#[test]
fn an_indeterminate_release_may_have_freed_the_slot() {
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = acquire(p, 1, 10, Some("b"));
    let p = release(p, 0, 100, "a", End::Info);
    let p = acquire(p, 2, 200, Some("c"));
    assert_verdict(&check(&p.build()), Validity::Valid);
}

#[test]
fn a_failed_release_freed_nothing() {
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = acquire(p, 1, 10, Some("b"));
    let p = release(p, 0, 100, "a", End::Fail);
    let p = acquire(p, 2, 200, Some("c"));
    assert_verdict(&check(&p.build()), Validity::Invalid);
}

#[test]
fn a_release_of_another_id_frees_nothing() {
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = acquire(p, 1, 10, Some("b"));
    let p = release(p, 0, 100, "zz", released);
    let p = acquire(p, 2, 200, Some("c"));
    assert_verdict(&check(&p.build()), Validity::Invalid);
}

#[test]
fn a_release_sent_the_instant_a_grant_returns_gets_the_benefit_of_the_doubt() {
    // "c" is granted over [100, 101] ms and "a" released from 101 ms: only
    // at a timestamp tie could the release land first; ties count as
    // concurrency, so this is not reported.
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = acquire(p, 1, 10, Some("b"));
    let p = acquire(p, 2, 100, Some("c"));
    let p = release(p, 0, 101, "a", released);
    assert_verdict(&check(&p.build()), Validity::Valid);
    // Released a moment later: three leases were certainly held in between.
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = acquire(p, 1, 10, Some("b"));
    let p = acquire(p, 2, 100, Some("c"));
    let p = release(p, 0, 102, "a", released);
    assert_verdict(&check(&p.build()), Validity::Invalid);
}

#[test]
fn a_release_that_landed_before_a_grant_cannot_end_it() {
    // Ids are unique on the real server, but the checker must not assume it:
    // "a" is released, then granted again; the old release is no excuse.
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = release(p, 0, 10, "a", released);
    let p = acquire(p, 1, 20, Some("b"));
    let p = acquire(p, 2, 30, Some("a"));
    let p = acquire(p, 3, 40, Some("c"));
    assert_verdict(&check(&p.build()), Validity::Invalid);
}

#[test]
fn lost_grants_are_counted_but_do_not_fail_the_run() {
    let p = acquire(Planted::new(), 0, 0, None); // nothing held: lost
    let p = acquire(p, 1, 10, Some("a"));
    let p = acquire(p, 2, 20, Some("b"));
    let p = acquire(p, 3, 30, None); // two held: justified
    let r = check(&p.build());
    assert_verdict(&r, Validity::Valid);
    assert_eq!(r.stats["lost_grants"], 1);
}

#[test]
fn inconsistent_or_unreadable_keys_are_unknown() {
    let p = acquire(Planted::new(), 0, 0, Some("a"));
    let p = p.op(
        1,
        F::Acquire,
        "sem",
        lease(3, 1000),
        10 * MS,
        End::Ok(s("b"), 11 * MS),
    );
    assert_verdict(&check(&p.build()), Validity::Unknown);
    let p = Planted::new().op(
        0,
        F::Acquire,
        "sem",
        lease(2, 1000),
        0,
        End::Ok(Value::Int(7), 1),
    );
    assert_verdict(&check(&p.build()), Validity::Unknown);
    let p = Planted::new().op(
        0,
        F::Release,
        "sem",
        Value::Nil,
        0,
        End::Ok(Value::Bool(true), 1),
    );
    assert_verdict(&check(&p.build()), Validity::Unknown);
}

/// Workers acquire, hold for a while, and mostly release (sometimes they let
/// the lease expire), against a server that grants up to `grant_limit`
/// leases while the clients believe the limit is 2.
fn simulated(seed: u64, grant_limit: usize) -> History {
    let ttl_ms = 40;
    let mut held: HashMap<String, u64> = HashMap::new();
    let mut next_id = 0u64;
    let cfg = SimConfig {
        workers: 6,
        ops_per_worker: 120,
        max_latency_ns: 3 * MS,
        max_gap_ns: 50 * MS,
        ..SimConfig::default()
    };
    let args = lease(2, ttl_ms);
    simulate(
        seed,
        cfg,
        |now, req| match (&req.f, &req.args) {
            (F::Acquire, _) => {
                held.retain(|_, expiry| *expiry > now);
                if held.len() < grant_limit {
                    next_id += 1;
                    let id = format!("L{next_id}");
                    held.insert(id.clone(), now + ttl_ms * MS);
                    Value::Str(id)
                } else {
                    Value::Nil
                }
            }
            (F::Release, Value::Str(id)) => Value::Bool(held.remove(id).is_some()),
            _ => Value::Nil,
        },
        |rng, _, last| {
            use rand::Rng;
            match last {
                Some(seen) if seen.outcome == Outcome::Ok && seen.request.f == F::Acquire => {
                    match &seen.result {
                        Value::Str(id) if rng.gen_bool(0.8) => {
                            Some(Request::new(F::Release, "sem", Value::str(id.as_str())))
                        }
                        _ => Some(Request::new(F::Acquire, "sem", args.clone())),
                    }
                }
                _ => Some(Request::new(F::Acquire, "sem", args.clone())),
            }
        },
    )
    .0
}

proptest! {
    #![proptest_config(crate::support::cases(32))]

    #[test]
    fn simulated_correct_lease_servers_pass(seed in any::<u64>()) {
        let r = check(&simulated(seed, 2));
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r.anomalies);
        prop_assert!(r.stats["granted"].as_u64().unwrap_or(0) > 20);
    }

    #[test]
    fn simulated_server_granting_one_lease_too_many_is_caught(seed in any::<u64>()) {
        let r = check(&simulated(seed, 3));
        prop_assert_eq!(r.valid, Validity::Invalid, "{}", r.stats);
    }
}
