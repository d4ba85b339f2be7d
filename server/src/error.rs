//! The error type of the server library.

/// Failures that stop the server or one of its listeners. Command errors are
/// Redis error replies, not these.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Raft(#[from] raftlimit_raft::Error),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("certificates: {0}")]
    Certs(String),
}
