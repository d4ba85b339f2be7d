//! TLS for Redis clients on the TLS port and mutual TLS between nodes, on
//! rustls with the ring provider, reloaded from disk without a restart.
//!
//! One [`TlsContext`] per server holds the configs built from the
//! certificate, key and CA files. Every handshake takes the configs current
//! at that moment, so a reload (on SIGHUP, or when the files change) affects
//! new connections only; established ones keep the session they negotiated.
//! A reload that fails (a missing file, a key that does not match) keeps the
//! previous configs and says so in the log.

pub(crate) mod der;
mod identity;
mod transport;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use raftlimit_raft::NodeId;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use identity::{
    node_dns_name, node_id_of, parse_node_dns_name, CertSummary, IdentityError, NODE_DOMAIN,
};
pub use transport::TlsTransport;

use crate::config::{CertUser, ClientAuth, TlsConfig, TlsVersion};
use crate::error::ServerError;

/// What the TLS handshake established about a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsPeer {
    /// The client's certificate, verified against the CA; `None` when the
    /// client presented none (`client_auth = "off"` or `"optional"`).
    pub certificate: Option<CertSummary>,
    /// The user this certificate authenticates (`auth_clients_user = "cn"`:
    /// the subject's common name), as Redis's `tls-auth-clients-user CN`.
    pub user: Option<String>,
}

/// Longest a TLS handshake may take before the connection is dropped, so
/// half-open connections cannot pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider every config here is built with: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process-wide default provider, for libraries that
/// build rustls configs without naming one. Does nothing if one is set.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn tls_error(path: &Path, what: impl std::fmt::Display) -> ServerError {
    ServerError::Tls(format!("{}: {what}", path.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|e| tls_error(path, e))
}

/// Every certificate in a PEM file, in order (leaf first for a chain).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, e))?;
    if certs.is_empty() {
        return Err(tls_error(path, "no certificate found"));
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| tls_error(path, e))
}

fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, ServerError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| tls_error(path, e))?;
    }
    Ok(Arc::new(roots))
}

static TLS12_AND_13: [&SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];
static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];

fn versions(min: TlsVersion) -> &'static [&'static SupportedProtocolVersion] {
    match min {
        TlsVersion::Tls12 => &TLS12_AND_13,
        TlsVersion::Tls13 => &TLS13_ONLY,
    }
}

/// Whether a common name can be a user name: as Redis's ACL names, no
/// spaces or control characters (they would also break CLIENT LIST).
fn valid_user_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The configs built from one reading of the files.
struct Material {
    clients: TlsAcceptor,
    peers_in: TlsAcceptor,
    peers_out: TlsConnector,
    certificate: CertSummary,
}

fn build(config: &TlsConfig, node_id: NodeId) -> Result<Material, ServerError> {
    let provider = provider();
    let versions = versions(config.min_version);
    let chain = load_certs(&config.cert_file)?;
    let key = load_key(&config.key_file)?;
    let roots = load_roots(&config.ca_file)?;

    let leaf = chain
        .first()
        .ok_or_else(|| tls_error(&config.cert_file, "no certificate found"))?;
    let certificate = CertSummary::of(leaf)
        .ok_or_else(|| tls_error(&config.cert_file, "certificate cannot be parsed"))?;
    // Peers check this name when they connect to us: fail at startup (or
    // refuse the reload) rather than at the first election.
    match node_id_of(leaf) {
        Ok(id) if id == node_id => {}
        Ok(id) => {
            return Err(tls_error(
                &config.cert_file,
                format!("certificate is for node {id}, this is node {node_id}"),
            ))
        }
        Err(err) => {
            return Err(tls_error(
                &config.cert_file,
                format!("{err}; this is node {node_id}"),
            ))
        }
    }

    let tls = |e: rustls::Error| ServerError::Tls(e.to_string());
    let verifier = |optional: bool| {
        let builder = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder.build().map_err(|e| tls_error(&config.ca_file, e))
    };
    let client_verifier = match config.client_auth {
        ClientAuth::Off => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::Optional => verifier(true)?,
        ClientAuth::Required => verifier(false)?,
    };
    let clients = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(tls)?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| tls_error(&config.key_file, e))?;
    // Between nodes a certificate is always required.
    let peers_in = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(tls)?
        .with_client_cert_verifier(verifier(false)?)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| tls_error(&config.key_file, e))?;
    let peers_out = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(tls)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| tls_error(&config.key_file, e))?;
    Ok(Material {
        clients: TlsAcceptor::from(Arc::new(clients)),
        peers_in: TlsAcceptor::from(Arc::new(peers_in)),
        peers_out: TlsConnector::from(Arc::new(peers_out)),
        certificate,
    })
}

/// Modification time and length of each file, to notice changes.
type Stamps = Vec<Option<(SystemTime, u64)>>;

fn stamps(config: &TlsConfig) -> Stamps {
    [&config.cert_file, &config.key_file, &config.ca_file]
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

/// The TLS state of one server: the current configs and how to rebuild them.
pub struct TlsContext {
    config: TlsConfig,
    node_id: NodeId,
    current: RwLock<Arc<Material>>,
    stamps: Mutex<Stamps>,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("certificate", &self.certificate())
            .finish_non_exhaustive()
    }
}

impl TlsContext {
    /// Reads the files and builds the configs; fails on any problem.
    pub fn load(config: &TlsConfig, node_id: NodeId) -> Result<Arc<TlsContext>, ServerError> {
        let stamps = stamps(config);
        let material = build(config, node_id)?;
        Ok(Arc::new(TlsContext {
            config: config.clone(),
            node_id,
            current: RwLock::new(Arc::new(material)),
            stamps: Mutex::new(stamps),
        }))
    }

    pub fn config(&self) -> &TlsConfig {
        &self.config
    }

    /// The certificate this node presents now.
    pub fn certificate(&self) -> CertSummary {
        self.current.read().certificate.clone()
    }

    fn material(&self) -> Arc<Material> {
        self.current.read().clone()
    }

    /// Re-reads the files. New handshakes use the new certificate; on error
    /// the previous one stays in use.
    pub fn reload(&self) -> Result<CertSummary, ServerError> {
        *self.stamps.lock() = stamps(&self.config);
        let material = build(&self.config, self.node_id)?;
        let certificate = material.certificate.clone();
        *self.current.write() = Arc::new(material);
        Ok(certificate)
    }

    /// Reloads, logging the outcome (SIGHUP and the file watcher use this).
    pub fn reload_and_log(&self, why: &str) {
        match self.reload() {
            Ok(cert) => tracing::info!(
                why,
                cn = cert.common_name.as_deref().unwrap_or(""),
                serial = %cert.serial,
                not_after = cert.not_after,
                "TLS certificates reloaded"
            ),
            Err(err) => {
                tracing::warn!(why, %err, "TLS reload failed; keeping the previous certificates")
            }
        }
    }

    /// Whether any of the files changed since they were last read.
    pub fn files_changed(&self) -> bool {
        *self.stamps.lock() != stamps(&self.config)
    }

    /// Polls the files every `reload_interval_ms` and reloads when they
    /// change. Returns at once when polling is disabled.
    pub async fn watch(self: Arc<Self>) {
        if self.config.reload_interval_ms == 0 {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.reload_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.files_changed() {
                self.reload_and_log("files changed");
            }
        }
    }

    /// The handshake with a Redis client on the TLS port, bounded by
    /// [`HANDSHAKE_TIMEOUT`]. Plaintext or a rejected certificate ends here.
    pub async fn accept_client(
        &self,
        tcp: TcpStream,
    ) -> io::Result<(TlsStream<TcpStream>, TlsPeer)> {
        let acceptor = self.material().clients.clone();
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(CertSummary::of);
        let user = match self.config.auth_clients_user {
            CertUser::Cn => certificate
                .as_ref()
                .and_then(|c| c.common_name.clone())
                .filter(|cn| valid_user_name(cn)),
            CertUser::Off => None,
        };
        Ok((stream, TlsPeer { certificate, user }))
    }

    fn peer_acceptor(&self) -> TlsAcceptor {
        self.material().peers_in.clone()
    }

    fn peer_connector(&self) -> TlsConnector {
        self.material().peers_out.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::certs::{Authority, Leaf};

    fn settings(dir: &Path, node: &str) -> TlsConfig {
        TlsConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            cert_file: dir.join(format!("{node}.crt")),
            key_file: dir.join(format!("{node}.key")),
            ca_file: dir.join("ca.crt"),
            client_auth: ClientAuth::Required,
            auth_clients_user: CertUser::Off,
            plaintext: false,
            min_version: TlsVersion::Tls12,
            reload_interval_ms: 0,
        }
    }

    #[test]
    fn a_node_must_hold_its_own_certificate_and_bad_reloads_keep_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::generate("unit CA").unwrap();
        ca.write(dir.path(), "ca").unwrap();
        ca.issue(&Leaf::node(1))
            .unwrap()
            .write(dir.path(), "node1")
            .unwrap();
        ca.issue(&Leaf::client("client"))
            .unwrap()
            .write(dir.path(), "client")
            .unwrap();

        // Node 2 cannot start with node 1's certificate, nor with a client's.
        let err = TlsContext::load(&settings(dir.path(), "node1"), 2).unwrap_err();
        assert!(
            err.to_string()
                .contains("certificate is for node 1, this is node 2"),
            "{err}"
        );
        assert!(TlsContext::load(&settings(dir.path(), "client"), 1).is_err());

        let tls = TlsContext::load(&settings(dir.path(), "node1"), 1).unwrap();
        let first = tls.certificate();
        assert_eq!(first.node, Some(1));
        assert!(!tls.files_changed());

        // A key that does not match the certificate is refused; the
        // certificate in use stays.
        let other = ca.issue(&Leaf::node(1)).unwrap();
        std::fs::write(dir.path().join("node1.key"), &other.key_pem).unwrap();
        assert!(tls.files_changed());
        assert!(tls.reload().is_err());
        assert_eq!(tls.certificate(), first);

        // The matching certificate completes the rotation.
        std::fs::write(dir.path().join("node1.crt"), &other.cert_pem).unwrap();
        let second = tls.reload().unwrap();
        assert_ne!(second.serial, first.serial);
        assert_eq!(tls.certificate(), second);
    }

    #[test]
    fn common_names_that_cannot_be_user_names() {
        assert!(valid_user_name("alice"));
        assert!(valid_user_name("svc:limiter@prod"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name("has space"));
        assert!(!valid_user_name("tab\there"));
        assert!(!valid_user_name("nul\0"));
    }
}
