"""Fixtures that start real raftlimit clusters for the compatibility suite.

Each cluster is three `raftlimit-server` processes on free loopback ports with
temporary data directories. Only the processes started here are stopped, by
their PIDs.

With `COMPAT_TARGET=redis` the same tests run against one real `redis-server`
instead, which proves that every expected result is Redis's own. Tests that
need a cluster (a leader kill) or raftlimit's own commands are marked
`raftlimit_only` and skip there.
"""

import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import redis

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
        self.dir = tempfile.TemporaryDirectory(prefix="raftlimit-compat-")
        self.ports = [(free_port(), free_port(), free_port()) for _ in range(nodes)]
        members = "".join(
            f'[[cluster.nodes]]\nid = {i + 1}\nresp_addr = "127.0.0.1:{resp}"\nraft_addr = "127.0.0.1:{raft}"\n'
            for i, (resp, _, raft) in enumerate(self.ports)
        )
        self.configs = []
        for i, (resp, http, raft) in enumerate(self.ports):
            path = os.path.join(self.dir.name, f"node{i + 1}.toml")
            with open(path, "w") as f:
                f.write(
                    f'node_id = {i + 1}\ndata_dir = "{self.dir.name}/node{i + 1}"\n'
                    f'resp_addr = "127.0.0.1:{resp}"\nhttp_addr = "127.0.0.1:{http}"\n'
                    f'raft_addr = "127.0.0.1:{raft}"\n[cluster]\nname = "{CLUSTER_NAME}"\n{members}'
                )
            self.configs.append(path)
        self.procs = [None] * nodes
        for i in range(nodes):
            self.start(i)
        self.wait_for_leader()

    def start(self, i):
        log = open(os.path.join(self.dir.name, f"node{i + 1}.log"), "ab")
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
        return redis.Redis(host="127.0.0.1", port=self.port(i), socket_timeout=15, **kwargs)

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

    def stop(self):
        for i, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.procs[i] = None
        self.dir.cleanup()


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


@pytest.fixture
def redis_url(cluster):
    # A follower on purpose: everything must work through forwarding.
    follower = (cluster.wait_for_leader() + 1) % 3
    return f"redis://127.0.0.1:{cluster.port(follower)}/0"
