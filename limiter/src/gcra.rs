//! GCRA: a token bucket of `burst` units refilling at `limit` per `period`,
//! stored as a single theoretical arrival time (TAT).
//!
//! Time is counted in *ticks* of `1 / limit` nanoseconds. One unit's emission
//! interval, `period / limit` ns, is then exactly `period` ticks, so every
//! quantity below is an exact integer and nothing is ever rounded except when
//! reporting milliseconds to the client (always up) and when a key's TAT is
//! converted to a new `limit` after a policy change (also up, so a change of
//! policy never grants extra units).

use crate::decision::{Decision, Outcome};
use crate::params::{Params, MAX_LIMIT};
use crate::state::{LimiterState, StateKind};
use crate::units::{sat_i64, sat_u64, NS_PER_MS};

/// A GCRA policy with its constants widened for tick arithmetic.
pub(crate) struct Gcra {
    params: Params,
    limit: u128,
    period: u128,
    burst: u128,
}

impl Gcra {
    /// `params` must already be clamped into range.
    pub(crate) fn new(params: &Params) -> Self {
        Self {
            params: *params,
            limit: u128::from(params.limit),
            period: u128::from(params.period_ns),
            burst: u128::from(params.burst),
        }
    }

    /// Delay variation tolerance: how far the TAT may run ahead of now, in
    /// ticks. A new key has TAT = now, so it starts with `burst` units.
    fn tau(&self) -> u128 {
        self.burst * self.period
    }

    fn ticks(&self, ns: u64) -> u128 {
        u128::from(ns) * self.limit
    }

    /// The stored TAT in this policy's ticks. When the stored state was
    /// written under another `limit`, its fraction is rescaled and rounded up.
    fn stored_tat(&self, state: &LimiterState) -> Option<u128> {
        match state.kind {
            StateKind::Gcra { tat_ns, tat_frac } => {
                let old_limit = u128::from(state.params.limit.clamp(1, MAX_LIMIT));
                let frac = (u128::from(tat_frac) * self.limit).div_ceil(old_limit);
                Some(self.ticks(tat_ns).saturating_add(frac))
            }
            _ => None,
        }
    }

    /// Splits a TAT in ticks into whole nanoseconds and the fraction. A TAT
    /// past `u64::MAX` ns (the year 2554, reachable only with extreme
    /// policies) saturates there.
    fn state_at(&self, tat: u128) -> LimiterState {
        let (tat_ns, tat_frac) = match u64::try_from(tat / self.limit) {
            Ok(ns) => (ns, sat_u64(tat % self.limit)),
            Err(_) => (u64::MAX, 0),
        };
        LimiterState {
            params: self.params,
            kind: StateKind::Gcra { tat_ns, tat_frac },
        }
    }

    fn ms_ceil(&self, ticks: u128) -> u64 {
        sat_u64(ticks.div_ceil(self.limit * u128::from(NS_PER_MS)))
    }

    /// Evaluates a request of `cost` units, `cost <= burst`.
    pub(crate) fn check(
        &self,
        state: Option<&LimiterState>,
        cost: u64,
        now_ns: u64,
        peek: bool,
    ) -> Outcome {
        let now = self.ticks(now_ns);
        // A TAT in the past means a full bucket, exactly like a missing key.
        let tat = state
            .and_then(|s| self.stored_tat(s))
            .map_or(now, |t| t.max(now));
        let tau = self.tau();
        let new_tat = tat.saturating_add(u128::from(cost) * self.period);
        let allowed = new_tat - now <= tau;
        let after = if allowed { new_tat } else { tat };
        let retry_after_ms = if allowed {
            -1
        } else {
            // The earliest instant t with new_tat - t <= tau; tat > now here,
            // so nothing between now and then changes new_tat.
            sat_i64(self.ms_ceil(new_tat - tau - now))
        };
        let new_state = (allowed && !peek && cost > 0).then(|| self.state_at(after));
        Outcome {
            decision: Decision {
                allowed,
                limit: self.params.burst,
                remaining: sat_u64(tau.saturating_sub(after - now) / self.period),
                retry_after_ms,
                reset_after_ms: self.ms_ceil(after - now),
            },
            new_state,
            expires_at_ns: sat_u64(after.div_ceil(self.limit)),
        }
    }

    /// Moves the TAT back by `n` emission intervals, never before `now`
    /// (which would be more than a full bucket).
    pub(crate) fn refund(&self, state: &LimiterState, n: u64, now_ns: u64) -> LimiterState {
        let now = self.ticks(now_ns);
        match self.stored_tat(state) {
            Some(tat) if tat > now => {
                let back = u128::from(n).saturating_mul(self.period);
                self.state_at(tat.saturating_sub(back).max(now))
            }
            _ => state.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::check;
    use crate::params::Algo;
    use crate::units::NS_PER_SEC;

    const T0: u64 = 1_700_000_000 * NS_PER_SEC;

    fn gcra(limit: u64, period_ns: u64, burst: u64) -> Params {
        Params::new(limit, period_ns, Some(burst), Algo::Gcra).unwrap()
    }

    /// Runs a check and stores its new state, as the state machine does.
    fn take(state: &mut Option<LimiterState>, p: &Params, cost: u64, now: u64) -> Decision {
        let out = check(state.as_ref(), p, cost, now, false);
        if let Some(s) = out.new_state {
            *state = Some(s);
        }
        out.decision
    }

    #[test]
    fn new_key_starts_full_and_drains() {
        let p = gcra(5, NS_PER_SEC, 5);
        let mut s = None;
        for i in 0..5 {
            let d = take(&mut s, &p, 1, T0);
            assert!(d.allowed);
            assert_eq!(d.remaining, 4 - i);
            assert_eq!(d.retry_after_ms, -1);
            assert_eq!(d.reset_after_ms, 200 * (i + 1));
        }
        let d = take(&mut s, &p, 1, T0);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after_ms, 200);
        assert_eq!(d.reset_after_ms, 1000);
        assert_eq!(d.limit, 5);
    }

    #[test]
    fn refills_at_the_emission_interval() {
        let p = gcra(5, NS_PER_SEC, 5);
        let mut s = None;
        for _ in 0..5 {
            take(&mut s, &p, 1, T0);
        }
        // One nanosecond early: still empty.
        assert!(!take(&mut s, &p, 1, T0 + 200 * NS_PER_MS - 1).allowed);
        let d = take(&mut s, &p, 1, T0 + 200 * NS_PER_MS);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        // After a long idle period the bucket is full again, not fuller.
        let d = take(&mut s, &p, 0, T0 + 3600 * NS_PER_SEC);
        assert_eq!(d.remaining, 5);
        assert_eq!(d.reset_after_ms, 0);
    }

    #[test]
    fn burst_differs_from_rate() {
        // 1 per second sustained, bursts of 3.
        let p = gcra(1, NS_PER_SEC, 3);
        let mut s = None;
        assert_eq!(take(&mut s, &p, 3, T0).remaining, 0);
        let d = take(&mut s, &p, 2, T0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 2000);
        assert_eq!(d.reset_after_ms, 3000);
        assert!(take(&mut s, &p, 2, T0 + 2 * NS_PER_SEC).allowed);
    }

    #[test]
    fn retry_after_is_exact_and_rounded_up() {
        // Emission interval 333 333 333⅓ ns.
        let p = gcra(3, NS_PER_SEC, 1);
        let mut s = None;
        assert!(take(&mut s, &p, 1, T0).allowed);
        let d = take(&mut s, &p, 1, T0);
        assert_eq!(d.retry_after_ms, 334);
        assert!(!take(&mut s, &p, 1, T0 + 333_333_333).allowed);
        assert!(take(&mut s, &p, 1, T0 + 333_333_334).allowed);
    }

    #[test]
    fn no_drift_with_fractional_emission_interval() {
        // 3 per second: the k-th unit after draining becomes available at
        // exactly T0 + k/3 s. Requests at that instant rounded up to the next
        // nanosecond must all pass for hours, and one nanosecond earlier must
        // not, which fails if the TAT loses even a fraction per write.
        let p = gcra(3, NS_PER_SEC, 2);
        let mut s = None;
        assert!(take(&mut s, &p, 2, T0).allowed);
        for k in 1..=30_000u64 {
            let due = T0 + (k * NS_PER_SEC).div_ceil(3);
            let early = check(s.as_ref(), &p, 1, due - 1, true);
            assert!(!early.decision.allowed, "unit {k} early");
            assert!(take(&mut s, &p, 1, due).allowed, "unit {k} on time");
        }
    }

    #[test]
    fn million_per_second() {
        let p = gcra(1_000_000, NS_PER_SEC, 1_000_000);
        let mut s = None;
        for _ in 0..1_000_000 {
            assert!(take(&mut s, &p, 1, T0).allowed);
        }
        let d = take(&mut s, &p, 1, T0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 1);
        assert_eq!(d.reset_after_ms, 1000);
        // One emission interval is 1µs.
        assert!(take(&mut s, &p, 1, T0 + 1_000).allowed);
    }

    #[test]
    fn longest_valid_refill_still_limits() {
        // One unit per ten years, burst ten: a century to refill.
        let p = gcra(1, crate::params::MAX_PERIOD_NS, 10);
        let out = check(None, &p, 10, T0, false);
        assert!(out.decision.allowed);
        assert_eq!(out.expires_at_ns, T0 + crate::params::MAX_REFILL_NS);
        let again = check(out.new_state.as_ref(), &p, 1, T0, false);
        assert!(!again.decision.allowed);
        assert_eq!(
            again.decision.retry_after_ms,
            (crate::params::MAX_PERIOD_NS / NS_PER_MS) as i64
        );
    }

    #[test]
    fn extreme_values_saturate_instead_of_panicking() {
        let p = gcra(MAX_LIMIT, crate::params::MAX_PERIOD_NS, MAX_LIMIT);
        let out = check(None, &p, MAX_LIMIT, u64::MAX, false);
        assert!(out.decision.allowed);
        assert_eq!(out.expires_at_ns, u64::MAX);
        // Unvalidated, absurd policies (a corrupt snapshot, say) are clamped
        // and saturate without panicking.
        let absurd = Params {
            limit: 1,
            period_ns: u64::MAX,
            burst: u64::MAX,
            algo: Algo::Gcra,
        };
        let out = check(None, &absurd, MAX_LIMIT, T0, false);
        assert!(out.decision.allowed);
        assert_eq!(out.decision.reset_after_ms, u64::MAX);
        let again = check(out.new_state.as_ref(), &absurd, u64::MAX, u64::MAX, false);
        assert!(!again.decision.allowed);
    }

    #[test]
    fn limit_change_rescales_the_fraction_upwards() {
        let p3 = gcra(3, NS_PER_SEC, 3);
        let mut s = None;
        take(&mut s, &p3, 1, T0);
        // TAT = T0 + 333 333 333⅓ ns.
        assert_eq!(
            s.as_ref().unwrap().kind,
            StateKind::Gcra {
                tat_ns: T0 + 333_333_333,
                tat_frac: 1
            }
        );
        let p2 = gcra(2, NS_PER_SEC, 3);
        let out = check(s.as_ref(), &p2, 1, T0, false);
        // ⅓ ns becomes ⅔ ns rounded up to 1/2 ns units: 1/2 ns.
        assert_eq!(
            out.new_state.unwrap().kind,
            StateKind::Gcra {
                tat_ns: T0 + 333_333_333 + 500_000_000,
                tat_frac: 1
            }
        );
    }

    #[test]
    fn refund_gives_back_units_but_never_past_full() {
        let p = gcra(10, NS_PER_SEC, 10);
        let mut s = None;
        take(&mut s, &p, 6, T0);
        let st = s.unwrap();
        assert_eq!(st.remaining(T0), 4);
        let r = crate::refund(&st, 2, T0);
        assert_eq!(r.remaining(T0), 6);
        let r = crate::refund(&st, 100, T0);
        assert_eq!(r.remaining(T0), 10);
        assert_eq!(r.expires_at_ns(T0), T0);
        // Refunding a full key leaves it unchanged.
        let r2 = crate::refund(&r, 5, T0 + NS_PER_SEC);
        assert_eq!(r2, r);
    }
}
