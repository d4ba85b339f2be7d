//! The whole cluster down: the local fallback limiter takes over within the
//! deadline, and hands back to the cluster when it returns.

use std::time::{Duration, Instant};

use crate::support::{get, http, metric, wait_until, App, Env};

const VARS: &[(&str, &str)] = &[
    ("RATE_LIMIT_DEFAULT", "10"),
    ("RATE_LIMIT_DEADLINE_MS", "500"),
    ("RATE_LIMIT_FALLBACK_SHARE", "0.5"),
];

#[test]
fn cluster_down_falls_back_within_the_deadline_and_hands_back() {
    let mut env = Env::start();
    let http = http();
    let app = env.rt.block_on(App::start(env.client(), VARS));
    let url = app.url("/items/1");
    env.rt.block_on(async {
        let r = get(&http, &url, &[]).await;
        assert_eq!((r.status, r.header("x-ratelimit-limit")), (200, Some("10")));
        assert!(!app.layer.is_degraded());
    });
    for i in 0..env.cluster.len() {
        env.cluster.kill(i);
    }
    env.rt.block_on(async {
        // The first request waits out the deadline, then the fallback answers.
        let started = Instant::now();
        let r = get(&http, &url, &[]).await;
        let took = started.elapsed();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.header("x-ratelimit-limit"),
            Some("5"),
            "half of 10, locally"
        );
        assert_eq!(r.header("x-ratelimit-remaining"), Some("4"));
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(5),
            "{took:?}"
        );
        assert!(app.layer.is_degraded());
        // From then on decisions are local and immediate: 4 more, then 429s.
        let mut statuses = Vec::new();
        for _ in 0..8 {
            let r = get(&http, &url, &[]).await;
            if r.status == 429 {
                assert!(r.num("retry-after") >= 1);
                assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
            }
            statuses.push(r.status);
        }
        assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);
        assert!(metric(&http, &app, "limiter_redis_errors").await >= 1.0);
        assert_eq!(metric(&http, &app, "limiter_fallback_active").await, 1.0);
        assert!(metric(&http, &app, "limiter_fallback_requests_total").await >= 9.0);
        assert!(
            metric(
                &http,
                &app,
                "rate_limit_rejected_total{endpoint=\"default\"}"
            )
            .await
                >= 4.0
        );
    });
    for i in 0..env.cluster.len() {
        env.cluster.restart(i).unwrap();
    }
    env.cluster
        .wait_for_leader(Duration::from_secs(30))
        .unwrap();
    env.rt.block_on(async {
        let layer = app.layer.clone();
        assert!(
            wait_until(Duration::from_secs(30), || !layer.is_degraded()).await,
            "the layer did not hand back to the cluster"
        );
        // The cluster decides again, from its own state (one unit taken
        // before the outage, refilled at one per 6 s meanwhile).
        let r = get(&http, &url, &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
        assert_eq!(metric(&http, &app, "limiter_fallback_active").await, 0.0);
        assert!(metric(&http, &app, "limiter_fallback_seconds").await > 0.0);
        app.stop().await;
    });
}
