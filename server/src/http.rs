//! The HTTP endpoint: `/metrics`, `/healthz` and `/readyz`.
//!
//! A deliberately tiny HTTP/1.1 responder (one request per connection) so
//! probes and Prometheus need no extra web stack in the binary.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::shared::Shared;

const MAX_REQUEST: usize = 8 * 1024;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>, metrics: PrometheusHandle) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(5), respond(stream, &shared, &metrics))
                    .await;
        });
    }
}

/// Whether this node can serve: it knows a leader and has applied everything
/// it knows to be committed.
pub fn is_ready(shared: &Shared) -> (bool, String) {
    let status = shared.node.status();
    let ready = status.leader.is_some() && status.applied_index >= status.commit_index;
    let text = format!(
        "leader={} commit_index={} applied_index={}\n",
        status.leader.map_or("none".to_string(), |l| l.to_string()),
        status.commit_index,
        status.applied_index
    );
    (ready, text)
}

async fn respond(
    mut stream: TcpStream,
    shared: &Shared,
    metrics: &PrometheusHandle,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", "/readyz") => {
            let (ready, text) = is_ready(shared);
            (
                if ready {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                },
                "text/plain",
                text,
            )
        }
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".to_string(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Largest probe response read: `/readyz` is one line, and a probe never
/// needs the metrics page.
const MAX_PROBE_RESPONSE: u64 = 64 * 1024;

/// A blocking `GET path` against a node's HTTP endpoint, as the container
/// health check (`raftlimit-server healthcheck`) and the cluster launcher
/// ask it: the status code and the body. An unspecified address
/// (`0.0.0.0`) is asked on loopback.
pub fn probe(
    mut addr: std::net::SocketAddr,
    path: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream
        .take(MAX_PROBE_RESPONSE)
        .read_to_string(&mut response)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    Ok((status, body.to_owned()))
}
