//! Transport security: Redis clients on the TLS port (the `redis` crate
//! over rustls, and raw rustls), certificate reload (file polling and
//! SIGHUP), and mutual TLS between nodes against rogue peers.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftlimit_raft::network::frame::{decode, encode, read_frame, write_frame};
use raftlimit_raft::network::message::{Envelope, RpcRequest, RpcResponse};
use raftlimit_raft::payload::WriteOp;
use raftlimit_raft::{NodeId, RequestId};
use raftlimit_server::certs::{Authority, Leaf};
use raftlimit_server::config::{CertUser, ClientAuth};
use raftlimit_server::tls::{load_certs, load_key, CertSummary};
use raftlimit_testkit::{wait_until, ClusterOptions, TestCluster, TlsFiles, TlsOptions};
use redis::{cmd, TlsCertificates};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tls_cluster(nodes: usize, tls: TlsOptions) -> (TestCluster, usize) {
    let options = ClusterOptions {
        nodes,
        tls: Some(tls),
        ..ClusterOptions::default()
    };
    let cluster = TestCluster::start(options).expect("TLS cluster starts");
    let leader = cluster
        .wait_for_leader(Duration::from_secs(15))
        .expect("leader elected over mTLS");
    (cluster, leader)
}

/// A 3-node cluster with TLS only (no plaintext port) and client
/// certificates required, shared by the tests that do not change it.
fn shared_tls_cluster() -> &'static TestCluster {
    static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| tls_cluster(3, TlsOptions::default()).0)
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A `redis` crate connection to `rediss://` on `node`, trusting the
/// cluster CA and presenting the client certificate if `with_cert`.
fn rediss(
    cluster: &TestCluster,
    node: usize,
    with_cert: bool,
) -> redis::RedisResult<redis::Connection> {
    raftlimit_server::tls::install_default_provider();
    let files = cluster.tls_files().unwrap();
    let certs = TlsCertificates {
        client_tls: with_cert.then(|| redis::ClientTlsConfig {
            client_cert: read(files.client_cert()),
            client_key: read(files.client_key()),
        }),
        root_cert: Some(read(files.ca())),
    };
    let url = format!("rediss://{}/", cluster.tls_addr(node).unwrap());
    let client = redis::Client::build_with_tls(url, certs)?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(15)))?;
    Ok(conn)
}

/// A rustls client config trusting `ca`, presenting `identity` if given.
fn client_config(ca: &Path, identity: Option<(&Path, &Path)>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca).unwrap() {
        roots.add(cert).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(raftlimit_server::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert).unwrap(), load_key(key).unwrap())
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake timed out"))?
}

/// The certificate the server presented on this connection.
fn server_cert(stream: &TlsStream<TcpStream>) -> CertSummary {
    let certs = stream.get_ref().1.peer_certificates().unwrap();
    CertSummary::of(&certs[0]).unwrap()
}

/// Sends PING and returns the first reply line, or the error.
async fn ping(stream: &mut TlsStream<TcpStream>) -> std::io::Result<String> {
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").await?;
    stream.flush().await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !got.ends_with(b"\r\n") {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply"))??;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// Connects over TLS as `identity` and PINGs: `Ok(reply)` or a description
/// of where it failed.
fn tls_ping(
    addr: SocketAddr,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<String, String> {
    runtime().block_on(async {
        let mut stream = tls_connect(addr, client_config(ca, identity), "localhost")
            .await
            .map_err(|e| format!("handshake failed: {e}"))?;
        ping(&mut stream)
            .await
            .map_err(|e| format!("after handshake: {e}"))
    })
}

/// A CA that is not the cluster's, with a node-2 and a client certificate.
fn rogue_ca(dir: &Path) -> TlsFiles {
    let ca = Authority::generate("rogue CA").unwrap();
    ca.write(dir, "ca").unwrap();
    ca.issue(&Leaf::node(2))
        .unwrap()
        .write(dir, "node2")
        .unwrap();
    ca.issue(&Leaf::client("client"))
        .unwrap()
        .write(dir, "client")
        .unwrap();
    TlsFiles {
        dir: dir.to_owned(),
    }
}

#[test]
fn rediss_clients_are_served_and_plaintext_port_is_off() {
    let cluster = shared_tls_cluster();
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let follower = cluster.others(leader)[0];
    // A write on a follower is forwarded to the leader over mutual TLS.
    let mut c = rediss(cluster, follower, true).unwrap();
    let _: () = cmd("SET").arg("tls:k").arg("v1").query(&mut c).unwrap();
    for node in 0..3 {
        let mut c = rediss(cluster, node, true).unwrap();
        let v: String = cmd("GET").arg("tls:k").query(&mut c).unwrap();
        assert_eq!(v, "v1", "node {node}");
    }
    let cfg: Vec<String> = cmd("CONFIG").arg("GET").arg("*port").query(&mut c).unwrap();
    let tls_port = cluster.tls_addr(follower).unwrap().port().to_string();
    assert_eq!(
        cfg,
        vec!["port".to_string(), "0".into(), "tls-port".into(), tls_port]
    );
    let info: String = cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(info.contains("user=default"), "{info}");
    // Without [tls] plaintext = true, the plaintext port is not even bound.
    assert!(std::net::TcpStream::connect(cluster.resp_addr(0)).is_err());
    // Client certificates are required here.
    assert!(rediss(cluster, 0, false)
        .and_then(|mut c| cmd("PING").query::<String>(&mut c))
        .is_err());
}

#[test]
fn plaintext_on_the_tls_port_gets_a_closed_connection() {
    let cluster = shared_tls_cluster();
    for input in [
        &b"PING\r\n"[..],
        b"*1\r\n$4\r\nPING\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let mut stream = std::net::TcpStream::connect(cluster.tls_addr(0).unwrap()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(input).unwrap();
        let mut out = Vec::new();
        let result = stream.read_to_end(&mut out);
        eprintln!("plaintext {input:?} to the TLS port -> {result:?}, {out:02x?}");
        // End of stream, or a reset if the close raced our write.
        let closed = result.as_ref().map_or_else(
            |e| e.kind() == std::io::ErrorKind::ConnectionReset,
            |_| true,
        );
        assert!(closed, "connection closed: {result:?}");
        assert!(!String::from_utf8_lossy(&out).contains("PONG"));
        // Nothing but (at most) a TLS alert record comes back.
        assert!(out.is_empty() || out[0] == 0x15, "{out:02x?}");
    }
    // The node is still serving.
    let files = cluster.tls_files().unwrap();
    let pong = tls_ping(
        cluster.tls_addr(0).unwrap(),
        &files.ca(),
        Some((&files.client_cert(), &files.client_key())),
    );
    assert_eq!(pong.as_deref(), Ok("+PONG\r\n"));
}

/// A ClientHello offering only `version` (no supported_versions extension),
/// otherwise acceptable to the server at TLS 1.2: ECDHE suites, x25519, and
/// signature schemes for both RSA and ECDSA certificates.
fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0, 8, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x09, 0xc0, 0x13]);
    body.extend_from_slice(&[1, 0]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d, // supported_groups: x25519
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04,
        0x01, // signature_algorithms
        0x00, 0x17, 0x00, 0x00, // extended_master_secret
    ];
    body.extend_from_slice(&[0, extensions.len() as u8]);
    body.extend_from_slice(extensions);
    let mut handshake = vec![1, 0, 0, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1, 0, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    record
}

/// The first record the TLS port answers `hello` with.
fn first_record(cluster: &TestCluster, hello: &[u8]) -> Vec<u8> {
    let mut stream = std::net::TcpStream::connect(cluster.tls_addr(0).unwrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(hello).unwrap();
    let mut out = vec![0; 7];
    let read = stream.read(&mut out).unwrap();
    out.truncate(read);
    out
}

#[test]
fn tls_1_0_and_1_1_are_refused() {
    let cluster = shared_tls_cluster();
    for (name, version) in [("TLS 1.0", [3, 1]), ("TLS 1.1", [3, 2])] {
        let out = first_record(cluster, &legacy_client_hello(version));
        eprintln!("{name} ClientHello -> {out:02x?}");
        // A fatal protocol_version alert (70), never a ServerHello.
        assert!(
            out.len() == 7 && out[0] == 0x15 && out[5] == 2 && out[6] == 70,
            "{name}: {out:02x?}"
        );
    }
    // Control: the same hello at TLS 1.2 gets a ServerHello, so the refusals
    // are about the version alone.
    let out = first_record(cluster, &legacy_client_hello([3, 3]));
    eprintln!("TLS 1.2 ClientHello -> {out:02x?}");
    assert_eq!(out.first(), Some(&0x16), "{out:02x?}");
    assert_eq!(out.get(5), Some(&2), "a ServerHello: {out:02x?}");
}

#[test]
fn clients_without_a_certificate_or_from_another_ca_are_refused() {
    let cluster = shared_tls_cluster();
    let files = cluster.tls_files().unwrap();
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue = rogue_ca(rogue_dir.path());
    let addr = cluster.tls_addr(1).unwrap();

    let none = tls_ping(addr, &files.ca(), None);
    eprintln!("TLS client without a certificate -> {none:?}");
    assert!(none.is_err(), "{none:?}");

    let wrong_ca = tls_ping(
        addr,
        &files.ca(),
        Some((&rogue.client_cert(), &rogue.client_key())),
    );
    eprintln!("TLS client with a certificate from another CA -> {wrong_ca:?}");
    assert!(wrong_ca.is_err(), "{wrong_ca:?}");

    // A client that trusts another CA refuses the server, too.
    let distrust = tls_ping(
        addr,
        &rogue.ca(),
        Some((&files.client_cert(), &files.client_key())),
    );
    assert!(distrust.is_err(), "{distrust:?}");

    let ok = tls_ping(
        addr,
        &files.ca(),
        Some((&files.client_cert(), &files.client_key())),
    );
    assert_eq!(ok.as_deref(), Ok("+PONG\r\n"));
}

#[test]
fn optional_client_auth_maps_the_common_name_to_the_user() {
    let tls = TlsOptions {
        client_auth: ClientAuth::Optional,
        auth_clients_user: CertUser::Cn,
        plaintext: true,
        client_cn: "alice".into(),
        ..TlsOptions::default()
    };
    let (cluster, _) = tls_cluster(1, tls);
    let mut with_cert = rediss(&cluster, 0, true).unwrap();
    let info: String = cmd("CLIENT").arg("INFO").query(&mut with_cert).unwrap();
    assert!(info.contains(" user=alice "), "{info}");
    let mut without = rediss(&cluster, 0, false).unwrap();
    let info: String = cmd("CLIENT").arg("INFO").query(&mut without).unwrap();
    assert!(info.contains(" user=default "), "{info}");
    // `plaintext = true` keeps the plaintext port open next to TLS.
    let mut plain = cluster.client(0).unwrap();
    let pong: String = cmd("PING").query(&mut plain).unwrap();
    assert_eq!(pong, "PONG");
    // Optional still means verified: a certificate from another CA is refused.
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue = rogue_ca(rogue_dir.path());
    let files = cluster.tls_files().unwrap();
    let refused = tls_ping(
        cluster.tls_addr(0).unwrap(),
        &files.ca(),
        Some((&rogue.client_cert(), &rogue.client_key())),
    );
    assert!(refused.is_err(), "{refused:?}");
}

/// Waits until a new TLS connection to `addr` is served `serial`.
fn wait_for_serial(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    serial: &str,
) -> TlsStream<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stream = rt.block_on(tls_connect(addr, config.clone(), "localhost"));
        if let Ok(stream) = stream {
            if server_cert(&stream).serial == serial {
                return stream;
            }
        }
        assert!(
            Instant::now() < deadline,
            "server never presented serial {serial}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn rotated_certificates_serve_new_handshakes_and_keep_old_connections() {
    let tls = TlsOptions {
        reload_interval_ms: 200,
        ..TlsOptions::default()
    };
    let (mut cluster, _) = tls_cluster(3, tls);
    let files = cluster.tls_files().unwrap().clone();
    let config = client_config(
        &files.ca(),
        Some((&files.client_cert(), &files.client_key())),
    );
    let addr = cluster.tls_addr(0).unwrap();
    let rt = runtime();
    let mut old = rt
        .block_on(tls_connect(addr, config.clone(), "localhost"))
        .unwrap();
    let before = server_cert(&old);
    assert_eq!(before.common_name.as_deref(), Some("node-1"));
    assert_eq!(rt.block_on(ping(&mut old)).unwrap(), "+PONG\r\n");

    // Rotate node 1's certificate in place; the watcher notices.
    let mut leaf = Leaf::node(1);
    leaf.common_name = "node-1-rotated".into();
    let rotated = files.authority().unwrap().issue(&leaf).unwrap();
    rotated.write(&files.dir, "node1").unwrap();
    let new_serial = CertSummary::of(&load_certs(&files.node_cert(0)).unwrap()[0])
        .unwrap()
        .serial;
    assert_ne!(new_serial, before.serial);
    let mut new = wait_for_serial(&rt, addr, &config, &new_serial);
    assert_eq!(
        server_cert(&new).common_name.as_deref(),
        Some("node-1-rotated")
    );
    assert_eq!(rt.block_on(ping(&mut new)).unwrap(), "+PONG\r\n");
    // The connection opened before the rotation is still up.
    assert_eq!(rt.block_on(ping(&mut old)).unwrap(), "+PONG\r\n");
    assert_eq!(server_cert(&old).serial, before.serial);

    // A broken file is refused and the current certificate stays.
    std::fs::write(files.node_cert(0), b"not a certificate").unwrap();
    // The watcher notices the change and tries the file.
    let watched = cluster.server(0).unwrap().tls().unwrap().clone();
    wait_until(
        Duration::from_secs(10),
        "the watcher to try the broken file",
        || !watched.files_changed(),
    )
    .unwrap();
    let still = rt
        .block_on(tls_connect(addr, config.clone(), "localhost"))
        .unwrap();
    assert_eq!(server_cert(&still).serial, new_serial);
    assert!(cluster.server(0).unwrap().reload_tls().is_err());
    rotated.write(&files.dir, "node1").unwrap();
    let reloaded = cluster.server(0).unwrap().reload_tls().unwrap().unwrap();
    assert_eq!(reloaded.serial, new_serial);

    // Peers reconnecting to node 1 accept its rotated certificate: cut it
    // off (dropping its peer connections), heal, and replicate through it.
    let term = |n: usize| cluster.server(n).unwrap().node().status().term;
    let before = (0..3).map(term).max().unwrap();
    cluster.isolate(0);
    // The cut is felt (an election: node 1 stops hearing its leader, or the
    // others stop hearing node 1), so every connection across it has
    // been tried and dropped.
    wait_until(
        Duration::from_secs(15),
        "an election across the cut",
        || (0..3).any(|n| term(n) > before),
    )
    .unwrap();
    cluster.heal(0);
    cluster.wait_for_leader(Duration::from_secs(15)).unwrap();
    let mut c = rediss(&cluster, 0, true).unwrap();
    let _: () = cmd("SET").arg("rotated").arg("yes").query(&mut c).unwrap();
    for node in [1, 2] {
        let mut c = rediss(&cluster, node, true).unwrap();
        let v: String = cmd("GET").arg("rotated").query(&mut c).unwrap();
        assert_eq!(v, "yes");
    }
    // Restarting the node with the rotated files works as well.
    cluster.kill(0);
    cluster.restart(0).unwrap();
    let restarted = wait_for_serial(&rt, addr, &config, &new_serial);
    drop(restarted);
}

/// What a rogue peer got from a node's Raft port (the texts are printed).
#[derive(Debug)]
#[allow(dead_code)]
enum RogueOutcome {
    HandshakeFailed(String),
    Closed(String),
    Silent,
    Answered(String),
}

const CLUSTER_NAME: &str = "raftlimit-test";
const ROGUE_TERM: u64 = 1_000_000;

/// Connects to a Raft port as a would-be `claim` node and sends a Hello,
/// a vote request with a huge term, a write and a read.
async fn rogue_rpc(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    target: NodeId,
    claim: NodeId,
) -> RogueOutcome {
    let name = raftlimit_server::tls::node_dns_name(target);
    let mut stream = match tls_connect(addr, config, &name).await {
        Ok(stream) => stream,
        Err(err) => return RogueOutcome::HandshakeFailed(err.to_string()),
    };
    let vote = openraft::raft::VoteRequest::new(openraft::Vote::new(ROGUE_TERM, claim), None);
    let requests = [
        RpcRequest::Hello {
            from: claim,
            cluster: CLUSTER_NAME.into(),
        },
        RpcRequest::Vote(vote),
        RpcRequest::Write {
            id: RequestId { origin: 7, seq: 1 },
            op: WriteOp::Command(vec![
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"rogue:key"),
                Bytes::from_static(b"x"),
            ]),
        },
        RpcRequest::Read {
            argv: vec![Bytes::from_static(b"GET"), Bytes::from_static(b"rogue:key")],
        },
    ];
    for (id, body) in requests.into_iter().enumerate() {
        let frame = encode(&Envelope {
            id: id as u64,
            body,
        })
        .unwrap();
        if let Err(err) = write_frame(&mut stream, &frame).await {
            return RogueOutcome::Closed(format!("write: {err}"));
        }
    }
    if let Err(err) = stream.flush().await {
        return RogueOutcome::Closed(format!("flush: {err}"));
    }
    match tokio::time::timeout(Duration::from_secs(3), read_frame(&mut stream)).await {
        Ok(Ok(Some(frame))) => RogueOutcome::Answered(format!(
            "{:?}",
            decode::<Envelope<RpcResponse>>(&frame).map(|e| e.body)
        )),
        Ok(Ok(None)) => RogueOutcome::Closed("end of stream".into()),
        Ok(Err(err)) => RogueOutcome::Closed(err.to_string()),
        Err(_) => RogueOutcome::Silent,
    }
}

#[test]
fn raft_port_answers_no_rpc_without_a_node_certificate() {
    let cluster = shared_tls_cluster();
    let files = cluster.tls_files().unwrap();
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue = rogue_ca(rogue_dir.path());
    let (ca, node2) = (files.ca(), (files.node_cert(1), files.node_key(1)));
    let attempts: Vec<(&str, Arc<ClientConfig>, NodeId)> = vec![
        ("(a) no certificate", client_config(&ca, None), 2),
        (
            "(b) node-2 certificate from another CA",
            client_config(&ca, Some((&rogue.node_cert(1), &rogue.node_key(1)))),
            2,
        ),
        (
            "(c) cluster-CA client certificate claiming node 2",
            client_config(&ca, Some((&files.client_cert(), &files.client_key()))),
            2,
        ),
        (
            "(c) node-3 certificate claiming node 2",
            client_config(&ca, Some((&files.node_cert(2), &files.node_key(2)))),
            2,
        ),
    ];
    let rt = runtime();
    let target = cluster.raft_addr(0);
    for (what, config, claim) in attempts {
        let outcome = rt.block_on(rogue_rpc(target, config, 1, claim));
        eprintln!("rogue raft peer {what} -> {outcome:?}");
        assert!(
            matches!(
                outcome,
                RogueOutcome::HandshakeFailed(_) | RogueOutcome::Closed(_)
            ),
            "{what}: {outcome:?}"
        );
    }

    // Control: node 2's own certificate gets answers on the same path, so
    // the refusals above are the transport's doing.
    let control = rt.block_on(async {
        let config = client_config(&ca, Some((&node2.0, &node2.1)));
        let mut stream = tls_connect(target, config, "node-1.raftlimit")
            .await
            .unwrap();
        for (id, body) in [
            RpcRequest::Hello {
                from: 2,
                cluster: CLUSTER_NAME.into(),
            },
            RpcRequest::Read {
                argv: vec![Bytes::from_static(b"GET"), Bytes::from_static(b"rogue:key")],
            },
        ]
        .into_iter()
        .enumerate()
        {
            write_frame(
                &mut stream,
                &encode(&Envelope {
                    id: id as u64,
                    body,
                })
                .unwrap(),
            )
            .await
            .unwrap();
        }
        stream.flush().await.unwrap();
        let frame = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut stream)).await;
        decode::<Envelope<RpcResponse>>(&frame.unwrap().unwrap().unwrap()).unwrap()
    });
    assert!(
        matches!(control.body, RpcResponse::Client(_)),
        "{control:?}"
    );

    // The cluster is unharmed: no rogue vote raised a term, no rogue write
    // landed, and it still commits writes.
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    for node in 0..3 {
        assert!(cluster.server(node).unwrap().node().status().term < ROGUE_TERM);
    }
    let mut c = rediss(cluster, leader, true).unwrap();
    let rogue_value: Option<String> = cmd("GET").arg("rogue:key").query(&mut c).unwrap();
    assert_eq!(rogue_value, None);
    let _: () = cmd("SET")
        .arg("after:rogues")
        .arg("1")
        .query(&mut c)
        .unwrap();
}

/// A raftlimit-server process, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `reload_interval_ms = 0` (the harness's default) starts no watcher:
/// `watch` returns at once, so only SIGHUP or `reload_tls` reload.
#[test]
fn with_polling_off_no_file_watcher_runs() {
    let cluster = shared_tls_cluster();
    let tls = cluster.server(0).unwrap().tls().unwrap().clone();
    assert_eq!(tls.config().reload_interval_ms, 0);
    let watching = runtime()
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), tls.watch()).await });
    assert!(watching.is_ok(), "the watcher kept running");
}

#[test]
fn sighup_reloads_certificates_in_the_server_binary() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("tls");
    let ca = Authority::generate("sighup test CA").unwrap();
    ca.write(&certs, "ca").unwrap();
    ca.issue(&Leaf::node(1))
        .unwrap()
        .write(&certs, "node1")
        .unwrap();
    ca.issue(&Leaf::client("client"))
        .unwrap()
        .write(&certs, "client")
        .unwrap();
    let files = TlsFiles { dir: certs.clone() };
    let [resp, http, raft, tls] = [free_port(), free_port(), free_port(), free_port()];
    let config = format!(
        "node_id = 1\ndata_dir = {:?}\nresp_addr = \"127.0.0.1:{resp}\"\nhttp_addr = \"127.0.0.1:{http}\"\nraft_addr = \"127.0.0.1:{raft}\"\n\
         [tls]\naddr = \"127.0.0.1:{tls}\"\ncert_file = {:?}\nkey_file = {:?}\nca_file = {:?}\nreload_interval_ms = 0\n",
        dir.path().join("data"),
        files.node_cert(0),
        files.node_key(0),
        files.ca(),
    );
    let config_path = dir.path().join("node1.toml");
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::File::create(dir.path().join("node1.log")).unwrap();
    let child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_raftlimit-server"))
            .arg("--config")
            .arg(&config_path)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = format!("127.0.0.1:{tls}").parse().unwrap();
    let client = client_config(
        &files.ca(),
        Some((&files.client_cert(), &files.client_key())),
    );
    let rt = runtime();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut old = loop {
        if let Ok(mut stream) = rt.block_on(tls_connect(addr, client.clone(), "localhost")) {
            if rt.block_on(ping(&mut stream)).is_ok() {
                break stream;
            }
        }
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(100));
    };
    let before = server_cert(&old).serial;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", resp)).is_err(),
        "plaintext port is off"
    );

    ca.issue(&Leaf::node(1))
        .unwrap()
        .write(&certs, "node1")
        .unwrap();
    let after = CertSummary::of(&load_certs(&files.node_cert(0)).unwrap()[0])
        .unwrap()
        .serial;
    assert_ne!(before, after);
    // Polling is off, so no watcher runs (see
    // `with_polling_off_no_file_watcher_runs`): nothing changes until the
    // signal.
    let unchanged = rt
        .block_on(tls_connect(addr, client.clone(), "localhost"))
        .unwrap();
    assert_eq!(server_cert(&unchanged).serial, before);
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(child.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let mut new = wait_for_serial(&rt, addr, &client, &after);
    assert_eq!(rt.block_on(ping(&mut new)).unwrap(), "+PONG\r\n");
    assert_eq!(
        rt.block_on(ping(&mut old)).unwrap(),
        "+PONG\r\n",
        "old connection survives"
    );
    let log = std::fs::read_to_string(dir.path().join("node1.log")).unwrap();
    assert!(log.contains("TLS certificates reloaded"), "{log}");
}
