//! The servers a suite measures: redis-server instances and raftlimit clusters,
//! each a child process on loopback, in a temporary directory, stopped by PID.
//!
//! [`start_cluster`] is the one place that starts raftlimit nodes; it writes
//! each node's config, starts the processes and waits until every node is
//! ready and one leads.

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

/// A free loopback port: bound, then released for the server to take.
/// Another process may take it in between; a server that then fails to
/// bind exits at startup and the caller reports it.
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
#[derive(Debug)]
pub struct Node {
    pub id: u64,
    /// The client port (TLS when the cluster is secure).
    pub resp: SocketAddr,
    pub http: SocketAddr,
    pub process: Process,
}

/// A running cluster of three nodes.
#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// TLS and AUTH settings for clients, when secure.
    pub tls: Option<TlsOptions>,
    pub password: Option<String>,
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
        self.nodes.iter().map(|n| n.process.pid()).collect()
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

    /// The logs of nodes that have exited, for error messages.
    pub fn exited_logs(&mut self) -> String {
        let mut out = String::new();
        for n in &mut self.nodes {
            if n.process.exited() {
                out.push_str(&format!(
                    "node {} exited:\n{}\n",
                    n.id,
                    n.process.log_tail()
                ));
            }
        }
        out
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

/// Starts three nodes from `opts` and waits until all are ready and one leads.
pub fn start_cluster(opts: &ClusterOptions) -> Result<Cluster, BenchError> {
    let dir = &opts.dir;
    let io = |p: &Path, e: std::io::Error| BenchError::Io(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let (tls, password) = if opts.secure {
        let tls_dir = dir.join("tls");
        run_tool(
            Command::new(&opts.bin)
                .arg("certs")
                .arg("--dir")
                .arg(&tls_dir),
        )?;
        for id in 1..=3 {
            run_tool(
                Command::new(&opts.bin)
                    .arg("keygen")
                    .arg(dir.join(format!("node{id}.keys"))),
            )?;
        }
        let password: String = {
            use rand::Rng;
            let mut rng = rand::thread_rng();
            (0..32)
                .map(|_| format!("{:x}", rng.gen_range(0..16u8)))
                .collect()
        };
        let tls = TlsOptions {
            ca: tls_dir.join("ca.crt"),
            cert: Some(tls_dir.join("client.crt")),
            key: Some(tls_dir.join("client.key")),
            server_name: "localhost".into(),
        };
        (Some(tls), Some(password))
    } else {
        (None, None)
    };
    // Per node: client port, plaintext RESP port (closed when secure), Raft, HTTP.
    let mut ports = Vec::new();
    for _ in 0..3 {
        ports.push([free_port()?, free_port()?, free_port()?, free_port()?]);
    }
    let mut members = String::new();
    for (i, [client, _, raft, _]) in ports.iter().enumerate() {
        members.push_str(&format!(
            "\n[[cluster.nodes]]\nid = {}\nresp_addr = \"{client}\"\nraft_addr = \"{raft}\"\n",
            i + 1
        ));
    }
    let mut nodes = Vec::new();
    for (i, [client, plain, raft, http]) in ports.iter().enumerate() {
        let id = i as u64 + 1;
        let resp = if opts.secure { plain } else { client };
        let mut text = format!(
            "node_id = {id}\ndata_dir = {data:?}\nresp_addr = \"{resp}\"\nhttp_addr = \"{http}\"\nraft_addr = \"{raft}\"\n\n[cluster]\nname = \"raftlimit-bench\"\n{members}",
            data = dir.join(format!("node{id}"))
        );
        if opts.secure {
            let tls_dir = dir.join("tls");
            text.push_str(&format!(
                "\n[tls]\naddr = \"{client}\"\ncert_file = {:?}\nkey_file = {:?}\nca_file = {:?}\nclient_auth = \"required\"\n\n[encryption]\nenabled = true\nkey_file = {:?}\n",
                tls_dir.join(format!("node{id}.crt")),
                tls_dir.join(format!("node{id}.key")),
                tls_dir.join("ca.crt"),
                dir.join(format!("node{id}.keys")),
            ));
        }
        let config = dir.join(format!("node{id}.toml"));
        std::fs::write(&config, text).map_err(|e| io(&config, e))?;
        let mut command = Command::new(&opts.bin);
        command.arg("--config").arg(&config);
        if let Some(p) = &password {
            command.env("RAFTLIMIT_REQUIREPASS", p);
        }
        let process = Process::spawn(command, &dir.join(format!("node{id}.log")))?;
        nodes.push(Node {
            id,
            resp: *client,
            http: *http,
            process,
        });
    }
    let mut cluster = Cluster {
        nodes,
        tls,
        password,
    };
    let deadline = Instant::now() + opts.ready_timeout;
    loop {
        let ready = cluster.nodes.iter().all(|n| {
            super::http::get(n.http, "/readyz", Duration::from_secs(1))
                .is_ok_and(|(status, _)| status == 200)
        });
        if ready && cluster.leader().is_some() {
            return Ok(cluster);
        }
        let exited = cluster.exited_logs();
        if !exited.is_empty() {
            return Err(BenchError::Io(format!(
                "a raftlimit node exited at startup:\n{exited}"
            )));
        }
        if Instant::now() > deadline {
            return Err(BenchError::Io(format!(
                "the raftlimit cluster in {} was not ready with a leader after {:?}",
                dir.display(),
                opts.ready_timeout
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a server tool to completion (certificate and key generation).
fn run_tool(command: &mut Command) -> Result<(), BenchError> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BenchError::Io(format!("{command:?}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BenchError::Io(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )))
    }
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
