//! Parsing and printing of durations such as `500ms`, `10s`, `1m`, `24h`, `7d`.

use crate::error::{echo, LimiterError};
use crate::units::{NS_PER_DAY, NS_PER_HOUR, NS_PER_MIN, NS_PER_MS, NS_PER_SEC};

/// Parses a duration into nanoseconds.
///
/// The grammar is `<digits>[unit]` with unit `ms`, `s`, `m`, `h` or `d`
/// (case-insensitive); a bare number is seconds, as in redis-cell and
/// `EXPIRE`. Only whole numbers are accepted: fractions, signs, spaces and
/// zero are refused, as is anything past `u64::MAX` nanoseconds. Range limits
/// for a rate-limit period are enforced separately by
/// [`Params::new`](crate::Params::new).
pub fn parse_duration(input: &[u8]) -> Result<u64, LimiterError> {
    let digits_end = input
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(input.len());
    let (digits, unit) = input.split_at(digits_end);
    if digits.is_empty() {
        return Err(LimiterError::InvalidDuration(echo(input)));
    }
    let unit_ns = match unit.to_ascii_lowercase().as_slice() {
        b"" | b"s" => NS_PER_SEC,
        b"ms" => NS_PER_MS,
        b"m" => NS_PER_MIN,
        b"h" => NS_PER_HOUR,
        b"d" => NS_PER_DAY,
        _ => return Err(LimiterError::InvalidDuration(echo(input))),
    };
    let mut value: u64 = 0;
    for d in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| LimiterError::DurationOverflow(echo(input)))?;
    }
    if value == 0 {
        return Err(LimiterError::ZeroDuration(echo(input)));
    }
    value
        .checked_mul(unit_ns)
        .ok_or_else(|| LimiterError::DurationOverflow(echo(input)))
}

/// Formats nanoseconds with the largest unit that represents them exactly,
/// so that `parse_duration(format_duration(x)) == x` for every whole number
/// of milliseconds. Durations that are not whole milliseconds print as
/// `<n>ns`, which is for messages only and does not parse back.
pub fn format_duration(ns: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (NS_PER_DAY, "d"),
        (NS_PER_HOUR, "h"),
        (NS_PER_MIN, "m"),
        (NS_PER_SEC, "s"),
        (NS_PER_MS, "ms"),
    ];
    if ns == 0 {
        return "0s".to_owned();
    }
    for (size, suffix) in UNITS {
        if ns.is_multiple_of(size) {
            return format!("{}{suffix}", ns / size);
        }
    }
    format!("{ns}ns")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_unit() {
        assert_eq!(parse_duration(b"500ms").unwrap(), 500 * NS_PER_MS);
        assert_eq!(parse_duration(b"10s").unwrap(), 10 * NS_PER_SEC);
        assert_eq!(parse_duration(b"1m").unwrap(), NS_PER_MIN);
        assert_eq!(parse_duration(b"24h").unwrap(), 24 * NS_PER_HOUR);
        assert_eq!(parse_duration(b"7d").unwrap(), 7 * NS_PER_DAY);
        assert_eq!(parse_duration(b"60").unwrap(), 60 * NS_PER_SEC);
        assert_eq!(parse_duration(b"1MS").unwrap(), NS_PER_MS);
        assert_eq!(parse_duration(b"007s").unwrap(), 7 * NS_PER_SEC);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b""[..],
            b"s",
            b"ms",
            b"-1",
            b"-5s",
            b"+5s",
            b" 5s",
            b"5s ",
            b"1.5s",
            b"5x",
            b"5sec",
            b"5mss",
            b"1e3",
            b"5 s",
            b"\xff",
        ] {
            assert!(
                matches!(parse_duration(bad), Err(LimiterError::InvalidDuration(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_zero() {
        for zero in [&b"0"[..], b"0s", b"000ms", b"0d"] {
            assert!(matches!(
                parse_duration(zero),
                Err(LimiterError::ZeroDuration(_))
            ));
        }
    }

    #[test]
    fn rejects_overflow() {
        // u64::MAX itself parses as a number, but not as seconds.
        assert!(matches!(
            parse_duration(b"18446744073709551615"),
            Err(LimiterError::DurationOverflow(_))
        ));
        assert!(matches!(
            parse_duration(b"18446744073709551616ms"),
            Err(LimiterError::DurationOverflow(_))
        ));
        assert!(matches!(
            parse_duration(b"213504d"),
            Err(LimiterError::DurationOverflow(_))
        ));
        // The largest day count that still fits.
        assert_eq!(parse_duration(b"213503d").unwrap(), 213_503 * NS_PER_DAY);
    }

    #[test]
    fn formats_with_the_largest_exact_unit() {
        assert_eq!(format_duration(500 * NS_PER_MS), "500ms");
        assert_eq!(format_duration(1500 * NS_PER_MS), "1500ms");
        assert_eq!(format_duration(90 * NS_PER_SEC), "90s");
        assert_eq!(format_duration(NS_PER_MIN), "1m");
        assert_eq!(format_duration(NS_PER_DAY), "1d");
        assert_eq!(format_duration(1), "1ns");
        assert_eq!(format_duration(0), "0s");
        for text in ["500ms", "10s", "1m", "24h", "7d", "1500ms", "3650d"] {
            let ns = parse_duration(text.as_bytes()).unwrap();
            assert_eq!(parse_duration(format_duration(ns).as_bytes()).unwrap(), ns);
        }
    }
}
