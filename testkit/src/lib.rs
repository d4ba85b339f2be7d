//! Test harness: starts a real raftlimit cluster inside the test process,
//! with real TCP on loopback and temporary data directories, and can kill,
//! restart, isolate and freeze its nodes and move their clocks.
//!
//! The cluster is described by the launcher's [`ClusterSpec`] (here under
//! its old name [`ClusterOptions`]), which builds every node's typed config;
//! ports come from a [`PortReservation`] held as long as the cluster, so a
//! restarted node finds its ports free. Processes instead of in-process
//! nodes: `raftlimit_launcher::ProcessCluster`, from the same spec.
//!
//! Each node runs on its own tokio runtime, so killing a node drops every one
//! of its tasks at once, like a crashed process: nothing is flushed that was
//! not already durable.
//!
//! Each node has its own [`Clock`] (the wall clock plus an offset):
//! [`TestCluster::advance_clocks`] moves every node's time forward at once,
//! so a test expires a key or a lease without sleeping, and
//! [`TestCluster::clock`] skews one node.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use raftlimit_launcher::PortReservation;
pub use raftlimit_launcher::{ClusterSpec, TlsFiles, TlsOptions};
use raftlimit_raft::network::NetFilter;
use raftlimit_raft::node::Clock;
use raftlimit_raft::NodeId;
use raftlimit_server::config::Config;
use raftlimit_server::{Listeners, Server};
use tokio::runtime::Runtime;

/// Errors from the harness itself.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("server: {0}")]
    Server(#[from] raftlimit_server::ServerError),
    #[error("launcher: {0}")]
    Launcher(#[from] raftlimit_launcher::LauncherError),
    #[error("redis client: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Timeout(String),
}

pub type Result<T> = std::result::Result<T, HarnessError>;

/// What a test may change before starting the cluster: the launcher's
/// [`ClusterSpec`] (node count, Raft timing, `extra_toml`, encryption,
/// TLS…).
pub type ClusterOptions = ClusterSpec;

struct NodeSlot {
    config: Config,
    filter: NetFilter,
    running: Option<(Runtime, Server)>,
}

/// A cluster of in-process nodes.
pub struct TestCluster {
    nodes: Vec<NodeSlot>,
    tls: Option<TlsFiles>,
    /// Held until the nodes are gone (fields drop after `Drop::drop`).
    _ports: PortReservation,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    pub fn start(options: ClusterOptions) -> Result<TestCluster> {
        init_test_logging();
        let dir = tempfile::tempdir()?;
        let mut ports = PortReservation::new();
        let addrs = options.allocate(&mut ports)?;
        let built = options.build(dir.path(), &addrs)?;
        let nodes = built
            .configs
            .into_iter()
            .map(|mut config| {
                config.clock = Clock::system();
                NodeSlot {
                    config,
                    filter: NetFilter::default(),
                    running: None,
                }
            })
            .collect();
        let mut cluster = TestCluster {
            nodes,
            tls: built.tls,
            _ports: ports,
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

    /// `node`'s clock: advance or skew it to move that node's time alone.
    /// It survives restarts (a restarted node keeps its offset).
    pub fn clock(&self, node: usize) -> &Clock {
        &self.nodes[node].config.clock
    }

    /// Moves every node's clock forward by `by`: keys, limiter windows and
    /// leases expire as if that much time had passed. Entries proposed from
    /// now on carry the later time; nothing already applied changes.
    pub fn advance_clocks(&self, by: Duration) {
        for slot in &self.nodes {
            slot.config.clock.advance(by);
        }
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
        // A killed node's storage may still be closing on a blocking thread:
        // retry briefly. (Its ports stay reserved for the cluster.)
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

/// Whether a failed start may succeed on retry: the previous instance's
/// RocksDB not yet closed, or its sockets not yet released. Anything else (configuration,
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

/// Polls `condition` every 10 ms until it holds, for at most `timeout`:
/// what a test waits for instead of sleeping a fixed time. The error names
/// `what` was awaited.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() > deadline {
            return Err(HarnessError::Timeout(format!(
                "{what}: not within {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
