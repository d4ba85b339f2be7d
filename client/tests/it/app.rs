//! The deployments' own check: a burst of 100 requests, 20 in parallel,
//! against the example app, then the same burst after restarting the app.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::support::{get, http, App, Env, Http, Reply};

const VARS: &[(&str, &str)] = &[
    ("RATE_LIMIT_SEARCH", "60"),
    ("RATE_LIMIT_RECOMMENDATIONS", "30"),
    ("RATE_LIMIT_DEFAULT", "100"),
    ("TRUSTED_PROXIES", "127.0.0.1/32"),
];

/// 100 GETs of `path`, at most 20 at a time, as client `ip` behind the proxy.
async fn burst(http: &Http, app: &App, path: &str, ip: &str) -> (Vec<Reply>, Duration) {
    let gate = Arc::new(Semaphore::new(20));
    let started = Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (gate, http, url, ip) = (gate.clone(), http.clone(), app.url(path), ip.to_owned());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                get(&http, &url, &[("x-forwarded-for", &ip)]).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    (replies, started.elapsed())
}

fn check_headers(replies: &[Reply], limit: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for r in replies {
        assert_eq!(r.num("x-ratelimit-limit"), limit);
        assert!(r.num("x-ratelimit-remaining") < limit);
        let reset = r.num("x-ratelimit-reset");
        assert!(reset > now && reset <= now + 61, "reset {reset} now {now}");
        assert!(r.header("ratelimit").is_some() && r.header("ratelimit-policy").is_some());
        match r.status {
            200 => assert_eq!(r.header("retry-after"), None),
            429 => {
                assert_eq!(r.num("x-ratelimit-remaining"), 0);
                let wait = r.num("retry-after");
                assert!((1..=60).contains(&wait), "retry-after {wait}");
                assert!(r.body.contains("rate_limited"));
            }
            other => panic!("status {other}: {}", r.body),
        }
    }
}

#[test]
fn burst_gives_exactly_the_configured_200s_and_429s_and_survives_a_restart() {
    let env = Env::start();
    let http = http();
    env.rt.block_on(async {
        let app = App::start(env.client(), VARS).await;
        let first_started = Instant::now();
        let (replies, took) = burst(&http, &app, "/search?q=x", "198.51.100.7").await;
        let ok = replies.iter().filter(|r| r.status == 200).count();
        let limited = replies.iter().filter(|r| r.status == 429).count();
        assert_eq!(ok + limited, 100);
        eprintln!("burst: {ok} × 200, {limited} × 429 in {took:?}");
        // 60 per minute refills one unit per second: a burst that takes under
        // a second gets exactly its 60; a slower one one more per second.
        let refills = took.as_secs() as usize;
        assert!(
            (60..=60 + refills).contains(&ok),
            "{ok} allowed in {took:?}"
        );
        if took < Duration::from_secs(1) {
            assert_eq!((ok, limited), (60, 40), "in {took:?}");
        }
        let mut remaining: Vec<u64> = replies
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.num("x-ratelimit-remaining"))
            .collect();
        remaining.sort_unstable();
        if ok == 60 {
            assert_eq!(
                remaining,
                (0..60).collect::<Vec<_>>(),
                "every unit handed out once"
            );
        }
        check_headers(&replies, 60);

        // Another client behind the same proxy has its own budget, and the
        // recommendations endpoint its own limit.
        let (other, _) = burst(&http, &app, "/recommendations", "198.51.100.8").await;
        let other_ok = other.iter().filter(|r| r.status == 200).count();
        assert!((30..=32).contains(&other_ok), "{other_ok}");
        check_headers(&other, 30);
        let rejected = crate::support::metric(
            &http,
            &app,
            "rate_limit_rejected_total{endpoint=\"search\"}",
        )
        .await;
        assert_eq!(rejected as usize, limited);

        // A pod restart: a new process state, the cluster's state persists.
        app.stop().await;
        let app = App::start(env.client(), VARS).await;
        let (again, _) = burst(&http, &app, "/search?q=x", "198.51.100.7").await;
        let again_ok = again.iter().filter(|r| r.status == 200).count();
        eprintln!(
            "after the restart: {again_ok} × 200, {} × 429",
            100 - again_ok
        );
        let refilled = first_started.elapsed().as_secs() as usize + 1;
        assert!(
            again_ok <= refilled,
            "{again_ok} allowed after the restart, {refilled} refilled"
        );
        assert!(again.iter().filter(|r| r.status == 429).count() >= 100 - refilled);
        check_headers(&again, 60);
        app.stop().await;
    });
}
