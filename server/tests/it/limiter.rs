//! Native limiter commands through the cluster, including across a leader kill.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raftlimit_testkit::{wait_until, ClusterOptions, TestCluster};
use redis::{cmd, Value};

use super::{clock_cluster, shared_cluster};

fn check(c: &mut redis::Connection, args: &[&str]) -> Vec<i64> {
    cmd("RL.CHECK").arg(args).query(c).unwrap()
}

#[test]
fn check_through_any_node() {
    let cluster = shared_cluster();
    let mut allowed = 0;
    for i in 0..30 {
        let mut c = cluster.client(i % 3).unwrap();
        allowed += check(&mut c, &["lim:any", "10", "1h"])[0];
    }
    assert_eq!(allowed, 10, "exactly the limit, whichever node answers");
    let mut c = cluster.client(1).unwrap();
    let reply = check(&mut c, &["lim:any", "10", "1h"]);
    assert_eq!(reply[..3], [0, 10, 0]);
    assert!(
        reply[3] > 0 && reply[3] <= 360_000,
        "retry after one emission interval: {reply:?}"
    );
    let t: String = cmd("TYPE").arg("lim:any").query(&mut c).unwrap();
    assert_eq!(t, "ratelimit");
    let ttl: i64 = cmd("PTTL").arg("lim:any").query(&mut c).unwrap();
    assert!(ttl > 0 && ttl <= 3_600_000);
    let err = cmd("GET")
        .arg("lim:any")
        .query::<String>(&mut c)
        .unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    let (_, keys): (u64, Vec<String>) = cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg("lim:any")
        .arg("COUNT")
        .arg(1000)
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, vec!["lim:any"]);
    let n: i64 = cmd("DEL").arg("lim:any").query(&mut c).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn resp3_reply_is_a_map() {
    let mut c = shared_cluster().client(2).unwrap();
    let _: Value = cmd("HELLO").arg(3).query(&mut c).unwrap();
    let reply: Value = cmd("RL.CHECK")
        .arg("lim:r3")
        .arg(5)
        .arg("1s")
        .query(&mut c)
        .unwrap();
    let Value::Map(fields) = reply else {
        panic!("map, got {reply:?}")
    };
    let names: Vec<_> = fields.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        names,
        [
            "allowed",
            "limit",
            "remaining",
            "retry_after_ms",
            "reset_after_ms"
        ]
        .iter()
        .map(|n| Value::BulkString(n.as_bytes().to_vec()))
        .collect::<Vec<_>>()
    );
    assert_eq!(fields[0].1, Value::Boolean(true));
}

#[test]
fn mcheck_refund_reset_policies_and_cell() {
    let cluster = shared_cluster();
    let mut c = cluster.client(0).unwrap();
    let _: () = cmd("RL.POLICY")
        .arg(&["SET", "lim-ip", "2", "1h", "ALGO", "fixed"][..])
        .query(&mut c)
        .unwrap();
    let mut other = cluster.client(2).unwrap();
    let listed: Vec<String> = cmd("RL.POLICY").arg("LIST").query(&mut other).unwrap();
    assert!(listed.contains(&"lim-ip".to_string()));
    for _ in 0..2 {
        let (allowed, _, _): (i64, i64, Vec<Vec<i64>>) = cmd("RL.MCHECK")
            .arg(
                &[
                    "2", "lim:user", "lim:ip", "LIMIT", "100", "1h", "POLICY", "lim-ip",
                ][..],
            )
            .query(&mut other)
            .unwrap();
        assert_eq!(allowed, 1);
    }
    let (allowed, retry, limits): (i64, i64, Vec<Vec<i64>>) = cmd("RL.MCHECK")
        .arg(
            &[
                "2", "lim:user", "lim:ip", "LIMIT", "100", "1h", "POLICY", "lim-ip",
            ][..],
        )
        .query(&mut other)
        .unwrap();
    assert_eq!((allowed, limits[1][0]), (0, 0));
    assert!(retry > 0);
    assert_eq!(
        check(&mut c, &["lim:user", "100", "1h", "PEEK"])[2],
        97,
        "the denied call charged nothing"
    );
    let remaining: i64 = cmd("RL.REFUND")
        .arg("lim:user")
        .arg(2)
        .query(&mut c)
        .unwrap();
    assert_eq!(remaining, 100);
    let reset: i64 = cmd("RL.RESET").arg("lim:ip").query(&mut c).unwrap();
    assert_eq!(reset, 1);
    let cell: Vec<i64> = cmd("CL.THROTTLE")
        .arg(&["lim:user123", "15", "30", "60", "1"][..])
        .query(&mut other)
        .unwrap();
    assert_eq!(cell, vec![0, 16, 15, -1, 2]);
    let cell: Vec<i64> = cmd("CL.THROTTLE")
        .arg(&["lim:big", "1000", "1000", "60"][..])
        .query(&mut other)
        .unwrap();
    assert_eq!(cell[..3], [0, 1001, 1000]);
    let err = cmd("RL.CHECK")
        .arg(&["lim:bad", "0", "1s"][..])
        .query::<Vec<i64>>(&mut c)
        .unwrap_err();
    assert!(err.detail().unwrap().contains("limit"), "{err}");
}

#[test]
fn leases_expire() {
    let cluster = clock_cluster();
    let mut c = cluster.client(1).unwrap();
    let (ok, id, held, limit): (i64, String, i64, i64) = cmd("RL.ACQUIRE")
        .arg(&["lim:conc", "1", "300ms"][..])
        .query(&mut c)
        .unwrap();
    assert_eq!((ok, held, limit), (1, 1, 1));
    let (ok, none, held, _): (i64, Option<String>, i64, i64) = cmd("RL.ACQUIRE")
        .arg(&["lim:conc", "1", "300ms"][..])
        .query(&mut c)
        .unwrap();
    assert_eq!((ok, none, held), (0, None, 1));
    // 400 ms later by every node's clock: past the first lease.
    cluster.advance_clocks(Duration::from_millis(400));
    let (ok, id2, _, _): (i64, String, i64, i64) = cmd("RL.ACQUIRE")
        .arg(&["lim:conc", "1", "10s"][..])
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, 1, "the first lease expired");
    assert_ne!(id, id2);
    let released: i64 = cmd("RL.RELEASE")
        .arg("lim:conc")
        .arg(&id2)
        .query(&mut c)
        .unwrap();
    assert_eq!(released, 1);
}

#[test]
fn configured_policies_are_seeded() {
    let options = ClusterOptions {
        extra_toml: "[policies.login]\nlimit = 3\nperiod = \"1m\"\nalgo = \"sliding\"\n[policies.trial]\nlimit = 1\nperiod = \"1h\"\nshadow = true\n".into(),
        ..ClusterOptions::default()
    };
    let cluster = TestCluster::start(options).unwrap();
    cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let mut c = cluster.client(0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed: Vec<String> = cmd("RL.POLICY").arg("LIST").query(&mut c).unwrap();
        if listed == ["login", "trial"] {
            break;
        }
        assert!(Instant::now() < deadline, "policies not seeded: {listed:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let allowed: i64 = (0..5)
        .map(|_| check(&mut c, &["u", "POLICY", "login"])[0])
        .sum();
    assert_eq!(allowed, 3);
    let allowed: i64 = (0..3)
        .map(|_| check(&mut c, &["t", "POLICY", "trial"])[0])
        .sum();
    assert_eq!(allowed, 3, "shadow policies never deny");
}

/// Hammers one limit from every node while the leader is killed: the number
/// of acknowledged admissions never exceeds the limit.
#[test]
fn leader_kill_never_admits_more_than_the_limit() {
    let cluster = TestCluster::start(ClusterOptions::default()).unwrap();
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let mut cluster = cluster;
    const LIMIT: i64 = 40;
    let admitted = Arc::new(AtomicI64::new(0));
    let unknown = Arc::new(AtomicI64::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for node in 0..3 {
        for _ in 0..2 {
            let addr = cluster.resp_addr(node);
            let (admitted, unknown, stop) = (admitted.clone(), unknown.clone(), stop.clone());
            let answered = answered.clone();
            workers.push(std::thread::spawn(move || {
                let mut conn: Option<redis::Connection> = None;
                while !stop.load(Ordering::Relaxed) {
                    if conn.is_none() {
                        conn = redis::Client::open(format!("redis://{addr}/"))
                            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
                            .ok();
                        if conn.is_none() {
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        }
                    }
                    let Some(c) = conn.as_mut() else { continue };
                    // A huge period: the whole test sits in one window.
                    match cmd("RL.CHECK")
                        .arg(&["lim:kill", &LIMIT.to_string(), "24h"][..])
                        .query::<Vec<i64>>(c)
                    {
                        Ok(reply) => {
                            admitted.fetch_add(reply[0], Ordering::Relaxed);
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) if err.is_io_error() => conn = None,
                        Err(_) => {
                            unknown.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }));
        }
    }
    // Checks are answered before the kill...
    wait_until(Duration::from_secs(10), "checks before the kill", || {
        answered.load(Ordering::Relaxed) >= 10
    })
    .unwrap();
    cluster.kill(leader);
    // ...and after it, under a new leader, until the limit is used up (as
    // far as outcomes are known) and well beyond: every check past the
    // limit is a chance to over-admit.
    cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let at_failover = answered.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(30), "checks after the failover", || {
        let known = admitted.load(Ordering::Relaxed) + unknown.load(Ordering::Relaxed);
        known >= LIMIT && answered.load(Ordering::Relaxed) >= at_failover + 60
    })
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let admitted = admitted.load(Ordering::Relaxed);
    assert!(admitted <= LIMIT, "admitted {admitted} > limit {LIMIT}");
    assert!(
        admitted >= LIMIT - unknown.load(Ordering::Relaxed) - 1,
        "availability: {admitted}"
    );
    let survivor = cluster.others(leader)[0];
    let mut c = cluster.client(survivor).unwrap();
    let final_state = check(&mut c, &["lim:kill", &LIMIT.to_string(), "24h", "PEEK"]);
    assert_eq!(final_state[0], 0, "the limit is exhausted");
}

/// A check resent with the same `ID`, through any node, gets the first
/// answer and is not charged again; a new ID, or another command reusing
/// the token, is a new request.
#[test]
fn resend_with_id_is_answered_not_charged_again() {
    let cluster = shared_cluster();
    let mut clients: Vec<_> = (0..3).map(|i| cluster.client(i).unwrap()).collect();
    let first = check(&mut clients[0], &["lim:id", "2", "1h", "ID", "req-1"]);
    assert_eq!(first[..3], [1, 2, 1]);
    for c in clients.iter_mut() {
        assert_eq!(
            check(c, &["lim:id", "2", "1h", "ID", "req-1"]),
            first,
            "the first reply, from every node"
        );
    }
    assert_eq!(
        check(&mut clients[2], &["lim:id", "2", "1h", "ID", "req-2"])[..3],
        [1, 2, 0]
    );
    assert_eq!(
        check(&mut clients[1], &["lim:id", "2", "1h", "ID", "req-2"])[..3],
        [1, 2, 0]
    );
    assert_eq!(
        check(&mut clients[0], &["lim:id", "2", "1h", "ID", "req-3"])[..3],
        [0, 2, 0]
    );
    assert_eq!(
        check(
            &mut clients[0],
            &["lim:id", "2", "1h", "COST", "1", "ID", "req-1"]
        )[..3],
        [0, 2, 0],
        "a different command with the same token is a different request"
    );
    // The same key without a token is charged every time.
    assert_eq!(check(&mut clients[1], &["lim:id", "2", "1h"])[0], 0);
    let err = cmd("RL.CHECK")
        .arg(&["lim:id", "2", "1h", "ID", ""][..])
        .query::<Vec<i64>>(&mut clients[0])
        .unwrap_err();
    assert_eq!(err.detail(), Some("ID must be 1 to 128 bytes"));
}
