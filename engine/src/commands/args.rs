//! Strict argument parsing with Redis's rules and error replies.

use crate::reply::Reply;

/// Parses a signed 64-bit integer the way Redis's `string2ll` does: no
/// sign other than a leading `-`, no leading zeros, no spaces.
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    if arg.is_empty() || arg.len() > 20 {
        return None;
    }
    let (negative, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || negative)) {
        return None;
    }
    let mut value: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(c - b'0');
        value = if negative {
            value.checked_mul(10)?.checked_sub(digit)?
        } else {
            value.checked_mul(10)?.checked_add(digit)?
        };
    }
    Some(value)
}

/// [`parse_i64`] with Redis's error reply.
pub fn int(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(Reply::not_integer)
}

/// A non-negative integer that fits `u64`-sized counts.
pub fn non_negative(arg: &[u8]) -> Result<u64, Reply> {
    match parse_i64(arg) {
        Some(v) if v >= 0 => Ok(v as u64),
        _ => Err(Reply::error("ERR value is out of range, must be positive")),
    }
}

/// A count that must be positive, as Redis's `getPositiveLongFromObjectOrReply`
/// checks it (LPOP, SPOP, ZPOPMIN counts): not an integer and negative give
/// different errors.
pub fn positive(arg: &[u8]) -> Result<u64, Reply> {
    match parse_i64(arg) {
        None => Err(Reply::not_integer()),
        Some(v) if v < 0 => Err(Reply::error("ERR value is out of range, must be positive")),
        Some(v) => Ok(v as u64),
    }
}

/// Parses a float as Redis's `string2d` does (sorted-set scores): the whole
/// argument, no leading space, no NaN, and no overflow to infinity or
/// underflow to zero unless the text says so.
pub fn parse_score(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.len() > 5000 {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    if value.is_nan() {
        return None;
    }
    let unsigned = text.trim_start_matches(['+', '-']);
    let literal_infinity =
        unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity");
    if value.is_infinite() && !literal_infinity {
        return None; // ERANGE overflow
    }
    let mantissa = unsigned.split(['e', 'E']).next().unwrap_or("");
    if value == 0.0 && mantissa.bytes().any(|c| matches!(c, b'1'..=b'9')) {
        return None; // ERANGE underflow
    }
    Some(value)
}

/// [`parse_score`] with Redis's error reply.
pub fn score(arg: &[u8]) -> Result<f64, Reply> {
    parse_score(arg).ok_or_else(Reply::not_float)
}

/// Parses a float as Redis does for INCRBYFLOAT: no spaces, no NaN.
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.len() > 5000 || text.trim() != text {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    (!value.is_nan()).then_some(value)
}

/// Formats a float as Redis's INCRBYFLOAT reply does: shortest exact
/// representation, no exponent, no trailing zeros.
pub fn format_f64(value: f64) -> String {
    // Rust's `Display` for f64 is already the shortest round-trip form and
    // never uses an exponent; only negative zero needs Redis's spelling.
    if value == 0.0 {
        return "0".into();
    }
    format!("{value}")
}

/// Case-insensitive keyword comparison.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        for bad in [&b""[..], b"+1", b"01", b"-0", b" 1", b"1 ", b"1a", b"-"] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn floats_format_like_redis() {
        assert_eq!(format_f64(10.5 + 0.1), "10.6");
        assert_eq!(format_f64(3.0), "3");
        assert_eq!(format_f64(-0.0), "0");
        assert_eq!(format_f64(5.0e3), "5000");
        assert!(parse_f64(b"nan").is_none());
        assert!(parse_f64(b" 1").is_none());
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
    }

    #[test]
    fn scores_follow_string2d() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"+2"), Some(2.0));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b".5"), Some(0.5));
        assert_eq!(parse_score(b"0e10"), Some(0.0));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"1e400",
            b"1e-400",
            b"abc",
            b"1,5",
        ] {
            assert_eq!(parse_score(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn positive_counts() {
        assert_eq!(positive(b"3"), Ok(3));
        assert_eq!(positive(b"x"), Err(Reply::not_integer()));
        assert_eq!(
            positive(b"-1"),
            Err(Reply::error("ERR value is out of range, must be positive"))
        );
    }
}
