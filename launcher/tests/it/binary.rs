//! `raftlimit-cluster up --json --control`, as the Python suite drives it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use raftlimit_launcher::server_binary;
use redis::Commands;

#[test]
fn up_prints_the_cluster_and_obeys_its_control_commands() {
    let mut launcher = Command::new(env!("CARGO_BIN_EXE_raftlimit-cluster"))
        .args(["up", "--json", "--control", "--name", "raftlimit-bin-test"])
        .env("RAFTLIMIT_SERVER_BIN", server_binary().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = launcher.stdin.take().unwrap();
    let mut stdout = BufReader::new(launcher.stdout.take().unwrap());
    let mut ask = |command: &str| -> serde_json::Value {
        if !command.is_empty() {
            writeln!(stdin, "{command}").unwrap();
        }
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    };
    let info = ask("");
    assert_eq!(info["name"], "raftlimit-bin-test");
    let nodes = info["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 3);
    let leader = info["leader"].as_u64().unwrap();
    let addr = |id: u64| nodes[id as usize - 1]["addr"].as_str().unwrap().to_owned();
    let pid = |id: u64| nodes[id as usize - 1]["pid"].as_u64().unwrap();
    let mut c = redis::Client::open(format!("redis://{}/", addr(leader % 3 + 1)))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    let _: () = c.set("bin:k", "v").unwrap();

    let answer = ask(&format!("kill {leader}"));
    assert_eq!(answer["ok"], "kill", "{answer}");
    assert!(answer["pid"].is_null());
    assert!(!std::path::Path::new(&format!("/proc/{}", pid(leader))).exists());
    let new_leader = ask("leader")["leader"].as_u64().unwrap();
    assert_ne!(new_leader, leader);
    let answer = ask(&format!("start {leader}"));
    assert_eq!(answer["ok"], "start", "{answer}");
    assert!(answer["pid"].as_u64().is_some());
    assert!(ask("bogus")["error"]
        .as_str()
        .unwrap()
        .contains("unknown command"));
    let info = ask("info");
    let pids: Vec<u64> = info["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pid"].as_u64().unwrap())
        .collect();
    let dir = info["dir"].as_str().unwrap().to_owned();

    // Closing stdin stops every node and removes the temporary directory.
    drop(stdin);
    let status = launcher.wait().unwrap();
    assert!(status.success(), "{status}");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{pid}"
        );
    }
    assert!(!std::path::Path::new(&dir).exists(), "{dir}");
}
