//! Certificates for development and tests (`raftlimit-server certs`, `make
//! certs`): a CA, node certificates whose DNS names prove node identity, and
//! client certificates, built with rcgen on ring.
//!
//! A node certificate for node `N` has the common name `node-N` and the
//! subject alternative names `node-N.raftlimit` (its identity between
//! nodes), `nodeN` (the docker service name), `localhost`, `127.0.0.1` and
//! `::1`; it is valid for both server and client authentication, since a
//! node is both towards its peers. A client certificate is valid for client
//! authentication only and names no node, so it can never act as one.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use raftlimit_raft::NodeId;
use rcgen::string::{BmpString, Ia5String, PrintableString, TeletexString, UniversalString};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
    SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::error::ServerError;
use crate::tls::der;
use crate::tls::node_dns_name;

fn certs_error(what: impl std::fmt::Display) -> ServerError {
    ServerError::Certs(what.to_string())
}

fn now() -> Result<OffsetDateTime, ServerError> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| certs_error(format!("system clock: {e}")))?
        .as_secs();
    OffsetDateTime::from_unix_timestamp(secs as i64).map_err(certs_error)
}

/// A random positive 128-bit serial number.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// Valid from an hour ago (tolerating clock skew) for `days` days.
fn validity(params: &mut CertificateParams, days: i64) -> Result<(), ServerError> {
    let now = now()?;
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
    Ok(())
}

/// A certificate authority able to sign node and client certificates.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA's subject as encoded in its certificate: what every issued
    /// certificate's issuer field must be, byte for byte.
    subject: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// A new self-signed CA, valid for ten years.
    pub fn generate(common_name: &str) -> Result<Authority, ServerError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "raftlimit");
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        validity(&mut params, 3650)?;
        let key = KeyPair::generate().map_err(certs_error)?;
        let cert = params.self_signed(&key).map_err(certs_error)?;
        let subject = webpki::EndEntityCert::try_from(cert.der())
            .map_err(|e| certs_error(format!("generated CA: {e}")))?
            .subject()
            .to_vec();
        let key_pem = key.serialize_pem();
        Ok(Authority {
            cert_pem: cert.pem(),
            key_pem,
            subject,
            issuer: Issuer::new(params, key),
        })
    }

    /// An existing CA from its PEM certificate and key. Its name must be
    /// one that signing reproduces exactly (any CA made by [`generate`]).
    ///
    /// [`generate`]: Authority::generate
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Authority, ServerError> {
        let bad_cert = |why: &dyn std::fmt::Display| certs_error(format!("CA certificate: {why}"));
        let key = KeyPair::from_pem(key_pem).map_err(|e| certs_error(format!("CA key: {e}")))?;
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| bad_cert(&e))?;
        let cert = webpki::EndEntityCert::try_from(&der).map_err(|e| bad_cert(&e))?;
        if cert.subject_public_key_info().as_ref() != key.subject_public_key_info().as_slice() {
            return Err(certs_error(
                "the CA key does not belong to the CA certificate",
            ));
        }
        let tbs = der::tbs(der.as_ref()).ok_or_else(|| bad_cert(&"cannot be parsed"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name =
            distinguished_name(tbs.subject).ok_or_else(|| bad_cert(&"unsupported subject name"))?;
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ok(Authority {
            issuer: Issuer::new(params, key),
            subject: cert.subject().to_vec(),
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }

    /// An existing CA from its PEM files.
    pub fn load(cert: &Path, key: &Path) -> Result<Authority, ServerError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|e| certs_error(format!("{}: {e}", path.display())))
        };
        Authority::from_pem(&read(cert)?, &read(key)?)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Writes `<name>.crt` and `<name>.key` (mode 0600) into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), ServerError> {
        write_pair(dir, name, &self.cert_pem, &self.key_pem)
    }

    /// Issues a certificate with a fresh key.
    pub fn issue(&self, leaf: &Leaf) -> Result<Issued, ServerError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "raftlimit");
        dn.push(DnType::CommonName, leaf.common_name.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names = leaf
            .dns_names
            .iter()
            .map(|name| {
                name.as_str()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|e| certs_error(format!("DNS name {name:?}: {e}")))
            })
            .chain(leaf.ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if leaf.server_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if leaf.client_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        validity(&mut params, leaf.valid_days)?;
        let key = KeyPair::generate().map_err(certs_error)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(certs_error)?;
        let issued = webpki::EndEntityCert::try_from(cert.der()).map_err(certs_error)?;
        if issued.issuer() != self.subject.as_slice() {
            return Err(certs_error(
                "the CA's subject name cannot be reproduced exactly; make a new CA (--new-ca)",
            ));
        }
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A name's attributes as rcgen values, in order; `None` for a string type
/// or repeated attribute rcgen cannot encode back identically.
fn distinguished_name(subject: &[u8]) -> Option<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    let mut seen = Vec::new();
    for attr in der::attributes(subject)? {
        if seen.contains(&attr.oid) {
            return None;
        }
        seen.push(attr.oid);
        let text = || std::str::from_utf8(attr.value).ok();
        let value = match attr.tag {
            der::UTF8_STRING => DnValue::Utf8String(text()?.to_owned()),
            der::PRINTABLE_STRING => {
                DnValue::PrintableString(PrintableString::try_from(text()?).ok()?)
            }
            der::IA5_STRING => DnValue::Ia5String(Ia5String::try_from(text()?).ok()?),
            der::TELETEX_STRING => DnValue::TeletexString(TeletexString::try_from(text()?).ok()?),
            der::BMP_STRING => {
                DnValue::BmpString(BmpString::from_utf16be(attr.value.to_vec()).ok()?)
            }
            der::UNIVERSAL_STRING => {
                DnValue::UniversalString(UniversalString::from_utf32be(attr.value.to_vec()).ok()?)
            }
            _ => return None,
        };
        dn.push(DnType::from_oid(&der::oid_arcs(attr.oid)?), value);
    }
    Some(dn)
}

/// What a leaf certificate should say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub server_auth: bool,
    pub client_auth: bool,
    pub valid_days: i64,
}

impl Leaf {
    /// Node `id`: proves `node-<id>.raftlimit`, and serves `node<id>`,
    /// `localhost`, `127.0.0.1` and `::1`.
    pub fn node(id: NodeId) -> Leaf {
        Leaf {
            common_name: format!("node-{id}"),
            dns_names: vec![node_dns_name(id), format!("node{id}"), "localhost".into()],
            ips: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            server_auth: true,
            client_auth: true,
            valid_days: 365,
        }
    }

    /// A Redis client named `common_name` (the user name with
    /// `auth_clients_user = "cn"`).
    pub fn client(common_name: &str) -> Leaf {
        Leaf {
            common_name: common_name.to_owned(),
            dns_names: Vec::new(),
            ips: Vec::new(),
            server_auth: false,
            client_auth: true,
            valid_days: 365,
        }
    }

    /// Adds subject alternative names: IP addresses or DNS names.
    pub fn with_names(mut self, names: &[String]) -> Leaf {
        for name in names {
            match name.parse::<IpAddr>() {
                Ok(ip) if !self.ips.contains(&ip) => self.ips.push(ip),
                Ok(_) => {}
                Err(_) if !self.dns_names.contains(name) => self.dns_names.push(name.clone()),
                Err(_) => {}
            }
        }
        self
    }
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Issued {
    /// Writes `<name>.crt` and `<name>.key` (mode 0600) into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), ServerError> {
        write_pair(dir, name, &self.cert_pem, &self.key_pem)
    }
}

/// Writes a file through a temporary file and a rename, so a server
/// watching it never reads half of it.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), ServerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| certs_error(format!("{}: {e}", path.display()));
    let file_name = path
        .file_name()
        .ok_or_else(|| certs_error(format!("{}: not a file path", path.display())))?;
    let tmp = path.with_file_name(format!(".{}.tmp", file_name.to_string_lossy()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn write_pair(
    dir: &Path,
    name: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<(PathBuf, PathBuf), ServerError> {
    std::fs::create_dir_all(dir).map_err(|e| certs_error(format!("{}: {e}", dir.display())))?;
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    // Key first: a watcher that sees the new certificate finds its key.
    write_atomic(&key, key_pem.as_bytes(), 0o600)?;
    write_atomic(&cert, cert_pem.as_bytes(), 0o644)?;
    Ok((cert, key))
}

/// What `raftlimit-server certs` generates.
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// Output directory (`deploy/tls`).
    pub dir: PathBuf,
    /// Node certificates for nodes `1..=nodes`.
    pub nodes: NodeId,
    /// Common name of the client certificate.
    pub client_cn: String,
    /// Extra names (DNS or IP) for every node certificate.
    pub extra_names: Vec<String>,
    /// Make a new CA even if `ca.crt` and `ca.key` exist.
    pub new_ca: bool,
}

/// Writes `ca.crt`/`ca.key` (kept if present, unless `new_ca`),
/// `node<N>.crt`/`node<N>.key` and `client.crt`/`client.key`. Returns the
/// files written.
pub fn generate_dev(opts: &DevCerts) -> Result<Vec<PathBuf>, ServerError> {
    let (ca_crt, ca_key) = (opts.dir.join("ca.crt"), opts.dir.join("ca.key"));
    let mut written = Vec::new();
    let ca = if !opts.new_ca && ca_crt.exists() && ca_key.exists() {
        Authority::load(&ca_crt, &ca_key)?
    } else {
        let ca = Authority::generate("raftlimit development CA")?;
        let (crt, key) = ca.write(&opts.dir, "ca")?;
        written.extend([crt, key]);
        ca
    };
    for id in 1..=opts.nodes {
        let leaf = Leaf::node(id).with_names(&opts.extra_names);
        let (crt, key) = ca.issue(&leaf)?.write(&opts.dir, &format!("node{id}"))?;
        written.extend([crt, key]);
    }
    let (crt, key) = ca
        .issue(&Leaf::client(&opts.client_cn))?
        .write(&opts.dir, "client")?;
    written.extend([crt, key]);
    Ok(written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::tls::{load_certs, node_id_of, CertSummary};

    #[test]
    fn dev_set_names_nodes_and_reuses_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let opts = DevCerts {
            dir: dir.path().to_owned(),
            nodes: 3,
            client_cn: "alice".into(),
            extra_names: vec!["raft.example".into(), "10.0.0.7".into()],
            new_ca: false,
        };
        let written = generate_dev(&opts).unwrap();
        assert_eq!(written.len(), 10);
        for id in 1..=3 {
            let certs = load_certs(&dir.path().join(format!("node{id}.crt"))).unwrap();
            assert_eq!(node_id_of(&certs[0]), Ok(id));
            let summary = CertSummary::of(&certs[0]).unwrap();
            assert_eq!(
                summary.common_name.as_deref(),
                Some(format!("node-{id}").as_str())
            );
        }
        let client = load_certs(&dir.path().join("client.crt")).unwrap();
        assert!(node_id_of(&client[0]).is_err());
        assert_eq!(
            CertSummary::of(&client[0]).unwrap().common_name.as_deref(),
            Some("alice")
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("node1.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o077, 0, "keys are private");

        // A second run keeps the CA and re-issues the leaves.
        let ca_before = std::fs::read(dir.path().join("ca.crt")).unwrap();
        let node_before = std::fs::read(dir.path().join("node1.crt")).unwrap();
        assert_eq!(generate_dev(&opts).unwrap().len(), 8);
        assert_eq!(std::fs::read(dir.path().join("ca.crt")).unwrap(), ca_before);
        assert_ne!(
            std::fs::read(dir.path().join("node1.crt")).unwrap(),
            node_before
        );
    }
}
