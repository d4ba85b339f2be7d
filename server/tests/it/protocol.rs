//! Hostile and malformed input over raw TCP: errors, never crashes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::shared_cluster;

fn raw(node: usize) -> TcpStream {
    let stream = TcpStream::connect(shared_cluster().resp_addr(node)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Sends `input` and returns everything the server says before closing.
fn exchange(node: usize, input: &[u8]) -> String {
    let mut stream = raw(node);
    stream.write_all(input).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn protocol_errors_close_the_connection() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"*1\r\n$999999999999\r\n",
            "-ERR Protocol error: invalid bulk length",
        ),
        (
            b"*99999999999\r\n",
            "-ERR Protocol error: invalid multibulk length",
        ),
        (
            b"*1\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'",
        ),
        (
            b"*1\r\n$3\r\nabcde",
            "-ERR Protocol error: bulk string not terminated by CRLF",
        ),
        (
            b"SET a \"b\r\n",
            "-ERR Protocol error: unbalanced quotes in request",
        ),
    ];
    for (input, expected) in cases {
        let got = exchange(0, input);
        assert!(got.starts_with(expected), "{input:?} -> {got:?}");
    }
}

#[test]
fn huge_declared_lengths_allocate_nothing() {
    // A 512 MiB bulk declared but never sent: the server waits for bytes,
    // it does not reserve them. The connection is then dropped.
    let mut stream = raw(1);
    stream
        .write_all(b"*2\r\n$3\r\nGET\r\n$536870912\r\nabc")
        .unwrap();
    drop(stream);
    let mut c = shared_cluster().client(1).unwrap();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn bad_commands_keep_the_connection() {
    let got = exchange(2, b"NOPE\r\nGET\r\nPING\r\nQUIT\r\n");
    let lines: Vec<&str> = got.split("\r\n").collect();
    assert!(lines[0].starts_with("-ERR unknown command 'NOPE'"), "{got}");
    assert_eq!(lines[1], "-ERR wrong number of arguments for 'get' command");
    assert_eq!(lines[2], "+PONG");
    assert_eq!(lines[3], "+OK");
}

#[test]
fn inline_commands_like_telnet() {
    let got = exchange(
        0,
        b"SET inline:k \"hello world\"\r\nGET inline:k\r\nQUIT\r\n",
    );
    assert_eq!(got, "+OK\r\n$11\r\nhello world\r\n+OK\r\n");
}

#[test]
fn random_garbage_never_crashes() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..200 {
        let len = (seed % 64) as usize + 1;
        let mut input = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Bias toward protocol bytes so the parser's branches are hit.
            let alphabet = b"*$:+-\r\n0123456789abcSETGET \"'\\";
            input.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        let mut stream = raw(round % 3);
        let _ = stream.write_all(&input);
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut sink = [0u8; 256];
        let _ = stream.read(&mut sink);
    }
    for node in 0..3 {
        let mut c = shared_cluster().client(node).unwrap();
        let pong: String = redis::cmd("PING").query(&mut c).unwrap();
        assert_eq!(pong, "PONG", "node {node} survived");
    }
}
