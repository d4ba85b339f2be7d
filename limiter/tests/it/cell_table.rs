//! `CL.THROTTLE` replies worked out by hand from redis-cell's formula.
//!
//! Notation: T = emission interval, τ = T × (max_burst + 1), ttl = the TAT
//! after the call minus now; remaining = floor((τ − ttl) / T).

use raftlimit_limiter::throttle;
use raftlimit_limiter::units::{NS_PER_MS, NS_PER_SEC};

const T0: u64 = 1_700_000_000 * NS_PER_SEC;
const S: u64 = NS_PER_SEC;
const MS: u64 = NS_PER_MS;

/// One call: (offset from T0 in ns, max_burst, count, period_s, quantity,
/// expected reply).
type Case = (u64, u64, u64, u64, u64, [i64; 5]);

/// Replays the calls against one key, storing the TAT as the server would.
fn replay(cases: &[Case]) {
    let mut tat = None;
    for (i, &(at, max_burst, count, period, quantity, expected)) in cases.iter().enumerate() {
        let out = throttle(tat, max_burst, count, period, quantity, T0 + at).unwrap();
        assert_eq!(out.reply, expected, "call #{i} at +{at}ns");
        if let Some(t) = out.new_tat_ns {
            assert_eq!(out.expires_at_ns, t);
            tat = Some(t);
        }
    }
}

#[test]
fn readme_example_on_a_new_key() {
    replay(&[(0, 15, 30, 60, 1, [0, 16, 15, -1, 2])]);
}

#[test]
fn redis_cell_unit_test_sequence() {
    // redis-cell's own test: max_burst 4 (limit 5), 1 per second, so T = 1 s
    // and τ = 5 s.
    replay(&[
        // 6 > limit: never possible; retry -1, nothing stored, ttl 0.
        (0, 4, 1, 1, 6, [1, 5, 5, -1, 0]),
        (0, 4, 1, 1, 1, [0, 5, 4, -1, 1]),
        (0, 4, 1, 1, 1, [0, 5, 3, -1, 2]),
        (0, 4, 1, 1, 1, [0, 5, 2, -1, 3]),
        (0, 4, 1, 1, 1, [0, 5, 1, -1, 4]),
        (0, 4, 1, 1, 1, [0, 5, 0, -1, 5]),
        // TAT = +5 s; new TAT +6 s is 1 s beyond τ.
        (0, 4, 1, 1, 1, [1, 5, 0, 1, 5]),
        // +3 s: new TAT +6 s, ttl 3 s, remaining (5 − 3) / 1 = 2.
        (3000 * MS, 4, 1, 1, 1, [0, 5, 2, -1, 3]),
        // +3.1 s: new TAT +7 s, ttl 3.9 s rounds up to 4, remaining 1.
        (3100 * MS, 4, 1, 1, 1, [0, 5, 1, -1, 4]),
        (4000 * MS, 4, 1, 1, 1, [0, 5, 1, -1, 4]),
        // +8 s: TAT = now exactly, so new TAT = +9 s.
        (8000 * MS, 4, 1, 1, 1, [0, 5, 4, -1, 1]),
        // +9.5 s: TAT in the past counts from now: new TAT +10.5 s.
        (9500 * MS, 4, 1, 1, 1, [0, 5, 4, -1, 1]),
        // Quantity 0 peeks: allowed, nothing stored.
        (9500 * MS, 4, 1, 1, 0, [0, 5, 4, -1, 1]),
        // Quantity 2: new TAT +12.5 s, ttl 3 s, remaining 2.
        (9500 * MS, 4, 1, 1, 2, [0, 5, 2, -1, 3]),
        // Quantity 5 = limit: would need new TAT +17.5 s, allowed at +12.5 s,
        // 3 s from now; ttl stays 3 s.
        (9500 * MS, 4, 1, 1, 5, [1, 5, 2, 3, 3]),
    ]);
}

#[test]
fn drain_and_get_limited_with_the_readme_policy() {
    // 15 30 60: T = 2 s, limit 16, τ = 32 s.
    let mut cases: Vec<Case> = (1..=16)
        .map(|k| (0, 15, 30, 60, 1, [0, 16, 16 - k, -1, 2 * k]))
        .collect();
    cases.extend([
        // TAT +32 s; the next needs +34 s − 32 s = +2 s.
        (0, 15, 30, 60, 1, [1, 16, 0, 2, 32]),
        (S, 15, 30, 60, 1, [1, 16, 0, 1, 31]),
        // +2 s: new TAT +34 s − now = 32 s = τ: allowed, nothing remaining.
        (2 * S, 15, 30, 60, 1, [0, 16, 0, -1, 32]),
        // +2.5 s: retry 1.5 s and ttl 31.5 s both round up.
        (2500 * MS, 15, 30, 60, 1, [1, 16, 0, 2, 32]),
        // Quantity 0 is within τ, so allowed, and writes nothing.
        (2500 * MS, 15, 30, 60, 0, [0, 16, 0, -1, 32]),
        // Long idle: full again.
        (100 * S, 15, 30, 60, 0, [0, 16, 16, -1, 0]),
    ]);
    replay(&cases);
}

#[test]
fn quantity_zero_and_quantity_above_the_limit() {
    // On a new key.
    replay(&[(0, 15, 30, 60, 0, [0, 16, 16, -1, 0])]);
    replay(&[(0, 15, 30, 60, 16, [0, 16, 0, -1, 32])]);
    replay(&[(0, 15, 30, 60, 17, [1, 16, 16, -1, 0])]);
    // With one unit taken, 17 still reports -1, and ttl is the current one.
    replay(&[
        (0, 15, 30, 60, 1, [0, 16, 15, -1, 2]),
        (0, 15, 30, 60, 17, [1, 16, 15, -1, 2]),
        // 16 fits τ but not right now: retry = 2 + 32 − 32 = 2 s.
        (0, 15, 30, 60, 16, [1, 16, 15, 2, 2]),
    ]);
}

#[test]
fn large_parameters_that_overflow_in_redis_cell() {
    // redis-cell issue #50: 1000 1000 60, T = 60 ms, limit 1001.
    let mut cases: Vec<Case> = (1..=1001)
        .map(|k| {
            // ttl = 60 ms × k, in seconds rounded up.
            let ttl_s = (60 * k as i64 + 999) / 1000;
            (0, 1000, 1000, 60, 1, [0, 1001, 1001 - k as i64, -1, ttl_s])
        })
        .collect();
    // Full: TAT +60.06 s; the next waits 60 ms (rounds up to 1 s).
    cases.push((0, 1000, 1000, 60, 1, [1, 1001, 0, 1, 61]));
    // 60 ms later one unit has dripped out.
    cases.push((60 * MS, 1000, 1000, 60, 1, [0, 1001, 0, -1, 61]));
    replay(&cases);
}

#[test]
fn sub_millisecond_remainders_round_down_like_redis_cell() {
    // max_burst 1 (limit 2), 1 per second: T = 1 s, τ = 2 s.
    replay(&[
        (0, 1, 1, 1, 1, [0, 2, 1, -1, 1]),
        // At +0.9995 s: new TAT +2 s, ttl 1.0005 s: the 0.5 ms part is below
        // a millisecond, so 1 and not 2.
        (999_500_000, 1, 1, 1, 1, [0, 2, 0, -1, 1]),
        // Limited 0.5 ms before the next unit: redis-cell says retry 0.
        (999_500_000, 1, 1, 1, 1, [1, 2, 0, 0, 1]),
    ]);
}

#[test]
fn fractional_emission_interval() {
    // 3 per second, max_burst 0: T = 333 333 333 ns (floor), τ = T.
    replay(&[
        (0, 0, 3, 1, 1, [0, 1, 0, -1, 1]),
        (0, 0, 3, 1, 1, [1, 1, 0, 1, 1]),
        // One nanosecond early: retry and ttl are both 1 ns, which rounds to 0.
        (333_333_332, 0, 3, 1, 1, [1, 1, 0, 0, 0]),
        (333_333_333, 0, 3, 1, 1, [0, 1, 0, -1, 1]),
    ]);
}
