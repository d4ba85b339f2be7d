//! ROLE, SENTINEL, WAIT and the MOVED redirect mode.

use std::time::Duration;

use raftlimit_testkit::{ClusterOptions, TestCluster};
use redis::{cmd, Value};

use super::shared_cluster;

#[test]
fn role_and_sentinel_name_the_leader() {
    let cluster = shared_cluster();
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).unwrap();
    let leader_port = cluster.resp_addr(leader).port();
    for node in 0..3 {
        let mut c = cluster.client(node).unwrap();
        let role: Value = cmd("ROLE").query(&mut c).unwrap();
        let Value::Array(parts) = role else {
            panic!("array")
        };
        let expected: &[u8] = if node == leader { b"master" } else { b"slave" };
        assert_eq!(
            parts[0],
            Value::BulkString(expected.to_vec()),
            "node {node}"
        );
        let (ip, port): (String, u16) = cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg("raftlimit-test")
            .query(&mut c)
            .unwrap();
        assert_eq!((ip.as_str(), port), ("127.0.0.1", leader_port));
        let masters: Vec<Vec<String>> = cmd("SENTINEL").arg("masters").query(&mut c).unwrap();
        assert_eq!(masters.len(), 1);
        assert!(masters[0]
            .windows(2)
            .any(|w| w[0] == "flags" && w[1] == "master"));
        let replicas: Vec<Vec<String>> = cmd("SENTINEL")
            .arg("replicas")
            .arg("raftlimit-test")
            .query(&mut c)
            .unwrap();
        assert_eq!(replicas.len(), 2);
        let sentinels: Vec<Vec<String>> = cmd("SENTINEL")
            .arg("sentinels")
            .arg("raftlimit-test")
            .query(&mut c)
            .unwrap();
        assert_eq!(sentinels.len(), 2);
        let unknown: Value = cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg("other")
            .query(&mut c)
            .unwrap();
        assert_eq!(unknown, Value::Nil);
    }
    let mut c = cluster.client(leader).unwrap();
    let _: () = cmd("SET").arg("disc:wait").arg(1).query(&mut c).unwrap();
    let replicas: i64 = cmd("WAIT").arg(2).arg(100).query(&mut c).unwrap();
    assert!(
        replicas >= 1,
        "a committed write is on a majority: {replicas}"
    );
    let errors = [
        ("0", "-1", "timeout is negative"),
        ("0", "1.5", "timeout is not an integer or out of range"),
        ("x", "0", "value is not an integer or out of range"),
    ];
    for (numreplicas, timeout, text) in errors {
        let err = cmd("WAIT")
            .arg(numreplicas)
            .arg(timeout)
            .query::<i64>(&mut c)
            .unwrap_err();
        assert!(err.to_string().contains(text), "{err}");
    }
    // A negative replica count is accepted, as in Redis.
    let replicas: i64 = cmd("WAIT").arg(-1).arg(0).query(&mut c).unwrap();
    assert!(replicas >= 1);
}

#[test]
fn redirect_mode_answers_moved() {
    let options = ClusterOptions {
        extra_toml: "[cluster]\nfollower_mode = \"redirect\"\n".into(),
        ..ClusterOptions::default()
    };
    let cluster = TestCluster::start(options).unwrap();
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).unwrap();
    let follower = cluster.others(leader)[0];
    let mut c = cluster.client(follower).unwrap();
    let err = cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(err.code(), Some("MOVED"), "{err}");
    let leader_addr = cluster.resp_addr(leader);
    assert!(err.to_string().contains(&leader_addr.to_string()), "{err}");
    let mut l = cluster.client(leader).unwrap();
    let _: () = cmd("SET").arg("k").arg("v").query(&mut l).unwrap();
}
