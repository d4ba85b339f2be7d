//! Durable storage: the RocksDB database, the Raft log store and the state
//! machine with its snapshots, encrypted at rest when a keyring is configured.
//! Only the keyring and the sealed-record format are built without the
//! `rocksdb` feature.

pub mod crypto;
#[cfg(feature = "rocksdb")]
mod db;
#[cfg(feature = "rocksdb")]
mod log_store;
#[cfg(feature = "rocksdb")]
mod snapshot_file;
#[cfg(feature = "rocksdb")]
mod state_machine;

pub use crypto::{KeyId, Keyring};
#[cfg(feature = "rocksdb")]
pub use db::{BatchOp, Cf, KeyUsage, Store};
#[cfg(feature = "rocksdb")]
pub use log_store::LogStore;
#[cfg(feature = "rocksdb")]
pub use raftlimit_engine::RETRY_HORIZON;
#[cfg(feature = "rocksdb")]
pub use state_machine::{ReplicaState, StateMachine};

#[cfg(feature = "rocksdb")]
use openraft::{AnyError, StorageIOError};

#[cfg(feature = "rocksdb")]
use crate::types::StorageError;

/// Wraps a lower-level error as an openraft storage error of the given kind.
#[cfg(feature = "rocksdb")]
pub(crate) fn storage_err<E: std::error::Error + 'static>(
    kind: impl FnOnce(AnyError) -> StorageIOError<u64>,
    err: &E,
) -> StorageError {
    StorageError::IO {
        source: kind(AnyError::new(err)),
    }
}
