//! The stream layer under the RPC: the [`Transport`] trait, plain TCP, and a
//! filter that cuts a node off from its peers. Mutual TLS implements the
//! trait in the server crate (`raftlimit_server::tls::TlsTransport`), which
//! owns the certificates.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::RwLock;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::types::NodeId;

/// A bidirectional byte stream (TCP, or TLS over TCP).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

pub type BoxStream = Box<dyn Stream>;

/// Opens and accepts inter-node streams. A TLS implementation verifies the
/// peer's certificate here and reports the identity it proved.
pub trait Transport: Send + Sync + 'static {
    /// Connects to `addr`, expecting to reach node `peer`.
    fn connect(&self, addr: String, peer: NodeId) -> BoxFuture<'static, io::Result<BoxStream>>;

    /// Wraps an accepted TCP connection. Returns the node id the peer proved
    /// cryptographically, or `None` when the transport cannot prove identity.
    fn accept(&self, tcp: TcpStream)
        -> BoxFuture<'static, io::Result<(BoxStream, Option<NodeId>)>>;
}

/// Plain TCP with `TCP_NODELAY`: RPCs are small and latency-bound.
#[derive(Debug, Default)]
pub struct PlainTransport;

impl Transport for PlainTransport {
    fn connect(&self, addr: String, _peer: NodeId) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            Ok(Box::new(tcp) as BoxStream)
        })
    }

    fn accept(
        &self,
        tcp: TcpStream,
    ) -> BoxFuture<'static, io::Result<(BoxStream, Option<NodeId>)>> {
        Box::pin(async move {
            tcp.set_nodelay(true)?;
            Ok((Box::new(tcp) as BoxStream, None))
        })
    }
}

/// Peers this node may not talk to, in either direction. Used by the test
/// harness and the chaos tooling to isolate a node without touching the OS.
///
/// Blocking a peer fails its messages at once and closes connections, as a
/// dead peer does. Freezing the node instead models a paused process: its
/// connections stay open, what peers send it is read and ignored, and what
/// it sends never leaves, so peers learn nothing until their own timeouts.
#[derive(Debug, Default, Clone)]
pub struct NetFilter {
    blocked: Arc<RwLock<HashSet<NodeId>>>,
    frozen: Arc<std::sync::atomic::AtomicBool>,
}

impl NetFilter {
    pub fn is_blocked(&self, peer: NodeId) -> bool {
        self.blocked.read().contains(&peer)
    }

    pub fn block(&self, peers: impl IntoIterator<Item = NodeId>) {
        self.blocked.write().extend(peers);
    }

    /// Whether the node is frozen (see the type's docs).
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn freeze(&self) {
        self.frozen
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Unblocks every peer and thaws the node.
    pub fn heal(&self) {
        self.blocked.write().clear();
        self.frozen
            .store(false, std::sync::atomic::Ordering::Release);
    }
}
