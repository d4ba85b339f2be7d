//! Durable storage: the RocksDB database, the Raft log store and the state
//! machine with its snapshots, encrypted at rest when a keyring is configured.
//! Only the keyring and the sealed-record format are built without the
//! `storage` feature.

pub mod crypto;
#[cfg(feature = "storage")]
mod db;
#[cfg(feature = "storage")]
mod log_store;
#[cfg(feature = "storage")]
mod snapshot_file;
#[cfg(feature = "storage")]
mod state_machine;

pub use crypto::{KeyId, Keyring};
#[cfg(feature = "storage")]
pub use db::{BatchOp, Cf, KeyUsage, Store};
#[cfg(feature = "storage")]
pub use log_store::LogStore;
#[cfg(feature = "storage")]
pub use state_machine::{AppliedState, StateMachine, RETRY_HORIZON};

#[cfg(feature = "storage")]
use openraft::{AnyError, StorageIOError};

#[cfg(feature = "storage")]
use crate::types::StorageError;

/// Wraps a lower-level error as an openraft storage error of the given kind.
#[cfg(feature = "storage")]
pub(crate) fn storage_err<E: std::error::Error + 'static>(
    kind: impl FnOnce(AnyError) -> StorageIOError<u64>,
    err: &E,
) -> StorageError {
    StorageError::IO {
        source: kind(AnyError::new(err)),
    }
}
