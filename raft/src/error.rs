//! The error type of the raft crate.

/// Everything that can go wrong below the command level: storage, encoding,
/// transport and consensus failures. Command errors are not here: they are
/// Redis error replies ([`crate::Reply::Error`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
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
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes exceeds the limit")]
    FrameTooLarge(usize),
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("peer {0} is unreachable: {1}")]
    Unreachable(u64, String),
}

impl Error {
    pub(crate) fn decode(what: &'static str) -> impl FnOnce(postcard::Error) -> Self {
        move |source| Error::Decode { what, source }
    }

    pub(crate) fn encode(what: &'static str) -> impl FnOnce(postcard::Error) -> Self {
        move |source| Error::Encode { what, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
