"""Lua scripts written after the documented patterns of go-redis `redis_rate`
and node `rate-limiter-flexible`, run through redis-py with EVALSHA/EVAL."""

import uuid

import pytest
import redis

# go-redis redis_rate's GCRA: redis.replicate_commands(), TIME, GET, SET … EX.
GCRA = """
redis.replicate_commands()
local key = KEYS[1]
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local emission_interval = period / rate
local increment = emission_interval * cost
local burst_offset = emission_interval * burst
local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)
local tat = redis.call("GET", key)
if not tat then tat = now else tat = tonumber(tat) end
tat = math.max(tat, now)
local new_tat = tat + increment
local allow_at = new_tat - burst_offset
local diff = now - allow_at
local remaining = diff / emission_interval
if remaining < 0 then
  return {0, 0, tostring(-diff), tostring(tat - now)}
end
local reset_after = new_tat - now
if reset_after > 0 then
  redis.call("SET", key, new_tat, "EX", math.ceil(reset_after))
end
return {cost, remaining, tostring(-1), tostring(reset_after)}
"""

# rate-limiter-flexible's consume: SET … EX NX, INCRBY, PTTL, EXPIRE.
FLEXIBLE = """
redis.call("SET", KEYS[1], 0, "EX", ARGV[2], "NX")
local consumed = redis.call("INCRBY", KEYS[1], ARGV[1])
local ttl = redis.call("PTTL", KEYS[1])
if ttl == -1 then
  redis.call("EXPIRE", KEYS[1], ARGV[2])
  ttl = 1000 * ARGV[2]
end
return {consumed, ttl}
"""


def test_redis_rate_gcra(cluster):
    client = cluster.client((cluster.wait_for_leader() + 1) % 3)
    script = client.register_script(GCRA)
    key = f"rate:{uuid.uuid4()}"
    # 10 per hour with a burst of 10: the emission interval (360 s) and every
    # sum the script forms are exact doubles, and no token comes back while
    # the test runs, so the counts are exact.
    results = [script(keys=[key], args=[10, 10, 3600, 1]) for _ in range(12)]
    assert [r[0] for r in results] == [1] * 10 + [0] * 2
    # Lua numbers become integers by truncation, as in Redis.
    assert [r[1] for r in results] == list(range(9, -1, -1)) + [0, 0]
    assert all(r[2] == b"-1" for r in results[:10])
    assert 0 < float(results[10][2]) <= 360
    assert 3240 < float(results[10][3]) <= 3600
    assert 0 < client.ttl(key) <= 3600
    # A cold script cache: EVALSHA answers NOSCRIPT, the client loads it.
    client.script_flush()
    assert script(keys=[key], args=[10, 10, 3600, 1])[0] == 0
    assert client.script_exists(script.sha) == [True]


def test_rate_limiter_flexible(cluster):
    client = cluster.client(cluster.wait_for_leader())
    script = client.register_script(FLEXIBLE)
    key = f"rlflx:{uuid.uuid4()}"
    consumed = [script(keys=[key], args=[1, 60])[0] for _ in range(5)]
    assert consumed == [1, 2, 3, 4, 5]
    ttl = script(keys=[key], args=[2, 60])[1]
    assert 0 < ttl <= 60_000
    assert int(client.get(key)) == 7
    # EVAL directly, as the library does when the script cache is cold.
    assert client.eval(FLEXIBLE, 1, key, 1, 60)[0] == 8
    # A key without a TTL gets one.
    bare = f"rlflx:{uuid.uuid4()}"
    client.set(bare, 3)
    assert client.eval(FLEXIBLE, 1, bare, 1, 60) == [4, 60_000]
    assert 0 < client.pttl(bare) <= 60_000


def test_script_errors_are_redis_errors(cluster):
    client = cluster.client(0)
    with pytest.raises(redis.exceptions.NoScriptError):
        client.evalsha("0" * 40, 0)
    key = f"wrong:{uuid.uuid4()}"
    client.rpush(key, "x")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        client.eval(FLEXIBLE, 1, key, 1, 60)
