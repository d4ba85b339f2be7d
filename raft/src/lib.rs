//! The replicated half of raftlimit: openraft types, the RocksDB log and
//! snapshot store, the openraft adapter around the engine's applied state,
//! the inter-node transport, and the node (proposer, read barrier, the
//! leader's script executor).
//!
//! What a command does is the engine's (`raftlimit_engine`); this crate
//! decides only where and in which order commands run. The server hands a
//! command's arguments to [`node::RaftNode`] and gets back a reply.

pub mod error;
pub mod fuzz;
pub mod network;
#[cfg(feature = "rocksdb")]
pub mod node;
pub mod storage;
pub mod types;

pub use error::Error;
#[cfg(feature = "rocksdb")]
pub use node::{NodeConfig, NodeStatus, RaftNode};
pub use types::{NodeId, NodeInfo, TypeConfig};
