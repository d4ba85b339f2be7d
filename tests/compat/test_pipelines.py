"""Pipelines and transactions as the script-free limiters send them (Envoy
ratelimit, rate-limiter-flexible's MULTI mode, hash and sorted-set limiters),
and redis-benchmark's default tests."""

import os
import subprocess
import uuid

import pytest
import redis


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


def test_rate_limiter_flexible_multi(cluster):
    # rate-limiter-flexible without scripts: MULTI, SET … EX NX, INCRBY, PTTL.
    client = cluster.client((cluster.wait_for_leader() + 1) % 3)
    key = f"rlflx-multi:{uuid.uuid4()}"

    def consume(points):
        pipe = client.pipeline(transaction=True)
        pipe.set(key, 0, ex=60, nx=True)
        pipe.incrby(key, points)
        pipe.pttl(key)
        return pipe.execute()

    first = consume(1)
    assert first[:2] == [True, 1]
    assert 0 < first[2] <= 60_000
    later = [consume(2) for _ in range(3)]
    assert [r[:2] for r in later] == [[None, 3], [None, 5], [None, 7]]
    assert all(0 < r[2] <= 60_000 for r in later)


def test_hash_limiter_transaction(cluster):
    # Upstash-style state in a hash, updated atomically.
    client = cluster.client(cluster.wait_for_leader())
    key = f"hash:{uuid.uuid4()}"
    for expected in range(1, 4):
        pipe = client.pipeline(transaction=True)
        pipe.hincrby(key, "tokens", -1)
        pipe.hset(key, "refilled_at", 1_700_000_000_000 + expected)
        pipe.pexpire(key, 30_000)
        pipe.hgetall(key)
        result = pipe.execute()
        assert result[0] == -expected
        assert result[3] == {b"tokens": str(-expected).encode(), b"refilled_at": str(1_700_000_000_000 + expected).encode()}
    assert client.hmget(key, "tokens", "nope") == [b"-3", None]
    assert client.type(key) == b"hash"


def test_sliding_log_sorted_set(cluster):
    # A sliding-log limiter: drop entries older than the window, log this
    # request, count, refresh the TTL — one transaction per request. The
    # timestamps are the caller's, so the counts are exact.
    client = cluster.client((cluster.wait_for_leader() + 1) % 3)
    key = f"log:{uuid.uuid4()}"
    window = 10_000
    counts = []
    for now in [1_000, 2_000, 3_000, 12_500, 13_000, 30_000]:
        pipe = client.pipeline(transaction=True)
        pipe.zremrangebyscore(key, 0, now - window)
        pipe.zadd(key, {f"req-{now}": now})
        pipe.zcard(key)
        pipe.pexpire(key, window)
        counts.append(pipe.execute()[2])
    assert counts == [1, 2, 3, 2, 2, 1]
    assert client.zrange(key, 0, -1, withscores=True) == [(b"req-30000", 30000.0)]


def test_watch_aborts_on_a_concurrent_change(cluster):
    a = cluster.client(cluster.wait_for_leader())
    b = cluster.client((cluster.wait_for_leader() + 1) % 3)
    key = f"watch:{uuid.uuid4()}"
    a.set(key, 1)
    with a.pipeline(transaction=True) as pipe:
        pipe.watch(key)
        assert int(pipe.get(key)) == 1
        b.incr(key)
        pipe.multi()
        pipe.set(key, 100)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert int(a.get(key)) == 2
    with a.pipeline(transaction=True) as pipe:
        pipe.watch(key)
        pipe.multi()
        pipe.incrby(key, 10)
        assert pipe.execute() == [12]


def run_benchmark(port, *extra):
    out = subprocess.run(
        # redis-benchmark 7 exits non-zero on the first error reply.
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", "500", "-c", "10", "-q", *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TERM": "dumb"},
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout.replace("\r", "\n")
    assert "error" not in text.lower() and "ERR" not in text, text
    assert "error" not in out.stderr.lower(), out.stderr
    return text


def test_redis_benchmark_default_set_has_no_errors(cluster):
    port = cluster.port((cluster.wait_for_leader() + 1) % 3)
    text = run_benchmark(port)
    assert "requests per second" in text
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "RPOP",
                 "SADD", "HSET", "SPOP", "ZADD", "ZPOPMIN", "LRANGE_100", "LRANGE_600", "MSET"]:
        assert f"{test}:" in text or f"{test} " in text, f"{test} missing"


def test_redis_benchmark_xadd_has_no_errors(cluster):
    # Redis 7.2's redis-benchmark runs `XADD mystream * myfield <data>` in its
    # default set; an older one runs the same as a custom command.
    leader = cluster.wait_for_leader()
    stream = f"bench:{uuid.uuid4()}"
    text = run_benchmark(cluster.port((leader + 1) % 3), "XADD", stream, "*", "myfield", "xxx")
    assert "requests per second" in text
    assert cluster.client(leader).xlen(stream) == 500
