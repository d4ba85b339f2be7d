//! Integration tests of the server against a real in-process 3-node cluster,
//! through a real Redis client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod commands;
mod connection;
mod discovery;
mod encryption;
mod limiter;
mod membership;
mod protocol;
mod scripting;
mod security;
mod tls;
mod transactions;
mod types;

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use raftlimit_testkit::{ClusterOptions, TestCluster};

/// Starts a default cluster and waits for its leader.
pub fn cluster() -> (TestCluster, usize) {
    let cluster = TestCluster::start(ClusterOptions::default()).expect("cluster starts");
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .expect("leader elected");
    (cluster, leader)
}

/// One cluster shared by the command-semantics tests, which use disjoint keys.
pub fn shared_cluster() -> &'static TestCluster {
    static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| cluster().0)
}

/// A cluster shared by the tests that move its clocks (expiry, leases)
/// instead of sleeping, one test at a time: a test that checks a key is
/// still there must not see another test's jump. The shared cluster's
/// clocks are never moved.
pub fn clock_cluster() -> MutexGuard<'static, TestCluster> {
    static CLUSTER: OnceLock<Mutex<TestCluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| Mutex::new(cluster().0))
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}
