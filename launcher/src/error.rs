//! The launcher's error type: what went wrong starting or steering a
//! cluster, with the node and the file it concerns.

use std::path::{Path, PathBuf};

/// Failures of the launcher itself. A node that misbehaves after it is
/// up is not an error here; the caller's checks see it.
#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("server: {0}")]
    Server(#[from] raftlimit_server::ServerError),
    #[error("cluster spec: {0}")]
    Spec(String),
    #[error("node {node}: {message}")]
    Node { node: u64, message: String },
    #[error("{0}")]
    Timeout(String),
    #[error("raftlimit-server binary not found (looked at {0}); build it with `source scripts/env.sh && cargo build --release -p raftlimit-server` or set RAFTLIMIT_SERVER_BIN")]
    NoBinary(String),
}

impl LauncherError {
    pub(crate) fn file(path: &Path, source: std::io::Error) -> Self {
        LauncherError::File {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn node(node: u64, message: impl Into<String>) -> Self {
        LauncherError::Node {
            node,
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, LauncherError>;
