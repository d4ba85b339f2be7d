//! [`ClusterSpec`]: the one typed description of a cluster from which every
//! node's [`Config`] is built, for processes (config files written with
//! [`Config::to_toml`]) and for in-process nodes alike.
//!
//! Nothing here templates TOML: the spec fills in a `Config`, and the only
//! text involved is the optional [`ClusterSpec::extra_toml`] overlay, which
//! is merged into the serialized config and parsed back through
//! [`Config::from_toml`], so it is checked like any config file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use raftlimit_raft::storage::{KeyId, Keyring};
use raftlimit_raft::NodeId;
use raftlimit_server::auth::users::{Secret, UserConfig};
use raftlimit_server::certs::{Authority, DevCerts};
use raftlimit_server::config::{
    CertUser, ClientAuth, ClusterConfig, Config, FollowerMode, MemberConfig, RaftSettings,
    TlsConfig, TlsVersion,
};

use crate::error::{LauncherError, Result};
use crate::ports::PortReservation;

/// How the nodes' ports are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ports {
    /// Loopback ports the kernel picks, held in a [`PortReservation`] for
    /// the cluster's lifetime (the nodes run with `reuse_port = true`).
    #[default]
    Reserved,
    /// Node `i` (0-based) listens on `127.0.0.1:<base + i>` for each
    /// service; with TLS, the TLS listener takes the RESP port.
    Fixed { resp: u16, http: u16, raft: u16 },
}

/// TLS for clients and mutual TLS between nodes. The launcher generates a
/// CA, one certificate per node and a client certificate (as
/// `raftlimit-server certs` does) into the cluster directory's `tls/`.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub client_auth: ClientAuth,
    pub auth_clients_user: CertUser,
    /// Keep the plaintext RESP port open too, on its own port.
    pub plaintext: bool,
    /// File polling interval; 0 leaves reloads to SIGHUP (or
    /// `Server::reload_tls` in process).
    pub reload_interval_ms: u64,
    /// Common name of the generated client certificate.
    pub client_cn: String,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            client_auth: ClientAuth::Required,
            auth_clients_user: CertUser::Off,
            plaintext: false,
            reload_interval_ms: 0,
            client_cn: "client".into(),
        }
    }
}

/// Where a TLS cluster's PEM files are.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TlsFiles {
    pub dir: PathBuf,
}

impl TlsFiles {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// Node `index` (0-based).
    pub fn node_cert(&self, index: usize) -> PathBuf {
        self.dir.join(format!("node{}.crt", index + 1))
    }
    pub fn node_key(&self, index: usize) -> PathBuf {
        self.dir.join(format!("node{}.key", index + 1))
    }
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.crt")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client.key")
    }
    /// The cluster's CA, to issue more certificates.
    pub fn authority(&self) -> Result<Authority> {
        Ok(Authority::load(&self.ca(), &self.ca_key())?)
    }
}

/// Everything that differs between clusters; see the module docs.
///
/// Fields are public so a caller writes `ClusterSpec { nodes: 5,
/// ..ClusterSpec::default() }`; the builder methods say the same for the
/// common options.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub nodes: usize,
    /// The cluster name (Sentinel's master name; peers must agree on it).
    pub name: String,
    pub snapshot_every: u64,
    pub no_leader_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub follower_mode: FollowerMode,
    /// The default user's password (`requirepass`).
    pub requirepass: Option<String>,
    /// ACL users as `(name, rules)`, e.g. `("app", "on >secret ~* +@all")`.
    pub users: Vec<(String, String)>,
    /// Encryption at rest: `Some(id)` gives every node its own freshly
    /// generated key with this id, in `node<N>.keys` beside its data.
    pub encryption: Option<KeyId>,
    pub tls: Option<TlsOptions>,
    /// The nodes' log filter (`log`); the server's default when `None`.
    pub log: Option<String>,
    pub ports: Ports,
    /// Extra settings in TOML, merged over the generated config of every
    /// node (tables merge key by key; anything else is replaced), e.g.
    /// `[policies.api]` tables or `[cluster] follower_mode = "redirect"`.
    pub extra_toml: String,
}

impl Default for ClusterSpec {
    /// Three nodes on reserved ports, plaintext, no password, no
    /// encryption. The name is `raftlimit-test`, not the server's default
    /// `raftlimit`, so a launched node can never join a production cluster
    /// on the same host (peers present their cluster name).
    fn default() -> Self {
        let raft = RaftSettings::default();
        ClusterSpec {
            nodes: 3,
            name: "raftlimit-test".into(),
            snapshot_every: raft.snapshot_every,
            no_leader_timeout_ms: raft.no_leader_timeout_ms,
            request_timeout_ms: raft.request_timeout_ms,
            follower_mode: FollowerMode::default(),
            requirepass: None,
            users: Vec::new(),
            encryption: None,
            tls: None,
            log: None,
            ports: Ports::Reserved,
            extra_toml: String::new(),
        }
    }
}

/// One node's listening addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NodeAddrs {
    /// Plaintext RESP (`resp_addr`). Bound only when the plaintext port is
    /// open; with TLS only, it is the TLS address (`Ports::Fixed`) or a
    /// reserved port nothing listens on.
    pub resp: SocketAddr,
    pub http: SocketAddr,
    pub raft: SocketAddr,
    /// RESP over TLS (`[tls] addr`).
    pub tls: Option<SocketAddr>,
}

impl NodeAddrs {
    /// Where clients reach the node: the TLS port when the plaintext one is
    /// closed, else the plaintext port. This is also what the members list
    /// advertises (Sentinel, ROLE, MOVED).
    pub fn client(&self, plaintext: bool) -> SocketAddr {
        match self.tls {
            Some(tls) if !plaintext => tls,
            _ => self.resp,
        }
    }
}

/// The configs a spec produced, and the files they refer to.
#[derive(Debug, Clone)]
pub struct Built {
    /// Node `i` (0-based) has id `i + 1`.
    pub configs: Vec<Config>,
    pub addrs: Vec<NodeAddrs>,
    pub tls: Option<TlsFiles>,
}

impl ClusterSpec {
    /// `nodes` nodes, otherwise the defaults.
    pub fn new(nodes: usize) -> Self {
        ClusterSpec {
            nodes,
            ..ClusterSpec::default()
        }
    }

    /// The defaults with encryption at rest under a generated key with id 1.
    pub fn encrypted() -> Self {
        ClusterSpec {
            encryption: Some(1),
            ..ClusterSpec::default()
        }
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn requirepass(mut self, password: impl Into<String>) -> Self {
        self.requirepass = Some(password.into());
        self
    }

    pub fn user(mut self, name: impl Into<String>, rules: impl Into<String>) -> Self {
        self.users.push((name.into(), rules.into()));
        self
    }

    /// Encryption at rest, every node with its own key (id 1).
    pub fn encryption(mut self, on: bool) -> Self {
        self.encryption = on.then_some(1);
        self
    }

    pub fn ports(mut self, ports: Ports) -> Self {
        self.ports = ports;
        self
    }

    pub fn extra_toml(mut self, toml: impl Into<String>) -> Self {
        self.extra_toml = toml.into();
        self
    }

    /// Whether clients have a plaintext port.
    pub fn plaintext(&self) -> bool {
        self.tls.as_ref().is_none_or(|tls| tls.plaintext)
    }

    /// Picks every node's addresses. With [`Ports::Reserved`] the ports
    /// come from (and stay in) `reservation`.
    pub fn allocate(&self, reservation: &mut PortReservation) -> Result<Vec<NodeAddrs>> {
        if self.nodes == 0 {
            return Err(LauncherError::Spec(
                "a cluster needs at least one node".into(),
            ));
        }
        (0..self.nodes)
            .map(|i| match self.ports {
                Ports::Reserved => Ok(NodeAddrs {
                    resp: reservation.reserve()?,
                    http: reservation.reserve()?,
                    raft: reservation.reserve()?,
                    tls: match &self.tls {
                        Some(_) => Some(reservation.reserve()?),
                        None => None,
                    },
                }),
                Ports::Fixed { resp, http, raft } => {
                    let port = |base: u16| -> Result<SocketAddr> {
                        let port = u16::try_from(i)
                            .ok()
                            .and_then(|i| base.checked_add(i))
                            .ok_or_else(|| LauncherError::Spec(format!("port {base} + {i}")))?;
                        Ok(SocketAddr::from(([127, 0, 0, 1], port)))
                    };
                    let resp = port(resp)?;
                    // TLS takes the RESP port; a plaintext port beside it
                    // would need a fourth base.
                    if self.tls.as_ref().is_some_and(|t| t.plaintext) {
                        return Err(LauncherError::Spec(
                            "fixed ports serve TLS on the RESP port: no plaintext port beside it"
                                .into(),
                        ));
                    }
                    Ok(NodeAddrs {
                        resp,
                        http: port(http)?,
                        raft: port(raft)?,
                        tls: self.tls.as_ref().map(|_| resp),
                    })
                }
            })
            .collect()
    }

    /// Builds every node's config for `addrs`, with data directories
    /// `dir/node<N>`, and writes the files the configs refer to
    /// (certificates in `dir/tls`, key files `dir/node<N>.keys`).
    pub fn build(&self, dir: &Path, addrs: &[NodeAddrs]) -> Result<Built> {
        if addrs.len() != self.nodes {
            return Err(LauncherError::Spec(format!(
                "{} addresses for {} nodes",
                addrs.len(),
                self.nodes
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| LauncherError::file(dir, e))?;
        let tls = match &self.tls {
            Some(options) => Some(self.generate_tls(&dir.join("tls"), options)?),
            None => None,
        };
        let plaintext = self.plaintext();
        let members: Vec<MemberConfig> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| MemberConfig {
                id: i as NodeId + 1,
                resp_addr: a.client(plaintext).to_string(),
                raft_addr: a.raft.to_string(),
            })
            .collect();
        let mut configs = Vec::with_capacity(self.nodes);
        for (i, a) in addrs.iter().enumerate() {
            let id = i as NodeId + 1;
            let mut config = Config::from_toml(&format!("node_id = {id}"))?;
            config.data_dir = dir.join(format!("node{id}"));
            config.resp_addr = a.resp;
            config.http_addr = a.http;
            config.raft_addr = a.raft;
            config.reuse_port = self.ports == Ports::Reserved;
            if let Some(log) = &self.log {
                config.log = log.clone();
            }
            config.cluster = ClusterConfig {
                name: self.name.clone(),
                nodes: members.clone(),
                follower_mode: self.follower_mode,
            };
            config.raft.snapshot_every = self.snapshot_every;
            config.raft.no_leader_timeout_ms = self.no_leader_timeout_ms;
            config.raft.request_timeout_ms = self.request_timeout_ms;
            config.requirepass = self.requirepass.clone().map(Secret::new);
            config.users = self
                .users
                .iter()
                .map(|(name, rules)| UserConfig {
                    name: name.clone(),
                    rules: Secret::new(rules.clone()),
                })
                .collect();
            if let Some(key_id) = self.encryption {
                // Outside the data directory, as an operator would keep it;
                // kept when it exists, so a rebuilt config opens old data.
                let key_file = dir.join(format!("node{id}.keys"));
                if !key_file.exists() {
                    let ring =
                        Keyring::generate(key_id).map_err(raftlimit_server::ServerError::from)?;
                    raftlimit_server::keys::write_key_file(&key_file, &ring, false)?;
                }
                config.encryption.enabled = true;
                config.encryption.key_file = Some(key_file);
            }
            if let (Some(options), Some(files), Some(tls_addr)) = (&self.tls, &tls, a.tls) {
                config.tls = Some(TlsConfig {
                    addr: tls_addr,
                    cert_file: files.node_cert(i),
                    key_file: files.node_key(i),
                    ca_file: files.ca(),
                    client_auth: options.client_auth,
                    auth_clients_user: options.auth_clients_user,
                    plaintext: options.plaintext,
                    min_version: TlsVersion::Tls12,
                    reload_interval_ms: options.reload_interval_ms,
                });
            }
            configs.push(self.overlay(config)?);
        }
        Ok(Built {
            configs,
            addrs: addrs.to_vec(),
            tls,
        })
    }

    fn generate_tls(&self, dir: &Path, options: &TlsOptions) -> Result<TlsFiles> {
        // The same files `raftlimit-server certs` writes (and keeps an
        // existing CA, so a cluster started again in the same directory
        // trusts the same clients).
        raftlimit_server::certs::generate_dev(&DevCerts {
            dir: dir.to_owned(),
            nodes: self.nodes as NodeId,
            client_cn: options.client_cn.clone(),
            extra_names: Vec::new(),
            new_ca: false,
        })?;
        Ok(TlsFiles {
            dir: dir.to_owned(),
        })
    }

    /// Merges [`ClusterSpec::extra_toml`] over `config` and parses the result.
    fn overlay(&self, config: Config) -> Result<Config> {
        if self.extra_toml.trim().is_empty() {
            return Ok(config);
        }
        let mut table: toml::Table = toml::Table::try_from(&config)
            .map_err(|e| LauncherError::Spec(format!("serializing a config: {e}")))?;
        let extra: toml::Table = self
            .extra_toml
            .parse()
            .map_err(|e| LauncherError::Spec(format!("extra_toml: {e}")))?;
        merge(&mut table, extra);
        let mut merged = Config::from_toml(&table.to_string())?;
        merged.clock = config.clock;
        Ok(merged)
    }
}

/// `extra` over `base`: tables merge recursively, other values replace.
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(into)), toml::Value::Table(from)) => merge(into, from),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn fixed() -> Ports {
        Ports::Fixed {
            resp: 7001,
            http: 9001,
            raft: 7101,
        }
    }

    #[test]
    fn fixed_ports_build_the_configs_of_make_cluster() {
        let spec = ClusterSpec::default()
            .name("raftlimit-local")
            .ports(fixed());
        let addrs = spec.allocate(&mut PortReservation::new()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let built = spec.build(dir.path(), &addrs).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        for (i, config) in built.configs.iter().enumerate() {
            let text = std::fs::read_to_string(root.join(format!("node{}.toml", i + 1))).unwrap();
            let mut example = Config::from_toml(&text).unwrap();
            example.data_dir = config.data_dir.clone();
            assert_eq!(config.to_toml().unwrap(), example.to_toml().unwrap());
            assert!(!config.reuse_port);
        }
    }

    #[test]
    fn reserved_ports_are_distinct_and_configs_advertise_the_client_port() {
        let spec = ClusterSpec::default()
            .tls(TlsOptions::default())
            .requirepass("pw")
            .user("app", "on >secret ~* +@all")
            .encryption(true)
            .extra_toml("[policies.api]\nlimit = 5\nperiod = \"1s\"\n[cluster]\nfollower_mode = \"redirect\"\n");
        let mut ports = PortReservation::new();
        let addrs = spec.allocate(&mut ports).unwrap();
        assert_eq!(ports.len(), 12);
        let dir = tempfile::tempdir().unwrap();
        let built = spec.build(dir.path(), &addrs).unwrap();
        let tls = built.tls.clone().unwrap();
        assert!(tls.ca().is_file() && tls.client_key().is_file() && tls.node_cert(2).is_file());
        for (i, config) in built.configs.iter().enumerate() {
            assert_eq!(config.node_id, i as u64 + 1);
            assert!(config.reuse_port);
            assert!(!config.plaintext_enabled());
            let tls_addr = config.tls.as_ref().unwrap().addr;
            assert_eq!(Some(tls_addr), addrs[i].tls);
            assert_eq!(config.cluster.nodes[i].resp_addr, tls_addr.to_string());
            assert_eq!(config.cluster.follower_mode, FollowerMode::Redirect);
            assert_eq!(config.cluster.name, "raftlimit-test");
            assert_eq!(config.policies["api"].limit, 5);
            assert!(config.keyring().unwrap().is_some());
            assert!(config.acl_users.get("app").is_some());
            // What a process reads back is the same config.
            let again = Config::from_toml(&config.to_toml().unwrap()).unwrap();
            assert_eq!(again.to_toml().unwrap(), config.to_toml().unwrap());
        }
    }

    #[test]
    fn a_bad_overlay_is_refused_with_its_reason() {
        let spec = ClusterSpec::new(1).extra_toml("[raft]\nsnapshot_every = 0\n");
        let addrs = spec.allocate(&mut PortReservation::new()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = spec.build(dir.path(), &addrs).unwrap_err().to_string();
        assert!(err.contains("snapshot_every"), "{err}");
        assert!(ClusterSpec::new(0)
            .allocate(&mut PortReservation::new())
            .is_err());
    }
}
