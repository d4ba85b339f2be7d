//! Per-connection client state and the registry behind CLIENT LIST.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::connection::Protocol;
use crate::tls::CertSummary;

/// What the TLS handshake established about a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsPeer {
    /// The client's certificate, verified against the CA; `None` when the
    /// client presented none (`client_auth = "off"` or `"optional"`).
    pub certificate: Option<CertSummary>,
    /// The user this certificate authenticates (`auth_clients_user = "cn"`:
    /// the subject's common name), as Redis's `tls-auth-clients-user CN`.
    pub user: Option<String>,
}

/// What CLIENT INFO/LIST report about one connection.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub local_addr: SocketAddr,
    pub name: Option<String>,
    pub lib_name: Option<String>,
    pub lib_ver: Option<String>,
    /// The connection's user: `default`, or the one its client certificate
    /// names (see [`TlsPeer::user`]).
    pub user: String,
    pub protocol: Protocol,
    pub connected_at: Instant,
    pub last_active: Instant,
    pub last_command: String,
}

impl ClientInfo {
    /// One line of CLIENT LIST, in Redis's field order.
    pub fn line(&self) -> String {
        let now = Instant::now();
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.local_addr,
            self.name.as_deref().unwrap_or(""),
            now.duration_since(self.connected_at).as_secs(),
            now.duration_since(self.last_active).as_secs(),
            if self.last_command.is_empty() { "NULL" } else { &self.last_command },
            self.user,
            match self.protocol {
                Protocol::Resp2 => 2,
                Protocol::Resp3 => 3,
            },
            self.lib_name.as_deref().unwrap_or(""),
            self.lib_ver.as_deref().unwrap_or(""),
        )
    }
}

/// All connected clients of this node.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: Mutex<BTreeMap<u64, Arc<Mutex<ClientInfo>>>>,
    next_id: AtomicU64,
}

impl ClientRegistry {
    /// Registers a new connection and returns its shared info.
    pub fn register(&self, addr: SocketAddr, local_addr: SocketAddr) -> Arc<Mutex<ClientInfo>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let info = Arc::new(Mutex::new(ClientInfo {
            id,
            addr,
            local_addr,
            name: None,
            lib_name: None,
            lib_ver: None,
            user: "default".into(),
            protocol: Protocol::Resp2,
            connected_at: now,
            last_active: now,
            last_command: String::new(),
        }));
        self.clients.lock().insert(id, info.clone());
        info
    }

    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn snapshot(&self) -> Vec<ClientInfo> {
        self.clients
            .lock()
            .values()
            .map(|c| c.lock().clone())
            .collect()
    }
}
