//! Server configuration: a TOML file, overridden by environment variables,
//! overridden by command-line flags.
//!
//! [`Config`] is also `Serialize`, so tools that start nodes (the cluster
//! launcher, the test harness) build a typed `Config` and write it with
//! [`Config::to_toml`] instead of templating TOML text: a setting renamed
//! here is renamed for them too, and what they write parses back to the
//! same `Config`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use raftlimit_raft::acl::{Users, DEFAULT_USER};
use raftlimit_raft::node::Clock;
use raftlimit_raft::storage::crypto::KEYS_ENV;
use raftlimit_raft::storage::Keyring;
use raftlimit_raft::{NodeConfig, NodeId, NodeInfo};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::auth::users::{configured_users, Secret, UserConfig};
use crate::error::ServerError;

/// Command-line flags and their environment variables. Each one, when given,
/// overrides the same setting from the config file.
#[derive(Debug, Clone, Default, Parser)]
pub struct Overrides {
    /// TOML configuration file.
    #[arg(long, short, env = "RAFTLIMIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's id; must be one of `[[cluster.nodes]]`.
    #[arg(long, env = "RAFTLIMIT_NODE_ID")]
    pub node_id: Option<NodeId>,
    /// Directory for the RocksDB data of this node.
    #[arg(long, env = "RAFTLIMIT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address for Redis clients (RESP).
    #[arg(long, env = "RAFTLIMIT_RESP_ADDR")]
    pub resp_addr: Option<SocketAddr>,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "RAFTLIMIT_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Address for inter-node Raft RPC.
    #[arg(long, env = "RAFTLIMIT_RAFT_ADDR")]
    pub raft_addr: Option<SocketAddr>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "RAFTLIMIT_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `raftlimit=debug,openraft=info`.
    #[arg(long, env = "RAFTLIMIT_LOG")]
    pub log: Option<String>,
    /// Encryption key file; giving one enables encryption at rest.
    #[arg(long, env = "RAFTLIMIT_ENCRYPTION_KEY_FILE")]
    pub encryption_key_file: Option<PathBuf>,
    /// Address for TLS clients (`[tls] addr`); enables TLS with the file flags.
    #[arg(long, env = "RAFTLIMIT_TLS_ADDR")]
    pub tls_addr: Option<SocketAddr>,
    /// This node's certificate chain, PEM (`[tls] cert_file`).
    #[arg(long, env = "RAFTLIMIT_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// This node's private key, PEM (`[tls] key_file`).
    #[arg(long, env = "RAFTLIMIT_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// The CA that signs node and client certificates, PEM (`[tls] ca_file`).
    #[arg(long, env = "RAFTLIMIT_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// `yes` or `no`: while the default user has no password, serve only
    /// loopback clients.
    #[arg(long, env = "RAFTLIMIT_PROTECTED_MODE")]
    pub protected_mode: Option<YesNo>,
    /// Password of the default user. Prefer the environment variable or the
    /// file: a command-line flag is visible to other local users.
    #[arg(long, env = "RAFTLIMIT_REQUIREPASS", hide_env_values = true)]
    pub requirepass: Option<Secret>,
}

/// A Redis-style boolean setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

/// Accepts `true`/`false` or Redis's `"yes"`/`"no"`.
fn yes_no<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Bool(bool),
        Text(String),
    }
    match Either::deserialize(d)? {
        Either::Bool(b) => Ok(b),
        Either::Text(t) if t.eq_ignore_ascii_case("yes") => Ok(true),
        Either::Text(t) if t.eq_ignore_ascii_case("no") => Ok(false),
        Either::Text(t) => Err(serde::de::Error::custom(format!(
            "expected yes or no, got {t:?}"
        ))),
    }
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// One voter of the cluster, as written in the config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub id: NodeId,
    pub resp_addr: String,
    pub raft_addr: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Also the master name Sentinel clients ask for.
    #[serde(default = "default_cluster_name")]
    pub name: String,
    #[serde(default)]
    pub nodes: Vec<MemberConfig>,
    /// What a follower does with a command that needs the leader:
    /// `forward` it (the default), or answer `-MOVED 0 leader:port` for
    /// clients that follow redirects (as RedisRaft does).
    #[serde(default)]
    pub follower_mode: FollowerMode,
}

/// See [`ClusterConfig::follower_mode`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FollowerMode {
    #[default]
    Forward,
    Redirect,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            name: default_cluster_name(),
            nodes: Vec::new(),
            follower_mode: FollowerMode::default(),
        }
    }
}

fn default_cluster_name() -> String {
    "raftlimit".into()
}

/// Raft timing and batching.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftSettings {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Snapshot and compact the log every this many entries.
    pub snapshot_every: u64,
    /// How long a command waits for a leader before `CLUSTERDOWN`.
    pub no_leader_timeout_ms: u64,
    /// Upper bound for one command, retries included.
    pub request_timeout_ms: u64,
    /// Most commands grouped into one log entry.
    pub max_batch: usize,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            heartbeat_ms: 100,
            election_timeout_min_ms: 400,
            election_timeout_max_ms: 800,
            snapshot_every: 10_000,
            no_leader_timeout_ms: 2_000,
            request_timeout_ms: 5_000,
            max_batch: 1024,
        }
    }
}

/// Client-facing limits, named after their Redis counterparts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientLimits {
    /// `proto-max-bulk-len`: largest bulk string a client may send.
    pub proto_max_bulk_len: usize,
    /// Most arguments in one command.
    pub max_multibulk_len: usize,
    /// `maxclients`: connections beyond this are refused.
    pub maxclients: usize,
    /// `timeout`: close a connection idle this many seconds (0: never).
    pub timeout: u64,
    /// Close a client whose unsent replies exceed this many bytes.
    pub output_buffer_limit: usize,
    /// `tcp-backlog`: connections the kernel queues for accepting (capped
    /// by `net.core.somaxconn`).
    pub tcp_backlog: u32,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            proto_max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
            maxclients: 10_000,
            timeout: 0,
            output_buffer_limit: 64 * 1024 * 1024,
            // Redis's 511 still overflows when thousands of clients connect
            // at once; the kernel caps it at somaxconn (4096 by default).
            tcp_backlog: 4096,
        }
    }
}

/// Encryption at rest (`docs/security.md`). The keys come from `key_file`
/// or, when it is not set, from the `RAFTLIMIT_ENCRYPTION_KEYS` environment
/// variable; never from this file itself.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionSettings {
    /// Seal every value stored on disk with AES-256-GCM. A data directory
    /// keeps the mode it was created with: a node refuses to open it in the
    /// other mode.
    pub enabled: bool,
    /// The key file (`raftlimit-server keygen FILE` writes one).
    pub key_file: Option<PathBuf>,
}

/// Whether TLS clients must present a certificate (Redis's `tls-auth-clients`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Never ask for a client certificate.
    Off,
    /// Ask; verify one if presented, accept clients without one.
    Optional,
    /// Refuse clients without a certificate signed by the CA.
    #[default]
    Required,
}

impl ClientAuth {
    /// Redis's spelling for `CONFIG GET tls-auth-clients`.
    pub fn redis_name(self) -> &'static str {
        match self {
            ClientAuth::Off => "no",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "yes",
        }
    }
}

/// Which certificate field names the user of a client (Redis's
/// `tls-auth-clients-user`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertUser {
    /// Certificates name no user; clients start as `default`.
    #[default]
    Off,
    /// The subject's common name is the user name.
    Cn,
}

/// Lowest TLS version accepted. Only 1.2 and 1.3 exist for us.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// `[tls]`: TLS for clients and mutual TLS between nodes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address for TLS clients (Redis's `tls-port`).
    #[serde(default = "default_tls_addr")]
    pub addr: SocketAddr,
    /// This node's certificate (chain), PEM. Presented to clients and peers.
    pub cert_file: PathBuf,
    /// The private key of `cert_file`, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificate(s), PEM: peers' and clients' certificates must chain to one.
    pub ca_file: PathBuf,
    /// Client certificates: `off`, `optional` or `required`.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Map a client certificate to a user name: `off` or `cn`.
    #[serde(default)]
    pub auth_clients_user: CertUser,
    /// Keep the plaintext `resp_addr` open as well (off by default).
    #[serde(default)]
    pub plaintext: bool,
    /// Lowest protocol version: `"1.2"` or `"1.3"`.
    #[serde(default)]
    pub min_version: TlsVersion,
    /// How often to check the files for changes, in milliseconds (0: only on SIGHUP).
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
}

fn default_tls_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 6380))
}
fn default_reload_interval_ms() -> u64 {
    5_000
}

/// The whole server configuration after merging file, environment and flags.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node_id: NodeId,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default = "default_resp_addr")]
    pub resp_addr: SocketAddr,
    #[serde(default = "default_http_addr")]
    pub http_addr: SocketAddr,
    #[serde(default = "default_raft_addr")]
    pub raft_addr: SocketAddr,
    /// Set `SO_REUSEPORT` on every listening socket. A cluster launcher
    /// keeps each port it hands out reserved (a bound socket that never
    /// listens) and the node binds beside that reservation, so no other
    /// program can take the port between allocation and bind, or while the
    /// node restarts. Off by default: with it on, a second process of the
    /// same user on the same address would share the port instead of
    /// failing to start.
    #[serde(default)]
    pub reuse_port: bool,
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default = "default_log")]
    pub log: String,
    #[serde(default)]
    pub cluster: ClusterConfig,
    #[serde(default)]
    pub raft: RaftSettings,
    #[serde(default)]
    pub limits: ClientLimits,
    /// Named limiter policies, `[policies.NAME]`.
    #[serde(default)]
    pub policies: BTreeMap<String, PolicyConfig>,
    #[serde(default)]
    pub encryption: EncryptionSettings,
    /// TLS for clients and mutual TLS between nodes; absent means plaintext.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    // Authentication and ACL (docs/security.md).
    /// Password of the `default` user (Redis's `requirepass`).
    #[serde(default)]
    pub requirepass: Option<Secret>,
    /// Redis's `protected-mode`: while the default user has no password, only
    /// loopback clients are served.
    #[serde(default = "default_true", deserialize_with = "yes_no")]
    pub protected_mode: bool,
    /// An ACL file in Redis's format (`user NAME rules…` per line).
    #[serde(default)]
    pub aclfile: Option<PathBuf>,
    /// `[[users]]`: ACL users as rule strings.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// The users above, parsed with hashed passwords (set by validation).
    #[serde(skip)]
    pub acl_users: Arc<Users>,
    /// The node's clock. Not a file setting: the wall clock, unless a test
    /// harness hands in a clock it advances (clones share its time).
    #[serde(skip)]
    pub clock: Clock,
}

/// A `[policies.NAME]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub limit: u64,
    /// A duration such as `1s`, `500ms`, `1m`, `24h`.
    pub period: String,
    pub burst: Option<u64>,
    /// `gcra` (default), `sliding` or `fixed`.
    pub algo: Option<String>,
    /// Count but never deny.
    #[serde(default)]
    pub shadow: bool,
}

impl PolicyConfig {
    /// The `RL.POLICY SET` command that installs this policy.
    pub fn command(&self, name: &str) -> Vec<bytes::Bytes> {
        let mut argv: Vec<bytes::Bytes> = vec![
            "RL.POLICY".into(),
            "SET".into(),
            name.to_owned().into(),
            self.limit.to_string().into(),
            self.period.clone().into(),
        ];
        if let Some(burst) = self.burst {
            argv.extend(["BURST".into(), burst.to_string().into()]);
        }
        if let Some(algo) = &self.algo {
            argv.extend(["ALGO".into(), algo.clone().into()]);
        }
        if self.shadow {
            argv.push("SHADOW".into());
        }
        argv
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_resp_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 6379))
}
fn default_http_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9000))
}
fn default_raft_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7100))
}
fn default_log() -> String {
    // openraft logs every election step at info; its warnings suffice.
    "info,openraft=warn".into()
}

impl Config {
    /// Loads the file named by the overrides (if any) and applies the overrides.
    pub fn load(overrides: &Overrides) -> Result<Config, ServerError> {
        let mut table = match &overrides.config {
            Some(path) => read_toml(path)?,
            None => toml::Table::new(),
        };
        // A missing node id is only an error if no override supplies it.
        if let Some(id) = overrides.node_id {
            table.insert("node_id".into(), toml::Value::Integer(id as i64));
        }
        // TLS flags fill in (or create) the `[tls]` table, so a flag-only
        // setup gets the same defaults and checks as a file.
        let tls_flags = [
            ("addr", overrides.tls_addr.map(|a| a.to_string())),
            (
                "cert_file",
                overrides
                    .tls_cert_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
            ),
            (
                "key_file",
                overrides
                    .tls_key_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
            ),
            (
                "ca_file",
                overrides
                    .tls_ca_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
            ),
        ];
        if tls_flags.iter().any(|(_, v)| v.is_some()) {
            let tls = table
                .entry("tls")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(tls) = tls else {
                return Err(ServerError::Config("`tls` must be a table".into()));
            };
            for (key, value) in tls_flags {
                if let Some(value) = value {
                    tls.insert(key.into(), toml::Value::String(value));
                }
            }
        }
        let mut config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ServerError::Config(e.to_string()))?;
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(addr) = overrides.resp_addr {
            config.resp_addr = addr;
        }
        if let Some(addr) = overrides.http_addr {
            config.http_addr = addr;
        }
        if let Some(addr) = overrides.raft_addr {
            config.raft_addr = addr;
        }
        if let Some(format) = overrides.log_format {
            config.log_format = format;
        }
        if let Some(filter) = &overrides.log {
            config.log = filter.clone();
        }
        if let Some(path) = &overrides.encryption_key_file {
            config.encryption.enabled = true;
            config.encryption.key_file = Some(path.clone());
        }
        if let Some(mode) = overrides.protected_mode {
            config.protected_mode = mode == YesNo::Yes;
        }
        if let Some(pass) = &overrides.requirepass {
            config.requirepass = Some(pass.clone());
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses a config from TOML text (tests, embedded configs).
    pub fn from_toml(text: &str) -> Result<Config, ServerError> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| ServerError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// This config as TOML, which [`Config::from_toml`] reads back to the
    /// same settings. Secrets (`requirepass`, `[[users]]` rules) are
    /// written out: the text is a node's config file.
    pub fn to_toml(&self) -> Result<String, ServerError> {
        toml::to_string(self).map_err(|e| ServerError::Config(e.to_string()))
    }

    fn validate(&mut self) -> Result<(), ServerError> {
        if self.cluster.nodes.is_empty() {
            // A lone node is a cluster of one.
            self.cluster.nodes.push(MemberConfig {
                id: self.node_id,
                resp_addr: self.resp_addr.to_string(),
                raft_addr: self.raft_addr.to_string(),
            });
        }
        if !self.cluster.nodes.iter().any(|n| n.id == self.node_id) {
            return Err(ServerError::Config(format!(
                "node_id {} is not listed in [[cluster.nodes]]",
                self.node_id
            )));
        }
        let r = &self.raft;
        if r.heartbeat_ms == 0
            || r.election_timeout_min_ms <= r.heartbeat_ms
            || r.election_timeout_max_ms <= r.election_timeout_min_ms
        {
            return Err(ServerError::Config(
                "raft timing needs 0 < heartbeat_ms < election_timeout_min_ms < election_timeout_max_ms".into(),
            ));
        }
        if r.snapshot_every == 0 {
            return Err(ServerError::Config(
                "raft.snapshot_every must be positive".into(),
            ));
        }
        for (name, policy) in &self.policies {
            let argv = policy.command(name);
            if let Err(err) = raftlimit_raft::commands::limiter::parse_policy(&argv[2..]) {
                return Err(ServerError::Config(format!("[policies.{name}]: {err:?}")));
            }
        }
        if let Some(tls) = &self.tls {
            if tls.plaintext && tls.addr == self.resp_addr {
                return Err(ServerError::Config(
                    "tls.addr and resp_addr must differ".into(),
                ));
            }
        }
        self.acl_users = configured_users(
            self.requirepass.as_ref(),
            &self.users,
            self.aclfile.as_deref(),
        )
        .map_err(ServerError::Config)?;
        Ok(())
    }

    /// Whether the plaintext RESP port is open: always without TLS, and with
    /// TLS only when `[tls] plaintext = true`.
    pub fn plaintext_enabled(&self) -> bool {
        self.tls.as_ref().is_none_or(|tls| tls.plaintext)
    }

    /// The voters, keyed by id.
    pub fn members(&self) -> BTreeMap<NodeId, NodeInfo> {
        self.cluster
            .nodes
            .iter()
            .map(|n| {
                (
                    n.id,
                    NodeInfo {
                        resp_addr: n.resp_addr.clone(),
                        raft_addr: n.raft_addr.clone(),
                    },
                )
            })
            .collect()
    }

    /// The encryption keyring, if encryption at rest is enabled: read from
    /// the key file, or from `RAFTLIMIT_ENCRYPTION_KEYS`. Inconsistent
    /// settings are errors, never a silent fallback to plaintext.
    pub fn keyring(&self) -> Result<Option<Keyring>, ServerError> {
        let env = std::env::var(KEYS_ENV).ok().map(Zeroizing::new);
        self.keyring_from(env.as_deref().map(String::as_str))
    }

    fn keyring_from(&self, env_keys: Option<&str>) -> Result<Option<Keyring>, ServerError> {
        let settings = &self.encryption;
        let env_keys = env_keys.filter(|v| !v.trim().is_empty());
        if !settings.enabled {
            return match (&settings.key_file, env_keys) {
                (None, None) => Ok(None),
                (Some(path), _) => Err(ServerError::Config(format!(
                    "encryption.key_file is set ({}) but encryption.enabled is false; \
                     set enabled = true, or remove key_file to run without encryption",
                    path.display()
                ))),
                (None, Some(_)) => Err(ServerError::Config(format!(
                    "{KEYS_ENV} is set but encryption.enabled is false; \
                     set [encryption] enabled = true, or unset {KEYS_ENV}"
                ))),
            };
        }
        let ring = match (&settings.key_file, env_keys) {
            (Some(_), Some(_)) => {
                return Err(ServerError::Config(format!(
                    "both encryption.key_file and {KEYS_ENV} are set; use one source of keys"
                )))
            }
            (Some(path), None) => crate::keys::load_key_file(path)?,
            (None, Some(text)) => {
                Keyring::parse(text).map_err(|e| ServerError::Config(format!("{KEYS_ENV}: {e}")))?
            }
            (None, None) => {
                return Err(ServerError::Config(format!(
                    "encryption is enabled but no keys are configured: set encryption.key_file or {KEYS_ENV}"
                )))
            }
        };
        Ok(Some(ring))
    }

    /// The Raft node settings derived from this config, with the encryption
    /// keyring loaded.
    pub fn node_config(&self) -> Result<NodeConfig, ServerError> {
        let mut node = NodeConfig::new(self.node_id, self.data_dir.clone(), self.members());
        node.cluster_name = self.cluster.name.clone();
        node.heartbeat_interval = Duration::from_millis(self.raft.heartbeat_ms);
        node.election_timeout_min = Duration::from_millis(self.raft.election_timeout_min_ms);
        node.election_timeout_max = Duration::from_millis(self.raft.election_timeout_max_ms);
        node.snapshot_every = self.raft.snapshot_every;
        node.no_leader_timeout = Duration::from_millis(self.raft.no_leader_timeout_ms);
        node.request_timeout = Duration::from_millis(self.raft.request_timeout_ms);
        node.max_batch = self.raft.max_batch;
        node.encryption = self.keyring()?;
        node.acl_users = self.acl_users.clone();
        node.clock = self.clock.clone();
        Ok(node)
    }

    /// `CONFIG GET` parameters and their values, in Redis's spelling.
    pub fn redis_parameters(&self) -> Vec<(&'static str, String)> {
        let port = if self.plaintext_enabled() {
            self.resp_addr.port()
        } else {
            0
        };
        let tls = self.tls.as_ref();
        let path = |p: Option<&PathBuf>| p.map(|p| p.display().to_string()).unwrap_or_default();
        vec![
            ("bind", self.resp_addr.ip().to_string()),
            ("port", port.to_string()),
            ("tls-port", tls.map_or(0, |t| t.addr.port()).to_string()),
            ("tls-cert-file", path(tls.map(|t| &t.cert_file))),
            ("tls-key-file", path(tls.map(|t| &t.key_file))),
            ("tls-ca-cert-file", path(tls.map(|t| &t.ca_file))),
            (
                "tls-auth-clients",
                tls.map_or(ClientAuth::Required, |t| t.client_auth)
                    .redis_name()
                    .into(),
            ),
            (
                "tls-auth-clients-user",
                match tls.map(|t| t.auth_clients_user) {
                    Some(CertUser::Cn) => "CN".into(),
                    _ => "off".into(),
                },
            ),
            (
                "tls-protocols",
                match tls.map(|t| t.min_version) {
                    Some(TlsVersion::Tls13) => "TLSv1.3".into(),
                    _ => "TLSv1.2 TLSv1.3".into(),
                },
            ),
            // Between nodes TLS is mutual whenever it is configured.
            (
                "tls-replication",
                if tls.is_some() { "yes" } else { "no" }.into(),
            ),
            (
                "tls-cluster",
                if tls.is_some() { "yes" } else { "no" }.into(),
            ),
            ("databases", "1".into()),
            ("maxclients", self.limits.maxclients.to_string()),
            ("timeout", self.limits.timeout.to_string()),
            ("tcp-backlog", self.limits.tcp_backlog.to_string()),
            (
                "proto-max-bulk-len",
                self.limits.proto_max_bulk_len.to_string(),
            ),
            ("maxmemory", "0".into()),
            ("maxmemory-policy", "noeviction".into()),
            // Durability comes from the Raft log, fsynced before every reply.
            ("appendonly", "yes".into()),
            ("appendfsync", "always".into()),
            ("save", String::new()),
            ("dir", self.data_dir.display().to_string()),
            ("cluster-enabled", "no".into()),
            (
                "protected-mode",
                if self.protected_mode { "yes" } else { "no" }.into(),
            ),
            // Never the password: whether one is required, masked.
            (
                "requirepass",
                if self.acl_users.get(DEFAULT_USER).is_some_and(|u| !u.nopass) {
                    "(redacted)".into()
                } else {
                    String::new()
                },
            ),
            // No replication password exists: Raft peers do not authenticate
            // with one.
            ("masterauth", String::new()),
            ("masteruser", String::new()),
            (
                "aclfile",
                self.aclfile
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("acllog-max-len", crate::auth::ACL_LOG_MAX_LEN.to_string()),
            ("lua-time-limit", "5000".into()),
            ("busy-reply-threshold", "5000".into()),
            ("slowlog-log-slower-than", "10000".into()),
            ("notify-keyspace-events", String::new()),
        ]
    }
}

fn read_toml(path: &Path) -> Result<toml::Table, ServerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ServerError::Config(format!("cannot read {}: {e}", path.display())))?;
    text.parse::<toml::Table>()
        .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const KEY: &str = "1: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn config(encryption: &str) -> Config {
        Config::from_toml(&format!("node_id = 1\n{encryption}")).unwrap()
    }

    #[test]
    fn encryption_is_off_by_default() {
        assert!(config("").keyring_from(None).unwrap().is_none());
        assert!(config("[encryption]\nenabled = false\n")
            .keyring_from(None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn keys_come_from_the_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        crate::keys::create_key_file(&path).unwrap();
        let c = config(&format!(
            "[encryption]\nenabled = true\nkey_file = {path:?}\n"
        ));
        assert_eq!(c.keyring_from(None).unwrap().unwrap().key_ids(), vec![1]);
        let c = config("[encryption]\nenabled = true\n");
        assert_eq!(
            c.keyring_from(Some(KEY)).unwrap().unwrap().current_key_id(),
            1
        );
    }

    #[test]
    fn inconsistent_settings_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        crate::keys::create_key_file(&path).unwrap();
        let cases = [
            (
                format!("[encryption]\nkey_file = {path:?}\n"),
                None,
                "enabled is false",
            ),
            (String::new(), Some(KEY), "enabled is false"),
            (
                "[encryption]\nenabled = true\n".to_string(),
                None,
                "no keys are configured",
            ),
            (
                format!("[encryption]\nenabled = true\nkey_file = {path:?}\n"),
                Some(KEY),
                "both",
            ),
            (
                "[encryption]\nenabled = true\n".to_string(),
                Some("1: abc"),
                "RAFTLIMIT_ENCRYPTION_KEYS",
            ),
            (
                format!(
                    "[encryption]\nenabled = true\nkey_file = {:?}\n",
                    dir.path().join("nope")
                ),
                None,
                "nope",
            ),
        ];
        for (text, env, expect) in cases {
            let err = config(&text).keyring_from(env).unwrap_err().to_string();
            assert!(err.contains(expect), "{text} / {env:?}: {err}");
        }
    }

    /// Every example under `config/` parses, and writing a config out and
    /// reading it back changes nothing.
    #[test]
    fn example_configs_parse_and_round_trip() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let mut checked = 0;
        for dir in ["", "secure", "docker"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|e| e != "toml") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let parse = |text: &str| -> Config {
                    let config: Config = toml::from_str(text)
                        .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
                    // The containers' aclfile exists only inside the container.
                    if config.aclfile.is_none() {
                        Config::from_toml(text)
                            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    }
                    config
                };
                let config = parse(&text);
                let written = config.to_toml().unwrap();
                let again = parse(&written);
                assert_eq!(again.to_toml().unwrap(), written, "{}", path.display());
                assert_eq!(again.cluster.nodes.len(), 3, "{}", path.display());
                checked += 1;
            }
        }
        assert_eq!(checked, 9, "config/ has three examples of each kind");
    }

    #[test]
    fn a_full_config_round_trips_with_its_secrets() {
        let text = r#"
node_id = 2
requirepass = "pass word"
protected_mode = "no"
reuse_port = true
[cluster]
name = "c"
follower_mode = "redirect"
[[cluster.nodes]]
id = 1
resp_addr = "127.0.0.1:1"
raft_addr = "127.0.0.1:2"
[[cluster.nodes]]
id = 2
resp_addr = "127.0.0.1:3"
raft_addr = "127.0.0.1:4"
[raft]
snapshot_every = 7
[policies.api]
limit = 10
period = "1s"
algo = "sliding"
[tls]
addr = "127.0.0.1:5"
cert_file = "a.crt"
key_file = "a.key"
ca_file = "ca.crt"
client_auth = "optional"
auth_clients_user = "cn"
min_version = "1.3"
[[users]]
name = "app"
rules = "on >secret ~* +@all"
"#;
        let config = Config::from_toml(text).unwrap();
        let written = config.to_toml().unwrap();
        let again = Config::from_toml(&written).unwrap();
        assert_eq!(again.to_toml().unwrap(), written);
        assert_eq!(
            again.requirepass.as_ref().map(Secret::expose),
            Some("pass word")
        );
        assert_eq!(again.users[0].rules.expose(), "on >secret ~* +@all");
        assert!(!again.protected_mode && again.reuse_port);
        assert_eq!(again.cluster.follower_mode, FollowerMode::Redirect);
        assert_eq!(again.raft.snapshot_every, 7);
        assert_eq!(again.policies["api"].algo.as_deref(), Some("sliding"));
        let tls = again.tls.unwrap();
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert_eq!(tls.auth_clients_user, CertUser::Cn);
        assert_eq!(tls.client_auth, ClientAuth::Optional);
    }

    #[test]
    fn unknown_encryption_settings_are_refused() {
        assert!(Config::from_toml("node_id = 1\n[encryption]\nkey = \"x\"\n").is_err());
    }
}
