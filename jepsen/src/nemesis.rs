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
//! `partition` isolates the leader, then splits a random minority from the
//! majority, then makes a bridge, then (with five nodes or more) a
//! majorities ring. `restart` is a rolling kill and restart of every node
//! in turn. `member` changes the voter set through the cluster's own
//! membership commands (`RAFT.REMOVE`, `RAFT.ADD`, sent over RESP to any
//! node): it removes a random follower, then the leader, each for the fault
//! duration, and the heal adds the node back; the final heal makes sure
//! every node votes again. Its window opens once the change is committed.
//!
//! A partition is handed to the backend as its cut links ([`Partition`]),
//! so the non-transitive shapes are real. The bridge (one node talks to
//! both halves, the halves cannot talk; with three nodes exactly one link
//! is cut) alternates its bridge node: a follower first, so the leader and
//! the other follower are the cut pair, then the leader itself, whose every
//! link survives. The first is the interesting one: the follower that no
//! longer hears the leader keeps calling elections through the bridge. A
//! bridge counts as hitting the leader (for the failover statistics) when
//! the leader is at an end of a cut link, and not when it is the bridge, so
//! the statistics show whether those elections cost availability. (On
//! openraft they should not while the cut lasts: a node that heard from its
//! leader within the leader lease rejects vote requests, so the bridge
//! refuses the cut follower. That follower's term grows meanwhile, and when
//! the link heals its higher term makes the leader step down and hold an
//! election, after the fault window.)
//! The majorities ring (every node sees a majority, no two the same one) is
//! no partition at all with three nodes: each node's nearest neighbours are
//! everyone, nothing is cut, so a three-node cluster never gets a ring turn
//! rather than get a fault that does nothing.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::client::{Client, Resp};
use crate::clock::Clock;
use crate::cluster::{Cluster, Endpoint, Partition};
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
    /// Remove a voter (a follower, then the leader), then add it back.
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
    /// The nodes hit: those killed or paused; for a partition, the side cut
    /// off from the majority (isolation, split) or every node at an end of
    /// a cut link (bridge, ring).
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
    /// Voters removed by the `member` nemesis, to be added back.
    removed: Vec<u64>,
    /// Whether the `member` nemesis changed the membership this run, so
    /// the final heal checks that every node votes again.
    membership_changed: bool,
}

/// How long one membership command may take: promoting a node waits for
/// it to catch up, and a follower forwards the command to the leader.
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the nemesis keeps trying to get a membership change through.
const MEMBERSHIP_DEADLINE: Duration = Duration::from_secs(60);

impl Nemesis {
    /// A nemesis cycling through `kinds`. Refuses an empty list.
    pub fn new(kinds: Vec<FaultKind>, schedule: Schedule, seed: u64) -> Result<Self, Error> {
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
            // The empty partition cuts nothing.
            cluster.partition(&Partition::default())?;
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
        let mut undone = self.undo(&cluster, &mut damage).await;
        if undone.is_ok() && damage.membership_changed {
            undone = restore_voters(&cluster.endpoints()).await;
        }
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
                for &n in &targets {
                    blocking(cluster, move |c| c.kill(n)).await?;
                    damage.killed.push(n);
                }
                // The window opens once the fault is in effect: a write
                // the old leader finished while `docker kill` (or pause,
                // or the iptables rules) was still under way is no failover.
                let start = clock.now_ns();
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
                for &n in &targets {
                    blocking(cluster, move |c| c.pause(n)).await?;
                    damage.paused.push(n);
                }
                let start = clock.now_ns();
                Ok(vec![window(
                    format!("pause {what} {targets:?}"),
                    targets,
                    start,
                )])
            }
            FaultKind::Partition => {
                nodes.sort_unstable();
                let (partition, hit, what) = partition_shape(&nodes, leader, variant, rng)?;
                let description = format!("partition {what}: cut {partition}");
                damage.partitioned = true;
                blocking(cluster, move |c| c.partition(&partition)).await?;
                let start = clock.now_ns();
                Ok(vec![window(description, hit, start)])
            }
            FaultKind::Restart => {
                // A rolling restart: one node at a time, each down for its share of the hold.
                nodes.sort_unstable();
                let share =
                    self.schedule.fault_duration / u32::try_from(nodes.len().max(1)).unwrap_or(1);
                let mut out = Vec::new();
                for n in nodes {
                    let leader_now = self::leader(&endpoints, self.client_timeout).await;
                    blocking(cluster, move |c| c.kill(n)).await?;
                    damage.killed.push(n);
                    let start = clock.now_ns();
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
            FaultKind::Member => {
                let (target, what) = member_target(&nodes, leader, variant, rng);
                // Recorded first: whatever happens to the command, the heal
                // tries to add the node back.
                damage.removed.push(target);
                damage.membership_changed = true;
                change_membership(&endpoints, "RAFT.REMOVE", target).await?;
                let start = clock.now_ns();
                Ok(vec![window(
                    format!("remove {what} [{target}] from the voters"),
                    vec![target],
                    start,
                )])
            }
            FaultKind::None => Ok(Vec::new()),
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
        // Last: adding a node back needs a leader and the node itself running.
        let endpoints = cluster.endpoints();
        for n in std::mem::take(&mut damage.removed) {
            if let Err(e) = change_membership(&endpoints, "RAFT.ADD", n).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The `variant`th partition of a run over `nodes` (sorted) whose leader
/// was `leader`: the cut, the nodes it hits (see [`FaultWindow::nodes`]) and
/// what it is, for the description. The shapes rotate: the leader isolated,
/// a random minority split from the majority, a bridge, and a majorities
/// ring when the cluster is large enough for one to cut anything.
fn partition_shape(
    nodes: &[u64],
    leader: Option<u64>,
    variant: usize,
    rng: &mut StdRng,
) -> Result<(Partition, Vec<u64>, String), Error> {
    let ring_cuts = !Partition::ring(nodes).is_empty();
    let shapes = if ring_cuts { 4 } else { 3 };
    let majority = nodes.len() / 2 + 1;
    let rest =
        |cut: &[u64]| -> Vec<u64> { nodes.iter().copied().filter(|n| !cut.contains(n)).collect() };
    match variant % shapes {
        0 => {
            let (node, what) = match leader {
                Some(l) => (l, "isolate leader".to_owned()),
                None => (
                    nodes.choose(rng).copied().unwrap_or(1),
                    "isolate random node (no leader known)".to_owned(),
                ),
            };
            let others = rest(&[node]);
            let partition = Partition::from_groups(&[vec![node], others.clone()])?;
            Ok((
                partition,
                vec![node],
                format!("{what} [{node}] from {others:?}"),
            ))
        }
        1 => {
            let mut shuffled = nodes.to_vec();
            shuffled.shuffle(rng);
            let minority_size = nodes.len().saturating_sub(majority).max(1);
            let mut minority: Vec<u64> = shuffled.into_iter().take(minority_size).collect();
            minority.sort_unstable();
            let others = rest(&minority);
            let partition = Partition::from_groups(&[minority.clone(), others.clone()])?;
            Ok((
                partition,
                minority.clone(),
                format!("split minority {minority:?} from majority {others:?}"),
            ))
        }
        2 => {
            // Every other bridge is a follower (the leader at a cut end), the
            // rest the leader itself; see the module docs.
            let follower_turn = (variant / shapes).is_multiple_of(2);
            let (bridge, role) = match leader {
                Some(l) if !follower_turn => (l, "leader"),
                Some(l) => match rest(&[l]).choose(rng) {
                    Some(&f) => (f, "follower"),
                    None => (l, "leader"),
                },
                None => (
                    nodes.choose(rng).copied().unwrap_or(1),
                    "random node (no leader known)",
                ),
            };
            // The two halves in random order, so which nodes end up apart varies.
            let mut others = rest(&[bridge]);
            others.shuffle(rng);
            let mut order = vec![bridge];
            order.extend(&others);
            let partition = Partition::bridge(bridge, &order)?;
            // The halves as Partition::bridge splits them, for the description.
            let (left, right) = others.split_at(others.len().div_ceil(2));
            let leader_note = match leader {
                Some(l) if l != bridge => format!(" (leader {l})"),
                _ => String::new(),
            };
            let hit = partition.nodes();
            Ok((
                partition,
                hit,
                format!(
                    "bridge: {role} {bridge} reaches {left:?} and {right:?}, which cannot reach \
                     each other{leader_note}"
                ),
            ))
        }
        _ => {
            let mut order = nodes.to_vec();
            order.shuffle(rng);
            let partition = Partition::ring(&order);
            let hit = partition.nodes();
            Ok((
                partition,
                hit,
                format!("majorities ring {order:?} (each node sees a majority)"),
            ))
        }
    }
}

/// The node the `variant`th `member` fault removes from the voters, and
/// what it is: a random follower on even turns, the leader on odd ones (a
/// random node when no leader is known).
fn member_target(
    nodes: &[u64],
    leader: Option<u64>,
    variant: usize,
    rng: &mut StdRng,
) -> (u64, &'static str) {
    let random = |rng: &mut StdRng| nodes.choose(rng).copied().unwrap_or(1);
    match leader {
        Some(l) if variant % 2 == 1 => (l, "leader"),
        Some(l) => {
            let followers: Vec<u64> = nodes.iter().copied().filter(|&n| n != l).collect();
            match followers.choose(rng) {
                Some(&f) => (f, "follower"),
                None => (l, "leader"),
            }
        }
        None => (random(rng), "random node (no leader known)"),
    }
}

/// Whether a membership command's reply means the change is in place:
/// `OK`, or a refusal saying it already was (a retry after a lost reply).
fn membership_done(command: &str, reply: &Resp) -> bool {
    match reply {
        Resp::Simple(s) => s == "OK",
        Resp::Error(e) if command == "RAFT.ADD" => e.contains("is already a voter"),
        Resp::Error(e) => e.contains("is not a voter"),
        _ => false,
    }
}

/// Sends `command <node>` (RAFT.ADD or RAFT.REMOVE) to the endpoints in
/// turn until one answers that it is done, for up to
/// [`MEMBERSHIP_DEADLINE`]. Any node forwards it to the leader; a node that
/// is down, has no leader, or finds another change in progress is tried
/// again later.
async fn change_membership(endpoints: &[Endpoint], command: &str, node: u64) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + MEMBERSHIP_DEADLINE;
    let id = node.to_string();
    let mut last = String::from("no endpoint");
    loop {
        for e in endpoints {
            let asked = tokio::time::timeout(MEMBERSHIP_TIMEOUT, async {
                let mut c = Client::connect(e, MEMBERSHIP_TIMEOUT).await?;
                c.call(&[command, id.as_str()]).await
            })
            .await;
            match asked {
                Ok(Ok(reply)) if membership_done(command, &reply) => return Ok(()),
                Ok(Ok(reply)) => last = format!("node {}: {reply:?}", e.node),
                Ok(Err(err)) => last = format!("node {}: {err}", e.node),
                Err(_) => last = format!("node {}: no answer in {MEMBERSHIP_TIMEOUT:?}", e.node),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Fault(format!("{command} {node} failed: {last}")));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Parses RAFT.MEMBERS (one `id`, `role`, … field list per node) into
/// (id, role) pairs.
fn parse_members(reply: &Resp) -> Option<Vec<(u64, String)>> {
    let Resp::Array(Some(nodes)) = reply else {
        return None;
    };
    nodes
        .iter()
        .map(|node| {
            let Resp::Array(Some(fields)) = node else {
                return None;
            };
            let mut id = None;
            let mut role = None;
            for pair in fields.chunks(2) {
                match (pair[0].as_text().as_deref(), pair.get(1)) {
                    (Some("id"), Some(Resp::Int(v))) => id = u64::try_from(*v).ok(),
                    (Some("role"), Some(v)) => role = v.as_text(),
                    _ => {}
                }
            }
            Some((id?, role?))
        })
        .collect()
}

/// The final heal of the `member` nemesis: adds back every endpoint's node
/// that the membership (as the first node that answers reports it) does
/// not count as a voter, e.g. after a removal whose reply was lost.
async fn restore_voters(endpoints: &[Endpoint]) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + MEMBERSHIP_DEADLINE;
    loop {
        let mut members = None;
        for e in endpoints {
            let asked = tokio::time::timeout(MEMBERSHIP_TIMEOUT, async {
                let mut c = Client::connect(e, MEMBERSHIP_TIMEOUT).await?;
                c.call(&["RAFT.MEMBERS"]).await
            })
            .await;
            if let Ok(Ok(reply)) = asked {
                members = parse_members(&reply);
                if members.is_some() {
                    break;
                }
            }
        }
        if let Some(members) = members {
            let missing: Vec<u64> = endpoints
                .iter()
                .map(|e| e.node)
                .filter(|n| !members.iter().any(|(id, role)| id == n && role == "voter"))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            for n in missing {
                change_membership(endpoints, "RAFT.ADD", n).await?;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Fault(
                "the final heal could not make every node a voter again".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
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

    #[test]
    fn partitions_rotate_through_isolation_split_and_bridge() -> Result<(), Error> {
        let nodes = [1, 2, 3];
        let mut rng = StdRng::seed_from_u64(7);
        let mut bridges = Vec::new();
        for variant in 0..9 {
            let (p, hit, what) = partition_shape(&nodes, Some(2), variant, &mut rng)?;
            match variant % 3 {
                0 => {
                    assert!(what.starts_with("isolate leader [2]"), "{what}");
                    assert_eq!(p.to_string(), "1-2, 2-3");
                    assert_eq!(hit, vec![2]);
                }
                1 => {
                    assert!(what.starts_with("split minority"), "{what}");
                    assert_eq!(hit.len(), 1, "{what}");
                    assert_eq!(p.peers_cut(hit[0]).len(), 2, "{what}");
                    assert_eq!(p.links().count(), 2, "{what}");
                }
                _ => {
                    assert!(what.starts_with("bridge: "), "{what}");
                    assert_eq!(p.links().count(), 1, "{what}: {p}");
                    let bridge = (1..=3)
                        .find(|&n| p.peers_cut(n).is_empty())
                        .ok_or_else(|| Error::Fault(format!("no bridge in {p}")))?;
                    assert_eq!(hit, p.nodes());
                    assert!(!hit.contains(&bridge));
                    bridges.push(bridge);
                }
            }
        }
        // A follower bridges first (the leader is at a cut end), then the leader.
        assert_ne!(bridges[0], 2);
        assert_eq!(bridges[1], 2);
        assert_ne!(bridges[2], 2);
        Ok(())
    }

    #[test]
    fn member_removes_a_follower_then_the_leader() {
        let nodes = [1, 2, 3];
        let mut rng = StdRng::seed_from_u64(3);
        let mut followers = Vec::new();
        for variant in 0..8 {
            let (target, what) = member_target(&nodes, Some(2), variant, &mut rng);
            if variant % 2 == 0 {
                assert_eq!(what, "follower");
                assert_ne!(target, 2);
                followers.push(target);
            } else {
                assert_eq!((target, what), (2, "leader"));
            }
        }
        // The follower is chosen at random.
        assert!(followers.iter().all(|f| [1, 3].contains(f)));
        let (target, what) = member_target(&nodes, None, 1, &mut rng);
        assert!(nodes.contains(&target));
        assert_eq!(what, "random node (no leader known)");
    }

    #[test]
    fn membership_replies_are_understood() {
        assert!(membership_done("RAFT.REMOVE", &Resp::Simple("OK".into())));
        assert!(membership_done(
            "RAFT.ADD",
            &Resp::Error("ERR node 2 is already a voter".into())
        ));
        assert!(membership_done(
            "RAFT.REMOVE",
            &Resp::Error("ERR node 2 is not a voter".into())
        ));
        assert!(!membership_done(
            "RAFT.ADD",
            &Resp::Error("CLUSTERDOWN No raft leader".into())
        ));
        assert!(!membership_done(
            "RAFT.ADD",
            &Resp::Error("ERR node 2 is not a voter".into())
        ));
        let field = |s: &str| Resp::Bulk(Some(s.as_bytes().to_vec()));
        let node = |id: i64, role: &str| {
            Resp::Array(Some(vec![
                field("id"),
                Resp::Int(id),
                field("role"),
                field(role),
                field("resp_addr"),
                field("127.0.0.1:1"),
            ]))
        };
        let reply = Resp::Array(Some(vec![node(1, "voter"), node(2, "learner")]));
        assert_eq!(
            parse_members(&reply),
            Some(vec![(1, "voter".to_owned()), (2, "learner".to_owned())])
        );
        assert_eq!(
            parse_members(&Resp::Error("ERR unknown command".into())),
            None
        );
    }

    #[test]
    fn three_nodes_get_no_ring_turn_and_five_do() -> Result<(), Error> {
        let mut rng = StdRng::seed_from_u64(1);
        for variant in 0..6 {
            let (p, _, what) = partition_shape(&[1, 2, 3], None, variant, &mut rng)?;
            assert!(!p.is_empty(), "{what}");
            assert!(!what.contains("ring"), "{what}");
            // The split is random whatever the leader; the others say they guessed.
            assert_eq!(variant % 3 != 1, what.contains("no leader known"), "{what}");
        }
        let (p, hit, what) = partition_shape(&[1, 2, 3, 4, 5], Some(1), 3, &mut rng)?;
        assert!(what.starts_with("majorities ring"), "{what}");
        assert_eq!(p.links().count(), 5, "{what}: {p}");
        assert_eq!(hit, vec![1, 2, 3, 4, 5]);
        Ok(())
    }
}
