//! Authentication, ACL, protected mode and hostile input. Each protection is
//! exercised so that the test fails if the protection is removed.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use raftlimit_server::auth;
use raftlimit_testkit::{ClusterOptions, TestCluster};
use redis::{cmd, Value};

const DEFAULT_PASS: &str = "s3cret-default";
const APP_PASS: &str = "app-pass-7f3a";

/// Three nodes with `requirepass` and two `[[users]]`.
fn secure_cluster() -> &'static TestCluster {
    static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let extra = format!(
            r#"requirepass = "{DEFAULT_PASS}"
[[users]]
name = "app"
rules = "on >{APP_PASS} ~app:* +@read +@write +@limiter -@dangerous +acl|whoami"
[[users]]
name = "reader"
rules = "on >reader-pass %R~* +@read +set"
"#
        );
        let cluster = TestCluster::start(ClusterOptions {
            extra_toml: extra,
            ..Default::default()
        })
        .expect("cluster starts");
        cluster
            .wait_for_leader(Duration::from_secs(10))
            .expect("leader");
        cluster
    })
}

/// One node with the given extra configuration.
fn single_node(extra: &str) -> TestCluster {
    let cluster = TestCluster::start(ClusterOptions {
        nodes: 1,
        extra_toml: extra.into(),
        ..Default::default()
    })
    .expect("node starts");
    cluster
        .wait_for_leader(Duration::from_secs(10))
        .expect("leader");
    cluster
}

/// A raw RESP connection, for what a client library would not send.
struct Raw {
    stream: TcpStream,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw { stream }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn command(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.send(&out);
    }

    /// One reply line (simple string, error or integer), without CRLF.
    fn line(&mut self) -> String {
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        while !out.ends_with(b"\r\n") {
            match self.stream.read(&mut byte) {
                Ok(1) => out.push(byte[0]),
                other => panic!("connection ended before a full line: {other:?}, got {out:?}"),
            }
        }
        out.truncate(out.len() - 2);
        String::from_utf8(out).unwrap()
    }

    fn call(&mut self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.command(&args);
        self.line()
    }

    /// Reads until the server closes the connection; what it sent meanwhile.
    fn until_closed(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == ErrorKind::ConnectionReset => return out,
                Err(err) => panic!("connection not closed: {err}; got {out:?}"),
            }
        }
    }
}

/// Waits until every node has applied what the leader has (ACL changes
/// take effect on a node when it applies them).
fn settle(cluster: &TestCluster) {
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let applied = cluster
        .server(leader)
        .unwrap()
        .node()
        .status()
        .applied_index;
    cluster
        .wait_applied(applied, Duration::from_secs(10))
        .unwrap();
}

fn code(err: &redis::RedisError) -> String {
    format!(
        "{} {}",
        err.code().unwrap_or(""),
        err.detail().unwrap_or("")
    )
}

#[test]
fn noauth_wrongpass_and_auth() {
    let cluster = secure_cluster();
    let mut c = Raw::connect(cluster.resp_addr(0));
    assert_eq!(c.call(&["PING"]), "-NOAUTH Authentication required.");
    assert_eq!(
        c.call(&["GET", "app:x"]),
        "-NOAUTH Authentication required."
    );
    // Redis checks existence and arity before authentication.
    assert!(c
        .call(&["NOSUCH"])
        .starts_with("-ERR unknown command 'NOSUCH'"));
    assert_eq!(
        c.call(&["HELLO", "3"]),
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
    );
    assert_eq!(
        c.call(&["AUTH", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(
        c.call(&["AUTH", "app", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(
        c.call(&["AUTH", "nobody", APP_PASS]),
        "-WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(c.call(&["PING"]), "-NOAUTH Authentication required.");
    assert_eq!(c.call(&["AUTH", DEFAULT_PASS]), "+OK");
    assert_eq!(c.call(&["PING"]), "+PONG");
    // RESET drops the authentication.
    assert_eq!(c.call(&["RESET"]), "+RESET");
    assert_eq!(c.call(&["PING"]), "-NOAUTH Authentication required.");
    assert_eq!(c.call(&["AUTH", "default", DEFAULT_PASS]), "+OK");
    assert_eq!(c.call(&["QUIT"]), "+OK");

    // HELLO AUTH, and QUIT before authenticating.
    let mut c = Raw::connect(cluster.resp_addr(1));
    assert_eq!(
        c.call(&["HELLO", "2", "AUTH", "app", "nope"]),
        "-WRONGPASS invalid username-password pair or user is disabled."
    );
    c.command(&[b"HELLO", b"2", b"AUTH", b"app", APP_PASS.as_bytes()]);
    assert_eq!(c.line(), "*14");
    let mut c = Raw::connect(cluster.resp_addr(2));
    assert_eq!(c.call(&["QUIT"]), "+OK");
    assert!(c.until_closed().is_empty());

    // Through a client library: URL credentials.
    let mut app = cluster.client_as(2, "app", APP_PASS).unwrap();
    let who: String = cmd("ACL").arg("WHOAMI").query(&mut app).unwrap();
    assert_eq!(who, "app");
}

#[test]
fn acl_permissions_and_log() {
    let cluster = secure_cluster();
    let mut app = cluster.client_as(0, "app", APP_PASS).unwrap();
    let _: () = cmd("SET").arg("app:1").arg("v").query(&mut app).unwrap();
    let got: String = cmd("GET").arg("app:1").query(&mut app).unwrap();
    assert_eq!(got, "v");
    let err = cmd("SET")
        .arg("other:1")
        .arg("v")
        .query::<()>(&mut app)
        .unwrap_err();
    assert_eq!(code(&err), "NOPERM No permissions to access a key");
    let err = cmd("FLUSHALL").query::<()>(&mut app).unwrap_err();
    assert_eq!(
        code(&err),
        "NOPERM User app has no permissions to run the 'flushall' command"
    );
    let err = cmd("ACL")
        .arg("SETUSER")
        .arg("x")
        .query::<()>(&mut app)
        .unwrap_err();
    assert_eq!(
        code(&err),
        "NOPERM User app has no permissions to run the 'acl|setuser' command"
    );
    // The limiter category, and RL.MCHECK's keys at argv[2..2+numkeys].
    let reply: Vec<i64> = cmd("RL.CHECK")
        .arg(&["app:rl", "10", "1m"][..])
        .query(&mut app)
        .unwrap();
    assert_eq!(reply[0], 1);
    let err = cmd("RL.MCHECK")
        .arg(&["2", "app:a", "ip:b", "LIMIT", "5", "1m", "LIMIT", "5", "1m"][..])
        .query::<Value>(&mut app)
        .unwrap_err();
    assert_eq!(code(&err), "NOPERM No permissions to access a key");
    let ok: Value = cmd("RL.MCHECK")
        .arg(
            &[
                "2", "app:a", "app:b", "LIMIT", "5", "1m", "LIMIT", "5", "1m",
            ][..],
        )
        .query(&mut app)
        .unwrap();
    assert!(matches!(ok, Value::Array(_)));

    // %R~* grants reads only.
    let mut reader = cluster.client_as(1, "reader", "reader-pass").unwrap();
    let got: Option<String> = cmd("GET").arg("app:1").query(&mut reader).unwrap();
    assert_eq!(got.as_deref(), Some("v"));
    let err = cmd("SET")
        .arg("app:1")
        .arg("w")
        .query::<()>(&mut reader)
        .unwrap_err();
    assert_eq!(code(&err), "NOPERM No permissions to access a key");

    // ACL LOG on the node that refused.
    let mut admin = cluster.client_as(0, "default", DEFAULT_PASS).unwrap();
    let mut raw = Raw::connect(cluster.resp_addr(0));
    assert!(raw
        .call(&["AUTH", "app", "bad-guess"])
        .starts_with("-WRONGPASS"));
    let log: Vec<Vec<Value>> = cmd("ACL").arg("LOG").query(&mut admin).unwrap();
    let field = |entry: &[Value], name: &str| -> String {
        let at = entry
            .iter()
            .position(|v| *v == Value::BulkString(name.as_bytes().to_vec()))
            .unwrap();
        match &entry[at + 1] {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        }
    };
    let find = |reason: &str, object: &str| {
        log.iter()
            .find(|e| field(e, "reason") == reason && field(e, "object") == object)
            .unwrap_or_else(|| panic!("no {reason} entry for {object} in {log:?}"))
    };
    let auth = find("auth", "AUTH");
    assert_eq!(field(auth, "username"), "app");
    assert_eq!(field(auth, "context"), "toplevel");
    assert!(field(auth, "client-info").contains("id="));
    assert_eq!(field(find("key", "other:1"), "username"), "app");
    assert_eq!(field(find("command", "flushall"), "username"), "app");
    for entry in &log {
        assert!(!format!("{entry:?}").contains("bad-guess"));
    }
    let _: () = cmd("ACL")
        .arg("LOG")
        .arg("RESET")
        .query(&mut admin)
        .unwrap();
    let log: Vec<Value> = cmd("ACL").arg("LOG").query(&mut admin).unwrap();
    assert!(log.is_empty());
}

/// Files under `dir` concatenated (RocksDB's WAL and tables).
fn read_tree(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(read_tree(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A user created through the leader can log in on a follower at once:
/// the follower, about to refuse, first catches up with the leader. Without
/// that, a follower learns of the commit only with the next heartbeat, and
/// these logins fail with WRONGPASS.
#[test]
fn a_user_just_created_can_log_in_on_any_node() {
    let cluster = super::shared_cluster();
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let mut admin = cluster.client(leader).unwrap();
    for i in 0..10 {
        let user = format!("fresh-{i}");
        let () = cmd("ACL")
            .arg(&["SETUSER", &user, "on", ">fresh-pass", "+ping"])
            .query(&mut admin)
            .unwrap();
        for node in cluster.others(leader) {
            let mut c = cluster
                .client_as(node, &user, "fresh-pass")
                .unwrap_or_else(|e| panic!("{user} on node {node}: {e}"));
            let pong: String = cmd("PING").query(&mut c).unwrap();
            assert_eq!(pong, "PONG");
        }
        // A wrong password is still refused, after the same catching up.
        let refused = cluster.client_as(cluster.others(leader)[0], &user, "wrong");
        assert!(refused.is_err(), "{user} logged in with a wrong password");
    }
}

#[test]
fn setuser_replicates_with_hashed_passwords() {
    let cluster = secure_cluster();
    let mut admin = cluster.client_as(0, "default", DEFAULT_PASS).unwrap();
    let password = "bob-plaintext-9c1e";
    let _: () = cmd("ACL")
        .arg(
            &[
                "SETUSER",
                "bob",
                "on",
                &format!(">{password}"),
                "~bob:*",
                "+@all",
            ][..],
        )
        .query(&mut admin)
        .unwrap();
    let _: () = cmd("SET")
        .arg("bob:marker")
        .arg("plain-marker-value-5d2")
        .query(&mut admin)
        .unwrap();
    // Every node knows bob (the command went through the log).
    settle(cluster);
    let mut bob = cluster.client_as(2, "bob", password).unwrap();
    let _: () = cmd("SET").arg("bob:1").arg("x").query(&mut bob).unwrap();
    let mut other = cluster.client_as(1, "default", DEFAULT_PASS).unwrap();
    let user: Value = cmd("ACL")
        .arg("GETUSER")
        .arg("bob")
        .query(&mut other)
        .unwrap();
    let text = format!("{user:?}");
    let hash =
        raftlimit_raft::acl::to_hex(&raftlimit_raft::acl::hash_password(password.as_bytes()));
    assert!(text.contains(&hash), "{text}");
    assert!(!text.contains(password));
    let list: Vec<String> = cmd("ACL").arg("LIST").query(&mut other).unwrap();
    let line = list.iter().find(|l| l.starts_with("user bob ")).unwrap();
    assert_eq!(
        line,
        &format!("user bob on sanitize-payload #{hash} ~bob:* resetchannels +@all")
    );
    for l in &list {
        assert!(!l.contains(password) && !l.contains(DEFAULT_PASS) && !l.contains(APP_PASS));
    }
    // A wrong password removal names the hash, never the password.
    let err = cmd("ACL")
        .arg(&["SETUSER", "bob", "<not-bobs-password"][..])
        .query::<()>(&mut other)
        .unwrap_err();
    assert!(code(&err).starts_with("ERR Error in ACL SETUSER modifier '!"));
    assert!(!code(&err).contains("not-bobs-password"));

    // Neither the Raft log nor the state machine's storage hold the password.
    for node in 0..cluster.len() {
        let files = read_tree(&cluster.data_dir(node));
        assert!(!contains(&files, password.as_bytes()), "node {node}");
        assert!(!contains(&files, DEFAULT_PASS.as_bytes()), "node {node}");
        if !contains(&files, b"plain-marker-value-5d2") {
            eprintln!("node {node}: storage is not plaintext; password check is vacuous");
        }
    }

    // DELUSER: everywhere, and bob's connections are closed.
    let deleted: i64 = cmd("ACL")
        .arg("DELUSER")
        .arg("bob")
        .query(&mut admin)
        .unwrap();
    assert_eq!(deleted, 1);
    settle(cluster);
    assert!(cmd("PING").query::<String>(&mut bob).is_err());
    let mut raw = Raw::connect(cluster.resp_addr(1));
    assert!(raw
        .call(&["AUTH", "bob", password])
        .starts_with("-WRONGPASS"));
}

#[test]
fn config_get_info_and_errors_hide_secrets() {
    let cluster = secure_cluster();
    let mut admin = cluster.client_as(1, "default", DEFAULT_PASS).unwrap();
    let cfg: Vec<String> = cmd("CONFIG")
        .arg(
            &[
                "GET",
                "requirepass",
                "masterauth",
                "protected-mode",
                "aclfile",
            ][..],
        )
        .query(&mut admin)
        .unwrap();
    assert_eq!(
        cfg,
        [
            "aclfile",
            "",
            "masterauth",
            "",
            "protected-mode",
            "yes",
            "requirepass",
            "(redacted)"
        ]
    );
    let all: Vec<String> = cmd("CONFIG").arg("GET").arg("*").query(&mut admin).unwrap();
    let info: String = cmd("INFO").arg("everything").query(&mut admin).unwrap();
    let clients: String = cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
    for text in [all.join(" "), info, clients] {
        assert!(!text.contains(DEFAULT_PASS) && !text.contains(APP_PASS));
    }
    // COMMAND INFO marks the commands allowed before AUTH.
    let info: Value = cmd("COMMAND")
        .arg("INFO")
        .arg("auth")
        .query(&mut admin)
        .unwrap();
    assert!(format!("{info:?}").contains("no_auth"));
}

#[test]
fn unauthenticated_request_limits() {
    let cluster = secure_cluster();
    let mut c = Raw::connect(cluster.resp_addr(0));
    c.send(b"*11\r\n");
    assert_eq!(
        c.line(),
        "-ERR Protocol error: unauthenticated multibulk length"
    );
    assert!(c.until_closed().is_empty());
    let mut c = Raw::connect(cluster.resp_addr(0));
    c.send(b"*1\r\n$16385\r\n");
    assert_eq!(c.line(), "-ERR Protocol error: unauthenticated bulk length");
    assert!(c.until_closed().is_empty());
    // The same requests are fine once authenticated.
    let mut c = Raw::connect(cluster.resp_addr(0));
    assert_eq!(c.call(&["AUTH", DEFAULT_PASS]), "+OK");
    let big = vec![b'x'; 20_000];
    c.command(&[b"SET", b"big:pre-auth", &big]);
    assert_eq!(c.line(), "+OK");
    let eleven: Vec<&[u8]> = std::iter::once(&b"MSET"[..])
        .chain(std::iter::repeat_n(&b"big:k"[..], 10))
        .collect();
    c.command(&eleven);
    assert_eq!(c.line(), "+OK");
}

/// Serves a loopback connection on node 0 as if it came from `peer`.
fn serve_as(cluster: &TestCluster, peer: &str) -> Raw {
    let shared = cluster.server(0).unwrap().shared().clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = Raw::connect(listener.local_addr().unwrap());
    let (stream, _) = listener.accept().unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            stream.set_nonblocking(true).unwrap();
            let stream = tokio::net::TcpStream::from_std(stream).unwrap();
            let local = stream.local_addr().unwrap();
            let info = shared.clients.register(peer, local);
            raftlimit_server::listener::serve_client(stream, info, shared, None).await;
        });
    });
    client
}

#[test]
fn protected_mode() {
    // No password: a non-loopback client is refused, loopback is served.
    let open = super::shared_cluster();
    let mut remote = serve_as(open, "203.0.113.9:40000");
    let got = String::from_utf8(remote.until_closed()).unwrap();
    assert_eq!(got, format!("-{}\r\n", auth::PROTECTED_MODE_DENIED));
    assert!(got.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."));
    let mut local = serve_as(open, "127.0.0.1:40000");
    assert_eq!(local.call(&["PING"]), "+PONG");
    let mut mapped = serve_as(open, "[::ffff:127.0.0.1]:40000");
    assert_eq!(mapped.call(&["PING"]), "+PONG");
    let mut c = open.client(0).unwrap();
    let cfg: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("protected-mode")
        .query(&mut c)
        .unwrap();
    assert_eq!(cfg, ["protected-mode", "yes"]);

    // With a password, remote clients get to authenticate.
    let secure = secure_cluster();
    let mut remote = serve_as(secure, "203.0.113.9:40001");
    assert_eq!(remote.call(&["PING"]), "-NOAUTH Authentication required.");
    assert_eq!(remote.call(&["AUTH", DEFAULT_PASS]), "+OK");
    assert_eq!(remote.call(&["PING"]), "+PONG");
}

#[test]
fn aclfile_users_and_protected_mode_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.acl");
    let hash = raftlimit_raft::acl::to_hex(&raftlimit_raft::acl::hash_password(b"ops-pass"));
    std::fs::write(
        &path,
        format!("# operators\nuser ops on #{hash} ~* &* +@all\nuser limiter on nopass ~rl:* +@limiter\n"),
    )
    .unwrap();
    let cluster = single_node(&format!(
        "protected_mode = \"no\"\naclfile = {:?}\n",
        path.display().to_string()
    ));
    let mut ops = cluster.client_as(0, "ops", "ops-pass").unwrap();
    let cfg: Vec<String> = cmd("CONFIG")
        .arg(&["GET", "aclfile", "protected-mode", "requirepass"][..])
        .query(&mut ops)
        .unwrap();
    assert_eq!(
        cfg,
        [
            "aclfile",
            &path.display().to_string(),
            "protected-mode",
            "no",
            "requirepass",
            ""
        ]
    );
    let users: Vec<String> = cmd("ACL").arg("USERS").query(&mut ops).unwrap();
    assert_eq!(users, ["default", "limiter", "ops"]);
    let mut lim = cluster.client_as(0, "limiter", "anything").unwrap();
    let reply: Vec<i64> = cmd("RL.CHECK")
        .arg(&["rl:x", "5", "1m"][..])
        .query(&mut lim)
        .unwrap();
    assert_eq!(reply[0], 1);
    let err = cmd("GET").arg("rl:x").query::<()>(&mut lim).unwrap_err();
    assert_eq!(
        code(&err),
        "NOPERM User limiter has no permissions to run the 'get' command"
    );
    // protected-mode no: a remote client is served although there is no password.
    let mut remote = serve_as(&cluster, "198.51.100.7:5000");
    assert_eq!(remote.call(&["PING"]), "+PONG");
}

#[test]
fn acl_subcommands() {
    let cluster = secure_cluster();
    let mut admin = cluster.client_as(2, "default", DEFAULT_PASS).unwrap();
    let cats: Vec<String> = cmd("ACL").arg("CAT").query(&mut admin).unwrap();
    assert!(cats.contains(&"limiter".into()) && cats.contains(&"dangerous".into()));
    let limiter: Vec<String> = cmd("ACL")
        .arg("CAT")
        .arg("limiter")
        .query(&mut admin)
        .unwrap();
    assert!(limiter.contains(&"rl.check".into()) && limiter.contains(&"cl.throttle".into()));
    let err = cmd("ACL")
        .arg("CAT")
        .arg("nope")
        .query::<()>(&mut admin)
        .unwrap_err();
    assert_eq!(code(&err), "ERR Unknown category 'nope'");
    let pass: String = cmd("ACL").arg("GENPASS").query(&mut admin).unwrap();
    assert_eq!(pass.len(), 64);
    let short: String = cmd("ACL")
        .arg("GENPASS")
        .arg("5")
        .query(&mut admin)
        .unwrap();
    assert_eq!(short.len(), 2);
    let dry: String = cmd("ACL")
        .arg(&["DRYRUN", "app", "SET", "app:1", "v"][..])
        .query(&mut admin)
        .unwrap();
    assert_eq!(dry, "OK");
    let dry: String = cmd("ACL")
        .arg(&["DRYRUN", "app", "FLUSHDB"][..])
        .query(&mut admin)
        .unwrap();
    assert_eq!(
        dry,
        "User app has no permissions to run the 'flushdb' command"
    );
    let dry: String = cmd("ACL")
        .arg(&["DRYRUN", "app", "GET", "secret:1"][..])
        .query(&mut admin)
        .unwrap();
    assert_eq!(dry, "No permissions to access the 'secret:1' key");
    let err = cmd("ACL")
        .arg("WHOAMI")
        .arg("x")
        .query::<()>(&mut admin)
        .unwrap_err();
    assert_eq!(
        code(&err),
        "ERR wrong number of arguments for 'acl|whoami' command"
    );
    let err = cmd("ACL").arg("NOPE").query::<()>(&mut admin).unwrap_err();
    assert_eq!(code(&err), "ERR unknown subcommand 'NOPE'. Try ACL HELP.");
    let err = cmd("ACL")
        .arg(&["SETUSER", "carl", "+nosuchcmd"][..])
        .query::<()>(&mut admin)
        .unwrap_err();
    assert_eq!(
        code(&err),
        "ERR Error in ACL SETUSER modifier '+nosuchcmd': Unknown command or category name in ACL"
    );
    let err = cmd("ACL")
        .arg("DELUSER")
        .arg("default")
        .query::<()>(&mut admin)
        .unwrap_err();
    assert_eq!(code(&err), "ERR The 'default' user cannot be removed");
    let user: Value = cmd("ACL")
        .arg("GETUSER")
        .arg("app")
        .query(&mut admin)
        .unwrap();
    let text = format!("{user:?}");
    assert!(
        text.contains("-@all +@read +@write +@limiter -@dangerous +acl|whoami"),
        "{text}"
    );
    assert!(!text.contains(APP_PASS));
}

#[test]
fn authenticate_as_hook() {
    let cluster = secure_cluster();
    let shared = cluster.server(0).unwrap().shared().clone();
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let info = shared.clients.register(addr, addr);
    let mut session = raftlimit_server::cmd::Session::new(info);
    auth::on_connect(&mut session, &shared);
    assert!(auth::auth_required(&mut session, &shared));
    assert!(auth::authenticate_as(&mut session, &shared, "nobody").is_err());
    assert!(auth::auth_required(&mut session, &shared));
    assert!(auth::authenticate_as(&mut session, &shared, "app").is_ok());
    assert!(!auth::auth_required(&mut session, &shared));
    assert_eq!(session.auth.user, "app");
    assert_eq!(session.info.lock().user, "app");
    shared.clients.unregister(session.id());
}

#[test]
fn acl_changes_survive_snapshots_restarts_and_catch_up() {
    let mut cluster = TestCluster::start(ClusterOptions {
        snapshot_every: 20,
        extra_toml: format!("requirepass = \"{DEFAULT_PASS}\"\n"),
        ..Default::default()
    })
    .unwrap();
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let lagging = (leader + 1) % 3;
    cluster.isolate(lagging);
    let mut admin = cluster.client_as(leader, "default", DEFAULT_PASS).unwrap();
    let _: () = cmd("ACL")
        .arg(&["SETUSER", "dave", "on", ">dave-pass", "~*", "+@all"][..])
        .query(&mut admin)
        .unwrap();
    let _: () = cmd("ACL")
        .arg(&["SETUSER", "default", ">second-default"][..])
        .query(&mut admin)
        .unwrap();
    for _ in 0..80 {
        let _: i64 = cmd("INCR").arg("snap:n").query(&mut admin).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = cluster.server(leader).unwrap().node().status();
        if status.snapshot_index.is_some_and(|i| i > 40) || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.snapshot_index.is_some_and(|i| i > 40), "{status:?}");
    // The isolated node catches up from a snapshot: the entries are purged.
    cluster.heal(lagging);
    cluster
        .wait_applied(status.applied_index, Duration::from_secs(20))
        .unwrap();
    let mut dave = cluster.client_as(lagging, "dave", "dave-pass").unwrap();
    let n: i64 = cmd("GET").arg("snap:n").query(&mut dave).unwrap();
    assert_eq!(n, 80);
    // A restarted node restores users from its own snapshot.
    cluster.kill(lagging);
    cluster.restart(lagging).unwrap();
    cluster
        .wait_applied(status.applied_index, Duration::from_secs(20))
        .unwrap();
    let mut dave = cluster.client_as(lagging, "dave", "dave-pass").unwrap();
    let who: String = cmd("ACL").arg("WHOAMI").query(&mut dave).unwrap();
    assert_eq!(who, "dave");
    let mut other = cluster
        .client_as(lagging, "default", "second-default")
        .unwrap();
    let _: String = cmd("PING").query(&mut other).unwrap();
    for node in 0..3 {
        let files = read_tree(&cluster.data_dir(node));
        for secret in ["dave-pass", "second-default"] {
            assert!(
                !contains(&files, secret.as_bytes()),
                "node {node}: {secret}"
            );
        }
    }
    // ACL LOAD forgets runtime changes on every node.
    let _: () = cmd("ACL").arg("LOAD").query(&mut admin).unwrap();
    settle(&cluster);
    let mut raw = Raw::connect(cluster.resp_addr(lagging));
    assert!(raw
        .call(&["AUTH", "dave", "dave-pass"])
        .starts_with("-WRONGPASS"));
}

#[test]
fn cross_protocol_attack_is_dropped() {
    let cluster = super::shared_cluster();
    let mut c = Raw::connect(cluster.resp_addr(0));
    c.send(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20\r\n\r\nSET attack:k pwned\r\n",
    );
    assert!(c.until_closed().is_empty());
    let mut c = Raw::connect(cluster.resp_addr(1));
    c.send(b"Host: evil.example\r\n");
    assert!(c.until_closed().is_empty());
    let mut check = cluster.client(2).unwrap();
    let v: Option<String> = cmd("GET").arg("attack:k").query(&mut check).unwrap();
    assert_eq!(v, None);
}

/// Resident and virtual memory of this process, in bytes.
fn memory() -> (u64, u64) {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let mut fields = statm
        .split_whitespace()
        .map(|f| f.parse::<u64>().unwrap() * 4096);
    let virt = fields.next().unwrap();
    let rss = fields.next().unwrap();
    (rss, virt)
}

/// Whether every byte sent over established loopback connections to `port`
/// has been read: no receive queue on the server's side and no send queue
/// on the clients' (`/proc/net/tcp`).
fn all_input_read(port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    let port_of = |addr: &str| addr.rsplit(':').next().and_then(hex);
    table.lines().skip(1).all(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Only established connections ("01") carry queued bytes.
        let [_, local, remote, "01", queues, ..] = fields[..] else {
            return true;
        };
        let Some((tx, rx)) = queues.split_once(':') else {
            return false;
        };
        let port = Some(u64::from(port));
        (port_of(local) != port || hex(rx) == Some(0))
            && (port_of(remote) != port || hex(tx) == Some(0))
    })
}

/// Waits until `node` serves `expected` clients.
fn wait_clients(cluster: &TestCluster, node: usize, expected: impl Fn(usize) -> bool) -> usize {
    let shared = cluster.server(node).unwrap().shared().clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = shared.clients.len();
        if expected(n) || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn huge_declared_lengths_allocate_nothing() {
    let cluster = single_node("");
    let addr = cluster.resp_addr(0);
    let (rss_before, virt_before) = memory();
    let mut held = Vec::new();
    for i in 0..40 {
        let mut c = Raw::connect(addr);
        if i % 2 == 0 {
            // Within proto-max-bulk-len (512 MiB): accepted, then waited for.
            c.send(b"*1\r\n$536870000\r\nabc");
        } else {
            // Within the multibulk limit (1M arguments).
            c.send(b"*1048576\r\n$3\r\nGET\r\n");
        }
        held.push(c);
    }
    wait_clients(&cluster, 0, |n| n >= 40);
    // Every byte sent has been read by the server (so its decoder has seen
    // every declared length).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !all_input_read(addr.port()) {
        assert!(Instant::now() < deadline, "the server left input unread");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (rss_after, virt_after) = memory();
    eprintln!(
        "40 hostile headers: resident +{} KiB, virtual +{} KiB",
        rss_after.saturating_sub(rss_before) >> 10,
        virt_after.saturating_sub(virt_before) >> 10
    );
    // Allocating up front would take 20 x 512 MiB of address space.
    assert!(
        virt_after.saturating_sub(virt_before) < 1 << 30,
        "virtual memory grew by {} MiB",
        (virt_after - virt_before) >> 20
    );
    assert!(
        rss_after.saturating_sub(rss_before) < 64 << 20,
        "resident memory grew by {} MiB",
        (rss_after - rss_before) >> 20
    );
    let mut c = cluster.client(0).unwrap();
    let _: String = cmd("PING").query(&mut c).unwrap();
    // Beyond the limits: an error, then the connection is closed.
    let mut c = Raw::connect(addr);
    c.send(b"*1\r\n$536870913\r\n");
    assert_eq!(c.line(), "-ERR Protocol error: invalid bulk length");
    assert!(c.until_closed().is_empty());
    let mut c = Raw::connect(addr);
    c.send(b"*1048577\r\n");
    assert_eq!(c.line(), "-ERR Protocol error: invalid multibulk length");
    assert!(c.until_closed().is_empty());
}

#[test]
fn truncated_frames_and_slow_clients_are_bounded_by_timeout() {
    let cluster = single_node("[limits]\ntimeout = 1\n");
    let addr = cluster.resp_addr(0);
    // A frame cut short, then the client half-closes: dropped, no reply.
    let mut cut = Raw::connect(addr);
    cut.send(b"*2\r\n$3\r\nGET\r\n$5\r\nab");
    cut.stream.shutdown(Shutdown::Write).unwrap();
    assert!(cut.until_closed().is_empty());
    // A client sending one byte at a time never completes a command; it
    // does not slow down others, and `timeout` closes it.
    let slow = std::thread::spawn(move || {
        let mut c = Raw::connect(addr);
        let started = Instant::now();
        for byte in b"*1\r\n$4\r\nPING\r\n".iter().cycle().take(40) {
            if c.stream.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
            let mut probe = [0u8; 64];
            c.stream.set_nonblocking(true).unwrap();
            let closed = matches!(c.stream.read(&mut probe), Ok(0));
            c.stream.set_nonblocking(false).unwrap();
            if closed {
                break;
            }
        }
        started.elapsed()
    });
    let mut fast = Raw::connect(addr);
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(fast.call(&["PING"]), "+PONG");
        assert!(started.elapsed() < Duration::from_millis(500));
        std::thread::sleep(Duration::from_millis(150));
    }
    let lasted = slow.join().unwrap();
    assert!(
        lasted < Duration::from_secs(5),
        "the slow client was served for {lasted:?}"
    );
    // An idle client is closed too.
    let mut idle = Raw::connect(addr);
    assert_eq!(idle.call(&["PING"]), "+PONG");
    let started = Instant::now();
    assert!(idle.until_closed().is_empty());
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn output_buffer_limit_closes_a_client_that_never_reads() {
    let cluster = single_node("[limits]\noutput_buffer_limit = 1048576\n");
    let addr = cluster.resp_addr(0);
    let mut c = cluster.client(0).unwrap();
    let value = vec![b'v'; 100 * 1024];
    let _: () = cmd("SET").arg("big").arg(&value[..]).query(&mut c).unwrap();
    let before = wait_clients(&cluster, 0, |n| n == 1);
    let mut greedy = TcpStream::connect(addr).unwrap();
    assert_eq!(wait_clients(&cluster, 0, |n| n == before + 1), before + 1);
    let shared = cluster.server(0).unwrap().shared().clone();
    let processed = || shared.stats.commands_processed.load(Ordering::Relaxed);
    let connected = || shared.clients.len() > before;
    // Send batches whose replies each fit under the limit, one at a time
    // (each processed before the next is sent), and never read. Once the
    // socket buffers are full, only a server that keeps reading requests
    // while its replies are stuck sees the output grow past the limit; one
    // that stops reading leaves the client hanging forever.
    let batch = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(5);
    let mut closed = false;
    'send: for _ in 0..1_000 {
        let done = processed() + 5;
        if greedy.write_all(&batch).is_err() {
            closed = true;
            break;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while processed() < done {
            if !connected() {
                closed = true;
                break 'send;
            }
            if Instant::now() > deadline {
                break 'send;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let _ = greedy.shutdown(Shutdown::Both);
    assert!(
        closed,
        "the server stopped reading instead of closing the client"
    );
    assert_eq!(wait_clients(&cluster, 0, |n| n == before), before);
    let _: String = cmd("PING").query(&mut c).unwrap();
    let got: Vec<u8> = cmd("GET").arg("big").query(&mut c).unwrap();
    assert_eq!(got.len(), value.len());
}

#[test]
fn maxclients_is_enforced() {
    let cluster = single_node("[limits]\nmaxclients = 3\n");
    let addr = cluster.resp_addr(0);
    let mut held: Vec<Raw> = (0..3).map(|_| Raw::connect(addr)).collect();
    let mut extra = Raw::connect(addr);
    assert_eq!(extra.line(), "-ERR max number of clients reached");
    assert!(extra.until_closed().is_empty());
    assert_eq!(held[0].call(&["PING"]), "+PONG");
    drop(held.pop());
    wait_clients(&cluster, 0, |n| n == 2);
    let mut again = Raw::connect(addr);
    assert_eq!(again.call(&["PING"]), "+PONG");
}

/// Raises this process's open-file limit towards `need` (up to the hard
/// limit) and returns the limit in force.
fn raise_nofile(need: u64) -> u64 {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    if soft < need {
        // Raising the hard limit needs privileges; the soft one does not.
        if rlimit::setrlimit(rlimit::Resource::NOFILE, need, need.max(hard)).is_err() {
            let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, need.min(hard), hard);
        }
    }
    rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap().0
}

/// The client side of `ten_thousand_idle_connections`, run by it as a child
/// process so that each process needs only 10 000 descriptors. Does nothing
/// when run as a test on its own.
#[test]
fn idle_connection_holder() {
    let (Ok(addr), Ok(count)) = (
        std::env::var("RAFTLIMIT_TEST_HOLD_ADDR"),
        std::env::var("RAFTLIMIT_TEST_HOLD_COUNT"),
    ) else {
        return;
    };
    let count: usize = count.parse().unwrap();
    raise_nofile(count as u64 + 100);
    let mut held = Vec::with_capacity(count);
    while held.len() < count {
        match TcpStream::connect(&addr) {
            Ok(stream) => held.push(stream),
            Err(err) => {
                eprintln!("connection {}: {err}", held.len());
                break;
            }
        }
    }
    println!("\nHELD {}", held.len());
    std::io::stdout().flush().unwrap();
    // Hold them until the parent closes our stdin.
    let _ = std::io::stdin().read(&mut [0u8; 1]);
}

/// Kills the child process if the test fails first.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ten_thousand_idle_connections() {
    const COUNT: usize = 10_000;
    let limit = raise_nofile(COUNT as u64 + 1_000);
    assert!(
        limit > COUNT as u64 + 500,
        "open-file limit {limit} is too low"
    );
    let cluster = single_node(&format!("[limits]\nmaxclients = {}\n", COUNT + 100));
    let addr = cluster.resp_addr(0);
    let (rss_before, _) = memory();
    let started = Instant::now();
    let mut child = Child(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "security::idle_connection_holder",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("RAFTLIMIT_TEST_HOLD_ADDR", addr.to_string())
            .env("RAFTLIMIT_TEST_HOLD_COUNT", COUNT.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            // The harness may print the test's name on the same line.
            if let Some(n) = line.split("HELD ").nth(1) {
                let _ = tx.send(n.trim().parse::<usize>().unwrap_or(0));
            }
        }
    });
    // A hang guard, not a performance bound. With a short accept backlog
    // (128, what `TcpListener::bind` gives) the holder's connects overflowed
    // it dozens of times, each costing a one-second SYN retransmission, and
    // took a minute; `limits.tcp_backlog` (4096) brought that to well under
    // a second.
    let held = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(held, COUNT);
    eprintln!("connected in {:?}", started.elapsed());
    let served = wait_clients(&cluster, 0, |n| n >= COUNT);
    assert_eq!(served, COUNT);
    eprintln!("served in {:?}", started.elapsed());
    let (rss_after, _) = memory();
    let per_connection = rss_after.saturating_sub(rss_before) / COUNT as u64;
    eprintln!("{COUNT} idle connections: {per_connection} bytes each on the server");
    assert!(
        per_connection < 32 * 1024,
        "{per_connection} bytes per idle connection"
    );
    // The node still answers promptly.
    let ping = Instant::now();
    let mut c = Raw::connect(addr);
    assert_eq!(c.call(&["PING"]), "+PONG");
    assert!(ping.elapsed() < Duration::from_secs(2));
    // Closing them all releases them all.
    drop(child.0.stdin.take());
    let left = wait_clients(&cluster, 0, |n| n <= 1);
    assert!(left <= 1, "{left} connections left after closing");
    eprintln!("released in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));
}
