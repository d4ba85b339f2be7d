//! `CL.THROTTLE`, reproducing redis-cell's GCRA and its five-integer reply.
//!
//! redis-cell computes with `time::Duration` (i64 nanoseconds, an `f64`
//! division for the emission interval, microseconds for `remaining`); here
//! the same formulas run on exact integers in `u128`, so large arguments such
//! as `CL.THROTTLE k 1000 1000 60` work and nothing overflows:
//!
//! * emission interval `T = floor(period × 10⁹ / count)` ns (redis-cell
//!   truncates an `f64` quotient; the two agree for every period under 2⁵³ ns,
//!   about 104 days); `T = 0` is the error "zero rates are not supported",
//!   and `T × (max_burst + 1)` beyond 106 751 days, where redis-cell's i64
//!   arithmetic overflows, is an error too;
//! * `limit = max_burst + 1`, tolerance `τ = T × limit`, increment
//!   `T × quantity`;
//! * `tat` is the stored value, or now for a missing key;
//!   `new_tat = max(tat, now) + increment`;
//! * limited when `new_tat − now > τ`; then `retry_after = new_tat − τ − now`
//!   unless `increment > τ` (a quantity above `limit` can never pass), in
//!   which case it is −1, and `reset_after = tat − now`; the TAT is not
//!   written;
//! * allowed otherwise; `reset_after = new_tat − now`, and `new_tat` is
//!   written with that TTL;
//! * `remaining = floor((τ − reset_after) / T)`, or 0 when negative;
//! * both times are reported in whole seconds, adding one second when the
//!   sub-second part is at least a millisecond (redis-cell rounds up on
//!   `subsec_milliseconds() > 0`), and −1 stays −1.
//!
//! A stored TAT in the past is read as now: under Redis the key would have
//! expired at its TAT. A `quantity` of 0 is redis-cell's peek; it evaluates
//! like any other request but never writes.

use crate::error::LimiterError;
use crate::units::{sat_i64, sat_u64, NS_PER_DAY, NS_PER_MS, NS_PER_SEC};

/// Largest `max_burst`: `max_burst + 1` must fit the reply's signed integer.
pub const CELL_MAX_BURST: u64 = i64::MAX as u64 - 1;
/// Largest period in seconds: redis-cell keeps the period in i64 nanoseconds.
pub const CELL_MAX_PERIOD_S: u64 = i64::MAX as u64 / NS_PER_SEC;
/// Largest tolerance `τ = T × (max_burst + 1)`, the time a drained bucket
/// takes to refill: the whole days in i64 nanoseconds, where redis-cell's own
/// arithmetic overflows. It also keeps every stored TAT below `u64::MAX`.
pub const CELL_MAX_REFILL_NS: u64 = 106_751 * NS_PER_DAY;

/// The result of [`throttle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellOutcome {
    /// `[limited (0 allowed, 1 limited), limit, remaining, retry_after_s
    /// (-1 when allowed), reset_after_s]`.
    pub reply: [i64; 5],
    /// The TAT to store, when the request was allowed with a quantity above
    /// 0; `None` leaves the key untouched.
    pub new_tat_ns: Option<u64>,
    /// The key's expiry when storing `new_tat_ns` (it equals the new TAT: the
    /// bucket is full then and the key can vanish).
    pub expires_at_ns: u64,
}

/// Runs `CL.THROTTLE key max_burst count period [quantity]` against a key
/// whose stored TAT is `tat_ns`.
pub fn throttle(
    tat_ns: Option<u64>,
    max_burst: u64,
    count: u64,
    period_s: u64,
    quantity: u64,
    now_ns: u64,
) -> Result<CellOutcome, LimiterError> {
    if max_burst > CELL_MAX_BURST {
        return Err(LimiterError::OutOfRange {
            name: "max_burst",
            min: 0,
            max: CELL_MAX_BURST,
            value: max_burst,
        });
    }
    if period_s > CELL_MAX_PERIOD_S {
        return Err(LimiterError::OutOfRange {
            name: "period",
            min: 1,
            max: CELL_MAX_PERIOD_S,
            value: period_s,
        });
    }
    let period_ns = u128::from(period_s) * u128::from(NS_PER_SEC);
    let emission = period_ns.checked_div(u128::from(count)).unwrap_or(0);
    if emission == 0 {
        return Err(LimiterError::ZeroRate);
    }
    let limit = u128::from(max_burst) + 1;
    let tau = emission * limit;
    if tau > u128::from(CELL_MAX_REFILL_NS) {
        return Err(LimiterError::RefillTooLong {
            what: "(max_burst + 1) * period / count",
            max_ns: CELL_MAX_REFILL_NS,
        });
    }
    // τ < 2⁶³ and increment < 2¹²⁷ here, so the sums below cannot overflow;
    // saturation is only a second line of defence.
    let increment = emission * u128::from(quantity);
    let now = u128::from(now_ns);
    let tat = tat_ns.map_or(now, |t| u128::from(t).max(now));
    let new_tat = tat.saturating_add(increment);
    let limited = new_tat - now > tau;
    let (ttl, retry_after, new_tat_ns) = if limited {
        let retry = (increment <= tau).then(|| cell_seconds(new_tat - tau - now));
        (tat - now, retry.unwrap_or(-1), None)
    } else {
        (new_tat - now, -1, (quantity > 0).then(|| sat_u64(new_tat)))
    };
    let remaining = tau.saturating_sub(ttl) / emission;
    Ok(CellOutcome {
        reply: [
            i64::from(limited),
            sat_i64(sat_u64(limit)),
            sat_i64(sat_u64(remaining)),
            retry_after,
            cell_seconds(ttl),
        ],
        new_tat_ns,
        expires_at_ns: sat_u64(now + ttl),
    })
}

/// Whole seconds, plus one when at least a millisecond is left over.
fn cell_seconds(ns: u128) -> i64 {
    let second = u128::from(NS_PER_SEC);
    let whole = ns / second;
    let extra = u128::from(ns % second >= u128::from(NS_PER_MS));
    sat_i64(sat_u64(whole + extra))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000 * NS_PER_SEC;
    const MS: u64 = NS_PER_MS;

    #[test]
    fn rounding_matches_redis_cell() {
        assert_eq!(cell_seconds(0), 0);
        assert_eq!(cell_seconds(u128::from(NS_PER_SEC)), 1);
        // Under a millisecond of remainder is dropped, as redis-cell does.
        assert_eq!(cell_seconds(u128::from(NS_PER_SEC + MS - 1)), 1);
        assert_eq!(cell_seconds(u128::from(NS_PER_SEC + MS)), 2);
        assert_eq!(cell_seconds(u128::from(60 * MS)), 1);
        assert_eq!(cell_seconds(u128::MAX), i64::MAX);
    }

    #[test]
    fn readme_example() {
        let out = throttle(None, 15, 30, 60, 1, T0).unwrap();
        assert_eq!(out.reply, [0, 16, 15, -1, 2]);
        assert_eq!(out.new_tat_ns, Some(T0 + 2 * NS_PER_SEC));
        assert_eq!(out.expires_at_ns, T0 + 2 * NS_PER_SEC);
    }

    #[test]
    fn argument_errors() {
        assert_eq!(throttle(None, 10, 1, 0, 1, T0), Err(LimiterError::ZeroRate));
        assert_eq!(throttle(None, 10, 0, 1, 1, T0), Err(LimiterError::ZeroRate));
        // More than one per nanosecond rounds the interval to zero.
        assert_eq!(
            throttle(None, 10, NS_PER_SEC + 1, 1, 1, T0),
            Err(LimiterError::ZeroRate)
        );
        assert!(throttle(None, CELL_MAX_BURST + 1, 1, 1, 1, T0).is_err());
        assert!(throttle(None, 0, 1, CELL_MAX_PERIOD_S + 1, 1, T0).is_err());
        let err = throttle(None, 0, 1, CELL_MAX_PERIOD_S + 1, 1, T0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "period must be between 1 and 9223372036, got 9223372037"
        );
    }

    #[test]
    fn extreme_arguments_do_not_overflow() {
        // τ too large for redis-cell's i64 nanoseconds: refused.
        let err = throttle(None, CELL_MAX_BURST, 1, CELL_MAX_PERIOD_S, 1, T0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "(max_burst + 1) * period / count (the time a drained bucket takes to refill) must be at most 106751d"
        );
        // The largest accepted τ, any quantity, any clock.
        let (max_burst, period) = (106_750, 86_400);
        let out = throttle(None, max_burst, 1, period, u64::MAX, u64::MAX).unwrap();
        assert_eq!(out.reply, [1, 106_751, 106_751, -1, 0]);
        let out = throttle(None, max_burst, 1, period, 106_751, T0).unwrap();
        assert_eq!(out.reply[..3], [0, 106_751, 0]);
        assert_eq!(out.new_tat_ns, Some(T0 + CELL_MAX_REFILL_NS));
        let out = throttle(Some(u64::MAX), max_burst, 1, period, 1, u64::MAX).unwrap();
        assert_eq!(out.new_tat_ns, Some(u64::MAX));
        assert_eq!(out.reply[0], 0);
    }
}
