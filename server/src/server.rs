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
use crate::tls::{CertSummary, TlsContext, TlsTransport};

/// A listening socket with an explicit accept backlog.
///
/// Why not `TcpListener::bind`: its backlog is 128 here, and a burst of
/// connections (a client pool starting, thousands of clients reconnecting
/// after a failover) overflows it faster than the accept loop drains it.
/// Each overflow drops a SYN, and the client waits a full second before it
/// retries: 10,000 connections opened one after another took a minute.
///
/// `reuse_port` (`Config::reuse_port`) lets the node bind beside a
/// launcher's reservation of the same port.
fn listen(addr: SocketAddr, backlog: u32, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The sockets a node listens on. Binding them before starting lets a
/// caller (the test harness) pick free ports with port 0.
#[derive(Debug)]
pub struct Listeners {
    /// Plaintext RESP; `None` when TLS is configured without `plaintext = true`.
    pub resp: Option<TcpListener>,
    /// RESP over TLS; present exactly when `[tls]` is configured.
    pub tls: Option<TcpListener>,
    pub http: TcpListener,
    pub raft: TcpListener,
}

impl Listeners {
    /// Binds every configured address, each with the configured accept
    /// backlog (`tcp_backlog`).
    pub async fn bind(config: &Config) -> Result<Listeners, ServerError> {
        let backlog = config.limits.tcp_backlog;
        let bind = |what: &'static str, addr: SocketAddr| {
            listen(addr, backlog, config.reuse_port).map_err(|source| ServerError::Bind {
                what,
                addr,
                source,
            })
        };
        let resp = match config.plaintext_enabled() {
            true => Some(bind("RESP", config.resp_addr)?),
            false => None,
        };
        let tls = match &config.tls {
            Some(tls) => Some(bind("RESP TLS", tls.addr)?),
            None => None,
        };
        Ok(Listeners {
            resp,
            tls,
            http: bind("HTTP", config.http_addr)?,
            raft: bind("Raft", config.raft_addr)?,
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
    resp_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    http_addr: SocketAddr,
    tls: Option<Arc<TlsContext>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts a node on already-bound listeners.
    ///
    /// With `[tls]`, the Raft transport is mutual TLS and clients are
    /// served on the TLS listener (and on the plaintext one only if the
    /// config enables it).
    pub async fn start(
        config: Config,
        listeners: Listeners,
        filter: NetFilter,
    ) -> Result<Server, ServerError> {
        let metrics = crate::metrics::recorder()?;
        if config.plaintext_enabled() != listeners.resp.is_some()
            || config.tls.is_some() != listeners.tls.is_some()
        {
            return Err(ServerError::Config(
                "the RESP listeners do not match the configuration ([tls] and plaintext)".into(),
            ));
        }
        let resp_addr = listeners
            .resp
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let tls_addr = listeners
            .tls
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let http_addr = listeners.http.local_addr()?;
        let tls = match &config.tls {
            Some(settings) => {
                crate::tls::install_default_provider();
                let tls = TlsContext::load(settings, config.node_id)?;
                let cert = tls.certificate();
                tracing::info!(
                    cn = cert.common_name.as_deref().unwrap_or(""),
                    serial = %cert.serial,
                    not_after = cert.not_after,
                    "TLS enabled; peers use mutual TLS"
                );
                Some(tls)
            }
            None => None,
        };
        let transport: Arc<dyn Transport> = match &tls {
            Some(tls) => Arc::new(TlsTransport::new(tls.clone())),
            None => Arc::new(PlainTransport),
        };
        let node =
            RaftNode::start(config.node_config()?, listeners.raft, transport, filter).await?;
        let shared = Arc::new(Shared::new(config, node));
        let mut tasks = vec![
            tokio::spawn(crate::http::serve(listeners.http, shared.clone(), metrics)),
            tokio::spawn(crate::metrics::update_gauges(shared.clone())),
            tokio::spawn(seed_policies(shared.clone())),
        ];
        if let Some(resp) = listeners.resp {
            tasks.push(tokio::spawn(crate::listener::serve(resp, shared.clone())));
        }
        if let (Some(listener), Some(tls)) = (listeners.tls, &tls) {
            tasks.push(tokio::spawn(crate::listener::serve_tls(
                listener,
                shared.clone(),
                tls.clone(),
            )));
            tasks.push(tokio::spawn(tls.clone().watch()));
        }
        tracing::info!(
            resp = ?resp_addr,
            tls = ?tls_addr,
            http = %http_addr,
            node = shared.config.node_id,
            "serving"
        );
        Ok(Server {
            shared,
            resp_addr,
            tls_addr,
            http_addr,
            tls,
            tasks,
        })
    }

    /// Binds the configured addresses and starts.
    pub async fn bind_and_start(config: Config) -> Result<Server, ServerError> {
        let listeners = Listeners::bind(&config).await?;
        Server::start(config, listeners, NetFilter::default()).await
    }

    /// The plaintext RESP address, if that port is open.
    pub fn resp_addr(&self) -> Option<SocketAddr> {
        self.resp_addr
    }

    /// The TLS RESP address, if TLS is configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The TLS state, if TLS is configured.
    pub fn tls(&self) -> Option<&Arc<TlsContext>> {
        self.tls.as_ref()
    }

    /// Re-reads the certificate, key and CA files (what SIGHUP does). New
    /// handshakes, of clients and peers, get the new certificate; open
    /// connections are untouched. `Ok(None)` without TLS.
    pub fn reload_tls(&self) -> Result<Option<CertSummary>, ServerError> {
        self.tls.as_ref().map(|tls| tls.reload()).transpose()
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
