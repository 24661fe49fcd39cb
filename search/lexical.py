"""BM25 over one user's memories (title, overview and transcript), for the `hybrid` strategy.

The index of a user is built on demand and kept in the process; before each use it is checked
against the database (count, newest indexing time and id sum of the user's indexed memories), so
a memory indexed, reprocessed or deleted by any process makes every process rebuild it.
"""

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Max, Sum

from memories.models import Memory
from search.vectorstores import SearchFilters

CACHED_USERS = 2048


@dataclass
class LexicalIndex:
    version: tuple
    memory_ids: np.ndarray
    created_at: np.ndarray  # epoch seconds
    categories: np.ndarray
    sources: np.ndarray
    retriever: object | None  # bm25s.BM25, or None for a user with no memories

    def scores(self, query: str, filters: SearchFilters) -> tuple[np.ndarray, np.ndarray]:
        """(memory ids, BM25 scores) of the memories that pass the filters."""
        keep = np.ones(len(self.memory_ids), dtype=bool)
        if filters.starts_at:
            keep &= self.created_at >= filters.starts_at.timestamp()
        if filters.ends_at:
            keep &= self.created_at <= filters.ends_at.timestamp()
        if filters.categories:
            keep &= np.isin(self.categories, filters.categories)
        if filters.sources:
            keep &= np.isin(self.sources, filters.sources)
        if self.retriever is None:
            return self.memory_ids[keep], np.zeros(int(keep.sum()))
        tokens = _tokenize([query])[0]
        scores = self.retriever.get_scores(tokens) if tokens else np.zeros(len(self.memory_ids))
        return self.memory_ids[keep], np.asarray(scores, dtype=np.float64)[keep]


_cache: OrderedDict[str, LexicalIndex] = OrderedDict()
_lock = threading.Lock()


def lexical_index(uid: str) -> LexicalIndex:
    memories = Memory.objects.filter(uid=uid, status=Memory.Status.INDEXED)
    stats = memories.aggregate(n=Count("id"), last=Max("indexed_at"), ids=Sum("id"))
    version = (stats["n"], stats["last"], stats["ids"])
    with _lock:
        cached = _cache.get(uid)
        if cached is not None and cached.version == version:
            _cache.move_to_end(uid)
            return cached
    rows = list(memories.order_by("id").values_list("id", "created_at", "category", "source", "title", "overview",
                                                     "transcript"))
    retriever = None
    if rows:
        import bm25s

        retriever = bm25s.BM25()
        retriever.index(_tokenize([f"{r[4]}\n{r[5]}\n{r[6]}" for r in rows]), show_progress=False)
    index = LexicalIndex(
        version=version,
        memory_ids=np.array([r[0] for r in rows], dtype=np.int64),
        created_at=np.array([r[1].timestamp() for r in rows], dtype=np.float64),
        categories=np.array([r[2] for r in rows], dtype=object),
        sources=np.array([r[3] for r in rows], dtype=object),
        retriever=retriever,
    )
    with _lock:
        _cache[uid] = index
        while len(_cache) > CACHED_USERS:
            _cache.popitem(last=False)
    return index


def _tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False)


@functools.cache
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")
