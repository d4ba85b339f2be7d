//! The two HTTP reads the benchmark makes of a node: `/readyz` and `/metrics`.
//!
//! A plain HTTP/1.0 GET on loopback, body read to the end with a size cap;
//! the benchmark needs nothing more, and a full HTTP client would be a large
//! dependency for two requests per measured cell.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::BenchError;

/// Largest response body read (a node's /metrics is a few tens of KiB).
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// GETs `path` and returns the status code and body.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String), BenchError> {
    let io = |e: std::io::Error| BenchError::Io(format!("GET http://{addr}{path}: {e}"));
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .map_err(io)?;
    let mut raw = Vec::new();
    s.take(MAX_BODY).read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| BenchError::Protocol(format!("http://{addr}{path}: no HTTP header")))?;
    let status = head
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| BenchError::Protocol(format!("http://{addr}{path}: bad status line")))?;
    Ok((status, body.to_string()))
}

/// The value of an unlabelled sample `name` in Prometheus text format.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        // `name value` or `name{} value`, not `name_suffix …`.
        let rest = rest.strip_prefix("{}").unwrap_or(rest);
        if !rest.starts_with(' ') {
            return None;
        }
        rest.split_ascii_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn metric_finds_exact_names_only() {
        let text = "# TYPE raftlimit_batch_commands summary\n\
                    raftlimit_batch_commands{quantile=\"0.5\"} 1\n\
                    raftlimit_batch_commands_sum 1234\n\
                    raftlimit_batch_commands_count 1000\n\
                    raftlimit_raft_term 3\n";
        assert_eq!(metric(text, "raftlimit_batch_commands_sum"), Some(1234.0));
        assert_eq!(metric(text, "raftlimit_batch_commands_count"), Some(1000.0));
        assert_eq!(metric(text, "raftlimit_batch_commands"), None);
        assert_eq!(metric(text, "raftlimit_raft_term"), Some(3.0));
        assert_eq!(metric(text, "raftlimit_raft"), None);
    }

    #[test]
    fn get_reads_status_and_body() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"GET /metrics HTTP/1.0\r\n"));
            s.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nx_total 5\n")
                .unwrap();
        });
        let (status, body) = get(addr, "/metrics", Duration::from_secs(5)).unwrap();
        server.join().unwrap();
        assert_eq!(status, 200);
        assert_eq!(metric(&body, "x_total"), Some(5.0));
    }
}
