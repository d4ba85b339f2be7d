//! One test run: workers and nemesis against a cluster, a quiet period, final reads, checkers, and the run directory.
//!
//! Phases, on one monotonic clock: for `duration` the workers run while the
//! nemesis injects faults; then every fault is undone and the workers go on
//! for `quiet` (recovery shows in the plot); then they stop, and each
//! workload's final reads are retried until they succeed. The history, the
//! fault windows, every checker's result, a summary, the node logs and the
//! plot go into the run directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::checker::{CheckResult, Validity};
use crate::client::Client;
use crate::clock::Clock;
use crate::cluster::{Cluster, Endpoint};
use crate::history::{History, Op, OpKind, Outcome, Pair, Value};
use crate::nemesis::{self, FaultKind, FaultWindow, Nemesis, Schedule};
use crate::report::{self, Failover, OpCounts};
use crate::workload::{self, Completion, Previous, Request, Workload};
use crate::Error;

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Workload name (see [`workload::NAMES`]).
    pub workload: String,
    /// Fault kinds, injected in turn.
    pub nemeses: Vec<FaultKind>,
    /// Length of the fault phase.
    pub duration: Duration,
    /// Fault-free time after the fault phase, before the final reads.
    pub quiet: Duration,
    /// When faults happen within the fault phase.
    pub schedule: Schedule,
    /// Concurrent workers; `None` for the workload's default.
    pub workers: Option<usize>,
    /// Operations per second per worker; `None` for the workload's default.
    pub rate: Option<f64>,
    /// A client gives up on an operation (and records `info`) after this long.
    pub op_timeout: Duration,
    /// Seed of the generators and the nemesis; random when `None`.
    pub seed: Option<u64>,
    /// The run directory (created).
    pub dir: PathBuf,
}

impl RunConfig {
    /// Defaults for `workload` against `nemeses`, writing to `dir`.
    pub fn new(workload: &str, nemeses: Vec<FaultKind>, dir: impl Into<PathBuf>) -> Self {
        Self {
            workload: workload.to_owned(),
            nemeses,
            duration: Duration::from_secs(60),
            quiet: Duration::from_secs(5),
            schedule: Schedule::default(),
            workers: None,
            rate: None,
            op_timeout: Duration::from_secs(5),
            seed: None,
            dir: dir.into(),
        }
    }

    /// The nemesis names joined with `+`, as reports show them.
    pub fn nemesis_name(&self) -> String {
        self.nemeses
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// What a run produced (also written to its directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// The workload.
    pub workload: String,
    /// The nemeses, `+`-joined.
    pub nemesis: String,
    /// The seed used.
    pub seed: u64,
    /// Fault phase length, seconds.
    pub duration_s: f64,
    /// Worker count.
    pub workers: usize,
    /// Operations by outcome (final reads included).
    pub ops: OpCounts,
    /// Anomalies over all checkers.
    pub anomalies: usize,
    /// The worst checker verdict.
    pub valid: Validity,
    /// Per-checker verdicts.
    pub checkers: Vec<(String, Validity)>,
    /// Faults injected.
    pub faults: usize,
    /// Failover times after leader faults.
    pub failover: Failover,
    /// The run directory.
    pub dir: PathBuf,
}

impl RunSummary {
    /// The one-line verdict a run prints.
    pub fn verdict_line(&self) -> String {
        let verdict = match self.valid {
            Validity::Valid => "VALID",
            Validity::Unknown => "UNKNOWN",
            Validity::Invalid => "INVALID",
        };
        format!(
            "{verdict}: {} under {} — {} ops ({} ok, {} fail, {} info), {} faults, {} anomalies, failover {}; {}",
            self.workload,
            self.nemesis,
            self.ops.total(),
            self.ops.ok,
            self.ops.fail,
            self.ops.info,
            self.faults,
            self.anomalies,
            self.failover.describe(),
            self.dir.display()
        )
    }
}

/// A finished run: the summary plus the raw material.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The summary.
    pub summary: RunSummary,
    /// The recorded history.
    pub history: History,
    /// Each checker's result.
    pub results: Vec<CheckResult>,
    /// The fault windows.
    pub faults: Vec<FaultWindow>,
}

/// Records operations in the order they are observed.
#[derive(Debug)]
struct Recorder {
    clock: Clock,
    history: Mutex<History>,
}

impl Recorder {
    /// Stamps and appends a record under the lock, so the history is in time order.
    fn record(&self, make: impl FnOnce(u64) -> Op) -> Op {
        let mut history = self.history.lock();
        let op = make(self.clock.now_ns());
        history.push(op.clone());
        op
    }
}

/// How a worker paces itself and when it stops.
#[derive(Debug, Clone, Copy)]
struct Pace {
    interval: Duration,
    stop: Instant,
    op_timeout: Duration,
    workers: u64,
}

/// Runs `config` against `cluster`, writes the run directory and returns the outcome.
pub async fn run(cluster: Arc<dyn Cluster>, config: &RunConfig) -> Result<RunOutcome, Error> {
    let seed = nemesis::seed_or_random(config.seed);
    let run_id = config
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{seed:x}"));
    let workload: Arc<dyn Workload> = Arc::from(workload::by_name(&config.workload, &run_id)?);
    let nemesis = Nemesis::new(config.nemeses.clone(), config.schedule, seed)?;
    nemesis.probe(cluster.as_ref())?;
    std::fs::create_dir_all(&config.dir).map_err(|e| Error::file(&config.dir, e))?;
    let endpoints = cluster.endpoints();
    if endpoints.is_empty() {
        return Err(Error::Cluster("the cluster has no endpoints".into()));
    }
    wait_for_leader(&endpoints, Duration::from_secs(30)).await?;

    let workers = config
        .workers
        .unwrap_or_else(|| workload.default_workers())
        .max(1);
    let rate = config.rate.unwrap_or_else(|| workload.default_rate());
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(Error::Config(format!("rate must be positive, got {rate}")));
    }
    let clock = Clock::start();
    let recorder = Arc::new(Recorder {
        clock,
        history: Mutex::new(History::new()),
    });
    let pace = Pace {
        interval: Duration::from_secs_f64(1.0 / rate),
        stop: clock.at(config.duration + config.quiet),
        op_timeout: config.op_timeout,
        workers: workers as u64,
    };
    let mut tasks = Vec::new();
    let peers: Arc<[Endpoint]> = endpoints.clone().into();
    for w in 0..workers {
        let endpoint = endpoints.get(w % endpoints.len()).cloned();
        let Some(endpoint) = endpoint else { continue };
        tasks.push(tokio::spawn(worker(
            w,
            endpoint,
            peers.clone(),
            workload.clone(),
            recorder.clone(),
            pace,
            seed ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )));
    }
    let fault_end = u64::try_from(config.duration.as_nanos()).unwrap_or(u64::MAX);
    let faults = nemesis.run(cluster.clone(), clock, fault_end).await;
    for t in tasks {
        t.await
            .map_err(|e| Error::Client(format!("worker task: {e}")))?;
    }
    let faults = faults?;
    final_reads(
        workload.as_ref(),
        &endpoints,
        &recorder,
        workers as u64,
        config.op_timeout,
    )
    .await;

    let history = recorder.history.lock().clone();
    let pairs = history.pairs()?;
    let checkers = workload.checkers();
    let results = tokio::task::spawn_blocking({
        let pairs = pairs.clone();
        move || checkers.iter().map(|c| c.check(&pairs)).collect::<Vec<_>>()
    })
    .await
    .map_err(|e| Error::Config(format!("checker task: {e}")))?;

    let summary = RunSummary {
        workload: config.workload.clone(),
        nemesis: config.nemesis_name(),
        seed,
        duration_s: config.duration.as_secs_f64(),
        workers,
        ops: OpCounts::of(&pairs),
        anomalies: results.iter().map(|r| r.anomalies.len()).sum(),
        valid: results.iter().fold(Validity::Valid, |v, r| v.and(r.valid)),
        checkers: results.iter().map(|r| (r.name.clone(), r.valid)).collect(),
        faults: faults.len(),
        failover: Failover::compute(&pairs, &faults),
        dir: config.dir.clone(),
    };
    write_run_dir(
        &config.dir,
        cluster.as_ref(),
        &history,
        &pairs,
        &results,
        &faults,
        &summary,
    )?;
    Ok(RunOutcome {
        summary,
        history,
        results,
        faults,
    })
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Config(format!("serialising {}: {e}", path.display())))?;
    std::fs::write(path, text + "\n").map_err(|e| Error::file(path, e))
}

fn write_run_dir(
    dir: &Path,
    cluster: &dyn Cluster,
    history: &History,
    pairs: &[Pair],
    results: &[CheckResult],
    faults: &[FaultWindow],
    summary: &RunSummary,
) -> Result<(), Error> {
    history.save(dir.join("history.jsonl"))?;
    write_json(&dir.join("faults.json"), &faults)?;
    for r in results {
        write_json(&dir.join(format!("check-{}.json", r.name)), r)?;
    }
    write_json(&dir.join("summary.json"), summary)?;
    cluster.collect_logs(&dir.join("logs"))?;
    report::plot(
        &dir.join("plot.svg"),
        pairs,
        faults,
        &summary.workload,
        &summary.nemesis,
    )
}

async fn wait_for_leader(endpoints: &[Endpoint], timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if nemesis::leader(endpoints, Duration::from_millis(500))
            .await
            .is_some()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::Cluster(format!(
        "no leader elected within {timeout:?}"
    )))
}

fn node_name(endpoint: &Endpoint) -> String {
    format!("n{}", endpoint.node)
}

/// How long a worker keeps resending an indeterminate request that carries
/// an idempotency token, counted in operation timeouts from its invocation.
/// Long enough to outlast an election and a restarted node's catch-up.
const RESEND_TIMEOUTS: u32 = 4;

/// Sends `commands` on a fresh connection to each of `peers` in turn,
/// starting after `first`, until a reply says what became of the request or
/// the resend budget is spent. Only for requests with an idempotency token:
/// the server answers a resend with the first reply, so resending cannot
/// apply the request twice.
async fn resend(
    workload: &dyn Workload,
    request: &Request,
    commands: &[Vec<String>],
    peers: &[Endpoint],
    first: &Endpoint,
    op_timeout: Duration,
    deadline: Instant,
) -> Option<Completion> {
    let start = peers.iter().position(|p| p.node == first.node).unwrap_or(0);
    let mut attempt = 0;
    while Instant::now() < deadline && !peers.is_empty() {
        attempt += 1;
        let peer = &peers[(start + attempt) % peers.len()];
        let connect = op_timeout.min(Duration::from_secs(1));
        if let Ok(mut client) = Client::connect(peer, connect).await {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(Ok(replies)) =
                tokio::time::timeout(op_timeout.min(left), client.pipeline(commands)).await
            {
                match workload.complete(request, &replies) {
                    Completion::Info(_) => {}
                    known => return Some(known),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Performs one request on `client` and records it; returns how it ended.
/// Drops the connection when its state is unknown. A request with an
/// idempotency token whose outcome is unknown is resent through `peers`
/// (see [`resend`]) and recorded as one operation with the answer.
#[allow(clippy::too_many_arguments)]
async fn perform(
    client: &mut Option<Client>,
    endpoint: &Endpoint,
    peers: &[Endpoint],
    workload: &dyn Workload,
    recorder: &Recorder,
    process: u64,
    request: &Request,
    op_timeout: Duration,
) -> (OpKind, Value) {
    let Some(c) = client.as_mut() else {
        return (OpKind::Fail, Value::Nil);
    };
    let commands = workload.commands(request);
    let invoke = recorder.record(|now| {
        Op::invoke(
            process,
            request.f,
            request.key.clone(),
            request.value.clone(),
            now,
        )
        .with_node(node_name(endpoint))
    });
    let completion = match tokio::time::timeout(op_timeout, c.pipeline(&commands)).await {
        Ok(Ok(replies)) => workload.complete(request, &replies),
        Ok(Err(e)) => {
            *client = None;
            Completion::Info(e.to_string())
        }
        Err(_) => {
            *client = None;
            Completion::Info(format!("timed out after {op_timeout:?}"))
        }
    };
    let completion = match completion {
        Completion::Info(error) if request.token.is_some() => {
            let deadline = Instant::now() + op_timeout * RESEND_TIMEOUTS;
            resend(
                workload, request, &commands, peers, endpoint, op_timeout, deadline,
            )
            .await
            .unwrap_or(Completion::Info(error))
        }
        other => other,
    };
    let (kind, value, error) = match completion {
        Completion::Ok(v) => (OpKind::Ok, v, None),
        Completion::Fail(e) => (OpKind::Fail, Value::Nil, Some(e)),
        Completion::Info(e) => (OpKind::Info, Value::Nil, Some(e)),
    };
    recorder.record(|now| {
        let op = invoke.complete(kind, value.clone(), now);
        match &error {
            Some(e) => op.with_error(e.clone()),
            None => op,
        }
    });
    (kind, value)
}

async fn worker(
    index: usize,
    endpoint: Endpoint,
    peers: Arc<[Endpoint]>,
    workload: Arc<dyn Workload>,
    recorder: Arc<Recorder>,
    pace: Pace,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut process = index as u64;
    let mut client: Option<Client> = None;
    let mut previous: Option<Previous> = None;
    let mut next_at = Instant::now();
    while Instant::now() < pace.stop {
        tokio::time::sleep_until(next_at.into()).await;
        next_at = (next_at + pace.interval).max(Instant::now());
        if client.is_none() {
            // Nothing is sent, so nothing is recorded, until a connection stands.
            match Client::connect(&endpoint, pace.op_timeout.min(Duration::from_secs(1))).await {
                Ok(c) => client = Some(c),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let request = workload.next(index, previous.as_ref(), &mut rng);
        let (kind, result) = perform(
            &mut client,
            &endpoint,
            &peers,
            workload.as_ref(),
            &recorder,
            process,
            &request,
            pace.op_timeout,
        )
        .await;
        let outcome = match kind {
            OpKind::Ok => Outcome::Ok,
            OpKind::Fail => Outcome::Fail,
            _ => Outcome::Info,
        };
        if outcome == Outcome::Info {
            // The operation may still take effect: this process is done.
            process = History::next_process(process, pace.workers);
        }
        previous = Some(Previous {
            request,
            outcome,
            result,
        });
    }
}

/// Each final read, retried on every node in turn until one succeeds or a minute passes.
async fn final_reads(
    workload: &dyn Workload,
    endpoints: &[Endpoint],
    recorder: &Recorder,
    workers: u64,
    op_timeout: Duration,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    // Process ids above every worker's (workers continue as `process + workers`).
    let mut process = u64::MAX / 2;
    for (i, request) in workload.final_reads().into_iter().enumerate() {
        let mut attempt = i;
        while Instant::now() < deadline {
            let Some(endpoint) = endpoints.get(attempt % endpoints.len()) else {
                return;
            };
            attempt += 1;
            let mut client = Client::connect(endpoint, op_timeout).await.ok();
            if client.is_none() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let (kind, _) = perform(
                &mut client,
                endpoint,
                endpoints,
                workload,
                recorder,
                process,
                &request,
                op_timeout,
            )
            .await;
            process = History::next_process(process, workers);
            if kind == OpKind::Ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
