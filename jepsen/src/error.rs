//! The crate's error type: everything that can go wrong reading, writing or pairing a history.
//!
//! Checker verdicts are not errors: a history that violates a property yields a
//! [`crate::checker::CheckResult`] with `Invalid`. Errors are reserved for input we
//! cannot interpret at all (I/O failures, unparsable lines, histories that break the
//! recording rules), because judging such input would mean guessing.

use std::path::PathBuf;

/// Errors raised by history I/O and pairing.
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
}
