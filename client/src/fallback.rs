//! The in-process limiter used while the cluster cannot answer.
//!
//! When every pod falls back at once (the cluster is down, or partitioned
//! from all of them), each pod only sees its own traffic. Limiting each to a
//! *share* of the global limit keeps the total near the global limit: with
//! N pods behind a balancer, a share of 1/N admits about the global rate in
//! total. The share is the operator's choice (default one half, for small
//! deployments; see docs/client.md).
//!
//! The algorithm is governor's GCRA, the same family as the cluster's
//! default, so the fallback behaves like a scaled-down version of the real
//! limit. State is per pod and thrown away when the cluster answers again:
//! the cluster's own state, which kept counting up to the outage, is the
//! truth from then on.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use parking_lot::Mutex;

use crate::limiter::{Decision, Limit};

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One scaled-down limit: its governor and its numbers.
struct Local {
    limiter: Keyed,
    capacity: u32,
    interval: Duration,
}

/// The local limiter, keyed like the cluster's keys.
pub struct FallbackLimiter {
    share: f64,
    limits: Mutex<HashMap<(u64, u64, u64), Arc<Local>>>,
    checks: AtomicU64,
}

impl std::fmt::Debug for FallbackLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackLimiter")
            .field("share", &self.share)
            .finish()
    }
}

/// The default share of the global limit each pod allows on its own.
pub const DEFAULT_SHARE: f64 = 0.5;

impl FallbackLimiter {
    /// `share` of each limit, in (0, 1]; values outside are clamped.
    pub fn new(share: f64) -> FallbackLimiter {
        let share = if share.is_finite() {
            share.clamp(0.000_001, 1.0)
        } else {
            DEFAULT_SHARE
        };
        FallbackLimiter {
            share,
            limits: Mutex::new(HashMap::new()),
            checks: AtomicU64::new(0),
        }
    }

    pub fn share(&self) -> f64 {
        self.share
    }

    /// Takes `cost` from `key` under `share` of `limit`. A named policy has
    /// no numbers here: `None` (the caller decides, the middleware allows).
    pub fn check(&self, key: &str, limit: &Limit, cost: u64) -> Option<Decision> {
        let Limit::Rate {
            limit: rate,
            period,
            burst,
            ..
        } = limit
        else {
            return None;
        };
        let local = self.local(*rate, *period, burst.unwrap_or(*rate));
        // Idle keys are dropped now and then so an outage with many clients
        // does not grow memory without bound.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            local.limiter.retain_recent();
        }
        let key = key.to_owned();
        let at = SystemTime::now();
        let cost32 = u32::try_from(cost).unwrap_or(u32::MAX);
        let outcome = match NonZeroU32::new(cost32) {
            None => Ok(Ok(None)),
            Some(n) => local.limiter.check_key_n(&key, n).map(|r| r.map(Some)),
        };
        let clock = local.limiter.clock().clone();
        let decision = match outcome {
            Ok(Ok(snapshot)) => {
                let remaining = snapshot
                    .map(|s| s.remaining_burst_capacity())
                    .unwrap_or(local.capacity);
                Decision {
                    allowed: true,
                    limit: u64::from(local.capacity),
                    remaining: u64::from(remaining),
                    retry_after: None,
                    reset_after: local.interval * (local.capacity - remaining.min(local.capacity)),
                    window: Some(*period),
                    policy_name: "default".into(),
                    at,
                }
            }
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(clock.now());
                Decision {
                    allowed: false,
                    limit: u64::from(local.capacity),
                    remaining: 0,
                    // A single cell may be free sooner than `cost` of them.
                    retry_after: Some(wait + local.interval * cost32.saturating_sub(1)),
                    reset_after: wait + local.interval * (local.capacity - 1),
                    window: Some(*period),
                    policy_name: "default".into(),
                    at,
                }
            }
            Err(_) => Decision {
                // More than the local capacity can ever take.
                allowed: false,
                limit: u64::from(local.capacity),
                remaining: 0,
                retry_after: Some(*period),
                reset_after: Duration::ZERO,
                window: Some(*period),
                policy_name: "default".into(),
                at,
            },
        };
        Some(decision)
    }

    /// Forgets all local state (when the cluster answers again).
    pub fn clear(&self) {
        self.limits.lock().clear();
    }

    fn local(&self, rate: u64, period: Duration, burst: u64) -> Arc<Local> {
        let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        let mut limits = self.limits.lock();
        limits
            .entry((rate, period_ns, burst))
            .or_insert_with(|| {
                let scaled = |n: u64| ((n as f64 * self.share).floor() as u64).max(1);
                let local_rate = scaled(rate);
                let capacity = u32::try_from(scaled(burst)).unwrap_or(u32::MAX);
                let interval = (period / u32::try_from(local_rate).unwrap_or(u32::MAX))
                    .max(Duration::from_nanos(1));
                let quota = Quota::with_period(interval)
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(capacity).unwrap_or(NonZeroU32::MIN));
                Arc::new(Local {
                    limiter: RateLimiter::keyed(quota)
                        .with_middleware::<StateInformationMiddleware>(),
                    capacity,
                    interval,
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_share_then_denies() {
        let f = FallbackLimiter::new(0.5);
        let limit = Limit::per_minute(10);
        let allowed = (0..10)
            .filter(|_| f.check("k", &limit, 1).is_some_and(|d| d.allowed))
            .count();
        assert_eq!(allowed, 5);
        let denied = f
            .check("k", &limit, 1)
            .unwrap_or_else(|| panic!("inline limit"));
        assert!(!denied.allowed);
        assert_eq!(denied.limit, 5);
        // One unit refills every 60 s / 5 = 12 s.
        let wait = denied.retry_after.unwrap_or_default();
        assert!(
            wait > Duration::from_secs(11) && wait <= Duration::from_secs(12),
            "{wait:?}"
        );
        // Other keys are independent; clearing forgets everything.
        assert!(f
            .check("other", &limit, 1)
            .is_some_and(|d| d.allowed && d.remaining == 4));
        f.clear();
        assert!(f
            .check("k", &limit, 1)
            .is_some_and(|d| d.allowed && d.remaining == 4));
    }

    #[test]
    fn policies_and_oversized_costs() {
        let f = FallbackLimiter::new(1.0);
        assert!(f.check("k", &Limit::policy("api"), 1).is_none());
        let d = f
            .check("k", &Limit::per_second(3), 4)
            .unwrap_or_else(|| panic!("inline"));
        assert!(!d.allowed);
        assert!(f
            .check("k", &Limit::per_second(3), 0)
            .is_some_and(|d| d.allowed && d.remaining == 3));
    }
}
