//! What the replicated store keeps per rate-limited key.

use serde::{Deserialize, Serialize};

use crate::params::{Algo, Params};

/// The stored state of one key: the policy it was last charged under and the
/// algorithm's counters.
///
/// Keeping the policy makes `RL.REFUND key n` possible with just the key.
///
/// When a check arrives with a different algorithm than the stored one, the
/// counters of one algorithm mean nothing to another, so the key starts fresh
/// (full). When only `limit`, `burst` or `period` changed, the counters are
/// kept and the new policy applies from that check on, so that tightening a
/// policy never hands every client a fresh allowance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimiterState {
    /// Policy of the last check that consumed.
    pub params: Params,
    /// Algorithm-specific counters.
    pub kind: StateKind,
}

/// Algorithm-specific counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateKind {
    /// The theoretical arrival time (TAT): the instant at which the bucket
    /// would be full again.
    ///
    /// The exact TAT is `tat_ns + tat_frac / params.limit` nanoseconds. The
    /// emission interval `period / limit` is rarely a whole number of
    /// nanoseconds (3 per second is 333 333 333⅓ ns); keeping the fraction
    /// means a key held at its limit for years admits exactly `limit` per
    /// `period`, where rounding the TAT to whole nanoseconds on every write
    /// would drift by up to a nanosecond per request.
    Gcra {
        /// Whole nanoseconds of the TAT since the UNIX epoch.
        tat_ns: u64,
        /// Sub-nanosecond remainder in units of `1 / params.limit` ns;
        /// always below `params.limit`.
        tat_frac: u64,
    },
    /// Sliding-window counter over windows aligned to multiples of the period.
    Sliding {
        /// Start of the window `curr_count` belongs to.
        window_start_ns: u64,
        /// Units allowed in the window before it.
        prev_count: u64,
        /// Units allowed in the window starting at `window_start_ns`.
        curr_count: u64,
    },
    /// Fixed window aligned to multiples of the period.
    Fixed {
        /// Start of the window `count` belongs to.
        window_start_ns: u64,
        /// Units allowed in that window.
        count: u64,
    },
}

impl StateKind {
    /// The algorithm these counters belong to.
    pub fn algo(&self) -> Algo {
        match self {
            Self::Gcra { .. } => Algo::Gcra,
            Self::Sliding { .. } => Algo::Sliding,
            Self::Fixed { .. } => Algo::Fixed,
        }
    }
}

impl LimiterState {
    /// The algorithm of the stored counters.
    pub fn algo(&self) -> Algo {
        self.kind.algo()
    }

    /// Units that could be taken at `now_ns` under the stored policy, as a
    /// `PEEK` with cost 0 would report (the reply to `RL.REFUND`).
    pub fn remaining(&self, now_ns: u64) -> u64 {
        self.peek(now_ns).decision.remaining
    }

    /// When the key is full again under the stored policy: the TTL to give it
    /// after writing this state (for instance after a refund). At or before
    /// `now_ns` means the key can be deleted.
    pub fn expires_at_ns(&self, now_ns: u64) -> u64 {
        self.peek(now_ns).expires_at_ns
    }

    fn peek(&self, now_ns: u64) -> crate::Outcome {
        crate::check(Some(self), &self.params, 0, now_ns, true)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::units::NS_PER_SEC;

    #[test]
    fn in_memory_size_is_as_documented() {
        // docs/limiter.md states 64 bytes per key: keep them in step.
        assert_eq!(std::mem::size_of::<Params>(), 32);
        assert_eq!(std::mem::size_of::<StateKind>(), 32);
        assert_eq!(std::mem::size_of::<LimiterState>(), 64);
    }

    #[test]
    fn kind_reports_its_algorithm() {
        let params = Params::new(5, NS_PER_SEC, None, Algo::Fixed).unwrap();
        let state = LimiterState {
            params,
            kind: StateKind::Fixed {
                window_start_ns: 0,
                count: 2,
            },
        };
        assert_eq!(state.algo(), Algo::Fixed);
        assert_eq!(state.remaining(10), 3);
        assert_eq!(state.expires_at_ns(10), NS_PER_SEC);
        assert_eq!(state.remaining(NS_PER_SEC), 5);
        assert_eq!(
            StateKind::Gcra {
                tat_ns: 0,
                tat_frac: 0
            }
            .algo(),
            Algo::Gcra
        );
        assert_eq!(
            StateKind::Sliding {
                window_start_ns: 0,
                prev_count: 0,
                curr_count: 0
            }
            .algo(),
            Algo::Sliding
        );
    }
}
