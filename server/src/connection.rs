//! A client connection: the only place that touches client bytes.
//!
//! Requests are decoded by the incremental parser of the `raftlimit-resp`
//! crate, which enforces every length and count limit before it stores
//! anything, so a hostile length prefix cannot make the server allocate (it
//! is a crate of its own so that the fuzz targets build it without RocksDB).
//! Replies are encoded with the `redis-protocol` crate as RESP2 or RESP3,
//! whichever the client chose with HELLO.
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

pub use raftlimit_resp::{
    Limits, ProtocolError, RequestDecoder, UNAUTHENTICATED_MAX_BULK_LEN,
    UNAUTHENTICATED_MAX_MULTIBULK_LEN,
};

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
        Reply::ByProtocol { .. } | Reply::Decision(_) => to_resp2(&reply.for_protocol(false)),
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
        Reply::ByProtocol { .. } | Reply::Decision(_) => to_resp3(&reply.for_protocol(true)),
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
