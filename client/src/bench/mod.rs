//! `raftlimit-bench`: the load generator and the side-by-side benchmark.
//!
//! redis-benchmark cannot hold a fixed request rate, so it cannot show the
//! latency a server gives at half its capacity, and it counts latency from
//! when a request was sent, which hides queueing behind a stalled server.
//! This module is our own generator (closed and open loop, HDR histograms,
//! TLS and AUTH), cheap enough per request that on a two-core machine it
//! leaves the CPU to the servers it measures.
//!
//! - [`resp`]: request templates with keys patched in place, the reply-boundary scanner.
//! - [`schedule`]: open-loop due times and the measurement window.
//! - [`conn`]: TCP/TLS connections, AUTH, setup calls.
//! - [`workload`]: the commands (limiter checks, SET/GET/INCR, the `limits` script).
//! - [`run`]: the engine (threads, connections, pacer, statistics).
//! - [`suite`]: the side-by-side suite behind `make bench` (servers, cells, CPU, busy check).
//! - [`report`]: the generated section of `docs/benchmarks.md` and the SVG curve.
//! - [`servers`]: redis-server and raftlimit cluster processes.
//! - [`procfs`], [`http`]: CPU counters, `/readyz` and `/metrics`.

pub mod conn;
pub mod http;
pub mod procfs;
pub mod report;
pub mod resp;
pub mod run;
pub mod schedule;
pub mod servers;
pub mod suite;
pub mod workload;

pub use conn::{Target, TlsOptions};
pub use run::{run, Edge, Latency, RunResult, RunSpec};
pub use workload::Workload;

/// Why a benchmark could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad options.
    #[error("configuration: {0}")]
    Config(String),
    /// Connecting, reading or writing failed.
    #[error("{0}")]
    Io(String),
    /// The server sent something that is not RESP.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The target answered a setup request with an error or an unexpected reply.
    #[error("target: {0}")]
    Target(String),
}
