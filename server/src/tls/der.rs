//! A minimal DER reader for the certificate fields webpki does not expose:
//! the subject's attributes (its common name, and the name to sign with an
//! existing CA) and the end of the validity period.
//!
//! It reads certificates rustls has already verified, or local CA files.
//! Every length is checked against the bytes present, and nothing is
//! allocated from a claimed size.

const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xa0;

/// String tags that may carry a name attribute.
pub const UTF8_STRING: u8 = 0x0c;
pub const PRINTABLE_STRING: u8 = 0x13;
pub const TELETEX_STRING: u8 = 0x14;
pub const IA5_STRING: u8 = 0x16;
pub const UNIVERSAL_STRING: u8 = 0x1c;
pub const BMP_STRING: u8 = 0x1e;

/// The `commonName` attribute type, 2.5.4.3.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// Splits the first tag-length-value off `input`: `(tag, value, rest)`.
/// Only definite lengths of at most four bytes and low tag numbers, which
/// is all a certificate uses.
fn next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        (
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)),
            rest,
        )
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((tag, value, rest))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (got, value, rest) = next(input)?;
    (got == tag).then_some((value, rest))
}

/// The fields of a certificate's `TBSCertificate` read here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tbs<'a> {
    /// The subject `Name`'s contents (without its SEQUENCE header).
    pub subject: &'a [u8],
    /// `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Reads the subject and expiry of a DER certificate.
pub fn tbs(cert: &[u8]) -> Option<Tbs<'_>> {
    let (cert, _) = expect(cert, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    if let Some((VERSION, _, after)) = next(rest) {
        rest = after;
    }
    let (_serial, rest) = expect(rest, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (_issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, _) = expect(rest, SEQUENCE)?;
    let (_, _not_before, validity) = next(validity)?;
    let (tag, not_after, _) = next(validity)?;
    Some(Tbs {
        subject,
        not_after: parse_time(tag, not_after)?,
    })
}

/// One attribute of a name: its type (OID contents), string tag and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub oid: &'a [u8],
    pub tag: u8,
    pub value: &'a [u8],
}

/// The attributes of a `Name`'s contents, in order.
pub fn attributes(mut name: &[u8]) -> Option<Vec<Attribute<'_>>> {
    let mut out = Vec::new();
    while !name.is_empty() {
        let (mut rdn, rest) = expect(name, SET)?;
        name = rest;
        while !rdn.is_empty() {
            let (pair, rest) = expect(rdn, SEQUENCE)?;
            rdn = rest;
            let (oid, pair) = expect(pair, OID)?;
            let (tag, value, _) = next(pair)?;
            out.push(Attribute { oid, tag, value });
        }
    }
    Some(out)
}

/// The first common name of a `Name`'s contents, if it is a UTF-8,
/// printable or IA5 string.
pub fn common_name(name: &[u8]) -> Option<String> {
    let cn = attributes(name)?
        .into_iter()
        .find(|a| a.oid == COMMON_NAME)?;
    match cn.tag {
        UTF8_STRING | PRINTABLE_STRING | IA5_STRING => {
            std::str::from_utf8(cn.value).ok().map(str::to_owned)
        }
        _ => None,
    }
}

/// An OID's contents as its arcs.
pub fn oid_arcs(oid: &[u8]) -> Option<Vec<u64>> {
    let (&first, mut rest) = oid.split_first()?;
    let mut arcs = vec![u64::from(first / 40).min(2), 0];
    arcs[1] = u64::from(first) - arcs[0] * 40;
    if first & 0x80 != 0 {
        return None;
    }
    while !rest.is_empty() {
        let mut arc: u64 = 0;
        loop {
            let (&b, after) = rest.split_first()?;
            rest = after;
            if arc > (u64::MAX >> 7) {
                return None;
            }
            arc = (arc << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        arcs.push(arc);
    }
    Some(arcs)
}

fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `UTCTime` (`YYMMDDHHMMSSZ`) or `GeneralizedTime` (`YYYYMMDDHHMMSSZ`), as
/// DER requires them, to seconds since the epoch.
fn parse_time(tag: u8, value: &[u8]) -> Option<i64> {
    let (year, rest) = match (tag, value.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(&value[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &value[2..])
        }
        (GENERALIZED_TIME, 15) => (digits(&value[..4])?, &value[4..]),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked_against_the_input() {
        assert_eq!(next(&[0x30, 0x03, 1, 2]), None);
        assert_eq!(next(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(next(&[0x30, 0x80]), None, "indefinite length");
        assert_eq!(next(&[0x1f, 0x01, 0x00]), None, "high tag number");
        assert_eq!(
            next(&[0x30, 0x81, 0x02, 7, 8, 9]),
            Some((0x30, &[7u8, 8][..], &[9u8][..]))
        );
        assert_eq!(tbs(&[]), None);
        assert_eq!(attributes(&[0x31, 0x05, 0x30, 0x03, 0x06, 0x01]), None);
    }

    #[test]
    fn times_and_oids() {
        assert_eq!(parse_time(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20380119031408Z"),
            Some(2_147_483_648)
        );
        assert_eq!(parse_time(UTC_TIME, b"700101000000+"), None);
        assert_eq!(parse_time(UTC_TIME, b"701301000000Z"), None);
        assert_eq!(oid_arcs(&[0x55, 0x04, 0x03]), Some(vec![2, 5, 4, 3]));
        assert_eq!(
            oid_arcs(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            Some(vec![1, 2, 840, 113549])
        );
        assert_eq!(oid_arcs(&[0x2a, 0x86]), None);
    }
}
