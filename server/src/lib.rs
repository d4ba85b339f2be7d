//! The raftlimit server: RESP listener, connection-level commands, command
//! routing to the Raft node, configuration, logging, metrics and health.
//!
//! The binary in `main.rs` only parses flags and calls [`Server`]; the test
//! harness starts the same [`Server`] in-process.

pub mod auth;
pub mod certs;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod dispatch;
pub mod error;
pub mod http;
pub mod keys;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod server;
pub mod session;
pub mod shared;
pub mod tls;

pub use config::Config;
pub use error::ServerError;
pub use server::{Listeners, Server};
