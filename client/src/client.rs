//! The connection layer: a pool of multiplexed connections per node, leader
//! discovery, and retries across a failover.
//!
//! Any node serves any command (a follower forwards to the leader), so the
//! client never *needs* the leader; it prefers it to save the forwarding hop.
//! The leader is whichever seed answers `master` to `ROLE` (asked of every
//! seed at once); when `ROLE` is not permitted, `SENTINEL
//! get-master-addr-by-name` names it. A seed's own answer is trusted over an
//! address another node reports, because behind TLS or NAT the address a
//! node advertises is not necessarily the one this client dials.
//!
//! Retrying is where a rate limiter client can do harm: a check resent after
//! a lost reply must not be charged twice. Every call states whether it is
//! safe to resend ([`Retry`]); limiter checks are made safe by carrying an
//! `ID` token, which the cluster de-duplicates for 60 s across nodes and
//! failovers. Calls that are not safe are resent only when the cluster
//! proves it did not act (the connection was never made, or the reply was
//! `CLUSTERDOWN`/`MOVED`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, Value};

use crate::config::{ClientConfig, NodeAddr};
use crate::error::{ClientError, Result};

/// Whether a command may be sent again after an attempt whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, idempotent writes, and limiter writes carrying an `ID`.
    Always,
    /// Writes that would act twice (`RL.REFUND`, `RL.ACQUIRE`): resent only
    /// when the cluster certainly did not act on the earlier attempt.
    IfNotApplied,
}

const NO_LEADER: usize = usize::MAX;

/// How long a node that refused a connection is skipped when choosing
/// where to send (it is still tried when every node is down).
const DOWN_FOR: Duration = Duration::from_millis(1_000);

struct Node {
    addr: NodeAddr,
    client: redis::Client,
    slots: Vec<tokio::sync::Mutex<Option<MultiplexedConnection>>>,
    next_slot: AtomicUsize,
    down_until: Mutex<Option<Instant>>,
}

impl Node {
    fn is_down(&self, now: Instant) -> bool {
        matches!(*self.down_until.lock(), Some(until) if until > now)
    }
}

struct Inner {
    config: ClientConfig,
    nodes: Vec<Node>,
    leader: AtomicUsize,
    next_node: AtomicUsize,
    discovery: tokio::sync::Mutex<Option<Instant>>,
    conn_config: AsyncConnectionConfig,
}

/// A handle to a raftlimit cluster; cheap to clone, shared by all tasks.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("nodes", &self.inner.config.nodes)
            .field("leader", &self.leader())
            .finish()
    }
}

/// What one attempt's failure means for the next.
enum Failure {
    /// The command certainly did not run (no connection, CLUSTERDOWN, MOVED).
    NotApplied(String),
    /// The command may have run (lost connection or reply, TRYAGAIN).
    Unknown(String),
    /// An answer to give the caller as it is.
    Final(ClientError),
}

impl Client {
    /// A client for `config`. Nothing is dialled yet: connections are made
    /// on first use, so an application can start while the cluster is down.
    pub fn new(config: ClientConfig) -> Result<Client> {
        config.validate()?;
        if config.tls.is_some() {
            // The redis crate builds its rustls config from the process-wide
            // provider; ring is the one this workspace compiles. An already
            // installed provider (the application's own) is kept.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let certificates = match &config.tls {
            Some(tls) => Some(redis::TlsCertificates {
                client_tls: match (&tls.cert_file, &tls.key_file) {
                    (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                        client_cert: read_file(cert)?,
                        client_key: read_file(key)?,
                    }),
                    _ => None,
                },
                root_cert: tls.ca_file.as_ref().map(read_file).transpose()?,
            }),
            None => None,
        };
        let mut nodes = Vec::with_capacity(config.nodes.len());
        for addr in &config.nodes {
            let info = redis::ConnectionInfo {
                addr: match config.tls {
                    Some(_) => redis::ConnectionAddr::TcpTls {
                        host: addr.host.clone(),
                        port: addr.port,
                        insecure: false,
                        tls_params: None,
                    },
                    None => redis::ConnectionAddr::Tcp(addr.host.clone(), addr.port),
                },
                redis: redis::RedisConnectionInfo {
                    db: 0,
                    username: config.username.clone(),
                    password: config.password.clone(),
                    ..Default::default()
                },
            };
            let client = match &certificates {
                Some(certs) => redis::Client::build_with_tls(info, certs.clone()),
                None => redis::Client::open(info),
            }
            .map_err(|e| ClientError::Config(format!("{addr}: {e}")))?;
            nodes.push(Node {
                addr: addr.clone(),
                client,
                slots: (0..config.pool_size)
                    .map(|_| tokio::sync::Mutex::new(None))
                    .collect(),
                next_slot: AtomicUsize::new(0),
                down_until: Mutex::new(None),
            });
        }
        let conn_config = AsyncConnectionConfig::new()
            .set_connection_timeout(config.connect_timeout)
            .set_response_timeout(config.response_timeout);
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                nodes,
                leader: AtomicUsize::new(NO_LEADER),
                next_node: AtomicUsize::new(0),
                discovery: tokio::sync::Mutex::new(None),
                conn_config,
            }),
        })
    }

    /// [`Client::new`], then finds the leader; fails when no node answers.
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        let client = Client::new(config)?;
        client.execute(&redis::cmd("PING"), Retry::Always).await?;
        client.discover_leader().await;
        Ok(client)
    }

    /// From `RAFTLIMIT_URL` and friends ([`ClientConfig::from_env`]).
    pub fn from_env() -> Result<Client> {
        Client::new(ClientConfig::from_env()?)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    pub fn nodes(&self) -> Vec<NodeAddr> {
        self.inner.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    /// The seed that led at the last discovery, if any.
    pub fn leader(&self) -> Option<usize> {
        match self.inner.leader.load(Ordering::Relaxed) {
            NO_LEADER => None,
            i => Some(i),
        }
    }

    /// Sends `cmd`, retrying across nodes with backoff within the retry
    /// budget, as far as `retry` allows.
    pub async fn execute(&self, cmd: &redis::Cmd, retry: Retry) -> Result<Value> {
        let policy = &self.inner.config.retry;
        let started = Instant::now();
        let mut backoff = policy.initial_backoff;
        let mut last_error: String;
        let mut attempt = 0usize;
        loop {
            let node = self.pick_node(attempt);
            attempt += 1;
            match self.attempt(node, cmd).await {
                Ok(value) => {
                    if self.leader().is_none() {
                        self.spawn_rediscovery();
                    }
                    return Ok(value);
                }
                Err(Failure::Final(err)) => return Err(err),
                Err(Failure::Unknown(detail)) if retry == Retry::IfNotApplied => {
                    self.spawn_discovery();
                    return Err(ClientError::OutcomeUnknown(detail));
                }
                Err(Failure::Unknown(detail)) | Err(Failure::NotApplied(detail)) => {
                    last_error = detail;
                }
            }
            tracing::debug!(attempt, error = %last_error, "retrying");
            self.discover_leader().await;
            let elapsed = started.elapsed();
            if elapsed + backoff > policy.budget {
                return Err(ClientError::Unavailable(format!(
                    "gave up after {attempt} attempts in {elapsed:?}: {last_error}"
                )));
            }
            // Full jitter between half and all of the backoff, so clients
            // that lost the same leader do not return in lockstep.
            let pause = backoff.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
    }

    /// Sends `cmd` once to seed `node`, without retrying (for tools that
    /// report on each node).
    pub async fn execute_on(&self, node: usize, cmd: &redis::Cmd) -> Result<Value> {
        if node >= self.inner.nodes.len() {
            return Err(ClientError::Config(format!("no node {node}")));
        }
        match self.attempt(node, cmd).await {
            Ok(value) => Ok(value),
            Err(Failure::Final(err)) => Err(err),
            Err(Failure::NotApplied(detail)) => Err(ClientError::Unavailable(detail)),
            Err(Failure::Unknown(detail)) => Err(ClientError::OutcomeUnknown(detail)),
        }
    }

    /// The leader if known and not marked down, else the next node that is
    /// not marked down (or, when all are, simply the next one).
    fn pick_node(&self, attempt: usize) -> usize {
        let inner = &self.inner;
        let now = Instant::now();
        let count = inner.nodes.len();
        if let Some(leader) = self.leader() {
            if attempt == 0 || !inner.nodes[leader].is_down(now) {
                return leader;
            }
        }
        let start = inner.next_node.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|i| (start + i) % count)
            .find(|&i| !inner.nodes[i].is_down(now))
            .unwrap_or(start % count)
    }

    async fn attempt(&self, index: usize, cmd: &redis::Cmd) -> std::result::Result<Value, Failure> {
        let node = &self.inner.nodes[index];
        let slot_index = node.next_slot.fetch_add(1, Ordering::Relaxed) % node.slots.len();
        let slot = &node.slots[slot_index];
        let mut conn = {
            let mut guard = slot.lock().await;
            match guard.as_ref() {
                Some(conn) => conn.clone(),
                None => {
                    match node
                        .client
                        .get_multiplexed_async_connection_with_config(&self.inner.conn_config)
                        .await
                    {
                        Ok(conn) => {
                            *node.down_until.lock() = None;
                            *guard = Some(conn.clone());
                            conn
                        }
                        Err(err) => {
                            return Err(match classify_connect(&err) {
                                Some(final_err) => Failure::Final(final_err),
                                None => {
                                    *node.down_until.lock() = Some(Instant::now() + DOWN_FOR);
                                    if self.leader() == Some(index) {
                                        self.inner.leader.store(NO_LEADER, Ordering::Relaxed);
                                    }
                                    Failure::NotApplied(format!("{}: {err}", node.addr))
                                }
                            });
                        }
                    }
                }
            }
        };
        match cmd.query_async::<Value>(&mut conn).await {
            Ok(value) => Ok(value),
            Err(err) => {
                let failure = self.classify_reply_error(index, cmd, &err);
                if matches!(failure, Failure::Unknown(_)) {
                    // The connection may be broken, or may deliver the lost
                    // reply late: in both cases it must not serve again.
                    let mut guard = slot.lock().await;
                    *guard = None;
                    if self.leader() == Some(index) {
                        self.inner.leader.store(NO_LEADER, Ordering::Relaxed);
                    }
                }
                if err.kind() == ErrorKind::IoError {
                    // A killed node's port may still accept connections for
                    // a moment (the kernel queues them), so a lost
                    // connection, not only a refused one, sends the next
                    // attempts elsewhere.
                    *node.down_until.lock() = Some(Instant::now() + DOWN_FOR);
                }
                Err(failure)
            }
        }
    }

    fn classify_reply_error(&self, index: usize, cmd: &redis::Cmd, err: &RedisError) -> Failure {
        let node = &self.inner.nodes[index].addr;
        match err.kind() {
            ErrorKind::ClusterDown | ErrorKind::MasterDown | ErrorKind::BusyLoadingError => {
                self.inner.leader.store(NO_LEADER, Ordering::Relaxed);
                Failure::NotApplied(format!("{node}: {}", describe(err)))
            }
            ErrorKind::Moved => {
                if let Some((addr, _)) = err.redirect_node() {
                    if let Some(i) = self.find_node(addr) {
                        self.inner.leader.store(i, Ordering::Relaxed);
                    }
                }
                Failure::NotApplied(format!("{node}: {}", describe(err)))
            }
            ErrorKind::TryAgain => Failure::Unknown(format!("{node}: {}", describe(err))),
            ErrorKind::IoError | ErrorKind::ParseError => {
                Failure::Unknown(format!("{node}: {}", describe(err)))
            }
            ErrorKind::AuthenticationFailed => Failure::Final(ClientError::Server(describe(err))),
            _ => {
                let text = describe(err);
                if text.starts_with("ERR unknown command") {
                    let command = cmd
                        .args_iter()
                        .next()
                        .map(|arg| match arg {
                            redis::Arg::Simple(bytes) => {
                                String::from_utf8_lossy(bytes).into_owned()
                            }
                            redis::Arg::Cursor => String::new(),
                        })
                        .unwrap_or_default();
                    Failure::Final(ClientError::UnknownCommand {
                        command,
                        message: text,
                    })
                } else {
                    Failure::Final(ClientError::Server(text))
                }
            }
        }
    }

    fn find_node(&self, addr: &str) -> Option<usize> {
        let parsed = NodeAddr::parse(addr).ok()?;
        self.inner.nodes.iter().position(|n| n.addr == parsed)
    }

    /// While the leader is unknown (an election was under way at the last
    /// round), looks again in the background, at most every 200 ms.
    fn spawn_rediscovery(&self) {
        let due = match self.inner.discovery.try_lock() {
            Ok(last) => !matches!(*last, Some(at) if at.elapsed() < Duration::from_millis(200)),
            Err(_) => false,
        };
        if due {
            self.spawn_discovery();
        }
    }

    fn spawn_discovery(&self) {
        let client = self.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                client.discover_leader().await;
            });
        }
    }

    /// Asks every seed for its role (at once) and remembers the leader.
    /// Concurrent callers share one round.
    pub async fn discover_leader(&self) -> Option<usize> {
        let asked_at = Instant::now();
        let mut last = self.inner.discovery.lock().await;
        if matches!(*last, Some(at) if at >= asked_at) {
            // Another task finished a round while this one waited.
            return self.leader();
        }
        let timeout = self.inner.config.connect_timeout;
        let rounds = (0..self.inner.nodes.len()).map(|i| async move {
            let role = tokio::time::timeout(timeout, self.execute_on(i, &redis::cmd("ROLE"))).await;
            (i, role)
        });
        let answers = futures::future::join_all(rounds).await;
        let mut leader = None;
        let mut hinted = None;
        let mut role_refused = false;
        for (i, answer) in answers {
            match answer {
                Ok(Ok(value)) => match parse_role(&value) {
                    Some(Role::Master) => leader = Some(i),
                    // A follower names the leader it last heard from, which
                    // during a failover is the one that just failed.
                    Some(Role::Replica(addr)) => {
                        let now = Instant::now();
                        let alive = self
                            .find_node(&addr)
                            .filter(|&n| !self.inner.nodes[n].is_down(now));
                        hinted = hinted.or(alive);
                    }
                    None => {}
                },
                Ok(Err(ClientError::Server(_))) => role_refused = true,
                _ => {}
            }
        }
        if leader.is_none() && role_refused {
            leader = self.sentinel_leader().await;
        }
        let found = leader.or(hinted);
        self.inner
            .leader
            .store(found.unwrap_or(NO_LEADER), Ordering::Relaxed);
        *last = Some(Instant::now());
        found
    }

    async fn sentinel_leader(&self) -> Option<usize> {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("get-master-addr-by-name")
            .arg(&self.inner.config.cluster_name);
        for i in 0..self.inner.nodes.len() {
            if let Ok(Value::Array(items)) = self.execute_on(i, &cmd).await {
                if let [host, port] = items.as_slice() {
                    let (Some(host), Some(port)) = (value_text(host), value_text(port)) else {
                        continue;
                    };
                    if let Some(found) = self.find_node(&format!("{host}:{port}")) {
                        return Some(found);
                    }
                }
            }
        }
        None
    }
}

enum Role {
    Master,
    Replica(String),
}

/// `ROLE`: `["master", offset, [...]]` or `["slave", host, port, state, offset]`.
fn parse_role(value: &Value) -> Option<Role> {
    let Value::Array(items) = value else {
        return None;
    };
    match items.first().and_then(value_text).as_deref() {
        Some("master") => Some(Role::Master),
        Some("slave") => {
            let host = items.get(1).and_then(value_text)?;
            let port = items.get(2).and_then(value_text)?;
            Some(Role::Replica(format!("{host}:{port}")))
        }
        _ => None,
    }
}

/// A bulk, simple string or integer as text.
pub(crate) fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// `CODE detail`, the way the server wrote it.
fn describe(err: &RedisError) -> String {
    match (err.code(), err.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => err.to_string(),
    }
}

/// A connection failure the cluster will not fix by itself: bad
/// credentials or TLS material. Everything else is worth another node.
fn classify_connect(err: &RedisError) -> Option<ClientError> {
    match err.kind() {
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig => {
            Some(ClientError::Server(describe(err)))
        }
        ErrorKind::ResponseError | ErrorKind::ExtensionError => {
            // AUTH or HELLO refused (WRONGPASS, NOPERM…).
            Some(ClientError::Server(describe(err)))
        }
        _ => None,
    }
}

fn read_file(path: &std::path::PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| ClientError::File {
        path: path.display().to_string(),
        source,
    })
}
