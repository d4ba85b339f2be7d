//! The crate's error type: everything that can go wrong recording, judging or running a test.
//!
//! Checker verdicts are not errors: a history that violates a property yields a
//! [`crate::checker::CheckResult`] with `Invalid`. Errors are reserved for input we
//! cannot interpret at all (I/O failures, unparsable lines, histories that break the
//! recording rules), because judging such input would mean guessing.

use std::path::PathBuf;

/// Errors raised by history I/O and pairing, clients, cluster backends and runs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening, reading or writing a history file failed.
    #[error("history file {path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// A stream (not a named file) failed while reading or writing.
    #[error("history stream: {0}")]
    Stream(#[from] std::io::Error),
    /// A line of a JSON-lines history is not a valid operation.
    #[error("history line {line}: {source}")]
    Json {
        /// 1-based line number in the input.
        line: usize,
        /// The parse failure.
        #[source]
        source: serde_json::Error,
    },
    /// An operation could not be serialised.
    #[error("serialising op {index}: {source}")]
    Serialize {
        /// Position of the op in the history.
        index: usize,
        /// The serialisation failure.
        #[source]
        source: serde_json::Error,
    },
    /// The history breaks a recording rule (see [`crate::history::History::pairs`]).
    #[error("malformed history at op {index}: {reason}")]
    Malformed {
        /// Position of the offending op in the history.
        index: usize,
        /// Which rule it breaks.
        reason: String,
    },
    /// Reading or writing some other file of a run (config, log, report).
    #[error("{path}: {source}")]
    File {
        /// The file or directory.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// The backend cannot inject this fault (e.g. partitions of local processes).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Injecting or undoing a fault failed.
    #[error("fault injection failed: {0}")]
    Fault(String),
    /// A cluster could not be started, reached or stopped.
    #[error("cluster: {0}")]
    Cluster(String),
    /// A client connection failed or the server sent something unreadable.
    #[error("client: {0}")]
    Client(String),
    /// A run was configured in a way the harness refuses.
    #[error("invalid run configuration: {0}")]
    Config(String),
    /// Drawing the plot failed.
    #[error("plot: {0}")]
    Plot(String),
}

impl Error {
    /// An error about a named file.
    pub fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::File {
            path: path.into(),
            source,
        }
    }
}
