//! Shared helpers: a cluster with a runtime for the client, the example app
//! on port 0, and a small HTTP client.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use raftlimit_client::layer::env::EnvSettings;
use raftlimit_client::{Client, ClientConfig, RateLimitLayer};
use raftlimit_testkit::{ClusterOptions, TestCluster};
use tokio::runtime::Runtime;

pub struct Env {
    pub cluster: TestCluster,
    pub rt: Runtime,
}

impl Env {
    pub fn start() -> Env {
        Env::with(ClusterOptions::default())
    }

    pub fn with(options: ClusterOptions) -> Env {
        let cluster = TestCluster::start(options).expect("cluster");
        cluster
            .wait_for_leader(Duration::from_secs(20))
            .expect("leader");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        Env { cluster, rt }
    }

    pub fn url(&self) -> String {
        let hosts: Vec<String> = (0..self.cluster.len())
            .map(|i| self.cluster.resp_addr(i).to_string())
            .collect();
        format!("redis://{}", hosts.join(","))
    }

    pub fn config(&self) -> ClientConfig {
        ClientConfig::from_url(&self.url()).expect("url")
    }

    /// A client for the cluster (it dials nothing until first used).
    pub fn client(&self) -> Client {
        Client::new(self.config()).expect("client")
    }
}

/// A running copy of the example app.
pub struct App {
    pub addr: SocketAddr,
    pub layer: RateLimitLayer,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl App {
    /// Starts the example app (from examples/axum_api.rs) with `vars` as its
    /// environment, on a free loopback port.
    pub async fn start(client: Client, vars: &[(&str, &str)]) -> App {
        let settings =
            EnvSettings::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .expect("settings");
        let (router, layer) = crate::axum_api::app(client, &settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        });
        App {
            addr,
            layer,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the app as a pod shutting down would: everything in memory goes.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn num(&self, name: &str) -> u64 {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
            .parse()
            .unwrap_or_else(|_| panic!("{name} not a number"))
    }
}

pub type Http = HttpClient<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

pub fn http() -> Http {
    HttpClient::builder(TokioExecutor::new()).build_http()
}

/// GET `url` with extra headers.
pub async fn get(http: &Http, url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = http::Request::get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = http
        .request(request.body(Empty::new()).expect("request"))
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Waits for `condition`, polling, up to `timeout`.
pub async fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// A metric's value in the app's /metrics page.
pub async fn metric(http: &Http, app: &App, series: &str) -> f64 {
    let page = get(http, &app.url("/metrics"), &[]).await;
    assert_eq!(page.status, 200);
    raftlimit_client::metrics::sample(&page.body, series).unwrap_or(0.0)
}

/// Units left on `key` now (a zero-cost peek takes nothing and asks for nothing).
pub async fn remaining(client: &Client, key: &str, limit: &raftlimit_client::Limit) -> u64 {
    let ask = raftlimit_client::Check {
        cost: 0,
        peek: true,
        id: None,
    };
    client
        .check_with(key, limit, &ask)
        .await
        .expect("peek")
        .remaining
}
