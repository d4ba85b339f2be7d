//! The incremental request decoder: one command at a time out of a growing
//! buffer, resuming inside a multibulk across reads.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{protocol_error, ProtocolError};
use crate::inline::split_inline;

/// Longest inline command or `*`/`$` header line, as in Redis.
pub const MAX_INLINE_LEN: usize = 64 * 1024;
/// Most arguments in one command before AUTH (Redis's limit).
pub const UNAUTHENTICATED_MAX_MULTIBULK_LEN: i64 = 10;
/// Largest bulk string before AUTH (Redis's limit).
pub const UNAUTHENTICATED_MAX_BULK_LEN: i64 = 16 * 1024;

/// Size limits applied while decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk string (`proto-max-bulk-len`).
    pub max_bulk_len: usize,
    /// Most arguments in one command.
    pub max_multibulk_len: usize,
    /// The client must still authenticate: Redis's much smaller limits
    /// apply too (10 arguments, 16 KiB per argument).
    pub unauthenticated: bool,
}

/// Incremental request decoder. Keeps its position inside a multibulk across
/// reads, so a large argument is scanned once.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    args: Vec<Bytes>,
    /// Arguments still expected in the current multibulk (0: between commands).
    remaining: usize,
    /// Length of the bulk being read, once its header is parsed.
    bulk_len: Option<usize>,
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn parse_len(digits: &[u8]) -> Option<i64> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl RequestDecoder {
    /// Whether a command has been partly received.
    pub fn in_progress(&self) -> bool {
        self.remaining > 0
    }

    /// Decodes the next complete command from `buf`, consuming its bytes.
    /// `Ok(None)` means more bytes are needed. Empty commands (`*0`, blank
    /// inline lines) are skipped, as Redis does.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.remaining == 0 {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    match self.decode_inline(buf)? {
                        Some(args) if args.is_empty() => continue,
                        other => return Ok(other),
                    }
                }
                let Some(end) = find_crlf(&buf[..buf.len().min(MAX_INLINE_LEN)]) else {
                    if buf.len() > MAX_INLINE_LEN {
                        return Err(protocol_error("too big mbulk count string"));
                    }
                    return Ok(None);
                };
                let count = parse_len(&buf[1..end])
                    .filter(|&n| n <= limits.max_multibulk_len as i64)
                    .ok_or_else(|| protocol_error("invalid multibulk length"))?;
                if limits.unauthenticated && count > UNAUTHENTICATED_MAX_MULTIBULK_LEN {
                    return Err(protocol_error("unauthenticated multibulk length"));
                }
                buf.advance(end + 2);
                if count <= 0 {
                    continue;
                }
                self.remaining = count as usize;
                // Capacity follows arguments as they arrive, not the claim.
                self.args = Vec::with_capacity(self.remaining.min(64));
            }
            while self.remaining > 0 {
                let len = match self.bulk_len {
                    Some(len) => len,
                    None => {
                        let Some(end) = find_crlf(&buf[..buf.len().min(MAX_INLINE_LEN)]) else {
                            if buf.len() > MAX_INLINE_LEN {
                                return Err(protocol_error("too big bulk count string"));
                            }
                            return Ok(None);
                        };
                        if buf[0] != b'$' {
                            return Err(protocol_error(format!(
                                "expected '$', got '{}'",
                                char::from(buf[0]).escape_default()
                            )));
                        }
                        let len = parse_len(&buf[1..end])
                            .filter(|&n| n >= 0 && n <= limits.max_bulk_len as i64)
                            .ok_or_else(|| protocol_error("invalid bulk length"))?;
                        if limits.unauthenticated && len > UNAUTHENTICATED_MAX_BULK_LEN {
                            return Err(protocol_error("unauthenticated bulk length"));
                        }
                        let len = len as usize;
                        buf.advance(end + 2);
                        self.bulk_len = Some(len);
                        len
                    }
                };
                if buf.len() < len + 2 {
                    return Ok(None);
                }
                let arg = buf.split_to(len).freeze();
                if &buf[..2] != b"\r\n" {
                    return Err(protocol_error("bulk string not terminated by CRLF"));
                }
                buf.advance(2);
                self.args.push(arg);
                self.remaining -= 1;
                self.bulk_len = None;
            }
            return Ok(Some(std::mem::take(&mut self.args)));
        }
    }

    /// Decodes one inline command (`SET k v\r\n`), as telnet sends it.
    fn decode_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(end) = buf[..buf.len().min(MAX_INLINE_LEN + 1)]
            .iter()
            .position(|&b| b == b'\n')
        else {
            if buf.len() > MAX_INLINE_LEN {
                return Err(protocol_error("too big inline request"));
            }
            return Ok(None);
        };
        let line = buf.split_to(end + 1);
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        split_inline(line).map(Some)
    }

    /// The first bytes of an inline line, to spot HTTP sent to the RESP port.
    pub fn peek_inline_start(buf: &[u8]) -> &[u8] {
        &buf[..buf.len().min(16)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_bulk_len: 1024,
        max_multibulk_len: 16,
        unauthenticated: false,
    };

    fn decode_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut decoder = RequestDecoder::default();
        let mut out = Vec::new();
        while let Some(cmd) = decoder.decode(&mut buf, &LIMITS)? {
            out.push(cmd);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline() {
        let cmds = decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\r\n\r\n")
            .unwrap_or_default();
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(cmds[1], vec![Bytes::from("PING")]);
        assert_eq!(
            cmds[2],
            vec![Bytes::from("set"), Bytes::from("a"), Bytes::from("b c")]
        );
    }

    #[test]
    fn byte_at_a_time() {
        let input = b"*3\r\n$3\r\nSET\r\n$2\r\nk\x00\r\n$0\r\n\r\n";
        let mut buf = BytesMut::new();
        let mut decoder = RequestDecoder::default();
        let mut got = None;
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            if let Some(cmd) = decoder.decode(&mut buf, &LIMITS).unwrap_or(None) {
                got = Some(cmd);
            }
        }
        assert_eq!(
            got,
            Some(vec![
                Bytes::from("SET"),
                Bytes::from(&b"k\x00"[..]),
                Bytes::new()
            ])
        );
    }

    #[test]
    fn limits_are_enforced_before_allocation() {
        assert_eq!(
            decode_all(b"*17\r\n"),
            Err(protocol_error("invalid multibulk length"))
        );
        assert_eq!(
            decode_all(b"*2\r\n$1025\r\n"),
            Err(protocol_error("invalid bulk length"))
        );
        assert_eq!(
            decode_all(b"*1\r\n$-5\r\n"),
            Err(protocol_error("invalid bulk length"))
        );
        assert_eq!(
            decode_all(b"*1\r\n:5\r\n"),
            Err(protocol_error("expected '$', got ':'"))
        );
        assert_eq!(
            decode_all(b"*x\r\n"),
            Err(protocol_error("invalid multibulk length"))
        );
        assert_eq!(
            decode_all(b"*1\r\n$1\r\nabc"),
            Err(protocol_error("bulk string not terminated by CRLF"))
        );
        assert_eq!(
            decode_all(b"set a \"b\r\n"),
            Err(protocol_error("unbalanced quotes in request"))
        );
        let long = vec![b'a'; MAX_INLINE_LEN + 10];
        assert_eq!(
            decode_all(&long),
            Err(protocol_error("too big inline request"))
        );
    }

    #[test]
    fn unauthenticated_limits() {
        let limits = Limits {
            max_bulk_len: 1 << 20,
            max_multibulk_len: 1 << 20,
            unauthenticated: true,
        };
        let decode = |input: &[u8]| {
            let mut buf = BytesMut::from(input);
            RequestDecoder::default().decode(&mut buf, &limits)
        };
        assert_eq!(
            decode(b"*11\r\n"),
            Err(protocol_error("unauthenticated multibulk length"))
        );
        assert_eq!(
            decode(b"*1\r\n$16385\r\n"),
            Err(protocol_error("unauthenticated bulk length"))
        );
        // The absolute limit is checked first, as Redis does.
        assert_eq!(
            decode(b"*3000000\r\n"),
            Err(protocol_error("invalid multibulk length"))
        );
        assert!(matches!(decode(b"*10\r\n$16384\r\n"), Ok(None)));
    }
}
