//! Who a request is charged to.
//!
//! The client IP is the common key and the easiest to get wrong: behind a
//! load balancer every request comes from the balancer, and
//! `X-Forwarded-For` is whatever the client wrote plus what each proxy
//! appended. It is believed only as far as the chain of *trusted* proxies
//! goes: starting from the peer, each address that is a trusted proxy
//! passes the question to the address it forwarded for, and the first one
//! that is not trusted is the client. A client cannot spoof its way past
//! that, whatever it puts at the start of the header.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::Engine;
use http::header::{HeaderName, AUTHORIZATION};
use http::request::Parts;
use ipnet::IpNet;

use crate::error::{ClientError, Result};

/// An address that connects the request to this process, set by the server
/// as a request extension (axum's `ConnectInfo<SocketAddr>` is read too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The proxies whose `X-Forwarded-For` entries are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// No proxy is trusted: the peer address is the client.
    pub fn none() -> TrustedProxies {
        TrustedProxies::default()
    }

    /// A comma- or space-separated list of CIDRs or addresses
    /// (`10.0.0.0/8, 192.168.1.7, fd00::/8`).
    pub fn parse(list: &str) -> Result<TrustedProxies> {
        let nets = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ClientError::Config(format!("'{item}' is not a CIDR or an IP address"))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TrustedProxies { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` carrying these
    /// `X-Forwarded-For` values (in header order).
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .take(64)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.contains(ip) {
                        return ip;
                    }
                }
                // Garbage in the chain: nothing before it can be believed.
                None => return client,
            }
        }
        client
    }
}

/// An IPv4-mapped IPv6 address is the IPv4 address, so one client has one key.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// The address of the connection, as the server recorded it.
pub fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    if let Some(PeerAddr(addr)) = parts.extensions.get::<PeerAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(addr.ip());
    }
    parts.extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

type CustomFn = dyn Fn(&Parts) -> Option<String> + Send + Sync;

/// How a limit finds the identity it counts against.
#[derive(Clone)]
pub enum KeyExtractor {
    /// The client IP (through the trusted proxies).
    ClientIp,
    /// The value of a request header.
    Header(HeaderName),
    /// An API key from a header (typically `x-api-key`) or, failing that, a
    /// query parameter.
    ApiKey {
        header: HeaderName,
        query: Option<String>,
    },
    /// The `sub` claim of a JWT bearer token. The token's signature is **not**
    /// checked here: put this behind the layer that authenticates, or a
    /// client can choose its own subject.
    BearerSubject,
    /// The matched route: one shared budget for all callers of an endpoint.
    Route,
    /// One budget for everything.
    Global,
    /// Any function of the request.
    Custom(Arc<CustomFn>),
    /// The first extractor that finds a key, else the second.
    Either(Box<KeyExtractor>, Box<KeyExtractor>),
}

impl std::fmt::Debug for KeyExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyExtractor::ClientIp => f.write_str("ClientIp"),
            KeyExtractor::Header(h) => write!(f, "Header({h})"),
            KeyExtractor::ApiKey { header, query } => write!(f, "ApiKey({header}, {query:?})"),
            KeyExtractor::BearerSubject => f.write_str("BearerSubject"),
            KeyExtractor::Route => f.write_str("Route"),
            KeyExtractor::Global => f.write_str("Global"),
            KeyExtractor::Custom(_) => f.write_str("Custom"),
            KeyExtractor::Either(a, b) => write!(f, "Either({a:?}, {b:?})"),
        }
    }
}

/// Longest identity kept verbatim in a key; longer ones are hashed, so a
/// client cannot make the cluster store kilobyte keys.
const MAX_IDENTITY: usize = 128;

impl KeyExtractor {
    pub fn header(name: &'static str) -> KeyExtractor {
        KeyExtractor::Header(HeaderName::from_static(name))
    }

    /// `x-api-key`, or the `api_key` query parameter.
    pub fn api_key() -> KeyExtractor {
        KeyExtractor::ApiKey {
            header: HeaderName::from_static("x-api-key"),
            query: Some("api_key".into()),
        }
    }

    pub fn custom(f: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> KeyExtractor {
        KeyExtractor::Custom(Arc::new(f))
    }

    /// This extractor, or `other` when this one finds nothing.
    pub fn or(self, other: KeyExtractor) -> KeyExtractor {
        KeyExtractor::Either(Box::new(self), Box::new(other))
    }

    /// The identity, prefixed by its kind (`ip:`, `key:`, …) so that, say, an
    /// API key that looks like an address never shares a budget with it.
    pub fn extract(
        &self,
        parts: &Parts,
        trusted: &TrustedProxies,
        endpoint: &str,
    ) -> Option<String> {
        let raw = match self {
            KeyExtractor::ClientIp => {
                let peer = peer_ip(parts)?;
                let forwarded = parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok());
                format!("ip:{}", trusted.client_ip(peer, forwarded))
            }
            KeyExtractor::Header(name) => {
                let value = parts.headers.get(name)?.to_str().ok()?.trim();
                if value.is_empty() {
                    return None;
                }
                format!("h:{value}")
            }
            KeyExtractor::ApiKey { header, query } => {
                let from_header = parts
                    .headers
                    .get(header)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned);
                let value =
                    from_header.or_else(|| query_param(parts.uri.query()?, query.as_deref()?))?;
                format!("key:{value}")
            }
            KeyExtractor::BearerSubject => format!("sub:{}", bearer_subject(parts)?),
            KeyExtractor::Route => format!("route:{endpoint}"),
            KeyExtractor::Global => "global".into(),
            KeyExtractor::Custom(f) => format!("c:{}", f(parts)?),
            KeyExtractor::Either(a, b) => {
                return a
                    .extract(parts, trusted, endpoint)
                    .or_else(|| b.extract(parts, trusted, endpoint));
            }
        };
        Some(bounded(raw))
    }
}

fn bounded(identity: String) -> String {
    if identity.len() <= MAX_IDENTITY && !identity.bytes().any(|b| b.is_ascii_control()) {
        return identity;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(identity.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name && !v.is_empty()).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Largest token payload decoded (real JWTs are well under this).
const MAX_TOKEN: usize = 8 * 1024;

fn bearer_subject(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let payload = token.trim().split('.').nth(1)?;
    if payload.len() > MAX_TOKEN {
        return None;
    }
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    match claims.get("sub")? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn forwarded_for_is_believed_only_through_trusted_proxies() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7").unwrap_or_default();
        // (peer, X-Forwarded-For, the client it names)
        let cases = [
            // Not from a proxy: the header is ignored.
            ("203.0.113.9", "1.1.1.1", "203.0.113.9"),
            // From a proxy: the last untrusted hop.
            ("10.1.2.3", "1.1.1.1, 198.51.100.4", "198.51.100.4"),
            (
                "10.1.2.3",
                "6.6.6.6, 198.51.100.4, 10.9.9.9, 192.168.1.7",
                "198.51.100.4",
            ),
            // Everything trusted: the first hop. Garbage stops the walk.
            ("10.1.2.3", "10.0.0.5", "10.0.0.5"),
            ("10.1.2.3", "1.1.1.1, junk, 10.0.0.5", "10.0.0.5"),
            // Ports, IPv6 and IPv4-mapped addresses.
            ("::ffff:10.0.0.1", "[2001:db8::1]:443", "2001:db8::1"),
            ("10.0.0.1", "198.51.100.4:5555", "198.51.100.4"),
        ];
        for (peer, header, client) in cases {
            let got = trusted.client_ip(ip(peer), std::iter::once(header));
            assert_eq!(got, ip(client), "{peer} with {header}");
        }
        // Several header lines are one list.
        let lines = ["1.1.1.1", "198.51.100.4"];
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), lines.into_iter()),
            ip("198.51.100.4")
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("").is_ok_and(|t| t.is_empty()));
    }

    fn parts(builder: http::request::Builder) -> Parts {
        builder
            .body(())
            .unwrap_or_else(|e| panic!("{e}"))
            .into_parts()
            .0
    }

    #[test]
    fn extractors() {
        let none = TrustedProxies::none();
        // {"sub":"user-42"} as a JWT payload.
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"user-42"}"#);
        let mut p = parts(
            http::Request::builder()
                .uri("/search?api_key=abc%20d")
                .header("authorization", format!("Bearer xx.{payload}.yy"))
                .header("x-tenant", "t1"),
        );
        p.extensions
            .insert(PeerAddr(SocketAddr::from(([127, 0, 0, 1], 9))));
        let get = |k: &KeyExtractor| k.extract(&p, &none, "search");
        assert_eq!(
            get(&KeyExtractor::ClientIp).as_deref(),
            Some("ip:127.0.0.1")
        );
        assert_eq!(
            get(&KeyExtractor::header("x-tenant")).as_deref(),
            Some("h:t1")
        );
        assert_eq!(get(&KeyExtractor::api_key()).as_deref(), Some("key:abc d"));
        assert_eq!(
            get(&KeyExtractor::BearerSubject).as_deref(),
            Some("sub:user-42")
        );
        assert_eq!(get(&KeyExtractor::Route).as_deref(), Some("route:search"));
        let either = KeyExtractor::header("x-missing").or(KeyExtractor::Global);
        assert_eq!(get(&either).as_deref(), Some("global"));
        let long = KeyExtractor::custom(|_| Some("x".repeat(500)));
        assert!(get(&long).is_some_and(|k| k.starts_with("sha256:") && k.len() == 71));
        let bare = parts(http::Request::builder().uri("/"));
        assert_eq!(KeyExtractor::ClientIp.extract(&bare, &none, "x"), None);
        assert_eq!(KeyExtractor::BearerSubject.extract(&bare, &none, "x"), None);
    }
}
