//! Membership changes: RAFT.REMOVE demotes a voter to a learner, RAFT.ADD
//! promotes it again once it has caught up, the change is replicated and
//! survives restarts, and the refused cases answer with their exact errors.

use std::time::{Duration, Instant};

use raftlimit_testkit::TestCluster;
use redis::{cmd, Commands, Value};

use super::cluster;

/// `ERR text` of a Redis error reply, as the server sent it.
fn error_text(err: &redis::RedisError) -> String {
    format!(
        "{} {}",
        err.code().unwrap_or("?"),
        err.detail().unwrap_or("")
    )
}

/// Sends a membership command to `node` and returns `OK` or the error text.
fn change(cluster: &TestCluster, node: usize, command: &str, id: impl ToString) -> String {
    let mut c = cluster.client(node).unwrap();
    match cmd(command).arg(id.to_string()).query::<String>(&mut c) {
        Ok(ok) => ok,
        Err(err) => error_text(&err),
    }
}

/// RAFT.MEMBERS on `node`: each node's id and role, by id.
fn members(cluster: &TestCluster, node: usize) -> Vec<(u64, String)> {
    let mut c = cluster.client(node).unwrap();
    let reply: Value = cmd("RAFT.MEMBERS").query(&mut c).unwrap();
    let Value::Array(nodes) = reply else {
        panic!("RAFT.MEMBERS answered {reply:?}")
    };
    nodes
        .into_iter()
        .map(|entry| {
            let fields: Vec<Value> = match entry {
                Value::Array(fields) => fields,
                Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                other => panic!("member entry {other:?}"),
            };
            let mut id = None;
            let mut role = None;
            for pair in fields.chunks(2) {
                match (&pair[0], &pair[1]) {
                    (Value::BulkString(k), Value::Int(v)) if k == b"id" => id = Some(*v as u64),
                    (Value::BulkString(k), Value::BulkString(v)) if k == b"role" => {
                        role = Some(String::from_utf8_lossy(v).into_owned())
                    }
                    _ => {}
                }
            }
            (id.unwrap(), role.unwrap())
        })
        .collect()
}

/// The ids with `role` in `members`.
fn with_role(members: &[(u64, String)], role: &str) -> Vec<u64> {
    members
        .iter()
        .filter(|(_, r)| r == role)
        .map(|(id, _)| *id)
        .collect()
}

/// Waits until every running node reports exactly `voters` as voters and
/// `learners` as learners.
fn wait_members(cluster: &TestCluster, voters: &[u64], learners: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let views: Vec<_> = (0..cluster.len())
            .filter(|&n| cluster.is_running(n))
            .map(|n| members(cluster, n))
            .collect();
        if views
            .iter()
            .all(|m| with_role(m, "voter") == voters && with_role(m, "learner") == learners)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected voters {voters:?} and learners {learners:?}, nodes report {views:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn id(index: usize) -> u64 {
    index as u64 + 1
}

#[test]
fn removed_follower_becomes_learner_and_catches_up_when_added_back() {
    let (mut cluster, leader) = cluster();
    let others = cluster.others(leader);
    let (removed, other) = (others[0], others[1]);
    // Sent to the other follower: it forwards the change to the leader.
    assert_eq!(change(&cluster, other, "RAFT.REMOVE", id(removed)), "OK");
    let mut voters = vec![id(leader), id(other)];
    voters.sort_unstable();
    wait_members(&cluster, &voters, &[id(removed)]);

    // Two voters still commit, through any node, the learner included.
    for node in 0..cluster.len() {
        let mut c = cluster.client(node).unwrap();
        let () = c.set("member:k", format!("v{node}")).unwrap();
    }
    let mut c = cluster.client(other).unwrap();
    let () = c.set("member:k", "latest").unwrap();

    // Added back through the learner itself.
    assert_eq!(change(&cluster, removed, "RAFT.ADD", id(removed)), "OK");
    wait_members(&cluster, &[1, 2, 3], &[]);
    let commit = cluster.server(leader).unwrap().node().status().commit_index;
    cluster
        .wait_applied(commit, Duration::from_secs(10))
        .unwrap();
    let mut c = cluster.client(removed).unwrap();
    let value: String = c.get("member:k").unwrap();
    assert_eq!(value, "latest");

    // It votes again: with the other follower down, the leader and the
    // re-added node are the majority that commits.
    cluster.kill(other);
    let mut c = cluster.client(leader).unwrap();
    let () = c.set("member:after", "1").unwrap();
    let mut c = cluster.client(removed).unwrap();
    let value: String = c.get("member:after").unwrap();
    assert_eq!(value, "1");
}

#[test]
fn removing_the_leader_elects_another() {
    let (cluster, leader) = cluster();
    let follower = cluster.others(leader)[0];
    assert_eq!(change(&cluster, follower, "RAFT.REMOVE", id(leader)), "OK");
    let mut voters: Vec<u64> = cluster.others(leader).into_iter().map(id).collect();
    voters.sort_unstable();
    wait_members(&cluster, &voters, &[id(leader)]);
    // The old leader steps down once the configuration without it applies;
    // the remaining voters elect one of them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.wait_for_leader(Duration::from_secs(10)).unwrap() == leader {
        assert!(Instant::now() < deadline, "the removed leader still leads");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Writes continue, also through the old leader, now a learner.
    for node in 0..cluster.len() {
        let mut c = cluster.client(node).unwrap();
        let () = c.set(format!("member:l{node}"), "x").unwrap();
    }
    assert_eq!(change(&cluster, leader, "RAFT.ADD", id(leader)), "OK");
    wait_members(&cluster, &[1, 2, 3], &[]);
    let mut c = cluster.client(leader).unwrap();
    let () = c.set("member:back", "1").unwrap();
}

#[test]
fn membership_survives_a_full_restart() {
    let (mut cluster, leader) = cluster();
    let removed = cluster.others(leader)[0];
    assert_eq!(change(&cluster, leader, "RAFT.REMOVE", id(removed)), "OK");
    let mut voters: Vec<u64> = (0..cluster.len())
        .filter(|&n| n != removed)
        .map(id)
        .collect();
    voters.sort_unstable();
    wait_members(&cluster, &voters, &[id(removed)]);
    let commit = cluster.server(leader).unwrap().node().status().commit_index;
    cluster
        .wait_applied(commit, Duration::from_secs(10))
        .unwrap();

    for node in 0..cluster.len() {
        cluster.stop(node);
    }
    for node in 0..cluster.len() {
        cluster.restart(node).unwrap();
    }
    cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    // The static configuration lists three voters; the log says two, and
    // keeps saying it.
    wait_members(&cluster, &voters, &[id(removed)]);
    // And keeps saying it as the log grows: a new entry is applied
    // everywhere, and the membership is still the log's.
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let mut c = cluster.client(leader).unwrap();
    let () = c.set("member:after-restart", "1").unwrap();
    let commit = cluster.server(leader).unwrap().node().status().commit_index;
    cluster
        .wait_applied(commit, Duration::from_secs(10))
        .unwrap();
    wait_members(&cluster, &voters, &[id(removed)]);
    let mut c = cluster.client(removed).unwrap();
    let () = c.set("member:restarted", "1").unwrap();

    assert_eq!(change(&cluster, removed, "RAFT.ADD", id(removed)), "OK");
    wait_members(&cluster, &[1, 2, 3], &[]);
}

#[test]
fn refused_changes_say_why() {
    let (cluster, leader) = cluster();
    let others = cluster.others(leader);
    let node = others[0];
    let cases = [
        ("RAFT.ADD", "2", "ERR node 2 is already a voter"),
        (
            "RAFT.ADD",
            "9",
            "ERR node 9 is not in the cluster configuration; only configured nodes can be added",
        ),
        ("RAFT.REMOVE", "9", "ERR unknown node id 9"),
        ("RAFT.REMOVE", "x", "ERR invalid node id 'x'"),
        ("RAFT.ADD", "0", "ERR invalid node id '0'"),
    ];
    for (command, arg, expected) in cases {
        assert_eq!(
            change(&cluster, node, command, arg),
            expected,
            "{command} {arg}"
        );
    }
    let mut c = cluster.client(node).unwrap();
    let err = cmd("RAFT.ADD").query::<String>(&mut c).unwrap_err();
    assert_eq!(
        error_text(&err),
        "ERR wrong number of arguments for 'raft.add' command"
    );

    // Down to the leader alone, which cannot be removed.
    for &f in &others {
        assert_eq!(change(&cluster, node, "RAFT.REMOVE", id(f)), "OK");
    }
    let mut learners: Vec<u64> = others.iter().copied().map(id).collect();
    learners.sort_unstable();
    wait_members(&cluster, &[id(leader)], &learners);
    assert_eq!(
        change(&cluster, node, "RAFT.REMOVE", id(leader)),
        format!(
            "ERR node {} is the last voter and cannot be removed",
            id(leader)
        )
    );
    assert_eq!(
        change(&cluster, node, "RAFT.REMOVE", id(others[1])),
        format!("ERR node {} is not a voter", id(others[1]))
    );
    // A single voter still commits.
    let () = c.set("member:alone", "1").unwrap();
    for &f in &others {
        assert_eq!(change(&cluster, leader, "RAFT.ADD", id(f)), "OK");
    }
    wait_members(&cluster, &[1, 2, 3], &[]);
}

#[test]
fn membership_commands_are_admin_commands() {
    let (cluster, leader) = cluster();
    let mut admin = cluster.client(leader).unwrap();
    let () = cmd("ACL")
        .arg(&[
            "SETUSER",
            "member-app",
            "on",
            ">secret",
            "+@all",
            "-@admin",
            "~*",
        ])
        .query(&mut admin)
        .unwrap();
    let mut c = cluster.client_as(leader, "member-app", "secret").unwrap();
    for command in ["RAFT.MEMBERS", "RAFT.REMOVE 2", "RAFT.ADD 2"] {
        let mut parts = command.split(' ');
        let mut call = cmd(parts.next().unwrap());
        for arg in parts {
            call.arg(arg);
        }
        let err = call.query::<Value>(&mut c).unwrap_err();
        assert_eq!(err.code(), Some("NOPERM"), "{command}: {err}");
    }
    let info: Value = cmd("COMMAND")
        .arg(&["INFO", "raft.remove"])
        .query(&mut admin)
        .unwrap();
    let text = format!("{info:?}");
    for category in ["@admin", "@slow", "@dangerous"] {
        assert!(text.contains(category), "{category} missing from {text}");
    }
    let admin_commands: Vec<String> = cmd("ACL").arg(&["CAT", "admin"]).query(&mut admin).unwrap();
    for name in ["raft.add", "raft.members", "raft.remove"] {
        assert!(
            admin_commands.iter().any(|c| c == name),
            "ACL CAT admin lacks {name}: {admin_commands:?}"
        );
    }
}
