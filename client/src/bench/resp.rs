//! The wire side of the load generator: requests encoded once with their key
//! digits patched in place, and a reply-boundary scanner.
//!
//! A benchmark client competes with the servers for the same two cores, so
//! per request it must do as little as possible: no argument vectors, no
//! encoder, no reply tree. A request is encoded once into a [`Template`]
//! whose keys are fixed-width decimal fields; sending the next one rewrites
//! those digits and nothing else. A reply is never decoded: [`reply_len`]
//! only finds where it ends and whether it is an error, which is all a
//! latency measurement needs.

use super::BenchError;

/// Digits in every generated key number, as redis-benchmark's `__rand_int__`.
/// Fixed width keeps the encoded length, and so the bulk-string headers,
/// the same for every key.
pub const KEY_DIGITS: usize = 12;

/// The largest keyspace a fixed-width key field can address.
pub const MAX_KEYSPACE: u64 = 10u64.pow(KEY_DIGITS as u32);

/// One argument of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Sent as is.
    Lit(Vec<u8>),
    /// `prefix` followed by a random key number, drawn per request.
    Key(Vec<u8>),
}

impl Arg {
    /// A literal argument.
    pub fn lit(s: impl AsRef<[u8]>) -> Self {
        Arg::Lit(s.as_ref().to_vec())
    }

    /// A key argument with this prefix.
    pub fn key(prefix: impl AsRef<[u8]>) -> Self {
        Arg::Key(prefix.as_ref().to_vec())
    }
}

/// A request encoded once; [`Template::patch`] writes new key numbers into it.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    /// Start offsets of the `KEY_DIGITS`-wide digit fields.
    slots: Vec<usize>,
}

impl Template {
    /// Encodes `args` as a RESP array of bulk strings, each key with number 0.
    pub fn new(args: &[Arg]) -> Self {
        let mut bytes = Vec::new();
        let mut slots = Vec::new();
        bytes.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            match arg {
                Arg::Lit(v) => {
                    bytes.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
                    bytes.extend_from_slice(v);
                }
                Arg::Key(prefix) => {
                    let len = prefix.len() + KEY_DIGITS;
                    bytes.extend_from_slice(format!("${len}\r\n").as_bytes());
                    bytes.extend_from_slice(prefix);
                    slots.push(bytes.len());
                    bytes.extend_from_slice(&[b'0'; KEY_DIGITS]);
                }
            }
            bytes.extend_from_slice(b"\r\n");
        }
        Self { bytes, slots }
    }

    /// `copies` requests back to back: one pipeline's worth, patched as one.
    pub fn repeat(&self, copies: usize) -> Self {
        let copies = copies.max(1);
        let mut bytes = Vec::with_capacity(self.bytes.len() * copies);
        let mut slots = Vec::with_capacity(self.slots.len() * copies);
        for _ in 0..copies {
            let base = bytes.len();
            slots.extend(self.slots.iter().map(|s| base + s));
            bytes.extend_from_slice(&self.bytes);
        }
        Self { bytes, slots }
    }

    /// The encoded request(s).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of key fields.
    pub fn key_count(&self) -> usize {
        self.slots.len()
    }

    /// Writes a new number into every key field, one `next_key()` call per
    /// field, in order. Numbers at or above [`MAX_KEYSPACE`] wrap.
    pub fn patch(&mut self, mut next_key: impl FnMut() -> u64) {
        for &slot in &self.slots {
            write_digits(&mut self.bytes[slot..slot + KEY_DIGITS], next_key());
        }
    }
}

/// Writes `n` (modulo 10^width) as zero-padded decimal into `field`.
fn write_digits(field: &mut [u8], mut n: u64) {
    for b in field.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Elements one reply may announce in total (all nesting levels together);
/// more is treated as a protocol error rather than waited for.
const MAX_ELEMENTS: u64 = 1 << 20;
/// Longest bulk string accepted (Redis's default `proto-max-bulk-len`).
const MAX_BULK: i64 = 512 * 1024 * 1024;
/// Longest header or simple line; a server that sends more without CRLF is broken.
const MAX_LINE: usize = 64 * 1024;

/// Where the first complete reply in `buf` ends, and whether it is an error
/// (`-…` or RESP3 `!…`). `Ok(None)` while the reply is incomplete.
///
/// Nothing is allocated and no length from the wire is trusted: a bulk
/// string counts as complete only once all its bytes are in `buf`.
pub fn reply_len(buf: &[u8]) -> Result<Option<(usize, bool)>, BenchError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let error = first == b'-' || first == b'!';
    let mut pos = 0usize;
    // Values still to read; an aggregate adds its elements, so nesting needs
    // no stack.
    let mut remaining: u64 = 1;
    while remaining > 0 {
        remaining -= 1;
        let Some(Header { kind, line, next }) = header(buf, pos)? else {
            return Ok(None);
        };
        pos = next;
        match kind {
            b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_' => {}
            b'$' | b'!' | b'=' => {
                let len = int(line)?;
                if len < 0 {
                    if kind != b'$' || len != -1 {
                        return Err(protocol("negative length", line));
                    }
                    continue;
                }
                if len > MAX_BULK {
                    return Err(protocol("bulk string too long", line));
                }
                let end = pos + len as usize + 2;
                if buf.len() < end {
                    return Ok(None);
                }
                if &buf[end - 2..end] != b"\r\n" {
                    return Err(protocol("bulk string without CRLF", line));
                }
                pos = end;
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = int(line)?;
                if n < 0 {
                    if kind != b'*' || n != -1 {
                        return Err(protocol("negative count", line));
                    }
                    continue;
                }
                let n = n as u64;
                let add = match kind {
                    b'%' => n * 2,
                    // An attribute map precedes the value it describes.
                    b'|' => n * 2 + 1,
                    _ => n,
                };
                remaining += add;
                if remaining > MAX_ELEMENTS {
                    return Err(protocol("too many elements", line));
                }
            }
            _ => return Err(protocol("unknown reply type", &buf[pos.min(buf.len())..])),
        }
    }
    Ok(Some((pos, error)))
}

/// A value's first line.
struct Header<'a> {
    /// The type byte.
    kind: u8,
    /// The rest of the line, without CRLF.
    line: &'a [u8],
    /// Where the value's payload (or the next value) starts.
    next: usize,
}

/// The header at `pos`, once its whole line is in `buf`.
fn header(buf: &[u8], pos: usize) -> Result<Option<Header<'_>>, BenchError> {
    let rest = &buf[pos..];
    let Some(&kind) = rest.first() else {
        return Ok(None);
    };
    let scan = &rest[..rest.len().min(MAX_LINE + 2)];
    match scan.iter().position(|&b| b == b'\n') {
        Some(nl) if nl >= 1 && scan[nl - 1] == b'\r' => Ok(Some(Header {
            kind,
            line: &rest[1..nl - 1],
            next: pos + nl + 1,
        })),
        Some(_) => Err(protocol("line without CR", &rest[..rest.len().min(64)])),
        None if rest.len() > MAX_LINE => Err(protocol("line too long", &rest[..64])),
        None => Ok(None),
    }
}

fn int(line: &[u8]) -> Result<i64, BenchError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| protocol("bad integer", line))
}

fn protocol(what: &str, near: &[u8]) -> BenchError {
    BenchError::Protocol(format!(
        "{what} near {:?}",
        String::from_utf8_lossy(&near[..near.len().min(64)])
    ))
}

/// A reply's text for messages: the raw bytes with CRLFs shown as spaces, cut short.
pub fn reply_text(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(&reply[..reply.len().min(200)]).replace("\r\n", " ");
    text.trim_end().to_string()
}

/// The payload of a bulk-string reply (`$n\r\n…\r\n`), if `reply` is one.
pub fn bulk_payload(reply: &[u8]) -> Option<&[u8]> {
    let h = header(reply, 0).ok()??;
    if h.kind != b'$' {
        return None;
    }
    let len = usize::try_from(int(h.line).ok()?).ok()?;
    reply.get(h.next..h.next + len)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn template_encodes_resp_and_patches_keys_in_place() {
        let mut t = Template::new(&[Arg::lit("SET"), Arg::key("k:"), Arg::lit("xxx")]);
        assert_eq!(
            t.bytes(),
            b"*3\r\n$3\r\nSET\r\n$14\r\nk:000000000000\r\n$3\r\nxxx\r\n"
        );
        let len = t.bytes().len();
        t.patch(|| 4711);
        assert_eq!(
            t.bytes(),
            b"*3\r\n$3\r\nSET\r\n$14\r\nk:000000004711\r\n$3\r\nxxx\r\n"
        );
        assert_eq!(t.bytes().len(), len);
        // Numbers wrap at the field width instead of growing it.
        t.patch(|| MAX_KEYSPACE + 5);
        assert!(t.bytes().windows(14).any(|w| w == b"k:000000000005"));
    }

    #[test]
    fn repeated_template_patches_every_copy_with_its_own_keys() {
        let base = Template::new(&[
            Arg::lit("RL.MCHECK"),
            Arg::lit("2"),
            Arg::key("a:"),
            Arg::key("b:"),
        ]);
        let mut t = base.repeat(3);
        assert_eq!(t.key_count(), 6);
        let mut n = 0;
        t.patch(|| {
            n += 1;
            n
        });
        let text = String::from_utf8(t.bytes().to_vec()).unwrap();
        for (i, want) in [
            "a:000000000001",
            "b:000000000002",
            "a:000000000005",
            "b:000000000006",
        ]
        .iter()
        .enumerate()
        {
            assert!(text.contains(want), "{i}: {want} missing in {text}");
        }
        assert_eq!(t.bytes().len(), base.bytes().len() * 3);
    }

    #[test]
    fn reply_len_finds_boundaries_of_every_type() {
        let cases: &[(&[u8], bool)] = &[
            (b"+OK\r\n", false),
            (b"-ERR unknown command 'RL.CHECK'\r\n", true),
            (b":42\r\n", false),
            (b"$3\r\nabc\r\n", false),
            (b"$-1\r\n", false),
            (b"$0\r\n\r\n", false),
            (b"*-1\r\n", false),
            (b"*0\r\n", false),
            (b"*5\r\n:1\r\n:100\r\n:99\r\n:-1\r\n:600\r\n", false),
            (
                b"*3\r\n:1\r\n:-1\r\n*2\r\n*2\r\n:1\r\n:5\r\n*1\r\n$2\r\nab\r\n",
                false,
            ),
            (b"%1\r\n+allowed\r\n#t\r\n", false),
            (b"_\r\n", false),
            (b",3.5\r\n", false),
            (b"(123456789012345678901\r\n", false),
            (b"!5\r\nERR x\r\n", true),
            (b"|1\r\n+ttl\r\n:3\r\n:7\r\n", false),
            (b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n", false),
        ];
        for (reply, err) in cases {
            assert_eq!(
                reply_len(reply).unwrap(),
                Some((reply.len(), *err)),
                "{:?}",
                reply_text(reply)
            );
            // Every proper prefix is incomplete, never an error.
            for cut in 0..reply.len() {
                assert_eq!(
                    reply_len(&reply[..cut]).unwrap(),
                    None,
                    "{:?} cut at {cut}",
                    reply_text(reply)
                );
            }
            // A following reply is not consumed.
            let mut two = reply.to_vec();
            two.extend_from_slice(b"+OK\r\n");
            assert_eq!(reply_len(&two).unwrap(), Some((reply.len(), *err)));
        }
    }

    #[test]
    fn reply_len_rejects_malformed_input_without_waiting() {
        for bad in [
            &b"?x\r\n"[..],
            b"$abc\r\n",
            b"$-2\r\n",
            b"*-5\r\n",
            b"$3\r\nabcd\r\n",
            b"+OK\n",
            b"*99999999999\r\n",
            b"$999999999999\r\n",
        ] {
            assert!(reply_len(bad).is_err(), "{:?} accepted", reply_text(bad));
        }
        let long = vec![b'+'; MAX_LINE + 10];
        assert!(reply_len(&long).is_err());
        // A declared length alone allocates and waits for nothing it has not seen.
        assert_eq!(reply_len(b"$100000\r\nabc").unwrap(), None);
    }

    #[test]
    fn bulk_payload_reads_script_sha() {
        let r = b"$40\r\n0123456789012345678901234567890123456789\r\n";
        assert_eq!(bulk_payload(r).unwrap(), &r[5..45]);
        assert_eq!(bulk_payload(b"+OK\r\n"), None);
        assert_eq!(bulk_payload(b"$10\r\nab\r\n"), None);
    }
}
