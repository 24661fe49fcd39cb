"""BM25 over one user's memories, for the `hybrid` strategy: over each whole memory (title,
overview and transcript) and over its exchanges (every two consecutive turns of the transcript, so
a memory also scores as its best exchange: the query's words close together). The commonest English
function words and question words are left out (`memories.text.SEARCH_STOP_WORDS`).

The index of a user is built on demand and kept in the process; before each use it is checked
against the database (count, newest indexing time and id sum of the user's searchable memories).
When a memory was indexed, reprocessed or deleted by any process since, each process applies that
change to its copy (`Bm25Corpus.changed`: only the changed memories are read and tokenized), rather
than build it again from all of the user's memories.
"""

import functools
import logging
import re
import threading
from collections import Counter
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


class Bm25Corpus:
    """BM25 over documents that come and go, each of an owner (a memory), which scores as its best
    document. bm25s's formula and defaults (its `lucene` variant, k1 1.5, b 0.75), so the scores
    are those of a bm25s index of the same documents; but they are computed at query time from term
    frequencies, where bm25s precomputes every score (which is why any change meant a rebuild).

    A corpus is never changed: `changed` returns a new one that shares the rest. The documents of
    the last compaction are one sparse matrix (documents x terms, by term), in the order of their
    owners; those added since, a small one of their own; removed ones are masked until the next
    compaction (when the added and removed pass a share of the whole). The vocabulary only grows
    (shared; additions under `_lock`).
    """

    K1, B = 1.5, 0.75
    COMPACT_SHARE = 0.125  # added + removed documents over this share of the whole: one matrix again
    COMPACT_MIN = 512

    def __init__(self, vocab: dict, base, pending: list, owners: np.ndarray, lengths: np.ndarray, alive: np.ndarray):
        self.vocab = vocab  # term -> column
        self.base = base  # csc_matrix (documents x terms) of the first base.shape[0] slots, by owner
        self.pending = pending  # the token ids (np.int64) of each later slot
        self.extra = _postings(pending, len(vocab))  # the later slots, by term
        self.owners, self.lengths, self.alive = owners, lengths, alive  # per slot
        self.live = int(alive.sum())
        average = float(lengths[alive].sum()) / self.live if self.live else 1.0
        norm = (self.K1 * (1 - self.B + self.B * lengths / max(average, 1e-9))).astype(np.float32)
        # Each posting's term-frequency part, tf / (tf + norm): depends on the average length, so it
        # is computed for each corpus (one pass over the postings); a query adds the idf.
        self.parts = [m.data / (m.data + norm[m.indices + shift]) for m, shift in self._matrices()]
        self.dead = not alive.all()

    @classmethod
    def build(cls, owners: list[int], documents: list[list[str]], vocab: dict | None = None) -> "Bm25Corpus":
        """Of documents in the order of their owners."""
        vocab = {} if vocab is None else vocab
        ids = [_ids(vocab, tokens) for tokens in documents]
        return cls(
            vocab,
            _postings(ids, len(vocab)),
            [],
            np.asarray(owners, dtype=np.int64),
            np.array([len(tokens) for tokens in documents], dtype=np.float64),
            np.ones(len(documents), dtype=bool),
        )

    def changed(self, *, removed: set[int], owners: list[int], documents: list[list[str]]) -> "Bm25Corpus":
        """This corpus without the documents of the `removed` owners, with `documents` (of `owners`)."""
        alive = self.alive & ~np.isin(self.owners, list(removed))
        ids = [_ids(self.vocab, tokens) for tokens in documents]
        owners = np.concatenate([self.owners, np.asarray(owners, dtype=np.int64)])
        lengths = np.concatenate([self.lengths, [len(tokens) for tokens in documents]])
        alive = np.concatenate([alive, np.ones(len(documents), dtype=bool)])
        pending = self.pending + ids
        if len(pending) + int((~alive).sum()) <= max(self.COMPACT_MIN, self.COMPACT_SHARE * len(owners)):
            return Bm25Corpus(self.vocab, self.base, pending, owners, lengths, alive)
        keep = np.flatnonzero(alive)
        keep = keep[np.argsort(owners[keep], kind="stable")]
        every = _sparse().vstack(
            [_widen(self.base, len(self.vocab)), _postings(pending, len(self.vocab))], format="csr"
        )
        return Bm25Corpus(self.vocab, every[keep].tocsc(), [], owners[keep], lengths[keep], np.ones(len(keep), bool))

    def _matrices(self):
        return ((self.base, 0), (self.extra, self.base.shape[0]))

    def best(self, tokens: list[str], memory_ids: np.ndarray) -> np.ndarray:
        """Each of `memory_ids` (ascending; every owner of a live document is one) scored by its
        best document for `tokens` (a term given twice counts twice, as in bm25s); 0 for none."""
        out = np.zeros(len(memory_ids))
        terms = Counter(self.vocab[token] for token in tokens if token in self.vocab)
        if not terms:
            return out
        total = np.zeros(len(self.owners), dtype=np.float32)
        for term, count in terms.items():
            slots, parts = [], []
            for (matrix, shift), part in zip(self._matrices(), self.parts):
                if term < matrix.shape[1] and matrix.indptr[term + 1] > matrix.indptr[term]:
                    start, end = matrix.indptr[term], matrix.indptr[term + 1]
                    slots.append(matrix.indices[start:end] + shift if shift else matrix.indices[start:end])
                    parts.append(part[start:end])
            if not slots:
                continue
            slot, part = (slots[0], parts[0]) if len(slots) == 1 else (np.concatenate(slots), np.concatenate(parts))
            if self.dead:
                live = self.alive[slot]
                slot, part = slot[live], part[live]
            if len(slot):
                idf = np.float32(count * np.log(1 + (self.live - len(slot) + 0.5) / (len(slot) + 0.5)))
                total[slot] += idf * part
        hit = np.flatnonzero(total)
        owners, values, base = self.owners[hit], total[hit], hit < self.base.shape[0]
        if base.any():  # the base is in the order of owners: the best of each owner's run of hits
            runs, scores = owners[base], values[base]
            first = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
            out[np.searchsorted(memory_ids, runs[first])] = np.maximum.reduceat(scores, first)
        np.maximum.at(out, np.searchsorted(memory_ids, owners[~base]), values[~base])
        return out


def _ids(vocab: dict, tokens: list[str]) -> np.ndarray:
    return np.array([vocab.setdefault(token, len(vocab)) for token in tokens], dtype=np.int64)


def _postings(documents: list[np.ndarray], terms: int):
    """Documents' token ids as a sparse matrix of term frequencies (documents x terms, by term)."""
    rows = np.repeat(np.arange(len(documents)), [len(ids) for ids in documents])
    columns = np.concatenate(documents) if documents else np.zeros(0, dtype=np.int64)
    ones = np.ones(len(columns), dtype=np.float32)
    return _sparse().coo_matrix((ones, (rows, columns)), shape=(len(documents), terms)).tocsc()  # duplicates summed


def _widen(matrix, terms: int):
    matrix = _sparse().csc_matrix(matrix)
    matrix.resize((matrix.shape[0], terms))
    return matrix


@dataclass
class LexicalIndex:
    version: tuple
    memory_ids: np.ndarray  # ascending
    indexed_at: dict  # memory id -> when it was indexed: what a change of the user is compared with
    created_at: np.ndarray  # epoch seconds
    categories: np.ndarray
    sources: np.ndarray
    months: np.ndarray  # 1 to 12, of created_at (UTC)
    texts: Bm25Corpus  # each memory's whole text (title, overview, transcript)
    exchanges: Bm25Corpus  # its exchanges (each memory has at least one)

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
        signals["lexical"] = self.texts.best(tokens, self.memory_ids)
        signals["exchanges"] = self.exchanges.best(tokens, self.memory_ids)
        return self.memory_ids[keep], {name: values[keep] for name, values in signals.items()}


_cache: LRUCache = LRUCache(CACHED_USERS)  # uid -> LexicalIndex
_lock = threading.Lock()


def lexical_index(uid: str) -> LexicalIndex:
    """The user's index: this process's copy when the user's searchable memories have not changed
    (count, newest indexing time, id sum); else that copy with the memories indexed, reprocessed or
    deleted since applied (only those are read and tokenized); built whole when the process has none."""
    memories = Memory.objects.filter(uid=uid, searchable=True)
    stats = memories.aggregate(n=Count("id"), last=Max("indexed_at"), ids=Sum("id"))
    version = (stats["n"], stats["last"], stats["ids"])
    with _lock:
        cached = _cache.get(uid)  # a hit becomes the most recently used
    if cached is not None and cached.version == version:
        return cached
    listed = dict(memories.values_list("id", "indexed_at"))
    known = {} if cached is None else cached.indexed_at
    removed = {memory_id for memory_id, at in known.items() if listed.get(memory_id, not at) != at}
    rows = list(
        Memory.objects.filter(id__in=[memory_id for memory_id, at in listed.items() if known.get(memory_id) != at])
        .order_by("id")
        .values_list("id", "created_at", "category", "source", "title", "overview", "transcript")
    )
    texts, owners, exchanges = [], [], []
    for row, (text, pieces) in zip(rows, _memory_tokens([(r[4], r[5], r[6]) for r in rows])):
        texts.append(text)
        owners += [row[0]] * len(pieces)
        exchanges += pieces
    with _lock:  # one change at a time: the vocabulary is shared
        if cached is None:
            text_corpus = Bm25Corpus.build([r[0] for r in rows], texts)
            exchange_corpus = Bm25Corpus.build(owners, exchanges, text_corpus.vocab)
        else:
            text_corpus = cached.texts.changed(removed=removed, owners=[r[0] for r in rows], documents=texts)
            exchange_corpus = cached.exchanges.changed(removed=removed, owners=owners, documents=exchanges)
    columns = {} if cached is None else _columns(cached, removed)
    columns.update({r[0]: (r[1].timestamp(), r[2], r[3], r[1].astimezone(UTC).month) for r in rows})
    ids = sorted(columns)
    index = LexicalIndex(
        version=version,
        memory_ids=np.array(ids, dtype=np.int64),
        indexed_at={memory_id: listed[memory_id] for memory_id in ids},
        created_at=np.array([columns[m][0] for m in ids], dtype=np.float64),
        categories=np.array([columns[m][1] for m in ids], dtype=object),
        sources=np.array([columns[m][2] for m in ids], dtype=object),
        months=np.array([columns[m][3] for m in ids], dtype=np.int64),
        texts=text_corpus,
        exchanges=exchange_corpus,
    )
    with _lock:
        _cache[uid] = index
    return index


def _columns(index: LexicalIndex, removed: set[int]) -> dict[int, tuple]:
    """memory id -> (created_at, category, source, month) of the memories an index has, but `removed`."""
    rows = zip(
        index.memory_ids.tolist(),
        index.created_at.tolist(),
        index.categories.tolist(),
        index.sources.tolist(),
        index.months.tolist(),
    )
    return {row[0]: row[1:] for row in rows if row[0] not in removed}


def _exchanges(transcript: str) -> list[str]:
    """Every EXCHANGE_TURNS consecutive turns (at least one text, perhaps empty)."""
    turns = split_turns(transcript)
    return ["\n".join(turns[i : i + EXCHANGE_TURNS]) for i in range(max(len(turns) - EXCHANGE_TURNS + 1, 1))]


def _memory_tokens(memories: list[tuple[str, str, str]]) -> list[tuple[list[str], list[list[str]]]]:
    """For each (title, overview, transcript): the tokens of its whole text (title, overview and
    transcript) and of each of its exchanges (`_exchanges`). Each turn is tokenized once: a word
    never spans two lines, so a text's tokens are those of its lines one after the other."""
    flat, spans = [], []
    for title, overview, transcript in memories:
        turns = split_turns(transcript)
        spans.append((len(flat), len(turns)))
        flat += [title, overview, *turns]
    tokens = _tokenize(flat)
    out = []
    for start, count in spans:
        turns = tokens[start + 2 : start + 2 + count]
        text = tokens[start] + tokens[start + 1] + [token for turn in turns for token in turn]
        pieces = [
            [token for turn in turns[i : i + EXCHANGE_TURNS] for token in turn]
            for i in range(max(count - EXCHANGE_TURNS + 1, 1))
        ]
        out.append((text, pieces))
    return out


@functools.cache
def _sparse():
    from scipy import sparse

    return sparse


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
