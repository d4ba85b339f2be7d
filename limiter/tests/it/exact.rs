//! "N requests inside one window at limit L allow exactly L", per algorithm.

use raftlimit_limiter::units::{NS_PER_MS, NS_PER_SEC};
use raftlimit_limiter::{check, Algo, LimiterState, Params};

const W: u64 = 1_700_000_000 * NS_PER_SEC;

/// Sends `n` unit requests at the given instants and counts the allowed ones.
fn allowed_count(p: &Params, times: impl Iterator<Item = u64>) -> u64 {
    let mut state: Option<LimiterState> = None;
    let mut allowed = 0;
    for now in times {
        let out = check(state.as_ref(), p, 1, now, false);
        if out.decision.allowed {
            allowed += 1;
        }
        if let Some(s) = out.new_state {
            state = Some(s);
        }
    }
    allowed
}

#[test]
fn every_algorithm_allows_exactly_the_limit_in_one_window() {
    for limit in [1u64, 2, 7, 100, 1000, 10_000] {
        for algo in [Algo::Gcra, Algo::Sliding, Algo::Fixed] {
            let p = Params::new(limit, NS_PER_SEC, None, algo).unwrap();
            let n = limit * 3 + 5;
            // GCRA refills continuously, so "one window" is one instant for
            // it; the windowed algorithms get the requests spread across a
            // single aligned window.
            let allowed = match algo {
                Algo::Gcra => allowed_count(&p, (0..n).map(|_| W + 5)),
                _ => allowed_count(&p, (0..n).map(|i| W + i * (NS_PER_SEC - 1) / n)),
            };
            assert_eq!(allowed, limit, "{algo} limit {limit}");
        }
    }
}

#[test]
fn gcra_one_million_per_second() {
    let p = Params::new(1_000_000, NS_PER_SEC, None, Algo::Gcra).unwrap();
    assert_eq!(allowed_count(&p, (0..1_500_000).map(|_| W)), 1_000_000);
    // Spread evenly over one second, a fresh bucket admits its burst plus
    // one per microsecond of elapsed time, capped by the number of requests.
    let n = 2_000_000u64;
    let times = (0..n).map(|i| W + i * (NS_PER_SEC / n));
    let elapsed_us = (n - 1) * (NS_PER_SEC / n) / 1_000;
    assert_eq!(allowed_count(&p, times), (1_000_000 + elapsed_us).min(n));
}

#[test]
fn gcra_sustained_rate_over_many_periods() {
    // 7 per 3 seconds, requests every millisecond for a minute: the burst
    // plus exactly floor(elapsed × 7 / 3 s).
    let p = Params::new(7, 3 * NS_PER_SEC, None, Algo::Gcra).unwrap();
    let n = 60_000u64;
    let allowed = allowed_count(&p, (0..n).map(|i| W + i * NS_PER_MS));
    let elapsed = (n - 1) * NS_PER_MS;
    assert_eq!(allowed, 7 + elapsed * 7 / (3 * NS_PER_SEC));
}

#[test]
fn windowed_algorithms_over_many_windows() {
    // Fixed: exactly `limit` per aligned window when requests keep coming.
    let p = Params::new(5, 100 * NS_PER_MS, None, Algo::Fixed).unwrap();
    let allowed = allowed_count(&p, (0..10_000u64).map(|i| W + i * NS_PER_MS));
    assert_eq!(allowed, 5 * 100);
    // Sliding: the first window admits 5; in each later one the previous
    // window's 4 or 5 units still weigh in, and a unit is admitted each time
    // the weighted estimate drops by one: at 20/40/60/80 ms into window 1,
    // then at 0/25/50/75 ms into every window after it. A steady stream thus
    // gets 4 per period, never more than the limit.
    let p = Params::new(5, 100 * NS_PER_MS, None, Algo::Sliding).unwrap();
    let allowed = allowed_count(&p, (0..10_000u64).map(|i| W + i * NS_PER_MS));
    assert_eq!(allowed, 5 + 99 * 4);
}
