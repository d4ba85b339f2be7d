"""A Starlette app rate-limited by slowapi, storing its counters in raftlimit."""

import uuid

from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient


def build_app(storage_uri, prefix):
    limiter = Limiter(
        key_func=get_remote_address,
        storage_uri=storage_uri,
        headers_enabled=True,
        key_prefix=prefix,
    )

    @limiter.limit("3/minute")
    async def hello(request):
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/hello", hello)])
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)
    return app


def test_429_with_headers(redis_url):
    client = TestClient(build_app(redis_url, f"compat-{uuid.uuid4()}"))
    statuses = []
    for _ in range(3):
        response = client.get("/hello")
        statuses.append(response.status_code)
        assert response.headers["X-RateLimit-Limit"] == "3"
    assert statuses == [200, 200, 200]
    denied = client.get("/hello")
    assert denied.status_code == 429
    assert denied.headers["X-RateLimit-Limit"] == "3"
    assert denied.headers["X-RateLimit-Remaining"] == "0"
    # The reset header is the window's end as a Unix time with a fraction.
    assert float(denied.headers["X-RateLimit-Reset"]) > 0
    assert 0 < int(denied.headers["Retry-After"]) <= 60
