//! The `raftlimit` binary against a real cluster: output, exit codes,
//! environment variables.

use std::process::{Command, Output};
use std::time::Duration;

use crate::support::Env;

fn raftlimit(env: &Env, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftlimit"))
        .args(args)
        .env("RAFTLIMIT_URL", env.url())
        .env("RAFTLIMIT_TIMEOUT", "10s")
        .output()
        .expect("run raftlimit")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn limiter_commands_and_exit_codes() {
    let env = Env::start();
    let out = raftlimit(&env, &["check", "cli:k", "2", "1m"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("allowed limit=2 remaining=1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(code(&raftlimit(&env, &["check", "cli:k", "2", "1m"])), 0);
    let denied = raftlimit(&env, &["--json", "check", "cli:k", "2", "1m"]);
    assert_eq!(code(&denied), 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&denied)).unwrap();
    assert_eq!(json["allowed"], false);
    assert!(json["retry_after_ms"].as_i64().unwrap() > 0);
    // peek changes nothing and exits like check.
    assert_eq!(code(&raftlimit(&env, &["peek", "cli:k", "2", "1m"])), 1);
    assert_eq!(code(&raftlimit(&env, &["peek", "cli:fresh", "2", "1m"])), 0);
    assert_eq!(stdout(&raftlimit(&env, &["reset", "cli:k"])).trim(), "1");
    assert_eq!(
        code(&raftlimit(
            &env,
            &["check", "cli:k", "2", "1m", "--cost", "2"]
        )),
        0
    );

    let m = raftlimit(&env, &["mcheck", "cli:a=1/1m", "cli:b=5/1m"]);
    assert_eq!(code(&m), 0, "{}", stderr(&m));
    assert_eq!(
        code(&raftlimit(&env, &["mcheck", "cli:a=1/1m", "cli:b=5/1m"])),
        1
    );

    // Policies.
    assert_eq!(
        code(&raftlimit(
            &env,
            &["policy", "set", "cli", "100", "1m", "--burst", "10"]
        )),
        0
    );
    let got = raftlimit(&env, &["policy", "get", "cli"]);
    assert_eq!(
        stdout(&got).trim(),
        "cli: limit=100 period=1m burst=10 algo=gcra"
    );
    assert_eq!(code(&raftlimit(&env, &["policy", "get", "none"])), 1);
    assert_eq!(stdout(&raftlimit(&env, &["policy", "list"])).trim(), "cli");
    let with_policy = raftlimit(&env, &["--json", "check", "cli:p", "--policy", "cli"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&with_policy)).unwrap();
    assert_eq!(
        (json["limit"].as_u64(), json["remaining"].as_u64()),
        (Some(10), Some(9))
    );
    assert_eq!(code(&raftlimit(&env, &["policy", "del", "cli"])), 0);
    assert_eq!(code(&raftlimit(&env, &["policy", "del", "cli"])), 1);
    assert_eq!(
        stdout(&raftlimit(&env, &["leases", "cli:none"])).trim(),
        "0"
    );

    // Errors exit 2 with a message: a server error, a bad URL, bad arguments.
    let err = raftlimit(&env, &["check", "cli:x", "0", "1m"]);
    assert_eq!(code(&err), 2);
    assert!(stderr(&err).contains("limit must be"), "{}", stderr(&err));
    let bad = Command::new(env!("CARGO_BIN_EXE_raftlimit"))
        .args(["--url", "http://nope", "check", "k", "1", "1s"])
        .output()
        .unwrap();
    assert_eq!(code(&bad), 2);
    assert_eq!(code(&raftlimit(&env, &["check"])), 2);
    assert_eq!(code(&raftlimit(&env, &["--help"])), 0);
    assert_eq!(code(&raftlimit(&env, &["policy", "--help"])), 0);
}

#[test]
fn status_watch_and_failover() {
    let mut env = Env::start();
    let leader = env
        .cluster
        .wait_for_leader(Duration::from_secs(10))
        .unwrap();
    let status = raftlimit(&env, &["--json", "status"]);
    assert_eq!(code(&status), 0, "{}{}", stdout(&status), stderr(&status));
    let json: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(json["leader"].as_u64(), Some(leader as u64 + 1));
    assert_eq!(json["healthy"], true);
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        assert_eq!(n["reachable"], true);
        assert_eq!(n["membership"], "voter");
        assert_eq!(n["ready"], true);
        let expected = if n["id"].as_u64() == Some(leader as u64 + 1) {
            "leader"
        } else {
            "follower"
        };
        assert_eq!(n["role"], expected);
    }
    let table = stdout(&raftlimit(&env, &["status"]));
    assert!(table.starts_with("NODE"), "{table}");
    assert!(
        table.contains(&format!("leader: node {}", leader + 1)),
        "{table}"
    );

    // watch: rates from every node's /metrics, after some checks.
    let urls: Vec<String> = (0..3)
        .map(|i| format!("http://{}/metrics", env.cluster.http_addr(i)))
        .collect();
    for _ in 0..5 {
        raftlimit(&env, &["check", "watch:k", "100", "1m"]);
    }
    let watch = raftlimit(
        &env,
        &[
            "--json",
            "watch",
            "--metrics",
            &urls.join(","),
            "--interval",
            "200ms",
            "--count",
            "1",
        ],
    );
    assert_eq!(code(&watch), 0, "{}", stderr(&watch));
    let sample: serde_json::Value = serde_json::from_str(stdout(&watch).trim()).unwrap();
    assert!(sample["policies"].is_object(), "{sample}");
    assert_eq!(sample["unreachable"].as_array().map(Vec::len), Some(0));

    // failover: the server does not have RAFT.TRANSFER yet; the tool says so.
    let failover = raftlimit(&env, &["failover"]);
    if code(&failover) == 0 {
        assert!(stdout(&failover).starts_with("OK"), "{}", stdout(&failover));
    } else {
        assert_eq!(code(&failover), 2);
        assert!(
            stderr(&failover).contains("RAFT.TRANSFER"),
            "{}",
            stderr(&failover)
        );
    }

    // A node down: status says so and exits 1.
    let follower = env.cluster.others(leader)[0];
    env.cluster.kill(follower);
    let degraded = raftlimit(&env, &["--json", "status"]);
    assert_eq!(code(&degraded), 1, "{}", stdout(&degraded));
    let json: serde_json::Value = serde_json::from_str(&stdout(&degraded)).unwrap();
    let down: Vec<_> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "down")
        .collect();
    assert_eq!(down.len(), 1);
}
