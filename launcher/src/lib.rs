//! Starts raftlimit clusters: one typed description, race-free ports, real
//! server processes. Every cluster the project starts comes from here: the
//! test harness (`raftlimit-testkit`, in-process nodes), the chaos
//! harness's local backend, the benchmark, `make cluster` and the Python
//! compatibility suite (both through the `raftlimit-cluster` binary).
//!
//! - [`ClusterSpec`] says what differs between clusters (node count, name,
//!   TLS, AUTH users, encryption at rest, Raft timing, extra settings) and
//!   builds every node's typed [`raftlimit_server::Config`]; a process's
//!   config file is that `Config` serialized, never templated text.
//! - [`PortReservation`] holds every port it hands out for the cluster's
//!   lifetime, so no other program can take one between allocation and
//!   bind or across a restart ([`ports`] explains how).
//! - [`ProcessCluster`] runs one `raftlimit-server` process per node, waits
//!   for `/readyz`, captures logs, finds the leader, and kills, stops,
//!   pauses and restarts nodes by PID.
//!
//! Starting a secure cluster and finding its leader, for a benchmark:
//!
//! ```no_run
//! use std::time::Duration;
//! use raftlimit_launcher::{server_binary, ClusterSpec, ProcessCluster, ProcessOptions, TlsOptions};
//!
//! # fn main() -> Result<(), raftlimit_launcher::LauncherError> {
//! let spec = ClusterSpec::new(3)
//!     .tls(TlsOptions::default())   // TLS clients (with certificates), mTLS between nodes
//!     .requirepass("secret")        // AUTH for the default user
//!     .encryption(true);            // encryption at rest, one key per node
//! let cluster = ProcessCluster::start(&spec, &ProcessOptions::new(server_binary()?))?;
//! let leader = cluster.wait_for_leader(Duration::from_secs(10))?;
//! let leader_addr = cluster.node(leader)?.addr;          // TLS RESP address
//! let followers = cluster.others(leader);
//! let pids: Vec<u32> = cluster.nodes().iter().filter_map(|n| n.pid).collect(); // CPU accounting
//! let tls = cluster.tls_files();  // Some(files): ca(), client_cert(), client_key()
//! # let _ = (leader_addr, followers, pids, tls);
//! cluster.shutdown()?;                                   // SIGTERM by PID; drop sends SIGKILL
//! # Ok(())
//! # }
//! ```
//!
//! From another language, `raftlimit-cluster up --json` starts the same
//! cluster and prints [`ClusterInfo`] as one JSON line once every node is
//! ready; with `--control` it takes `kill N`, `start N`, `stop N`,
//! `pause N`, `resume N`, `leader` and `info` on stdin and stops every node
//! when stdin closes.

mod error;
pub mod ports;
mod process;
mod spec;

pub use error::{LauncherError, Result};
pub use ports::PortReservation;
pub use process::{server_binary, ClusterInfo, NodeView, ProcessCluster, ProcessOptions};
pub use spec::{Built, ClusterSpec, NodeAddrs, Ports, TlsFiles, TlsOptions};
