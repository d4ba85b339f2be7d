//! The launcher against real `raftlimit-server` processes (the binary of
//! the same build: `cargo test --workspace` builds it) and the
//! `raftlimit-cluster` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod process;

use std::time::Duration;

use raftlimit_launcher::{server_binary, ClusterSpec, ProcessCluster, ProcessOptions};

pub fn options() -> ProcessOptions {
    let bin = server_binary().unwrap_or_else(|e| panic!("{e}"));
    let mut options = ProcessOptions::new(bin);
    options.ready_timeout = Duration::from_secs(60);
    options
}

pub fn start(spec: &ClusterSpec) -> ProcessCluster {
    ProcessCluster::start(spec, &options()).unwrap_or_else(|e| panic!("{e}"))
}
