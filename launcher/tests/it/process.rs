//! `ProcessCluster`: secure clusters, restarts on reserved ports, pauses,
//! and stopping by PID.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use raftlimit_launcher::{ClusterSpec, TlsOptions};
use redis::{Commands, TlsCertificates};

use super::start;

fn alive(pid: u32) -> bool {
    // A reaped process has no /proc entry (the launcher waits for its children).
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_cluster_with_tls_auth_and_encryption_serves_through_every_node() {
    let spec = ClusterSpec::new(3)
        .tls(TlsOptions::default())
        .requirepass("launcher-secret")
        .user("app", "on >app-secret ~* +@all")
        .encryption(true);
    let cluster = start(&spec);
    let leader = cluster.wait_for_leader(Duration::from_secs(15)).unwrap();
    let followers = cluster.others(leader);
    assert_eq!(followers.len(), 2);
    let tls = cluster.tls_files().unwrap().clone();
    let certs = || TlsCertificates {
        client_tls: Some(redis::ClientTlsConfig {
            client_cert: std::fs::read(tls.client_cert()).unwrap(),
            client_key: std::fs::read(tls.client_key()).unwrap(),
        }),
        root_cert: Some(std::fs::read(tls.ca()).unwrap()),
    };
    let connect = |node: u64, user: &str, pass: &str| {
        let view = cluster.node(node).unwrap();
        assert!(view.resp.is_none(), "TLS only: no plaintext port");
        assert_eq!(Some(view.addr), view.tls);
        let url = format!("rediss://{user}:{pass}@{}/", view.addr);
        redis::Client::build_with_tls(url, certs())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap()
    };
    let mut via_follower = connect(followers[0], "app", "app-secret");
    let _: () = via_follower.set("launcher:k", "v").unwrap();
    let mut via_leader = connect(leader, "default", "launcher-secret");
    let v: String = via_leader.get("launcher:k").unwrap();
    assert_eq!(v, "v");
    // A wrong password is refused.
    let url = format!(
        "rediss://default:wrong@{}/",
        cluster.node(leader).unwrap().addr
    );
    assert!(redis::Client::build_with_tls(url, certs())
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(5))
        .is_err());

    let nodes = cluster.nodes();
    let pids: Vec<u32> = nodes.iter().map(|n| n.pid.unwrap()).collect();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&p| alive(p)));
    for node in &nodes {
        // The config holds the passwords: owner-only.
        let mode = std::fs::metadata(&node.config)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{}: {mode:o}", node.config.display());
        let text = std::fs::read_to_string(&node.config).unwrap();
        assert!(text.contains("reuse_port = true"), "{text}");
        assert!(node.data_dir.join("raft").is_dir());
    }
    cluster.shutdown().unwrap();
    assert!(pids.iter().all(|&p| !alive(p)), "stopped by PID");
    assert!(cluster.nodes().iter().all(|n| n.pid.is_none()));
}

#[test]
fn a_killed_node_restarts_on_its_reserved_ports() {
    let cluster = start(&ClusterSpec::new(3));
    let leader = cluster.wait_for_leader(Duration::from_secs(15)).unwrap();
    let view = cluster.node(leader).unwrap();
    let mut c = redis::Client::open(format!("redis://{}/", view.addr))
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = c.set("restart:k", "1").unwrap();
    drop(c);
    cluster.kill(leader).unwrap();
    assert!(!cluster.is_running(leader));
    // While the node is down its ports are still the cluster's.
    for addr in [view.resp.unwrap(), view.http, view.raft] {
        assert!(std::net::TcpListener::bind(addr).is_err(), "{addr} taken");
    }
    let survivor = cluster.wait_for_leader(Duration::from_secs(15)).unwrap();
    assert_ne!(survivor, leader);
    cluster.start_node(leader).unwrap();
    cluster.wait_ready(Duration::from_secs(30)).unwrap();
    assert_eq!(cluster.node(leader).unwrap().addr, view.addr);
    let mut c = redis::Client::open(format!("redis://{}/", view.addr))
        .unwrap()
        .get_connection()
        .unwrap();
    let v: String = c.get("restart:k").unwrap();
    assert_eq!(v, "1");
    assert!(cluster.log_tail(leader, 200).contains("serving"));
}

#[test]
fn a_paused_node_is_alive_but_silent_until_resumed() {
    let cluster = start(&ClusterSpec::new(3));
    let leader = cluster.wait_for_leader(Duration::from_secs(15)).unwrap();
    let follower = cluster.others(leader)[0];
    cluster.pause(follower).unwrap();
    assert!(cluster.is_running(follower));
    // A frozen node answers nothing, so no leader is agreed by everyone.
    assert!(cluster.current_leader().is_none());
    cluster.resume(follower).unwrap();
    assert!(cluster.wait_for_leader(Duration::from_secs(15)).is_ok());
    let logs = tempfile::tempdir().unwrap();
    cluster.collect_logs(logs.path()).unwrap();
    for id in 1..=3 {
        assert!(logs.path().join(format!("node{id}.log")).is_file());
    }
}
