//! Fixed window: at most `limit` units in each window aligned to a multiple
//! of the period. `burst` does not apply.

use crate::decision::{Decision, Outcome};
use crate::params::Params;
use crate::state::{LimiterState, StateKind};
use crate::units::{ms_ceil, sat_i64, window_start};

/// A key's fixed-window counter rolled forward to the window of `now`.
pub(crate) struct FixedWindow {
    params: Params,
    /// Start of the aligned window containing the effective now.
    start: u64,
    /// Window start to store: `start`, or a later unaligned start kept from
    /// the state after a period change so stored starts never move back.
    stored_start: u64,
    count: u64,
}

impl FixedWindow {
    /// `params` must already be clamped into range.
    pub(crate) fn at(params: &Params, state: Option<&LimiterState>, now_ns: u64) -> Self {
        let stored = match state.map(|s| &s.kind) {
            Some(&StateKind::Fixed {
                window_start_ns,
                count,
            }) => Some((window_start_ns, count)),
            _ => None,
        };
        // A timestamp behind the stored window counts in the stored window.
        let now = stored.map_or(now_ns, |(ws, _)| now_ns.max(ws));
        let start = window_start(now, params.period_ns);
        let count = match stored {
            Some((ws, count)) if ws >= start => count,
            _ => 0,
        };
        Self {
            params: *params,
            start,
            stored_start: stored.map_or(start, |(ws, _)| ws.max(start)),
            count,
        }
    }

    /// Evaluates a request of `cost` units, `cost <= limit`.
    pub(crate) fn check(&self, cost: u64, now_ns: u64, peek: bool) -> Outcome {
        let limit = self.params.limit;
        let allowed = self.count.saturating_add(cost) <= limit;
        let count = if allowed {
            self.count + cost
        } else {
            self.count
        };
        let window_end = self.start.saturating_add(self.params.period_ns);
        let full_at = if count > 0 { window_end } else { now_ns };
        let retry_after_ms = if allowed {
            -1
        } else {
            sat_i64(ms_ceil(u128::from(window_end - now_ns)))
        };
        let new_state = (allowed && !peek && cost > 0).then(|| self.state(count));
        Outcome {
            decision: Decision {
                allowed,
                limit,
                remaining: limit.saturating_sub(count),
                retry_after_ms,
                reset_after_ms: ms_ceil(u128::from(full_at - now_ns)),
            },
            new_state,
            expires_at_ns: full_at,
        }
    }

    /// Gives back up to `n` units of the current window.
    pub(crate) fn refund(&self, n: u64) -> LimiterState {
        self.state(self.count.saturating_sub(n))
    }

    fn state(&self, count: u64) -> LimiterState {
        LimiterState {
            params: self.params,
            kind: StateKind::Fixed {
                window_start_ns: self.stored_start,
                count,
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::check;
    use crate::params::Algo;
    use crate::units::{NS_PER_MS, NS_PER_SEC};

    const W: u64 = 1_700_000_000 * NS_PER_SEC;

    fn fixed(limit: u64, period_ns: u64) -> Params {
        Params::new(limit, period_ns, None, Algo::Fixed).unwrap()
    }

    fn take(state: &mut Option<LimiterState>, p: &Params, cost: u64, now: u64) -> Decision {
        let out = check(state.as_ref(), p, cost, now, false);
        if let Some(s) = out.new_state {
            *state = Some(s);
        }
        out.decision
    }

    #[test]
    fn counts_per_aligned_window() {
        let p = fixed(3, NS_PER_SEC);
        let mut s = None;
        for i in 0..3 {
            let d = take(&mut s, &p, 1, W + 700 * NS_PER_MS);
            assert!(d.allowed);
            assert_eq!(d.remaining, 2 - i);
            assert_eq!(d.reset_after_ms, 300);
        }
        let d = take(&mut s, &p, 1, W + 700 * NS_PER_MS);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 300);
        assert!(!take(&mut s, &p, 1, W + NS_PER_SEC - 1).allowed);
        // The boundary resets the count: the well-known 2 × limit burst
        // across a boundary is inherent to fixed windows.
        let d = take(&mut s, &p, 3, W + NS_PER_SEC);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.reset_after_ms, 1000);
    }

    #[test]
    fn empty_key_reports_full_and_expires_now() {
        let p = fixed(3, NS_PER_SEC);
        let out = check(None, &p, 0, W + 5, false);
        assert!(out.decision.allowed);
        assert_eq!(out.decision.remaining, 3);
        assert_eq!(out.decision.reset_after_ms, 0);
        assert_eq!(out.expires_at_ns, W + 5);
        assert!(out.new_state.is_none());
    }

    #[test]
    fn sub_millisecond_waits_round_up() {
        let p = fixed(1, NS_PER_SEC);
        let mut s = None;
        take(&mut s, &p, 1, W);
        let d = take(&mut s, &p, 1, W + NS_PER_SEC - 1);
        assert_eq!(d.retry_after_ms, 1);
        assert_eq!(d.reset_after_ms, 1);
    }

    #[test]
    fn refund_in_window() {
        let p = fixed(5, NS_PER_SEC);
        let mut s = None;
        take(&mut s, &p, 4, W);
        let st = s.unwrap();
        assert_eq!(crate::refund(&st, 1, W).remaining(W), 2);
        assert_eq!(crate::refund(&st, 9, W).remaining(W), 5);
        // In a later window there is nothing left to refund.
        assert_eq!(
            crate::refund(&st, 1, W + NS_PER_SEC).remaining(W + NS_PER_SEC),
            5
        );
    }
}
