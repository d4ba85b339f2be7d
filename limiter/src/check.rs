//! The single entry point that evaluates a request against a key, whatever
//! its algorithm.

use crate::decision::{Decision, Outcome};
use crate::fixed::FixedWindow;
use crate::gcra::Gcra;
use crate::params::{Algo, Params};
use crate::sliding::SlidingWindow;
use crate::state::LimiterState;
use crate::units::{ms_ceil, sat_i64};

/// Checks a request of `cost` units at `now_ns` against a key.
///
/// * `state` is what the key holds (`None` for a missing key). State of a
///   different algorithm than `params.algo` is ignored: the key starts
///   fresh. State of the same algorithm is kept even if `limit`, `burst` or
///   `period` changed, and the new values apply from this check on.
/// * `peek` evaluates exactly as without it but never returns a new state.
/// * A `cost` of 0 asks "am I within my limit now?" and consumes nothing.
/// * A `cost` above the key's capacity ([`Params::capacity`]) can never be
///   allowed. It is denied without consuming, reports the key's current
///   `remaining` and `reset_after_ms`, and sets `retry_after_ms` to the
///   period (rounded up to milliseconds): positive, so the -1 "allowed"
///   sentinel keeps its meaning, and never 0, so a client that blindly
///   sleeps and retries does not spin. Clients can recognise the case by
///   `cost > limit` in the reply.
///
/// The caller stores `new_state` when it is `Some`, with the key expiring
/// at `expires_at_ns`, and otherwise leaves the key untouched. Everything is
/// integer arithmetic on the arguments, so every replica computes the same
/// outcome. Out-of-range `params` are clamped, never a panic.
pub fn check(
    state: Option<&LimiterState>,
    params: &Params,
    cost: u64,
    now_ns: u64,
    peek: bool,
) -> Outcome {
    let params = params.clamped();
    let state = state.filter(|s| s.algo() == params.algo);
    if cost > params.capacity() {
        let current = evaluate(state, &params, 0, now_ns, true);
        return Outcome {
            decision: Decision {
                allowed: false,
                retry_after_ms: sat_i64(ms_ceil(u128::from(params.period_ns))),
                ..current.decision
            },
            new_state: None,
            expires_at_ns: current.expires_at_ns,
        };
    }
    evaluate(state, &params, cost, now_ns, peek)
}

fn evaluate(
    state: Option<&LimiterState>,
    params: &Params,
    cost: u64,
    now_ns: u64,
    peek: bool,
) -> Outcome {
    match params.algo {
        Algo::Gcra => Gcra::new(params).check(state, cost, now_ns, peek),
        Algo::Sliding => SlidingWindow::at(params, state, now_ns).check(cost, now_ns, peek),
        Algo::Fixed => FixedWindow::at(params, state, now_ns).check(cost, now_ns, peek),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::StateKind;
    use crate::units::NS_PER_SEC;

    const T0: u64 = 1_700_000_000 * NS_PER_SEC;

    fn all_algos(limit: u64, burst: Option<u64>) -> [Params; 3] {
        [Algo::Gcra, Algo::Sliding, Algo::Fixed]
            .map(|a| Params::new(limit, NS_PER_SEC, burst, a).unwrap())
    }

    #[test]
    fn cost_above_capacity_is_denied_with_the_period_as_retry() {
        for p in all_algos(5, None) {
            let out = check(None, &p, 6, T0, false);
            assert!(!out.decision.allowed, "{p:?}");
            assert_eq!(out.decision.retry_after_ms, 1000);
            assert_eq!(out.decision.remaining, 5);
            assert_eq!(out.decision.reset_after_ms, 0);
            assert_eq!(out.decision.limit, 5);
            assert!(out.new_state.is_none());
            // Exactly the capacity is fine on a full key.
            assert!(check(None, &p, 5, T0, false).decision.allowed);
        }
    }

    #[test]
    fn gcra_capacity_is_burst() {
        let p = Params::new(5, NS_PER_SEC, Some(2), Algo::Gcra).unwrap();
        let out = check(None, &p, 3, T0, false);
        assert!(!out.decision.allowed);
        assert_eq!(out.decision.limit, 2);
        // Sliding and fixed ignore burst.
        let p = Params::new(5, NS_PER_SEC, Some(2), Algo::Fixed).unwrap();
        assert!(check(None, &p, 3, T0, false).decision.allowed);
    }

    #[test]
    fn peek_and_zero_cost_never_write() {
        for p in all_algos(3, None) {
            let out = check(None, &p, 1, T0, true);
            assert!(out.decision.allowed);
            assert_eq!(out.decision.remaining, 2);
            assert!(out.new_state.is_none());
            let out = check(None, &p, 0, T0, false);
            assert!(out.decision.allowed);
            assert_eq!(out.decision.remaining, 3);
            assert!(out.new_state.is_none());
            let out = check(None, &p, 1, T0, false);
            assert!(out.new_state.is_some());
        }
    }

    #[test]
    fn changing_algorithm_starts_fresh() {
        let [gcra, sliding, _] = all_algos(2, None);
        let drained = check(None, &gcra, 2, T0, false).new_state.unwrap();
        assert!(!check(Some(&drained), &gcra, 1, T0, false).decision.allowed);
        let out = check(Some(&drained), &sliding, 1, T0, false);
        assert!(out.decision.allowed);
        assert_eq!(out.decision.remaining, 1);
        assert_eq!(out.new_state.unwrap().algo(), Algo::Sliding);
    }

    #[test]
    fn changing_limits_keeps_window_counts() {
        let [_, sliding, fixed] = all_algos(10, None);
        for p in [sliding, fixed] {
            let s = check(None, &p, 6, T0, false).new_state.unwrap();
            // Tightened to 5: already over, so denied without a reset.
            let tight = Params { limit: 5, ..p };
            let out = check(Some(&s), &tight, 1, T0, false);
            assert!(!out.decision.allowed, "{p:?}");
            assert_eq!(out.decision.remaining, 0);
            // Loosened to 20: the 6 already taken still count.
            let loose = Params { limit: 20, ..p };
            let out = check(Some(&s), &loose, 1, T0, false);
            assert!(out.decision.allowed);
            assert_eq!(out.decision.remaining, 13);
            assert_eq!(out.new_state.unwrap().params, loose);
        }
    }

    #[test]
    fn changing_limits_keeps_the_gcra_time_until_full() {
        // GCRA state is a time: 6 units at 10/s is 600 ms until full, and
        // stays 600 ms under the new rate, worth 3 units at 5/s.
        let [gcra, _, _] = all_algos(10, None);
        let s = check(None, &gcra, 6, T0, false).new_state.unwrap();
        let tight = Params {
            limit: 5,
            burst: 5,
            ..gcra
        };
        let out = check(Some(&s), &tight, 0, T0, true);
        assert_eq!(out.decision.reset_after_ms, 600);
        assert_eq!(out.decision.remaining, 2);
        let loose = Params {
            limit: 20,
            burst: 20,
            ..gcra
        };
        let out = check(Some(&s), &loose, 0, T0, true);
        assert_eq!(out.decision.reset_after_ms, 600);
        assert_eq!(out.decision.remaining, 8);
        // Shrinking the burst below the debt denies until it drains.
        let tiny = Params { burst: 2, ..gcra };
        let out = check(Some(&s), &tiny, 0, T0, false);
        assert!(!out.decision.allowed);
        assert_eq!(out.decision.retry_after_ms, 400);
    }

    #[test]
    fn invalid_params_are_clamped_not_panics() {
        let bad = Params {
            limit: 0,
            period_ns: 0,
            burst: 0,
            algo: Algo::Gcra,
        };
        for algo in [Algo::Gcra, Algo::Sliding, Algo::Fixed] {
            let p = Params { algo, ..bad };
            let out = check(None, &p, 1, T0, false);
            assert!(out.decision.allowed);
            let again = check(out.new_state.as_ref(), &p, 1, T0, false);
            assert!(!again.decision.allowed);
        }
        // A corrupt stored fraction does not panic either.
        let weird = LimiterState {
            params: bad,
            kind: StateKind::Gcra {
                tat_ns: u64::MAX,
                tat_frac: u64::MAX,
            },
        };
        let p = Params::new(1, NS_PER_SEC, None, Algo::Gcra).unwrap();
        assert!(!check(Some(&weird), &p, 1, T0, false).decision.allowed);
    }
}
