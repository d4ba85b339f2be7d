//! The answer to one rate-limit check, and what the caller must write back.

use serde::{Deserialize, Serialize};

use crate::state::LimiterState;
use crate::units::sat_i64;

/// The reply fields of `RL.CHECK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the request was (or, for a peek, would be) allowed.
    pub allowed: bool,
    /// The key's capacity: `burst` for GCRA, `limit` for sliding and fixed.
    /// `remaining` never exceeds it, and a cost above it is never allowed.
    pub limit: u64,
    /// Units that could still be taken right now, after this request.
    pub remaining: u64,
    /// Milliseconds (rounded up) until this same request would be allowed,
    /// or -1 when it was allowed.
    pub retry_after_ms: i64,
    /// Milliseconds (rounded up) until the key is back to full capacity if
    /// nothing else is taken; 0 when it already is.
    pub reset_after_ms: u64,
}

impl Decision {
    /// The RESP2 reply `[allowed, limit, remaining, retry_after_ms,
    /// reset_after_ms]`, with `allowed` as 1 or 0.
    pub fn to_resp2(&self) -> [i64; 5] {
        [
            i64::from(self.allowed),
            sat_i64(self.limit),
            sat_i64(self.remaining),
            self.retry_after_ms,
            sat_i64(self.reset_after_ms),
        ]
    }

    /// The reply of a shadow policy: the real counters, but always allowed.
    /// The caller records `self.allowed == false` in its metrics first.
    pub fn shadowed(self) -> Self {
        Self {
            allowed: true,
            retry_after_ms: -1,
            ..self
        }
    }
}

/// Everything a check produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The reply.
    pub decision: Decision,
    /// The state to store, present only when units were consumed (allowed,
    /// not a peek, cost above 0). When `None` the key must be left exactly
    /// as it is.
    pub new_state: Option<LimiterState>,
    /// When the key will be full again given the state after this check:
    /// the absolute expiry (nanoseconds since the epoch) to set on the key
    /// when writing `new_state`, so idle keys disappear on their own.
    pub expires_at_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_layout() {
        let d = Decision {
            allowed: false,
            limit: 10,
            remaining: 0,
            retry_after_ms: 250,
            reset_after_ms: u64::MAX,
        };
        assert_eq!(d.to_resp2(), [0, 10, 0, 250, i64::MAX]);
        let s = d.shadowed();
        assert_eq!(s.to_resp2(), [1, 10, 0, -1, i64::MAX]);
    }
}
