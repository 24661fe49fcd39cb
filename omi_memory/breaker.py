"""A circuit breaker for a service the app can do without for a while (the broker, a cache).

After a failure, calls are skipped for `retry_after` seconds; then the next call tries the
service again. So while Redis is down a request pays for one failed attempt at most every
`retry_after` seconds, not one per request, and the log says so once a minute at most. State is
per process (safe to lose: a new process tries the service once and learns).
"""

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings

logger = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60


class CircuitBreaker:
    """`retry_after`: seconds, or a function that reads them (e.g. from a setting) when needed."""

    def __init__(self, name: str, retry_after: float | Callable[[], float]):
        self.name = name
        self._retry_after = retry_after
        self._open_until = 0.0
        self._warned_at: float | None = None
        self._lock = threading.Lock()

    @property
    def retry_after(self) -> float:
        return self._retry_after() if callable(self._retry_after) else self._retry_after

    def is_open(self) -> bool:
        """True while calls should be skipped (the service failed less than `retry_after` ago)."""
        return time.monotonic() < self._open_until

    def failed(self, exc: BaseException, what_now: str) -> None:
        """Record a failure: skip the service for a while, and say so (`what_now`: what the app
        does instead)."""
        now = time.monotonic()
        with self._lock:
            self._open_until = now + self.retry_after
            warn = self._warned_at is None or now - self._warned_at >= WARN_EVERY_SECONDS
            if warn:
                self._warned_at = now
        if warn:
            logger.warning(
                "%s unavailable (%s: %s): %s; trying it again in %ss",
                self.name,
                type(exc).__name__,
                exc,
                what_now,
                self.retry_after,
            )

    def reset(self) -> None:
        with self._lock:
            self._open_until = 0.0
            self._warned_at = None


# The task broker: while it fails, sending is skipped for a while (BROKER_RETRY_AFTER_SECONDS).
BROKER = CircuitBreaker("task broker", lambda: settings.BROKER_RETRY_AFTER_SECONDS)


def send_task(task, args: list, *, what_now: str) -> bool:
    """Send a Celery task, unless the broker failed a moment ago; False when it could not be sent
    (`what_now`: what happens to the work instead, for the log). The caller's work is stored in the
    database, where a sweeper finds what was never sent."""
    from kombu.exceptions import OperationalError as BrokerError

    if BROKER.is_open():
        return False
    try:
        task.apply_async(args=args)
    except (BrokerError, OSError) as exc:
        BROKER.failed(exc, what_now)
        return False
    return True
