//! Chaos harness library: clients, workloads, nemeses, recorded histories, the checkers that judge them, and reports.
//!
//! A run ([`run::run`]) drives concurrent clients against a raftlimit cluster
//! ([`cluster::Cluster`]) while a [`nemesis::Nemesis`] injects faults, and
//! records every request as a pair of [`history::Op`] records (invocation and
//! completion) into a [`history::History`]. After the run the history is
//! paired ([`history::History::pairs`]) and handed to the workload's
//! [`checker`]s, each of which answers `Valid`, `Invalid` or `Unknown`; a run
//! passes only if every checker says `Valid`.
//!
//! Checkers are deterministic and do no I/O, so they are tested on planted
//! histories; the runner is tested end to end against local processes.

pub mod checker;
pub mod client;
pub mod clock;
pub mod cluster;
mod error;
pub mod history;
pub mod matrix;
pub mod nemesis;
pub mod report;
pub mod run;
pub mod workload;

pub use error::Error;
