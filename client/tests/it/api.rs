//! Every call of the typed API against a real cluster.

use std::time::Duration;

use raftlimit_client::{Acquired, Algo, Check, Client, ClientError, Limit, Policy};

use crate::support::{remaining, Env};

#[test]
fn checks_peeks_refunds_and_resets() {
    let env = Env::start();
    let client = env.client();
    env.rt.block_on(async {
        let limit = Limit::per_second(5);
        let first = client.check("api:a", &limit).await.unwrap();
        assert!(first.allowed);
        assert_eq!(
            (first.limit, first.remaining, first.retry_after),
            (5, 4, None)
        );
        assert_eq!(first.reset_after, Duration::from_millis(200));

        // A cost, then a peek that changes nothing.
        let d = client
            .check_with("api:a", &limit, &Check::cost(4))
            .await
            .unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        let p1 = client.peek("api:a", &limit).await.unwrap();
        let p2 = client.peek("api:a", &limit).await.unwrap();
        assert!(!p1.allowed && !p2.allowed);
        assert!(p1
            .retry_after
            .is_some_and(|r| r > Duration::ZERO && r <= Duration::from_millis(200)));
        assert_eq!(p2.remaining, 0);

        // Refund two units; reset empties the key.
        let left = client.refund("api:a", 2).await.unwrap();
        assert!(left.is_some_and(|n| (2..=3).contains(&n)), "{left:?}");
        assert_eq!(client.refund("api:missing", 1).await.unwrap(), None);
        assert!(client.reset("api:a").await.unwrap());
        assert!(!client.reset("api:a").await.unwrap());
        assert_eq!(client.check("api:a", &limit).await.unwrap().remaining, 4);

        // Other algorithms and bursts go through as arguments.
        let fixed = Limit::per_minute(2).algo(Algo::Fixed);
        assert_eq!(client.check("api:fixed", &fixed).await.unwrap().limit, 2);
        let bursty = Limit::per_second(1).burst(10);
        assert_eq!(
            client.check("api:burst", &bursty).await.unwrap().remaining,
            9
        );
        let sliding = Limit::per_second(3).algo(Algo::Sliding);
        assert_eq!(
            client
                .check("api:sliding", &sliding)
                .await
                .unwrap()
                .remaining,
            2
        );

        // Bad arguments come back as the server's error.
        let err = client
            .check("api:bad", &Limit::per_second(0))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ClientError::Server(m) if m.contains("limit must be")),
            "{err}"
        );
    });
}

#[test]
fn the_same_id_is_charged_once() {
    let env = Env::start();
    let client = env.client();
    env.rt.block_on(async {
        let limit = Limit::per_minute(10);
        let options = Check {
            cost: 3,
            peek: false,
            id: Some("request-1".into()),
        };
        let a = client.check_with("idem", &limit, &options).await.unwrap();
        let b = client.check_with("idem", &limit, &options).await.unwrap();
        assert_eq!((a.allowed, a.remaining), (true, 7));
        assert_eq!(
            (b.allowed, b.remaining, b.reset_after),
            (a.allowed, a.remaining, a.reset_after)
        );
        assert_eq!(remaining(&client, "idem", &limit).await, 7);
        // A peek answers what the same check would: one unit fewer.
        assert_eq!(client.peek("idem", &limit).await.unwrap().remaining, 6);
        // Without a caller's id every call gets a fresh one.
        client.check("idem", &limit).await.unwrap();
        client.check("idem", &limit).await.unwrap();
        assert_eq!(remaining(&client, "idem", &limit).await, 5);
    });
}

#[test]
fn several_keys_all_or_none() {
    let env = Env::start();
    let client = env.client();
    env.rt.block_on(async {
        let keys = [
            ("m:user", Limit::per_minute(2)),
            ("m:tenant", Limit::per_minute(10)),
        ];
        let first = client.check_many(&keys, 1).await.unwrap();
        assert!(first.allowed && first.retry_after.is_none());
        assert_eq!(
            first
                .decisions
                .iter()
                .map(|d| d.remaining)
                .collect::<Vec<_>>(),
            [1, 9]
        );
        client.check_many(&keys, 1).await.unwrap();
        let denied = client.check_many(&keys, 1).await.unwrap();
        assert!(!denied.allowed);
        assert!(denied.retry_after.is_some());
        // The tenant was not charged by the denied batch.
        assert!(denied.decisions[1].allowed);
        assert_eq!(remaining(&client, "m:tenant", &keys[1].1).await, 8);
        assert_eq!(denied.binding().map(|d| d.limit), Some(2));
        assert!(client.check_many(&[], 1).await.is_err());
    });
}

#[test]
fn named_policies() {
    let env = Env::start();
    let client = env.client();
    env.rt.block_on(async {
        let policy = Policy {
            limit: 100,
            period: Duration::from_secs(60),
            burst: 20,
            algo: Algo::Gcra,
            shadow: false,
        };
        client.set_policy("api", &policy).await.unwrap();
        client
            .set_policy(
                "shadowed",
                &Policy {
                    shadow: true,
                    ..Policy::new(1, Duration::from_secs(60))
                },
            )
            .await
            .unwrap();
        assert_eq!(client.get_policy("api").await.unwrap(), Some(policy));
        assert_eq!(client.get_policy("nope").await.unwrap(), None);
        assert_eq!(client.list_policies().await.unwrap(), ["api", "shadowed"]);
        let d = client.check("p:1", &Limit::policy("api")).await.unwrap();
        assert_eq!(
            (d.limit, d.remaining, d.policy_name.as_str()),
            (20, 19, "api")
        );
        // A shadow policy always allows.
        for _ in 0..3 {
            assert!(
                client
                    .check("p:2", &Limit::policy("shadowed"))
                    .await
                    .unwrap()
                    .allowed
            );
        }
        assert!(client.delete_policy("api").await.unwrap());
        assert!(!client.delete_policy("api").await.unwrap());
        assert!(client.check("p:1", &Limit::policy("api")).await.is_err());
    });
}

#[test]
fn leases_are_released_by_the_guard() {
    let env = Env::start();
    let client = env.client();
    env.rt.block_on(async {
        let ttl = Duration::from_secs(30);
        let Acquired::Lease(a) = client.acquire("lease:k", 2, ttl).await.unwrap() else {
            panic!("first lease");
        };
        let Acquired::Lease(b) = client.acquire("lease:k", 2, ttl).await.unwrap() else {
            panic!("second lease");
        };
        assert_eq!((a.held(), b.held(), b.limit()), (1, 2, 2));
        assert!(matches!(
            client.acquire("lease:k", 2, ttl).await.unwrap(),
            Acquired::Full { held: 2, limit: 2 }
        ));
        assert_eq!(client.leases("lease:k").await.unwrap(), 2);
        // Explicit release answers; dropping releases in the background.
        let id = b.id().to_owned();
        assert!(b.release().await.unwrap());
        assert!(!client.release("lease:k", &id).await.unwrap());
        drop(a);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while client.leases("lease:k").await.unwrap() != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the dropped lease was not released"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn connects_through_any_surviving_seed_and_finds_the_leader() {
    let mut env = Env::start();
    let leader = env
        .cluster
        .wait_for_leader(Duration::from_secs(10))
        .unwrap();
    let config = env.config();
    let client = env.rt.block_on(Client::connect(config.clone())).unwrap();
    assert_eq!(client.leader(), Some(leader));
    // With a follower down, connecting still works and finds the same leader.
    let follower = env.cluster.others(leader)[0];
    env.cluster.kill(follower);
    let again = env.rt.block_on(Client::connect(config)).unwrap();
    assert_eq!(again.leader(), Some(leader));
    env.rt.block_on(async {
        assert!(
            again
                .check("seed:k", &Limit::per_second(1))
                .await
                .unwrap()
                .allowed
        );
    });
    // Nothing reachable: a clear error, quickly.
    let mut dead = ClientConfigExt::unreachable();
    dead.retry.budget = Duration::from_millis(300);
    let err = env.rt.block_on(Client::connect(dead)).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

struct ClientConfigExt;

impl ClientConfigExt {
    fn unreachable() -> raftlimit_client::ClientConfig {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        raftlimit_client::ClientConfig::from_nodes([format!("127.0.0.1:{port}")]).unwrap()
    }
}

#[test]
fn finds_the_leader_through_sentinel_when_role_is_not_permitted() {
    let env = Env::start();
    let leader = env
        .cluster
        .wait_for_leader(Duration::from_secs(10))
        .unwrap();
    let mut admin = env.cluster.client(leader).unwrap();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("app")
        .arg("on")
        .arg(">app-password")
        .arg("~*")
        .arg("+@all")
        .arg("-role")
        .query(&mut admin)
        .unwrap();
    let mut config = env.config();
    config.username = Some("app".into());
    config.password = Some("app-password".into());
    config.cluster_name = "raftlimit-test".into();
    env.rt.block_on(async {
        let client = Client::new(config).unwrap();
        let role = client.execute_on(0, &redis::cmd("ROLE")).await;
        assert!(
            matches!(&role, Err(ClientError::Server(m)) if m.starts_with("NOPERM")),
            "{role:?}"
        );
        assert_eq!(client.discover_leader().await, Some(leader));
        assert!(
            client
                .check("sentinel:k", &Limit::per_second(1))
                .await
                .unwrap()
                .allowed
        );
    });
}
