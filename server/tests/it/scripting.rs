//! Lua scripting through a real 3-node cluster: scripts run once on the
//! leader whichever node receives them, their effects replicate, the script
//! cache is cluster-wide, and concurrent scripts stay atomic.

use std::time::Duration;

use raftlimit_testkit::TestCluster;
use redis::{cmd, RedisError};

use crate::{cluster, shared_cluster};

fn eval(c: &mut redis::Connection, body: &str, keys: &[&str], args: &[&str]) -> redis::Value {
    let mut command = cmd("EVAL");
    command.arg(body).arg(keys.len()).arg(keys).arg(args);
    command.query(c).unwrap()
}

fn eval_err(c: &mut redis::Connection, body: &str, keys: &[&str]) -> RedisError {
    cmd("EVAL")
        .arg(body)
        .arg(keys.len())
        .arg(keys)
        .query::<redis::Value>(c)
        .unwrap_err()
}

/// Waits until every node has applied the leader's commit index.
fn settle(cluster: &TestCluster, leader: usize) {
    let target = cluster.server(leader).unwrap().node().status().commit_index;
    cluster
        .wait_applied(target, Duration::from_secs(10))
        .unwrap();
}

#[test]
fn eval_on_any_node_runs_on_the_leader_and_replicates_its_effects() {
    let cluster = shared_cluster();
    for node in 0..3 {
        let mut c = cluster.client(node).unwrap();
        let key = format!("script:any:{node}");
        let reply: String = cmd("EVAL")
            .arg("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])")
            .arg(1)
            .arg(&key)
            .arg(format!("from-{node}"))
            .query(&mut c)
            .unwrap();
        assert_eq!(reply, format!("from-{node}"));
        for other in 0..3 {
            let mut c = cluster.client(other).unwrap();
            let v: Option<String> = cmd("GET").arg(&key).query(&mut c).unwrap();
            assert_eq!(v.as_deref(), Some(&*format!("from-{node}")));
        }
    }
}

#[test]
fn script_cache_is_cluster_wide() {
    let cluster = shared_cluster();
    let mut a = cluster.client(0).unwrap();
    let mut b = cluster.client(1).unwrap();
    let mut c = cluster.client(2).unwrap();
    let body = "return redis.call('INCRBY', KEYS[1], ARGV[1]) -- cache test";
    let sha: String = cmd("SCRIPT").arg("LOAD").arg(body).query(&mut a).unwrap();
    assert_eq!(sha.len(), 40);
    let n: i64 = cmd("EVALSHA")
        .arg(&sha)
        .arg(1)
        .arg("script:cache")
        .arg(5)
        .query(&mut b)
        .unwrap();
    assert_eq!(n, 5);
    // Upper-case SHA-1 works too, as in Redis.
    let n: i64 = cmd("EVALSHA")
        .arg(sha.to_uppercase())
        .arg(1)
        .arg("script:cache")
        .arg(2)
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 7);
    let exists: Vec<i64> = cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .arg("0000000000000000000000000000000000000000")
        .query(&mut c)
        .unwrap();
    assert_eq!(exists, vec![1, 0]);
    // EVAL caches its script too, so EVALSHA finds it on another node.
    let body2 = "return ARGV[1] .. '!' -- eval caches";
    let _: String = cmd("EVAL")
        .arg(body2)
        .arg(0)
        .arg("hi")
        .query(&mut a)
        .unwrap();
    let sha2: String = cmd("SCRIPT").arg("LOAD").arg(body2).query(&mut b).unwrap();
    let out: String = cmd("EVALSHA")
        .arg(&sha2)
        .arg(0)
        .arg("yo")
        .query(&mut c)
        .unwrap();
    assert_eq!(out, "yo!");
    let missing = cmd("EVALSHA")
        .arg("ffffffffffffffffffffffffffffffffffffffff")
        .arg(0)
        .query::<redis::Value>(&mut b)
        .unwrap_err();
    assert_eq!(missing.code(), Some("NOSCRIPT"));
    assert_eq!(
        missing.detail(),
        Some("No matching script. Please use EVAL.")
    );
}

#[test]
fn script_flush_forgets_every_script() {
    let (cluster, leader) = cluster();
    let follower = cluster.others(leader)[0];
    let mut c = cluster.client(follower).unwrap();
    let sha: String = cmd("SCRIPT")
        .arg("LOAD")
        .arg("return 1")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("SCRIPT").arg("FLUSH").query(&mut c).unwrap();
    let err = cmd("EVALSHA")
        .arg(&sha)
        .arg(0)
        .query::<redis::Value>(&mut c)
        .unwrap_err();
    assert_eq!(err.code(), Some("NOSCRIPT"));
    let exists: Vec<i64> = cmd("SCRIPT").arg("EXISTS").arg(&sha).query(&mut c).unwrap();
    assert_eq!(exists, vec![0]);
}

#[test]
fn time_and_random_choices_are_resolved_once_and_replicated() {
    let (cluster, leader) = cluster();
    let mut c = cluster.client(cluster.others(leader)[0]).unwrap();
    let _: i64 = cmd("SADD")
        .arg("script:pool")
        .arg(&["a", "b", "c", "d", "e", "f"])
        .query(&mut c)
        .unwrap();
    let body = "local t = redis.call('TIME') \
                redis.call('SET', KEYS[1], t[1] .. '.' .. t[2]) \
                local popped = redis.call('SPOP', KEYS[2]) \
                redis.call('SET', KEYS[3], popped) \
                redis.call('SET', KEYS[4], 'v', 'PX', 100000) \
                return {t[1], popped}";
    let reply = eval(
        &mut c,
        body,
        &["script:time", "script:pool", "script:popped", "script:ttl"],
        &[],
    );
    let redis::Value::Array(items) = reply else {
        panic!("unexpected reply {reply:?}");
    };
    assert_eq!(items.len(), 2);
    settle(&cluster, leader);
    let states: Vec<_> = (0..3)
        .map(|n| cluster.server(n).unwrap().node().state().clone())
        .collect();
    let now = 0;
    let view = |n: usize, key: &str| {
        let state = states[n].read();
        state
            .data
            .keyspace
            .get(key.as_bytes(), now)
            .map(|e| (format!("{:?}", e.value), e.expire_at_ms))
    };
    for key in ["script:time", "script:pool", "script:popped", "script:ttl"] {
        let first = view(0, key);
        assert!(first.is_some(), "{key} missing");
        for n in 1..3 {
            assert_eq!(view(n, key), first, "{key} differs on node {n}");
        }
    }
}

#[test]
fn concurrent_scripts_and_plain_writes_on_one_key_stay_atomic() {
    let cluster = shared_cluster();
    let key = "script:hot";
    let scripts_per_worker = 40;
    let workers = 6;
    let read_modify_write = "local v = tonumber(redis.call('GET', KEYS[1]) or '0') \
                             redis.call('SET', KEYS[1], v + 1) \
                             return v + 1";
    let results: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    let mut c = cluster.client(w % 3).unwrap();
                    let mut seen = Vec::new();
                    for _ in 0..scripts_per_worker {
                        if w % 3 == 2 {
                            // Plain writes racing the scripts force conflicts.
                            let n: i64 = cmd("INCR").arg(key).query(&mut c).unwrap();
                            seen.push(n);
                        } else {
                            let n: i64 = cmd("EVAL")
                                .arg(read_modify_write)
                                .arg(1)
                                .arg(key)
                                .query(&mut c)
                                .unwrap();
                            seen.push(n);
                        }
                    }
                    seen
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = results.into_iter().flatten().collect();
    all.sort_unstable();
    let total = (workers * scripts_per_worker) as i64;
    // Every increment, scripted or not, saw a distinct value: none was lost
    // and no script saw a stale read.
    assert_eq!(all, (1..=total).collect::<Vec<_>>());
    let mut c = cluster.client(0).unwrap();
    let v: i64 = cmd("GET").arg(key).query(&mut c).unwrap();
    assert_eq!(v, total);
}

#[test]
fn script_kill_stops_a_runaway_script_without_blocking_other_commands() {
    let (cluster, leader) = cluster();
    let follower = cluster.others(leader)[0];
    let runaway = std::thread::spawn({
        let mut c = cluster.client(follower).unwrap();
        move || eval_err(&mut c, "while true do end", &[])
    });
    let mut other = cluster.client(leader).unwrap();
    // Plain commands are served while the script runs.
    let mut killed = false;
    for _ in 0..200 {
        let _: () = cmd("SET")
            .arg("script:alive")
            .arg("1")
            .query(&mut other)
            .unwrap();
        match cmd("SCRIPT").arg("KILL").query::<()>(&mut other) {
            Ok(()) => {
                killed = true;
                break;
            }
            Err(err) if err.code() == Some("NOTBUSY") => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("SCRIPT KILL failed: {err}"),
        }
    }
    assert!(killed, "the script was never seen running");
    let err = runaway.join().unwrap();
    assert!(
        err.to_string()
            .contains("Script killed by user with SCRIPT KILL"),
        "{err}"
    );
    // Nothing runs any more.
    let err = cmd("SCRIPT")
        .arg("KILL")
        .query::<()>(&mut other)
        .unwrap_err();
    assert_eq!(err.code(), Some("NOTBUSY"));
    assert_eq!(
        eval(&mut other, "return 'after'", &[], &[]),
        redis::Value::BulkString(b"after".to_vec())
    );
}

#[test]
fn errors_and_read_only_scripts_behave_as_in_redis() {
    let cluster = shared_cluster();
    let mut c = cluster.client(1).unwrap();
    let _: () = cmd("SET")
        .arg("script:str")
        .arg("abc")
        .query(&mut c)
        .unwrap();
    let err = eval_err(
        &mut c,
        "return redis.call('INCR', KEYS[1])",
        &["script:str"],
    );
    assert_eq!(err.code(), Some("ERR"));
    assert!(err.to_string().contains("value is not an integer"), "{err}");
    // A script's writes before its error stay, as in Redis.
    let _ = eval_err(
        &mut c,
        "redis.call('SET', KEYS[1], 'partial'); return redis.call('INCR', KEYS[2])",
        &["script:partial", "script:str"],
    );
    let v: Option<String> = cmd("GET").arg("script:partial").query(&mut c).unwrap();
    assert_eq!(v.as_deref(), Some("partial"));
    let err = cmd("EVAL_RO")
        .arg("return redis.call('SET', KEYS[1], 'x')")
        .arg(1)
        .arg("script:ro")
        .query::<redis::Value>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Write commands are not allowed from read-only scripts"),
        "{err}"
    );
    let v: Option<String> = cmd("EVAL_RO")
        .arg("return redis.call('GET', KEYS[1])")
        .arg(1)
        .arg("script:partial")
        .query(&mut c)
        .unwrap();
    assert_eq!(v.as_deref(), Some("partial"));
    let err = eval_err(&mut c, "return redis.call('FLUSHALL')", &[]);
    assert!(err.to_string().contains("not allowed from script"), "{err}");
    let err = cmd("EVAL")
        .arg("return 1")
        .arg(2)
        .arg("only-one")
        .query::<redis::Value>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Number of keys can't be greater than number of args"),
        "{err}"
    );
}

#[test]
fn a_script_survives_leader_failover_without_running_twice() {
    let (mut cluster, leader) = cluster();
    let follower = cluster.others(leader)[0];
    let mut c = cluster.client(follower).unwrap();
    let body = "return redis.call('INCR', KEYS[1])";
    for _ in 0..20 {
        let _: i64 = cmd("EVAL")
            .arg(body)
            .arg(1)
            .arg("script:failover")
            .query(&mut c)
            .unwrap();
    }
    cluster.kill(leader);
    // Each success must be exactly one more than the last, unless some
    // attempts in between ended with an unknown outcome (TRYAGAIN): those
    // may or may not have been applied, but never more than once.
    let (mut last, mut unknown, mut successes) = (20i64, 0i64, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while successes < 20 && std::time::Instant::now() < deadline {
        match cmd("EVAL")
            .arg(body)
            .arg(1)
            .arg("script:failover")
            .query::<i64>(&mut c)
        {
            Ok(n) => {
                assert!(
                    n > last && n <= last + 1 + unknown,
                    "after {last} (+{unknown} unknown) the script returned {n}"
                );
                (last, unknown) = (n, 0);
                successes += 1;
            }
            Err(err) if err.code() == Some("TRYAGAIN") => unknown += 1,
            Err(err) => {
                assert_eq!(err.code(), Some("CLUSTERDOWN"), "{err}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    assert_eq!(successes, 20);
}

#[test]
fn commands_inside_a_script_obey_the_callers_acl() {
    let cluster = shared_cluster();
    let mut admin = cluster.client(0).unwrap();
    let _: () = cmd("ACL")
        .arg("SETUSER")
        .arg("scripter")
        .arg("on")
        .arg(">scripter-pass")
        .arg("~app:*")
        .arg("+@scripting")
        .arg("+get")
        .arg("+set")
        .query(&mut admin)
        .unwrap();
    let mut c = cluster.client_as(1, "scripter", "scripter-pass").unwrap();
    let ok: String = cmd("EVAL")
        .arg("redis.call('SET', KEYS[1], 'x'); return redis.call('GET', KEYS[1])")
        .arg(1)
        .arg("app:allowed")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "x");
    let err = eval_err(&mut c, "return redis.call('INCR', KEYS[1])", &["app:n"]);
    assert_eq!(err.code(), Some("NOPERM"), "{err}");
    // A key outside ~app:*, even one the script names itself.
    let err = eval_err(&mut c, "return redis.call('GET', 'secret:k')", &[]);
    assert_eq!(err.code(), Some("NOPERM"), "{err}");
    let _: () = cmd("ACL")
        .arg("DELUSER")
        .arg("scripter")
        .query(&mut admin)
        .unwrap();
}
