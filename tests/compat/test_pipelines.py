"""Envoy ratelimit's pipelined INCRBY + EXPIRE, and redis-benchmark's default tests."""

import os
import subprocess
import uuid


def test_envoy_style_incrby_expire_pipeline(cluster):
    client = cluster.client((cluster.wait_for_leader() + 2) % 3)
    keys = [f"envoy:{uuid.uuid4()}" for _ in range(3)]
    for round_ in range(1, 5):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.incrby(key, 2)
            pipe.expire(key, 60)
        results = pipe.execute()
        assert results == [2 * round_, True] * len(keys)
    assert all(0 < client.ttl(k) <= 60 for k in keys)


def test_redis_benchmark_default_set_has_no_errors(cluster):
    port = cluster.port((cluster.wait_for_leader() + 1) % 3)
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", "500", "-c", "10", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TERM": "dumb"},
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout.replace("\r", "\n")
    assert "requests per second" in text
    assert "ERR" not in text and "error" not in text.lower(), text
    for test in ["SET", "GET", "INCR", "LPUSH", "RPOP", "SADD", "HSET", "SPOP", "ZADD", "ZPOPMIN", "LRANGE_600", "MSET"]:
        assert f"{test}" in text, f"{test} missing"
