//! The headers exactly at the limit boundary, through the example app.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{get, http, App, Env};

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn headers_at_the_limit_boundary() {
    let env = Env::start();
    let client = env.client();
    env.rt.block_on(async {
        let app = App::start(
            client,
            &[("RATE_LIMIT_SEARCH", "3"), ("RATE_LIMIT_DEFAULT", "100")],
        )
        .await;
        let http = http();
        let url = app.url("/search?q=x");
        let started = now_secs();
        // Three allowed: remaining counts down to exactly 0 at the limit.
        for expected_remaining in [2u64, 1, 0] {
            let r = get(&http, &url, &[]).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
            assert_eq!(r.num("x-ratelimit-remaining"), expected_remaining);
            // GCRA at 3 per minute: each unit takes 20 s to refill, so the key
            // is full (3 - remaining) × 20 s from now, as an epoch time.
            let reset = r.num("x-ratelimit-reset");
            let full_in = (3 - expected_remaining) * 20;
            assert!(
                (started + full_in..=now_secs() + full_in + 1).contains(&reset),
                "reset {reset}, started {started}, full in {full_in}"
            );
            assert_eq!(r.header("ratelimit-policy"), Some("\"default\";q=3;w=60"));
            assert_eq!(
                r.header("ratelimit"),
                Some(format!("\"default\";r={expected_remaining};t={full_in}").as_str())
            );
            assert_eq!(r.header("retry-after"), None);
        }
        // The fourth is over the limit: 429, JSON, Retry-After until one unit refills.
        let r = get(&http, &url, &[]).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"], "rate_limited");
        assert_eq!(body["endpoint"], "search");
        assert_eq!(r.header("retry-after"), Some("20"));
        assert_eq!(body["retry_after"], 20);
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
        let reset = r.num("x-ratelimit-reset");
        assert!((started + 60..=now_secs() + 61).contains(&reset), "{reset}");
        assert_eq!(r.header("ratelimit"), Some("\"default\";r=0;t=60"));
        assert_eq!(r.header("ratelimit-policy"), Some("\"default\";q=3;w=60"));

        // Other endpoints have their own budget; exempt paths have none.
        let other = get(&http, &app.url("/items/7"), &[]).await;
        assert_eq!(other.status, 200);
        assert_eq!(other.header("x-ratelimit-limit"), Some("100"));
        for path in ["/healthz", "/readyz", "/docs", "/openapi.json", "/metrics"] {
            let r = get(&http, &app.url(path), &[]).await;
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(r.header("x-ratelimit-limit"), None, "{path}");
        }
        let metrics = get(&http, &app.url("/metrics"), &[]).await.body;
        assert_eq!(
            raftlimit_client::metrics::sample(
                &metrics,
                "rate_limit_rejected_total{endpoint=\"search\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            raftlimit_client::metrics::sample(&metrics, "limiter_redis_errors"),
            Some(0.0)
        );
        app.stop().await;
    });
}
