//! Connecting to a target: TCP with `TCP_NODELAY`, optional TLS (rustls with
//! the ring provider, as the server uses, client certificate optional) and
//! optional AUTH, plus the one-off requests a run makes before it starts.
//!
//! Setup requests (AUTH, SCRIPT LOAD, the check that a target answers the
//! workload's command) go through [`Conn::call`], which reads exactly one
//! reply; the measured traffic uses the stream directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::resp::{reply_len, reply_text, Arg, Template};
use super::BenchError;

/// TLS settings for a target.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// CA certificate(s) that signed the server's certificate (PEM).
    pub ca: PathBuf,
    /// Client certificate chain (PEM), for servers that require one.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key: Option<PathBuf>,
    /// Name verified in the server's certificate.
    pub server_name: String,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// RESP address.
    pub addr: SocketAddr,
    /// TLS, when the port speaks TLS.
    pub tls: Option<TlsOptions>,
    /// ACL user for AUTH (`default` when only a password is given).
    pub user: Option<String>,
    /// Password; AUTH is sent when set.
    pub password: Option<String>,
}

impl Target {
    /// A plaintext target without AUTH.
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            tls: None,
            user: None,
            password: None,
        }
    }
}

/// A ready-to-use TLS connector, built once per run and shared by every connection.
#[derive(Clone)]
pub struct Connector {
    target: Target,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("addr", &self.target.addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// One connection, plaintext or TLS.
pub enum Conn {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Plain(_) => "Conn::Plain",
            Conn::Tls(_) => "Conn::Tls",
        })
    }
}

/// How long connecting, the handshake and AUTH may take together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Connector {
    /// Loads certificates and keys once.
    pub fn new(target: &Target) -> Result<Self, BenchError> {
        let tls = match &target.tls {
            None => None,
            Some(opts) => {
                let config = client_config(opts)?;
                let name = ServerName::try_from(opts.server_name.clone()).map_err(|e| {
                    BenchError::Config(format!("TLS server name {:?}: {e}", opts.server_name))
                })?;
                Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
            }
        };
        Ok(Self {
            target: target.clone(),
            tls,
        })
    }

    /// The target this connector reaches.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Connects, handshakes and authenticates, within [`CONNECT_TIMEOUT`].
    pub async fn connect(&self) -> Result<Conn, BenchError> {
        let addr = self.target.addr;
        tokio::time::timeout(CONNECT_TIMEOUT, self.connect_inner())
            .await
            .map_err(|_| BenchError::Io(format!("connecting to {addr} timed out")))?
    }

    async fn connect_inner(&self) -> Result<Conn, BenchError> {
        let addr = self.target.addr;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::Io(format!("connect {addr}: {e}")))?;
        // One small request at a time: Nagle would hold requests back.
        tcp.set_nodelay(true)
            .map_err(|e| BenchError::Io(format!("TCP_NODELAY: {e}")))?;
        let mut conn = match &self.tls {
            None => Conn::Plain(tcp),
            Some((connector, name)) => Conn::Tls(Box::new(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| BenchError::Io(format!("TLS handshake with {addr}: {e}")))?,
            )),
        };
        if let Some(password) = &self.target.password {
            let user = self.target.user.as_deref().unwrap_or("default");
            let reply = conn
                .call(&[Arg::lit("AUTH"), Arg::lit(user), Arg::lit(password)])
                .await?;
            if !reply.starts_with(b"+") {
                return Err(BenchError::Target(format!(
                    "AUTH as {user}: {}",
                    reply_text(&reply)
                )));
            }
        }
        Ok(conn)
    }
}

impl Conn {
    /// Sends one command (keys numbered 0) and returns its whole raw reply.
    pub async fn call(&mut self, args: &[Arg]) -> Result<Vec<u8>, BenchError> {
        let request = Template::new(args);
        match self {
            Conn::Plain(s) => call_on(s, request.bytes()).await,
            Conn::Tls(s) => call_on(s.as_mut(), request.bytes()).await,
        }
    }
}

async fn call_on<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    request: &[u8],
) -> Result<Vec<u8>, BenchError> {
    s.write_all(request)
        .await
        .map_err(|e| BenchError::Io(format!("write: {e}")))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((len, _)) = reply_len(&buf)? {
            buf.truncate(len);
            return Ok(buf);
        }
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| BenchError::Io(format!("read: {e}")))?;
        if n == 0 {
            return Err(BenchError::Io("connection closed by the server".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn read_pem(path: &PathBuf) -> Result<Vec<u8>, BenchError> {
    std::fs::read(path).map_err(|e| BenchError::Config(format!("{}: {e}", path.display())))
}

fn client_config(opts: &TlsOptions) -> Result<rustls::ClientConfig, BenchError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| BenchError::Config(format!("{what}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read_pem(&opts.ca)?) {
        roots
            .add(cert.map_err(|e| bad("CA certificate", &e))?)
            .map_err(|e| bad("CA certificate", &e))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS versions", &e))?
    .with_root_certificates(roots);
    match (&opts.cert, &opts.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&read_pem(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("client certificate", &e))?;
            let key = PrivateKeyDer::from_pem_slice(&read_pem(key)?)
                .map_err(|e| bad("client key", &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("client certificate", &e))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(BenchError::Config(
            "a client certificate needs both --tls-cert and --tls-key".into(),
        )),
    }
}
