//! Protocol-neutral command replies, produced by the state machine and
//! encoded as RESP2 or RESP3 by the server's connection.

use bytes::Bytes;
use raftlimit_limiter::Decision;
use serde::{Deserialize, Serialize};

/// A command's reply. It is serializable because replies travel back from the
/// leader to a forwarding follower and are kept in the de-duplication table.
///
/// RESP3-only shapes (`Map`, `Set`, `Double`, `Bool`, `Pairs`) are downgraded
/// by the connection when the client speaks RESP2, as Redis does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// `+OK`
    Ok,
    /// A simple string other than OK, e.g. `+PONG` or `+string` from TYPE.
    Status(String),
    /// An error; the text starts with its code, e.g. `ERR syntax error`.
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3 (EXEC after WATCH).
    NilArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(f64),
    Bool(bool),
    /// A reply whose shape differs by protocol, e.g. RL.CHECK: a flat array
    /// of integers in RESP2, a map in RESP3.
    ByProtocol {
        resp2: Box<Reply>,
        resp3: Box<Reply>,
    },
    /// Ordered pairs, e.g. member and score from `ZRANGE … WITHSCORES`: an
    /// array of two-element arrays in RESP3, one flat array in RESP2. (Added
    /// last: postcard numbers variants by position.)
    Pairs(Vec<(Reply, Reply)>),
    /// An `RL.CHECK` decision: `[allowed, limit, remaining, retry_after_ms,
    /// reset_after_ms]` in RESP2, a map in RESP3 ([`Reply::decision_resp3`]).
    /// Kept whole instead of as two reply trees: the de-duplication table
    /// holds one per recent check.
    Decision(Box<Decision>),
}

impl Reply {
    pub fn error(text: impl Into<String>) -> Self {
        Reply::Error(text.into())
    }

    pub fn bulk(data: impl Into<Bytes>) -> Self {
        Reply::Bulk(data.into())
    }

    pub fn status(text: impl Into<String>) -> Self {
        Reply::Status(text.into())
    }

    /// A bulk string, or nil when absent.
    pub fn bulk_or_nil(data: Option<Bytes>) -> Self {
        data.map_or(Reply::Nil, Reply::Bulk)
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The error code (first word) of an error reply, for metrics.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Reply::Error(text) => text.split(' ').next(),
            _ => None,
        }
    }

    pub fn syntax_error() -> Self {
        Reply::error("ERR syntax error")
    }

    pub fn not_integer() -> Self {
        Reply::error("ERR value is not an integer or out of range")
    }

    pub fn wrong_type() -> Self {
        Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value")
    }

    pub fn wrong_arity(command: &str) -> Self {
        Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            command.to_ascii_lowercase()
        ))
    }

    pub fn no_leader() -> Self {
        Reply::error("CLUSTERDOWN No raft leader")
    }

    pub fn empty_array() -> Self {
        Reply::Array(Vec::new())
    }

    pub fn not_float() -> Self {
        Reply::error("ERR value is not a valid float")
    }

    /// A limiter decision's RESP2 shape: five integers.
    pub fn decision_resp2(d: &Decision) -> Reply {
        Reply::Array(d.to_resp2().iter().map(|&n| Reply::Int(n)).collect())
    }

    /// A limiter decision's RESP3 shape: a map with named fields.
    pub fn decision_resp3(d: &Decision) -> Reply {
        let ints = d.to_resp2();
        Reply::Map(vec![
            (Reply::bulk("allowed"), Reply::Bool(d.allowed)),
            (Reply::bulk("limit"), Reply::Int(ints[1])),
            (Reply::bulk("remaining"), Reply::Int(ints[2])),
            (Reply::bulk("retry_after_ms"), Reply::Int(ints[3])),
            (Reply::bulk("reset_after_ms"), Reply::Int(ints[4])),
        ])
    }

    /// The reply a client speaking `resp3` (or not) gets: [`Reply::ByProtocol`]
    /// and [`Reply::Decision`] resolved to one shape, anything else as is.
    pub fn for_protocol(&self, resp3: bool) -> std::borrow::Cow<'_, Reply> {
        use std::borrow::Cow;
        match self {
            Reply::ByProtocol { resp2, resp3: r3 } => {
                Cow::Borrowed(if resp3 { r3.as_ref() } else { resp2.as_ref() })
            }
            Reply::Decision(d) if resp3 => Cow::Owned(Reply::decision_resp3(d)),
            Reply::Decision(d) => Cow::Owned(Reply::decision_resp2(d)),
            other => Cow::Borrowed(other),
        }
    }
}

/// Formats a double as Redis 7.2's `d2string` does: integral values up to
/// 2^62 as integers, `inf`/`-inf`/`-0` spelled out, everything else with the
/// shortest round-trip digits laid out like `fpconv_dtoa` (plain decimals for
/// moderate exponents, otherwise `1.5e+300` / `1e-7`). Used for scores in
/// RESP2 replies and ZSCAN.
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Redis's `double2ll`: exact integers within ±LLONG_MAX/2.
    let limit = (i64::MAX / 2) as f64;
    if (-limit..=limit).contains(&value) && value.fract() == 0.0 {
        return (value as i64).to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits as `d.ddde±x`.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if value < 0.0 {
        out.push('-');
    }
    emit_digits(&digits, exponent - (digits.len() as i32 - 1), &mut out);
    out
}

/// `fpconv`'s `emit_digits`: `digits` × 10^`k`.
fn emit_digits(digits: &[u8], k: i32, out: &mut String) {
    let ndigits = digits.len() as i32;
    let text = |d: &[u8]| String::from_utf8_lossy(d).into_owned();
    let exp = (k + ndigits - 1).abs();
    if k >= 0 && exp < ndigits + 7 {
        // A plain integer.
        out.push_str(&text(digits));
        out.extend(std::iter::repeat_n('0', k as usize));
        return;
    }
    if k < 0 && (k > -7 || exp < 4) {
        // A plain decimal.
        let offset = ndigits - k.abs();
        if offset <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-offset) as usize));
            out.push_str(&text(digits));
        } else {
            let (int, frac) = digits.split_at(offset as usize);
            out.push_str(&text(int));
            out.push('.');
            out.push_str(&text(frac));
        }
        return;
    }
    // Scientific notation with an explicitly signed exponent.
    out.push_str(&text(&digits[..1]));
    if ndigits > 1 {
        out.push('.');
        out.push_str(&text(&digits[1..]));
    }
    out.push('e');
    out.push(if k + ndigits - 1 < 0 { '-' } else { '+' });
    out.push_str(&exp.to_string());
}

#[cfg(test)]
mod tests {
    use super::format_double;

    #[test]
    fn doubles_format_like_redis_d2string() {
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (-0.0, "-0"),
            (0.0, "0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (1e-7, "1e-7"),
            (1.23e-7, "1.23e-7"),
            (0.000123, "0.000123"),
            (1e20, "1e+20"),
            (1.5e300, "1.5e+300"),
            (12345678901234567890.0, "12345678901234567000"),
            (4611686018427387904.0, "4611686018427387904"),
            (3.0e15, "3000000000000000"),
            (12345.6789012, "1.23456789012e+4"),
            (123.456, "123.456"),
        ];
        for (value, text) in cases {
            assert_eq!(format_double(value), text, "{value:e}");
        }
    }
}
