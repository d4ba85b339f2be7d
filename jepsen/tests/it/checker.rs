//! Running several checkers over one history that mixes workloads, and summarising them.

use raftlimit_jepsen::checker::{
    check_history, CheckResult, Checker, Counter, Leases, Limiter, Linearizable, Validity,
};
use raftlimit_jepsen::history::{Algo, LeaseArgs, LimitArgs, Value, Verdict, F};

use crate::support::{s, End, Planted};

fn mixed(stale: bool) -> raftlimit_jepsen::history::History {
    let check = Value::Limit(LimitArgs {
        limit: 1,
        period_ms: 1000,
        algo: Algo::Gcra,
        burst: None,
    });
    let allowed = Value::Verdict(Verdict {
        allowed: true,
        limit: Some(1),
        remaining: Some(0),
        retry_after_ms: Some(-1),
        reset_after_ms: Some(1000),
    });
    Planted::new()
        .op(0, F::Write, "reg", s("a"), 0, End::Ok(Value::Nil, 1))
        .op(
            0,
            F::Read,
            "reg",
            Value::Nil,
            2,
            End::Ok(if stale { Value::Nil } else { s("a") }, 3),
        )
        .op(
            1,
            F::Add,
            "ctr",
            Value::Int(2),
            0,
            End::Ok(Value::Int(2), 1),
        )
        .op(1, F::Read, "ctr", Value::Nil, 2, End::Ok(s("2"), 3))
        .op(2, F::Check, "rl", check, 0, End::Ok(allowed, 1))
        .op(
            3,
            F::Acquire,
            "sem",
            Value::Lease(LeaseArgs {
                limit: 1,
                ttl_ms: 10,
            }),
            0,
            End::Ok(s("l1"), 1),
        )
        .op(
            3,
            F::Release,
            "sem",
            s("l1"),
            2,
            End::Ok(Value::Bool(true), 3),
        )
        .build()
}

fn all() -> [&'static dyn Checker; 4] {
    [
        &Linearizable {
            max_steps: 1_000_000,
            max_cache_entries: 100_000,
        },
        &Counter {
            require_final_read: true,
            max_anomalies: 10,
        },
        &Limiter {
            time_slack_ns: 5_000_000,
            max_anomalies: 10,
        },
        &Leases {
            time_slack_ns: 5_000_000,
            max_anomalies: 10,
        },
    ]
}

#[test]
fn each_checker_judges_only_its_own_keys() {
    let results = check_history(&mixed(false), &all()).unwrap();
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["linearizable", "counter", "limiter", "lease"]);
    for r in &results {
        assert_eq!(r.valid, Validity::Valid, "{}: {:?}", r.name, r.anomalies);
    }
    assert_eq!(results[0].stats["keys"], 1);
    assert_eq!(results[1].stats["keys"], 1);
    assert_eq!(results[2].stats["keys"]["rl"]["admitted"], 1);
    assert_eq!(results[3].stats["granted"], 1);
}

#[test]
fn the_summary_takes_the_worst_verdict() {
    let results = check_history(&mixed(true), &all()).unwrap();
    let summary = CheckResult::summarize("run", &results);
    assert_eq!(summary.valid, Validity::Invalid);
    assert_eq!(summary.anomalies.len(), 1);
    assert!(
        summary.anomalies[0].starts_with("linearizable: "),
        "{}",
        summary.anomalies[0]
    );
    assert_eq!(summary.stats["counter"]["valid"], "valid");
    assert_eq!(summary.stats["linearizable"]["valid"], "invalid");
}

#[test]
fn unknown_is_worse_than_valid_and_better_than_invalid() {
    use Validity::{Invalid, Unknown, Valid};
    assert_eq!(Valid.and(Unknown), Unknown);
    assert_eq!(Unknown.and(Invalid), Invalid);
    assert_eq!(Valid.and(Valid), Valid);
    assert!(!Unknown.is_valid());
    assert!(Valid.is_valid());
}

#[test]
fn malformed_histories_are_errors_not_verdicts() {
    let mut h = mixed(false);
    let first = h.ops()[0].clone();
    h.ops_mut().insert(1, first);
    assert!(check_history(&h, &all()).is_err());
}
