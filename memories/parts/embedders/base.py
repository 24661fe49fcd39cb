import hashlib
import threading
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

from omi_memory.errors import BackendError
from omi_memory.metrics import EMBEDDING_CACHE

from .cache import get_embedding_cache


@dataclass
class LateChunks:
    """A transcript's windows and snippets (their texts) with vectors pooled from the token
    states of the model window that holds them; `whole`, every token's states pooled (the
    transcript's own vector, zeros for an empty one)."""

    windows: list[str]
    window_vectors: np.ndarray
    snippets: list[str]
    snippet_vectors: np.ndarray
    whole: np.ndarray


class Embedder:
    """Turns texts into unit-length float32 vectors of `dim` dimensions.

    Subclasses implement `_embed` (and `count_tokens`); callers use `embed_documents` and
    `embed_query`, which check what came back and look in two caches first, both keyed by model,
    dimension and text, both safe to lose: the last few thousand vectors of this process (so a
    text embedded by the extractor, then by the pipeline, costs once) and Redis, when configured
    (shared by every process; see `cache.py`).
    """

    name = "base"
    model = ""
    dim = 0
    max_tokens = 0
    late_chunking = False  # whether `embed_late` can pool token states (a model that runs here)
    cache_size = 4096
    _caches: dict[str, LRUCache] = {}  # by model and dimension
    _cache_lock = threading.Lock()

    @property
    def _cache(self) -> LRUCache:
        key = f"{self.model}:{self.dim}"
        if key not in self._caches:
            self._caches[key] = LRUCache(self.cache_size)
        return self._caches[key]

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_late(self, transcript: str) -> LateChunks:
        """The transcript read once by the model, in windows of whole turns; its CHUNK_TOKENS
        windows and SNIPPET_TOKENS snippets pooled from their tokens' states (late chunking)."""
        raise NotImplementedError

    def warm_up(self) -> None:
        """Load what the first call would load (a model), so that no request pays for it."""

    def loaded(self) -> bool | None:
        """Whether the model this process runs is loaded (readiness); None: it runs none."""
        return None

    def count_tokens(self, text: str) -> int:
        raise NotImplementedError

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        return [self.count_tokens(text) for text in texts]

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        keys = [self._key(text) for text in texts]
        found: dict[str, np.ndarray] = {}
        with self._cache_lock:
            cache = self._cache
            for key in keys:
                vector = cache.get(key)  # a hit becomes the most recently used
                if vector is not None:
                    found[key] = vector
        missing = {key: text for key, text in zip(keys, texts) if key not in found}
        _count_lookups("process", len(keys) - len(missing), len(missing))
        shared = get_embedding_cache()
        if shared is not None and missing:
            redis_keys = {key: shared.key(self.model, self.dim, key) for key in missing}
            hits = shared.get_many(list(redis_keys.values()), self.dim)
            from_redis = {key: hits[rk] for key, rk in redis_keys.items() if rk in hits}
            self._remember(from_redis)
            found.update(from_redis)
            _count_lookups("redis", len(from_redis), len(missing) - len(from_redis))
            missing = {key: text for key, text in missing.items() if key not in from_redis}
        if missing:
            vectors = self._check(self._embed(list(missing.values())), len(missing))
            fresh = dict(zip(missing, vectors))
            self._remember(fresh)
            found.update(fresh)
            if shared is not None:
                shared.set_many({shared.key(self.model, self.dim, key): v for key, v in fresh.items()})
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[key] for key in keys])

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def _remember(self, vectors: dict[str, np.ndarray]) -> None:
        with self._cache_lock:
            self._cache.update(vectors)

    def clear_cache(self) -> None:
        """Forget this process's cached vectors (Redis keeps its own)."""
        with self._cache_lock:
            self._cache.clear()

    def _key(self, text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def _check(self, vectors, expected: int) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (expected, self.dim):
            raise BackendError(
                f"{self.name} embedder returned shape {vectors.shape}, expected ({expected}, {self.dim})"
            )
        if not np.isfinite(vectors).all():
            raise BackendError(f"{self.name} embedder returned non-finite values")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if (norms == 0).any():
            raise BackendError(f"{self.name} embedder returned a zero vector")
        return vectors / norms


def _count_lookups(cache: str, hits: int, misses: int) -> None:
    if hits:
        EMBEDDING_CACHE.labels(cache, "hit").inc(hits)
    if misses:
        EMBEDDING_CACHE.labels(cache, "miss").inc(misses)
