//! Faults on a schedule: which fault kinds exist, whom they hit, and the fault windows a run records.
//!
//! A nemesis alternates quiet time and faults: `interval` of quiet, then a
//! fault held for `fault_duration`, then the heal, and again, until the run's
//! fault phase ends; then every fault is undone. Each fault becomes a
//! [`FaultWindow`] (written to `faults.json` next to the history), which the
//! plot shades and the failover statistics start from.
//!
//! Targets rotate so every run covers each variant: `kill` hits the leader,
//! a random node, then a majority; `pause` the leader, then a minority;
//! `partition` isolates the leader, then splits a random minority off. The
//! partition API takes disjoint groups (traffic flows within a group only),
//! which cannot express the non-transitive ring and bridge partitions; with
//! three nodes the majorities ring is no partition at all, and the bridge
//! would need per-link rules. `restart` is a rolling kill and restart of
//! every node in turn. `member` is refused: the cluster has no membership
//! commands yet, so a membership nemesis would test nothing.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::client::{Client, Resp};
use crate::clock::Clock;
use crate::cluster::{Cluster, Endpoint};
use crate::Error;

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// No faults: a baseline run.
    None,
    /// SIGKILL, then a restart on the same data.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// Cut traffic between groups of nodes, then heal.
    Partition,
    /// Kill and restart every node in turn.
    Restart,
    /// Membership changes (refused: the cluster has no membership commands).
    Member,
}

impl FaultKind {
    /// Every kind `make chaos` runs.
    pub const MATRIX: [FaultKind; 4] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::Restart,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::None => "none",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Restart => "restart",
            FaultKind::Member => "member",
        }
    }
}

impl FromStr for FaultKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "none" => Ok(FaultKind::None),
            "kill" => Ok(FaultKind::Kill),
            "pause" => Ok(FaultKind::Pause),
            "partition" => Ok(FaultKind::Partition),
            "restart" => Ok(FaultKind::Restart),
            "member" => Ok(FaultKind::Member),
            other => Err(Error::Config(format!(
                "unknown nemesis {other:?} (kill, pause, partition, restart, member, none)"
            ))),
        }
    }
}

/// One injected fault, as a run records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// The fault kind.
    pub kind: FaultKind,
    /// What was done, e.g. `kill leader [2]`.
    pub description: String,
    /// The nodes hit.
    pub nodes: Vec<u64>,
    /// Whether the nodes hit included the leader (as the nodes reported it
    /// just before the fault); failover times are measured from these.
    pub hit_leader: bool,
    /// When the fault began (run clock, ns).
    pub start_ns: u64,
    /// When it was undone (run clock, ns).
    pub end_ns: u64,
}

/// When faults happen.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Quiet time before each fault.
    pub interval: Duration,
    /// How long each fault is held.
    pub fault_duration: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            fault_duration: Duration::from_secs(5),
        }
    }
}

/// Injects faults of the given kinds (taken in turn) on a schedule.
#[derive(Debug)]
pub struct Nemesis {
    kinds: Vec<FaultKind>,
    schedule: Schedule,
    seed: u64,
    client_timeout: Duration,
}

/// What is currently broken, so it can be undone whatever happens.
#[derive(Debug, Default)]
struct Damage {
    killed: Vec<u64>,
    paused: Vec<u64>,
    partitioned: bool,
}

impl Nemesis {
    /// A nemesis cycling through `kinds`. Refuses kinds the harness cannot
    /// honestly run (`member`) and an empty list.
    pub fn new(kinds: Vec<FaultKind>, schedule: Schedule, seed: u64) -> Result<Self, Error> {
        if kinds.contains(&FaultKind::Member) {
            return Err(Error::Unsupported(
                "the member nemesis needs membership commands (adding and removing voters), which \
                 raftlimit does not have yet; refusing to run it rather than pretend"
                    .into(),
            ));
        }
        if kinds.is_empty() {
            return Err(Error::Config("no nemesis given".into()));
        }
        let kinds = kinds
            .into_iter()
            .filter(|k| *k != FaultKind::None)
            .collect();
        Ok(Self {
            kinds,
            schedule,
            seed,
            client_timeout: Duration::from_millis(500),
        })
    }

    /// Whether this nemesis injects any fault at all.
    pub fn is_quiet(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Checks up front that the backend supports every kind, so a run does
    /// not spend its duration before discovering it cannot partition.
    pub fn probe(&self, cluster: &dyn Cluster) -> Result<(), Error> {
        if self.kinds.contains(&FaultKind::Partition) {
            // One group holding every node cuts nothing.
            let all: Vec<u64> = cluster.endpoints().iter().map(|e| e.node).collect();
            cluster.partition(&[all])?;
            cluster.heal()?;
        }
        Ok(())
    }

    /// Runs the schedule until `until_ns` on `clock`, then undoes every
    /// fault. Returns the fault windows, in order.
    pub async fn run(
        &self,
        cluster: Arc<dyn Cluster>,
        clock: Clock,
        until_ns: u64,
    ) -> Result<Vec<FaultWindow>, Error> {
        let mut windows = Vec::new();
        if self.is_quiet() {
            return Ok(windows);
        }
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut damage = Damage::default();
        let hold_ns = duration_ns(self.schedule.fault_duration);
        let mut round = 0usize;
        let result = async {
            loop {
                tokio::time::sleep(self.schedule.interval).await;
                if clock.now_ns().saturating_add(hold_ns) > until_ns {
                    break;
                }
                let kind = self.kinds.get(round % self.kinds.len()).copied();
                let Some(kind) = kind else { break };
                let variant = round / self.kinds.len();
                round += 1;
                let mut new = self
                    .fault(&cluster, &clock, kind, variant, &mut rng, &mut damage)
                    .await?;
                if kind != FaultKind::Restart {
                    tokio::time::sleep(self.schedule.fault_duration).await;
                    self.undo(&cluster, &mut damage).await?;
                    let end = clock.now_ns();
                    for w in &mut new {
                        w.end_ns = end;
                    }
                }
                windows.extend(new);
            }
            Ok::<(), Error>(())
        }
        .await;
        // Undo whatever is left even if a fault failed half-way.
        let undone = self.undo(&cluster, &mut damage).await;
        result.and(undone).map(|()| windows)
    }

    async fn fault(
        &self,
        cluster: &Arc<dyn Cluster>,
        clock: &Clock,
        kind: FaultKind,
        variant: usize,
        rng: &mut StdRng,
        damage: &mut Damage,
    ) -> Result<Vec<FaultWindow>, Error> {
        let endpoints = cluster.endpoints();
        let mut nodes: Vec<u64> = endpoints.iter().map(|e| e.node).collect();
        let leader = leader(&endpoints, self.client_timeout).await;
        let majority = nodes.len() / 2 + 1;
        let leader_or_random = |rng: &mut StdRng| -> (u64, &'static str) {
            match leader {
                Some(l) => (l, "leader"),
                None => (
                    nodes.choose(rng).copied().unwrap_or(1),
                    "random node (no leader known)",
                ),
            }
        };
        let window = |description: String, hit: Vec<u64>, start_ns: u64| FaultWindow {
            kind,
            hit_leader: leader.is_some_and(|l| hit.contains(&l)),
            description,
            nodes: hit,
            start_ns,
            end_ns: start_ns,
        };
        match kind {
            FaultKind::Kill => {
                let (targets, what) = match variant % 3 {
                    0 => {
                        let (n, what) = leader_or_random(rng);
                        (vec![n], what)
                    }
                    1 => (
                        nodes.choose(rng).copied().into_iter().collect(),
                        "random node",
                    ),
                    _ => {
                        nodes.shuffle(rng);
                        (nodes.iter().copied().take(majority).collect(), "majority")
                    }
                };
                let start = clock.now_ns();
                for &n in &targets {
                    blocking(cluster, move |c| c.kill(n)).await?;
                    damage.killed.push(n);
                }
                Ok(vec![window(
                    format!("kill {what} {targets:?}"),
                    targets,
                    start,
                )])
            }
            FaultKind::Pause => {
                let (targets, what) = if variant.is_multiple_of(2) {
                    let (n, what) = leader_or_random(rng);
                    (vec![n], what)
                } else {
                    nodes.shuffle(rng);
                    let minority = nodes.len().saturating_sub(majority).max(1);
                    (nodes.iter().copied().take(minority).collect(), "minority")
                };
                let start = clock.now_ns();
                for &n in &targets {
                    blocking(cluster, move |c| c.pause(n)).await?;
                    damage.paused.push(n);
                }
                Ok(vec![window(
                    format!("pause {what} {targets:?}"),
                    targets,
                    start,
                )])
            }
            FaultKind::Partition => {
                let (cut, what) = if variant.is_multiple_of(2) {
                    let (n, what) = leader_or_random(rng);
                    (
                        vec![n],
                        if leader.is_some() {
                            "isolate leader"
                        } else {
                            what
                        },
                    )
                } else {
                    nodes.shuffle(rng);
                    let minority = nodes.len().saturating_sub(majority).max(1);
                    (
                        nodes.iter().copied().take(minority).collect(),
                        "split minority from majority",
                    )
                };
                let rest: Vec<u64> = nodes.iter().copied().filter(|n| !cut.contains(n)).collect();
                let groups = vec![cut.clone(), rest.clone()];
                let start = clock.now_ns();
                damage.partitioned = true;
                blocking(cluster, move |c| c.partition(&groups)).await?;
                Ok(vec![window(
                    format!("partition {what}: {cut:?} | {rest:?}"),
                    cut,
                    start,
                )])
            }
            FaultKind::Restart => {
                // A rolling restart: one node at a time, each down for its share of the hold.
                nodes.sort_unstable();
                let share =
                    self.schedule.fault_duration / u32::try_from(nodes.len().max(1)).unwrap_or(1);
                let mut out = Vec::new();
                for n in nodes {
                    let leader_now = self::leader(&endpoints, self.client_timeout).await;
                    let start = clock.now_ns();
                    blocking(cluster, move |c| c.kill(n)).await?;
                    damage.killed.push(n);
                    tokio::time::sleep(share / 2).await;
                    blocking(cluster, move |c| c.start(n)).await?;
                    damage.killed.retain(|k| *k != n);
                    let end = clock.now_ns();
                    out.push(FaultWindow {
                        kind,
                        description: format!("rolling restart: node {n}"),
                        nodes: vec![n],
                        hit_leader: leader_now == Some(n),
                        start_ns: start,
                        end_ns: end,
                    });
                    tokio::time::sleep(share / 2).await;
                }
                Ok(out)
            }
            FaultKind::None | FaultKind::Member => Ok(Vec::new()),
        }
    }

    /// Restarts killed nodes, resumes paused ones and heals partitions.
    async fn undo(&self, cluster: &Arc<dyn Cluster>, damage: &mut Damage) -> Result<(), Error> {
        let mut first_error = None;
        for n in std::mem::take(&mut damage.paused) {
            if let Err(e) = blocking(cluster, move |c| c.resume(n)).await {
                first_error.get_or_insert(e);
            }
        }
        for n in std::mem::take(&mut damage.killed) {
            if let Err(e) = blocking(cluster, move |c| c.start(n)).await {
                first_error.get_or_insert(e);
            }
        }
        if std::mem::take(&mut damage.partitioned) {
            if let Err(e) = blocking(cluster, |c| c.heal()).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Runs a (blocking) cluster call off the async workers.
async fn blocking(
    cluster: &Arc<dyn Cluster>,
    f: impl FnOnce(&dyn Cluster) -> Result<(), Error> + Send + 'static,
) -> Result<(), Error> {
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || f(cluster.as_ref()))
        .await
        .map_err(|e| Error::Fault(format!("fault task: {e}")))?
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The leader most nodes report (`INFO replication`, `raft_leader_id`), if any.
pub async fn leader(endpoints: &[Endpoint], timeout: Duration) -> Option<u64> {
    let mut votes: Vec<u64> = Vec::new();
    for e in endpoints {
        let asked = tokio::time::timeout(timeout, async {
            let mut c = Client::connect(e, timeout).await.ok()?;
            match c.call(&["INFO", "replication"]).await.ok()? {
                Resp::Bulk(Some(text)) => parse_leader(&String::from_utf8_lossy(&text)),
                _ => None,
            }
        })
        .await
        .ok()
        .flatten();
        votes.extend(asked);
    }
    let mut best: Option<(u64, usize)> = None;
    for &v in &votes {
        let count = votes.iter().filter(|&&x| x == v).count();
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((v, count));
        }
    }
    best.map(|(v, _)| v)
}

fn parse_leader(info: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix("raft_leader_id:"))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
}

/// Seeds from the wall clock when none is given, so runs differ but can be replayed.
pub fn seed_or_random(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| rand::thread_rng().gen())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_id_comes_from_info() {
        let info = "# Replication\r\nrole:slave\r\nraft_node_id:3\r\nraft_leader_id:2\r\n";
        assert_eq!(parse_leader(info), Some(2));
        assert_eq!(parse_leader("raft_leader_id:-1\r\n"), None);
        assert_eq!("kill".parse::<FaultKind>().ok(), Some(FaultKind::Kill));
        assert!("clock".parse::<FaultKind>().is_err());
    }
}
