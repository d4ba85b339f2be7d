//! The error type of the raft crate.

/// Everything that can go wrong below the command level: storage, encoding,
/// transport and consensus failures. Command errors are not here: they are
/// Redis error replies ([`crate::Reply::Error`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[cfg(feature = "storage")]
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
    /// A snapshot (or backup) file is damaged, truncated or of another mode.
    #[error("snapshot file {0}")]
    Snapshot(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("configuration: {0}")]
    Config(String),
    /// The Lua interpreter could not be set up.
    #[error("scripting: {0}")]
    Script(String),
    #[error("peer {0} is unreachable: {1}")]
    Unreachable(u64, String),
    /// The encryption keys are malformed or inconsistent (never shows key material).
    #[error("encryption keys: {0}")]
    Keys(String),
    /// The database was created in the other encryption mode than the one configured.
    #[error("encryption mode mismatch: {0}")]
    EncryptionMode(String),
    /// The configured key with the database's key id is not the key it was sealed with.
    #[error(
        "wrong encryption key: key id {key_id} in the keyring is not the key this database was sealed with \
         (its check record does not authenticate); refusing to open it, nothing was changed"
    )]
    WrongKey { key_id: u32 },
    /// A record needs a key the keyring does not hold.
    #[error(
        "record {record} is sealed with encryption key id {key_id}, which is not in the keyring \
         (it holds key ids {known:?}); add that key back, then restart"
    )]
    UnknownKey {
        record: String,
        key_id: u32,
        known: Vec<u32>,
    },
    /// A sealed record failed authentication: wrong key, tampering or corruption.
    #[error(
        "record {record} failed authentication under encryption key id {key_id}: \
         it was tampered with or corrupted, or the key is wrong"
    )]
    Unauthentic { record: String, key_id: u32 },
    /// A stored value is not a sealed record at all.
    #[error("record {record} is not a valid sealed record: {reason}")]
    BadRecord { record: String, reason: String },
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
