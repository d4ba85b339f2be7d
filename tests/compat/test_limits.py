"""Python `limits` (behind slowapi and Flask-Limiter) with its Redis storage."""

import uuid

import pytest
from limits import parse, storage, strategies

STRATEGIES = {
    "fixed-window": strategies.FixedWindowRateLimiter,
    "moving-window": strategies.MovingWindowRateLimiter,
    "sliding-window-counter": strategies.SlidingWindowCounterRateLimiter,
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_exact_counts_test_stats_and_clear(redis_url, name):
    limiter = STRATEGIES[name](storage.storage_from_string(redis_url))
    item = parse("5/minute")
    who = f"{name}-{uuid.uuid4()}"
    assert limiter.test(item, who)
    allowed = [limiter.hit(item, who) for _ in range(8)]
    assert allowed == [True] * 5 + [False] * 3
    assert not limiter.test(item, who)
    stats = limiter.get_window_stats(item, who)
    assert stats.remaining == 0
    assert stats.reset_time > 0
    limiter.clear(item, who)
    assert limiter.test(item, who)
    assert limiter.get_window_stats(item, who).remaining == 5
    assert limiter.hit(item, who)
    assert limiter.get_window_stats(item, who).remaining == 4


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_cost_and_independent_keys(redis_url, name):
    limiter = STRATEGIES[name](storage.storage_from_string(redis_url))
    item = parse("10/hour")
    a, b = f"a-{uuid.uuid4()}", f"b-{uuid.uuid4()}"
    assert limiter.hit(item, a, cost=7)
    assert not limiter.hit(item, a, cost=4)
    # The fixed window counts a denied hit too (INCRBY, then compare); the
    # moving and sliding windows take only what fits.
    fits = name != "fixed-window"
    assert limiter.hit(item, a, cost=3) == fits
    assert not limiter.hit(item, a)
    assert limiter.get_window_stats(item, a).remaining == 0
    assert limiter.hit(item, b, cost=10)
    assert not limiter.hit(item, b)
