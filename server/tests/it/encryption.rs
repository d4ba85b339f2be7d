//! Encryption at rest through real clusters: no user data reaches the disk
//! in plaintext (with a control run that must find it), a wrong or missing
//! key or a tampered record stops a node without touching its data, and key
//! rotation re-seals everything so the old key can be removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use raftlimit_raft::storage::crypto::FORMAT_V1;
use raftlimit_raft::storage::{KeyId, Keyring};
use raftlimit_server::keys;
use raftlimit_testkit::{ClusterOptions, TestCluster};
use redis::Commands;

const KEY_MARKER: &str = "KEYMARK-5b2e91d3-user-key";
const VALUE_MARKER: &str = "VALMARK-c47a08f6-user-value";
const KEYS: usize = 40;

fn start(options: ClusterOptions) -> (TestCluster, usize) {
    let cluster = TestCluster::start(options).expect("cluster starts");
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .expect("leader elected");
    (cluster, leader)
}

fn key(batch: &str, i: usize) -> String {
    format!("{KEY_MARKER}:{batch}:{i}")
}

fn value(batch: &str, i: usize) -> String {
    format!("{VALUE_MARKER}:{batch}:{i}")
}

/// Writes a batch of marked keys and values, then waits until every running
/// node has applied them.
fn write_batch(cluster: &TestCluster, leader: usize, batch: &str) {
    let mut c = cluster.client(leader).unwrap();
    for i in 0..KEYS {
        let () = c.set(key(batch, i), value(batch, i)).unwrap();
    }
    let () = redis::cmd("SETEX")
        .arg(key(batch, KEYS))
        .arg(100_000)
        .arg(value(batch, KEYS))
        .query(&mut c)
        .unwrap();
    let () = c.append(key(batch, 0), VALUE_MARKER).unwrap();
    let commit = cluster.server(leader).unwrap().node().status().commit_index;
    cluster
        .wait_applied(commit, Duration::from_secs(10))
        .unwrap();
}

/// Checks a batch through the cluster and in `node`'s own applied state.
fn check_batch(cluster: &TestCluster, node: usize, batch: &str) {
    let mut c = cluster.client(node).unwrap();
    for i in 1..KEYS {
        let v: Option<String> = c.get(key(batch, i)).unwrap();
        assert_eq!(v, Some(value(batch, i)), "{}", key(batch, i));
    }
    let state = cluster.server(node).unwrap().node().state().read();
    for i in 0..=KEYS {
        assert!(
            state.data.keyspace.contains(key(batch, i).as_bytes(), 0),
            "node {node} lacks {}",
            key(batch, i)
        );
    }
}

/// On every running node: snapshot, wait for it, then flush and compact.
fn snapshot_and_compact(cluster: &TestCluster) {
    for node in (0..cluster.len()).filter(|&n| cluster.is_running(n)) {
        let raft = cluster.server(node).unwrap().node().clone();
        let applied = raft.status().applied_index;
        cluster
            .block_on(node, raft.trigger_snapshot())
            .unwrap()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while raft.status().snapshot_index.unwrap_or(0) < applied {
            assert!(Instant::now() < deadline, "node {node} built no snapshot");
            std::thread::sleep(Duration::from_millis(20));
        }
        raft.compact_storage().unwrap();
    }
}

/// Every file under `dir`, with its content.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What a search of one node's data directory found.
#[derive(Debug, Default)]
struct Scan {
    files: usize,
    bytes: usize,
    /// RocksDB files by kind: `sst`, `wal`, `info-log`, `manifest`.
    kinds: BTreeMap<&'static str, usize>,
    /// (file, needle) pairs.
    hits: Vec<(PathBuf, String)>,
}

fn scan(dir: &Path, needles: &[&[u8]]) -> Scan {
    let mut scan = Scan::default();
    for (path, bytes) in files(dir) {
        scan.files += 1;
        scan.bytes += bytes.len();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let kind = if name.ends_with(".sst") {
            "sst"
        } else if name.ends_with(".log") {
            "wal"
        } else if name.starts_with("LOG") {
            "info-log"
        } else if name.starts_with("MANIFEST") {
            "manifest"
        } else {
            "other"
        };
        *scan.kinds.entry(kind).or_default() += 1;
        for needle in needles {
            if contains(&bytes, needle) {
                scan.hits
                    .push((path.clone(), String::from_utf8_lossy(needle).into_owned()));
            }
        }
    }
    scan
}

/// Writes marked data through a cluster, snapshots, flushes and compacts,
/// then searches every file of every node for the markers: once while the
/// nodes run and once after they stopped. Returns the scans per node.
fn marker_run(encryption: Option<KeyId>) -> Vec<(Scan, Scan)> {
    let (mut cluster, leader) = start(ClusterOptions {
        encryption,
        ..ClusterOptions::default()
    });
    write_batch(&cluster, leader, "a");
    snapshot_and_compact(&cluster);
    // More entries after the snapshot: they sit in the WAL and memtables.
    write_batch(&cluster, leader, "b");
    let needles: [&[u8]; 2] = [KEY_MARKER.as_bytes(), VALUE_MARKER.as_bytes()];
    let mut running = Vec::new();
    for node in 0..cluster.len() {
        let usage = cluster
            .server(node)
            .unwrap()
            .node()
            .storage_key_usage()
            .unwrap();
        match encryption {
            Some(id) => assert_eq!(
                usage.keys().copied().collect::<Vec<_>>(),
                vec![id],
                "node {node}"
            ),
            None => assert!(usage.is_empty()),
        }
        running.push(scan(&cluster.data_dir(node), &needles));
    }
    for node in 0..cluster.len() {
        cluster.stop(node);
    }
    let scans: Vec<(Scan, Scan)> = running
        .into_iter()
        .enumerate()
        .map(|(node, running)| (running, scan(&cluster.data_dir(node), &needles)))
        .collect();
    for (node, (running, stopped)) in scans.iter().enumerate() {
        eprintln!(
            "encryption {encryption:?}, node {node}: running: {} files, {} bytes, {:?}, {} hits; stopped: {} files, {} bytes, {:?}, {} hits: {:?}",
            running.files,
            running.bytes,
            running.kinds,
            running.hits.len(),
            stopped.files,
            stopped.bytes,
            stopped.kinds,
            stopped.hits.len(),
            stopped.hits,
        );
        // The search covered RocksDB's tables, WAL and info log.
        for scan in [running, stopped] {
            for kind in ["sst", "wal", "info-log", "manifest"] {
                assert!(
                    scan.kinds.get(kind).copied().unwrap_or(0) > 0,
                    "node {node} has no {kind} file"
                );
            }
        }
    }
    scans
}

#[test]
fn encrypted_cluster_writes_no_plaintext_to_disk() {
    for (node, (running, stopped)) in marker_run(Some(1)).into_iter().enumerate() {
        assert!(
            running.hits.is_empty(),
            "node {node} (running) leaks: {:?}",
            running.hits
        );
        assert!(
            stopped.hits.is_empty(),
            "node {node} (stopped) leaks: {:?}",
            stopped.hits
        );
    }
}

/// The control: the same run without encryption must find both markers on
/// every node, so the search above can fail.
#[test]
fn plaintext_control_run_finds_the_markers() {
    for (node, (running, stopped)) in marker_run(None).into_iter().enumerate() {
        for scan in [running, stopped] {
            for marker in [KEY_MARKER, VALUE_MARKER] {
                assert!(
                    scan.hits.iter().any(|(_, needle)| needle == marker),
                    "node {node}: {marker} not found: {:?}",
                    scan.hits
                );
            }
            assert!(scan
                .hits
                .iter()
                .any(|(path, _)| path.to_string_lossy().ends_with(".sst")));
        }
    }
}

fn restart_error(cluster: &mut TestCluster, node: usize) -> String {
    match cluster.restart(node) {
        Ok(()) => panic!("node {node} started"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn wrong_or_missing_key_refuses_to_start_and_leaves_the_data_untouched() {
    let (mut cluster, leader) = start(ClusterOptions::encrypted());
    write_batch(&cluster, leader, "a");
    let node = cluster.others(leader)[0];
    cluster.stop(node);
    let dir = cluster.data_dir(node);
    let key_file = cluster.key_file(node).unwrap();
    let right_key = std::fs::read(&key_file).unwrap();
    let before = files(&dir);

    // Another key under the same id.
    keys::write_key_file(&key_file, &Keyring::generate(1).unwrap(), true).unwrap();
    let err = restart_error(&mut cluster, node);
    assert!(err.contains("wrong encryption key: key id 1"), "{err}");
    assert_eq!(files(&dir), before, "the data directory is unchanged");

    // A key file that lacks the database's key id.
    keys::write_key_file(&key_file, &Keyring::generate(7).unwrap(), true).unwrap();
    let err = restart_error(&mut cluster, node);
    assert!(
        err.contains("sealed with encryption key id 1, which is not in the keyring"),
        "{err}"
    );
    assert_eq!(files(&dir), before);

    // No key file at all.
    std::fs::remove_file(&key_file).unwrap();
    let err = restart_error(&mut cluster, node);
    assert!(
        err.contains("key file") && err.contains("No such file"),
        "{err}"
    );
    assert_eq!(files(&dir), before);

    // Encryption switched off for an encrypted data directory.
    cluster.config_mut(node).encryption.enabled = false;
    cluster.config_mut(node).encryption.key_file = None;
    let err = restart_error(&mut cluster, node);
    assert!(
        err.contains("was created with encryption at rest, but no encryption keys are configured"),
        "{err}"
    );
    assert_eq!(files(&dir), before);

    // With its key back, the node starts with all its data and catches up.
    std::fs::write(&key_file, right_key).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    cluster.config_mut(node).encryption.enabled = true;
    cluster.config_mut(node).encryption.key_file = Some(key_file);
    cluster.restart(node).unwrap();
    write_batch(&cluster, leader, "b");
    check_batch(&cluster, node, "a");
    check_batch(&cluster, node, "b");
}

#[test]
fn plaintext_data_directory_refuses_a_key() {
    let (mut cluster, leader) = start(ClusterOptions::default());
    write_batch(&cluster, leader, "a");
    let node = cluster.others(leader)[0];
    cluster.stop(node);
    let dir = cluster.data_dir(node);
    let before = files(&dir);
    let key_file = dir.parent().unwrap().join("late.keys");
    keys::create_key_file(&key_file).unwrap();
    cluster.config_mut(node).encryption.enabled = true;
    cluster.config_mut(node).encryption.key_file = Some(key_file);
    let err = restart_error(&mut cluster, node);
    assert!(
        err.contains("was created without encryption, but encryption keys are configured"),
        "{err}"
    );
    assert_eq!(files(&dir), before);
    cluster.config_mut(node).encryption.enabled = false;
    cluster.config_mut(node).encryption.key_file = None;
    cluster.restart(node).unwrap();
    check_batch(&cluster, node, "a");
}

/// Opens a stopped node's RocksDB directly, as someone with access to the
/// disk could, and applies `change` to one raw value.
fn edit_raw(dir: &Path, cf: &str, key: &[u8], change: impl FnOnce(&mut Vec<u8>)) {
    let path = dir.join("raft");
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).unwrap();
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, cfs).unwrap();
    let handle = db.cf_handle(cf).unwrap();
    let mut value = db.get_cf(handle, key).unwrap().unwrap();
    change(&mut value);
    db.put_cf(handle, key, value).unwrap();
}

#[test]
fn tampered_record_stops_the_node_with_a_clear_error() {
    let (mut cluster, leader) = start(ClusterOptions::encrypted());
    write_batch(&cluster, leader, "a");
    snapshot_and_compact(&cluster);
    let node = cluster.others(leader)[0];
    cluster.stop(node);
    let dir = cluster.data_dir(node);

    let middle = |v: &mut Vec<u8>| {
        let at = v.len() / 2;
        v[at] ^= 0x20;
    };
    let snapshot = dir.join("snapshots").join("current.snap");
    let edit_file = |change: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = std::fs::read(&snapshot).unwrap();
        change(&mut bytes);
        std::fs::write(&snapshot, bytes).unwrap();
    };
    edit_file(&middle);
    let err = restart_error(&mut cluster, node);
    assert!(err.contains("record snapshot-file/"), "{err}");
    assert!(
        err.contains("failed authentication under encryption key id 1"),
        "{err}"
    );
    assert!(err.contains("tampered"), "{err}");
    // Flipping the same bit back restores the genuine file: the refused
    // start destroyed nothing.
    edit_file(&middle);

    edit_raw(&dir, "meta", b"vote", |v| v[3] ^= 0x01);
    let err = restart_error(&mut cluster, node);
    assert!(
        err.contains("record meta/vote is sealed with encryption key id"),
        "{err}"
    );
    edit_raw(&dir, "meta", b"vote", |v| v[3] ^= 0x01);

    cluster.restart(node).unwrap();
    check_batch(&cluster, node, "a");
}

#[test]
fn key_rotation_reseals_everything_and_the_old_key_can_be_removed() {
    // Distinctive ids, so their record headers can be searched for in files.
    const A: KeyId = 0x0a0b_0c01;
    const B: KeyId = A + 1;
    let header = |id: KeyId| [&[FORMAT_V1][..], &id.to_be_bytes()].concat();
    let (mut cluster, leader) = start(ClusterOptions {
        encryption: Some(A),
        ..ClusterOptions::default()
    });
    write_batch(&cluster, leader, "a");
    snapshot_and_compact(&cluster);
    for node in 0..cluster.len() {
        let usage = cluster
            .server(node)
            .unwrap()
            .node()
            .storage_key_usage()
            .unwrap();
        assert_eq!(usage.keys().copied().collect::<Vec<_>>(), vec![A]);
        assert!(
            !scan(&cluster.data_dir(node), &[&header(A)]).hits.is_empty(),
            "A's records are on disk"
        );
    }

    // Rolling rotation: B becomes current, A stays to open older records.
    for node in 0..cluster.len() {
        cluster.stop(node);
        let ring = keys::rotate_key_file(&cluster.key_file(node).unwrap()).unwrap();
        assert_eq!((ring.current_key_id(), ring.key_ids()), (B, vec![A, B]));
        cluster.restart(node).unwrap();
        cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    write_batch(&cluster, leader, "b");
    for node in 0..cluster.len() {
        check_batch(&cluster, node, "a");
        check_batch(&cluster, node, "b");
    }

    // Snapshot, re-seal what is left, compact: nothing under A remains.
    snapshot_and_compact(&cluster);
    for node in 0..cluster.len() {
        let raft = cluster.server(node).unwrap().node().clone();
        let resealed = raft.reseal_storage().unwrap();
        let usage = raft.storage_key_usage().unwrap();
        eprintln!(
            "node {node}: re-sealed {resealed} more records online; records per key id {usage:?}"
        );
        assert_eq!(
            usage.keys().copied().collect::<Vec<_>>(),
            vec![B],
            "node {node}"
        );
    }
    for node in 0..cluster.len() {
        cluster.stop(node);
        let found = scan(&cluster.data_dir(node), &[&header(A), &header(B)]);
        let files_with = |id: KeyId| {
            found
                .hits
                .iter()
                .filter(|(_, n)| n.as_bytes() == header(id))
                .count()
        };
        assert_eq!(
            files_with(A),
            0,
            "node {node}: a file still holds a record under A: {:?}",
            found.hits
        );
        assert!(
            files_with(B) > 0,
            "node {node}: the search finds B's records"
        );
    }

    // A removed from every key file: every node starts and has all its data.
    for node in 0..cluster.len() {
        let ring = keys::remove_key(&cluster.key_file(node).unwrap(), A).unwrap();
        assert_eq!(ring.key_ids(), vec![B]);
        cluster.restart(node).unwrap();
    }
    cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    for node in 0..cluster.len() {
        check_batch(&cluster, node, "a");
        check_batch(&cluster, node, "b");
    }
}

/// The documented way to switch a node's mode: rebuild it from the cluster
/// with an empty data directory.
#[test]
fn a_plaintext_node_is_rebuilt_encrypted_from_the_cluster() {
    let (mut cluster, leader) = start(ClusterOptions::default());
    write_batch(&cluster, leader, "a");
    snapshot_and_compact(&cluster);
    let node = cluster.others(leader)[0];
    cluster.stop(node);
    let dir = cluster.data_dir(node);
    let old = dir.with_extension("old");
    std::fs::rename(&dir, &old).unwrap();
    let key_file = old.with_extension("keys");
    keys::create_key_file(&key_file).unwrap();
    cluster.config_mut(node).encryption.enabled = true;
    cluster.config_mut(node).encryption.key_file = Some(key_file);
    cluster.restart(node).unwrap();
    write_batch(&cluster, leader, "b");
    check_batch(&cluster, node, "a");
    check_batch(&cluster, node, "b");
    let raft = cluster.server(node).unwrap().node().clone();
    assert_eq!(
        raft.storage_key_usage()
            .unwrap()
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![1]
    );
    snapshot_and_compact(&cluster);
    cluster.stop(node);
    let needles: [&[u8]; 2] = [KEY_MARKER.as_bytes(), VALUE_MARKER.as_bytes()];
    assert!(
        scan(&dir, &needles).hits.is_empty(),
        "the rebuilt node stores no plaintext"
    );
    assert!(
        !scan(&old, &needles).hits.is_empty(),
        "the old plaintext directory, for contrast"
    );
}
