//! Connection-level commands, RESP3 and pipelining.

use redis::{cmd, Value};

use super::shared_cluster;

#[test]
fn ping_echo_select_time() {
    let mut c = shared_cluster().client(1).unwrap();
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let echo: String = cmd("ECHO").arg("hi").query(&mut c).unwrap();
    assert_eq!(echo, "hi");
    let _: () = cmd("SELECT").arg(0).query(&mut c).unwrap();
    let err = cmd("SELECT").arg(1).query::<()>(&mut c).unwrap_err();
    assert_eq!(err.detail(), Some("DB index is out of range"));
    let (secs, micros): (u64, u64) = cmd("TIME").query(&mut c).unwrap();
    assert!(secs > 1_600_000_000 && micros < 1_000_000);
}

#[test]
fn client_commands() {
    let mut c = shared_cluster().client(0).unwrap();
    let id: i64 = cmd("CLIENT").arg("ID").query(&mut c).unwrap();
    assert!(id > 0);
    let _: () = cmd("CLIENT")
        .arg("SETNAME")
        .arg("tester")
        .query(&mut c)
        .unwrap();
    let name: String = cmd("CLIENT").arg("GETNAME").query(&mut c).unwrap();
    assert_eq!(name, "tester");
    let _: () = cmd("CLIENT")
        .arg("SETINFO")
        .arg("LIB-NAME")
        .arg("mylib")
        .query(&mut c)
        .unwrap();
    let info: String = cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(
        info.contains("name=tester") && info.contains("lib-name=mylib"),
        "{info}"
    );
    let list: String = cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    assert!(list.contains(&format!("id={id} ")), "{list}");
    let err = cmd("CLIENT")
        .arg("SETNAME")
        .arg("has space")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(err.detail().unwrap().contains("cannot contain spaces"));
}

#[test]
fn command_info_and_docs() {
    let mut c = shared_cluster().client(2).unwrap();
    let count: i64 = cmd("COMMAND").arg("COUNT").query(&mut c).unwrap();
    assert!(count > 40);
    let info: Value = cmd("COMMAND")
        .arg("INFO")
        .arg("get")
        .arg("nosuch")
        .query(&mut c)
        .unwrap();
    let Value::Array(items) = info else {
        panic!("array")
    };
    assert_eq!(items.len(), 2);
    assert_eq!(items[1], Value::Nil);
    let Value::Array(get) = &items[0] else {
        panic!("get info")
    };
    assert_eq!(get[0], Value::BulkString(b"get".to_vec()));
    assert_eq!(get[1], Value::Int(2));
    let docs: Value = cmd("COMMAND").arg("DOCS").arg("set").query(&mut c).unwrap();
    assert!(matches!(docs, Value::Array(ref a) if a.len() == 2) || matches!(docs, Value::Map(_)));
}

#[test]
fn info_and_config() {
    let cluster = shared_cluster();
    let leader = cluster
        .wait_for_leader(std::time::Duration::from_secs(5))
        .unwrap();
    for node in 0..3 {
        let mut c = cluster.client(node).unwrap();
        let info: String = cmd("INFO").arg("replication").query(&mut c).unwrap();
        let role = if node == leader {
            "role:master"
        } else {
            "role:slave"
        };
        assert!(info.contains(role), "node {node}: {info}");
        for field in [
            "raft_node_id:",
            "raft_leader_id:",
            "raft_term:",
            "raft_commit_index:",
            "raft_applied_index:",
        ] {
            assert!(info.contains(field), "{field} missing");
        }
        let all: String = cmd("INFO").query(&mut c).unwrap();
        for section in [
            "# Server",
            "# Clients",
            "# Memory",
            "# Stats",
            "# Replication",
            "# Keyspace",
        ] {
            assert!(all.contains(section), "{section} missing");
        }
    }
    let mut c = cluster.client(0).unwrap();
    let cfg: Vec<String> = cmd("CONFIG").arg("GET").arg("port").query(&mut c).unwrap();
    assert_eq!(
        cfg,
        vec!["port".to_string(), cluster.resp_addr(0).port().to_string()]
    );
    let cfg: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("append*")
        .query(&mut c)
        .unwrap();
    assert_eq!(cfg, vec!["appendfsync", "always", "appendonly", "yes"]);
}

#[test]
fn hello_switches_to_resp3() {
    let mut c = shared_cluster().client(1).unwrap();
    let hello: Value = cmd("HELLO").arg(3).query(&mut c).unwrap();
    let Value::Map(fields) = hello else {
        panic!("RESP3 map, got {hello:?}")
    };
    assert!(fields
        .iter()
        .any(|(k, v)| *k == Value::BulkString(b"proto".to_vec()) && *v == Value::Int(3)));
    let missing: Value = cmd("GET").arg("resp3:none").query(&mut c).unwrap();
    assert_eq!(missing, Value::Nil);
    let err = cmd("HELLO").arg(4).query::<()>(&mut c).unwrap_err();
    assert_eq!(err.code(), Some("NOPROTO"));
    let reset: String = cmd("RESET").query(&mut c).unwrap();
    assert_eq!(reset, "RESET");
}

#[test]
fn pipelines_keep_order() {
    let cluster = shared_cluster();
    for node in 0..3 {
        let mut c = cluster.client(node).unwrap();
        let key = format!("pipe:{node}");
        let mut pipe = redis::pipe();
        for i in 0..200 {
            pipe.cmd("INCR").arg(&key);
            if i % 50 == 0 {
                pipe.cmd("GET").arg(&key);
            }
        }
        let replies: Vec<i64> = pipe.query(&mut c).unwrap();
        let mut expected = Vec::new();
        for i in 0..200i64 {
            expected.push(i + 1);
            if i % 50 == 0 {
                expected.push(i + 1);
            }
        }
        assert_eq!(replies, expected, "node {node}");
    }
}
