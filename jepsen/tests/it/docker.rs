//! The compose cluster through the docker backend: TLS+AUTH clients, failover after `docker kill`, pause, and iptables partitions (leader isolated, bridge).
//!
//! Needs docker, the image and the deploy files (`make test-docker` makes
//! both and runs this; `make test` runs it through scripts/test-docker.sh);
//! without a docker daemon it prints why and passes. It runs its own
//! compose project (`$RAFTLIMIT_IT_PROJECT`, else `raftlimit-it-<pid>`) on
//! free host ports and its own subnet, so a developer's `docker compose up`
//! cluster is never touched, and tears the project down (containers,
//! network, volumes) even when it fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use raftlimit_jepsen::client::{Client, Resp};
use raftlimit_jepsen::cluster::docker::{docker_unavailable, DockerCluster, DockerOptions};
use raftlimit_jepsen::cluster::{Cluster, Endpoint, Partition};

/// Bounds each step that waits for the cluster to recover (elections,
/// forwarding, health checks), not a performance expectation.
const RECOVERY: Duration = Duration::from_secs(40);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Takes the project down when the test ends, however it ends.
struct Teardown<'a>(&'a DockerCluster);

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.down() {
            eprintln!("tearing down {}: {e}", self.0.options().project);
        }
    }
}

/// One command on a fresh connection: `Err` for a transport failure or timeout.
async fn call(endpoint: &Endpoint, argv: &[&str]) -> Result<Resp, String> {
    let timeout = Duration::from_secs(10);
    let mut client = Client::connect(endpoint, timeout)
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(timeout, client.call(argv))
        .await
        .map_err(|_| format!("{argv:?} timed out"))?
        .map_err(|e| e.to_string())
}

/// Repeats `argv` until it gets `want`, or panics after [`RECOVERY`] with the last answer.
async fn until(endpoint: &Endpoint, argv: &[&str], want: &Resp) {
    let deadline = Instant::now() + RECOVERY;
    loop {
        let got = call(endpoint, argv).await;
        if got.as_ref() == Ok(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {} never answered {argv:?} with {want:?}; last: {got:?}",
            endpoint.node
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn bulk(v: &str) -> Resp {
    Resp::Bulk(Some(v.as_bytes().to_vec()))
}

/// The node that answers ROLE with `master`, asking every node until one does.
async fn leader(endpoints: &[Endpoint]) -> u64 {
    let deadline = Instant::now() + RECOVERY;
    loop {
        for e in endpoints {
            if let Ok(Resp::Array(Some(role))) = call(e, &["ROLE"]).await {
                if role.first().and_then(Resp::as_text).as_deref() == Some("master") {
                    return e.node;
                }
            }
        }
        assert!(Instant::now() < deadline, "no node claims to lead");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether node `from` can open a TCP connection to node `to`'s Raft port
/// (7100, config/docker): a connect attempt from inside `from`'s network
/// namespace with the host's bash, since the image has no tools. A dropped
/// SYN is never answered, so the attempt is bounded by `timeout`.
fn reaches(cluster: &DockerCluster, from: u64, to: u64) -> bool {
    let id = cluster.container(from).unwrap();
    let out = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{.State.Pid}}", &id])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let ip = cluster.options().node_ip(to);
    std::process::Command::new("nsenter")
        .args(["-t", &pid, "-n", "timeout", "2", "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/{ip}/7100"))
        .status()
        .unwrap()
        .success()
}

/// Node configs for the test's own subnet: `config/docker` with its
/// addresses replaced.
fn configs_for(net: [u8; 3], dir: &Path) {
    let [a, b, c] = net;
    for i in 1..=3 {
        let name = format!("node{i}.toml");
        let text = std::fs::read_to_string(repo_root().join("config/docker").join(&name)).unwrap();
        assert!(
            text.contains("172.28.0.1"),
            "config/docker/{name} names its nodes' addresses"
        );
        std::fs::write(
            dir.join(name),
            text.replace("172.28.0.", &format!("{a}.{b}.{c}.")),
        )
        .unwrap();
    }
}

#[test]
#[ignore = "needs docker, the image and the deploy files: run `make test-docker`"]
fn compose_cluster_survives_kill_pause_and_partitions() {
    if let Some(why) = docker_unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A subnet of its own, so a cluster already up keeps 172.28.0.0/24.
    let net = [172, 28, 200 + (std::process::id() % 50) as u8];
    configs_for(net, dir.path());
    let mut options = DockerOptions::new(repo_root());
    options.project = std::env::var("RAFTLIMIT_IT_PROJECT")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("raftlimit-it-{}", std::process::id()));
    options.resp_ports = (0..3).map(|_| free_port()).collect();
    options.http_ports = (0..3).map(|_| free_port()).collect();
    options.net = net;
    options.config_dir = Some(dir.path().to_owned());
    let project = options.project.clone();

    let cluster = DockerCluster::attach(options).unwrap();
    let teardown = Teardown(&cluster);
    cluster.up().unwrap();
    let endpoints = cluster.endpoints();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Over TLS with a client certificate and AUTH: write on one node, read on another.
        until(&endpoints[0], &["SET", "k", "v1"], &ok()).await;
        assert_eq!(call(&endpoints[2], &["GET", "k"]).await, Ok(bulk("v1")));

        // SIGKILL the leader's container: the others elect a new leader and serve writes.
        let old = leader(&endpoints).await;
        cluster.kill(old).unwrap();
        let others: Vec<&Endpoint> = endpoints.iter().filter(|e| e.node != old).collect();
        until(others[0], &["SET", "k", "v2"], &ok()).await;
        assert_eq!(call(others[1], &["GET", "k"]).await, Ok(bulk("v2")));
        cluster.start(old).unwrap();
        cluster.wait_healthy(&[old], RECOVERY).unwrap();
        until(&endpoints[(old - 1) as usize], &["GET", "k"], &bulk("v2")).await;

        // A paused follower does not stop the majority.
        let lead = leader(&endpoints).await;
        let follower = endpoints.iter().find(|e| e.node != lead).unwrap().node;
        cluster.pause(follower).unwrap();
        let up = endpoints.iter().find(|e| e.node != follower).unwrap();
        until(up, &["SET", "k", "v3"], &ok()).await;
        cluster.resume(follower).unwrap();

        // Isolate the leader: the majority elects another and serves writes;
        // the isolated node can commit nothing.
        let lead = leader(&endpoints).await;
        let majority: Vec<u64> = (1..=3).filter(|n| *n != lead).collect();
        cluster
            .partition(&Partition::from_groups(&[vec![lead], majority.clone()]).unwrap())
            .unwrap();
        let isolated = &endpoints[(lead - 1) as usize];
        let inside = &endpoints[(majority[0] - 1) as usize];
        until(inside, &["SET", "k", "v4"], &ok()).await;
        let refused = call(isolated, &["SET", "k", "lost"]).await;
        assert_ne!(refused, Ok(ok()), "an isolated node acknowledged a write");
        cluster.heal().unwrap();
        until(isolated, &["SET", "k", "v5"], &ok()).await;
        for e in &endpoints {
            until(e, &["GET", "k"], &bulk("v5")).await;
        }

        // A bridge, which no grouping of the nodes expresses: a follower
        // reaches both others, the leader and the other follower cannot
        // reach each other. The bridge with either end is a majority, so a
        // write through the bridge commits (whoever leads by then: the cut
        // follower keeps calling elections); after the heal, when that
        // follower's higher term forces another election, every node
        // converges.
        let lead = leader(&endpoints).await;
        let bridge = (1..=3).find(|n| *n != lead).unwrap();
        let other = (1..=3).find(|n| *n != lead && *n != bridge).unwrap();
        let cut = Partition::bridge(bridge, &[1, 2, 3]).unwrap();
        assert_eq!(
            cut.links().collect::<Vec<_>>(),
            vec![(lead.min(other), lead.max(other))]
        );
        cluster.partition(&cut).unwrap();
        assert!(
            !reaches(&cluster, lead, other),
            "{lead} reaches {other} across the cut"
        );
        assert!(
            !reaches(&cluster, other, lead),
            "{other} reaches {lead} across the cut"
        );
        for end in [lead, other] {
            assert!(
                reaches(&cluster, bridge, end),
                "the bridge {bridge} cannot reach {end}"
            );
            assert!(
                reaches(&cluster, end, bridge),
                "{end} cannot reach the bridge {bridge}"
            );
        }
        until(
            &endpoints[(bridge - 1) as usize],
            &["SET", "k", "v6"],
            &ok(),
        )
        .await;
        cluster.heal().unwrap();
        assert!(
            reaches(&cluster, lead, other),
            "{lead} cannot reach {other} after the heal"
        );
        until(&endpoints[(other - 1) as usize], &["SET", "k", "v7"], &ok()).await;
        for e in &endpoints {
            until(e, &["GET", "k"], &bulk("v7")).await;
        }
    });

    let logs = dir.path().join("logs");
    cluster.collect_logs(&logs).unwrap();
    for i in 1..=3 {
        let log = std::fs::read_to_string(logs.join(format!("node{i}.log"))).unwrap();
        assert!(
            log.contains("storage is encrypted at rest"),
            "node{i}: {log}"
        );
    }

    drop(teardown);
    let leftovers = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ])
        .output()
        .unwrap();
    assert!(leftovers.stdout.is_empty(), "containers left behind");
    let volumes = std::process::Command::new("docker")
        .args([
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ])
        .output()
        .unwrap();
    assert!(volumes.stdout.is_empty(), "volumes left behind");
}
