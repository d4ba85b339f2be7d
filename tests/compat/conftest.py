"""Fixtures that start real raftlimit clusters for the compatibility suite.

Each cluster is three `raftlimit-server` processes started by the project's
launcher, `raftlimit-cluster up --json --control`: generated configs,
loopback ports reserved for the cluster's lifetime, temporary data
directories, every node stopped by its PID when the launcher's stdin closes.
This file only asks it: the first line it prints describes the cluster,
and each command written to it (`kill 2`, `leader`) gets one JSON line
back. `TlsCluster` is the same cluster behind TLS (client certificates,
mutual TLS between nodes) and passwords.

With `COMPAT_TARGET=redis` the same tests run against one real `redis-server`
instead, which proves that every expected result is Redis's own. Tests that
need a cluster (a leader kill) or raftlimit's own commands are marked
`raftlimit_only` and skip there.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import redis

LAUNCHER = os.environ.get("RAFTLIMIT_CLUSTER_BIN", "raftlimit-cluster")
SERVER = os.environ.get("RAFTLIMIT_SERVER_BIN", "raftlimit-server")
REDIS_SERVER = os.environ.get("REDIS_SERVER_BIN", "redis-server")
TARGET = os.environ.get("COMPAT_TARGET", "raftlimit")
CLUSTER_NAME = "raftlimit-compat"

if TARGET not in ("raftlimit", "redis"):
    raise RuntimeError(f"COMPAT_TARGET must be raftlimit or redis, not {TARGET!r}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, nodes=3):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [LAUNCHER, "up", "--json", "--control", "--nodes", str(nodes), "--name", CLUSTER_NAME,
             *self.launcher_args()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env={**os.environ, **self.launcher_env()},
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            self.stderr.seek(0)
            raise RuntimeError(f"the cluster did not start:\n{self.stderr.read().decode(errors='replace')}")
        self.info = json.loads(line)

    def launcher_args(self):
        """Options for `raftlimit-cluster up` (TLS, users)."""
        return []

    def launcher_env(self):
        """Environment for the launcher (the password stays out of `ps`)."""
        return {}

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"{command}: {answer['error']}")
        return answer

    def node(self, i):
        return self.info["nodes"][i]

    def kill(self, i):
        self.ask(f"kill {i + 1}")

    def start(self, i):
        self.ask(f"start {i + 1}")

    def port(self, i):
        return int(self.node(i)["addr"].rsplit(":", 1)[1])

    def client(self, i=0, **kwargs):
        kwargs.setdefault("socket_timeout", 15)
        return redis.Redis(host="127.0.0.1", port=self.port(i), **kwargs)

    def wait_for_leader(self, timeout=30):
        """The index of the node every running node agrees leads."""
        return self.ask("leader")["leader"] - 1

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=30)

    def log_tails(self, lines=40):
        out = []
        for node in self.info["nodes"]:
            try:
                with open(node["log"], errors="replace") as f:
                    tail = f.readlines()[-lines:]
            except OSError:
                continue
            out.append(f"--- node{node['id']}.log ---\n{''.join(tail)}")
        return "\n".join(out)


# Credentials of the TLS clusters: `default` has a password (requirepass) and
# `TLS_USER` is an ACL user with every permission.
TLS_DEFAULT_PASSWORD = "compat-default-secret"
TLS_USER = "app"
TLS_USER_PASSWORD = "compat-app-secret"


class TlsCluster(Cluster):
    """A cluster whose RESP ports speak TLS only (no plaintext port), with
    mutual TLS between nodes and AUTH: `default` has a password and
    `TLS_USER` is an ACL user. The launcher generates the certificates as
    `raftlimit-server certs` does, into `<dir>/tls`: a CA, `nodeN.crt` (SANs
    `node-N.raftlimit`, `nodeN`, `localhost`, `127.0.0.1`, `::1`) and
    `client.crt` (CN `client`). `client_auth` is the `[tls] client_auth`
    mode."""

    def __init__(self, client_auth="required", nodes=3):
        self.client_auth = client_auth
        super().__init__(nodes)
        tls_dir = self.info["tls"]["dir"]
        self.ca = os.path.join(tls_dir, "ca.crt")
        self.client_cert = os.path.join(tls_dir, "client.crt")
        self.client_key = os.path.join(tls_dir, "client.key")

    def launcher_args(self):
        return ["--tls", "--client-auth", self.client_auth,
                "--user", f"{TLS_USER} on >{TLS_USER_PASSWORD} ~* +@all"]

    def launcher_env(self):
        return {"RAFTLIMIT_CLUSTER_REQUIREPASS": TLS_DEFAULT_PASSWORD}

    def client(self, i=0, cert=True, **kwargs):
        """A redis-py client over TLS that verifies the node's certificate,
        presents the client certificate if `cert`, and authenticates as
        `default` unless told otherwise."""
        kwargs.setdefault("password", TLS_DEFAULT_PASSWORD)
        kwargs.setdefault("socket_timeout", 15)
        if cert:
            kwargs.setdefault("ssl_certfile", self.client_cert)
            kwargs.setdefault("ssl_keyfile", self.client_key)
        return redis.Redis(
            host="127.0.0.1",
            port=self.port(i),
            ssl=True,
            ssl_ca_certs=self.ca,
            ssl_cert_reqs="required",
            ssl_check_hostname=True,
            **kwargs,
        )


class RedisServer:
    """One real redis-server with the same interface as `Cluster`: every node
    index names the same server, which is always the leader."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="raftlimit-compat-redis-")
        self._port = free_port()
        log = open(os.path.join(self.dir.name, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self._port), "--dir", self.dir.name,
             "--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=log,
        )
        deadline = time.time() + 30
        while True:
            try:
                if self.client().ping():
                    break
            except redis.RedisError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def port(self, _i=0):
        return self._port

    def client(self, _i=0, **kwargs):
        return redis.Redis(host="127.0.0.1", port=self._port, socket_timeout=15, **kwargs)

    def wait_for_leader(self, timeout=30):
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.dir.cleanup()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "raftlimit_only: needs a raftlimit cluster (skipped with COMPAT_TARGET=redis)"
    )


def pytest_collection_modifyitems(config, items):
    if TARGET != "redis":
        return
    skip = pytest.mark.skip(reason="needs a raftlimit cluster, not a single redis-server")
    for item in items:
        if "raftlimit_only" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries the tails of its clusters' node logs,
    which are deleted with the cluster's directory right after."""
    report = yield
    if report.when == "call" and report.failed:
        for name in ("fresh_cluster", "cluster", "tls_cluster"):
            c = item.funcargs.get(name)
            if isinstance(c, Cluster):
                report.sections.append((f"{name} node logs", c.log_tails()))
    return report


@pytest.fixture(scope="session")
def cluster():
    c = RedisServer() if TARGET == "redis" else Cluster()
    yield c
    c.stop()


@pytest.fixture
def fresh_cluster():
    """A cluster of its own, for tests that kill nodes."""
    c = Cluster()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def tls_cluster():
    """A TLS cluster with client certificates required."""
    c = TlsCluster(client_auth="required")
    yield c
    c.stop()


@pytest.fixture
def redis_url(cluster):
    # A follower on purpose: everything must work through forwarding.
    follower = (cluster.wait_for_leader() + 1) % 3
    return f"redis://127.0.0.1:{cluster.port(follower)}/0"
