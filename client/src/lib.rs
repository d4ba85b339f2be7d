//! raftlimit's Rust client: a connection layer that survives failovers
//! ([`Client`]), the typed limiter API ([`Limit`], [`Decision`], leases),
//! HTTP headers for a decision ([`headers`]), a tower layer that rate-limits
//! HTTP services ([`layer::RateLimitLayer`]) with a local fallback limiter
//! ([`fallback`]) and Prometheus metrics ([`metrics`]), and the code behind
//! the `raftlimit` command-line tool ([`cli`]). [`bench`] is the load
//! generator and side-by-side suite behind `raftlimit-bench` and `make bench`.
//!
//! See docs/client.md for a tour.

#[cfg(feature = "bench")]
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod fallback;
pub mod headers;
pub mod layer;
pub mod limiter;
pub mod metrics;

pub use client::{Client, Retry};
pub use config::{ClientConfig, NodeAddr, RetryPolicy, TlsSettings};
pub use error::{ClientError, Result};
pub use headers::{HeaderStyle, ResetFormat};
pub use layer::{KeyExtractor, LimitSpec, OnUnavailable, RateLimitLayer, Rule, TrustedProxies};
pub use limiter::{Acquired, Algo, Check, Decision, LeaseGuard, Limit, MultiDecision, Policy};
