"""Fixtures that start real raftlimit clusters for the compatibility suite.

Each cluster is three `raftlimit-server` processes on free loopback ports with
temporary data directories. Only the processes started here are stopped, by
their PIDs. `TlsCluster` is the same cluster behind TLS (client certificates,
mutual TLS between nodes) and passwords.

With `COMPAT_TARGET=redis` the same tests run against one real `redis-server`
instead, which proves that every expected result is Redis's own. Tests that
need a cluster (a leader kill) or raftlimit's own commands are marked
`raftlimit_only` and skip there.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SERVER = os.environ.get("RAFTLIMIT_SERVER_BIN", "raftlimit-server")
REDIS_SERVER = os.environ.get("REDIS_SERVER_BIN", "redis-server")
TARGET = os.environ.get("COMPAT_TARGET", "raftlimit")
CLUSTER_NAME = "raftlimit-compat"

if TARGET not in ("raftlimit", "redis"):
    raise RuntimeError(f"COMPAT_TARGET must be raftlimit or redis, not {TARGET!r}")


# How many times a cluster is started on fresh ports when a node exits at
# startup (see `Cluster.__init__`).
START_ATTEMPTS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    prefix = "raftlimit-compat-"

    def __init__(self, nodes=3):
        self.dir = tempfile.TemporaryDirectory(prefix=self.prefix)
        self.procs = [None] * nodes
        self.prepare(nodes)
        for attempt in range(1, START_ATTEMPTS + 1):
            self.ports = [(free_port(), free_port(), free_port()) for _ in range(nodes)]
            self.write_configs(nodes)
            for i in range(nodes):
                self.start(i)
            try:
                exited = self.wait_until_serving()
            except RuntimeError as err:
                logs = self.log_tails()
                self.stop()
                raise RuntimeError(f"{err}\n{logs}") from err
            if not exited:
                return
            # A port that was free when it was picked can be taken by another
            # socket (an outgoing connection's ephemeral port) before the node
            # binds it; that node exits at startup. Start again on fresh ports,
            # from empty data directories, since the members list changes.
            logs = self.log_tails()
            if attempt == START_ATTEMPTS:
                self.stop()
                raise RuntimeError(f"nodes {exited} exited at startup {attempt} times\n{logs}")
            self.stop_nodes()
            print(f"cluster start {attempt}: nodes {exited} exited at startup; retrying on fresh ports\n{logs}")
            for i in range(nodes):
                shutil.rmtree(self.data_dir(i), ignore_errors=True)
                os.remove(self.log_path(i))

    def data_dir(self, i):
        return os.path.join(self.dir.name, f"node{i + 1}")

    def log_path(self, i):
        return os.path.join(self.dir.name, f"node{i + 1}.log")

    def write_configs(self, nodes):
        members = "".join(
            f'[[cluster.nodes]]\nid = {i + 1}\nresp_addr = "127.0.0.1:{resp}"\nraft_addr = "127.0.0.1:{raft}"\n'
            for i, (resp, _, raft) in enumerate(self.ports)
        )
        self.configs = []
        for i, (resp, http, raft) in enumerate(self.ports):
            path = os.path.join(self.dir.name, f"node{i + 1}.toml")
            with open(path, "w") as f:
                f.write(
                    f'node_id = {i + 1}\ndata_dir = "{self.data_dir(i)}"\n'
                    f'resp_addr = "127.0.0.1:{resp}"\nhttp_addr = "127.0.0.1:{http}"\n'
                    f'raft_addr = "127.0.0.1:{raft}"\n{self.node_toml(i)}'
                    f'[cluster]\nname = "{CLUSTER_NAME}"\n{members}'
                )
            self.configs.append(path)

    def wait_until_serving(self, timeout=30):
        """Waits until every node answers and one of them leads. Returns the
        indexes of nodes that exited instead (empty when all serve); raises
        when they neither serve nor exit in time. A leader alone is not
        enough: two nodes elect one, and a test that kills it would then be
        left without a majority."""
        deadline = time.time() + timeout
        while True:
            exited = [i for i, proc in enumerate(self.procs) if proc.poll() is not None]
            if exited:
                return exited
            if all(self.answers(i) for i in range(len(self.procs))) and self.leader() is not None:
                return []
            if time.time() > deadline:
                raise RuntimeError(f"the cluster did not start serving within {timeout} s")
            time.sleep(0.1)

    def answers(self, i):
        try:
            with self.client(i, socket_timeout=2, retry=Retry(NoBackoff(), 0)) as client:
                return client.ping()
        except redis.RedisError:
            return False

    def prepare(self, nodes):
        """Writes whatever the node configs refer to, before they are written."""

    def node_toml(self, i):
        """Extra settings for node `i`: top-level keys and whole tables, placed
        before `[cluster]`."""
        return ""

    def start(self, i):
        with open(self.log_path(i), "ab") as log:
            self.procs[i] = subprocess.Popen([SERVER, "--config", self.configs[i]], stdout=log, stderr=log)

    def kill(self, i):
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        self.procs[i] = None

    def port(self, i):
        return self.ports[i][0]

    def client(self, i=0, **kwargs):
        kwargs.setdefault("socket_timeout", 15)
        return redis.Redis(host="127.0.0.1", port=self.port(i), **kwargs)

    def leader(self):
        for i in range(len(self.ports)):
            if self.procs[i] is None:
                continue
            try:
                info = self.client(i).info("replication")
            except redis.RedisError:
                continue
            if info.get("role") == "master":
                return i
        return None

    def wait_for_leader(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            leader = self.leader()
            if leader is not None:
                return leader
            time.sleep(0.1)
        raise RuntimeError("no leader elected")

    def stop_nodes(self):
        for i, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            self.procs[i] = None

    def stop(self):
        self.stop_nodes()
        self.dir.cleanup()

    def log_tails(self, lines=40):
        out = []
        for i in range(len(self.procs)):
            try:
                with open(self.log_path(i), errors="replace") as f:
                    tail = f.readlines()[-lines:]
            except OSError:
                continue
            out.append(f"--- node{i + 1}.log ---\n{''.join(tail)}")
        return "\n".join(out)


# Credentials of the TLS clusters: `default` has a password (requirepass) and
# `TLS_USER` is an ACL user with every permission.
TLS_DEFAULT_PASSWORD = "compat-default-secret"
TLS_USER = "app"
TLS_USER_PASSWORD = "compat-app-secret"


class TlsCluster(Cluster):
    """A cluster whose RESP ports speak TLS only (no plaintext port), with
    mutual TLS between nodes and AUTH: `default` has a password and
    `TLS_USER` is an ACL user. Certificates come from `raftlimit-server certs`
    in `<dir>/tls`: a CA, `nodeN.crt` (SANs `node-N.raftlimit`, `nodeN`,
    `localhost`, `127.0.0.1`, `::1`) and `client.crt` (CN `client`).
    `client_auth` is the `[tls] client_auth` mode."""

    prefix = "raftlimit-compat-tls-"

    def __init__(self, client_auth="required", nodes=3):
        self.client_auth = client_auth
        super().__init__(nodes)

    def prepare(self, nodes):
        self.tls_dir = os.path.join(self.dir.name, "tls")
        subprocess.run(
            [SERVER, "certs", "--dir", self.tls_dir, "--nodes", str(nodes)],
            check=True,
            capture_output=True,
        )
        self.ca = os.path.join(self.tls_dir, "ca.crt")
        self.client_cert = os.path.join(self.tls_dir, "client.crt")
        self.client_key = os.path.join(self.tls_dir, "client.key")

    def node_toml(self, i):
        resp = self.ports[i][0]
        # With `plaintext` off `resp_addr` is not bound, so the TLS listener
        # takes the RESP port itself: the port the members list advertises.
        return (
            f'requirepass = "{TLS_DEFAULT_PASSWORD}"\n'
            f"[tls]\n"
            f'addr = "127.0.0.1:{resp}"\n'
            f'cert_file = "{self.tls_dir}/node{i + 1}.crt"\n'
            f'key_file = "{self.tls_dir}/node{i + 1}.key"\n'
            f'ca_file = "{self.ca}"\n'
            f'client_auth = "{self.client_auth}"\n'
            f"plaintext = false\n"
            f"[[users]]\n"
            f'name = "{TLS_USER}"\n'
            f'rules = "on >{TLS_USER_PASSWORD} ~* +@all"\n'
        )

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
