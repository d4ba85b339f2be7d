//! The error of this crate: a request that cannot be parsed.

/// A request that cannot be parsed; the connection replies and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

pub(crate) fn protocol_error(text: impl Into<String>) -> ProtocolError {
    ProtocolError(text.into())
}
