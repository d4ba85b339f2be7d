//! Glue: binds the listeners, starts the Raft node, the RESP listener, the
//! HTTP endpoint and the metrics updater, and shuts them down.

use std::net::SocketAddr;
use std::sync::Arc;

use raftlimit_raft::network::{NetFilter, PlainTransport, Transport};
use raftlimit_raft::RaftNode;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::ServerError;
use crate::shared::Shared;

/// The three sockets a node listens on. Binding them before starting lets a
/// caller (the test harness) pick free ports with port 0.
#[derive(Debug)]
pub struct Listeners {
    pub resp: TcpListener,
    pub http: TcpListener,
    pub raft: TcpListener,
}

impl Listeners {
    pub async fn bind(config: &Config) -> Result<Listeners, ServerError> {
        async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { what, addr, source })
        }
        Ok(Listeners {
            resp: bind("RESP", config.resp_addr).await?,
            http: bind("HTTP", config.http_addr).await?,
            raft: bind("Raft", config.raft_addr).await?,
        })
    }
}

/// Installs the config file's `[policies.*]` into the replicated policy
/// table. The leader does it, once per term, for names the table lacks, so a
/// policy changed at runtime with RL.POLICY SET is not overwritten.
async fn seed_policies(shared: Arc<Shared>) {
    if shared.config.policies.is_empty() {
        return;
    }
    let mut seeded_term = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tick.tick().await;
        let status = shared.node.status();
        if !status.is_leader || seeded_term == Some(status.term) {
            continue;
        }
        let missing: Vec<_> = {
            let state = shared.node.state().read();
            shared
                .config
                .policies
                .iter()
                .filter(|(name, _)| !state.data.policies.contains_key(*name))
                .map(|(name, policy)| policy.command(name))
                .collect()
        };
        let mut ok = true;
        for argv in missing {
            let reply = shared.node.write(argv).await;
            if reply.is_error() {
                tracing::warn!(?reply, "seeding a configured policy failed");
                ok = false;
            }
        }
        if ok {
            seeded_term = Some(status.term);
        }
    }
}

/// A running node.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    resp_addr: SocketAddr,
    http_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts a node on already-bound listeners.
    pub async fn start(
        config: Config,
        listeners: Listeners,
        filter: NetFilter,
    ) -> Result<Server, ServerError> {
        let metrics = crate::metrics::recorder()?;
        let resp_addr = listeners.resp.local_addr()?;
        let http_addr = listeners.http.local_addr()?;
        let transport: Arc<dyn Transport> = Arc::new(PlainTransport);
        let node =
            RaftNode::start(config.node_config()?, listeners.raft, transport, filter).await?;
        let shared = Arc::new(Shared::new(config, node));
        let tasks = vec![
            tokio::spawn(crate::listener::serve(listeners.resp, shared.clone())),
            tokio::spawn(crate::http::serve(listeners.http, shared.clone(), metrics)),
            tokio::spawn(crate::metrics::update_gauges(shared.clone())),
            tokio::spawn(seed_policies(shared.clone())),
        ];
        tracing::info!(resp = %resp_addr, http = %http_addr, node = shared.config.node_id, "serving");
        Ok(Server {
            shared,
            resp_addr,
            http_addr,
            tasks,
        })
    }

    /// Binds the configured addresses and starts.
    pub async fn bind_and_start(config: Config) -> Result<Server, ServerError> {
        let listeners = Listeners::bind(&config).await?;
        Server::start(config, listeners, NetFilter::default()).await
    }

    pub fn resp_addr(&self) -> SocketAddr {
        self.resp_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn node(&self) -> &Arc<RaftNode> {
        &self.shared.node
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting clients, then stops Raft.
    pub async fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.shared.node.shutdown().await;
    }
}
