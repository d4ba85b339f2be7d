//! The side-by-side suite behind `make bench`: every workload against
//! raftlimit (through the leader, through a follower, and secured) and
//! redis-server (`appendfsync always` and `everysec`), in one run.
//!
//! Method, and why:
//! - **Fresh servers per workload group.** The de-duplication table, the
//!   keyspace and snapshots grow during a run; a later group would pay for
//!   an earlier one's state. Each group gets new clusters and new Redis
//!   instances.
//! - **Targets interleaved.** For each workload and connection setting the
//!   targets run one after another in random order, so slow drift on the
//!   machine touches all of them alike.
//! - **CPU per operation per process,** from procfs at the window's edges,
//!   so a ratio can be explained (server, replicas, client) and not just stated.
//! - **Commands per Raft entry** from the leader's `raftlimit_batch_commands`
//!   sum and count at the window's edges: the group-commit factor.
//! - **Leader changes** from every node's `raft_term` before and after.
//! - **Open-loop curves** at fractions of each target's measured
//!   closed-loop saturation, latency from each request's due time.
//! - **A busy machine is refused, not footnoted.** The share of CPU used by
//!   processes other than ours is measured before the run and during every
//!   cell; over the threshold, nothing is published.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use serde::Serialize;

use super::http;
use super::procfs::{CpuDelta, CpuSample};
use super::run::{run, Edge, RunResult, RunSpec};
use super::servers::{start_cluster, start_redis, Cluster, ClusterOptions, Fsync, Redis};
use super::workload::Workload;
use super::BenchError;

/// Something the suite measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// raftlimit, clients on the leader.
    Leader,
    /// raftlimit, clients on a follower (which forwards to the leader).
    Follower,
    /// raftlimit with TLS (client certificates), mutual TLS between nodes,
    /// AUTH and encryption at rest; clients on the leader.
    Secure,
    /// redis-server, AOF with `appendfsync always`.
    RedisAlways,
    /// redis-server, AOF with `appendfsync everysec`.
    RedisEverysec,
}

impl TargetKind {
    /// Every target, in report order.
    pub const ALL: [TargetKind; 5] = [
        TargetKind::Leader,
        TargetKind::Follower,
        TargetKind::Secure,
        TargetKind::RedisAlways,
        TargetKind::RedisEverysec,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Leader => "leader",
            TargetKind::Follower => "follower",
            TargetKind::Secure => "secure",
            TargetKind::RedisAlways => "redis-always",
            TargetKind::RedisEverysec => "redis-everysec",
        }
    }

    /// The report's column heading.
    pub fn label(self) -> &'static str {
        match self {
            TargetKind::Leader => "raftlimit leader",
            TargetKind::Follower => "raftlimit follower",
            TargetKind::Secure => "raftlimit TLS+AUTH+enc",
            TargetKind::RedisAlways => "redis always",
            TargetKind::RedisEverysec => "redis everysec",
        }
    }

    /// Whether this is a redis-server.
    pub fn is_redis(self) -> bool {
        matches!(self, TargetKind::RedisAlways | TargetKind::RedisEverysec)
    }

    /// Whether the target can run `w`.
    pub fn runs(self, w: Workload) -> bool {
        !self.is_redis() || w.on_redis()
    }

    /// The workload its latency curve uses: RL.CHECK on raftlimit, the
    /// `limits` script (what RL.CHECK replaces) on Redis.
    pub fn curve_workload(self) -> Workload {
        if self.is_redis() {
            Workload::LimitsEvalsha
        } else {
            Workload::RlCheckGcra
        }
    }
}

impl std::str::FromStr for TargetKind {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetKind::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| BenchError::Config(format!("unknown target {s:?}")))
    }
}

/// Workloads that share a fresh set of servers, in run order. SET runs
/// before GET so that GETs find keys.
pub const GROUPS: [&[Workload]; 4] = [
    &[
        Workload::RlCheckGcra,
        Workload::RlCheckSliding,
        Workload::RlCheckFixed,
    ],
    &[Workload::RlMcheck, Workload::ClThrottle],
    &[Workload::Set, Workload::Get, Workload::Incr],
    &[Workload::LimitsEvalsha],
];

/// What to run.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    pub server_bin: PathBuf,
    /// Parent of the run's temporary directory (must be disk-backed: on
    /// tmpfs an fsync costs nothing).
    pub tmp_dir: PathBuf,
    pub keep_dir: bool,
    pub targets: Vec<TargetKind>,
    pub workloads: Vec<Workload>,
    /// (connections, pipeline) settings of the closed-loop matrix.
    pub configs: Vec<(usize, usize)>,
    /// Open-loop points, percent of saturation.
    pub curve_percents: Vec<u32>,
    pub curve_connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Window of the goal cells (RL.CHECK and the script at 50 connections).
    pub goal_duration: Duration,
    /// A long RL.CHECK run through the leader (zero: none).
    pub steady: Duration,
    pub keyspace: u64,
    pub threads: usize,
    /// Others' share of the CPUs (percent) above which nothing is published.
    pub busy_threshold_pct: f64,
    pub ready_timeout: Duration,
}

impl SuiteOptions {
    /// The full suite: every target, workload and setting the report covers.
    pub fn full(server_bin: PathBuf) -> Self {
        Self {
            server_bin,
            tmp_dir: std::env::temp_dir(),
            keep_dir: false,
            targets: TargetKind::ALL.to_vec(),
            workloads: Workload::ALL.to_vec(),
            configs: vec![(1, 1), (10, 1), (50, 1), (200, 1), (1000, 1), (50, 16)],
            curve_percents: vec![10, 25, 50, 75, 90, 100],
            curve_connections: 50,
            warmup: Duration::from_millis(300),
            duration: Duration::from_millis(1200),
            goal_duration: Duration::from_secs(5),
            // The "max latency under 100 ms in a 60 s run".
            steady: Duration::from_secs(60),
            keyspace: 100_000,
            threads: 1,
            busy_threshold_pct: 15.0,
            ready_timeout: Duration::from_secs(60),
        }
    }

    /// A short subset for development: a few workloads and settings, short windows.
    pub fn quick(server_bin: PathBuf) -> Self {
        Self {
            workloads: vec![
                Workload::RlCheckGcra,
                Workload::Set,
                Workload::LimitsEvalsha,
            ],
            configs: vec![(1, 1), (50, 1), (50, 16)],
            curve_percents: vec![25, 50, 100],
            warmup: Duration::from_millis(200),
            duration: Duration::from_millis(500),
            goal_duration: Duration::from_secs(1),
            steady: Duration::ZERO,
            ..Self::full(server_bin)
        }
    }

    fn is_goal(
        &self,
        target: TargetKind,
        w: Workload,
        connections: usize,
        pipeline: usize,
    ) -> bool {
        connections == 50 && pipeline == 1 && w == target.curve_workload()
    }

    /// Every measurement, group by group, in run order. Within a workload
    /// and setting the targets are shuffled (`rng`), so slow drift on the
    /// machine touches all of them alike.
    pub fn plan(&self, rng: &mut impl rand::Rng) -> Vec<(usize, Vec<Planned>)> {
        let mut groups = Vec::new();
        for (g, group) in GROUPS.iter().enumerate() {
            let mut cells = Vec::new();
            for &w in group.iter().filter(|w| self.workloads.contains(w)) {
                let targets: Vec<TargetKind> =
                    self.targets.iter().copied().filter(|t| t.runs(w)).collect();
                let shuffled = |rng: &mut _| {
                    let mut order = targets.clone();
                    order.shuffle(rng);
                    order
                };
                for &(c, p) in &self.configs {
                    for t in shuffled(rng) {
                        let duration = if self.is_goal(t, w, c, p) {
                            self.goal_duration
                        } else {
                            self.duration
                        };
                        cells.push(Planned {
                            target: t,
                            workload: w,
                            kind: CellKind::Matrix,
                            connections: c,
                            pipeline: p,
                            duration,
                        });
                    }
                }
                for &pct in &self.curve_percents {
                    for t in shuffled(rng)
                        .into_iter()
                        .filter(|t| t.curve_workload() == w)
                    {
                        cells.push(Planned {
                            target: t,
                            workload: w,
                            kind: CellKind::Curve(pct),
                            connections: self.curve_connections,
                            pipeline: 1,
                            duration: self.duration,
                        });
                    }
                }
                if w == Workload::RlCheckGcra
                    && !self.steady.is_zero()
                    && targets.contains(&TargetKind::Leader)
                {
                    cells.push(Planned {
                        target: TargetKind::Leader,
                        workload: w,
                        kind: CellKind::Steady,
                        connections: 50,
                        pipeline: 1,
                        duration: self.steady,
                    });
                }
            }
            if !cells.is_empty() {
                groups.push((g + 1, cells));
            }
        }
        groups
    }

    /// How many measurements the plan has, and a rough estimate of their time
    /// (warmup, window and setup per cell, server starts per group).
    pub fn estimate(&self) -> (usize, Duration) {
        let plan = self.plan(&mut rand::thread_rng());
        let cells = plan.iter().map(|(_, c)| c.len()).sum();
        let time = plan
            .iter()
            .flat_map(|(_, c)| c.iter())
            .map(|c| self.warmup + c.duration + Duration::from_millis(400))
            .sum::<Duration>()
            + Duration::from_secs(6) * plan.len() as u32;
        (cells, time)
    }
}

/// One measurement of the plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Planned {
    pub target: TargetKind,
    pub workload: Workload,
    pub kind: CellKind,
    pub connections: usize,
    pub pipeline: usize,
    /// The measured window.
    pub duration: Duration,
}

/// CPU of one process over a cell.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProcessCpu {
    /// `leader`, `follower`, `redis` or `client`.
    pub role: String,
    pub us_per_op: Option<f64>,
}

/// What kind of measurement a cell is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellKind {
    /// Closed loop, part of the matrix.
    Matrix,
    /// Open loop at a percent of saturation.
    Curve(u32),
    /// The long run through the leader.
    Steady,
}

/// One measurement and everything recorded around it.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub target: TargetKind,
    pub workload: Workload,
    pub kind: CellKind,
    pub connections: usize,
    pub pipeline: usize,
    pub result: Option<RunResult>,
    /// Why there is no result.
    pub failure: Option<String>,
    /// Mean commands per Raft entry on the leader during the window.
    pub batch_mean: Option<f64>,
    pub cpu: Vec<ProcessCpu>,
    /// Raft term increase during the cell (elections), raftlimit only.
    pub leader_changes: Option<u64>,
    /// Snapshots the cluster's nodes built during the window, raftlimit only.
    pub snapshots: Option<u64>,
    /// CPU share of processes other than ours during the window, percent.
    pub others_pct: f64,
    /// Machine ticks during the window (to weigh `others_pct`).
    pub machine_ticks: u64,
}

impl Cell {
    /// Operations per second, when measured.
    pub fn ops(&self) -> Option<f64> {
        self.result.as_ref().map(|r| r.ops_per_sec)
    }
}

/// Facts about the machine and the run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Meta {
    pub date: String,
    pub cpus: String,
    pub kernel: String,
    pub memory: String,
    pub filesystem: String,
    pub redis_version: String,
    pub commit: String,
    pub parameters: String,
    pub busy_before_pct: f64,
    pub elapsed_s: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub meta: Meta,
    pub cells: Vec<Cell>,
    pub notes: Vec<String>,
    pub busy_threshold_pct: f64,
    /// Why the run stopped before its end (a group's servers did not start).
    pub incomplete: Option<String>,
}

impl SuiteReport {
    /// The matrix cell for these coordinates.
    pub fn cell(
        &self,
        t: TargetKind,
        w: Workload,
        connections: usize,
        pipeline: usize,
    ) -> Option<&Cell> {
        self.cells.iter().find(|c| {
            c.kind == CellKind::Matrix
                && c.target == t
                && c.workload == w
                && c.connections == connections
                && c.pipeline == pipeline
        })
    }

    /// Others' share of the CPU over all cells, weighted by duration.
    pub fn others_pct(&self) -> f64 {
        let total: u64 = self.cells.iter().map(|c| c.machine_ticks).sum();
        if total == 0 {
            return 0.0;
        }
        self.cells
            .iter()
            .map(|c| c.others_pct * c.machine_ticks as f64)
            .sum::<f64>()
            / total as f64
    }

    /// Why the run must not be published, if it must not.
    pub fn busy_reason(&self) -> Option<String> {
        let limit = self.busy_threshold_pct;
        if self.meta.busy_before_pct > limit {
            return Some(format!(
                "other processes kept the CPUs {:.0}% busy before the run (limit {limit:.0}%)",
                self.meta.busy_before_pct
            ));
        }
        let overall = self.others_pct();
        if overall > limit {
            return Some(format!(
                "other processes used {overall:.0}% of the CPUs during the run (limit {limit:.0}%)"
            ));
        }
        let busy_cells = self.cells.iter().filter(|c| c.others_pct > limit).count();
        if busy_cells * 10 > self.cells.len() {
            return Some(format!(
                "other processes used more than {limit:.0}% of the CPUs during {busy_cells} of {} measurements",
                self.cells.len()
            ));
        }
        None
    }
}

/// The servers of one group.
struct Servers {
    plain: Option<Cluster>,
    secure: Option<Cluster>,
    always: Option<Redis>,
    everysec: Option<Redis>,
    /// Removed after the servers stop (fields drop in order); `None` when kept.
    _dir: Option<tempfile::TempDir>,
}

impl Servers {
    fn start(
        opts: &SuiteOptions,
        group: usize,
        parent: &std::path::Path,
    ) -> Result<Self, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("group{group}-"))
            .tempdir_in(parent)
            .map_err(|e| BenchError::Io(format!("temporary directory: {e}")))?;
        let path = dir.path().to_path_buf();
        let dir = if opts.keep_dir {
            let _ = dir.keep();
            None
        } else {
            Some(dir)
        };
        let want = |t: TargetKind| opts.targets.contains(&t);
        // A port picked free can be taken by another program before the
        // server binds it; such a start fails at once and is tried again
        // on fresh ports.
        let cluster = |name: &str, secure: bool| {
            retry(|attempt| {
                start_cluster(&ClusterOptions {
                    bin: opts.server_bin.clone(),
                    dir: path.join(format!("{name}-{attempt}")),
                    secure,
                    ready_timeout: opts.ready_timeout,
                })
            })
        };
        let redis = |name: &str, fsync| {
            retry(|attempt| start_redis(&path.join(format!("{name}-{attempt}")), fsync))
        };
        Ok(Self {
            plain: if want(TargetKind::Leader) || want(TargetKind::Follower) {
                Some(cluster("raftlimit", false)?)
            } else {
                None
            },
            secure: if want(TargetKind::Secure) {
                Some(cluster("raftlimit-secure", true)?)
            } else {
                None
            },
            always: if want(TargetKind::RedisAlways) {
                Some(redis("redis-always", Fsync::Always)?)
            } else {
                None
            },
            everysec: if want(TargetKind::RedisEverysec) {
                Some(redis("redis-everysec", Fsync::Everysec)?)
            } else {
                None
            },
            _dir: dir,
        })
    }

    /// Every process we started, then ourselves.
    fn all_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for c in [&self.plain, &self.secure].into_iter().flatten() {
            pids.extend(c.pids());
        }
        for r in [&self.always, &self.everysec].into_iter().flatten() {
            pids.push(r.process.pid());
        }
        pids.push(std::process::id());
        pids
    }

    fn cluster_of(&self, t: TargetKind) -> Option<&Cluster> {
        match t {
            TargetKind::Leader | TargetKind::Follower => self.plain.as_ref(),
            TargetKind::Secure => self.secure.as_ref(),
            _ => None,
        }
    }
}

/// Tries a server start up to three times.
fn retry<T>(mut start: impl FnMut(u32) -> Result<T, BenchError>) -> Result<T, BenchError> {
    let mut attempt = 1;
    loop {
        match start(attempt) {
            Err(e) if attempt < 3 => {
                eprintln!("server start {attempt} failed, retrying on fresh ports: {e}");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Where to send load for a cell, and whose CPU to report.
struct Resolved {
    target: super::conn::Target,
    /// (role, pid)
    watched: Vec<(String, u32)>,
    /// The leader's HTTP address (raftlimit).
    leader_http: Option<std::net::SocketAddr>,
    /// Every node's log (raftlimit).
    logs: Vec<PathBuf>,
}

/// What is read at each edge of a cell's window.
struct EdgeSample {
    cpu: CpuSample,
    /// The leader's `raftlimit_batch_commands` sum and count.
    batch: Option<(f64, f64)>,
    snapshots: u64,
}

/// Snapshots the nodes have built so far, from their logs: a snapshot is the
/// usual cause of a latency spike, so each cell reports how many fell in it.
fn snapshots_built(logs: &[PathBuf]) -> u64 {
    logs.iter()
        .map(|l| {
            std::fs::read_to_string(l)
                .map(|t| t.matches("built snapshot").count() as u64)
                .unwrap_or(0)
        })
        .sum()
}

fn resolve(servers: &Servers, t: TargetKind) -> Result<Resolved, BenchError> {
    if let Some(cluster) = servers.cluster_of(t) {
        let leader = cluster
            .leader()
            .ok_or_else(|| BenchError::Target("no raftlimit leader".into()))?;
        let index = if t == TargetKind::Follower {
            (0..cluster.nodes.len())
                .find(|&i| i != leader)
                .ok_or_else(|| BenchError::Target("no follower".into()))?
        } else {
            leader
        };
        let target = cluster
            .target(index)
            .ok_or_else(|| BenchError::Target("no such node".into()))?;
        let watched = cluster
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    (if i == leader { "leader" } else { "follower" }).to_string(),
                    n.pid,
                )
            })
            .collect();
        return Ok(Resolved {
            target,
            watched,
            leader_http: Some(cluster.nodes[leader].http),
            logs: cluster.nodes.iter().map(|n| n.log.clone()).collect(),
        });
    }
    let redis = match t {
        TargetKind::RedisAlways => servers.always.as_ref(),
        _ => servers.everysec.as_ref(),
    }
    .ok_or_else(|| BenchError::Target(format!("{} is not running", t.label())))?;
    Ok(Resolved {
        target: super::conn::Target::plain(redis.addr),
        watched: vec![("redis".into(), redis.process.pid())],
        leader_http: None,
        logs: Vec::new(),
    })
}

fn batch_counters(http_addr: Option<std::net::SocketAddr>) -> Option<(f64, f64)> {
    let (status, body) = http::get(http_addr?, "/metrics", Duration::from_secs(2)).ok()?;
    if status != 200 {
        return None;
    }
    Some((
        http::metric(&body, "raftlimit_batch_commands_sum")?,
        http::metric(&body, "raftlimit_batch_commands_count")?,
    ))
}

fn max_term(cluster: &Cluster) -> Option<u64> {
    cluster.roles().into_iter().flatten().map(|r| r.term).max()
}

fn measure(servers: &Servers, t: TargetKind, spec: &RunSpec, kind: CellKind) -> Cell {
    let mut cell = Cell {
        target: t,
        workload: spec.workload,
        kind,
        connections: spec.connections,
        pipeline: spec.pipeline,
        result: None,
        failure: None,
        batch_mean: None,
        cpu: Vec::new(),
        leader_changes: None,
        snapshots: None,
        others_pct: 0.0,
        machine_ticks: 0,
    };
    let resolved = match resolve(servers, t) {
        Ok(r) => r,
        Err(e) => {
            cell.failure = Some(e.to_string());
            return cell;
        }
    };
    let cluster = servers.cluster_of(t);
    let term_before = cluster.and_then(max_term);
    let all = servers.all_pids();
    let mut samples: Vec<EdgeSample> = Vec::new();
    let outcome = run(&resolved.target, spec, &mut |_: Edge| {
        samples.push(EdgeSample {
            cpu: CpuSample::take(&all),
            batch: batch_counters(resolved.leader_http),
            snapshots: snapshots_built(&resolved.logs),
        });
    });
    let term_after = cluster.and_then(max_term);
    if let (Some(b), Some(a)) = (term_before, term_after) {
        cell.leader_changes = Some(a.saturating_sub(b));
    }
    match outcome {
        Ok(result) => {
            if let [first, last] = &samples[..] {
                let (before, after) = (&first.cpu, &last.cpu);
                let (b_batch, a_batch) = (&first.batch, &last.batch);
                if !resolved.logs.is_empty() {
                    cell.snapshots = Some(last.snapshots.saturating_sub(first.snapshots));
                }
                let delta = CpuDelta::between(before, after);
                cell.others_pct = delta.others_pct();
                cell.machine_ticks = delta.machine_total;
                let ops = result.ops + result.errors;
                for (role, pid) in &resolved.watched {
                    if let Some(i) = all.iter().position(|p| p == pid) {
                        cell.cpu.push(ProcessCpu {
                            role: role.clone(),
                            us_per_op: delta.us_per_op(i, ops),
                        });
                    }
                }
                cell.cpu.push(ProcessCpu {
                    role: "client".into(),
                    us_per_op: delta.us_per_op(all.len() - 1, ops),
                });
                if let (Some((s0, c0)), Some((s1, c1))) = (b_batch, a_batch) {
                    if c1 > c0 {
                        cell.batch_mean = Some((s1 - s0) / (c1 - c0));
                    }
                }
            }
            cell.result = Some(result);
        }
        Err(e) => cell.failure = Some(e.to_string()),
    }
    cell
}

fn spec(
    opts: &SuiteOptions,
    w: Workload,
    connections: usize,
    pipeline: usize,
    duration: Duration,
) -> RunSpec {
    RunSpec {
        workload: w,
        connections,
        pipeline,
        rate: None,
        warmup: opts.warmup,
        duration,
        keyspace: opts.keyspace,
        threads: opts.threads,
        drain: Duration::from_secs(5),
        max_outstanding: 1024,
    }
}

/// Samples others' CPU share over `over`, before anything is started.
pub fn busy_now(over: Duration) -> f64 {
    let me = [std::process::id()];
    let before = CpuSample::take(&me);
    std::thread::sleep(over);
    CpuDelta::between(&before, &CpuSample::take(&me)).others_pct()
}

/// One line about a finished measurement.
fn progress_line(cell: &Cell, done: usize, total: usize) -> String {
    let what = match (&cell.result, &cell.failure) {
        (Some(r), _) => format!(
            "{:>9.0} ops/s  p50 {:.2} p99 {:.2} max {:.1} ms{}",
            r.ops_per_sec,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.max_ms,
            if r.errors > 0 {
                format!("  {} errors", r.errors)
            } else {
                String::new()
            }
        ),
        (None, Some(f)) => format!("failed: {f}"),
        (None, None) => "no result".into(),
    };
    let mode = match cell.kind {
        CellKind::Matrix => format!("c={} P={}", cell.connections, cell.pipeline),
        CellKind::Curve(p) => format!("open {p}%"),
        CellKind::Steady => "steady".into(),
    };
    format!(
        "[{done}/{total}] {:<22} {:<24} {mode:<12} {what}",
        cell.target.label(),
        cell.workload.label()
    )
}

/// Runs the suite; `progress` gets one line per finished cell.
pub fn run_suite(
    opts: &SuiteOptions,
    meta: Meta,
    progress: &mut dyn FnMut(&str),
) -> Result<SuiteReport, BenchError> {
    let started = Instant::now();
    let parent = tempfile::Builder::new()
        .prefix("raftlimit-bench-")
        .tempdir_in(&opts.tmp_dir)
        .map_err(|e| {
            BenchError::Io(format!(
                "temporary directory in {}: {e}",
                opts.tmp_dir.display()
            ))
        })?;
    let mut report = SuiteReport {
        meta,
        cells: Vec::new(),
        notes: Vec::new(),
        busy_threshold_pct: opts.busy_threshold_pct,
        incomplete: None,
    };
    let plan = opts.plan(&mut rand::thread_rng());
    let total: usize = plan.iter().map(|(_, c)| c.len()).sum();
    let mut done = 0usize;
    for (g, cells) in plan {
        let mut names: Vec<&str> = Vec::new();
        for c in &cells {
            if !names.contains(&c.workload.label()) {
                names.push(c.workload.label());
            }
        }
        progress(&format!(
            "group {g}: {} — starting fresh servers",
            names.join(", ")
        ));
        let servers = match Servers::start(opts, g, parent.path()) {
            Ok(s) => s,
            Err(e) => {
                // What was measured so far is still worth the raw results.
                let why = format!("the servers of group {g} did not start: {e}");
                progress(&why);
                report.incomplete = Some(why);
                break;
            }
        };
        for planned in cells {
            let mut s = spec(
                opts,
                planned.workload,
                planned.connections,
                planned.pipeline,
                planned.duration,
            );
            if let CellKind::Curve(pct) = planned.kind {
                // A fraction of the best closed-loop throughput without pipelining.
                let saturation = report
                    .cells
                    .iter()
                    .filter(|c| {
                        c.kind == CellKind::Matrix
                            && c.target == planned.target
                            && c.workload == planned.workload
                            && c.pipeline == 1
                    })
                    .filter_map(Cell::ops)
                    .fold(0.0f64, f64::max);
                if saturation <= 0.0 {
                    continue;
                }
                s.rate = Some(saturation * f64::from(pct) / 100.0);
            }
            let cell = measure(&servers, planned.target, &s, planned.kind);
            done += 1;
            progress(&progress_line(&cell, done, total));
            report.cells.push(cell);
        }
        drop(servers);
    }
    if opts.keep_dir {
        let kept = parent.keep();
        report.notes.push(format!(
            "Configs, data and logs kept in {}.",
            kept.display()
        ));
    }
    report.meta.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Facts about this machine and the run's parameters, for the report's header.
pub fn gather_meta(opts: &SuiteOptions, busy_before_pct: f64) -> Meta {
    let run = |cmd: &str, args: &[&str]| -> Option<String> {
        let out = std::process::Command::new(cmd).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let now = time::OffsetDateTime::now_utc();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown model".into());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0);
    let commit = match run("git", &["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = run("git", &["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev} (with uncommitted changes)")
            } else {
                rev
            }
        }
        None => "unknown".into(),
    };
    let redis_version = run("redis-server", &["--version"])
        .and_then(|v| {
            v.split_ascii_whitespace()
                .find_map(|f| f.strip_prefix("v=").map(str::to_string))
        })
        .unwrap_or_else(|| "unknown".into());
    let steady = if opts.steady.is_zero() {
        String::new()
    } else {
        format!(
            ", a {:.0} s run of RL.CHECK through the leader",
            opts.steady.as_secs_f64()
        )
    };
    Meta {
        date: format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute()
        ),
        cpus: format!("{cpus} × {model}"),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| format!("Linux {}", k.trim()))
            .unwrap_or_else(|_| "unknown".into()),
        memory: format!("{:.1} GiB", mem_kib as f64 / 1024.0 / 1024.0),
        filesystem: filesystem_type(&opts.tmp_dir),
        redis_version,
        commit,
        parameters: format!(
            "keys drawn from {} per workload; {:.1} s warmup and {:.1} s measured per cell ({:.0} s for the goal cells at 50 connections){steady}; {} load thread(s)",
            opts.keyspace,
            opts.warmup.as_secs_f64(),
            opts.duration.as_secs_f64(),
            opts.goal_duration.as_secs_f64(),
            opts.threads
        ),
        busy_before_pct,
        elapsed_s: 0.0,
    }
}

/// The filesystem type holding `dir` (`ext4`, `tmpfs`, …), as `df` reports it.
pub fn filesystem_type(dir: &std::path::Path) -> String {
    std::process::Command::new("df")
        .args(["--output=fstype"])
        .arg(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn full_plan_covers_every_target_workload_and_setting_once() {
        let opts = SuiteOptions::full("raftlimit-server".into());
        let plan = opts.plan(&mut rand::rngs::StdRng::seed_from_u64(7));
        assert_eq!(
            plan.iter().map(|(g, _)| *g).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        let cells: Vec<Planned> = plan.iter().flat_map(|(_, c)| c.iter().copied()).collect();
        let matrix: Vec<&Planned> = cells
            .iter()
            .filter(|c| c.kind == CellKind::Matrix)
            .collect();
        // 3 raftlimit targets × 9 workloads + 2 Redis × 4 workloads, 6 settings each.
        assert_eq!(matrix.len(), (3 * 9 + 2 * 4) * 6);
        for t in TargetKind::ALL {
            for w in Workload::ALL {
                for &(c, p) in &opts.configs {
                    let n = matrix
                        .iter()
                        .filter(|m| {
                            m.target == t
                                && m.workload == w
                                && m.connections == c
                                && m.pipeline == p
                        })
                        .count();
                    assert_eq!(n, usize::from(t.runs(w)), "{t:?} {w:?} {c} {p}");
                }
            }
        }
        // Curves: six points for each target, on its own curve workload.
        let curves: Vec<&Planned> = cells
            .iter()
            .filter(|c| matches!(c.kind, CellKind::Curve(_)))
            .collect();
        assert_eq!(curves.len(), 5 * 6);
        assert!(curves
            .iter()
            .all(|c| c.workload == c.target.curve_workload() && c.connections == 50));
        // Goal cells get the long window; one steady run.
        for m in &matrix {
            let goal =
                m.connections == 50 && m.pipeline == 1 && m.workload == m.target.curve_workload();
            assert_eq!(
                m.duration,
                if goal {
                    opts.goal_duration
                } else {
                    opts.duration
                }
            );
        }
        assert_eq!(
            cells.iter().filter(|c| c.kind == CellKind::Steady).count(),
            1
        );
        // A curve point comes after every closed-loop cell of its target and workload.
        for (i, c) in cells.iter().enumerate() {
            if matches!(c.kind, CellKind::Curve(_)) {
                assert!(!cells[i..].iter().any(|m| m.kind == CellKind::Matrix
                    && m.target == c.target
                    && m.workload == c.workload));
            }
        }
        // SET before GET, within the strings group.
        let (_, strings) = &plan[2];
        let first_get = strings
            .iter()
            .position(|c| c.workload == Workload::Get)
            .unwrap();
        assert!(strings[..first_get]
            .iter()
            .any(|c| c.workload == Workload::Set));
        assert!(!strings[first_get..]
            .iter()
            .any(|c| c.workload == Workload::Set));
        // Within ten minutes, by the estimate.
        let (n, time) = opts.estimate();
        assert_eq!(n, cells.len());
        assert!(time < Duration::from_secs(600), "{time:?}");
    }

    #[test]
    fn quick_plan_is_a_small_subset() {
        let opts = SuiteOptions::quick("raftlimit-server".into());
        let (n, time) = opts.estimate();
        assert!(
            n < 60 && time < Duration::from_secs(120),
            "{n} cells, {time:?}"
        );
        let plan = opts.plan(&mut rand::thread_rng());
        assert!(plan
            .iter()
            .flat_map(|(_, c)| c)
            .all(|c| c.kind != CellKind::Steady));
    }
}
