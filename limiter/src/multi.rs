//! All-or-nothing checks over several keys, for `RL.MCHECK`.

use crate::check::check;
use crate::decision::{Decision, Outcome};
use crate::params::Params;
use crate::state::LimiterState;

/// The result of [`check_all`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiOutcome {
    /// Whether every key allowed the request (and so all were charged).
    pub allowed: bool,
    /// -1 when allowed; otherwise the largest `retry_after_ms` among the keys
    /// that denied, i.e. the wait until every key would allow it.
    pub retry_after_ms: i64,
    /// One outcome per key, in input order.
    pub outcomes: Vec<Outcome>,
}

/// Checks `cost` against every key and charges all of them or none.
///
/// Each item is a key's stored state and its policy; the keys must be
/// distinct (the server rejects a key named twice). When every key allows the
/// request, the outcomes are those of [`check`] and carry the new states
/// (none with `peek`). When any key denies, nothing is charged: every
/// outcome has `new_state: None`; a denying key reports its own denial, and
/// a key that would have allowed keeps `allowed: true` but reports its
/// unchanged `remaining` and `reset_after_ms`.
pub fn check_all(
    items: &[(Option<&LimiterState>, &Params)],
    cost: u64,
    now_ns: u64,
    peek: bool,
) -> MultiOutcome {
    let trial: Vec<Outcome> = items
        .iter()
        .map(|(state, params)| check(*state, params, cost, now_ns, true))
        .collect();
    if trial.iter().all(|o| o.decision.allowed) {
        let outcomes = if peek {
            trial
        } else {
            items
                .iter()
                .map(|(state, params)| check(*state, params, cost, now_ns, false))
                .collect()
        };
        return MultiOutcome {
            allowed: true,
            retry_after_ms: -1,
            outcomes,
        };
    }
    let retry_after_ms = trial
        .iter()
        .filter(|o| !o.decision.allowed)
        .map(|o| o.decision.retry_after_ms)
        .max()
        .unwrap_or(-1);
    let outcomes = items
        .iter()
        .zip(trial)
        .map(|((state, params), tried)| {
            if !tried.decision.allowed {
                return tried;
            }
            let current = check(*state, params, 0, now_ns, true);
            Outcome {
                decision: Decision {
                    allowed: true,
                    retry_after_ms: -1,
                    ..current.decision
                },
                new_state: None,
                expires_at_ns: current.expires_at_ns,
            }
        })
        .collect();
    MultiOutcome {
        allowed: false,
        retry_after_ms,
        outcomes,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::params::Algo;
    use crate::units::NS_PER_SEC;

    const T0: u64 = 1_700_000_000 * NS_PER_SEC;

    #[test]
    fn charges_all_or_nothing() {
        let per_user = Params::new(10, NS_PER_SEC, None, Algo::Gcra).unwrap();
        let global = Params::new(2, NS_PER_SEC, None, Algo::Fixed).unwrap();

        let out = check_all(&[(None, &per_user), (None, &global)], 2, T0, false);
        assert!(out.allowed);
        assert_eq!(out.retry_after_ms, -1);
        let user_state = out.outcomes[0].new_state.clone().unwrap();
        let global_state = out.outcomes[1].new_state.clone().unwrap();
        assert_eq!(out.outcomes[0].decision.remaining, 8);

        // The global key is exhausted, so the user key is not charged.
        let out = check_all(
            &[
                (Some(&user_state), &per_user),
                (Some(&global_state), &global),
            ],
            1,
            T0,
            false,
        );
        assert!(!out.allowed);
        assert_eq!(out.retry_after_ms, 1000);
        assert!(out.outcomes.iter().all(|o| o.new_state.is_none()));
        assert!(out.outcomes[0].decision.allowed);
        assert_eq!(out.outcomes[0].decision.remaining, 8);
        assert_eq!(out.outcomes[0].decision.retry_after_ms, -1);
        assert!(!out.outcomes[1].decision.allowed);
    }

    #[test]
    fn peek_charges_nothing() {
        let p = Params::new(1, NS_PER_SEC, None, Algo::Sliding).unwrap();
        let out = check_all(&[(None, &p), (None, &p)], 1, T0, true);
        assert!(out.allowed);
        assert!(out.outcomes.iter().all(|o| o.new_state.is_none()));
        assert_eq!(out.outcomes[1].decision.remaining, 0);
    }

    #[test]
    fn retry_is_the_slowest_key() {
        let fast = Params::new(1, NS_PER_SEC, None, Algo::Gcra).unwrap();
        let slow = Params::new(1, 60 * NS_PER_SEC, None, Algo::Gcra).unwrap();
        let a = check(None, &fast, 1, T0, false).new_state.unwrap();
        let b = check(None, &slow, 1, T0, false).new_state.unwrap();
        let out = check_all(&[(Some(&a), &fast), (Some(&b), &slow)], 1, T0, false);
        assert!(!out.allowed);
        assert_eq!(out.retry_after_ms, 60_000);
    }
}
