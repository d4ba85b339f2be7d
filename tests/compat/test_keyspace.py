"""Key commands the limiter libraries rely on, with Redis's exact replies:
SET … PX/EX NX, PTTL, RENAME across types, OBJECT ENCODING, MEMORY USAGE,
WAIT, and streams."""

import uuid

import pytest
import redis

from conftest import TARGET


@pytest.fixture
def client(cluster):
    return cluster.client((cluster.wait_for_leader() + 1) % 3, decode_responses=True)


def key(name):
    return f"{name}:{uuid.uuid4()}"


def test_set_px_ex_nx_and_pttl(client):
    k = key("set")
    assert client.pttl(k) == -2
    assert client.ttl(k) == -2
    assert client.set(k, 0, px=1500, nx=True) is True
    assert client.set(k, 1, ex=10, nx=True) is None
    assert client.get(k) == "0"
    assert 0 < client.pttl(k) <= 1500
    assert client.set(k, 5, xx=True, keepttl=True) is True
    assert 0 < client.pttl(k) <= 1500
    assert client.set(k, 6, xx=True) is True
    assert client.pttl(k) == -1 and client.ttl(k) == -1
    assert client.set(k, 7, nx=True, get=True) == "6"
    assert client.get(k) == "6"
    fresh = key("set")
    assert client.set(fresh, 1, ex=60, nx=True, get=True) is None
    assert client.get(fresh) == "1" and 0 < client.ttl(fresh) <= 60
    for bad in [dict(ex=0), dict(px=0), dict(px=-5)]:
        with pytest.raises(redis.ResponseError, match="invalid expire time in 'set' command"):
            client.set(k, 1, **bad)
    with pytest.raises(redis.ResponseError, match="syntax error"):
        client.execute_command("SET", k, 1, "NX", "XX")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        client.execute_command("SET", k, 1, "EX", 5, "PX", 5000)
    lst = key("list")
    client.rpush(lst, "a")
    # NX on a key of another type is "exists": no write, no WRONGTYPE.
    assert client.set(lst, 1, nx=True, ex=5) is None
    assert client.type(lst) == "list"
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.set(lst, 1, get=True)


def test_rename_across_types(client):
    s, l, h, z = key("s"), key("l"), key("h"), key("z")
    client.set(s, "v", ex=100)
    client.rpush(l, "a", "b")
    client.hset(h, "f", "1")
    client.zadd(z, {"m": 1.5})
    assert client.rename(s, l) is True
    assert client.type(l) == "string" and client.get(l) == "v"
    assert 0 < client.ttl(l) <= 100, "RENAME carries the TTL"
    assert client.exists(s) == 0
    assert client.rename(h, l) is True
    assert client.type(l) == "hash" and client.ttl(l) == -1, "the source's lack of TTL wins"
    assert client.renamenx(z, l) is False
    assert client.renamenx(z, s) is True
    assert client.zscore(s, "m") == 1.5
    assert client.rename(s, s) is True
    with pytest.raises(redis.ResponseError, match="no such key"):
        client.rename(key("missing"), s)
    with pytest.raises(redis.ResponseError, match="no such key"):
        client.renamenx(key("missing"), s)


# What OBJECT ENCODING answers: Redis names its compact encodings, raftlimit
# the structures it really uses (docs/commands.md#introspection).
# Redis 7.0 says `quicklist` for a small list, 7.2 `listpack`.
ENCODINGS = {
    "redis": {"int": {"int"}, "str": {"embstr"}, "long": {"raw"}, "list": {"listpack", "quicklist"},
              "hash": {"listpack"}, "set": {"intset"}, "zset": {"listpack"}},
    "raftlimit": {"int": {"int"}, "str": {"raw"}, "long": {"raw"}, "list": {"deque"}, "hash": {"btree"},
                  "set": {"btree"}, "zset": {"btree"}},
}


def test_object_encoding_and_memory_usage(client):
    keys = {name: key(name) for name in ENCODINGS["redis"]}
    client.set(keys["int"], 12345)
    client.set(keys["str"], "hello")
    client.set(keys["long"], "x" * 100)
    client.rpush(keys["list"], "a", "b")
    client.hset(keys["hash"], "f", "v")
    client.sadd(keys["set"], 1, 2, 3)
    client.zadd(keys["zset"], {"m": 1})
    for name, k in keys.items():
        assert client.object("encoding", k) in ENCODINGS[TARGET][name], name
    assert client.object("encoding", key("missing")) is None
    assert client.object("refcount", keys["list"]) == 1
    small, big = key("small"), key("big")
    client.rpush(small, "a")
    client.rpush(big, *[f"element-{i}" for i in range(200)])
    assert 0 < client.memory_usage(small) < client.memory_usage(big)
    assert client.memory_usage(key("missing")) is None
    assert isinstance(client.memory_usage(big, samples=0), int)


def test_wait_answers_at_once(client):
    client.set(key("wait"), 1)
    replicas = client.wait(0, 0)
    assert isinstance(replicas, int) and replicas >= 0
    with pytest.raises(redis.ResponseError, match="timeout is negative"):
        client.wait(0, -1)


@pytest.mark.raftlimit_only
def test_wait_counts_the_majority(cluster):
    # A committed write is on a majority: at least one follower of three.
    for i in range(3):
        c = cluster.client(i)
        c.set(key("wait"), 1)
        assert c.wait(1, 0) >= 1


def test_streams(client):
    s = key("stream")
    assert client.xadd(s, {"f": "v"}, id="5") == "5-0"
    assert client.xadd(s, {"f": "w"}, id="5-*") == "5-1"
    with pytest.raises(redis.ResponseError, match="equal or smaller than the target stream top item"):
        client.xadd(s, {"f": "v"}, id="5-1")
    auto = client.xadd(s, {"a": "1", "b": "2"})
    ms, seq = map(int, auto.split("-"))
    assert ms > 5 and seq >= 0
    assert client.xlen(s) == 3
    assert client.xrange(s) == [("5-0", {"f": "v"}), ("5-1", {"f": "w"}), (auto, {"a": "1", "b": "2"})]
    assert client.xrevrange(s, count=1) == [(auto, {"a": "1", "b": "2"})]
    assert client.xrange(s, "(5-0", "+", count=1) == [("5-1", {"f": "w"})]
    assert client.xdel(s, "5-0", "99-0") == 1
    # redis-py trims approximately (`~`) unless told otherwise.
    assert client.xtrim(s, maxlen=1, approximate=False) == 1
    assert [e[0] for e in client.xrange(s)] == [auto]
    assert client.xadd(s, {"x": "y"}, maxlen=0, approximate=False) is not None
    assert client.xlen(s) == 0 and client.exists(s) == 1 and client.type(s) == "stream"
    assert client.xadd(key("stream"), {"f": "v"}, nomkstream=True) is None
    m = key("stream")
    for i in range(1, 6):
        client.xadd(m, {"i": str(i)}, id=f"{i}-0")
    assert client.xtrim(m, minid="3", approximate=False) == 2
    assert client.xadd(m, {"i": "6"}, id="6-0", minid="5", approximate=False) == "6-0"
    assert [e[0] for e in client.xrange(m)] == ["5-0", "6-0"]
    client.set(s, "string")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.xadd(s, {"f": "v"})
