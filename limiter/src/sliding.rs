//! Sliding-window counter: windows aligned to multiples of the period, and an
//! estimate of the last `period` that weights the previous window's count by
//! the share of it still inside the sliding span.
//!
//! ```text
//!            previous window            current window
//!   |-------------------------|-------------------------|
//!                  <------ sliding span (period) ------>
//!                  ^ overlap = period - elapsed  ^ now
//!   estimate = curr + ceil(prev × overlap / period)
//! ```
//!
//! The weighted term is rounded up so the estimate never under-counts. `burst`
//! does not apply: the capacity is `limit`.

use crate::decision::{Decision, Outcome};
use crate::params::Params;
use crate::state::{LimiterState, StateKind};
use crate::units::{ms_ceil, sat_i64, sat_u64, window_start};

/// A key's sliding-window counters rolled forward to the window of `now`.
pub(crate) struct SlidingWindow {
    params: Params,
    /// Start of the aligned window containing the effective now.
    start: u64,
    /// Window start to store: `start`, or a later unaligned start kept from
    /// the state after a period change so stored starts never move back.
    stored_start: u64,
    /// `now`, or the stored window start if the clock is behind it.
    now: u64,
    prev: u64,
    curr: u64,
}

impl SlidingWindow {
    /// `params` must already be clamped into range.
    pub(crate) fn at(params: &Params, state: Option<&LimiterState>, now_ns: u64) -> Self {
        let period = params.period_ns;
        let stored = match state.map(|s| &s.kind) {
            Some(&StateKind::Sliding {
                window_start_ns,
                prev_count,
                curr_count,
            }) => Some((window_start_ns, prev_count, curr_count)),
            _ => None,
        };
        // A timestamp behind the stored window (possible after a leader
        // change) counts as the stored window's start: time never runs back.
        let now = stored.map_or(now_ns, |(ws, _, _)| now_ns.max(ws));
        let start = window_start(now, period);
        let (prev, curr) = match stored {
            None => (0, 0),
            // Same window; after a period change, a stored window starting
            // inside the current aligned one is merged into it.
            Some((ws, prev, curr)) if ws >= start => (prev, curr),
            // The stored window is the previous one.
            Some((ws, _, curr)) if ws >= start.saturating_sub(period) => (curr, 0),
            Some(_) => (0, 0),
        };
        Self {
            params: *params,
            start,
            stored_start: stored.map_or(start, |(ws, _, _)| ws.max(start)),
            now,
            prev,
            curr,
        }
    }

    fn period(&self) -> u64 {
        self.params.period_ns
    }

    /// `ceil(prev × (period − elapsed) / period)`.
    fn weighted_prev(&self) -> u64 {
        let period = u128::from(self.period());
        let overlap = period - u128::from(self.now - self.start);
        sat_u64((u128::from(self.prev) * overlap).div_ceil(period))
    }

    /// Earliest instant at which `cost` more units fit, assuming no other
    /// request. Called only when they do not fit now and `cost <= limit`.
    fn allowed_at(&self, cost: u64) -> u64 {
        let limit = self.params.limit;
        let period = self.period();
        // Smallest elapsed e with ceil(count × (period − e) / period) <= room,
        // i.e. count × (period − e) <= room × period.
        let elapsed_needed = |count: u64, room: u64| -> u64 {
            if room >= count {
                return 0;
            }
            let keep = u128::from(room) * u128::from(period) / u128::from(count);
            period - sat_u64(keep)
        };
        match limit.checked_sub(self.curr.saturating_add(cost)) {
            // Fits in this window once enough of the previous one slides out.
            Some(room) => self.start.saturating_add(elapsed_needed(self.prev, room)),
            // Needs the next window, where the current count becomes the
            // previous one and slides out in turn.
            None => self
                .start
                .saturating_add(period)
                .saturating_add(elapsed_needed(self.curr, limit - cost)),
        }
    }

    /// Evaluates a request of `cost` units, `cost <= limit`.
    pub(crate) fn check(&self, cost: u64, now_ns: u64, peek: bool) -> Outcome {
        let limit = self.params.limit;
        let weighted = self.weighted_prev();
        let estimate = self.curr.saturating_add(weighted);
        let allowed = estimate.saturating_add(cost) <= limit;
        let curr = if allowed { self.curr + cost } else { self.curr };
        // Units of the current window slide out completely one full window
        // after it ends; those of the previous window when this one ends.
        let full_at = if curr > 0 {
            self.start.saturating_add(2 * self.period())
        } else if weighted > 0 {
            self.start.saturating_add(self.period())
        } else {
            now_ns
        };
        let retry_after_ms = if allowed {
            -1
        } else {
            sat_i64(ms_ceil(u128::from(self.allowed_at(cost) - now_ns)))
        };
        let new_state = (allowed && !peek && cost > 0).then(|| self.state(self.prev, curr));
        Outcome {
            decision: Decision {
                allowed,
                limit,
                remaining: limit.saturating_sub(curr.saturating_add(weighted)),
                retry_after_ms,
                reset_after_ms: ms_ceil(u128::from(full_at - now_ns)),
            },
            new_state,
            expires_at_ns: full_at,
        }
    }

    /// Gives back `n` units, from the current window first: those are the
    /// ones that weigh fully in the estimate.
    pub(crate) fn refund(&self, n: u64) -> LimiterState {
        let from_curr = n.min(self.curr);
        let from_prev = (n - from_curr).min(self.prev);
        self.state(self.prev - from_prev, self.curr - from_curr)
    }

    fn state(&self, prev: u64, curr: u64) -> LimiterState {
        LimiterState {
            params: self.params,
            kind: StateKind::Sliding {
                window_start_ns: self.stored_start,
                prev_count: prev,
                curr_count: curr,
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

    /// An aligned window start, so the arithmetic below stays readable.
    const W: u64 = 1_700_000_000 * NS_PER_SEC;

    fn sliding(limit: u64, period_ns: u64) -> Params {
        Params::new(limit, period_ns, None, Algo::Sliding).unwrap()
    }

    fn take(state: &mut Option<LimiterState>, p: &Params, cost: u64, now: u64) -> Decision {
        let out = check(state.as_ref(), p, cost, now, false);
        if let Some(s) = out.new_state {
            *state = Some(s);
        }
        out.decision
    }

    #[test]
    fn allows_limit_per_window_then_denies() {
        let p = sliding(10, NS_PER_SEC);
        let mut s = None;
        for i in 0..10 {
            let d = take(&mut s, &p, 1, W + 100 * NS_PER_MS);
            assert!(d.allowed);
            assert_eq!(d.remaining, 9 - i);
            assert_eq!(d.reset_after_ms, 1900);
        }
        let d = take(&mut s, &p, 1, W + 100 * NS_PER_MS);
        assert!(!d.allowed);
        // All 10 are in the current window: at the start of the next window
        // they weigh 10 × 1000/1000 = 10, and one unit is free once the
        // weight drops to 9, i.e. after 100 ms of the next window.
        assert_eq!(d.retry_after_ms, 900 + 100);
        assert!(!take(&mut s, &p, 1, W + NS_PER_SEC + 100 * NS_PER_MS - 1).allowed);
        assert!(take(&mut s, &p, 1, W + NS_PER_SEC + 100 * NS_PER_MS).allowed);
    }

    #[test]
    fn weights_the_previous_window() {
        let p = sliding(10, NS_PER_SEC);
        let mut s = None;
        take(&mut s, &p, 8, W + 500 * NS_PER_MS);
        // 250 ms into the next window: 8 × 750/1000 = 6 still count.
        let d = take(&mut s, &p, 0, W + 1250 * NS_PER_MS);
        assert_eq!(d.remaining, 4);
        // Rounded up: 8 × 749/1000 = 5.992 counts as 6.
        let d = take(&mut s, &p, 0, W + 1251 * NS_PER_MS);
        assert_eq!(d.remaining, 4);
        let d = take(&mut s, &p, 0, W + 1376 * NS_PER_MS);
        assert_eq!(d.remaining, 5);
        // Ask for 5 at 1250 ms: room = 10 - 0 - 5 = 5, so wait until
        // 8 × (1000 - e)/1000 <= 5, e >= 375 ms.
        let d = take(&mut s, &p, 5, W + 1250 * NS_PER_MS);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 125);
        assert!(take(&mut s, &p, 5, W + 1375 * NS_PER_MS).allowed);
        // Two windows after the first request's window, nothing is counted.
        let d = take(&mut s, &p, 0, W + 3 * NS_PER_SEC);
        assert_eq!(d.remaining, 10);
        assert_eq!(d.reset_after_ms, 0);
    }

    #[test]
    fn reset_after_tracks_when_counts_slide_out() {
        let p = sliding(10, NS_PER_SEC);
        let mut s = None;
        take(&mut s, &p, 3, W + 200 * NS_PER_MS);
        // Counted in the current window: gone at the end of the next one.
        let d = take(&mut s, &p, 0, W + 200 * NS_PER_MS);
        assert_eq!(d.reset_after_ms, 1800);
        // Now in the previous window: gone at the end of this one.
        let d = take(&mut s, &p, 0, W + 1200 * NS_PER_MS);
        assert_eq!(d.reset_after_ms, 800);
        let out = check(s.as_ref(), &p, 0, W + 1200 * NS_PER_MS, true);
        assert_eq!(out.expires_at_ns, W + 2 * NS_PER_SEC);
    }

    #[test]
    fn old_timestamps_count_in_the_stored_window() {
        let p = sliding(2, NS_PER_SEC);
        let mut s = None;
        take(&mut s, &p, 1, W + NS_PER_SEC);
        // A timestamp from the window before is treated as the stored one.
        let d = take(&mut s, &p, 1, W + 10);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        match s.unwrap().kind {
            StateKind::Sliding {
                window_start_ns,
                prev_count,
                curr_count,
            } => assert_eq!(
                (window_start_ns, prev_count, curr_count),
                (W + NS_PER_SEC, 0, 2)
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn refund_takes_from_current_then_previous() {
        let p = sliding(10, NS_PER_SEC);
        let mut s = None;
        take(&mut s, &p, 6, W);
        take(&mut s, &p, 2, W + NS_PER_SEC);
        let st = s.unwrap();
        let r = crate::refund(&st, 3, W + NS_PER_SEC);
        assert_eq!(
            r.kind,
            StateKind::Sliding {
                window_start_ns: W + NS_PER_SEC,
                prev_count: 5,
                curr_count: 0
            }
        );
        let r = crate::refund(&st, 100, W + NS_PER_SEC);
        assert_eq!(r.remaining(W + NS_PER_SEC), 10);
    }
}
