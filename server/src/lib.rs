//! The raftlimit server: RESP listener, connection-level commands, command
//! routing to the Raft node, configuration, logging, metrics and health.
//!
//! The binary in `main.rs` only parses flags and calls [`Server`]; the test
//! harness starts the same [`Server`] in-process.

pub mod acl_log;
pub mod auth;
pub mod certs;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod error;
pub mod http;
pub mod keys;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod router;
pub mod server;
pub mod session;
pub mod shared;
pub mod tls;
pub mod users;

pub use config::Config;
pub use error::ServerError;
pub use server::{Listeners, Server};
