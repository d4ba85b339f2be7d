"""Real Redis clients over TLS: redis-py with `rediss://` URLs and
`redis-cli --tls`, against a cluster that serves TLS only, requires client
certificates and passwords, and uses mutual TLS between its nodes."""

import shutil
import socket
import ssl
import subprocess
import urllib.parse
import uuid

import pytest
import redis
from redis.driver_info import DriverInfo

from conftest import SERVER, TLS_DEFAULT_PASSWORD, TLS_USER, TLS_USER_PASSWORD

pytestmark = pytest.mark.raftlimit_only

NOAUTH = "Authentication required."
WRONGPASS = "invalid username-password pair or user is disabled."
HELLO_NOAUTH = (
    "HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH "
    "<user> <pass> option can be used to authenticate the client and select the RESP protocol version "
    "at the same time"
)


def rediss_url(cluster, i, user=TLS_USER, password=TLS_USER_PASSWORD, cert=True, ca=None):
    """A `rediss://` URL for node `i` that verifies the server against `ca`
    (the cluster's CA by default) and its hostname, 127.0.0.1."""
    query = {
        "ssl_ca_certs": ca or cluster.ca,
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": "true",
    }
    if cert:
        query["ssl_certfile"] = cluster.client_cert
        query["ssl_keyfile"] = cluster.client_key
    auth = f"{urllib.parse.quote(user)}:{urllib.parse.quote(password)}@" if user else ""
    return f"rediss://{auth}127.0.0.1:{cluster.port(i)}/0?{urllib.parse.urlencode(query)}"


def from_url(url):
    return redis.Redis.from_url(url, socket_timeout=15, socket_connect_timeout=15)


def tls_context(cluster, cert=True):
    ctx = ssl.create_default_context(cafile=cluster.ca)
    if cert:
        ctx.load_cert_chain(cluster.client_cert, cluster.client_key)
    return ctx


def tls_socket(cluster, i, cert=True, server_hostname="127.0.0.1"):
    sock = socket.create_connection(("127.0.0.1", cluster.port(i)), timeout=15)
    try:
        return tls_context(cluster, cert).wrap_socket(sock, server_hostname=server_hostname)
    except BaseException:
        sock.close()
        raise


def command(sock, *args):
    """Sends one command as a RESP array and returns its first reply line."""
    out = f"*{len(args)}\r\n".encode()
    for arg in args:
        arg = arg.encode() if isinstance(arg, str) else arg
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    sock.sendall(out)
    got = b""
    while not got.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed after {got!r}")
        got += chunk
    return got


def still_serving(cluster, i):
    assert cluster.client(i).ping() is True
    assert from_url(rediss_url(cluster, i)).ping() is True


def test_rediss_url_on_a_follower_and_the_leader(tls_cluster):
    leader = tls_cluster.wait_for_leader()
    follower = (leader + 1) % 3
    key = f"tls:{uuid.uuid4()}"
    for node in (follower, leader):
        r = from_url(rediss_url(tls_cluster, node))
        assert r.acl_whoami() == TLS_USER
        assert r.set(f"{key}:{node}", "v") is True
        assert r.get(f"{key}:{node}") == b"v"
        assert r.incr(f"{key}:n") == (1 if node == follower else 2)
        assert r.expire(f"{key}:n", 100) is True
        assert 0 < r.ttl(f"{key}:n") <= 100
        # redis-py 8 speaks RESP3 by default: RL.CHECK answers a map.
        replies = [r.execute_command("RL.CHECK", f"{key}:rl:{node}", 2, "1m") for _ in range(3)]
        assert [reply[b"allowed"] for reply in replies] == [True, True, False]
        assert replies[2][b"remaining"] == 0 and replies[2][b"retry_after_ms"] > 0
    # What one node wrote, every node reads: replication runs over mutual TLS.
    for node in range(3):
        r = from_url(rediss_url(tls_cluster, node))
        assert r.get(f"{key}:{follower}") == b"v"
        assert r.get(f"{key}:{leader}") == b"v"
        assert r.get(f"{key}:n") == b"2"
    # The default user's password works in the URL too.
    r = from_url(rediss_url(tls_cluster, follower, user="default", password=TLS_DEFAULT_PASSWORD))
    assert r.acl_whoami() == "default"
    assert r.config_get("port") == {"port": "0"}
    assert r.config_get("tls-port") == {"tls-port": str(tls_cluster.port(follower))}
    assert r.config_get("tls-auth-clients") == {"tls-auth-clients": "yes"}


def test_server_certificate_matches_the_ca_and_hostname(tls_cluster, tmp_path):
    for node in range(3):
        with tls_socket(tls_cluster, node) as sock:
            cert = sock.getpeercert()
            assert dict(x[0] for x in cert["subject"])["commonName"] == f"node-{node + 1}"
            assert set(cert["subjectAltName"]) == {
                ("DNS", f"node-{node + 1}.raftlimit"),
                ("DNS", f"node{node + 1}"),
                ("DNS", "localhost"),
                ("IP Address", "127.0.0.1"),
                ("IP Address", "0:0:0:0:0:0:0:1"),
            }
            assert command(sock, "AUTH", TLS_USER, TLS_USER_PASSWORD) == b"+OK\r\n"
        with tls_socket(tls_cluster, node, server_hostname="localhost") as sock:
            assert command(sock, "PING") == b"-NOAUTH Authentication required.\r\n"
    # Each node presents its own certificate: node 1's is not node 2's.
    with pytest.raises(ssl.SSLCertVerificationError) as err:
        tls_socket(tls_cluster, 0, server_hostname="node-2.raftlimit")
    assert err.value.verify_message == "Hostname mismatch, certificate is not valid for 'node-2.raftlimit'."
    # A client trusting another CA refuses the server.
    other = tmp_path / "other"
    subprocess.run([SERVER, "certs", "--dir", str(other)], check=True, capture_output=True)
    with pytest.raises(redis.ConnectionError) as err:
        from_url(rediss_url(tls_cluster, 0, ca=str(other / "ca.crt"))).ping()
    assert "certificate verify failed" in str(err.value), str(err.value)
    still_serving(tls_cluster, 0)


def test_redis_cli_over_tls(tls_cluster):
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli is not installed (scripts/ensure-deps.sh redis installs Debian's redis-tools)")
    leader = tls_cluster.wait_for_leader()
    key = f"tls:cli:{uuid.uuid4()}"

    def cli_run(node, *args, tls=True, cert=True, password=TLS_USER_PASSWORD):
        argv = [cli, "-h", "127.0.0.1", "-p", str(tls_cluster.port(node))]
        if tls:
            argv += ["--tls", "--cacert", tls_cluster.ca]
        if cert:
            argv += ["--cert", tls_cluster.client_cert, "--key", tls_cluster.client_key]
        if password is not None:
            argv += ["--user", TLS_USER, "--pass", password]
        return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=30)

    def run(node, *args, **kwargs):
        done = cli_run(node, *args, **kwargs)
        assert done.returncode == 0, done
        return done.stdout

    for node in range(3):
        assert run(node, "PING") == "PONG\n"
    follower = (leader + 1) % 3
    assert run(follower, "SET", key, "from-cli") == "OK\n"
    for node in range(3):
        assert run(node, "GET", key) == "from-cli\n"
    assert run(leader, "ACL", "WHOAMI") == f"{TLS_USER}\n"
    # Without a password redis-cli prints Redis's reply (and a blank line).
    assert run(follower, "GET", key, password=None).rstrip("\n") == f"NOAUTH {NOAUTH}"
    # A wrong password: redis-cli reports the AUTH reply and goes on unauthenticated.
    done = cli_run(follower, "PING", password="wrong")
    assert f"AUTH failed: WRONGPASS {WRONGPASS}\n" in done.stderr, done
    assert done.stdout.rstrip("\n") == f"NOAUTH {NOAUTH}"
    # No client certificate, or no TLS at all: no reply, and a failed exit.
    for kwargs in ({"cert": False}, {"tls": False, "cert": False}):
        done = cli_run(follower, "PING", **kwargs)
        assert done.returncode != 0 and done.stdout == "", done
    assert run(follower, "PING") == "PONG\n"


def test_command_before_auth_is_noauth(tls_cluster):
    with tls_socket(tls_cluster, 1) as sock:
        assert command(sock, "GET", "tls:noauth") == b"-NOAUTH Authentication required.\r\n"
        assert command(sock, "SET", "tls:noauth", "x") == b"-NOAUTH Authentication required.\r\n"
        assert command(sock, "AUTH", TLS_DEFAULT_PASSWORD) == b"+OK\r\n"
        assert command(sock, "GET", "tls:noauth") == b"$-1\r\n"
    # redis-py in RESP2 without a password or CLIENT SETINFO at connect: GET
    # is the first command the node sees.
    no_setinfo = DriverInfo(name=None, lib_version=None)
    r = tls_cluster.client(1, password=None, protocol=2, driver_info=no_setinfo)
    with pytest.raises(redis.AuthenticationError) as err:
        r.get("tls:noauth")
    assert str(err.value) == NOAUTH
    # In RESP3 it connects with HELLO 3, which gets Redis's HELLO text.
    r = tls_cluster.client(1, password=None, protocol=3, driver_info=no_setinfo)
    with pytest.raises(redis.AuthenticationError) as err:
        r.get("tls:noauth")
    assert str(err.value) == HELLO_NOAUTH


def test_wrong_password_is_wrongpass(tls_cluster):
    with tls_socket(tls_cluster, 0) as sock:
        want = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        assert command(sock, "AUTH", "wrong") == want
        assert command(sock, "AUTH", TLS_USER, "wrong") == want
        assert command(sock, "AUTH", "nobody", TLS_USER_PASSWORD) == want
        assert command(sock, "HELLO", "3", "AUTH", TLS_USER, "wrong") == want
        # The connection stays usable, still unauthenticated.
        assert command(sock, "GET", "tls:wrongpass") == b"-NOAUTH Authentication required.\r\n"
        assert command(sock, "AUTH", TLS_USER, TLS_USER_PASSWORD) == b"+OK\r\n"
    for user, password in (("default", "wrong"), (TLS_USER, "wrong")):
        with pytest.raises(redis.AuthenticationError) as err:
            from_url(rediss_url(tls_cluster, 0, user=user, password=password)).ping()
        assert str(err.value) == WRONGPASS


def test_plaintext_client_on_the_tls_port_is_closed(tls_cluster):
    plain = redis.Redis(host="127.0.0.1", port=tls_cluster.port(2), password=TLS_DEFAULT_PASSWORD,
                        socket_timeout=15)
    with pytest.raises(redis.ConnectionError) as err:
        plain.ping()
    assert str(err.value) == "Connection closed by server."
    # Raw bytes: nothing comes back but, at most, a TLS alert record.
    with socket.create_connection(("127.0.0.1", tls_cluster.port(2)), timeout=15) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        got = b""
        try:
            while chunk := sock.recv(4096):
                got += chunk
        except ConnectionResetError:
            pass
    assert got == b"" or got[0] == 0x15, got
    still_serving(tls_cluster, 2)


def test_client_without_a_certificate_is_refused(tls_cluster):
    r = tls_cluster.client(1, cert=False)
    with pytest.raises(redis.ConnectionError) as err:
        r.ping()
    assert "certificate required" in str(err.value), str(err.value)
    with pytest.raises(redis.ConnectionError):
        from_url(rediss_url(tls_cluster, 1, cert=False)).ping()
    # Python's ssl, without redis-py: the server's alert after the handshake.
    with pytest.raises(ssl.SSLError) as raw:
        with tls_socket(tls_cluster, 1, cert=False) as sock:
            command(sock, "PING")
    assert raw.value.reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED", repr(raw.value)
    still_serving(tls_cluster, 1)
