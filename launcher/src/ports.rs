//! Loopback ports that stay the cluster's from the moment they are picked
//! until the cluster is gone.
//!
//! Picking a "free" port by binding port 0 and closing the socket leaves a
//! window in which anything else on the machine (another test's node, an
//! outgoing connection's ephemeral port) can take it before the node binds
//! it, and the node then fails at startup or, worse, at a restart. Instead
//! a [`PortReservation`] keeps a socket bound to each port it hands out,
//! with `SO_REUSEPORT` set and never listening:
//!
//! - no other program can bind the port (that needs `SO_REUSEPORT` and the
//!   same user), and the kernel skips bound ports both for port 0 and when
//!   it picks an ephemeral port for an outgoing connection;
//! - the node, started with `reuse_port = true` (`Config::reuse_port`),
//!   binds beside the reservation and listens; a socket that never listens
//!   receives no connections, so every client reaches the node;
//! - a killed node's port is still reserved when it restarts.
//!
//! Ports given as fixed numbers (`make cluster`'s 7001-7003) are not
//! reserved: those nodes bind the port as any server does.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpSocket;

use crate::error::Result;

/// Ports held for a cluster; dropping it releases them.
#[derive(Debug, Default)]
pub struct PortReservation {
    held: Vec<(SocketAddr, TcpSocket)>,
}

impl PortReservation {
    pub fn new() -> Self {
        PortReservation::default()
    }

    /// Reserves a new loopback port the kernel picks.
    pub fn reserve(&mut self) -> Result<SocketAddr> {
        // A plain socket: creating and binding it needs no async runtime.
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseport(true)?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = socket.local_addr()?;
        self.held.push((addr, socket));
        Ok(addr)
    }

    /// Every reserved address, in the order reserved.
    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.held.iter().map(|(addr, _)| *addr)
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn a_reserved_port_refuses_other_binds_and_serves_a_reuse_port_listener() {
        let mut ports = PortReservation::new();
        let addr = ports.reserve().unwrap();
        assert_ne!(addr.port(), 0);
        // Anyone binding the port as servers usually do is refused.
        assert!(std::net::TcpListener::bind(addr).is_err());
        let plain = TcpSocket::new_v4().unwrap();
        plain.set_reuseaddr(true).unwrap();
        assert!(plain.bind(addr).is_err());
        // Nothing listens yet: a client is refused, not queued.
        assert!(std::net::TcpStream::connect(addr).is_err());
        // A node binding with SO_REUSEPORT gets the port and every client.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket.set_reuseport(true).unwrap();
            socket.bind(addr).unwrap();
            let listener = socket.listen(16).unwrap();
            let clients = std::thread::spawn(move || {
                for i in 0..20u8 {
                    let mut stream = std::net::TcpStream::connect(addr).unwrap();
                    stream.write_all(&[i]).unwrap();
                    let mut back = [0u8; 1];
                    stream.read_exact(&mut back).unwrap();
                    assert_eq!(back[0], i);
                }
            });
            for _ in 0..20 {
                let (mut stream, _) = listener.accept().await.unwrap();
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).await.unwrap();
                stream.write_all(&byte).await.unwrap();
            }
            tokio::task::spawn_blocking(move || clients.join().unwrap())
                .await
                .unwrap();
        });
        // Closed again, the port is still held.
        assert!(std::net::TcpListener::bind(addr).is_err());
        assert_eq!(ports.addrs().collect::<Vec<_>>(), vec![addr]);
        drop(ports);
        assert!(
            std::net::TcpListener::bind(addr).is_ok(),
            "released on drop"
        );
    }

    #[test]
    fn reserved_ports_are_distinct() {
        let mut ports = PortReservation::new();
        let addrs: std::collections::BTreeSet<_> =
            (0..30).map(|_| ports.reserve().unwrap()).collect();
        assert_eq!(addrs.len(), 30);
    }
}
