//! Durable storage: the RocksDB database, the Raft log store and the state
//! machine with its snapshots, encrypted at rest when a keyring is configured.

pub mod crypto;
mod db;
mod log_store;
mod state_machine;

pub use crypto::{KeyId, Keyring};
pub use db::{BatchOp, Cf, KeyUsage, Store};
pub use log_store::LogStore;
pub use state_machine::{AppliedState, StateMachine};

use openraft::{AnyError, StorageIOError};

use crate::types::StorageError;

/// Wraps a lower-level error as an openraft storage error of the given kind.
pub(crate) fn storage_err<E: std::error::Error + 'static>(
    kind: impl FnOnce(AnyError) -> StorageIOError<u64>,
    err: &E,
) -> StorageError {
    StorageError::IO {
        source: kind(AnyError::new(err)),
    }
}
