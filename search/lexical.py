"""BM25 over one user's memories, for the `hybrid` strategy: over each whole memory (title,
overview and transcript) and over its exchanges (every two consecutive turns of the transcript, so
a memory also scores as its best exchange: the query's words close together). The commonest English
function words and question words are left out (`memories.text.SEARCH_STOP_WORDS`).

The index of a user is built on demand and kept in the process; before each use it is checked
against the database (count, newest indexing time and id sum of the user's searchable memories), so
a memory indexed, reprocessed or deleted by any process makes every process rebuild it.
"""

import functools
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC

import numpy as np
from cachetools import LRUCache
from django.db.models import Count, Max, Sum

from memories.models import Memory
from memories.parts.vectorstores import SearchFilters
from memories.text import SEARCH_STOP_WORDS, split_turns

CACHED_USERS = 2048
EXCHANGE_TURNS = 2
MONTHS = ("January February March April May June July August September October November December").split()
MONTH_NAMES = re.compile(r"\b(" + "|".join(MONTHS) + r")\b")
TOKEN = re.compile(r"(?u)\b\w\w+\b")  # a word to BM25 (bm25s's pattern, given it explicitly)


@dataclass
class LexicalIndex:
    version: tuple
    memory_ids: np.ndarray
    created_at: np.ndarray  # epoch seconds
    categories: np.ndarray
    sources: np.ndarray
    months: np.ndarray  # 1 to 12, of created_at (UTC)
    retriever: object | None  # bm25s.BM25 over the memories, or None: no memories, or not one word in them
    exchanges: object | None  # bm25s.BM25 over their exchanges (or None, likewise)
    exchange_starts: np.ndarray  # each memory's first exchange (every memory has at least one)

    def scores(self, query: str, filters: SearchFilters) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The memories that pass the filters: (their ids, {signal: their scores}). The signals are
        `lexical` (BM25 of the whole memory), `exchanges` (BM25 of its best exchange) and `month`
        (1 for a memory created in a month the query names, such as "in May", else 0)."""
        keep = np.ones(len(self.memory_ids), dtype=bool)
        if filters.starts_at:
            keep &= self.created_at >= filters.starts_at.timestamp()
        if filters.ends_at:
            keep &= self.created_at <= filters.ends_at.timestamp()
        if filters.categories:
            keep &= np.isin(self.categories, filters.categories)
        if filters.sources:
            keep &= np.isin(self.sources, filters.sources)
        named = [MONTHS.index(name) + 1 for name in MONTH_NAMES.findall(query)]
        signals = {"month": np.isin(self.months, named).astype(np.float64)}
        tokens = _tokenize([query])[0]
        signals["lexical"] = signals["exchanges"] = np.zeros(len(self.memory_ids))
        if self.retriever is not None and tokens:
            signals["lexical"] = np.asarray(self.retriever.get_scores(tokens), dtype=np.float64)
        if self.exchanges is not None and tokens:
            exchanges = np.asarray(self.exchanges.get_scores(tokens), dtype=np.float64)
            signals["exchanges"] = np.maximum.reduceat(exchanges, self.exchange_starts)
        return self.memory_ids[keep], {name: values[keep] for name, values in signals.items()}


_cache: LRUCache = LRUCache(CACHED_USERS)  # uid -> LexicalIndex
_lock = threading.Lock()


def lexical_index(uid: str) -> LexicalIndex:
    memories = Memory.objects.filter(uid=uid, searchable=True)
    stats = memories.aggregate(n=Count("id"), last=Max("indexed_at"), ids=Sum("id"))
    version = (stats["n"], stats["last"], stats["ids"])
    with _lock:
        cached = _cache.get(uid)  # a hit becomes the most recently used
        if cached is not None and cached.version == version:
            return cached
    rows = list(
        memories.order_by("id").values_list("id", "created_at", "category", "source", "title", "overview", "transcript")
    )
    retriever = exchanges = None
    starts = []
    if rows:
        retriever = _bm25(_tokenize([f"{r[4]}\n{r[5]}\n{r[6]}" for r in rows]))
        texts = []
        for row in rows:
            starts.append(len(texts))
            texts.extend(_exchanges(row[6]))
        exchanges = _bm25(_tokenize(texts))
    index = LexicalIndex(
        version=version,
        memory_ids=np.array([r[0] for r in rows], dtype=np.int64),
        created_at=np.array([r[1].timestamp() for r in rows], dtype=np.float64),
        categories=np.array([r[2] for r in rows], dtype=object),
        sources=np.array([r[3] for r in rows], dtype=object),
        months=np.array([r[1].astimezone(UTC).month for r in rows], dtype=np.int64),
        retriever=retriever,
        exchanges=exchanges,
        exchange_starts=np.array(starts, dtype=np.int64),
    )
    with _lock:
        _cache[uid] = index
    return index


def _bm25(corpus: list[list[str]]):
    """A BM25 index of tokenized texts, or None when there is not one word in them (a transcript
    of numbers and stop words: bm25s cannot index an empty vocabulary)."""
    if not any(corpus):
        return None
    index = _bm25s().BM25()
    index.index(corpus, show_progress=False)
    return index


def _exchanges(transcript: str) -> list[str]:
    """Every EXCHANGE_TURNS consecutive turns (at least one text, perhaps empty)."""
    turns = split_turns(transcript)
    return ["\n".join(turns[i : i + EXCHANGE_TURNS]) for i in range(max(len(turns) - EXCHANGE_TURNS + 1, 1))]


@functools.cache
def _bm25s():
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import: a line per index built
    return bm25s


def _tokenize(texts: list[str]) -> list[list[str]]:
    return _bm25s().tokenize(
        texts,
        token_pattern=TOKEN.pattern,
        stopwords=sorted(SEARCH_STOP_WORDS),
        stemmer=_stemmer(),
        return_ids=False,
        show_progress=False,
    )


def query_terms(query: str) -> frozenset[str]:
    """The terms BM25 looks for: the query's words, lowercased, stop words out, stemmed."""
    return frozenset(_tokenize([query])[0])


def matched_spans(text: str, terms: frozenset[str]) -> list[tuple[int, int]]:
    """(start, end) of each word of `text` that BM25 matches to one of `terms` (see `query_terms`):
    "Crowns" matches the query "crown", "the" nothing."""
    if not terms:
        return []
    stemmer = _stemmer()
    spans = []
    for match in TOKEN.finditer(text):
        word = match.group().lower()
        if word not in SEARCH_STOP_WORDS and stemmer.stemWord(word) in terms:
            spans.append(match.span())
    return spans


@functools.cache
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")
