//! The servers a suite measures: redis-server instances and raftlimit clusters,
//! each a child process on loopback, in a temporary directory, stopped by PID.
//!
//! raftlimit clusters come from the project's launcher (`raftlimit-launcher`:
//! a `ClusterSpec`, reserved ports, one process per node); [`start_cluster`]
//! only says which cluster (plain, or TLS + AUTH + encryption at rest) and
//! waits for a leader. redis-server is started here directly.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::conn::{Connector, Target, TlsOptions};
use super::resp::{bulk_payload, Arg};
use super::BenchError;

/// A child process, killed (by PID) and reaped when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// Its combined stdout and stderr.
    pub log: PathBuf,
}

impl Process {
    fn spawn(mut command: Command, log: &Path) -> Result<Self, BenchError> {
        let out =
            File::create(log).map_err(|e| BenchError::Io(format!("{}: {e}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| BenchError::Io(format!("{}: {e}", log.display())))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| BenchError::Io(format!("starting {:?}: {e}", command.get_program())))?;
        Ok(Self {
            child,
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port for redis-server: bound, then released for it to
/// take. (redis-server cannot bind beside the launcher's `SO_REUSEPORT`
/// reservations.) Another process may take the port in between; redis-server
/// then exits at startup, and the suite starts it again on a fresh port.
fn free_port() -> Result<SocketAddr, BenchError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| BenchError::Io(format!("no free loopback port: {e}")))
}

/// How a redis-server persists writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// `appendfsync always`: fsync before every reply.
    Always,
    /// `appendfsync everysec`.
    Everysec,
}

/// A running redis-server.
#[derive(Debug)]
pub struct Redis {
    pub addr: SocketAddr,
    pub process: Process,
}

/// Starts redis-server with the AOF on and `fsync`, its data in `dir`.
pub fn start_redis(dir: &Path, fsync: Fsync) -> Result<Redis, BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::Io(format!("{}: {e}", dir.display())))?;
    let addr = free_port()?;
    let mut command = Command::new("redis-server");
    command
        .args(["--bind", "127.0.0.1", "--port"])
        .arg(addr.port().to_string())
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--appendonly", "yes", "--appendfsync"])
        .arg(match fsync {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
        })
        .args([
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--maxclients",
            "10000",
        ]);
    let mut process = Process::spawn(command, &dir.join("redis.log"))?;
    let connector = Connector::new(&Target::plain(addr))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if block_on(async { connector.connect().await?.call(&[Arg::lit("PING")]).await })
            .is_ok_and(|r| r.starts_with(b"+PONG"))
        {
            return Ok(Redis { addr, process });
        }
        if process.exited() || Instant::now() > deadline {
            return Err(BenchError::Io(format!(
                "redis-server did not start on {addr}:\n{}",
                process.log_tail()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a future on a small runtime of its own (setup calls only).
pub(crate) fn block_on<T>(
    f: impl std::future::Future<Output = Result<T, BenchError>>,
) -> Result<T, BenchError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Io(format!("tokio runtime: {e}")))?
        .block_on(f)
}

/// What a raftlimit cluster is started with.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The `raftlimit-server` binary.
    pub bin: PathBuf,
    /// Configs, data, logs and (when secure) certificates and keys go here.
    pub dir: PathBuf,
    /// TLS for clients (client certificates required), mutual TLS between
    /// nodes, AUTH, and encryption at rest.
    pub secure: bool,
    /// How long to wait for every node to be ready under one leader.
    pub ready_timeout: Duration,
}

/// One running node.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: u64,
    /// The client port (TLS when the cluster is secure).
    pub resp: SocketAddr,
    pub http: SocketAddr,
    pub pid: u32,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
}

/// A running cluster of three nodes, started by the project's launcher;
/// dropping it stops every node.
#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// TLS and AUTH settings for clients, when secure.
    pub tls: Option<TlsOptions>,
    pub password: Option<String>,
    _processes: raftlimit_launcher::ProcessCluster,
}

/// A node's Raft state as its INFO replication reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftRole {
    pub leader: bool,
    pub term: u64,
}

impl Cluster {
    /// How a client reaches node `i` (an index into `nodes`).
    pub fn target(&self, i: usize) -> Option<Target> {
        self.nodes.get(i).map(|n| Target {
            addr: n.resp,
            tls: self.tls.clone(),
            user: None,
            password: self.password.clone(),
        })
    }

    /// Every node's process id.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.pid).collect()
    }

    /// Each node's role and term (`None` for a node that does not answer).
    pub fn roles(&self) -> Vec<Option<RaftRole>> {
        (0..self.nodes.len())
            .map(|i| {
                let target = self.target(i)?;
                let connector = Connector::new(&target).ok()?;
                let reply = block_on(async {
                    let mut c = connector.connect().await?;
                    c.call(&[Arg::lit("INFO"), Arg::lit("replication")]).await
                })
                .ok()?;
                parse_role(&String::from_utf8_lossy(bulk_payload(&reply)?))
            })
            .collect()
    }

    /// The index of the node that leads (the one with the highest term claiming it).
    pub fn leader(&self) -> Option<usize> {
        let roles = self.roles();
        roles
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.filter(|r| r.leader).map(|r| (i, r.term)))
            .max_by_key(|&(_, term)| term)
            .map(|(i, _)| i)
    }
}

/// `role` and `raft_term` from an INFO replication text.
pub fn parse_role(info: &str) -> Option<RaftRole> {
    let field = |name: &str| {
        info.lines().find_map(|l| {
            l.trim_end()
                .strip_prefix(name)?
                .strip_prefix(':')
                .map(str::to_string)
        })
    };
    Some(RaftRole {
        leader: field("role")? == "master",
        term: field("raft_term")?.parse().ok()?,
    })
}

/// Starts three nodes from `opts` with the project's launcher and waits
/// until all are ready and one leads.
pub fn start_cluster(opts: &ClusterOptions) -> Result<Cluster, BenchError> {
    use raftlimit_launcher::{ClusterSpec, ProcessCluster, ProcessOptions};
    let launch = |e: raftlimit_launcher::LauncherError| {
        BenchError::Io(format!("starting a raftlimit cluster: {e}"))
    };
    let mut spec = ClusterSpec::new(3).name("raftlimit-bench");
    let password = opts.secure.then(|| {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        (0..32)
            .map(|_| format!("{:x}", rng.gen_range(0..16u8)))
            .collect::<String>()
    });
    if let Some(p) = &password {
        spec = spec
            .tls(raftlimit_launcher::TlsOptions::default())
            .requirepass(p.clone())
            .encryption(true);
    }
    let mut options = ProcessOptions::new(&opts.bin).dir(&opts.dir);
    options.ready_timeout = opts.ready_timeout;
    let processes = ProcessCluster::start(&spec, &options).map_err(launch)?;
    processes
        .wait_for_leader(opts.ready_timeout)
        .map_err(launch)?;
    let nodes = processes
        .nodes()
        .into_iter()
        .map(|n| Node {
            id: n.id,
            resp: n.addr,
            http: n.http,
            pid: n.pid.unwrap_or(0),
            log: n.log,
        })
        .collect();
    let tls = processes.tls_files().map(|files| TlsOptions {
        ca: files.ca(),
        cert: Some(files.client_cert()),
        key: Some(files.client_key()),
        // Node certificates name `localhost` among their addresses.
        server_name: "localhost".into(),
    });
    Ok(Cluster {
        nodes,
        tls,
        password,
        _processes: processes,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_role_reads_master_and_term() {
        let leader = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nraft_node_id:1\r\nraft_term:4\r\n";
        assert_eq!(
            parse_role(leader),
            Some(RaftRole {
                leader: true,
                term: 4
            })
        );
        let follower = "role:slave\r\nmaster_host:127.0.0.1\r\nraft_term:4\r\n";
        assert_eq!(
            parse_role(follower),
            Some(RaftRole {
                leader: false,
                term: 4
            })
        );
        assert_eq!(parse_role("role:master\r\n"), None);
    }
}
