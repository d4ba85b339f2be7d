//! The error type of the engine crate.
//!
//! Command failures are not here: they are Redis error replies
//! ([`crate::Reply::Error`]). These are failures of the engine's own
//! machinery, which the node reports as storage or start-up errors.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot decode {what}: {source}")]
    Decode {
        what: &'static str,
        source: postcard::Error,
    },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        source: postcard::Error,
    },
    /// Writing a snapshot image to the caller's sink failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A snapshot image this build cannot read.
    #[error("snapshot file {0}")]
    Snapshot(String),
    /// The Lua interpreter could not be set up.
    #[error("scripting: {0}")]
    Script(String),
}

impl Error {
    pub(crate) fn decode(what: &'static str) -> impl FnOnce(postcard::Error) -> Self {
        move |source| Error::Decode { what, source }
    }

    pub(crate) fn encode(what: &'static str) -> impl FnOnce(postcard::Error) -> Self {
        move |source| Error::Encode { what, source }
    }
}
