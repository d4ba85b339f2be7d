"""redis-py's Sentinel finds the Raft leader and follows it through a failover."""

import time
import uuid

import pytest
from redis.sentinel import Sentinel

from conftest import CLUSTER_NAME


@pytest.mark.raftlimit_only
def test_sentinel_follows_a_leader_kill(fresh_cluster):
    sentinel = Sentinel([("127.0.0.1", fresh_cluster.port(i)) for i in range(3)], socket_timeout=5)
    leader = fresh_cluster.wait_for_leader()
    assert sentinel.discover_master(CLUSTER_NAME) == ("127.0.0.1", fresh_cluster.port(leader))
    assert len(sentinel.discover_slaves(CLUSTER_NAME)) == 2
    master = sentinel.master_for(CLUSTER_NAME, socket_timeout=5)
    key = f"sentinel:{uuid.uuid4()}"
    master.set(key, "before")
    fresh_cluster.kill(leader)
    deadline = time.time() + 30
    last = None
    while True:
        try:
            last = sentinel.discover_master(CLUSTER_NAME)
            if last != ("127.0.0.1", fresh_cluster.port(leader)):
                master.set(key, "after")
                break
        except Exception as err:
            last = err
        assert time.time() < deadline, f"no new master after killing node {leader + 1}; last answer: {last!r}"
        time.sleep(0.2)
    assert master.get(key) == b"after"
