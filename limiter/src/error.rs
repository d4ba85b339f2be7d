//! The error type of this crate; every message is one printable line meant to
//! follow `ERR ` in a Redis error reply.

use crate::period::format_duration;

/// Longest piece of client input echoed back in an error message.
const ECHO_LIMIT: usize = 32;

/// Why an argument was refused.
///
/// `Display` gives the text of the Redis reply without the `ERR ` prefix,
/// e.g. `-ERR limit must be between 1 and 1000000000000, got 0`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimiterError {
    /// Not of the form `<digits>[ms|s|m|h|d]`.
    #[error("invalid duration '{0}': expected a positive integer optionally followed by ms, s, m, h or d")]
    InvalidDuration(String),
    /// A duration of zero.
    #[error("invalid duration '{0}': must be greater than zero")]
    ZeroDuration(String),
    /// A duration that does not fit in 64-bit nanoseconds (about 584 years).
    #[error("invalid duration '{0}': too large")]
    DurationOverflow(String),
    /// An algorithm name other than gcra, sliding or fixed.
    #[error("unknown algorithm '{0}': expected gcra, sliding or fixed")]
    UnknownAlgo(String),
    /// An integer parameter outside its accepted range.
    #[error("{name} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// Argument name as the command grammar spells it.
        name: &'static str,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
        /// The value received.
        value: u64,
    },
    /// A period outside 1ms ..= 3650d.
    #[error(
        "period must be between {} and {}, got {}",
        format_duration(crate::params::MIN_PERIOD_NS),
        format_duration(crate::params::MAX_PERIOD_NS),
        duration(.0)
    )]
    PeriodOutOfRange(u64),
    /// A GCRA bucket that would take too long to refill from empty. Beyond
    /// this the theoretical arrival time could pass the largest 64-bit
    /// timestamp and stop limiting.
    #[error(
        "{what} (the time a drained bucket takes to refill) must be at most {}",
        duration(.max_ns)
    )]
    RefillTooLong {
        /// The expression, in the command's own argument names.
        what: &'static str,
        /// The bound in nanoseconds.
        max_ns: u64,
    },
    /// `CL.THROTTLE` with a count or period that makes the emission interval
    /// zero; redis-cell answers with this same text.
    #[error("zero rates are not supported")]
    ZeroRate,
}

fn duration(ns: &u64) -> String {
    format_duration(*ns)
}

/// Client bytes made safe to embed in a one-line error: lossy UTF-8, control
/// characters replaced (a CR or LF would end the RESP error line early), and
/// cut to a short prefix so a huge argument is not echoed back whole.
pub(crate) fn echo(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let mut out: String = text
        .chars()
        .take(ECHO_LIMIT)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > ECHO_LIMIT {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_strips_line_breaks_and_truncates() {
        assert_eq!(echo(b"a\r\nb"), "a??b");
        let long = vec![b'x'; 100];
        let shown = echo(&long);
        assert_eq!(shown.len(), ECHO_LIMIT + 3);
        assert!(shown.ends_with("..."));
    }

    #[test]
    fn messages_are_single_lines() {
        let errors = [
            LimiterError::InvalidDuration(echo(b"1\r\nx")),
            LimiterError::ZeroDuration("0s".into()),
            LimiterError::DurationOverflow("99999999999999999999".into()),
            LimiterError::UnknownAlgo("leaky".into()),
            LimiterError::OutOfRange {
                name: "limit",
                min: 1,
                max: 10,
                value: 0,
            },
            LimiterError::PeriodOutOfRange(5),
            LimiterError::RefillTooLong {
                what: "burst * period / limit",
                max_ns: crate::params::MAX_REFILL_NS,
            },
            LimiterError::ZeroRate,
        ];
        for e in errors {
            let text = e.to_string();
            assert!(!text.contains('\r') && !text.contains('\n'), "{text}");
            assert!(!text.is_empty());
        }
    }

    #[test]
    fn period_message_names_the_bounds() {
        assert_eq!(
            LimiterError::PeriodOutOfRange(500_000).to_string(),
            "period must be between 1ms and 3650d, got 500000ns"
        );
    }
}
