//! What a certificate says about its holder: the node id a peer proves, the
//! common name a client may be mapped to, and a summary for logs and tests.
//!
//! A node's identity is a DNS subject alternative name `node-<id>.raftlimit`.
//! The outbound side checks it the usual way (the peer's certificate must be
//! valid for that server name); the inbound side reads it here, after
//! rustls has verified the chain to the cluster CA.

use raftlimit_raft::NodeId;
use rustls::pki_types::CertificateDer;
use webpki::EndEntityCert;

use super::der;

/// The DNS domain under which node identities are named.
pub const NODE_DOMAIN: &str = "raftlimit";

/// The DNS name that proves node `id`: `node-<id>.raftlimit`.
pub fn node_dns_name(id: NodeId) -> String {
    format!("node-{id}.{NODE_DOMAIN}")
}

/// The node id a DNS name stands for, if it is exactly `node-<id>.raftlimit`
/// with `<id>` in canonical decimal form (so a certificate cannot name one
/// node in two spellings).
pub fn parse_node_dns_name(name: &str) -> Option<NodeId> {
    let name = name.to_ascii_lowercase();
    let digits = name
        .strip_prefix("node-")?
        .strip_suffix(&format!(".{NODE_DOMAIN}"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: NodeId = digits.parse().ok()?;
    (id.to_string() == digits).then_some(id)
}

/// Why a certificate proves no single node identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("certificate cannot be parsed")]
    Unparsable,
    #[error("certificate names no node (no DNS name node-<id>.{NODE_DOMAIN})")]
    NoNode,
    #[error("certificate names several nodes: {0:?}")]
    SeveralNodes(Vec<NodeId>),
}

fn parse<'a>(der: &'a CertificateDer<'_>) -> Option<EndEntityCert<'a>> {
    EndEntityCert::try_from(der).ok()
}

/// The node a (chain-verified) certificate proves: exactly one distinct
/// `node-<id>.raftlimit` DNS name.
pub fn node_id_of(der: &CertificateDer<'_>) -> Result<NodeId, IdentityError> {
    let cert = parse(der).ok_or(IdentityError::Unparsable)?;
    let mut ids: Vec<NodeId> = cert
        .valid_dns_names()
        .filter_map(parse_node_dns_name)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.as_slice() {
        [] => Err(IdentityError::NoNode),
        [id] => Ok(*id),
        _ => Err(IdentityError::SeveralNodes(ids)),
    }
}

/// The facts about a certificate worth logging or showing to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// The subject's first common name, if it has one that is valid UTF-8.
    pub common_name: Option<String>,
    /// The serial number in lower-case hex, no separators.
    pub serial: String,
    /// Expiry, seconds since the Unix epoch.
    pub not_after: i64,
    /// The node the certificate proves, if it proves exactly one.
    pub node: Option<NodeId>,
}

impl CertSummary {
    /// Summarizes a DER certificate; `None` if it cannot be parsed.
    pub fn of(cert: &CertificateDer<'_>) -> Option<CertSummary> {
        let parsed = parse(cert)?;
        let tbs = der::tbs(cert.as_ref())?;
        Some(CertSummary {
            common_name: der::common_name(tbs.subject),
            serial: parsed.serial().iter().map(|b| format!("{b:02x}")).collect(),
            not_after: tbs.not_after,
            node: node_id_of(cert).ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_canonical() {
        assert_eq!(parse_node_dns_name("node-1.raftlimit"), Some(1));
        assert_eq!(parse_node_dns_name("NODE-12.RaftLimit"), Some(12));
        assert_eq!(node_dns_name(7), "node-7.raftlimit");
        for bad in [
            "node-01.raftlimit",
            "node-.raftlimit",
            "node-+1.raftlimit",
            "node-1.raftlimit.evil",
            "xnode-1.raftlimit",
            "node-1",
            "node1",
            "node-99999999999999999999999.raftlimit",
        ] {
            assert_eq!(parse_node_dns_name(bad), None, "{bad}");
        }
    }
}
