//! A small async RESP2 client for the workloads: plain TCP or TLS (CA, optional client certificate), AUTH, one request at a time.
//!
//! The harness needs exact control over what a reply means (an error class
//! decides between `Fail` and `Info`) and over timeouts, so it speaks RESP
//! itself instead of going through a general-purpose client that retries or
//! reconnects behind its back. Every length the server sends is checked
//! against the bytes actually received before anything is allocated for it.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cluster::{ClientTls, Endpoint};
use crate::Error;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    /// `+OK` and other status replies.
    Simple(String),
    /// `-ERR …`: the whole error text, code included.
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` bulk string; `None` for the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `*n` array; `None` for the null array.
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// The bulk or simple string as UTF-8 text, if it is one.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Resp::Simple(s) => Some(s.clone()),
            Resp::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection to one node.
pub struct Client {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

/// Deepest array nesting accepted from a server (replies here are at most two deep).
const MAX_DEPTH: usize = 8;

impl Client {
    /// Connects (TCP, then TLS when configured), and authenticates when the
    /// endpoint has a password; all within `timeout`.
    pub async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Self, Error> {
        tokio::time::timeout(timeout, Self::connect_inner(endpoint))
            .await
            .map_err(|_| Error::Client(format!("connecting to {} timed out", endpoint.addr)))?
    }

    async fn connect_inner(endpoint: &Endpoint) -> Result<Self, Error> {
        let tcp = TcpStream::connect(endpoint.addr)
            .await
            .map_err(|e| Error::Client(format!("connect {}: {e}", endpoint.addr)))?;
        // Requests are small and strictly request/response: Nagle would only add latency.
        tcp.set_nodelay(true)
            .map_err(|e| Error::Client(format!("nodelay: {e}")))?;
        let stream: Box<dyn Stream> = match &endpoint.tls {
            None => Box::new(tcp),
            Some(tls) => {
                let config = tls_config(tls)?;
                let name = ServerName::try_from(tls.server_name.clone()).map_err(|e| {
                    Error::Client(format!("server name {:?}: {e}", tls.server_name))
                })?;
                let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        Error::Client(format!("TLS handshake with {}: {e}", endpoint.addr))
                    })?;
                Box::new(stream)
            }
        };
        let mut client = Self {
            stream,
            buf: Vec::new(),
        };
        if let Some(password) = &endpoint.password {
            let user = endpoint.user.as_deref().unwrap_or("default");
            match client.call(&["AUTH", user, password]).await? {
                Resp::Simple(_) => {}
                Resp::Error(e) => return Err(Error::Client(format!("AUTH: {e}"))),
                other => return Err(Error::Client(format!("AUTH: unexpected {other:?}"))),
            }
        }
        Ok(client)
    }

    /// Sends one command and reads its reply. A transport failure leaves the
    /// connection unusable; the caller drops it.
    pub async fn call<S: AsRef<[u8]>>(&mut self, argv: &[S]) -> Result<Resp, Error> {
        self.send(argv).await?;
        self.read_reply().await
    }

    /// Sends several commands in one write, then reads one reply per command.
    pub async fn pipeline(&mut self, commands: &[Vec<String>]) -> Result<Vec<Resp>, Error> {
        let mut out = Vec::new();
        for argv in commands {
            encode(&mut out, argv);
        }
        self.write_all(&out).await?;
        let mut replies = Vec::with_capacity(commands.len());
        for _ in commands {
            replies.push(self.read_reply().await?);
        }
        Ok(replies)
    }

    async fn send<S: AsRef<[u8]>>(&mut self, argv: &[S]) -> Result<(), Error> {
        let mut out = Vec::new();
        encode(&mut out, argv);
        self.write_all(&out).await
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| Error::Client(format!("write: {e}")))?;
        self.stream
            .flush()
            .await
            .map_err(|e| Error::Client(format!("flush: {e}")))
    }

    async fn read_reply(&mut self) -> Result<Resp, Error> {
        loop {
            if let Some((reply, used)) = parse(&self.buf, 0)? {
                self.buf.drain(..used);
                return Ok(reply);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| Error::Client(format!("read: {e}")))?;
            if n == 0 {
                return Err(Error::Client("connection closed by the server".into()));
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

fn encode<S: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[S]) {
    out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for arg in argv {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses one reply from the start of `buf`: `None` when more bytes are needed.
fn parse(buf: &[u8], depth: usize) -> Result<Option<(Resp, usize)>, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::Client("reply nested too deeply".into()));
    }
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let Some((&tag, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let line = String::from_utf8_lossy(rest.get(..end.saturating_sub(1)).unwrap_or_default());
    let after = end + 2;
    let int = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| Error::Client(format!("bad integer in reply: {s:?}")))
    };
    match tag {
        b'+' => Ok(Some((Resp::Simple(line.into_owned()), after))),
        b'-' => Ok(Some((Resp::Error(line.into_owned()), after))),
        b':' => Ok(Some((Resp::Int(int(&line)?), after))),
        b'$' => {
            let len = int(&line)?;
            if len < 0 {
                return Ok(Some((Resp::Bulk(None), after)));
            }
            let len = usize::try_from(len).map_err(|_| Error::Client("bulk length".into()))?;
            // Only bytes already received are sliced: a huge claimed length
            // just waits for data and never allocates up front.
            match buf.get(after..after.saturating_add(len)) {
                Some(data) if buf.len() >= after + len + 2 => {
                    Ok(Some((Resp::Bulk(Some(data.to_vec())), after + len + 2)))
                }
                _ => Ok(None),
            }
        }
        b'*' => {
            let count = int(&line)?;
            if count < 0 {
                return Ok(Some((Resp::Array(None), after)));
            }
            let mut items = Vec::new();
            let mut pos = after;
            for _ in 0..count {
                match parse(buf.get(pos..).unwrap_or_default(), depth + 1)? {
                    Some((item, used)) => {
                        items.push(item);
                        pos += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Resp::Array(Some(items)), pos)))
        }
        other => Err(Error::Client(format!(
            "unexpected reply type byte {other:#04x}"
        ))),
    }
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::file(path, e))
}

/// A rustls client config (ring provider) trusting `tls.ca`, with the client
/// certificate when one is configured.
fn tls_config(tls: &ClientTls) -> Result<rustls::ClientConfig, Error> {
    let bad = |what: &str, e: &dyn std::fmt::Display| Error::Client(format!("{what}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read_file(&tls.ca)?) {
        let cert = cert.map_err(|e| bad("CA certificate", &e))?;
        roots.add(cert).map_err(|e| bad("CA certificate", &e))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS versions", &e))?
    .with_root_certificates(roots);
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&read_file(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("client certificate", &e))?;
            let key = PrivateKeyDer::from_pem_slice(&read_file(key)?)
                .map_err(|e| bad("client key", &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("client certificate", &e))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(Error::Config(
            "a client certificate needs both cert and key".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_replies_and_waits_for_more() {
        let reply = b"*5\r\n:1\r\n:5\r\n:4\r\n:-1\r\n$3\r\nabc\r\n";
        let (parsed, used) = parse(reply, 0).ok().flatten().unwrap_or((Resp::Int(0), 0));
        assert_eq!(used, reply.len());
        assert_eq!(
            parsed,
            Resp::Array(Some(vec![
                Resp::Int(1),
                Resp::Int(5),
                Resp::Int(4),
                Resp::Int(-1),
                Resp::Bulk(Some(b"abc".to_vec())),
            ]))
        );
        for cut in 0..reply.len() {
            assert!(matches!(parse(&reply[..cut], 0), Ok(None)), "cut at {cut}");
        }
        assert!(matches!(
            parse(b"$-1\r\n", 0),
            Ok(Some((Resp::Bulk(None), 5)))
        ));
        assert!(parse(b"?x\r\n", 0).is_err());
    }
}
