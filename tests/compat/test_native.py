"""raftlimit's own limiter commands from redis-py, in RESP2 and RESP3."""

import uuid

import pytest


@pytest.mark.raftlimit_only
def test_native_limiter_command_from_python(cluster):
    key = f"native:{uuid.uuid4()}"
    resp2 = cluster.client(1, protocol=2)
    replies = [resp2.execute_command("RL.CHECK", key, 3, "1m") for _ in range(4)]
    assert [r[0] for r in replies] == [1, 1, 1, 0]
    assert replies[3][1:3] == [3, 0]
    resp3 = cluster.client(2, protocol=3)
    reply = resp3.execute_command("RL.CHECK", key, 3, "1m")
    assert reply[b"allowed"] is False
    assert reply[b"limit"] == 3 and reply[b"remaining"] == 0
    assert reply[b"retry_after_ms"] > 0
