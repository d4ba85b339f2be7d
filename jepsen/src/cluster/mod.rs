//! How the harness reaches and hurts a cluster: client endpoints and faults.
pub mod docker; // docker-compose containers: docker kill/start, docker pause/unpause, iptables via nsenter
pub mod local; // local processes: kill -9, SIGSTOP/SIGCONT (partition unsupported)

/// Where and how a client connects to one node.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// 1-based node id, as in the server config.
    pub node: u64,
    /// RESP address reachable from the harness.
    pub addr: std::net::SocketAddr,
    /// `Some` => TLS (rediss).
    pub tls: Option<ClientTls>,
    /// AUTH user (`None` => "default").
    pub user: Option<String>,
    /// AUTH password (`None` => no AUTH).
    pub password: Option<String>,
}

/// TLS settings of a client connection.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// CA certificate that signed the node certificates.
    pub ca: std::path::PathBuf,
    /// Client certificate (mTLS), with key.
    pub cert: Option<std::path::PathBuf>,
    /// Private key of the client certificate.
    pub key: Option<std::path::PathBuf>,
    /// Name to verify in the node certificate.
    pub server_name: String,
}

/// A cluster the harness can talk to and inject faults into.
pub trait Cluster: Send + Sync {
    /// Every node's client endpoint, in node order.
    fn endpoints(&self) -> Vec<Endpoint>;
    /// SIGKILL the node (no clean shutdown).
    fn kill(&self, node: u64) -> Result<(), crate::Error>;
    /// Start a killed node again on its existing data.
    fn start(&self, node: u64) -> Result<(), crate::Error>;
    /// Freeze / thaw the node's process (SIGSTOP/SIGCONT, docker pause/unpause).
    fn pause(&self, node: u64) -> Result<(), crate::Error>;
    /// Thaw a paused node.
    fn resume(&self, node: u64) -> Result<(), crate::Error>;
    /// Cut all traffic between nodes in different groups (every node appears in exactly one group).
    /// A backend that cannot partition returns `Err(crate::Error::Unsupported(..))`.
    fn partition(&self, groups: &[Vec<u64>]) -> Result<(), crate::Error>;
    /// Undo every partition.
    fn heal(&self) -> Result<(), crate::Error>;
    /// Copy each node's log into `dir` (one file per node).
    fn collect_logs(&self, dir: &std::path::Path) -> Result<(), crate::Error>;
}
