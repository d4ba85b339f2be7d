//! Per-client state: the [`Session`] every command handler sees (protocol,
//! transaction queue, watched keys, TLS peer, who the client is), what
//! CLIENT INFO/LIST report about it, and the registry behind CLIENT LIST.
//!
//! Architecture invariant: this module depends only on `connection` and
//! `tls` (and the engine's types); everything above reads sessions, nothing
//! below knows them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use raftlimit_engine::{User, Watch, DEFAULT_USER};

use crate::connection::Protocol;
use crate::tls::TlsPeer;

/// A connection's mutable state, as the commands see it.
#[derive(Debug)]
pub struct Session {
    pub info: Arc<Mutex<ClientInfo>>,
    pub protocol: Protocol,
    /// Set by QUIT: close after flushing the reply.
    pub closing: bool,
    /// Commands queued since MULTI.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A queued command was rejected: EXEC will answer EXECABORT.
    pub multi_failed: bool,
    /// Keys WATCHed and the log index they were observed at.
    pub watch: Option<Watch>,
    /// Set on connections to the TLS port: what the handshake proved.
    pub tls: Option<TlsPeer>,
    /// The user authenticated by the client certificate, if any; the
    /// connection starts as this user (also in `ClientInfo::user`).
    pub cert_user: Option<String>,
    /// Who the connection is (kept by `crate::auth`).
    pub auth: AuthState,
}

impl Session {
    pub fn new(info: Arc<Mutex<ClientInfo>>) -> Self {
        Session {
            info,
            protocol: Protocol::Resp2,
            closing: false,
            multi: None,
            multi_failed: false,
            watch: None,
            tls: None,
            cert_user: None,
            auth: Default::default(),
        }
    }

    /// A session on a TLS connection. A certificate that names a user makes
    /// it the connection's user.
    pub fn with_tls(info: Arc<Mutex<ClientInfo>>, tls: TlsPeer) -> Self {
        let cert_user = tls.user.clone();
        if let Some(user) = &cert_user {
            info.lock().user = user.clone();
        }
        Session {
            tls: Some(tls),
            cert_user,
            ..Session::new(info)
        }
    }

    pub fn id(&self) -> u64 {
        self.info.lock().id
    }
}

/// A connection's identity.
#[derive(Debug)]
pub struct AuthState {
    /// The user the connection acts as (`default` until AUTH).
    pub user: String,
    /// Whether it has authenticated (or needed not to when it connected).
    pub authenticated: bool,
    /// The cached view of the user table (see `crate::auth`).
    pub(crate) view: Option<AuthView>,
}

/// The connection's user and the default user's openness, as of one
/// generation of the user table.
#[derive(Debug, Clone)]
pub(crate) struct AuthView {
    pub(crate) generation: u64,
    pub(crate) user: Option<Arc<User>>,
    /// The default user has `nopass` (protected mode looks at this).
    pub(crate) default_nopass: bool,
    /// The default user has `nopass` and is enabled: no AUTH needed.
    pub(crate) default_open: bool,
}

impl Default for AuthState {
    fn default() -> Self {
        AuthState {
            user: DEFAULT_USER.into(),
            authenticated: false,
            view: None,
        }
    }
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
