//! The rate-limit policy of one key: algorithm, limit, period and burst, with
//! the validation that every entry point applies before the algorithms run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{echo, LimiterError};
use crate::units::{NS_PER_DAY, NS_PER_MS};

/// Largest accepted `limit` and `burst`. It keeps every intermediate product
/// (`burst × period`, `now × limit`) far inside `u128`, and no real policy
/// comes near it.
pub const MAX_LIMIT: u64 = 1_000_000_000_000;
/// Shortest accepted period. Replies are in milliseconds, so a shorter window
/// could not be described to the client.
pub const MIN_PERIOD_NS: u64 = NS_PER_MS;
/// Longest accepted period: ten years of 365 days.
pub const MAX_PERIOD_NS: u64 = 3650 * NS_PER_DAY;

/// Longest time a GCRA bucket may take to refill from empty
/// (`burst × period / limit`): one hundred years of 365 days. It keeps every
/// theoretical arrival time far below the largest 64-bit timestamp (year 2554).
pub const MAX_REFILL_NS: u64 = 36_500 * NS_PER_DAY;

/// Which algorithm a key is limited with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    /// Generic cell rate algorithm: a token bucket of `burst` units that
    /// refills continuously at `limit` per `period`.
    #[default]
    Gcra,
    /// Sliding-window counter: the current aligned window's count plus the
    /// previous window's count weighted by how much of it still overlaps.
    Sliding,
    /// Fixed window: at most `limit` units per aligned window.
    Fixed,
}

impl Algo {
    /// Parses `gcra`, `sliding` or `fixed`, ignoring ASCII case.
    pub fn parse(input: &[u8]) -> Result<Self, LimiterError> {
        if input.eq_ignore_ascii_case(b"gcra") {
            Ok(Self::Gcra)
        } else if input.eq_ignore_ascii_case(b"sliding") {
            Ok(Self::Sliding)
        } else if input.eq_ignore_ascii_case(b"fixed") {
            Ok(Self::Fixed)
        } else {
            Err(LimiterError::UnknownAlgo(echo(input)))
        }
    }

    /// The lowercase name used in commands, config files and replies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gcra => "gcra",
            Self::Sliding => "sliding",
            Self::Fixed => "fixed",
        }
    }
}

impl fmt::Display for Algo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algo {
    type Err = LimiterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

/// A validated rate-limit policy.
///
/// Build it with [`Params::new`], which checks the ranges. The fields are
/// public so the server can store and compare policies; the algorithms clamp
/// any out-of-range value they are handed (for instance from a corrupt
/// snapshot) into range instead of panicking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Params {
    /// Units allowed per `period` (the refill rate for GCRA).
    pub limit: u64,
    /// Length of the period in nanoseconds.
    pub period_ns: u64,
    /// GCRA bucket capacity: the most units that can be taken at once by an
    /// idle key. Ignored by the sliding and fixed windows, whose capacity is
    /// `limit`.
    pub burst: u64,
    /// The algorithm.
    pub algo: Algo,
}

impl Params {
    /// Validates and builds a policy; `burst` defaults to `limit`.
    pub fn new(
        limit: u64,
        period_ns: u64,
        burst: Option<u64>,
        algo: Algo,
    ) -> Result<Self, LimiterError> {
        let params = Self {
            limit,
            period_ns,
            burst: burst.unwrap_or(limit),
            algo,
        };
        params.validate()?;
        Ok(params)
    }

    /// Checks every range; the error names the first offending argument.
    pub fn validate(&self) -> Result<(), LimiterError> {
        check_range("limit", self.limit, 1, MAX_LIMIT)?;
        check_range("burst", self.burst, 1, MAX_LIMIT)?;
        if !(MIN_PERIOD_NS..=MAX_PERIOD_NS).contains(&self.period_ns) {
            return Err(LimiterError::PeriodOutOfRange(self.period_ns));
        }
        // Only GCRA uses burst; the windows never look further ahead than
        // two periods.
        let refill = u128::from(self.burst) * u128::from(self.period_ns);
        if self.algo == Algo::Gcra && refill > u128::from(MAX_REFILL_NS) * u128::from(self.limit) {
            return Err(LimiterError::RefillTooLong {
                what: "burst * period / limit",
                max_ns: MAX_REFILL_NS,
            });
        }
        Ok(())
    }

    /// The most units a key can ever hold, and so the `limit` field of a
    /// reply: `burst` for GCRA, `limit` for the windowed algorithms. A
    /// request costing more than this can never be allowed.
    pub fn capacity(&self) -> u64 {
        match self.algo {
            Algo::Gcra => self.burst,
            Algo::Sliding | Algo::Fixed => self.limit,
        }
    }

    /// The same policy with every field forced into its valid range, which
    /// is what the algorithms compute with.
    pub(crate) fn clamped(&self) -> Self {
        Self {
            limit: self.limit.clamp(1, MAX_LIMIT),
            period_ns: self.period_ns.clamp(MIN_PERIOD_NS, MAX_PERIOD_NS),
            burst: self.burst.clamp(1, MAX_LIMIT),
            algo: self.algo,
        }
    }
}

fn check_range(name: &'static str, value: u64, min: u64, max: u64) -> Result<(), LimiterError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(LimiterError::OutOfRange {
            name,
            min,
            max,
            value,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::units::NS_PER_SEC;

    #[test]
    fn algo_parses_case_insensitively() {
        assert_eq!(Algo::parse(b"gcra").unwrap(), Algo::Gcra);
        assert_eq!(Algo::parse(b"SLIDING").unwrap(), Algo::Sliding);
        assert_eq!(Algo::parse(b"Fixed").unwrap(), Algo::Fixed);
        assert_eq!("gcra".parse::<Algo>().unwrap(), Algo::Gcra);
        assert_eq!(
            Algo::parse(b"leaky").unwrap_err().to_string(),
            "unknown algorithm 'leaky': expected gcra, sliding or fixed"
        );
        assert_eq!(Algo::default(), Algo::Gcra);
        for algo in [Algo::Gcra, Algo::Sliding, Algo::Fixed] {
            assert_eq!(algo.to_string().parse::<Algo>().unwrap(), algo);
        }
    }

    #[test]
    fn burst_defaults_to_limit() {
        let p = Params::new(10, NS_PER_SEC, None, Algo::Gcra).unwrap();
        assert_eq!(p.burst, 10);
        let p = Params::new(10, NS_PER_SEC, Some(3), Algo::Gcra).unwrap();
        assert_eq!(p.burst, 3);
        assert_eq!(p.capacity(), 3);
        let p = Params::new(10, NS_PER_SEC, Some(3), Algo::Fixed).unwrap();
        assert_eq!(p.capacity(), 10);
    }

    #[test]
    fn ranges_are_enforced_with_clear_messages() {
        let err = Params::new(0, NS_PER_SEC, None, Algo::Gcra).unwrap_err();
        assert_eq!(
            err.to_string(),
            "limit must be between 1 and 1000000000000, got 0"
        );
        let err = Params::new(5, NS_PER_SEC, Some(0), Algo::Gcra).unwrap_err();
        assert_eq!(
            err.to_string(),
            "burst must be between 1 and 1000000000000, got 0"
        );
        assert!(Params::new(MAX_LIMIT + 1, NS_PER_SEC, None, Algo::Gcra).is_err());
        assert!(Params::new(5, NS_PER_SEC, Some(MAX_LIMIT + 1), Algo::Gcra).is_err());
        let err = Params::new(5, NS_PER_MS - 1, None, Algo::Gcra).unwrap_err();
        assert_eq!(
            err.to_string(),
            "period must be between 1ms and 3650d, got 999999ns"
        );
        assert!(Params::new(5, MAX_PERIOD_NS + 1, None, Algo::Gcra).is_err());
        assert!(Params::new(MAX_LIMIT, MAX_PERIOD_NS, Some(MAX_LIMIT), Algo::Gcra).is_ok());
        assert!(Params::new(1, MIN_PERIOD_NS, Some(1), Algo::Fixed).is_ok());
    }

    #[test]
    fn gcra_refill_time_is_bounded() {
        // One per ten years with a burst of ten: exactly a century to refill.
        assert!(Params::new(1, MAX_PERIOD_NS, Some(10), Algo::Gcra).is_ok());
        let err = Params::new(1, MAX_PERIOD_NS, Some(11), Algo::Gcra).unwrap_err();
        assert_eq!(
            err.to_string(),
            "burst * period / limit (the time a drained bucket takes to refill) must be at most 36500d"
        );
        // Windows ignore burst.
        assert!(Params::new(1, MAX_PERIOD_NS, Some(MAX_LIMIT), Algo::Fixed).is_ok());
    }

    #[test]
    fn clamping_repairs_invalid_fields() {
        let p = Params {
            limit: 0,
            period_ns: 0,
            burst: u64::MAX,
            algo: Algo::Sliding,
        }
        .clamped();
        assert!(p.validate().is_ok());
    }
}
