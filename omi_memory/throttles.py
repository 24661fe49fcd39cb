"""API throttles: how many requests an API key, or an address without a valid key, may make.

Each kind of endpoint has its rate (settings THROTTLE_SEARCH, THROTTLE_WRITES, THROTTLE_READS;
THROTTLE_ANON for requests without a valid key, counted per address), read at each request. A
key's window starts with its first request and lasts the rate's period; past the rate the API
answers 429 in the one error shape with `Retry-After`, the seconds until the window ends.

Counts live in Django's cache, Redis when CACHE_URL (or REDIS_URL) is set, so that every worker
process and host shares them, and are kept with atomic adds and increments (two processes never
both see the last free request). When the cache cannot be reached the request is let through, and
logged: a throttle is not worth an outage; the cache is then left alone for a while
(BROKER_RETRY_AFTER_SECONDS), so that requests do not each wait on it.
"""

import math
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.errors import Throttled
from ninja.throttling import BaseThrottle

from omi_memory.actors import client_ip
from omi_memory.breaker import CircuitBreaker

_CACHE = CircuitBreaker("throttle cache", lambda: settings.BROKER_RETRY_AFTER_SECONDS)
PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """`100/min` -> (100 requests, 60 seconds)."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period]


class RateThrottle(BaseThrottle):
    """A fixed window per API key (per address for a request without a valid key) and scope, whose
    rate is the setting `rate_setting`. One instance serves every thread: what a request leaves for
    `wait()` is kept per thread."""

    def __init__(self, scope: str, rate_setting: str):
        self.scope = scope
        self.rate_setting = rate_setting
        self._local = threading.local()

    def ident(self, request: HttpRequest) -> str:
        key = getattr(request, "auth", None)
        if key is None:
            return f"ip{client_ip(request) or 'unknown'}"
        return f"key{key.pk}" if hasattr(key, "key_hash") else f"user{key.pk}"  # an admin in the API docs

    def allow_request(self, request: HttpRequest) -> bool:
        self._local.wait = None
        rate = getattr(settings, self.rate_setting)
        if rate is None:
            return True
        if _CACHE.is_open():
            return True
        limit, period = parse_rate(rate)
        key = f"throttle:{self.scope}:{period}:{self.ident(request)}"
        now = time.time()
        try:
            started, count = self._count(key, now, period)
        except Exception as exc:  # noqa: BLE001 - the cache is down: let the request through
            _CACHE.failed(exc, "requests are let through unthrottled")
            return True
        if count <= limit:
            return True
        self._local.wait = max(1.0, started + period - now)
        return False

    @staticmethod
    def _count(key: str, now: float, period: int) -> tuple[float, int]:
        """When the current window started (this request may start it) and its requests so far,
        this one included. Each window counts in a key of its own, named by its start."""
        cache.add(f"{key}:start", now, timeout=period)
        started = cache.get(f"{key}:start", now)
        counter = f"{key}:{started!r}"
        for _ in range(2):
            cache.add(counter, 0, timeout=period + 1)
            try:
                return started, cache.incr(counter)
            except ValueError:  # expired between the two calls
                continue
        return started, 1

    def wait(self) -> float | None:
        return getattr(self._local, "wait", None)

    def check(self, request: HttpRequest) -> None:
        """For a caller outside ninja's throttle hook (the API-key auth): raise `Throttled` when over."""
        if not self.allow_request(request):
            raise Throttled(wait=self.wait())


# Per API key. Feedback on a search is a write.
SEARCH = RateThrottle("search", "THROTTLE_SEARCH")
WRITES = RateThrottle("writes", "THROTTLE_WRITES")
READS = RateThrottle("reads", "THROTTLE_READS")
# Per address, for requests without a valid API key (counted by the API-key auth when it fails).
ANON = RateThrottle("anon", "THROTTLE_ANON")


def retry_after(exc: Throttled) -> int:
    """Whole seconds to wait (RFC 9110 delta-seconds), at least 1."""
    return max(1, math.ceil(exc.wait or 1))


def document_retry_after(schema: dict) -> dict:
    """Say in the OpenAPI schema that every 429 answer carries `Retry-After`."""
    header = {
        "Retry-After": {
            "description": "Seconds until the throttle lets this API key (or address) in again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            throttled = operation.get("responses", {}).get(429)
            if throttled is not None:
                throttled["description"] = "Too many requests: throttled; retry after `Retry-After` seconds."
                throttled.setdefault("headers", {}).update(header)
    return schema
