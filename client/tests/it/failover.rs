//! A leader kill in the middle of a steady request stream: no 5xx, no
//! request charged twice, and no limiter error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raftlimit_client::Limit;

use crate::support::{get, http, metric, remaining, App, Env};

/// A limit no test reaches, that refills one unit per 3650 days / 100000
/// (about 53 minutes): over the test, units taken are exactly requests allowed.
/// The deadline is above the default 3 s because a shared test machine can
/// stretch an election (the slowest request seen here took 1.3 to 2.4 s);
/// what is tested is that the request is retried on the new leader and
/// answered by the cluster, not how fast the election is.
const VARS: &[(&str, &str)] = &[
    ("RATE_LIMIT_DEFAULT", "100000"),
    ("RATE_LIMIT_WINDOW", "3650d"),
    ("RATE_LIMIT_DEADLINE_MS", "6000"),
    ("TRUSTED_PROXIES", "127.0.0.1/32"),
];

#[test]
fn leader_kill_mid_stream_gives_no_5xx_no_double_charge_and_no_errors() {
    let mut env = Env::start();
    let client = env.client();
    let app = env.rt.block_on(App::start(client.clone(), VARS));
    let http = http();
    let sent = Arc::new(AtomicUsize::new(0));
    let stop_at = 600;
    // Four clients sending back to back, as a steady stream.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (http, url, sent) = (http.clone(), app.url("/items/1"), sent.clone());
            env.rt.spawn(async move {
                let mut statuses = Vec::new();
                let mut slowest = Duration::ZERO;
                while sent.fetch_add(1, Ordering::SeqCst) < stop_at {
                    let started = Instant::now();
                    let r = get(&http, &url, &[("x-forwarded-for", "203.0.113.50")]).await;
                    slowest = slowest.max(started.elapsed());
                    statuses.push((r.status, r.header("x-ratelimit-limit").map(str::to_owned)));
                }
                (statuses, slowest)
            })
        })
        .collect();
    // Kill the leader once the stream is well under way (from this thread:
    // the node's runtime cannot be dropped inside the test runtime).
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.load(Ordering::SeqCst) < 150 {
        assert!(Instant::now() < deadline, "the stream did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let leader = env
        .cluster
        .wait_for_leader(Duration::from_secs(10))
        .unwrap();
    let killed_at = sent.load(Ordering::SeqCst);
    env.cluster.kill(leader);
    let new_leader = env
        .cluster
        .wait_for_leader(Duration::from_secs(20))
        .unwrap();
    assert_ne!(new_leader, leader);
    let mut all = Vec::new();
    let mut slowest = Duration::ZERO;
    for w in workers {
        let (statuses, slow) = env.rt.block_on(w).unwrap();
        all.extend(statuses);
        slowest = slowest.max(slow);
    }
    eprintln!(
        "{} requests, leader killed after {killed_at}, slowest {slowest:?}",
        all.len()
    );
    assert_eq!(all.len(), stop_at);
    let not_ok: Vec<_> = all.iter().filter(|(s, _)| *s != 200).collect();
    assert!(not_ok.is_empty(), "non-200 replies: {not_ok:?}");
    // Every answer came from the cluster (the fallback would say 50000).
    assert!(all
        .iter()
        .all(|(_, limit)| limit.as_deref() == Some("100000")));
    env.rt.block_on(async {
        assert_eq!(metric(&http, &app, "limiter_redis_errors").await, 0.0);
        assert_eq!(
            metric(&http, &app, "limiter_fallback_requests_total").await,
            0.0
        );
        // Units taken == requests allowed: no retry was charged twice.
        let key = "rl:default:default:ip:203.0.113.50";
        let limit = Limit::per(100_000, Duration::from_secs(3650 * 86_400));
        assert_eq!(
            100_000 - remaining(&client, key, &limit).await,
            stop_at as u64
        );
        app.stop().await;
    });
}
