//! Client configuration: the nodes to talk to, TLS, credentials, the pool
//! and the retry budget.
//!
//! A cluster is named by all of its nodes, not one: any node serves, and the
//! client must be able to reach the survivors when one is down. The URL form
//! therefore takes a comma-separated host list
//! (`redis://user:pass@h1:7001,h2:7002,h3:7003`), the convention of
//! multi-host database URLs; a single host works too, and the client learns
//! nothing it cannot reach from there.

use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::error::{ClientError, Result};

/// One node's RESP address as the client dials it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeAddr {
    pub host: String,
    pub port: u16,
}

impl NodeAddr {
    /// Parses `host:port`, `[v6]:port` or a bare host (port 6379, as Redis).
    pub fn parse(text: &str) -> Result<NodeAddr> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ClientError::Config("empty node address".into()));
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| ClientError::Config(format!("bad address '{text}'")))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(ClientError::Config(format!("bad address '{text}'"))),
            }
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| ClientError::Config(format!("bad port in '{text}'")))?,
            None => 6379,
        };
        if host.is_empty() {
            return Err(ClientError::Config(format!("no host in '{text}'")));
        }
        Ok(NodeAddr {
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// TLS settings. Without a CA file the system's trust store is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for servers that require mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// How failed requests are retried: exponential backoff with jitter, within
/// a total budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// The whole call gives up after this long. It stays well under the
    /// server's 60 s de-duplication window, so every resend of a limiter
    /// write with an `ID` is recognised as the same request.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(500),
            budget: Duration::from_secs(10),
        }
    }
}

/// Everything [`crate::Client`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Seed nodes: the client talks to these (and only these) nodes.
    pub nodes: Vec<NodeAddr>,
    pub tls: Option<TlsSettings>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Connections per node (each multiplexes many requests).
    pub pool_size: usize,
    pub connect_timeout: Duration,
    /// How long one attempt waits for its reply before it counts as failed.
    pub response_timeout: Duration,
    pub retry: RetryPolicy,
    /// The `[cluster] name` the nodes answer to as sentinels; used for
    /// leader discovery when `ROLE` is not permitted.
    pub cluster_name: String,
}

/// The default pool: the deployments run 20 connections per pod.
pub const DEFAULT_POOL_SIZE: usize = 20;

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            nodes: Vec::new(),
            tls: None,
            username: None,
            password: None,
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(3),
            retry: RetryPolicy::default(),
            cluster_name: "raftlimit".into(),
        }
    }
}

impl ClientConfig {
    /// A configuration for these seed nodes (`host:port` each).
    pub fn from_nodes<I, S>(nodes: I) -> Result<ClientConfig>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nodes = nodes
            .into_iter()
            .map(|n| NodeAddr::parse(n.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        if nodes.is_empty() {
            return Err(ClientError::Config("no nodes given".into()));
        }
        Ok(ClientConfig {
            nodes,
            ..ClientConfig::default()
        })
    }

    /// Parses `redis://[user[:password]@]host[:port][,host[:port]…][/0][?query]`
    /// or the same with `rediss://` (TLS). The query may set `pool_size`,
    /// `cluster_name`, `ca`, `cert` and `key` (file paths), and
    /// `timeout_ms` (the response timeout).
    pub fn from_url(url: &str) -> Result<ClientConfig> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("rediss://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("redis://") {
            (false, rest)
        } else {
            return Err(ClientError::Config(
                "the URL must start with redis:// or rediss://".into(),
            ));
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        if !(path.is_empty() || path == "0") {
            return Err(ClientError::Config(format!(
                "database '{path}' does not exist: raftlimit has database 0 only"
            )));
        }
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut config = ClientConfig::from_nodes(hosts.split(',').filter(|h| !h.is_empty()))?;
        if let Some(userinfo) = userinfo {
            let decode = |s: &str| {
                percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| ClientError::Config("credentials are not UTF-8".into()))
            };
            match userinfo.split_once(':') {
                Some((user, pass)) => {
                    if !user.is_empty() {
                        config.username = Some(decode(user)?);
                    }
                    config.password = Some(decode(pass)?);
                }
                None if !userinfo.is_empty() => config.username = Some(decode(userinfo)?),
                None => {}
            }
        }
        if tls {
            config.tls = Some(TlsSettings::default());
        }
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| ClientError::Config(format!("'{name}' is not UTF-8")))?
                .into_owned();
            config.apply_setting(name, &value)?;
        }
        Ok(config)
    }

    fn apply_setting(&mut self, name: &str, value: &str) -> Result<()> {
        let number = |v: &str| {
            v.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| ClientError::Config(format!("{name} must be a positive integer")))
        };
        match name {
            "pool_size" => {
                let n = number(value)?;
                if n > 1024 {
                    return Err(ClientError::Config("pool_size must be at most 1024".into()));
                }
                self.pool_size = n as usize;
            }
            "timeout_ms" => self.response_timeout = Duration::from_millis(number(value)?),
            "cluster_name" => self.cluster_name = value.to_owned(),
            "ca" | "cert" | "key" => {
                let tls = self
                    .tls
                    .as_mut()
                    .ok_or_else(|| ClientError::Config(format!("{name} needs a rediss:// URL")))?;
                let path = Some(PathBuf::from(value));
                match name {
                    "ca" => tls.ca_file = path,
                    "cert" => tls.cert_file = path,
                    _ => tls.key_file = path,
                }
            }
            other => {
                return Err(ClientError::Config(format!(
                    "unknown URL setting '{other}'"
                )));
            }
        }
        Ok(())
    }

    /// The configuration from `RAFTLIMIT_URL` (default
    /// `redis://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003`, the local
    /// cluster of `make cluster`), then `RAFTLIMIT_USER`, `RAFTLIMIT_PASSWORD`,
    /// `RAFTLIMIT_CA`, `RAFTLIMIT_CERT`, `RAFTLIMIT_KEY` and
    /// `RAFTLIMIT_POOL_SIZE` on top, from the given variables.
    pub fn from_env_vars<'a>(get: impl Fn(&str) -> Option<String> + 'a) -> Result<ClientConfig> {
        let url = get("RAFTLIMIT_URL").unwrap_or_else(|| DEFAULT_URL.to_owned());
        let mut config = ClientConfig::from_url(&url)?;
        if let Some(user) = get("RAFTLIMIT_USER") {
            config.username = Some(user);
        }
        if let Some(password) = get("RAFTLIMIT_PASSWORD") {
            config.password = Some(password);
        }
        for (var, name) in [
            ("RAFTLIMIT_CA", "ca"),
            ("RAFTLIMIT_CERT", "cert"),
            ("RAFTLIMIT_KEY", "key"),
            ("RAFTLIMIT_POOL_SIZE", "pool_size"),
        ] {
            if let Some(value) = get(var) {
                config.apply_setting(name, &value)?;
            }
        }
        Ok(config)
    }

    /// [`ClientConfig::from_env_vars`] over the process environment.
    pub fn from_env() -> Result<ClientConfig> {
        ClientConfig::from_env_vars(|name| std::env::var(name).ok())
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.nodes.is_empty() {
            return Err(ClientError::Config("no nodes given".into()));
        }
        if self.pool_size == 0 {
            return Err(ClientError::Config("pool_size must be at least 1".into()));
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err(ClientError::Config(
                    "a client certificate needs its key, and a key its certificate".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The local development cluster (`make cluster`).
pub const DEFAULT_URL: &str = "redis://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_several_hosts_and_credentials() {
        let c = ClientConfig::from_url("redis://app:p%40ss@10.0.0.1:7001,10.0.0.2,[::1]:7003/0")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.username.as_deref(), Some("app"));
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        let nodes: Vec<String> = c.nodes.iter().map(|n| n.to_string()).collect();
        assert_eq!(nodes, ["10.0.0.1:7001", "10.0.0.2:6379", "[::1]:7003"]);
        assert!(c.tls.is_none());
        assert_eq!(c.pool_size, DEFAULT_POOL_SIZE);
    }

    #[test]
    fn rediss_url_with_files_and_pool() {
        let c = ClientConfig::from_url(
            "rediss://:secret@h:7001?ca=/etc/ca.crt&cert=/c.crt&key=/c.key&pool_size=5",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.username, None);
        assert_eq!(c.password.as_deref(), Some("secret"));
        assert_eq!(c.pool_size, 5);
        let tls = c.tls.unwrap_or_default();
        assert_eq!(tls.ca_file, Some(PathBuf::from("/etc/ca.crt")));
        assert_eq!(tls.key_file, Some(PathBuf::from("/c.key")));
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "http://h:1",
            "redis://",
            "redis://h:0",
            "redis://h:99999",
            "redis://h/3",
            "redis://h?ca=/x",
            "redis://h?pool_size=0",
            "redis://h?nope=1",
        ] {
            assert!(ClientConfig::from_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn environment_overrides_the_url() {
        let c = ClientConfig::from_env_vars(|name| match name {
            "RAFTLIMIT_URL" => Some("redis://u:p@h:1".into()),
            "RAFTLIMIT_PASSWORD" => Some("other".into()),
            "RAFTLIMIT_POOL_SIZE" => Some("3".into()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.password.as_deref(), Some("other"));
        assert_eq!(c.pool_size, 3);
        let d = ClientConfig::from_env_vars(|_| None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.nodes.len(), 3);
    }
}
