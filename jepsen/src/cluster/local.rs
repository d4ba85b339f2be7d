//! A cluster of local `raftlimit-server` processes on loopback: kill -9, SIGSTOP/SIGCONT, no partitions.
//!
//! Each node gets free loopback ports (RESP, Raft, HTTP), a config file, a
//! data directory and a log file (stdout and stderr) under the cluster's
//! directory. Ports are picked by binding port 0 and releasing it before the
//! node starts; the short window in which another process could take a port
//! is accepted, and a node that fails to come up says so. Dropping the
//! cluster kills every process it started.

use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Cluster, Endpoint, Partition};
use crate::Error;

/// How to start a local cluster.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The `raftlimit-server` binary.
    pub bin: PathBuf,
    /// Where configs, data and logs go (created if missing); a temporary
    /// directory, removed with the cluster, when `None`.
    pub dir: Option<PathBuf>,
    /// Number of nodes.
    pub nodes: u64,
    /// How long to wait for every node to become ready.
    pub ready_timeout: Duration,
}

impl LocalOptions {
    /// Three nodes of `bin` in a temporary directory.
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        Self {
            bin: bin.into(),
            dir: None,
            nodes: 3,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// One node's files and addresses.
#[derive(Debug)]
struct Node {
    id: u64,
    resp: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// Local server processes; see the module docs.
#[derive(Debug)]
pub struct LocalCluster {
    bin: PathBuf,
    nodes: Mutex<Vec<Node>>,
    /// Removed after `drop` has stopped the processes (fields drop last).
    _temp: Option<tempfile::TempDir>,
}

/// The server binary: `$RAFTLIMIT_SERVER_BIN`, else `$RAFTLIMIT_BIN_DIR/raftlimit-server`,
/// else the shared release build under `$CARGO_TARGET_DIR`.
pub fn server_binary() -> Result<PathBuf, Error> {
    let candidates: Vec<PathBuf> = [
        std::env::var_os("RAFTLIMIT_SERVER_BIN").map(PathBuf::from),
        std::env::var_os("RAFTLIMIT_BIN_DIR").map(|d| PathBuf::from(d).join("raftlimit-server")),
        std::env::var_os("CARGO_TARGET_DIR")
            .map(|d| PathBuf::from(d).join("x86_64-unknown-linux-gnu/release/raftlimit-server")),
    ]
    .into_iter()
    .flatten()
    .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            Error::Cluster(format!(
                "raftlimit-server binary not found (looked at {candidates:?}); build it with \
                 `source scripts/env.sh && cargo build --release -p raftlimit-server` or set RAFTLIMIT_SERVER_BIN"
            ))
        })
}

fn free_port() -> Result<SocketAddr, Error> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::Cluster(format!("no free loopback port: {e}")))
}

/// Attempts at starting a cluster whose nodes keep exiting at startup.
const START_ATTEMPTS: usize = 3;

impl LocalCluster {
    /// Writes the configs and starts every node, then waits until all are ready.
    ///
    /// Free ports are found by binding port 0 and letting go, so another
    /// process (a test suite running alongside) may take one before the node
    /// binds it, and that node exits at startup. Such a start is retried from
    /// scratch on fresh ports.
    pub fn start(options: &LocalOptions) -> Result<Self, Error> {
        let mut attempt = 1;
        loop {
            match Self::start_once(options) {
                Err(StartError::Exited(e)) if attempt < START_ATTEMPTS => {
                    eprintln!(
                        "local cluster start {attempt} failed ({e}); retrying on fresh ports"
                    );
                    attempt += 1;
                }
                Err(StartError::Exited(e) | StartError::Other(e)) => return Err(e),
                Ok(cluster) => return Ok(cluster),
            }
        }
    }

    fn start_once(options: &LocalOptions) -> Result<Self, StartError> {
        let (dir, temp) = match &options.dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("raftlimit-jepsen-")
                    .tempdir()
                    .map_err(|e| Error::Cluster(format!("temporary directory: {e}")))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, e))?;
        let mut addrs = Vec::new();
        for _ in 0..options.nodes {
            addrs.push((free_port()?, free_port()?, free_port()?));
        }
        let mut members = String::new();
        for (i, (resp, raft, _)) in addrs.iter().enumerate() {
            members.push_str(&format!(
                "\n[[cluster.nodes]]\nid = {}\nresp_addr = \"{resp}\"\nraft_addr = \"{raft}\"\n",
                i + 1
            ));
        }
        let mut nodes = Vec::new();
        for (i, (resp, raft, http)) in addrs.iter().enumerate() {
            let id = i as u64 + 1;
            let data = dir.join(format!("node{id}"));
            let config = dir.join(format!("node{id}.toml"));
            let text = format!(
                "# Node {id} of a chaos-test cluster.\nnode_id = {id}\ndata_dir = {data:?}\n\
                 resp_addr = \"{resp}\"\nhttp_addr = \"{http}\"\nraft_addr = \"{raft}\"\n\n\
                 [cluster]\nname = \"raftlimit-jepsen\"\n{members}"
            );
            std::fs::write(&config, text).map_err(|e| Error::file(&config, e))?;
            nodes.push(Node {
                id,
                resp: *resp,
                config,
                log: dir.join(format!("node{id}.log")),
                child: None,
            });
        }
        // Restarts run the binary the cluster started with, even if a rebuild
        // replaces the original mid-run.
        let bin = dir.join("raftlimit-server");
        std::fs::copy(&options.bin, &bin).map_err(|e| Error::file(&options.bin, e))?;
        let cluster = Self {
            bin,
            nodes: Mutex::new(nodes),
            _temp: temp,
        };
        // A retried start begins with empty data directories.
        for node in cluster.nodes.lock().iter() {
            let data = dir.join(format!("node{}", node.id));
            if data.exists() {
                std::fs::remove_dir_all(&data).map_err(|e| Error::file(&data, e))?;
            }
        }
        for id in 1..=options.nodes {
            cluster.start(id)?;
        }
        match cluster.wait_ready(options.ready_timeout) {
            Ok(()) => Ok(cluster),
            Err(e) if cluster.any_exited() => Err(StartError::Exited(e)),
            Err(e) => Err(StartError::Other(e)),
        }
    }

    fn spawn(&self, node: &Node) -> Result<Child, Error> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| Error::file(&node.log, e))?;
        let err = log.try_clone().map_err(|e| Error::file(&node.log, e))?;
        let mut command = Command::new(&self.bin);
        command
            .arg("--config")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        // ETXTBSY: a process forked elsewhere in this program while the
        // binary copy was still open for writing holds that descriptor until
        // it execs; it lets go within moments.
        let mut attempts = 0;
        loop {
            match command.spawn() {
                Err(e) if e.raw_os_error() == Some(26) && attempts < 50 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => {
                    return other.map_err(|e| {
                        Error::Cluster(format!("starting {}: {e}", self.bin.display()))
                    })
                }
            }
        }
    }

    /// Waits until every running node answers its health check.
    fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let configs: Vec<(u64, PathBuf, PathBuf)> = self
            .nodes
            .lock()
            .iter()
            .map(|n| (n.id, n.config.clone(), n.log.clone()))
            .collect();
        for (id, config, log) in configs {
            loop {
                let ready = Command::new(&self.bin)
                    .arg("--config")
                    .arg(&config)
                    .arg("healthcheck")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                if ready {
                    break;
                }
                if self.exited(id) {
                    return Err(Error::Cluster(format!(
                        "node {id} exited during startup; see {}",
                        log.display()
                    )));
                }
                if Instant::now() > deadline {
                    return Err(Error::Cluster(format!(
                        "node {id} not ready after {timeout:?}; see {}",
                        log.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    fn exited(&self, id: u64) -> bool {
        let mut nodes = self.nodes.lock();
        match nodes
            .iter_mut()
            .find(|n| n.id == id)
            .and_then(|n| n.child.as_mut())
        {
            Some(child) => matches!(child.try_wait(), Ok(Some(_))),
            None => true,
        }
    }

    /// Whether any node has exited.
    fn any_exited(&self) -> bool {
        let ids: Vec<u64> = self.nodes.lock().iter().map(|n| n.id).collect();
        ids.into_iter().any(|id| self.exited(id))
    }

    fn with_node<T>(
        &self,
        id: u64,
        f: impl FnOnce(&mut Node) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut nodes = self.nodes.lock();
        let node = nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or_else(|| Error::Fault(format!("no node {id}")))?;
        f(node)
    }

    /// Sends a signal to a running node by PID.
    fn signal(node: &Node, signal: &str) -> Result<(), Error> {
        let child = node
            .child
            .as_ref()
            .ok_or_else(|| Error::Fault(format!("node {} is not running", node.id)))?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .map_err(|e| Error::Fault(format!("kill -{signal}: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Fault(format!(
                "kill -{signal} {} failed: {status}",
                child.id()
            )))
        }
    }
}

impl Cluster for LocalCluster {
    fn endpoints(&self) -> Vec<Endpoint> {
        self.nodes
            .lock()
            .iter()
            .map(|n| Endpoint {
                node: n.id,
                addr: n.resp,
                tls: None,
                user: None,
                password: None,
            })
            .collect()
    }

    fn kill(&self, node: u64) -> Result<(), Error> {
        self.with_node(node, |n| {
            let Some(mut child) = n.child.take() else {
                return Ok(());
            };
            // SIGKILL reaches a stopped process too; reaping it frees the ports.
            child
                .kill()
                .and_then(|()| child.wait().map(|_| ()))
                .map_err(|e| Error::Fault(format!("kill -9 node {node}: {e}")))
        })
    }

    fn start(&self, node: u64) -> Result<(), Error> {
        let mut nodes = self.nodes.lock();
        let n = nodes
            .iter_mut()
            .find(|n| n.id == node)
            .ok_or_else(|| Error::Fault(format!("no node {node}")))?;
        if let Some(child) = n.child.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                return Ok(());
            }
        }
        let child = self.spawn(n)?;
        n.child = Some(child);
        Ok(())
    }

    fn pause(&self, node: u64) -> Result<(), Error> {
        self.with_node(node, |n| Self::signal(n, "STOP"))
    }

    fn resume(&self, node: u64) -> Result<(), Error> {
        self.with_node(node, |n| Self::signal(n, "CONT"))
    }

    fn partition(&self, _partition: &Partition) -> Result<(), Error> {
        Err(Error::Unsupported(
            "local processes share one network namespace, so the local backend cannot partition \
             them; use the docker backend"
                .into(),
        ))
    }

    fn heal(&self) -> Result<(), Error> {
        // Nothing to undo: this backend never partitions.
        Ok(())
    }

    fn collect_logs(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
        for n in self.nodes.lock().iter() {
            let to = dir.join(format!("node{}.log", n.id));
            if n.log.exists() {
                std::fs::copy(&n.log, &to).map_err(|e| Error::file(&to, e))?;
            } else {
                File::create(&to).map_err(|e| Error::file(&to, e))?;
            }
        }
        Ok(())
    }
}

/// Why [`LocalCluster::start_once`] failed: a node exited (worth another
/// try on fresh ports) or anything else.
#[derive(Debug)]
enum StartError {
    Exited(Error),
    Other(Error),
}

impl From<Error> for StartError {
    fn from(e: Error) -> Self {
        StartError::Other(e)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for n in self.nodes.lock().iter_mut() {
            if let Some(mut child) = n.child.take() {
                // A stopped process dies of SIGKILL as well; wait reaps it.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
