//! `raftlimit-cluster up`: starts a local cluster of `raftlimit-server`
//! processes and keeps it running until Ctrl-C, SIGTERM or (with
//! `--control`) the end of standard input; then stops every node by PID.
//!
//! It is the launcher for everything that is not Rust: `make cluster`
//! (`scripts/cluster.sh`, with the `config/` files) and the Python
//! compatibility suite (`tests/compat/conftest.py`, with `--json
//! --control`). Without `--config` the cluster comes from a
//! `ClusterSpec`: reserved loopback ports and generated config files.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use raftlimit_launcher::{server_binary, ClusterSpec, ProcessCluster, ProcessOptions, TlsOptions};
use raftlimit_server::config::ClientAuth;

#[derive(Debug, Parser)]
#[command(
    name = "raftlimit-cluster",
    version,
    about = "Start a local raftlimit cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start the nodes, wait until every one is ready, run until stopped.
    Up(Up),
}

#[derive(Debug, clap::Args)]
struct Up {
    /// Run these config files (one node each) instead of generating configs.
    #[arg(long = "config", value_name = "FILE")]
    configs: Vec<PathBuf>,
    /// Number of nodes of a generated cluster.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Cluster name (Sentinel's master name).
    #[arg(long, default_value = "raftlimit-test")]
    name: String,
    /// Directory for configs, data and logs; a temporary one, removed at
    /// exit, by default.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// TLS for clients (certificates generated into DIR/tls) and mutual
    /// TLS between nodes; the plaintext port is closed.
    #[arg(long)]
    tls: bool,
    /// With --tls: whether clients must present a certificate.
    #[arg(long, value_enum, default_value = "required")]
    client_auth: Auth,
    /// The default user's password. The environment variable keeps it out
    /// of the process list.
    #[arg(long, env = "RAFTLIMIT_CLUSTER_REQUIREPASS", hide_env_values = true)]
    requirepass: Option<String>,
    /// An ACL user: its name, a space, its rules (`app on >secret ~* +@all`).
    #[arg(long = "user", value_name = "NAME RULES")]
    users: Vec<String>,
    /// Encryption at rest, a generated key per node.
    #[arg(long)]
    encryption: bool,
    /// Extra TOML merged into every generated config (a file).
    #[arg(long, value_name = "FILE")]
    extra_toml: Option<PathBuf>,
    /// The raftlimit-server binary (default: the one beside this program).
    #[arg(long, env = "RAFTLIMIT_SERVER_BIN")]
    server_bin: Option<PathBuf>,
    /// Seconds to wait for every node to be ready.
    #[arg(long, default_value_t = 60)]
    ready_timeout: u64,
    /// Print the cluster as one JSON line on stdout once it is ready
    /// (instead of the human summary).
    #[arg(long)]
    json: bool,
    /// Read commands from stdin (`kill N`, `start N`, `stop N`, `pause N`,
    /// `resume N`, `leader`, `info`; one JSON line answers each) and stop
    /// the cluster when stdin closes.
    #[arg(long)]
    control: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Auth {
    Required,
    Optional,
    Off,
}

fn main() -> anyhow::Result<()> {
    let Cmd::Up(up) = Cli::parse().command;
    let bin = match &up.server_bin {
        Some(bin) => bin.clone(),
        None => server_binary()?,
    };
    let mut options = ProcessOptions::new(bin);
    options.dir = up.dir.clone();
    options.ready_timeout = Duration::from_secs(up.ready_timeout);
    let cluster = if up.configs.is_empty() {
        ProcessCluster::start(&spec(&up)?, &options)
    } else {
        ProcessCluster::from_configs(&up.configs, &options)
    };
    let cluster = cluster.context("starting the cluster")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(&cluster, &up));
    let stopped = cluster.shutdown().context("stopping the nodes");
    if !up.json {
        eprintln!("all nodes stopped");
    }
    result.and(stopped)
}

fn spec(up: &Up) -> anyhow::Result<ClusterSpec> {
    let mut spec = ClusterSpec::new(up.nodes).name(&up.name);
    if up.tls {
        spec = spec.tls(TlsOptions {
            client_auth: match up.client_auth {
                Auth::Required => ClientAuth::Required,
                Auth::Optional => ClientAuth::Optional,
                Auth::Off => ClientAuth::Off,
            },
            ..TlsOptions::default()
        });
    }
    spec.requirepass = up.requirepass.clone();
    for user in &up.users {
        let (name, rules) = user
            .split_once(' ')
            .with_context(|| format!("--user {user:?}: expected a name, a space and rules"))?;
        spec = spec.user(name, rules);
    }
    spec = spec.encryption(up.encryption);
    if let Some(path) = &up.extra_toml {
        spec.extra_toml =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(spec)
}

/// Prints the cluster, then runs until a signal (or, with `--control`,
/// the end of stdin).
async fn serve(cluster: &ProcessCluster, up: &Up) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut info = cluster.info();
    if info.leader.is_none() {
        info.leader = cluster.wait_for_leader(Duration::from_secs(10)).ok();
    }
    if up.json {
        println!("{}", serde_json::to_string(&info)?);
    } else {
        summary(&info);
    }
    std::io::stdout().flush()?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    // Blocking stdin on a thread of its own; `None` is the end of input.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    if up.control {
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        });
    }
    loop {
        tokio::select! {
            result = tokio::signal::ctrl_c() => return result.context("waiting for Ctrl-C"),
            _ = term.recv() => return Ok(()),
            line = lines.recv(), if up.control => match line.flatten() {
                None => return Ok(()),
                Some(line) => {
                    let answer = control(cluster, line.trim());
                    println!("{answer}");
                    std::io::stdout().flush()?;
                }
            },
        }
    }
}

/// Runs one control command; the answer is a JSON object, `{"error": …}`
/// when it failed.
fn control(cluster: &ProcessCluster, line: &str) -> serde_json::Value {
    use serde_json::json;
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or("");
    let node = words.next().and_then(|n| n.parse::<u64>().ok());
    let done = |result: raftlimit_launcher::Result<()>| match result {
        Ok(()) => json!({ "ok": command, "node": node, "pid": node.and_then(|n| cluster.pid(n)) }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    match (command, node) {
        ("kill", Some(n)) => done(cluster.kill(n)),
        ("stop", Some(n)) => done(cluster.stop_node(n)),
        ("start", Some(n)) => done(
            cluster
                .start_node(n)
                .and_then(|()| cluster.wait_ready(Duration::from_secs(60))),
        ),
        ("pause", Some(n)) => done(cluster.pause(n)),
        ("resume", Some(n)) => done(cluster.resume(n)),
        ("leader", _) => match cluster.wait_for_leader(Duration::from_secs(30)) {
            Ok(leader) => json!({ "leader": leader }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        ("info", _) => serde_json::to_value(cluster.info())
            .unwrap_or_else(|e| json!({ "error": e.to_string() })),
        _ => {
            json!({ "error": format!("unknown command {line:?}: kill|start|stop|pause|resume N, leader, info") })
        }
    }
}

fn summary(info: &raftlimit_launcher::ClusterInfo) {
    let pids: Vec<String> = info
        .nodes
        .iter()
        .filter_map(|n| n.pid.map(|p| p.to_string()))
        .collect();
    println!();
    println!(
        "raftlimit cluster {} is up (node PIDs: {})",
        info.name,
        pids.join(" ")
    );
    for node in &info.nodes {
        println!(
            "  node {}: RESP{} {}   HTTP {}   log {}",
            node.id,
            if node.tls.is_some() && node.resp.is_none() {
                " (TLS)"
            } else {
                ""
            },
            node.addr,
            node.http,
            node.log.display()
        );
    }
    if let Some(leader) = info.leader {
        println!("  leader: node {leader}");
    }
    if let Some(tls) = &info.tls {
        println!(
            "  TLS: CA {}, client certificate {}",
            tls.ca().display(),
            tls.client_cert().display()
        );
    }
    if let Some(first) = info.nodes.first() {
        println!(
            "  metrics: curl http://{}/metrics   health: /healthz   ready: /readyz",
            first.http
        );
    }
    println!("Press Ctrl-C to stop all nodes.");
}
