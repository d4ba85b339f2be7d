//! The layer's options beyond the example app: several limits in one
//! RL.MCHECK, a cost function, shadow mode, API-key keys, and failing open
//! or closed.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use raftlimit_client::{
    Client, ClientConfig, KeyExtractor, Limit, LimitSpec, OnUnavailable, RateLimitLayer, Rule,
};

use crate::support::{get as http_get, http, Env, Http, Reply};

async fn serve(layer: RateLimitLayer) -> SocketAddr {
    let router = Router::new()
        .route("/export", get(|| async { "exported" }))
        .route("/report", get(|| async { "report" }))
        .route("/free", get(|| async { "free" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    addr
}

async fn call(http: &Http, addr: SocketAddr, path: &str, key: &str) -> Reply {
    http_get(http, &format!("http://{addr}{path}"), &[("x-api-key", key)]).await
}

#[test]
fn several_limits_cost_and_shadow() {
    let env = Env::start();
    let client = env.client();
    env.rt.block_on(async {
        let layer = RateLimitLayer::builder(client)
            .route(
                "/export",
                Rule::new("export")
                    .limit(LimitSpec::new(
                        "per-key",
                        KeyExtractor::api_key(),
                        Limit::per_hour(5),
                    ))
                    .limit(LimitSpec::new(
                        "global",
                        KeyExtractor::Global,
                        Limit::per_hour(8),
                    ))
                    .cost(|parts| {
                        if parts.uri.query() == Some("full") {
                            3
                        } else {
                            1
                        }
                    }),
            )
            .route(
                "/report",
                Rule::new("report").shadow(true).limit(LimitSpec::new(
                    "per-key",
                    KeyExtractor::api_key(),
                    Limit::per_hour(1),
                )),
            )
            .build();
        let addr = serve(layer.clone()).await;
        let http = http();

        // One RL.MCHECK per request: both limits in the IETF fields, the
        // tighter one in the X- set.
        let r = call(&http, addr, "/export", "a").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("ratelimit-policy"),
            Some("\"per-key\";q=5;w=3600, \"global\";q=8;w=3600")
        );
        assert_eq!(
            r.header("ratelimit"),
            Some("\"per-key\";r=4;t=720, \"global\";r=7;t=450")
        );
        assert_eq!(r.header("x-ratelimit-remaining"), Some("4"));
        // A cost of 3 from key "a" (4 → 1), then key "b" takes 3 of the
        // global 4 left; "b" again is denied by both, the global limit
        // having the longer wait, and is charged nothing.
        assert_eq!(
            call(&http, addr, "/export?full", "a")
                .await
                .num("x-ratelimit-remaining"),
            1
        );
        assert_eq!(
            call(&http, addr, "/export?full", "b")
                .await
                .num("x-ratelimit-remaining"),
            1
        );
        let denied = call(&http, addr, "/export?full", "b").await;
        assert_eq!(denied.status, 429);
        assert_eq!(
            denied.header("x-ratelimit-limit"),
            Some("8"),
            "the global limit binds"
        );
        let small = call(&http, addr, "/export", "b").await;
        assert_eq!(small.status, 200);
        assert!(
            small
                .header("ratelimit")
                .is_some_and(|v| v.starts_with("\"per-key\";r=1;")),
            "{small:?}"
        );

        // Shadow: over the limit, yet let through, without headers, counted.
        for _ in 0..3 {
            let r = call(&http, addr, "/report", "a").await;
            assert_eq!(r.status, 200);
            assert_eq!(r.header("x-ratelimit-limit"), None);
        }
        let metrics = layer.metrics().render();
        let sample = |s: &str| raftlimit_client::metrics::sample(&metrics, s);
        assert_eq!(
            sample("rate_limit_shadow_rejected_total{endpoint=\"report\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample("rate_limit_rejected_total{endpoint=\"export\"}"),
            Some(1.0)
        );
        // No rule for /free and no default rule: not limited.
        assert_eq!(
            call(&http, addr, "/free", "a")
                .await
                .header("x-ratelimit-limit"),
            None
        );
    });
}

#[test]
fn fails_open_or_closed_when_the_cluster_cannot_answer() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client =
            Client::new(ClientConfig::from_nodes([format!("127.0.0.1:{port}")]).unwrap()).unwrap();
        let http = http();
        for (mode, status) in [(OnUnavailable::Closed, 503), (OnUnavailable::Open, 200)] {
            let layer = RateLimitLayer::builder(client.clone())
                .default_rule(Rule::per_ip("default", Limit::per_minute(10)))
                .deadline(Duration::from_millis(200))
                .on_unavailable(mode)
                .build();
            let addr = serve(layer.clone()).await;
            for _ in 0..2 {
                let r = call(&http, addr, "/free", "a").await;
                assert_eq!(r.status, status, "{mode:?}: {}", r.body);
                assert_eq!(r.header("x-ratelimit-limit"), None);
                if status == 503 {
                    assert_eq!(r.header("retry-after"), Some("1"));
                    assert!(r.body.contains("rate_limiter_unavailable"));
                }
            }
            assert!(layer.is_degraded());
            let errors = raftlimit_client::metrics::sample(
                &layer.metrics().render(),
                "limiter_redis_errors",
            );
            assert_eq!(
                errors,
                Some(1.0),
                "one check missed the deadline, then the circuit opened"
            );
        }
    });
}
