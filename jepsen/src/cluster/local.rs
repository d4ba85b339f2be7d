//! A cluster of local `raftlimit-server` processes on loopback: kill -9, SIGSTOP/SIGCONT, no partitions.
//!
//! The processes are the launcher's ([`raftlimit_launcher::ProcessCluster`]):
//! config files generated from a `ClusterSpec`, ports reserved for the
//! cluster's lifetime (so a killed node restarts on its ports, whatever else
//! runs on the machine), a log file per node, every process stopped by its
//! PID. This module only maps the [`Cluster`] trait onto it. Dropping the
//! cluster kills every process it started.

use std::path::{Path, PathBuf};
use std::time::Duration;

use raftlimit_launcher::{ClusterSpec, LauncherError, ProcessCluster, ProcessOptions};

use super::{Cluster, Endpoint, Partition};
use crate::Error;

/// How to start a local cluster.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The `raftlimit-server` binary.
    pub bin: PathBuf,
    /// Where configs, data and logs go (created if missing); a temporary
    /// directory, removed with the cluster, when `None`.
    pub dir: Option<PathBuf>,
    /// Number of nodes.
    pub nodes: u64,
    /// How long to wait for every node to become ready.
    pub ready_timeout: Duration,
}

impl LocalOptions {
    /// Three nodes of `bin` in a temporary directory.
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        Self {
            bin: bin.into(),
            dir: None,
            nodes: 3,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// Local server processes; see the module docs.
#[derive(Debug)]
pub struct LocalCluster {
    processes: ProcessCluster,
}

/// The server binary: `$RAFTLIMIT_SERVER_BIN`, else `$RAFTLIMIT_BIN_DIR/raftlimit-server`,
/// else the one of this build (see [`raftlimit_launcher::server_binary`]).
pub fn server_binary() -> Result<PathBuf, Error> {
    raftlimit_launcher::server_binary().map_err(cluster_error)
}

fn cluster_error(e: LauncherError) -> Error {
    Error::Cluster(e.to_string())
}

fn fault_error(e: LauncherError) -> Error {
    Error::Fault(e.to_string())
}

impl LocalCluster {
    /// Writes the configs and starts every node, then waits until all are ready.
    pub fn start(options: &LocalOptions) -> Result<Self, Error> {
        let nodes = usize::try_from(options.nodes)
            .map_err(|_| Error::Cluster(format!("{} nodes", options.nodes)))?;
        let spec = ClusterSpec::new(nodes).name("raftlimit-jepsen");
        let mut process = ProcessOptions::new(&options.bin);
        process.dir = options.dir.clone();
        process.ready_timeout = options.ready_timeout;
        // Restarts run the binary the cluster started with, even if a
        // rebuild replaces the original mid-run.
        process.copy_binary = true;
        let processes = ProcessCluster::start(&spec, &process).map_err(cluster_error)?;
        Ok(Self { processes })
    }

    /// The launcher's cluster (PIDs, addresses, logs).
    pub fn processes(&self) -> &ProcessCluster {
        &self.processes
    }
}

impl Cluster for LocalCluster {
    fn endpoints(&self) -> Vec<Endpoint> {
        self.processes
            .nodes()
            .into_iter()
            .map(|n| Endpoint {
                node: n.id,
                addr: n.addr,
                tls: None,
                user: None,
                password: None,
            })
            .collect()
    }

    fn kill(&self, node: u64) -> Result<(), Error> {
        self.processes.kill(node).map_err(fault_error)
    }

    fn start(&self, node: u64) -> Result<(), Error> {
        self.processes.start_node(node).map_err(fault_error)
    }

    fn pause(&self, node: u64) -> Result<(), Error> {
        self.processes.pause(node).map_err(fault_error)
    }

    fn resume(&self, node: u64) -> Result<(), Error> {
        self.processes.resume(node).map_err(fault_error)
    }

    fn partition(&self, _partition: &Partition) -> Result<(), Error> {
        Err(Error::Unsupported(
            "local processes share one network namespace, so the local backend cannot partition \
             them; use the docker backend"
                .into(),
        ))
    }

    fn heal(&self) -> Result<(), Error> {
        // Nothing to undo: this backend never partitions.
        Ok(())
    }

    fn collect_logs(&self, dir: &Path) -> Result<(), Error> {
        self.processes.collect_logs(dir).map_err(cluster_error)
    }
}
