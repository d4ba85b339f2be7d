//! [`ProcessCluster`]: real `raftlimit-server` processes on this machine.
//!
//! Each node gets a config file written from its typed [`Config`]
//! (`node<N>.toml`), a data directory and a log file (`node<N>.log`, stdout
//! and stderr, appended across restarts) in the cluster's directory. Ports
//! are reserved for the cluster's lifetime ([`crate::ports`]), so a node
//! never loses its port to another program, not even across a kill and
//! restart. Readiness is the node's own `/readyz` (it knows a leader and
//! has applied what is committed). Every process is stopped by its PID:
//! [`ProcessCluster::shutdown`] asks with SIGTERM, dropping the cluster
//! sends SIGKILL.
//!
//! A cluster can also be started from existing config files
//! ([`ProcessCluster::from_configs`]): `make cluster` runs `config/` that
//! way, on its fixed ports and persistent data.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use parking_lot::Mutex;
use raftlimit_raft::NodeId;
use raftlimit_server::config::{Config, Overrides};
use serde::Serialize;

use crate::error::{LauncherError, Result};
use crate::ports::PortReservation;
use crate::spec::{ClusterSpec, NodeAddrs, TlsFiles};

/// How to run the processes.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// The `raftlimit-server` binary ([`server_binary`] finds the build's).
    pub bin: PathBuf,
    /// Where configs, data and logs go (created if missing); a temporary
    /// directory, removed with the cluster, when `None`.
    pub dir: Option<PathBuf>,
    /// How long [`ProcessCluster::start`] waits for every node to be ready.
    pub ready_timeout: Duration,
    /// Run a copy of the binary kept in the cluster directory, so restarts
    /// run the binary the cluster started with even if a rebuild replaces
    /// the original meanwhile.
    pub copy_binary: bool,
    /// Extra environment variables for every node.
    pub env: Vec<(OsString, OsString)>,
}

impl ProcessOptions {
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        ProcessOptions {
            bin: bin.into(),
            dir: None,
            ready_timeout: Duration::from_secs(60),
            copy_binary: false,
            env: Vec::new(),
        }
    }

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
}

/// The server binary: `$RAFTLIMIT_SERVER_BIN`, else
/// `$RAFTLIMIT_BIN_DIR/raftlimit-server`, else the one beside the running
/// program (cargo puts every binary of a build in one directory, and test
/// executables one level below it, in `deps/`), else the release build
/// under `$CARGO_TARGET_DIR`.
pub fn server_binary() -> Result<PathBuf> {
    const NAME: &str = "raftlimit-server";
    let beside_me = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?;
        let dir = if dir.ends_with("deps") {
            dir.parent()?
        } else {
            dir
        };
        Some(dir.join(NAME))
    });
    let candidates: Vec<PathBuf> = [
        std::env::var_os("RAFTLIMIT_SERVER_BIN").map(PathBuf::from),
        std::env::var_os("RAFTLIMIT_BIN_DIR").map(|d| PathBuf::from(d).join(NAME)),
        beside_me,
        std::env::var_os("CARGO_TARGET_DIR").map(|d| {
            PathBuf::from(d)
                .join("x86_64-unknown-linux-gnu/release")
                .join(NAME)
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| LauncherError::NoBinary(format!("{candidates:?}")))
}

/// One node as the caller sees it (and `raftlimit-cluster --json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub id: NodeId,
    /// `None` while the node is not running.
    pub pid: Option<u32>,
    /// Where clients connect: the TLS port when the plaintext one is closed.
    pub addr: SocketAddr,
    /// The plaintext RESP port, when it is open.
    pub resp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    pub http: SocketAddr,
    pub raft: SocketAddr,
    pub config: PathBuf,
    pub log: PathBuf,
    pub data_dir: PathBuf,
}

/// The whole cluster, for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterInfo {
    pub name: String,
    pub dir: PathBuf,
    pub leader: Option<NodeId>,
    pub nodes: Vec<NodeView>,
    /// With TLS: `{"dir": …}`; the CA is `ca.crt`, the client certificate
    /// `client.crt` and `client.key` there.
    pub tls: Option<TlsFiles>,
}

#[derive(Debug)]
struct Node {
    id: NodeId,
    addrs: NodeAddrs,
    plaintext: bool,
    config: PathBuf,
    log: PathBuf,
    data_dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn view(&self) -> NodeView {
        NodeView {
            id: self.id,
            pid: self.child.as_ref().map(Child::id),
            addr: self.addrs.client(self.plaintext),
            resp: self.plaintext.then_some(self.addrs.resp),
            tls: self.addrs.tls,
            http: self.addrs.http,
            raft: self.addrs.raft,
            config: self.config.clone(),
            log: self.log.clone(),
            data_dir: self.data_dir.clone(),
        }
    }
}

/// Local server processes; see the module docs.
#[derive(Debug)]
pub struct ProcessCluster {
    name: String,
    bin: PathBuf,
    dir: PathBuf,
    env: Vec<(OsString, OsString)>,
    nodes: Mutex<Vec<Node>>,
    tls: Option<TlsFiles>,
    /// Held until the cluster is dropped, after the processes are gone.
    _ports: PortReservation,
    /// Removed last (fields drop in order, after `Drop::drop`).
    _temp: Option<tempfile::TempDir>,
}

/// How long a node may take to stop on SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// A probe that takes longer is a node that is not ready (or is paused).
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const POLL: Duration = Duration::from_millis(50);

impl ProcessCluster {
    /// Writes every node's config from `spec` and starts the nodes, then
    /// waits until each is ready.
    pub fn start(spec: &ClusterSpec, options: &ProcessOptions) -> Result<Self> {
        let (dir, temp) = cluster_dir(options)?;
        let mut ports = PortReservation::new();
        let addrs = spec.allocate(&mut ports)?;
        let built = spec.build(&dir, &addrs)?;
        let mut nodes = Vec::new();
        for (config, addrs) in built.configs.iter().zip(&built.addrs) {
            let path = dir.join(format!("node{}.toml", config.node_id));
            // Owner-only: the file may hold passwords.
            write_private(&path, config.to_toml()?.as_bytes())?;
            nodes.push(Node {
                id: config.node_id,
                addrs: *addrs,
                plaintext: config.plaintext_enabled(),
                log: dir.join(format!("node{}.log", config.node_id)),
                data_dir: config.data_dir.clone(),
                config: path,
                child: None,
            });
        }
        Self::launch(
            spec.name.clone(),
            dir,
            temp,
            ports,
            built.tls,
            nodes,
            options,
        )
    }

    /// Starts one node per existing config file, read as the server reads
    /// it (file, then `RAFTLIMIT_*` environment variables). Logs go to the
    /// directory of [`ProcessOptions::dir`] (else a temporary one).
    pub fn from_configs(paths: &[PathBuf], options: &ProcessOptions) -> Result<Self> {
        let (dir, temp) = cluster_dir(options)?;
        let mut nodes = Vec::new();
        let mut name = None;
        for path in paths {
            let overrides = Overrides::try_parse_from([
                OsString::from("raftlimit-server"),
                OsString::from("--config"),
                path.clone().into_os_string(),
            ])
            .map_err(|e| LauncherError::Spec(e.to_string()))?;
            let config = Config::load(&overrides)?;
            name.get_or_insert_with(|| config.cluster.name.clone());
            let tls = config.tls.as_ref().map(|t| t.addr);
            nodes.push(Node {
                id: config.node_id,
                addrs: NodeAddrs {
                    resp: config.resp_addr,
                    http: config.http_addr,
                    raft: config.raft_addr,
                    tls,
                },
                plaintext: config.plaintext_enabled(),
                log: dir.join(format!("node{}.log", config.node_id)),
                data_dir: config.data_dir.clone(),
                config: path.clone(),
                child: None,
            });
        }
        if nodes.is_empty() {
            return Err(LauncherError::Spec("no config files".into()));
        }
        let name = name.unwrap_or_default();
        Self::launch(
            name,
            dir,
            temp,
            PortReservation::new(),
            None,
            nodes,
            options,
        )
    }

    fn launch(
        name: String,
        dir: PathBuf,
        temp: Option<tempfile::TempDir>,
        ports: PortReservation,
        tls: Option<TlsFiles>,
        nodes: Vec<Node>,
        options: &ProcessOptions,
    ) -> Result<Self> {
        let bin = if options.copy_binary {
            let copy = dir.join("raftlimit-server");
            std::fs::copy(&options.bin, &copy).map_err(|e| LauncherError::file(&options.bin, e))?;
            copy
        } else {
            options.bin.clone()
        };
        let ids: Vec<NodeId> = nodes.iter().map(|n| n.id).collect();
        let cluster = ProcessCluster {
            name,
            bin,
            dir,
            env: options.env.clone(),
            nodes: Mutex::new(nodes),
            tls,
            _ports: ports,
            _temp: temp,
        };
        for id in ids {
            cluster.start_node(id)?;
        }
        cluster.wait_ready(options.ready_timeout)?;
        Ok(cluster)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster directory (configs, data, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node ids, in order.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.lock().iter().map(|n| n.id).collect()
    }

    /// Every node's addresses, files and PID, in node order.
    pub fn nodes(&self) -> Vec<NodeView> {
        self.nodes.lock().iter().map(Node::view).collect()
    }

    pub fn node(&self, id: NodeId) -> Result<NodeView> {
        self.with_node(id, |n| Ok(n.view()))
    }

    /// The PID of a running node.
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        self.node(id).ok().and_then(|n| n.pid)
    }

    /// The generated PEM files, when the cluster runs with TLS.
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Everything at once, with the leader if one is agreed right now.
    pub fn info(&self) -> ClusterInfo {
        ClusterInfo {
            name: self.name.clone(),
            dir: self.dir.clone(),
            leader: self.current_leader(),
            nodes: self.nodes(),
            tls: self.tls.clone(),
        }
    }

    fn with_node<T>(&self, id: NodeId, f: impl FnOnce(&mut Node) -> Result<T>) -> Result<T> {
        let mut nodes = self.nodes.lock();
        let node = nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or_else(|| LauncherError::node(id, "no such node"))?;
        f(node)
    }

    /// Starts a node that is not running, on its existing data.
    pub fn start_node(&self, id: NodeId) -> Result<()> {
        self.with_node(id, |node| {
            if let Some(child) = node.child.as_mut() {
                if matches!(child.try_wait(), Ok(None)) {
                    return Ok(());
                }
            }
            node.child = Some(self.spawn(node)?);
            Ok(())
        })
    }

    fn spawn(&self, node: &Node) -> Result<Child> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| LauncherError::file(&node.log, e))?;
        let err = log
            .try_clone()
            .map_err(|e| LauncherError::file(&node.log, e))?;
        let mut command = Command::new(&self.bin);
        command
            .arg("--config")
            .arg(&node.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        // ETXTBSY: a process forked elsewhere in this program while the
        // binary copy was still open for writing holds that descriptor
        // until it execs; it lets go within moments.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match command.spawn() {
                Err(e) if e.raw_os_error() == Some(26) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => {
                    return other.map_err(|e| {
                        LauncherError::node(
                            node.id,
                            format!("starting {}: {e}", self.bin.display()),
                        )
                    })
                }
            }
        }
    }

    /// SIGKILL: the node stops at once, as in a crash. Returns when the
    /// process is gone.
    pub fn kill(&self, id: NodeId) -> Result<()> {
        self.with_node(id, |node| {
            if let Some(mut child) = node.child.take() {
                // SIGKILL reaches a stopped process too; reaping frees its ports.
                child
                    .kill()
                    .and_then(|()| child.wait().map(|_| ()))
                    .map_err(|e| LauncherError::node(id, format!("kill -9: {e}")))?;
            }
            Ok(())
        })
    }

    /// SIGTERM, then SIGKILL if the node has not stopped after 10 s.
    pub fn stop_node(&self, id: NodeId) -> Result<()> {
        self.with_node(id, |node| match node.child.take() {
            Some(child) => stop(id, child),
            None => Ok(()),
        })
    }

    /// Stops every node with SIGTERM (all at once, then waits for each).
    pub fn shutdown(&self) -> Result<()> {
        let children: Vec<(NodeId, Child)> = self
            .nodes
            .lock()
            .iter_mut()
            .filter_map(|n| Some((n.id, n.child.take()?)))
            .collect();
        for (_, child) in &children {
            // A paused node must run again to handle SIGTERM.
            let _ = signal(child.id(), "CONT");
            let _ = signal(child.id(), "TERM");
        }
        let mut first_error = None;
        for (id, child) in children {
            if let Err(e) = wait_or_kill(id, child) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// SIGSTOP: the node freezes with its connections open.
    pub fn pause(&self, id: NodeId) -> Result<()> {
        self.signal_node(id, "STOP")
    }

    /// SIGCONT after [`ProcessCluster::pause`].
    pub fn resume(&self, id: NodeId) -> Result<()> {
        self.signal_node(id, "CONT")
    }

    fn signal_node(&self, id: NodeId, name: &str) -> Result<()> {
        self.with_node(id, |node| {
            let child = node
                .child
                .as_ref()
                .ok_or_else(|| LauncherError::node(id, "not running"))?;
            signal(child.id(), name).map_err(|e| LauncherError::node(id, e))
        })
    }

    /// Whether the node's process is alive (a paused one is).
    pub fn is_running(&self, id: NodeId) -> bool {
        self.with_node(id, |node| {
            Ok(node
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None))))
        })
        .unwrap_or(false)
    }

    /// Whether any node started by the launcher has exited.
    pub fn any_exited(&self) -> bool {
        self.nodes.lock().iter_mut().any(|n| {
            n.child
                .as_mut()
                .is_some_and(|c| !matches!(c.try_wait(), Ok(None)))
        })
    }

    /// The node's own view: `Some(leader)` when `/readyz` says ready.
    fn ready(&self, id: NodeId) -> Option<Option<NodeId>> {
        let http = self.node(id).ok()?.http;
        let (status, body) = raftlimit_server::http::probe(http, "/readyz", PROBE_TIMEOUT).ok()?;
        (status == 200).then(|| parse_leader(&body))
    }

    /// Waits until every running node is ready. A node that exits meanwhile
    /// fails the wait at once, with the end of its log.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for id in self.ids() {
            if self.pid(id).is_none() {
                continue;
            }
            loop {
                if self.ready(id).is_some() {
                    break;
                }
                if !self.is_running(id) {
                    return Err(LauncherError::node(
                        id,
                        format!("exited during startup; log:\n{}", self.log_tail(id, 20)),
                    ));
                }
                if Instant::now() > deadline {
                    return Err(LauncherError::Timeout(format!(
                        "node {id} not ready after {timeout:?}; log:\n{}",
                        self.log_tail(id, 20)
                    )));
                }
                std::thread::sleep(POLL);
            }
        }
        Ok(())
    }

    /// The leader every running node agrees on, if they agree right now.
    pub fn current_leader(&self) -> Option<NodeId> {
        let mut agreed = None;
        for id in self.ids() {
            if !self.is_running(id) {
                continue;
            }
            let leader = self.ready(id)??;
            if *agreed.get_or_insert(leader) != leader {
                return None;
            }
        }
        agreed.filter(|&leader| self.is_running(leader))
    }

    /// Waits up to `timeout` for a leader every running node agrees on.
    pub fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.current_leader() {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                return Err(LauncherError::Timeout(format!(
                    "no agreed leader after {timeout:?}"
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The running nodes other than `id`, in order.
    pub fn others(&self, id: NodeId) -> Vec<NodeId> {
        self.ids()
            .into_iter()
            .filter(|&n| n != id && self.is_running(n))
            .collect()
    }

    /// The last `lines` lines of the node's log.
    pub fn log_tail(&self, id: NodeId, lines: usize) -> String {
        let Ok(path) = self.node(id).map(|n| n.log) else {
            return String::new();
        };
        tail(&path, lines).unwrap_or_else(|e| format!("({}: {e})", path.display()))
    }

    /// Copies each node's log into `to` as `node<N>.log`.
    pub fn collect_logs(&self, to: &Path) -> Result<()> {
        std::fs::create_dir_all(to).map_err(|e| LauncherError::file(to, e))?;
        for node in self.nodes() {
            let target = to.join(format!("node{}.log", node.id));
            if node.log.exists() {
                std::fs::copy(&node.log, &target).map_err(|e| LauncherError::file(&target, e))?;
            } else {
                std::fs::File::create(&target).map_err(|e| LauncherError::file(&target, e))?;
            }
        }
        Ok(())
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for node in self.nodes.lock().iter_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn cluster_dir(options: &ProcessOptions) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &options.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| LauncherError::file(dir, e))?;
            Ok((dir.clone(), None))
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("raftlimit-cluster-")
                .tempdir()?;
            Ok((temp.path().to_owned(), Some(temp)))
        }
    }
}

fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(contents))
        .map_err(|e| LauncherError::file(path, e))
}

/// Sends `kill -<name>` to `pid` (a process this launcher started).
fn signal(pid: u32, name: &str) -> std::result::Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("kill -{name} {pid}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{name} {pid} failed: {status}"))
    }
}

fn stop(id: NodeId, child: Child) -> Result<()> {
    let _ = signal(child.id(), "CONT");
    let _ = signal(child.id(), "TERM");
    wait_or_kill(id, child)
}

/// Waits up to [`STOP_GRACE`] for a node told to stop, then kills it.
fn wait_or_kill(id: NodeId, mut child: Child) -> Result<()> {
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                return child
                    .kill()
                    .and_then(|()| child.wait().map(|_| ()))
                    .map_err(|e| LauncherError::node(id, format!("kill -9: {e}")))
            }
            Err(e) => return Err(LauncherError::node(id, format!("waiting: {e}"))),
        }
    }
}

/// The `leader=<id>` of a `/readyz` body.
fn parse_leader(body: &str) -> Option<NodeId> {
    body.split_whitespace()
        .find_map(|field| field.strip_prefix("leader="))
        .and_then(|id| id.parse().ok())
}

/// The last `lines` lines of a file, reading at most its last 64 KiB.
fn tail(path: &Path, lines: usize) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    Ok(all[all.len().saturating_sub(lines)..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readyz_names_the_leader() {
        assert_eq!(
            parse_leader("leader=2 commit_index=5 applied_index=5\n"),
            Some(2)
        );
        assert_eq!(
            parse_leader("leader=none commit_index=0 applied_index=0\n"),
            None
        );
        assert_eq!(parse_leader(""), None);
    }
}
