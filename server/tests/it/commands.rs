//! Redis command semantics through a follower and the leader.

use redis::{cmd, Commands, Value};

use super::{clock_cluster, shared_cluster};

fn conn(node: usize) -> redis::Connection {
    shared_cluster().client(node).unwrap()
}

#[test]
fn strings_through_every_node() {
    for node in 0..3 {
        let mut c = conn(node);
        let key = format!("str:{node}");
        let _: () = c.set(&key, "v").unwrap();
        let got: String = c.get(&key).unwrap();
        assert_eq!(got, "v");
        for other in 0..3 {
            let got: String = conn(other).get(&key).unwrap();
            assert_eq!(got, "v", "linearizable read on node {other}");
        }
    }
}

#[test]
fn set_options_and_errors() {
    let mut c = conn(1);
    let ok: Option<String> = cmd("SET")
        .arg("opt:a")
        .arg("1")
        .arg("NX")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok.as_deref(), Some("OK"));
    let none: Option<String> = cmd("SET")
        .arg("opt:a")
        .arg("2")
        .arg("NX")
        .query(&mut c)
        .unwrap();
    assert_eq!(none, None);
    let old: Option<String> = cmd("SET")
        .arg("opt:a")
        .arg("3")
        .arg("XX")
        .arg("GET")
        .query(&mut c)
        .unwrap();
    assert_eq!(old.as_deref(), Some("1"));
    let _: () = cmd("SET")
        .arg("opt:a")
        .arg("4")
        .arg("PX")
        .arg("100000")
        .query(&mut c)
        .unwrap();
    let pttl: i64 = c.pttl("opt:a").unwrap();
    assert!(pttl > 99_000 && pttl <= 100_000, "{pttl}");
    let err = cmd("SET")
        .arg("opt:a")
        .arg("x")
        .arg("EX")
        .arg("0")
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(err.detail(), Some("invalid expire time in 'set' command"));
    let err = cmd("SET")
        .arg("opt:a")
        .arg("x")
        .arg("NX")
        .arg("XX")
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(err.code(), Some("ERR"));
    assert_eq!(err.detail(), Some("syntax error"));
    let err = cmd("GET").query::<()>(&mut c).unwrap_err();
    assert_eq!(
        err.detail(),
        Some("wrong number of arguments for 'get' command")
    );
    let err = cmd("NOSUCHCMD").arg("a").query::<()>(&mut c).unwrap_err();
    assert!(
        err.detail()
            .unwrap()
            .starts_with("unknown command 'NOSUCHCMD'"),
        "{err}"
    );
    let _: () = cmd("SETEX")
        .arg("opt:b")
        .arg(100)
        .arg("v")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("PSETEX")
        .arg("opt:c")
        .arg(100000)
        .arg("v")
        .query(&mut c)
        .unwrap();
    let ttl: i64 = c.ttl("opt:b").unwrap();
    assert_eq!(ttl, 100);
    let set: i64 = cmd("SETNX").arg("opt:c").arg("w").query(&mut c).unwrap();
    assert_eq!(set, 0);
}

#[test]
fn counters_and_wrongtype() {
    let mut c = conn(2);
    let n: i64 = c.incr("cnt:a", 1).unwrap();
    assert_eq!(n, 1);
    let n: i64 = cmd("INCRBY").arg("cnt:a").arg(10).query(&mut c).unwrap();
    assert_eq!(n, 11);
    let n: i64 = cmd("DECR").arg("cnt:a").query(&mut c).unwrap();
    assert_eq!(n, 10);
    let n: i64 = cmd("DECRBY").arg("cnt:a").arg(3).query(&mut c).unwrap();
    assert_eq!(n, 7);
    let f: String = cmd("INCRBYFLOAT")
        .arg("cnt:f")
        .arg("1.5")
        .query(&mut c)
        .unwrap();
    assert_eq!(f, "1.5");
    let _: () = c.set("cnt:s", "abc").unwrap();
    let err = cmd("INCR").arg("cnt:s").query::<()>(&mut c).unwrap_err();
    assert_eq!(
        err.detail(),
        Some("value is not an integer or out of range")
    );
    let len: i64 = cmd("APPEND").arg("cnt:s").arg("de").query(&mut c).unwrap();
    assert_eq!(len, 5);
    let len: i64 = cmd("STRLEN").arg("cnt:s").query(&mut c).unwrap();
    assert_eq!(len, 5);
}

#[test]
fn multi_key_and_getters() {
    let mut c = conn(0);
    let _: () = cmd("MSET")
        .arg("mk:a")
        .arg("1")
        .arg("mk:b")
        .arg("2")
        .query(&mut c)
        .unwrap();
    let got: Vec<Option<String>> = cmd("MGET")
        .arg("mk:a")
        .arg("mk:b")
        .arg("mk:c")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, vec![Some("1".into()), Some("2".into()), None]);
    let n: i64 = cmd("MSETNX")
        .arg("mk:a")
        .arg("x")
        .arg("mk:d")
        .arg("y")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 0);
    let old: String = cmd("GETSET").arg("mk:a").arg("9").query(&mut c).unwrap();
    assert_eq!(old, "1");
    let v: String = cmd("GETEX")
        .arg("mk:a")
        .arg("EX")
        .arg(50)
        .query(&mut c)
        .unwrap();
    assert_eq!(v, "9");
    let ttl: i64 = c.ttl("mk:a").unwrap();
    assert_eq!(ttl, 50);
    let v: String = cmd("GETDEL").arg("mk:a").query(&mut c).unwrap();
    assert_eq!(v, "9");
    let exists: i64 = cmd("EXISTS")
        .arg("mk:a")
        .arg("mk:b")
        .arg("mk:b")
        .query(&mut c)
        .unwrap();
    assert_eq!(exists, 2);
}

#[test]
fn keys_expiry_and_rename() {
    let mut c = conn(1);
    let _: () = c.set("ke:a", "1").unwrap();
    let t: String = cmd("TYPE").arg("ke:a").query(&mut c).unwrap();
    assert_eq!(t, "string");
    let r: i64 = cmd("EXPIRE")
        .arg("ke:a")
        .arg(100)
        .arg("NX")
        .query(&mut c)
        .unwrap();
    assert_eq!(r, 1);
    let r: i64 = cmd("EXPIRE")
        .arg("ke:a")
        .arg(50)
        .arg("GT")
        .query(&mut c)
        .unwrap();
    assert_eq!(r, 0);
    let r: i64 = cmd("PEXPIRE")
        .arg("ke:a")
        .arg(20_000)
        .arg("LT")
        .query(&mut c)
        .unwrap();
    assert_eq!(r, 1);
    let at: i64 = cmd("PEXPIRETIME").arg("ke:a").query(&mut c).unwrap();
    assert!(at > 1_600_000_000_000);
    let at_s: i64 = cmd("EXPIRETIME").arg("ke:a").query(&mut c).unwrap();
    assert!((at_s - at / 1000).abs() <= 1);
    let _: () = cmd("RENAME").arg("ke:a").arg("ke:b").query(&mut c).unwrap();
    let ttl: i64 = c.pttl("ke:b").unwrap();
    assert!(ttl > 0 && ttl <= 20_000);
    let p: i64 = cmd("PERSIST").arg("ke:b").query(&mut c).unwrap();
    assert_eq!(p, 1);
    let ttl: i64 = c.ttl("ke:b").unwrap();
    assert_eq!(ttl, -1);
    let at: i64 = cmd("EXPIREAT")
        .arg("ke:b")
        .arg(4_000_000_000i64)
        .query(&mut c)
        .unwrap();
    assert_eq!(at, 1);
    let past: i64 = cmd("PEXPIREAT").arg("ke:b").arg(1).query(&mut c).unwrap();
    assert_eq!(past, 1);
    let ttl: i64 = c.ttl("ke:b").unwrap();
    assert_eq!(ttl, -2, "an expiry in the past deletes the key");
    let _: () = c.set("ke:c", "1").unwrap();
    let _: () = c.set("ke:d", "1").unwrap();
    let n: i64 = cmd("RENAMENX")
        .arg("ke:c")
        .arg("ke:d")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = cmd("UNLINK").arg("ke:c").arg("ke:d").query(&mut c).unwrap();
    assert_eq!(n, 2);
    let err = cmd("RENAME")
        .arg("ke:none")
        .arg("x")
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(err.detail(), Some("no such key"));
}

#[test]
fn keys_and_scan() {
    let mut c = conn(2);
    for i in 0..30 {
        let _: () = c.set(format!("scan:{i}"), i).unwrap();
    }
    let mut keys: Vec<String> = cmd("KEYS").arg("scan:*").query(&mut c).unwrap();
    keys.sort();
    assert_eq!(keys.len(), 30);
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("scan:*")
            .arg("COUNT")
            .arg(7)
            .arg("TYPE")
            .arg("string")
            .query(&mut c)
            .unwrap();
        seen.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 30);
}

#[test]
fn binary_safe_keys_and_values() {
    let mut c = conn(0);
    let key: &[u8] = b"bin:\x00\xff\r\n key";
    let value: &[u8] = b"\x00\x01\x02\r\n\xfe";
    let _: () = c.set(key, value).unwrap();
    let got: Vec<u8> = conn(2).get(key).unwrap();
    assert_eq!(got, value);
}

#[test]
fn expiry_takes_effect() {
    let cluster = clock_cluster();
    let mut c = cluster.client(0).unwrap();
    let _: () = cmd("SET")
        .arg("exp:a")
        .arg("v")
        .arg("PX")
        .arg(300)
        .query(&mut c)
        .unwrap();
    let v: Option<String> = c.get("exp:a").unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    // 450 ms later by every node's clock.
    cluster.advance_clocks(std::time::Duration::from_millis(450));
    for node in 0..3 {
        let mut c = cluster.client(node).unwrap();
        let v: Option<String> = c.get("exp:a").unwrap();
        assert_eq!(v, None, "expired on node {node}");
        let ttl: i64 = c.ttl("exp:a").unwrap();
        assert_eq!(ttl, -2);
    }
}

#[test]
fn dbsize_flush_and_type_none() {
    // FLUSHALL would disturb the other tests on the shared cluster, so this
    // test runs on its own.
    let (cluster, leader) = super::cluster();
    let follower = cluster.others(leader)[0];
    let mut c = cluster.client(follower).unwrap();
    for i in 0..5 {
        let _: () = c.set(format!("f:{i}"), i).unwrap();
    }
    let n: i64 = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 5);
    let _: () = cmd("FLUSHALL").query(&mut c).unwrap();
    let n: i64 = cmd("DBSIZE")
        .query(&mut cluster.client(leader).unwrap())
        .unwrap();
    assert_eq!(n, 0);
    let _: () = c.set("f:x", 1).unwrap();
    let _: () = cmd("FLUSHDB").arg("ASYNC").query(&mut c).unwrap();
    let t: String = cmd("TYPE").arg("f:x").query(&mut c).unwrap();
    assert_eq!(t, "none");
    let v: Value = cmd("GET").arg("f:x").query(&mut c).unwrap();
    assert_eq!(v, Value::Nil);
}
