//! An HTTP API rate-limited by a raftlimit cluster, configured the way the
//! deployments configure their pods:
//!
//! ```sh
//! RAFTLIMIT_URL=redis://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 \
//! RATE_LIMIT_SEARCH=60 RATE_LIMIT_RECOMMENDATIONS=30 RATE_LIMIT_DEFAULT=100 \
//! TRUSTED_PROXIES=10.0.0.0/8 LISTEN_ADDR=127.0.0.1:8080 \
//!   cargo run --release -p raftlimit-client --example axum_api
//! curl -i http://127.0.0.1:8080/search?q=x | grep -i ratelimit
//! ```
//!
//! Every `RATE_LIMIT_*` variable is described in `raftlimit_client::layer::env`
//! and docs/client.md. `/healthz`, `/readyz`, `/docs`, `/openapi.json` and
//! `/metrics` are exempt; `/metrics` serves the limiter's metrics.

use std::net::SocketAddr;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use raftlimit_client::layer::env::EnvSettings;
use raftlimit_client::{Client, RateLimitLayer};
use serde_json::json;

/// The application's router with the rate-limit layer around it.
pub fn app(client: Client, settings: &EnvSettings) -> (Router, RateLimitLayer) {
    let layer = settings.layer(client);
    let router = Router::new()
        .route("/search", get(search))
        .route("/recommendations", get(recommendations))
        .route("/items/{id}", get(item))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/docs", get(|| async { "see /openapi.json\n" }))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .with_state(layer.clone())
        .layer(layer.clone());
    (router, layer)
}

async fn search(Query(params): Query<Vec<(String, String)>>) -> Json<serde_json::Value> {
    let q = params
        .into_iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v)
        .unwrap_or_default();
    Json(json!({ "query": q, "results": [] }))
}

async fn recommendations() -> Json<serde_json::Value> {
    Json(json!({ "items": [1, 2, 3] }))
}

async fn item(Path(id): Path<u64>) -> Json<serde_json::Value> {
    Json(json!({ "id": id }))
}

async fn openapi() -> Json<serde_json::Value> {
    Json(json!({ "openapi": "3.1.0", "info": { "title": "example", "version": "1" } }))
}

async fn metrics(State(layer): State<RateLimitLayer>) -> String {
    layer.metrics().render()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use anyhow::Context;

    let settings = EnvSettings::from_env().context("reading RATE_LIMIT_* settings")?;
    let client = Client::from_env().context("reading RAFTLIMIT_URL")?;
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let (router, _) = app(client, &settings);
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .context("serving")?;
    Ok(())
}
