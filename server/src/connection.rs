//! A client connection: the only place that touches client bytes.
//!
//! Requests are decoded here by an incremental parser that enforces every
//! length and count limit before it stores anything, so a hostile length
//! prefix cannot make the server allocate. Replies are encoded with the
//! `redis-protocol` crate as RESP2 or RESP3, whichever the client chose with
//! HELLO.
//!
//! We parse requests ourselves instead of with `redis-protocol`'s decoder
//! because that decoder re-parses a partial frame from its start on every
//! read (quadratic on a large bulk) and cannot apply per-client limits such
//! as the pre-AUTH caps.

use bytes::{Buf, Bytes, BytesMut};
use raftlimit_raft::Reply;
use redis_protocol::bytes_utils::Str;
use redis_protocol::resp2::types::BytesFrame as Resp2Frame;
use redis_protocol::resp3::types::{BytesFrame as Resp3Frame, FrameMap, FrameSet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest inline command or `*`/`$` header line, as in Redis.
const MAX_INLINE_LEN: usize = 64 * 1024;
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

/// A request that cannot be parsed; the connection replies and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

fn protocol_error(text: impl Into<String>) -> ProtocolError {
    ProtocolError(text.into())
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

/// Splits an inline command into arguments, honouring double and single
/// quotes and the escapes Redis accepts inside double quotes.
fn split_inline(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let unbalanced = || protocol_error("unbalanced quotes in request");
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let mut arg = Vec::new();
        match line[i] {
            b'"' => {
                i += 1;
                loop {
                    let c = *line.get(i).ok_or_else(unbalanced)?;
                    i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            let e = *line.get(i).ok_or_else(unbalanced)?;
                            i += 1;
                            arg.push(match e {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                b'x' if i + 1 < line.len()
                                    && line[i].is_ascii_hexdigit()
                                    && line[i + 1].is_ascii_hexdigit() =>
                                {
                                    let hex = std::str::from_utf8(&line[i..i + 2]).unwrap_or("0");
                                    i += 2;
                                    u8::from_str_radix(hex, 16).unwrap_or(0)
                                }
                                other => other,
                            });
                        }
                        other => arg.push(other),
                    }
                }
                if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return Err(unbalanced());
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    let c = *line.get(i).ok_or_else(unbalanced)?;
                    i += 1;
                    if c == b'\'' {
                        break;
                    }
                    if c == b'\\' && line.get(i) == Some(&b'\'') {
                        arg.push(b'\'');
                        i += 1;
                    } else {
                        arg.push(c);
                    }
                }
                if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return Err(unbalanced());
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    arg.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(Bytes::from(arg));
    }
    Ok(args)
}

/// RESP version negotiated with HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Resp2,
    Resp3,
}

fn to_resp2(reply: &Reply) -> Resp2Frame {
    match reply {
        Reply::Ok => Resp2Frame::SimpleString(Bytes::from_static(b"OK")),
        Reply::Status(s) => Resp2Frame::SimpleString(Bytes::from(s.clone())),
        Reply::Error(e) => Resp2Frame::Error(Str::from(sanitize_line(e))),
        Reply::Int(n) => Resp2Frame::Integer(*n),
        Reply::Bulk(b) => Resp2Frame::BulkString(b.clone()),
        Reply::Nil | Reply::NilArray => Resp2Frame::Null,
        Reply::Array(items) | Reply::Set(items) => {
            Resp2Frame::Array(items.iter().map(to_resp2).collect())
        }
        Reply::Map(pairs) | Reply::Pairs(pairs) => Resp2Frame::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [to_resp2(k), to_resp2(v)])
                .collect(),
        ),
        Reply::Double(d) => Resp2Frame::BulkString(Bytes::from(format_double(*d))),
        Reply::Bool(b) => Resp2Frame::Integer(i64::from(*b)),
        Reply::ByProtocol { resp2, .. } => to_resp2(resp2),
    }
}

fn to_resp3(reply: &Reply) -> Resp3Frame {
    match reply {
        Reply::Ok => Resp3Frame::SimpleString {
            data: Bytes::from_static(b"OK"),
            attributes: None,
        },
        Reply::Status(s) => Resp3Frame::SimpleString {
            data: Bytes::from(s.clone()),
            attributes: None,
        },
        Reply::Error(e) => Resp3Frame::SimpleError {
            data: Str::from(sanitize_line(e)),
            attributes: None,
        },
        Reply::Int(n) => Resp3Frame::Number {
            data: *n,
            attributes: None,
        },
        Reply::Bulk(b) => Resp3Frame::BlobString {
            data: b.clone(),
            attributes: None,
        },
        Reply::Nil | Reply::NilArray => Resp3Frame::Null,
        Reply::Array(items) => Resp3Frame::Array {
            data: items.iter().map(to_resp3).collect(),
            attributes: None,
        },
        Reply::Set(items) => Resp3Frame::Set {
            data: items.iter().map(to_resp3).collect::<FrameSet<_>>(),
            attributes: None,
        },
        Reply::Map(pairs) => Resp3Frame::Map {
            data: pairs
                .iter()
                .map(|(k, v)| (to_resp3(k), to_resp3(v)))
                .collect::<FrameMap<_, _>>(),
            attributes: None,
        },
        Reply::Double(d) => Resp3Frame::Double {
            data: *d,
            attributes: None,
        },
        Reply::Bool(b) => Resp3Frame::Boolean {
            data: *b,
            attributes: None,
        },
        Reply::ByProtocol { resp3, .. } => to_resp3(resp3),
        Reply::Pairs(pairs) => Resp3Frame::Array {
            data: pairs
                .iter()
                .map(|(a, b)| Resp3Frame::Array {
                    data: vec![to_resp3(a), to_resp3(b)],
                    attributes: None,
                })
                .collect(),
            attributes: None,
        },
    }
}

/// Simple strings and errors cannot carry line breaks.
fn sanitize_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// Doubles as Redis prints them in RESP2 bulk strings (`d2string`).
pub fn format_double(d: f64) -> String {
    raftlimit_raft::reply::format_double(d)
}

/// Appends the encoding of `reply` to `out`.
pub fn encode_reply(out: &mut BytesMut, reply: &Reply, protocol: Protocol) {
    // RESP2 has a distinct null array, which redis-protocol's RESP2 encoder
    // does not model; write it directly.
    if protocol == Protocol::Resp2 && *reply == Reply::NilArray {
        out.extend_from_slice(b"*-1\r\n");
        return;
    }
    let result = match protocol {
        Protocol::Resp2 => {
            redis_protocol::resp2::encode::extend_encode(out, &to_resp2(reply), false)
        }
        Protocol::Resp3 => {
            redis_protocol::resp3::encode::complete::extend_encode(out, &to_resp3(reply), false)
        }
    };
    if let Err(err) = result {
        tracing::error!(%err, "cannot encode reply");
        out.extend_from_slice(b"-ERR internal error encoding reply\r\n");
    }
}

/// What [`Connection::exchange`] ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// Every queued reply was written.
    Flushed,
    /// The client sent more before its replies were all written.
    Input,
    /// The client closed its side.
    Eof,
}

/// Buffers larger than this are released once empty, so an idle connection
/// stays small after a large request or reply.
const KEEP_BUFFER: usize = 64 * 1024;

/// A client's socket with its read and write buffers.
pub struct Connection<S> {
    stream: S,
    read_buf: BytesMut,
    write_buf: BytesMut,
    decoder: RequestDecoder,
    pub protocol: Protocol,
    last_write: Option<std::time::Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S) -> Self {
        // Buffers are allocated on first use: an idle connection costs
        // little more than its socket and task.
        Connection {
            stream,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            decoder: RequestDecoder::default(),
            protocol: Protocol::Resp2,
            last_write: None,
        }
    }

    /// The next complete command already buffered, without reading.
    pub fn buffered_command(
        &mut self,
        limits: &Limits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        self.decoder.decode(&mut self.read_buf, limits)
    }

    /// Reads more bytes from the socket. Returns false on EOF.
    pub async fn fill(&mut self) -> std::io::Result<bool> {
        // Grow gradually: the buffer follows bytes received, never a claim.
        if self.read_buf.is_empty() && self.read_buf.capacity() > KEEP_BUFFER {
            self.read_buf = BytesMut::new();
        }
        if self.read_buf.capacity() - self.read_buf.len() < 4096 {
            let grow = if self.read_buf.capacity() == 0 {
                16 * 1024
            } else {
                64 * 1024
            };
            self.read_buf.reserve(grow);
        }
        Ok(self.stream.read_buf(&mut self.read_buf).await? > 0)
    }

    /// Writes queued replies; while the client does not take them, keeps
    /// reading its requests, so a client that never reads its replies piles
    /// them up (and hits the output limit) instead of stalling here.
    pub async fn exchange(&mut self) -> std::io::Result<Exchange> {
        std::future::poll_fn(|cx| self.poll_exchange(cx)).await
    }

    fn poll_exchange(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<Exchange>> {
        use std::pin::Pin;
        use std::task::Poll;
        loop {
            if self.write_buf.is_empty() {
                match Pin::new(&mut self.stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        if self.write_buf.capacity() > KEEP_BUFFER {
                            self.write_buf = BytesMut::new();
                        }
                        return Poll::Ready(Ok(Exchange::Flushed));
                    }
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => break,
                }
            }
            match Pin::new(&mut self.stream).poll_write(cx, &self.write_buf) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    self.write_buf.advance(n);
                    self.last_write = Some(std::time::Instant::now());
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => break,
            }
        }
        let mut scratch = [0u8; 8 * 1024];
        let mut chunk = tokio::io::ReadBuf::new(&mut scratch);
        match Pin::new(&mut self.stream).poll_read(cx, &mut chunk) {
            Poll::Ready(Ok(())) if chunk.filled().is_empty() => Poll::Ready(Ok(Exchange::Eof)),
            Poll::Ready(Ok(())) => {
                self.read_buf.extend_from_slice(chunk.filled());
                Poll::Ready(Ok(Exchange::Input))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// When the client last took some of its replies.
    pub fn last_write(&self) -> Option<std::time::Instant> {
        self.last_write
    }

    /// The start of unparsed input, to recognise HTTP sent to this port.
    pub fn pending_input(&self) -> &[u8] {
        RequestDecoder::peek_inline_start(&self.read_buf)
    }

    pub fn queue(&mut self, reply: &Reply) {
        encode_reply(&mut self.write_buf, reply, self.protocol);
    }

    /// Bytes queued but not yet written.
    pub fn queued_len(&self) -> usize {
        self.write_buf.len()
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.write_buf.is_empty() {
            self.stream.write_all(&self.write_buf).await?;
            self.write_buf.clear();
            self.stream.flush().await?;
        }
        Ok(())
    }

    /// Flushes and closes the write side (over TLS, sends close_notify).
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.flush().await?;
        self.stream.shutdown().await
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

    #[test]
    fn encodes_both_protocols() {
        let mut out = BytesMut::new();
        let map = Reply::Map(vec![(Reply::bulk("a"), Reply::Bool(true))]);
        encode_reply(&mut out, &map, Protocol::Resp2);
        assert_eq!(&out[..], b"*2\r\n$1\r\na\r\n:1\r\n");
        out.clear();
        encode_reply(&mut out, &map, Protocol::Resp3);
        assert_eq!(&out[..], b"%1\r\n$1\r\na\r\n#t\r\n");
        out.clear();
        encode_reply(&mut out, &Reply::Nil, Protocol::Resp3);
        assert_eq!(&out[..], b"_\r\n");
        out.clear();
        encode_reply(&mut out, &Reply::NilArray, Protocol::Resp2);
        assert_eq!(&out[..], b"*-1\r\n");
    }

    #[test]
    fn pairs_nest_in_resp3_and_flatten_in_resp2() {
        let pairs = Reply::Pairs(vec![
            (Reply::bulk("a"), Reply::Double(1.5)),
            (Reply::bulk("b"), Reply::Double(f64::INFINITY)),
        ]);
        let mut out = BytesMut::new();
        encode_reply(&mut out, &pairs, Protocol::Resp2);
        assert_eq!(
            &out[..],
            b"*4\r\n$1\r\na\r\n$3\r\n1.5\r\n$1\r\nb\r\n$3\r\ninf\r\n"
        );
        out.clear();
        encode_reply(&mut out, &pairs, Protocol::Resp3);
        assert_eq!(
            &out[..],
            b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,inf\r\n"
        );
        out.clear();
        encode_reply(&mut out, &Reply::Double(1e-7), Protocol::Resp2);
        assert_eq!(&out[..], b"$4\r\n1e-7\r\n");
    }
}
