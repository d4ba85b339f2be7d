//! `CL.THROTTLE` against a line-by-line transliteration of redis-cell's
//! `rate_limit` (signed nanoseconds, a float emission interval, microsecond
//! `remaining`, and a Redis key that expires at its TTL).

use proptest::prelude::*;
use raftlimit_limiter::throttle;

const T0: i64 = 1_700_000_000_000_000_000;

/// redis-cell's arithmetic; the key is `(tat, expires_at)`.
fn redis_cell(
    key: &mut Option<(i64, i64)>,
    max_burst: i64,
    count: i64,
    period: i64,
    quantity: i64,
    now: i64,
) -> [i64; 5] {
    let emission = ((period * 1_000_000_000) as f64 / count as f64) as i64;
    let dvt = emission * (max_burst + 1);
    let limit = max_burst + 1;
    let increment = emission * quantity;
    let stored = key.filter(|&(_, expires_at)| now < expires_at);
    let tat = stored.map_or(now, |(t, _)| t);
    let new_tat = if now > tat {
        now + increment
    } else {
        tat + increment
    };
    let allow_at = new_tat - dvt;
    let diff = now - allow_at;
    let mut retry_after = -1_000_000_000;
    let limited;
    let ttl;
    if diff < 0 {
        if increment <= dvt {
            retry_after = -diff;
        }
        limited = true;
        ttl = tat - now;
    } else {
        ttl = new_tat - now;
        limited = false;
        *key = Some((new_tat, now + ttl));
    }
    let next = dvt - ttl;
    let mut remaining = 0;
    if next > -emission {
        remaining = ((next / 1000) as f64 / (emission / 1000) as f64) as i64;
    }
    // Duration::whole_seconds and subsec_milliseconds truncate toward zero.
    let secs = |d: i64| d / 1_000_000_000 + i64::from((d % 1_000_000_000) / 1_000_000 > 0);
    [
        i64::from(limited),
        limit,
        remaining,
        secs(retry_after),
        secs(ttl),
    ]
}

fn params() -> impl Strategy<Value = (i64, i64, i64)> {
    // Whole-microsecond emission intervals, where redis-cell's microsecond
    // division and exact nanoseconds agree.
    (0i64..40, 1i64..=120, 1i64..=600).prop_filter("whole microseconds", |&(_, period, count)| {
        (period * 1_000_000) % count == 0
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn matches_redis_cell(
        (max_burst, period, count) in params(),
        steps in prop::collection::vec((0i64..3_000_000_000, 0i64..45), 1..60),
    ) {
        let mut key = None;
        let mut tat: Option<u64> = None;
        let mut now = T0;
        for (advance, quantity) in steps {
            now += advance;
            let expected = redis_cell(&mut key, max_burst, count, period, quantity, now);
            let out = throttle(
                tat, max_burst as u64, count as u64, period as u64, quantity as u64, now as u64,
            ).unwrap();
            prop_assert_eq!(out.reply, expected);
            if let Some(t) = out.new_tat_ns {
                tat = Some(t);
                prop_assert_eq!(key.map(|(t, _)| t as u64), Some(t));
            }
        }
    }
}
