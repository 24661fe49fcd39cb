"""Embeddings cached in Redis: shared by every process, keyed by model, dimension and text hash.

The cache is an optimisation, never a dependency: when Redis cannot be reached, work goes on
uncached, the log says so (once a minute at most), and Redis is not tried again for a while.
"""

import logging
import threading
import time

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
WARN_EVERY_SECONDS = 60


class EmbeddingCache:
    def __init__(self, url: str, ttl: int):
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._errors = (redis.RedisError, OSError)
        self.ttl = ttl
        self._down_until = 0.0
        self._warned_at = 0.0
        self._lock = threading.Lock()

    @staticmethod
    def key(model: str, dim: int, text_hash: str) -> str:
        return f"omi:emb:{model}:{dim}:{text_hash}"

    def get_many(self, keys: list[str], dim: int) -> dict[str, np.ndarray]:
        if not keys or self._is_down():
            return {}
        try:
            values = self._redis.mget(keys)
        except self._errors as exc:
            self._went_down(exc)
            return {}
        return {
            key: np.frombuffer(value, dtype="<f4")
            for key, value in zip(keys, values)
            if value is not None and len(value) == dim * 4
        }

    def set_many(self, items: dict[str, np.ndarray]) -> None:
        if not items or self._is_down():
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key, vector in items.items():
                pipe.set(key, np.asarray(vector, dtype="<f4").tobytes(), ex=self.ttl)
            pipe.execute()
        except self._errors as exc:
            self._went_down(exc)

    def _is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _went_down(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._down_until = now + RETRY_AFTER_SECONDS
            if now - self._warned_at >= WARN_EVERY_SECONDS or not self._warned_at:
                self._warned_at = now
                logger.warning(
                    "embedding cache unavailable (%s): embedding without it, retrying Redis in %ss",
                    exc,
                    RETRY_AFTER_SECONDS,
                )


_cache: EmbeddingCache | None = None
_cache_url: str | None = None
_cache_lock = threading.Lock()


def get_embedding_cache() -> EmbeddingCache | None:
    """The process's cache, or None when no Redis is configured."""
    global _cache, _cache_url
    url = settings.EMBEDDING_CACHE_URL
    if not url:
        return None
    with _cache_lock:
        if _cache is None or _cache_url != url:
            _cache, _cache_url = EmbeddingCache(url, settings.EMBEDDING_CACHE_TTL), url
        return _cache
