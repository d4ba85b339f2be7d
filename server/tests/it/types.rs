//! Lists, hashes, sets and sorted sets through followers and the leader, in
//! RESP2 and RESP3, with WRONGTYPE across types, identical state on every
//! replica, and snapshot install and full-restart round trips.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use raftlimit_testkit::{ClusterOptions, TestCluster};
use redis::{cmd, Value};

use super::shared_cluster;

fn leader_and_follower(cluster: &TestCluster) -> (usize, usize) {
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    (leader, cluster.others(leader)[0])
}

/// Waits until every running node has applied what the leader committed.
fn settle(cluster: &TestCluster) {
    let leader = cluster.wait_for_leader(Duration::from_secs(15)).unwrap();
    let target = cluster.server(leader).unwrap().node().status().commit_index;
    cluster
        .wait_applied(target, Duration::from_secs(15))
        .unwrap();
}

/// Asserts that every running node holds the same entry under each key.
fn assert_replicas_agree(cluster: &TestCluster, keys: &[&str]) {
    settle(cluster);
    let nodes: Vec<usize> = (0..cluster.len())
        .filter(|&n| cluster.is_running(n))
        .collect();
    let first = cluster.server(nodes[0]).unwrap().node().state();
    let first = first.read();
    for &node in &nodes[1..] {
        let other = cluster.server(node).unwrap().node().state();
        let other = other.read();
        for key in keys {
            let a = first.data.keyspace.get(key.as_bytes(), 0);
            let b = other.data.keyspace.get(key.as_bytes(), 0);
            assert_eq!(
                a, b,
                "{key} differs between node {} and node {node}",
                nodes[0]
            );
        }
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

#[test]
fn lists_through_follower_and_leader() {
    let cluster = shared_cluster();
    let (leader, follower) = leader_and_follower(cluster);
    let mut f = cluster.client(follower).unwrap();
    let mut l = cluster.client(leader).unwrap();
    let n: i64 = cmd("RPUSH")
        .arg("tl:list")
        .arg(&["a", "b", "c"])
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 3);
    let n: i64 = cmd("LPUSH")
        .arg("tl:list")
        .arg(&["x", "y"])
        .query(&mut l)
        .unwrap();
    assert_eq!(n, 5);
    let all: Vec<String> = cmd("LRANGE")
        .arg("tl:list")
        .arg(0)
        .arg(-1)
        .query(&mut f)
        .unwrap();
    assert_eq!(all, strings(&["y", "x", "a", "b", "c"]));
    let popped: Vec<String> = cmd("RPOP").arg("tl:list").arg(2).query(&mut f).unwrap();
    assert_eq!(popped, strings(&["c", "b"]));
    let one: String = cmd("LPOP").arg("tl:list").query(&mut l).unwrap();
    assert_eq!(one, "y");
    let _: () = cmd("LSET")
        .arg("tl:list")
        .arg(-1)
        .arg("A")
        .query(&mut f)
        .unwrap();
    let n: i64 = cmd("LINSERT")
        .arg("tl:list")
        .arg("BEFORE")
        .arg("A")
        .arg("m")
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 3);
    let v: String = cmd("LINDEX").arg("tl:list").arg(1).query(&mut l).unwrap();
    assert_eq!(v, "m");
    let err = cmd("LSET")
        .arg("tl:list")
        .arg(10)
        .arg("z")
        .query::<()>(&mut f)
        .unwrap_err();
    assert_eq!(err.detail(), Some("index out of range"));
    let err = cmd("LSET")
        .arg("tl:none")
        .arg(0)
        .arg("z")
        .query::<()>(&mut f)
        .unwrap_err();
    assert_eq!(err.detail(), Some("no such key"));
    let n: i64 = cmd("LREM")
        .arg("tl:list")
        .arg(0)
        .arg("m")
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 1);
    let _: () = cmd("LTRIM")
        .arg("tl:list")
        .arg(5)
        .arg(10)
        .query(&mut f)
        .unwrap();
    let exists: i64 = cmd("EXISTS").arg("tl:list").query(&mut l).unwrap();
    assert_eq!(exists, 0, "a list trimmed to nothing is deleted");
    let none: Value = cmd("LPOP").arg("tl:list").arg(3).query(&mut f).unwrap();
    assert_eq!(none, Value::Nil);
    let n: i64 = cmd("LPUSHX").arg("tl:list").arg("a").query(&mut f).unwrap();
    assert_eq!(n, 0);
    assert_replicas_agree(cluster, &["tl:list"]);
}

#[test]
fn hashes_through_follower_and_leader() {
    let cluster = shared_cluster();
    let (leader, follower) = leader_and_follower(cluster);
    let mut f = cluster.client(follower).unwrap();
    let mut l = cluster.client(leader).unwrap();
    let n: i64 = cmd("HSET")
        .arg("th:h")
        .arg(&["b", "2", "a", "1"])
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 2);
    let _: () = cmd("HMSET")
        .arg("th:h")
        .arg(&["c", "3"])
        .query(&mut l)
        .unwrap();
    let all: Vec<(String, String)> = cmd("HGETALL").arg("th:h").query(&mut f).unwrap();
    assert_eq!(
        all,
        vec![
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("c".into(), "3".into())
        ],
        "fields in byte order"
    );
    let n: i64 = cmd("HINCRBY")
        .arg("th:h")
        .arg("a")
        .arg(41)
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 42);
    let v: String = cmd("HINCRBYFLOAT")
        .arg("th:h")
        .arg("f")
        .arg("10.5")
        .query(&mut f)
        .unwrap();
    assert_eq!(v, "10.5");
    let v: String = cmd("HINCRBYFLOAT")
        .arg("th:h")
        .arg("f")
        .arg("0.1")
        .query(&mut l)
        .unwrap();
    assert_eq!(v, "10.6");
    let err = cmd("HINCRBY")
        .arg("th:h")
        .arg("f")
        .arg(1)
        .query::<()>(&mut f)
        .unwrap_err();
    assert_eq!(err.detail(), Some("hash value is not an integer"));
    let got: Vec<Option<String>> = cmd("HMGET")
        .arg("th:h")
        .arg(&["a", "zz", "c"])
        .query(&mut l)
        .unwrap();
    assert_eq!(got, vec![Some("42".into()), None, Some("3".into())]);
    let n: i64 = cmd("HSETNX")
        .arg("th:h")
        .arg("a")
        .arg("x")
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = cmd("HSTRLEN").arg("th:h").arg("f").query(&mut f).unwrap();
    assert_eq!(n, 4);
    let keys: Vec<String> = cmd("HKEYS").arg("th:h").query(&mut f).unwrap();
    assert_eq!(keys, strings(&["a", "b", "c", "f"]));
    let (cursor, items): (u64, Vec<String>) = cmd("HSCAN")
        .arg("th:h")
        .arg(0)
        .arg("COUNT")
        .arg(100)
        .query(&mut f)
        .unwrap();
    assert_eq!(cursor, 0);
    assert_eq!(items.len(), 8);
    let n: i64 = cmd("HDEL")
        .arg("th:h")
        .arg(&["a", "b", "c", "f"])
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 4);
    let t: String = cmd("TYPE").arg("th:h").query(&mut l).unwrap();
    assert_eq!(t, "none", "an emptied hash is deleted");
    let err = cmd("HSET")
        .arg("th:h")
        .arg("a")
        .query::<()>(&mut f)
        .unwrap_err();
    assert_eq!(
        err.detail(),
        Some("wrong number of arguments for 'hset' command")
    );
}

#[test]
fn sets_pop_identically_on_every_replica() {
    let cluster = shared_cluster();
    let (leader, follower) = leader_and_follower(cluster);
    let mut f = cluster.client(follower).unwrap();
    let mut l = cluster.client(leader).unwrap();
    let members: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    let n: i64 = cmd("SADD").arg("ts:s").arg(&members).query(&mut f).unwrap();
    assert_eq!(n, 50);
    let got: BTreeSet<String> = cmd("SMEMBERS").arg("ts:s").query(&mut l).unwrap();
    assert_eq!(got.len(), 50);
    let flags: Vec<i64> = cmd("SMISMEMBER")
        .arg("ts:s")
        .arg(&["m1", "nope"])
        .query(&mut f)
        .unwrap();
    assert_eq!(flags, vec![1, 0]);
    let one: String = cmd("SPOP").arg("ts:s").query(&mut f).unwrap();
    let some: Vec<String> = cmd("SPOP").arg("ts:s").arg(5).query(&mut l).unwrap();
    assert_eq!(some.len(), 5);
    assert!(!some.contains(&one));
    let n: i64 = cmd("SCARD").arg("ts:s").query(&mut f).unwrap();
    assert_eq!(n, 44);
    let is: i64 = cmd("SISMEMBER")
        .arg("ts:s")
        .arg(&one)
        .query(&mut f)
        .unwrap();
    assert_eq!(is, 0);
    assert_replicas_agree(cluster, &["ts:s"]);
    let rest: Vec<String> = cmd("SPOP").arg("ts:s").arg(1000).query(&mut f).unwrap();
    assert_eq!(rest.len(), 44);
    let t: String = cmd("TYPE").arg("ts:s").query(&mut l).unwrap();
    assert_eq!(t, "none");
    let empty: Vec<String> = cmd("SPOP").arg("ts:s").arg(3).query(&mut f).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn sorted_sets_in_resp2() {
    let cluster = shared_cluster();
    let (leader, follower) = leader_and_follower(cluster);
    let mut f = cluster.client(follower).unwrap();
    let mut l = cluster.client(leader).unwrap();
    let n: i64 = cmd("ZADD")
        .arg("tz:z")
        .arg(&["1", "a", "1.5", "b", "2", "c", "+inf", "d"])
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 4);
    let with: Vec<String> = cmd("ZRANGE")
        .arg("tz:z")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut l)
        .unwrap();
    assert_eq!(with, strings(&["a", "1", "b", "1.5", "c", "2", "d", "inf"]));
    let score: String = cmd("ZSCORE").arg("tz:z").arg("b").query(&mut f).unwrap();
    assert_eq!(score, "1.5");
    let score: String = cmd("ZINCRBY")
        .arg("tz:z")
        .arg("0.1")
        .arg("a")
        .query(&mut f)
        .unwrap();
    assert_eq!(score, "1.1");
    let n: i64 = cmd("ZADD")
        .arg("tz:z")
        .arg(&["GT", "CH", "0", "a", "3", "b"])
        .query(&mut l)
        .unwrap();
    assert_eq!(n, 1);
    let by_score: Vec<String> = cmd("ZRANGEBYSCORE")
        .arg("tz:z")
        .arg("(1.1")
        .arg("+inf")
        .arg("LIMIT")
        .arg(0)
        .arg(2)
        .query(&mut f)
        .unwrap();
    assert_eq!(by_score, strings(&["c", "b"]));
    let rev: Vec<String> = cmd("ZREVRANGEBYSCORE")
        .arg("tz:z")
        .arg("+inf")
        .arg("-inf")
        .query(&mut f)
        .unwrap();
    assert_eq!(rev, strings(&["d", "b", "c", "a"]));
    let rank: i64 = cmd("ZRANK").arg("tz:z").arg("b").query(&mut f).unwrap();
    assert_eq!(rank, 2);
    let rank: i64 = cmd("ZREVRANK").arg("tz:z").arg("b").query(&mut f).unwrap();
    assert_eq!(rank, 1);
    let n: i64 = cmd("ZCOUNT")
        .arg("tz:z")
        .arg("(1.1")
        .arg("3")
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 2);
    let popped: Vec<String> = cmd("ZPOPMIN").arg("tz:z").query(&mut f).unwrap();
    assert_eq!(popped, strings(&["a", "1.1"]));
    let popped: Vec<String> = cmd("ZPOPMAX").arg("tz:z").arg(2).query(&mut l).unwrap();
    assert_eq!(popped, strings(&["d", "inf", "b", "3"]));
    let err = cmd("ZADD")
        .arg("tz:z")
        .arg(&["NX", "XX", "1", "a"])
        .query::<()>(&mut f)
        .unwrap_err();
    assert_eq!(
        err.detail(),
        Some("XX and NX options at the same time are not compatible")
    );
    let err = cmd("ZADD")
        .arg("tz:z")
        .arg(&["nan", "a"])
        .query::<()>(&mut f)
        .unwrap_err();
    assert_eq!(err.detail(), Some("value is not a valid float"));
    let err = cmd("ZRANGEBYSCORE")
        .arg("tz:z")
        .arg("x")
        .arg("1")
        .query::<()>(&mut f)
        .unwrap_err();
    assert_eq!(err.detail(), Some("min or max is not a float"));
    let _: i64 = cmd("ZADD")
        .arg("tz:lex")
        .arg(&["0", "a", "0", "b", "0", "c"])
        .query(&mut f)
        .unwrap();
    let lex: Vec<String> = cmd("ZRANGE")
        .arg("tz:lex")
        .arg("[b")
        .arg("+")
        .arg("BYLEX")
        .query(&mut f)
        .unwrap();
    assert_eq!(lex, strings(&["b", "c"]));
    let n: i64 = cmd("ZREMRANGEBYRANK")
        .arg("tz:lex")
        .arg(0)
        .arg(-1)
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 3);
    let n: i64 = cmd("ZREMRANGEBYSCORE")
        .arg("tz:z")
        .arg("-inf")
        .arg("+inf")
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 1);
    let exists: i64 = cmd("EXISTS")
        .arg("tz:z")
        .arg("tz:lex")
        .query(&mut l)
        .unwrap();
    assert_eq!(exists, 0, "emptied sorted sets are deleted");
}

#[test]
fn sorted_sets_and_hashes_in_resp3() {
    let cluster = shared_cluster();
    let (_, follower) = leader_and_follower(cluster);
    let mut c = cluster.client(follower).unwrap();
    let _: Value = cmd("HELLO").arg(3).query(&mut c).unwrap();
    let _: i64 = cmd("ZADD")
        .arg("t3:z")
        .arg(&["1", "a", "2.5", "b"])
        .query(&mut c)
        .unwrap();
    let score: Value = cmd("ZSCORE").arg("t3:z").arg("b").query(&mut c).unwrap();
    assert_eq!(score, Value::Double(2.5));
    let range: Value = cmd("ZRANGE")
        .arg("t3:z")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut c)
        .unwrap();
    let pair = |m: &str, s: f64| {
        Value::Array(vec![
            Value::BulkString(m.as_bytes().to_vec()),
            Value::Double(s),
        ])
    };
    assert_eq!(range, Value::Array(vec![pair("a", 1.0), pair("b", 2.5)]));
    let popped: Value = cmd("ZPOPMIN").arg("t3:z").query(&mut c).unwrap();
    assert_eq!(
        popped,
        Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::Double(1.0)]),
        "without a count ZPOPMIN stays flat"
    );
    let _: i64 = cmd("HSET")
        .arg("t3:h")
        .arg(&["f", "v"])
        .query(&mut c)
        .unwrap();
    let all: Value = cmd("HGETALL").arg("t3:h").query(&mut c).unwrap();
    assert_eq!(
        all,
        Value::Map(vec![(
            Value::BulkString(b"f".to_vec()),
            Value::BulkString(b"v".to_vec())
        )])
    );
    let _: i64 = cmd("SADD").arg("t3:s").arg("m").query(&mut c).unwrap();
    let members: Value = cmd("SMEMBERS").arg("t3:s").query(&mut c).unwrap();
    assert_eq!(members, Value::Set(vec![Value::BulkString(b"m".to_vec())]));
    let with_score: Value = cmd("ZRANK")
        .arg("t3:z")
        .arg("b")
        .arg("WITHSCORE")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        with_score,
        Value::Array(vec![Value::Int(0), Value::Double(2.5)])
    );
}

#[test]
fn wrong_types_and_generic_commands() {
    let cluster = shared_cluster();
    let (leader, follower) = leader_and_follower(cluster);
    let mut f = cluster.client(follower).unwrap();
    let mut l = cluster.client(leader).unwrap();
    let _: () = cmd("SET").arg("tw:str").arg("v").query(&mut f).unwrap();
    let _: i64 = cmd("RPUSH").arg("tw:list").arg("a").query(&mut f).unwrap();
    let _: i64 = cmd("HSET")
        .arg("tw:hash")
        .arg(&["f", "v"])
        .query(&mut f)
        .unwrap();
    let _: i64 = cmd("SADD").arg("tw:set").arg("m").query(&mut f).unwrap();
    let _: i64 = cmd("ZADD")
        .arg("tw:zset")
        .arg(&["1", "m"])
        .query(&mut f)
        .unwrap();
    let wrong: &[(&str, &[&str])] = &[
        ("GET", &["tw:list"]),
        ("INCR", &["tw:hash"]),
        ("APPEND", &["tw:set", "x"]),
        ("LPUSH", &["tw:str", "x"]),
        ("LRANGE", &["tw:zset", "0", "-1"]),
        ("HGET", &["tw:list", "f"]),
        ("SADD", &["tw:hash", "x"]),
        ("ZADD", &["tw:set", "1", "x"]),
        ("SMEMBERS", &["tw:zset"]),
        ("ZSCORE", &["tw:str", "m"]),
    ];
    for (name, args) in wrong {
        let err = cmd(name).arg(*args).query::<()>(&mut f).unwrap_err();
        assert_eq!(err.code(), Some("WRONGTYPE"), "{name} {args:?}");
        assert_eq!(
            err.detail(),
            Some("Operation against a key holding the wrong kind of value")
        );
    }
    let types: Vec<String> = ["tw:str", "tw:list", "tw:hash", "tw:set", "tw:zset"]
        .iter()
        .map(|k| cmd("TYPE").arg(k).query(&mut l).unwrap())
        .collect();
    assert_eq!(types, strings(&["string", "list", "hash", "set", "zset"]));
    let encodings: Vec<String> = ["tw:str", "tw:list", "tw:hash", "tw:set", "tw:zset"]
        .iter()
        .map(|k| cmd("OBJECT").arg("ENCODING").arg(k).query(&mut l).unwrap())
        .collect();
    assert_eq!(
        encodings,
        strings(&["raw", "deque", "btree", "btree", "btree"])
    );
    let usage: i64 = cmd("MEMORY")
        .arg("USAGE")
        .arg("tw:zset")
        .query(&mut f)
        .unwrap();
    assert!(usage > 0);
    let mut found = BTreeMap::new();
    for wanted in ["list", "hash", "set", "zset"] {
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("tw:*")
                .arg("TYPE")
                .arg(wanted)
                .query(&mut f)
                .unwrap();
            for key in keys {
                found.insert(key, wanted);
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    assert_eq!(found.get("tw:zset"), Some(&"zset"));
    assert_eq!(found.get("tw:list"), Some(&"list"));
    assert_eq!(found.len(), 4);
    let _: () = cmd("EXPIRE").arg("tw:zset").arg(100).query(&mut f).unwrap();
    let _: () = cmd("RENAME")
        .arg("tw:zset")
        .arg("tw:str")
        .query(&mut f)
        .unwrap();
    let t: String = cmd("TYPE").arg("tw:str").query(&mut l).unwrap();
    assert_eq!(t, "zset", "RENAME replaces a string with a sorted set");
    let ttl: i64 = cmd("TTL").arg("tw:str").query(&mut l).unwrap();
    assert_eq!(ttl, 100);
    let n: i64 = cmd("EXISTS")
        .arg(&["tw:list", "tw:hash", "tw:set", "tw:str", "tw:zset"])
        .query(&mut l)
        .unwrap();
    assert_eq!(n, 4);
    let n: i64 = cmd("DEL")
        .arg(&["tw:list", "tw:hash", "tw:set", "tw:str"])
        .query(&mut f)
        .unwrap();
    assert_eq!(n, 4);
    let info: Value = cmd("COMMAND")
        .arg("INFO")
        .arg("zadd")
        .query(&mut f)
        .unwrap();
    let Value::Array(entries) = info else {
        panic!("{info:?}")
    };
    let Value::Array(zadd) = &entries[0] else {
        panic!("{entries:?}")
    };
    assert_eq!(zadd[1], Value::Int(-4));
}

/// Writes one key of every type (some with a TTL) and returns their names.
fn write_every_type(c: &mut redis::Connection, prefix: &str) -> Vec<String> {
    let key = |name: &str| format!("{prefix}:{name}");
    let _: () = cmd("SET").arg(key("str")).arg("v").query(c).unwrap();
    let _: i64 = cmd("RPUSH")
        .arg(key("list"))
        .arg(&["a", "b", "c", "d"])
        .query(c)
        .unwrap();
    let _: String = cmd("LPOP").arg(key("list")).query(c).unwrap();
    let _: i64 = cmd("HSET")
        .arg(key("hash"))
        .arg(&["f1", "v1", "f2", "v2"])
        .query(c)
        .unwrap();
    let _: String = cmd("HINCRBYFLOAT")
        .arg(key("hash"))
        .arg("n")
        .arg("1.25")
        .query(c)
        .unwrap();
    let members: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let _: i64 = cmd("SADD").arg(key("set")).arg(&members).query(c).unwrap();
    let _: Vec<String> = cmd("SPOP").arg(key("set")).arg(3).query(c).unwrap();
    let _: i64 = cmd("ZADD")
        .arg(key("zset"))
        .arg(&["1", "a", "-0", "b", "2.5", "c", "-inf", "d", "inf", "e"])
        .query(c)
        .unwrap();
    let _: Vec<String> = cmd("ZPOPMAX").arg(key("zset")).query(c).unwrap();
    let _: i64 = cmd("ZADD")
        .arg(key("ttl"))
        .arg(&["1", "x"])
        .query(c)
        .unwrap();
    let _: i64 = cmd("EXPIRE").arg(key("ttl")).arg(1000).query(c).unwrap();
    ["str", "list", "hash", "set", "zset", "ttl"]
        .iter()
        .map(|n| key(n))
        .collect()
}

#[test]
fn every_type_survives_snapshot_install_and_full_restart() {
    let options = ClusterOptions {
        snapshot_every: 50,
        ..ClusterOptions::default()
    };
    let mut cluster = TestCluster::start(options).unwrap();
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let lagging = cluster.others(leader)[0];
    cluster.kill(lagging);
    let mut c = cluster.client(leader).unwrap();
    let keys = write_every_type(&mut c, "snap");
    for i in 0..300 {
        let _: i64 = cmd("RPUSH")
            .arg("snap:filler")
            .arg(i)
            .query(&mut c)
            .unwrap();
    }
    let leader_node = cluster.server(leader).unwrap().node().clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while leader_node.status().snapshot_index.unwrap_or(0) < 250 {
        assert!(Instant::now() < deadline, "leader never snapshotted");
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.restart(lagging).unwrap();
    settle(&cluster);
    let node = cluster.server(lagging).unwrap().node().clone();
    assert!(
        node.status().snapshot_index.is_some(),
        "the lagging node installed a snapshot"
    );
    let mut all: Vec<&str> = keys.iter().map(String::as_str).collect();
    all.push("snap:filler");
    assert_replicas_agree(&cluster, &all);
    {
        let state = node.state();
        let state = state.read();
        for key in &all {
            assert!(
                state.data.keyspace.get(key.as_bytes(), 0).is_some(),
                "{key} missing after install"
            );
        }
    }

    // Handles on a node keep its RocksDB open; let go before restarting.
    drop((c, node, leader_node));
    for n in 0..3 {
        cluster.kill(n);
    }
    for n in 0..3 {
        cluster.restart(n).unwrap();
    }
    settle(&cluster);
    assert_replicas_agree(&cluster, &all);
    let leader = cluster.wait_for_leader(Duration::from_secs(15)).unwrap();
    let mut c = cluster.client((leader + 1) % 3).unwrap();
    let list: Vec<String> = cmd("LRANGE")
        .arg("snap:list")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(list, strings(&["b", "c", "d"]));
    let hash: Vec<(String, String)> = cmd("HGETALL").arg("snap:hash").query(&mut c).unwrap();
    assert_eq!(
        hash,
        vec![
            ("f1".into(), "v1".into()),
            ("f2".into(), "v2".into()),
            ("n".into(), "1.25".into())
        ]
    );
    let n: i64 = cmd("SCARD").arg("snap:set").query(&mut c).unwrap();
    assert_eq!(n, 17);
    let zset: Vec<String> = cmd("ZRANGE")
        .arg("snap:zset")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        zset,
        strings(&["d", "-inf", "b", "-0", "a", "1", "c", "2.5"])
    );
    let ttl: i64 = cmd("TTL").arg("snap:ttl").query(&mut c).unwrap();
    assert!(
        ttl > 900 && ttl <= 1000,
        "TTL of a sorted set survives: {ttl}"
    );
    let filler: i64 = cmd("LLEN").arg("snap:filler").query(&mut c).unwrap();
    assert_eq!(filler, 300);
    // The restored cluster keeps taking writes on every type.
    let n: i64 = cmd("ZADD")
        .arg("snap:zset")
        .arg(&["9", "z"])
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    let popped: Vec<String> = cmd("SPOP").arg("snap:set").arg(2).query(&mut c).unwrap();
    assert_eq!(popped.len(), 2);
    assert_replicas_agree(&cluster, &all);
}
