//! Test harness: starts a real raftlimit cluster inside the test process,
//! with real TCP on loopback port 0 and temporary data directories, and can
//! kill, restart and isolate its nodes.
//!
//! Each node runs on its own tokio runtime, so killing a node drops every one
//! of its tasks at once, like a crashed process: nothing is flushed that was
//! not already durable.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use raftlimit_raft::network::NetFilter;
use raftlimit_raft::storage::{KeyId, Keyring};
use raftlimit_raft::NodeId;
use raftlimit_server::certs::{Authority, Leaf};
use raftlimit_server::config::{
    CertUser, ClientAuth, ClusterConfig, Config, MemberConfig, TlsConfig, TlsVersion,
};
use raftlimit_server::{Listeners, Server};
use tokio::runtime::Runtime;

/// Errors from the harness itself.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("server: {0}")]
    Server(#[from] raftlimit_server::ServerError),
    #[error("redis client: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Timeout(String),
}

pub type Result<T> = std::result::Result<T, HarnessError>;

/// Per-node knobs a test may change before starting the cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub nodes: usize,
    pub snapshot_every: u64,
    pub no_leader_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// Extra TOML added to every node's config (e.g. `[policies.api]`, or
    /// top-level settings such as `requirepass = "…"`: it is placed before
    /// the harness's own `[raft]` table).
    pub extra_toml: String,
    /// Encryption at rest: `Some(id)` gives every node its own freshly
    /// generated key with this id, in a key file ([`TestCluster::key_file`]).
    pub encryption: Option<KeyId>,
    /// Run with TLS: clients on a TLS port, mutual TLS between nodes.
    pub tls: Option<TlsOptions>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            snapshot_every: 10_000,
            no_leader_timeout_ms: 2_000,
            request_timeout_ms: 5_000,
            extra_toml: String::new(),
            encryption: None,
            tls: None,
        }
    }
}

impl ClusterOptions {
    /// The defaults with encryption at rest under a generated key with id 1.
    pub fn encrypted() -> Self {
        ClusterOptions {
            encryption: Some(1),
            ..ClusterOptions::default()
        }
    }
}

/// TLS settings of a test cluster. The harness generates a CA, one
/// certificate per node and a client certificate into the cluster's
/// temporary directory (see [`TlsFiles`]).
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub client_auth: ClientAuth,
    pub auth_clients_user: CertUser,
    /// Keep the plaintext RESP port open too (so [`TestCluster::client`] works).
    pub plaintext: bool,
    /// File polling interval; 0 leaves reloads to [`Server::reload_tls`].
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

/// Where a TLS test cluster's PEM files are.
#[derive(Debug, Clone)]
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
    /// Node `index` (0-based, as everywhere in the harness).
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
    /// The cluster's CA, to issue more certificates in a test.
    pub fn authority(&self) -> Result<Authority> {
        Ok(Authority::load(&self.ca(), &self.ca_key())?)
    }
}

fn generate_tls(dir: &Path, nodes: usize, client_cn: &str) -> Result<TlsFiles> {
    let ca = Authority::generate("raftlimit test CA")?;
    ca.write(dir, "ca")?;
    for id in 1..=nodes as NodeId {
        ca.issue(&Leaf::node(id))?
            .write(dir, &format!("node{id}"))?;
    }
    ca.issue(&Leaf::client(client_cn))?.write(dir, "client")?;
    Ok(TlsFiles {
        dir: dir.to_owned(),
    })
}

struct NodeSlot {
    config: Config,
    filter: NetFilter,
    running: Option<(Runtime, Server)>,
}

/// A cluster of in-process nodes.
pub struct TestCluster {
    nodes: Vec<NodeSlot>,
    tls: Option<TlsFiles>,
    _dir: tempfile::TempDir,
}

fn free_addr() -> Result<SocketAddr> {
    // Bind port 0 to let the kernel choose, then release it for the node.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

impl TestCluster {
    pub fn start(options: ClusterOptions) -> Result<TestCluster> {
        init_test_logging();
        let dir = tempfile::tempdir()?;
        let tls_files = match &options.tls {
            Some(tls) => Some(generate_tls(
                &dir.path().join("tls"),
                options.nodes,
                &tls.client_cn,
            )?),
            None => None,
        };
        let mut addrs = Vec::new();
        for _ in 0..options.nodes {
            addrs.push((free_addr()?, free_addr()?, free_addr()?));
        }
        let members: Vec<MemberConfig> = addrs
            .iter()
            .enumerate()
            .map(|(i, (resp, _, raft))| MemberConfig {
                id: i as NodeId + 1,
                resp_addr: resp.to_string(),
                raft_addr: raft.to_string(),
            })
            .collect();
        let mut nodes = Vec::new();
        for (i, (resp, http, raft)) in addrs.into_iter().enumerate() {
            let mut text = format!(
                "node_id = {}\ndata_dir = {:?}\nresp_addr = \"{resp}\"\nhttp_addr = \"{http}\"\nraft_addr = \"{raft}\"\n{}\n[raft]\nsnapshot_every = {}\nno_leader_timeout_ms = {}\nrequest_timeout_ms = {}\n",
                i + 1,
                dir.path().join(format!("node{}", i + 1)),
                options.extra_toml,
                options.snapshot_every,
                options.no_leader_timeout_ms,
                options.request_timeout_ms,
            );
            if let Some(key_id) = options.encryption {
                // Outside the data directory, as an operator would keep it.
                let key_file = dir.path().join(format!("node{}.keys", i + 1));
                let ring =
                    Keyring::generate(key_id).map_err(raftlimit_server::ServerError::from)?;
                raftlimit_server::keys::write_key_file(&key_file, &ring, false)?;
                text.push_str(&format!(
                    "[encryption]\nenabled = true\nkey_file = {key_file:?}\n"
                ));
            }
            let mut config = Config::from_toml(&text)?;
            // The file may set the follower mode; the harness sets the rest.
            config.cluster = ClusterConfig {
                name: "raftlimit-test".into(),
                nodes: members.clone(),
                ..config.cluster
            };
            if let (Some(tls), Some(files)) = (&options.tls, &tls_files) {
                config.tls = Some(TlsConfig {
                    addr: free_addr()?,
                    cert_file: files.node_cert(i),
                    key_file: files.node_key(i),
                    ca_file: files.ca(),
                    client_auth: tls.client_auth,
                    auth_clients_user: tls.auth_clients_user,
                    plaintext: tls.plaintext,
                    min_version: TlsVersion::Tls12,
                    reload_interval_ms: tls.reload_interval_ms,
                });
            }
            nodes.push(NodeSlot {
                config,
                filter: NetFilter::default(),
                running: None,
            });
        }
        let mut cluster = TestCluster {
            nodes,
            tls: tls_files,
            _dir: dir,
        };
        for i in 0..cluster.nodes.len() {
            cluster.restart(i)?;
        }
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn resp_addr(&self, node: usize) -> SocketAddr {
        self.nodes[node].config.resp_addr
    }

    /// The TLS RESP address of `node`, when the cluster runs with TLS.
    pub fn tls_addr(&self, node: usize) -> Option<SocketAddr> {
        self.nodes[node].config.tls.as_ref().map(|tls| tls.addr)
    }

    /// The generated PEM files, when the cluster runs with TLS.
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The Raft RPC address of `node`.
    pub fn raft_addr(&self, node: usize) -> SocketAddr {
        self.nodes[node].config.raft_addr
    }

    pub fn http_addr(&self, node: usize) -> SocketAddr {
        self.nodes[node].config.http_addr
    }

    pub fn data_dir(&self, node: usize) -> PathBuf {
        self.nodes[node].config.data_dir.clone()
    }

    /// The node's encryption key file, if it has one.
    pub fn key_file(&self, node: usize) -> Option<PathBuf> {
        self.nodes[node].config.encryption.key_file.clone()
    }

    /// The node's configuration, to change before its next (re)start.
    pub fn config_mut(&mut self, node: usize) -> &mut Config {
        &mut self.nodes[node].config
    }

    /// Runs `future` on a running node's runtime (for the node's async API).
    pub fn block_on<F: Future>(&self, node: usize, future: F) -> Option<F::Output> {
        let (runtime, _) = self.nodes[node].running.as_ref()?;
        Some(runtime.block_on(future))
    }

    pub fn is_running(&self, node: usize) -> bool {
        self.nodes[node].running.is_some()
    }

    pub fn server(&self, node: usize) -> Option<&Server> {
        self.nodes[node].running.as_ref().map(|(_, server)| server)
    }

    /// A synchronous Redis connection to `node`.
    pub fn client(&self, node: usize) -> Result<redis::Connection> {
        let client = redis::Client::open(format!("redis://{}/", self.resp_addr(node)))?;
        let conn = client.get_connection_with_timeout(Duration::from_secs(5))?;
        conn.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(conn)
    }

    /// A synchronous Redis connection to `node`, authenticated as `user`
    /// (the client sends `AUTH user password` on connect).
    pub fn client_as(&self, node: usize, user: &str, password: &str) -> Result<redis::Connection> {
        let info = redis::ConnectionInfo {
            addr: redis::ConnectionAddr::Tcp(
                self.resp_addr(node).ip().to_string(),
                self.resp_addr(node).port(),
            ),
            redis: redis::RedisConnectionInfo {
                username: Some(user.to_owned()),
                password: Some(password.to_owned()),
                ..Default::default()
            },
        };
        let client = redis::Client::open(info)?;
        let conn = client.get_connection_with_timeout(Duration::from_secs(5))?;
        conn.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(conn)
    }

    /// Kills a node abruptly: all its tasks are dropped mid-flight.
    pub fn kill(&mut self, node: usize) {
        if let Some((runtime, server)) = self.nodes[node].running.take() {
            drop(server);
            runtime.shutdown_timeout(Duration::from_millis(200));
        }
    }

    /// Stops a node cleanly.
    pub fn stop(&mut self, node: usize) {
        if let Some((runtime, server)) = self.nodes[node].running.take() {
            runtime.block_on(server.shutdown());
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }

    /// (Re)starts a node on its original addresses and data directory.
    pub fn restart(&mut self, node: usize) -> Result<()> {
        if self.nodes[node].running.is_some() {
            return Ok(());
        }
        let slot = &self.nodes[node];
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("node{}", node + 1))
            .enable_all()
            .build()?;
        let config = slot.config.clone();
        let filter = slot.filter.clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        // A killed node's storage may still be closing on a blocking thread,
        // and its ports may take a moment to free: retry briefly.
        let server = loop {
            let attempt = runtime.block_on(async {
                let listeners = Listeners::bind(&config).await?;
                Server::start(config.clone(), listeners, filter.clone())
                    .await
                    .map_err(HarnessError::from)
            });
            match attempt {
                Ok(server) => break server,
                Err(err) if is_transient(&err) && Instant::now() < deadline => {
                    tracing::debug!(%err, "restart attempt failed; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(err) => return Err(err),
            }
        };
        self.nodes[node].running = Some((runtime, server));
        Ok(())
    }

    /// Cuts `node` off from every peer, in both directions.
    pub fn isolate(&self, node: usize) {
        let peers: Vec<NodeId> = (1..=self.nodes.len() as NodeId)
            .filter(|&id| id != node as NodeId + 1)
            .collect();
        self.nodes[node].filter.block(peers);
    }

    /// Freezes `node` as a paused process would be: its Raft connections
    /// stay open and nothing on them is answered or sent (`NetFilter`).
    pub fn freeze(&self, node: usize) {
        self.nodes[node].filter.freeze();
    }

    pub fn heal(&self, node: usize) {
        self.nodes[node].filter.heal();
    }

    /// The index of the node every running node agrees leads, waiting up to `timeout`.
    pub fn wait_for_leader(&self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut leaders = self.nodes.iter().filter_map(|slot| {
                let (_, server) = slot.running.as_ref()?;
                let status = server.node().status();
                status.is_leader.then_some(status.id as usize - 1)
            });
            if let (Some(leader), None) = (leaders.next(), leaders.next()) {
                let agreed = self
                    .nodes
                    .iter()
                    .filter_map(|s| s.running.as_ref())
                    .filter(|(_, server)| !self.nodes[leader].filter.is_blocked(server.node().id()))
                    .all(|(_, server)| server.node().status().leader == Some(leader as NodeId + 1));
                if agreed {
                    return Ok(leader);
                }
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout("no agreed leader".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every running node has applied at least `index`.
    pub fn wait_applied(&self, index: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let behind = self
                .nodes
                .iter()
                .filter_map(|s| s.running.as_ref())
                .any(|(_, server)| server.node().status().applied_index < index);
            if !behind {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout(format!(
                    "nodes did not apply index {index}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Indexes of the running nodes other than `node`.
    pub fn others(&self, node: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| i != node && self.is_running(i))
            .collect()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Whether a failed start may succeed on retry: a port still held, or the
/// previous instance's RocksDB not yet closed. Anything else (configuration,
/// keys, a refused data directory) fails the same way every time.
fn is_transient(err: &HarnessError) -> bool {
    use raftlimit_server::ServerError;
    matches!(
        err,
        HarnessError::Io(_)
            | HarnessError::Server(
                ServerError::Bind { .. }
                    | ServerError::Io(_)
                    | ServerError::Raft(raftlimit_raft::Error::Rocks(_))
            )
    )
}

/// Test logs go to the test's captured output; `RUST_LOG` adjusts them.
pub fn init_test_logging() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}
