//! Mutual TLS between nodes: the raft crate's [`Transport`] over rustls.
//!
//! Both sides present their node certificate and require the other's to
//! chain to the cluster CA. The connecting side checks that the peer's
//! certificate is valid for `node-<id>.raftlimit` of the node it meant to
//! reach; the accepting side reads the node id from the certificate and
//! hands it to the RPC server, which refuses a Hello from any other id. A
//! process without a node certificate from the cluster CA gets no RPC
//! answered: its handshake fails or its connection is closed.

use std::io;
use std::sync::Arc;

use futures::future::BoxFuture;
use raftlimit_raft::network::transport::{BoxStream, Transport};
use raftlimit_raft::NodeId;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::{node_dns_name, node_id_of, TlsContext, HANDSHAKE_TIMEOUT};

/// Inter-node streams over mutual TLS, with certificates from a
/// [`TlsContext`] (so reloads apply to new peer connections too).
#[derive(Debug, Clone)]
pub struct TlsTransport {
    tls: Arc<TlsContext>,
}

impl TlsTransport {
    pub fn new(tls: Arc<TlsContext>) -> Self {
        TlsTransport { tls }
    }
}

fn denied(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, why.to_string())
}

async fn within<T>(
    what: &str,
    future: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, future)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out")))?
}

impl Transport for TlsTransport {
    fn connect(&self, addr: String, peer: NodeId) -> BoxFuture<'static, io::Result<BoxStream>> {
        let connector = self.tls.peer_connector();
        Box::pin(async move {
            let name = ServerName::try_from(node_dns_name(peer))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let stream = within("TLS handshake", connector.connect(name, tcp)).await?;
            Ok(Box::new(stream) as BoxStream)
        })
    }

    fn accept(
        &self,
        tcp: TcpStream,
    ) -> BoxFuture<'static, io::Result<(BoxStream, Option<NodeId>)>> {
        let acceptor = self.tls.peer_acceptor();
        Box::pin(async move {
            tcp.set_nodelay(true)?;
            let stream = within("TLS handshake", acceptor.accept(tcp)).await?;
            // The verifier requires a certificate, so one is always here;
            // it must also name exactly one node.
            let leaf = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .ok_or_else(|| denied("peer presented no certificate"))?;
            let id = node_id_of(leaf).map_err(denied)?;
            Ok((Box::new(stream) as BoxStream, Some(id)))
        })
    }
}
