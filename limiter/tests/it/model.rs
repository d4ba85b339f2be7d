//! Reference models: the obvious, slow formulation of each algorithm, used
//! as an oracle for the optimised, state-compressed implementations.

use std::collections::BTreeMap;

use raftlimit_limiter::Params;

/// A continuous token bucket in exact rational arithmetic: `level` is tokens
/// × `period`, refilled by `elapsed_ns × limit` and capped at
/// `burst × period`. GCRA is this bucket stored as a time.
pub struct TokenBucket {
    pub p: Params,
    level: u128,
    last_ns: u64,
}

impl TokenBucket {
    pub fn new(p: Params, now_ns: u64) -> Self {
        Self {
            p,
            level: u128::from(p.burst) * u128::from(p.period_ns),
            last_ns: now_ns,
        }
    }

    fn refill(&mut self, now_ns: u64) {
        let cap = u128::from(self.p.burst) * u128::from(self.p.period_ns);
        if now_ns > self.last_ns {
            let gained = u128::from(now_ns - self.last_ns) * u128::from(self.p.limit);
            self.level = (self.level + gained).min(cap);
            self.last_ns = now_ns;
        }
    }

    /// Returns (allowed, remaining after).
    pub fn take(&mut self, cost: u64, now_ns: u64, commit: bool) -> (bool, u64) {
        self.refill(now_ns);
        let need = u128::from(cost) * u128::from(self.p.period_ns);
        let allowed = cost <= self.p.burst && self.level >= need;
        let after = if allowed {
            self.level - need
        } else {
            self.level
        };
        if allowed && commit {
            self.level = after;
        }
        (allowed, (after / u128::from(self.p.period_ns)) as u64)
    }
}

/// Counts per aligned window, kept forever.
pub struct Windows {
    pub p: Params,
    counts: BTreeMap<u64, u64>,
}

impl Windows {
    pub fn new(p: Params) -> Self {
        Self {
            p,
            counts: BTreeMap::new(),
        }
    }

    fn index(&self, now_ns: u64) -> u64 {
        now_ns / self.p.period_ns
    }

    fn count(&self, index: u64) -> u64 {
        self.counts.get(&index).copied().unwrap_or(0)
    }

    /// Fixed window: (allowed, remaining after).
    pub fn take_fixed(&mut self, cost: u64, now_ns: u64, commit: bool) -> (bool, u64) {
        let w = self.index(now_ns);
        let used = self.count(w);
        let allowed = used + cost <= self.p.limit;
        let after = if allowed { used + cost } else { used };
        if allowed && commit {
            self.counts.insert(w, after);
        }
        (allowed, self.p.limit.saturating_sub(after))
    }

    /// The sliding estimate: current count plus the previous window's count
    /// weighted by its overlap with the last `period`, rounded up.
    pub fn estimate(&self, now_ns: u64) -> u64 {
        let w = self.index(now_ns);
        let period = u128::from(self.p.period_ns);
        let elapsed = u128::from(now_ns % self.p.period_ns);
        let prev = if w == 0 { 0 } else { self.count(w - 1) };
        let weighted = (u128::from(prev) * (period - elapsed)).div_ceil(period);
        self.count(w) + weighted as u64
    }

    /// Sliding window: (allowed, remaining after).
    pub fn take_sliding(&mut self, cost: u64, now_ns: u64, commit: bool) -> (bool, u64) {
        let est = self.estimate(now_ns);
        let allowed = est + cost <= self.p.limit;
        if allowed && commit {
            *self.counts.entry(self.index(now_ns)).or_insert(0) += cost;
        }
        let after = if allowed { est + cost } else { est };
        (allowed, self.p.limit.saturating_sub(after))
    }
}
