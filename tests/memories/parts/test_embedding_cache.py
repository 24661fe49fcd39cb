"""Embeddings cached in the process (the most recently used few thousand) and in Redis (shared
between processes), keyed by model, dimension and text."""

import logging

import numpy as np
import pytest

from memories.parts.embedders import Embedder, configured_embedder
from memories.parts.embedders.cache import get_embedding_cache
from tests.support.parts import CountingEmbedder
from tests.support.processes import redis_url_or_skip


@pytest.fixture
def counting(settings):
    settings.EMBEDDER = "tests.support.parts.CountingEmbedder"
    return configured_embedder()


def forget_this_process():
    Embedder._caches.clear()  # as if another process asked


def test_a_text_embedded_once_comes_from_redis_afterwards(settings, counting):
    settings.EMBEDDING_CACHE_URL = redis_url_or_skip()
    texts = ["the dentist said the crown is cracked", "we should cut back on takeout"]
    first = counting.embed_documents(texts)
    embedded = CountingEmbedder.embedded

    forget_this_process()
    again = counting.embed_documents(texts + ["a new text"])

    assert CountingEmbedder.embedded == embedded + 1  # only the new text
    assert np.array_equal(again[:2], first)
    cache = get_embedding_cache()
    key = cache.key(counting.model, counting.dim, counting._key(texts[0]))
    assert 0 < cache._redis.ttl(key) <= settings.EMBEDDING_CACHE_TTL


def test_queries_are_cached_too(settings, counting):
    settings.EMBEDDING_CACHE_URL = redis_url_or_skip()
    counting.embed_query("when is the recital")
    embedded = CountingEmbedder.embedded

    forget_this_process()
    counting.embed_query("when is the recital")

    assert CountingEmbedder.embedded == embedded


def test_another_model_or_dimension_never_reads_these_vectors(settings, counting):
    settings.EMBEDDING_CACHE_URL = redis_url_or_skip()
    cache = get_embedding_cache()

    assert cache.key("all-MiniLM-L6-v2", 384, "abc") != cache.key("text-embedding-3-large", 3072, "abc")
    assert cache.key("text-embedding-3-large", 256, "abc") != cache.key("text-embedding-3-large", 3072, "abc")


def test_with_redis_down_work_goes_on_uncached_and_the_log_says_so(settings, counting, caplog):
    settings.EMBEDDING_CACHE_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    with caplog.at_level(logging.WARNING, logger="memories.parts.embedders.cache"):
        vectors = counting.embed_documents(["the budget meeting", "the recital"])
        forget_this_process()
        counting.embed_documents(["the budget meeting"])

    assert vectors.shape == (2, 384)
    assert CountingEmbedder.embedded >= 3
    warnings = [r for r in caplog.records if "embedding cache unavailable" in r.getMessage()]
    assert len(warnings) == 1  # said once, not on every call


class Lengths(Embedder):
    """A two-dimensional embedder that records what it really embeds (cache misses)."""

    name = model = "lengths"
    dim = 2
    cache_size = 2

    def __init__(self):
        self.embedded = []

    def _embed(self, texts):
        self.embedded += texts
        return np.array([[1.0, len(text)] for text in texts])


def test_the_process_keeps_the_most_recently_used_vectors_only(settings):
    settings.EMBEDDING_CACHE_URL = ""
    embedder = Lengths()
    for text in ("a", "bb", "a", "ccc"):  # a, then bb, then a again: bb is the least recently used
        embedder.embed_query(text)  # ccc: only two fit, bb goes
    assert embedder.embedded == ["a", "bb", "ccc"]

    embedder.embed_documents(["a", "ccc", "bb"])

    assert embedder.embedded == ["a", "bb", "ccc", "bb"]
