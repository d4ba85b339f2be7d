//! Rate limits: planted over-admissions, tight-but-correct histories, and simulated servers.

use proptest::prelude::*;
use raftlimit_jepsen::checker::{CheckResult, Limiter, Validity};
use raftlimit_jepsen::history::{Algo, History, LimitArgs, Value, Verdict, F};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::{assert_verdict, run, simulate, End, Planted, Request, SimConfig};

const MS: u64 = 1_000_000;

fn check(history: &History) -> CheckResult {
    run(&Limiter::default(), history)
}

fn args(algo: Algo, limit: u64, period_ms: u64) -> Value {
    Value::Limit(LimitArgs {
        limit,
        period_ms,
        algo,
        burst: None,
    })
}

fn verdict(allowed: bool, reset_after_ms: Option<u64>) -> Value {
    Value::Verdict(Verdict {
        allowed,
        limit: None,
        remaining: None,
        retry_after_ms: None,
        reset_after_ms,
    })
}

/// Adds checks on key "rl", one process each, taking 1 ms from `at_ms`.
/// `reset` gives the `reset_after_ms` a fixed-window server aligned at
/// multiples of the period on our clock would report.
fn checks(
    mut p: Planted,
    a: &Value,
    starts_ms: &[u64],
    admitted: bool,
    period_ms: Option<u64>,
) -> Planted {
    for &t in starts_ms {
        let reset = period_ms.map(|period| period - t % period);
        let process = fresh_process();
        p = p.op(
            process,
            F::Check,
            "rl",
            a.clone(),
            t * MS,
            End::Ok(verdict(admitted, reset), t * MS + MS),
        );
    }
    p
}

/// A process id no other planted op uses (tests run in parallel, so the
/// counter is shared; ids start high to stay clear of hand-picked ones).
fn fresh_process() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1_000_000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn fixed_two_full_windows_around_a_boundary_pass() {
    // limit 3 per second: 3 just before the boundary at 1000 ms, 3 just after.
    let a = args(Algo::Fixed, 3, 1000);
    let h = checks(
        Planted::new(),
        &a,
        &[990, 992, 994, 1001, 1003, 1005],
        true,
        Some(1000),
    )
    .build();
    let r = check(&h);
    assert_verdict(&r, Validity::Valid);
    assert_eq!(r.stats["total"]["admitted"], 6);
    assert_eq!(r.stats["total"]["claims_checked"], 6);
}

#[test]
fn fixed_more_than_two_windows_worth_in_one_period_is_caught() {
    // Seven admissions within 20 ms, limit 3: no placement of window
    // boundaries fits them in two windows. No reply metadata is needed.
    let a = args(Algo::Fixed, 3, 1000);
    let h = checks(Planted::new(), &a, &[0, 3, 6, 9, 12, 15, 18], true, None).build();
    let r = check(&h);
    assert_verdict(&r, Validity::Invalid);
    assert!(
        r.anomalies[0].contains("7 admissions"),
        "{}",
        r.anomalies[0]
    );
    assert!(r.anomalies[0].contains("at most 6"), "{}", r.anomalies[0]);
}

#[test]
fn fixed_one_admission_too_many_in_a_window_is_caught_by_its_reset_after() {
    let a = args(Algo::Fixed, 3, 1000);
    let h = checks(Planted::new(), &a, &[100, 101, 102, 103], true, Some(1000)).build();
    let r = check(&h);
    assert_verdict(&r, Validity::Invalid);
    assert!(
        r.anomalies[0].contains("4 admissions"),
        "{}",
        r.anomalies[0]
    );
    assert!(
        r.anomalies[0].contains("reset_after_ms"),
        "{}",
        r.anomalies[0]
    );

    // Without window metadata the same four admissions could straddle a
    // boundary of an unknown server clock, so they are not evidence.
    let h = checks(Planted::new(), &a, &[100, 101, 102, 103], true, None).build();
    assert_verdict(&check(&h), Validity::Valid);
}

#[test]
fn fixed_claims_with_slow_replies_are_not_trusted() {
    // 600 ms of latency on a 1 s period: a reply cannot pin its window.
    let a = args(Algo::Fixed, 1, 1000);
    let mut p = Planted::new();
    for (i, t) in [100u64, 150].into_iter().enumerate() {
        p = p.op(
            i as u64,
            F::Check,
            "rl",
            a.clone(),
            t * MS,
            End::Ok(verdict(true, Some(1000 - t)), (t + 600) * MS),
        );
    }
    let r = check(&p.build());
    assert_verdict(&r, Validity::Valid);
    assert_eq!(r.stats["total"]["claims_too_wide"], 2);
}

#[test]
fn fixed_sustained_excess_is_caught_over_several_windows() {
    // limit 10 per second, but 15 admissions every second for 10 seconds,
    // evenly spread: never more than 2·limit in one period, yet more than
    // 4·limit in any three periods.
    let a = args(Algo::Fixed, 10, 1000);
    let starts: Vec<u64> = (0..150).map(|i| i * 1000 / 15).collect();
    let r = check(&checks(Planted::new(), &a, &starts, true, None).build());
    assert_verdict(&r, Validity::Invalid);
    assert!(
        r.anomalies
            .iter()
            .any(|a| a.contains("consecutive aligned windows")),
        "{:?}",
        r.anomalies
    );

    // Exactly the limit, evenly spread, passes.
    let starts: Vec<u64> = (0..100).map(|i| i * 100).collect();
    assert_verdict(
        &check(&checks(Planted::new(), &a, &starts, true, None).build()),
        Validity::Valid,
    );
}

/// Adds an indeterminate check on key "rl" invoked at `at_ms`.
fn indeterminate(p: Planted, a: &Value, at_ms: u64) -> Planted {
    p.op(
        fresh_process(),
        F::Check,
        "rl",
        a.clone(),
        at_ms * MS,
        End::Info(at_ms * MS + MS),
    )
}

#[test]
fn indeterminate_checks_count_as_admissions() {
    // GCRA, 2 per second: two admissions and one unknown check in 3 ms.
    let g = args(Algo::Gcra, 2, 1000);
    let p = indeterminate(checks(Planted::new(), &g, &[0, 1], true, None), &g, 2);
    let r = check(&p.build());
    assert_verdict(&r, Validity::Invalid);
    assert_eq!(r.stats["total"]["indeterminate"], 1);
    // An unknown check may take effect any time after it was sent, so one
    // sent long before a full burst still counts against it.
    let p = checks(
        indeterminate(Planted::new(), &g, 0),
        &g,
        &[10_000, 10_001],
        true,
        None,
    );
    assert_verdict(&check(&p.build()), Validity::Invalid);
    // Fixed, 2 per second: four admissions within 4 ms fit two windows
    // around a boundary; one unknown check more cannot.
    let f = args(Algo::Fixed, 2, 1000);
    let four = || checks(Planted::new(), &f, &[0, 1, 2, 3], true, None);
    assert_verdict(&check(&four().build()), Validity::Valid);
    assert_verdict(
        &check(&indeterminate(four(), &f, 3).build()),
        Validity::Invalid,
    );
}

#[test]
fn indeterminate_checks_within_the_limit_pass() {
    let g = args(Algo::Gcra, 2, 1000);
    let p = indeterminate(checks(Planted::new(), &g, &[0], true, None), &g, 1);
    let r = check(&p.build());
    assert_verdict(&r, Validity::Valid);
    // Denials never count, whatever their number.
    let p = checks(Planted::new(), &g, &[0, 1], true, None);
    let p = checks(p, &g, &[2, 3, 4, 5], false, None);
    assert_verdict(&check(&p.build()), Validity::Valid);
    // Failed checks certainly had no effect.
    let p = checks(Planted::new(), &g, &[0, 1], true, None).op(
        fresh_process(),
        F::Check,
        "rl",
        g.clone(),
        2 * MS,
        End::Fail(3 * MS),
    );
    assert_verdict(&check(&p.build()), Validity::Valid);
}

#[test]
fn gcra_burst_then_steady_rate_passes() {
    // 10 per second (one every 100 ms) with burst 10: a full burst, then
    // one admission per emission interval, is exactly at the bound.
    let a = args(Algo::Gcra, 10, 1000);
    let mut starts: Vec<u64> = (0..10).collect();
    starts.extend((1..=30).map(|k| k * 100));
    let r = check(&checks(Planted::new(), &a, &starts, true, None).build());
    assert_verdict(&r, Validity::Valid);
}

#[test]
fn gcra_one_admission_over_the_burst_is_caught() {
    let a = args(Algo::Gcra, 10, 1000);
    let starts: Vec<u64> = (0..11).collect();
    let r = check(&checks(Planted::new(), &a, &starts, true, None).build());
    assert_verdict(&r, Validity::Invalid);
    assert!(
        r.anomalies[0].contains("11 admissions"),
        "{}",
        r.anomalies[0]
    );
    assert!(r.anomalies[0].contains("at most 10"), "{}", r.anomalies[0]);
}

#[test]
fn gcra_excess_rate_is_caught() {
    // After the burst, one every 80 ms instead of every 100 ms.
    let a = args(Algo::Gcra, 10, 1000);
    let mut starts: Vec<u64> = (0..10).collect();
    starts.extend((1..=10).map(|k| k * 80));
    let r = check(&checks(Planted::new(), &a, &starts, true, None).build());
    assert_verdict(&r, Validity::Invalid);
}

#[test]
fn gcra_explicit_burst_is_honoured() {
    let a = Value::Limit(LimitArgs {
        limit: 10,
        period_ms: 1000,
        algo: Algo::Gcra,
        burst: Some(3),
    });
    let three = checks(Planted::new(), &a, &[0, 1, 2], true, None).build();
    assert_verdict(&check(&three), Validity::Valid);
    let four = checks(Planted::new(), &a, &[0, 1, 2, 3], true, None).build();
    assert_verdict(&check(&four), Validity::Invalid);
}

#[test]
fn lost_admissions_are_counted_but_do_not_fail_the_run() {
    let a = args(Algo::Fixed, 5, 1000);
    // A lone denial: its window certainly had room.
    let mut p = checks(Planted::new(), &a, &[5000], false, Some(1000));
    // A denial right after five admissions: justified.
    p = checks(p, &a, &[0, 1, 2, 3, 4], true, Some(1000));
    p = checks(p, &a, &[6], false, Some(1000));
    let r = check(&p.build());
    assert_verdict(&r, Validity::Valid);
    assert_eq!(r.stats["total"]["denied"], 2);
    assert_eq!(r.stats["total"]["lost_admissions"], 1);

    let g = args(Algo::Gcra, 2, 1000);
    let p = checks(Planted::new(), &g, &[0, 1], true, None);
    let p = checks(p, &g, &[3, 3000], false, None);
    let r = check(&p.build());
    assert_verdict(&r, Validity::Valid);
    assert_eq!(r.stats["total"]["lost_admissions"], 1);
}

#[test]
fn inconsistent_or_unreadable_keys_are_unknown() {
    let p = checks(
        Planted::new(),
        &args(Algo::Fixed, 3, 1000),
        &[0],
        true,
        None,
    );
    let p = checks(p, &args(Algo::Gcra, 3, 1000), &[10], true, None);
    assert_verdict(&check(&p.build()), Validity::Unknown);

    let p = Planted::new().op(
        0,
        F::Check,
        "rl",
        args(Algo::Fixed, 3, 1000),
        0,
        End::Ok(Value::Bool(true), 1),
    );
    assert_verdict(&check(&p.build()), Validity::Unknown);

    let p = checks(
        Planted::new(),
        &args(Algo::Fixed, 0, 1000),
        &[0],
        true,
        None,
    );
    assert_verdict(&check(&p.build()), Validity::Unknown);
}

/// A simulated limiter server: its clock is ours shifted by `offset_ns` and
/// truncated to milliseconds, as a server stamping commands would see it.
struct Server {
    algo: Algo,
    limit: u64,
    burst: u64,
    period_ms: u64,
    offset_ns: u64,
    /// Fixed: current window and its count. Extra admissions per window to plant a bug.
    window: (u64, u64),
    extra: u64,
    /// GCRA: theoretical arrival time in ms; emission interval in ms.
    tat_ms: u64,
    emission_ms: u64,
}

impl Server {
    fn new(algo: Algo, limit: u64, period_ms: u64, offset_ns: u64) -> Self {
        Self {
            algo,
            limit,
            burst: limit,
            period_ms,
            offset_ns,
            window: (0, 0),
            extra: 0,
            tat_ms: 0,
            emission_ms: period_ms / limit,
        }
    }

    fn check(&mut self, now_ns: u64) -> Value {
        let t = (now_ns + self.offset_ns) / MS;
        match self.algo {
            Algo::Fixed => {
                let k = t / self.period_ms;
                if self.window.0 != k {
                    self.window = (k, 0);
                }
                let admitted = self.window.1 < self.limit + self.extra;
                if admitted {
                    self.window.1 += 1;
                }
                Value::Verdict(Verdict {
                    allowed: admitted,
                    limit: Some(self.limit),
                    remaining: Some(self.limit.saturating_sub(self.window.1)),
                    retry_after_ms: None,
                    reset_after_ms: Some((k + 1) * self.period_ms - t),
                })
            }
            Algo::Gcra | Algo::Sliding => {
                let tat = self.tat_ms.max(t);
                let admitted = tat + self.emission_ms - t <= self.burst * self.emission_ms;
                if admitted {
                    self.tat_ms = tat + self.emission_ms;
                }
                Value::Verdict(Verdict {
                    allowed: admitted,
                    limit: Some(self.burst),
                    remaining: None,
                    retry_after_ms: None,
                    reset_after_ms: Some(self.tat_ms.saturating_sub(t)),
                })
            }
        }
    }
}

/// Workers hammering two keys (one server state each) through a simulated
/// cluster with timeouts and failures.
fn simulated(seed: u64, algo: Algo, bug: impl Fn(&mut Server)) -> History {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let offset = rng.gen_range(0..10_000) * MS + rng.gen_range(0..MS);
    let (limit, period_ms) = (5, 100);
    let mut servers = [
        Server::new(algo, limit, period_ms, offset),
        Server::new(algo, limit, period_ms, offset),
    ];
    for s in &mut servers {
        bug(s);
    }
    // No indeterminate checks: they count as admissions (the checker's
    // module docs), and the harness resolves them by resending with the
    // check's ID, so a simulated correct server must not leave any.
    let cfg = SimConfig {
        workers: 6,
        ops_per_worker: 200,
        max_latency_ns: 3 * MS,
        max_gap_ns: 8 * MS,
        p_info: 0.0,
        ..SimConfig::default()
    };
    let a = args(algo, limit, period_ms);
    simulate(
        seed,
        cfg,
        |now, req| servers[usize::from(req.key == "rl1")].check(now),
        |rng, _, _| {
            Some(Request::new(
                F::Check,
                if rng.gen_bool(0.5) { "rl0" } else { "rl1" },
                a.clone(),
            ))
        },
    )
    .0
}

proptest! {
    #![proptest_config(crate::support::cases(24))]

    #[test]
    fn simulated_correct_fixed_window_servers_pass(seed in any::<u64>()) {
        let r = check(&simulated(seed, Algo::Fixed, |_| {}));
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r.anomalies);
        prop_assert!(r.stats["total"]["claims_checked"].as_u64().unwrap_or(0) > 0);
    }

    #[test]
    fn simulated_correct_gcra_servers_pass(seed in any::<u64>()) {
        let r = check(&simulated(seed, Algo::Gcra, |_| {}));
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r.anomalies);
    }

    #[test]
    fn simulated_fixed_server_admitting_one_extra_per_window_is_caught(seed in any::<u64>()) {
        let r = check(&simulated(seed, Algo::Fixed, |s| s.extra = 1));
        prop_assert_eq!(r.valid, Validity::Invalid, "{}", r.stats);
    }

    #[test]
    fn simulated_gcra_server_with_a_short_emission_interval_is_caught(seed in any::<u64>()) {
        // 16 ms instead of 20 ms: 25% over the configured rate.
        let r = check(&simulated(seed, Algo::Gcra, |s| s.emission_ms = 16));
        prop_assert_eq!(r.valid, Validity::Invalid, "{}", r.stats);
    }
}
