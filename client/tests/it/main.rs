//! Integration tests of the client crate against real 3-node clusters
//! started in-process by `raftlimit-testkit`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod app;
mod cli;
mod failover;
mod fallback;
mod headers;
mod layer;
mod support;
mod tls;

/// The example app itself, so the tests exercise exactly what it ships.
#[allow(dead_code)]
#[path = "../../examples/axum_api.rs"]
mod axum_api;
