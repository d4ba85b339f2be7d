//! MULTI/EXEC/DISCARD/WATCH through followers and the leader.

use redis::{cmd, Value};

use super::shared_cluster;

#[test]
fn exec_runs_queued_commands_atomically() {
    let mut c = shared_cluster().client(1).unwrap();
    let (set, incr, get, pttl): (String, i64, i64, i64) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("tx:a")
        .arg(10)
        .arg("EX")
        .arg(100)
        .arg("NX")
        .cmd("INCRBY")
        .arg("tx:a")
        .arg(5)
        .cmd("GET")
        .arg("tx:a")
        .cmd("PTTL")
        .arg("tx:a")
        .query(&mut c)
        .unwrap();
    assert_eq!((set.as_str(), incr, get), ("OK", 15, 15));
    assert!(pttl > 99_000 && pttl <= 100_000);
}

#[test]
fn queued_errors_abort_and_runtime_errors_do_not() {
    let mut c = shared_cluster().client(0).unwrap();
    let _: () = cmd("MULTI").query(&mut c).unwrap();
    let queued: String = cmd("SET").arg("tx:b").arg(1).query(&mut c).unwrap();
    assert_eq!(queued, "QUEUED");
    let err = cmd("GET").query::<()>(&mut c).unwrap_err();
    assert_eq!(
        err.detail(),
        Some("wrong number of arguments for 'get' command")
    );
    let err = cmd("EXEC").query::<()>(&mut c).unwrap_err();
    assert_eq!(err.code(), Some("EXECABORT"));
    let v: Option<String> = cmd("GET").arg("tx:b").query(&mut c).unwrap();
    assert_eq!(v, None, "nothing ran");
    // A command that fails while running does not stop the others (the
    // client library would turn the error inside EXEC's array into an Err,
    // so this part speaks RESP directly).
    let mut raw = std::net::TcpStream::connect(shared_cluster().resp_addr(0)).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    use std::io::{Read, Write};
    raw.write_all(b"MULTI\r\nSET tx:b text\r\nINCR tx:b\r\nPING\r\nEXEC\r\nQUIT\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = raw.read_to_string(&mut out);
    assert_eq!(
        out,
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+PONG\r\n+OK\r\n"
    );
    let err = cmd("EXEC").query::<()>(&mut c).unwrap_err();
    assert_eq!(err.detail(), Some("EXEC without MULTI"));
    let _: () = cmd("MULTI").query(&mut c).unwrap();
    let err = cmd("MULTI").query::<()>(&mut c).unwrap_err();
    assert_eq!(err.detail(), Some("MULTI calls can not be nested"));
    let _: () = cmd("DISCARD").query(&mut c).unwrap();
}

#[test]
fn watch_aborts_when_a_key_changes() {
    let cluster = shared_cluster();
    let mut c = cluster.client(2).unwrap();
    let mut other = cluster.client(0).unwrap();
    let _: () = cmd("SET").arg("tx:w").arg(1).query(&mut c).unwrap();
    let _: () = cmd("WATCH").arg("tx:w").arg("tx:w2").query(&mut c).unwrap();
    let _: () = cmd("SET").arg("tx:w").arg(2).query(&mut other).unwrap();
    let _: () = cmd("MULTI").query(&mut c).unwrap();
    let _: Value = cmd("SET").arg("tx:w").arg(3).query(&mut c).unwrap();
    let result: Value = cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(result, Value::Nil, "a watched key changed");
    let v: i64 = cmd("GET").arg("tx:w").query(&mut c).unwrap();
    assert_eq!(v, 2);

    let _: () = cmd("WATCH").arg("tx:w").query(&mut c).unwrap();
    let _: () = cmd("SET")
        .arg("tx:unrelated")
        .arg(1)
        .query(&mut other)
        .unwrap();
    let _: () = cmd("MULTI").query(&mut c).unwrap();
    let _: Value = cmd("INCR").arg("tx:w").query(&mut c).unwrap();
    let result: Vec<i64> = cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(result, vec![3]);

    // A watched key deleted (then recreated) counts as changed.
    let _: () = cmd("WATCH").arg("tx:w").query(&mut c).unwrap();
    let _: i64 = cmd("DEL").arg("tx:w").query(&mut other).unwrap();
    let _: () = cmd("SET").arg("tx:w").arg(3).query(&mut other).unwrap();
    let _: () = cmd("MULTI").query(&mut c).unwrap();
    let _: Value = cmd("GET").arg("tx:w").query(&mut c).unwrap();
    let result: Value = cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(result, Value::Nil);

    let _: () = cmd("WATCH").arg("tx:w").query(&mut c).unwrap();
    let _: () = cmd("UNWATCH").query(&mut c).unwrap();
    let _: () = cmd("SET").arg("tx:w").arg(9).query(&mut other).unwrap();
    let _: () = cmd("MULTI").query(&mut c).unwrap();
    let _: Value = cmd("GET").arg("tx:w").query(&mut c).unwrap();
    let result: Vec<i64> = cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(result, vec![9], "UNWATCH forgets");
}
