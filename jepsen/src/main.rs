//! The `raftlimit-jepsen` binary: runs one chaos test (`run`) or every workload against every nemesis (`matrix`, for `make chaos`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use raftlimit_jepsen::cluster::docker::{DockerCluster, DockerOptions};
use raftlimit_jepsen::cluster::local::{server_binary, LocalCluster, LocalOptions};
use raftlimit_jepsen::cluster::Cluster;
use raftlimit_jepsen::matrix::{run_dir, Matrix};
use raftlimit_jepsen::nemesis::{FaultKind, Schedule};
use raftlimit_jepsen::run::{run, RunConfig};
use raftlimit_jepsen::workload::{WorkloadName, NAMES};

#[derive(Debug, Parser)]
#[command(
    name = "raftlimit-jepsen",
    about = "Chaos tests of a raftlimit cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Target {
    /// Three local raftlimit-server processes started by the harness.
    Local,
    /// The docker-compose cluster.
    Docker,
    /// Local processes, except that partitions (which local processes
    /// sharing one network namespace cannot have) run on the compose
    /// cluster when docker is usable. What `make chaos` uses.
    Auto,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Length of the fault phase of each run (e.g. 30s, 5m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Fault-free time after the fault phase, before the final reads.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    quiet: Duration,
    /// Quiet time before each fault.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    /// How long each fault is held.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    fault_duration: Duration,
    /// Concurrent workers (default: the workload's).
    #[arg(long)]
    workers: Option<usize>,
    /// Operations per second per worker (default: the workload's).
    #[arg(long)]
    rate: Option<f64>,
    /// A client records `info` after waiting this long for a reply.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    op_timeout: Duration,
    /// Seed for the generators and the nemesis (random by default).
    #[arg(long)]
    seed: Option<u64>,
    /// Which cluster to test.
    #[arg(long, value_enum, default_value = "local")]
    target: Target,
    /// Parent directory of run directories.
    #[arg(long, default_value = "jepsen-runs")]
    runs_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one workload against one or more nemeses (taken in turn); exits 1 on any anomaly.
    Run {
        /// register, counter, limiter, lease or list-append.
        #[arg(long)]
        workload: WorkloadName,
        /// Comma-separated: kill, pause, partition, restart, member, none.
        #[arg(long, value_delimiter = ',', default_value = "kill")]
        nemesis: Vec<FaultKind>,
        /// The run directory (default: <runs-dir>/<timestamp>-<workload>-<nemesis>).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Run every workload against every nemesis and write the table into a Markdown file; exits 1 on any anomaly.
    Matrix {
        /// Comma-separated workloads.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "register,counter,limiter,lease,list-append"
        )]
        workloads: Vec<WorkloadName>,
        /// Comma-separated nemeses.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "kill,pause,partition,restart,member"
        )]
        nemeses: Vec<FaultKind>,
        /// Markdown file whose generated table is replaced.
        #[arg(long, default_value = "docs/chaos.md")]
        docs: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

/// `250ms`, `30s`, `5m`, `1h`; a bare number is seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s or 5m"))?;
    let ms = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("unknown unit in {s:?} (ms, s, m, h)")),
    };
    Ok(Duration::from_millis(n.saturating_mul(ms)))
}

fn config(common: &Common, workload: &str, nemeses: Vec<FaultKind>, dir: PathBuf) -> RunConfig {
    let mut c = RunConfig::new(workload, nemeses, dir);
    c.duration = common.duration;
    c.quiet = common.quiet;
    c.schedule = Schedule {
        interval: common.interval,
        fault_duration: common.fault_duration,
    };
    c.workers = common.workers;
    c.rate = common.rate;
    c.op_timeout = common.op_timeout;
    c.seed = common.seed;
    c
}

/// The backend a run under `nemeses` uses: `Auto` picks docker for a
/// partition when docker is usable, local processes otherwise.
fn resolve_target(target: Target, nemeses: &[FaultKind]) -> Target {
    match target {
        Target::Auto
            if nemeses.contains(&FaultKind::Partition)
                && raftlimit_jepsen::cluster::docker::docker_unavailable().is_none() =>
        {
            Target::Docker
        }
        Target::Auto => Target::Local,
        other => other,
    }
}

fn new_cluster(target: Target) -> anyhow::Result<Arc<dyn Cluster>> {
    match target {
        Target::Local | Target::Auto => {
            let bin = server_binary()?;
            let cluster = LocalCluster::start(&LocalOptions::new(bin))
                .context("starting the local cluster")?;
            Ok(Arc::new(cluster))
        }
        Target::Docker => {
            // The compose project of this checkout (`docker-compose.yml`,
            // deploy files from `make deploy-files`), brought up if it is not.
            let cluster = DockerCluster::attach(DockerOptions::new("."))
                .context("attaching to the compose cluster")?;
            cluster.up().context("bringing the compose cluster up")?;
            Ok(Arc::new(cluster))
        }
    }
}

fn target_name(target: Target) -> &'static str {
    match target {
        Target::Local => "local",
        Target::Docker => "docker",
        Target::Auto => "local (partitions on docker when it is usable)",
    }
}

async fn main_async(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            workload,
            nemesis,
            dir,
            common,
        } => {
            let mut c = config(&common, &workload.0, nemesis, PathBuf::new());
            c.dir =
                dir.unwrap_or_else(|| run_dir(&common.runs_dir, &workload.0, &c.nemesis_name()));
            let cluster = new_cluster(resolve_target(common.target, &c.nemeses))?;
            let outcome = run(cluster, &c).await.context("chaos run failed")?;
            for r in &outcome.results {
                for a in r.anomalies.iter().take(10) {
                    println!("  {}: {a}", r.name);
                }
            }
            println!("{}", outcome.summary.verdict_line());
            Ok(if outcome.summary.valid.is_valid() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Matrix {
            workloads,
            nemeses,
            docs,
            common,
        } => {
            let matrix = Matrix {
                workloads: workloads.into_iter().map(|w| w.0).collect(),
                nemeses,
                template: config(&common, NAMES[0], Vec::new(), PathBuf::new()),
                runs_dir: common.runs_dir.clone(),
                target: target_name(common.target).to_owned(),
                duration_label: humanize(common.duration),
            };
            let target = common.target;
            let table = matrix
                .run(|_, kind| {
                    new_cluster(resolve_target(target, &[kind]))
                        .map_err(|e| raftlimit_jepsen::Error::Cluster(format!("{e:#}")))
                })
                .await;
            table
                .write_into(&docs)
                .with_context(|| format!("writing {}", docs.display()))?;
            println!("table written to {}", docs.display());
            Ok(if table.all_valid() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else if s > 0 {
        format!("{s} s")
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(main_async(cli))
}
