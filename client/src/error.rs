//! The crate's one error type.
//!
//! The distinction that matters to callers is whether a failed write may
//! have been applied: [`ClientError::OutcomeUnknown`] says it may, every other
//! variant says the cluster did not act on the request (or never saw it).

/// Errors from the client, the limiter API and the middleware.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A configuration or URL that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file named in the configuration (CA, certificate, key) could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// No node could be reached (or none answered) before the retry budget ran out.
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
    /// A command that is not safe to resend failed after it may have reached
    /// the cluster; it may or may not have been applied.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The server answered with an error reply (`-ERR …`, `-NOPERM …`, …).
    #[error("{0}")]
    Server(String),
    /// The server does not know the command (an older server, or a command
    /// disabled by configuration).
    #[error("the server does not support {command}: {message}")]
    UnknownCommand { command: String, message: String },
    /// The server answered something this client cannot interpret.
    #[error("unexpected reply to {command}: {detail}")]
    Protocol { command: String, detail: String },
    /// The call did not finish within its deadline.
    #[error("deadline of {0:?} exceeded")]
    Deadline(std::time::Duration),
}

impl ClientError {
    pub(crate) fn protocol(command: &str, detail: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            command: command.to_owned(),
            detail: detail.into(),
        }
    }

    /// Whether the cluster (rather than the request) is at fault: the
    /// middleware falls back on these and reports the rest.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ClientError::Unavailable(_) | ClientError::OutcomeUnknown(_) | ClientError::Deadline(_)
        )
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;
