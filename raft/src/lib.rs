//! The replicated core of raftlimit: openraft types, the deterministic state
//! machine that executes Redis commands, RocksDB log and snapshot storage, and
//! the inter-node transport.
//!
//! The server crate talks to this crate through [`node::RaftNode`]: it hands
//! over a command's arguments and gets back a [`Reply`], never touching Raft
//! directly.

pub mod acl;
pub mod commands;
pub mod error;
pub mod fuzz;
pub mod keyspace;
pub mod network;
#[cfg(feature = "storage")]
pub mod node;
pub mod payload;
pub mod reply;
#[cfg(feature = "storage")]
pub mod script;
pub mod storage;
pub mod types;

pub use error::Error;
#[cfg(feature = "storage")]
pub use node::{NodeConfig, NodeStatus, RaftNode};
pub use payload::RequestId;
pub use reply::Reply;
pub use types::{NodeId, NodeInfo, TypeConfig};
