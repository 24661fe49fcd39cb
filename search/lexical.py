"""BM25 over one user's memories, for the `hybrid` strategy: over each whole memory (title,
overview and transcript) and over its exchanges (every two consecutive turns of the transcript, so
a memory also scores as its best exchange: the query's words close together). The commonest English
function words and question words are left out (`memories.text.SEARCH_STOP_WORDS`).

The index of a user is kept in the process; before each use it is checked against the database
(count, newest indexing time and id sum of the user's searchable memories). When a memory was
indexed, reprocessed or deleted by any process since, each process applies that change to its copy
(`Bm25Corpus.changed`: only the changed memories are read and tokenized), rather than build it again
from all of the user's memories.

A process without a copy loads the user's snapshot (`LexicalSnapshot`: one row per user, shared by
every process and host) and applies the changes made since it was saved in the same way; it builds
the index from every memory only when there is no snapshot it can read (none, another format or
tokenizer, corrupt: never an error to the user). A process saves a snapshot once it has read more
than SNAPSHOT_LAG memories since its copy was built, loaded or saved (a build reads them all), in a
thread of its own (`SnapshotWriter`: never in the search); the row is replaced only by a snapshot of
a later state. So a process without a copy reads at most about SNAPSHOT_LAG memories more than the
snapshot (unless no process applied the changes since), where it read all of them before.
"""

import atexit
import functools
import hashlib
import io
import json
import logging
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version as package_version

import numpy as np
from cachetools import LRUCache
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import CharField, Count, Max, Q, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from memories.models import Memory
from memories.parts.vectorstores import SearchFilters
from memories.text import SEARCH_STOP_WORDS, split_turns

from .models import LexicalSnapshot

logger = logging.getLogger(__name__)
CACHED_USERS = 2048
EXCHANGE_TURNS = 2
MONTHS = ("January February March April May June July August September October November December").split()
MONTH_NAMES = re.compile(r"\b(" + "|".join(MONTHS) + r")\b")
TOKEN = re.compile(r"(?u)\b\w\w+\b")  # a word to BM25 (bm25s's pattern, given it explicitly)
STEMMER = "english"
SNAPSHOT_FORMAT = 1
SNAPSHOT_LAG = 64  # more memories read and tokenized since the copy was built, loaded or saved: saved
EXIT_WAIT = 30.0  # seconds a process that ends waits for the snapshots it has still to save


class Bm25Corpus:
    """BM25 over documents that come and go, each of an owner (a memory), which scores as its best
    document. bm25s's formula and defaults (its `lucene` variant, k1 1.5, b 0.75), so the scores
    are those of a bm25s index of the same documents; but they are computed at query time from each
    posting's term-frequency part (computed at a term's first query in the corpus, then kept), where
    bm25s precomputes every score (which is why any change meant a rebuild).

    A corpus is never changed: `changed` returns a new one that shares the rest. The documents of
    the last compaction are one sparse matrix (documents x terms, by term), in the order of their
    owners; those added since, a small one of their own; removed ones stay, their parts zero (they
    never score, nor count as holding a term), until the next compaction (when the added and
    removed pass a share of the whole). The vocabulary only grows (shared; additions under `_lock`).
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
        self._terms: dict[int, list] = {}  # term -> its postings (`_postings_of`), once queried
        self._placed: tuple | None = None  # (memory ids, where each slot's score goes in them)

    @functools.cached_property
    def _norm(self) -> np.ndarray:
        """Each slot's k1 (1 - b + b length / average length); inf for a removed one."""
        average = float(self.lengths[self.alive].sum()) / self.live if self.live else 1.0
        norm = (self.K1 * (1 - self.B + self.B * self.lengths / max(average, 1e-9))).astype(np.float32)
        norm[~self.alive] = np.inf  # tf / (tf + inf): 0
        return norm

    def _postings_of(self, term: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The term's postings in the base and in the later slots: (slots, each one's term-frequency
        part tf / (tf + norm), 0 for a removed document). The parts depend on the average length, so
        each corpus computes them, for a term at its first query (a corpus loaded or changed pays
        nothing for the terms no query asks); a query adds the idf."""
        postings = self._terms.get(term)
        if postings is None:
            postings = []
            for matrix, shift in self._matrices():
                if term < matrix.shape[1]:
                    start, end = matrix.indptr[term], matrix.indptr[term + 1]
                    slots, tf = matrix.indices[start:end], matrix.data[start:end]
                    slots = slots + shift if shift else slots
                    postings.append((slots, tf / (tf + self._norm[slots])))
            self._terms[term] = postings
        return postings

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
        return Bm25Corpus(self.vocab, *_compact(self.base, pending, owners, lengths, alive, len(self.vocab)))

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
            postings = self._postings_of(term)
            found = sum(np.count_nonzero(part) for _, part in postings)  # the live documents with the term
            if found:
                idf = np.float32(count * np.log(1 + (self.live - found + 0.5) / (found + 0.5)))
                for slots, part in postings:
                    np.add.at(total, slots, idf * part)
        heads, places, present, later_places, later_present = self._placement(memory_ids)
        size = self.base.shape[0]
        # The base is in the order of owners: the best of each owner's run of slots (a run of one
        # slot each, as in the whole texts, is its own best).
        best = total[:size] if len(heads) == size else np.maximum.reduceat(total[:size], heads)
        out[places] = best[present]
        np.maximum.at(out, later_places, total[size:][later_present])
        return out

    def _placement(self, memory_ids: np.ndarray) -> tuple:
        """Where the scores go in `memory_ids`, kept for the last memory ids asked: the first slot
        of each run of one owner in the base, each run's place in `memory_ids` and whether its
        owner is there (a removed memory is not); each later slot's place and whether it is there."""
        placed = self._placed
        if placed is None or placed[0] is not memory_ids:
            size = self.base.shape[0]
            base = self.owners[:size]
            heads = np.flatnonzero(np.r_[True, base[1:] != base[:-1]][:size])
            placed = (
                memory_ids,
                heads,
                *_places(memory_ids, self.owners[heads]),
                *_places(memory_ids, self.owners[size:]),
            )
            self._placed = placed
        return placed[1:]


def _places(memory_ids: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The places in `memory_ids` (ascending) of those `owners` that are in it, and which are."""
    places = np.minimum(np.searchsorted(memory_ids, owners), max(len(memory_ids) - 1, 0))
    present = memory_ids[places] == owners if len(memory_ids) else np.zeros(len(owners), dtype=bool)
    return places[present], present


def _ids(vocab: dict, tokens: list[str]) -> np.ndarray:
    return np.array([vocab.setdefault(token, len(vocab)) for token in tokens], dtype=np.int64)


def _postings(documents: list[np.ndarray], terms: int):
    """Documents' token ids as a sparse matrix of term frequencies (documents x terms, by term)."""
    rows = np.repeat(np.arange(len(documents)), [len(ids) for ids in documents])
    columns = np.concatenate(documents) if documents else np.zeros(0, dtype=np.int64)
    ones = np.ones(len(columns), dtype=np.float32)
    return _sparse().coo_matrix((ones, (rows, columns)), shape=(len(documents), terms)).tocsc()  # duplicates summed


def _compact(base, pending: list, owners: np.ndarray, lengths: np.ndarray, alive: np.ndarray, terms: int) -> tuple:
    """A corpus's live documents as one matrix of `terms` columns, in the order of their owners:
    (matrix, no pending documents, owners, lengths, alive)."""
    if not pending and alive.all():
        return _widen(base, terms), [], owners, lengths, alive
    keep = np.flatnonzero(alive)
    keep = keep[np.argsort(owners[keep], kind="stable")]
    every = _sparse().vstack([_widen(base, terms), _postings(pending, terms)], format="csr")
    return every[keep].tocsc(), [], owners[keep], lengths[keep], np.ones(len(keep), dtype=bool)


def _widen(matrix, terms: int):
    matrix = _sparse().csc_matrix(matrix)
    matrix.resize((matrix.shape[0], terms))
    return matrix


@dataclass
class LexicalIndex:
    version: tuple  # (count, newest indexing time, id sum) of the memories it holds
    listed_at: datetime  # when the memories it holds were listed: the state it holds
    lag: int  # memories read and tokenized since it was built, loaded or saved (SNAPSHOT_LAG)
    memory_ids: np.ndarray  # ascending
    indexed_at: dict  # memory id -> when it was indexed (as text): what a change of the user is compared with
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
    (count, newest indexing time, id sum); else that copy (or, when the process has none, the
    user's snapshot) with the memories indexed, reprocessed or deleted since applied (only those
    are read and tokenized); built from every memory when there is neither."""
    version = _version(uid)
    with _lock:
        cached = _cache.get(uid)  # a hit becomes the most recently used
    if cached is None:
        cached = snapshot_read(uid)
        if cached is not None and cached.version == version:  # nothing changed since it was saved
            with _lock:
                _cache[uid] = cached
            return cached
    elif cached.version == version:
        return cached
    index, save = _caught_up(uid, cached, version)
    with _lock:
        _cache[uid] = index
    if save:
        snapshot_submit(uid, index)
    return index


def _version(uid: str) -> tuple:
    """(count, newest indexing time, id sum) of the user's searchable memories: what changes when
    one is indexed, reprocessed or deleted (an index-only scan of `memory_uid_searchable`)."""
    stats = _searchable(uid).aggregate(n=Count("id"), last=_text(Max("indexed_at")), ids=Sum("id"))
    return (stats["n"], stats["last"], int(stats["ids"] or 0))


def _searchable(uid: str):
    return Memory.objects.filter(uid=uid, searchable=True)


def _caught_up(uid: str, cached: LexicalIndex | None, version: tuple) -> tuple[LexicalIndex, bool]:
    """`cached` (None: nothing) with the memories changed since applied, as of `version`; and
    whether it is to be saved as the user's snapshot (SNAPSHOT_LAG)."""
    listed_at = timezone.now()
    listed = dict(_searchable(uid).values_list("id", _text("indexed_at")))
    known = {} if cached is None else cached.indexed_at
    removed = {memory_id for memory_id, at in known.items() if listed.get(memory_id, not at) != at}
    rows = list(
        Memory.objects.filter(id__in=[memory_id for memory_id, at in listed.items() if known.get(memory_id) != at])
        .order_by("id")
        .values_list("id", "created_at", "category", "source", "title", "overview", "transcript")
    )
    lag = (0 if cached is None else cached.lag) + len(removed | {row[0] for row in rows})
    save = lag > SNAPSHOT_LAG
    state = {"version": version, "listed_at": listed_at, "lag": 0 if save else lag}
    if cached is not None and not lag:  # a snapshot that holds every change
        return replace(cached, **state), save
    return _changed(cached, removed, rows, listed, state), save


def snapshot_users(*, more_than: int = SNAPSHOT_LAG, missing: bool = True) -> dict[str, int]:
    """The users with more than `more_than` searchable memories, and how many; with `missing`,
    only those without a snapshot of this layout."""
    users = Memory.objects.filter(searchable=True).values_list("uid").annotate(n=Count("id")).filter(n__gt=more_than)
    if missing:
        users = users.exclude(uid__in=LexicalSnapshot.objects.filter(layout=snapshot_layout()).values("uid"))
    return dict(users.order_by("uid"))


def snapshot_build(uid: str) -> bool:
    """Build the user's index from every searchable memory and save it as their snapshot, here and
    now (ahead of their first search: a command's); False when nothing was saved (see snapshot_write)."""
    index, _ = _caught_up(uid, None, _version(uid))
    return snapshot_write(uid=uid, index=replace(index, lag=0))


def _changed(
    cached: LexicalIndex | None, removed: set[int], rows: list[tuple], listed: dict, state: dict
) -> LexicalIndex:
    """`cached` (None: nothing) without the `removed` memories, with those of `rows` (read again),
    of `state` (version, listed_at, lag)."""
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
    return LexicalIndex(
        **state,
        memory_ids=np.array(ids, dtype=np.int64),
        indexed_at={memory_id: listed[memory_id] for memory_id in ids},
        created_at=np.array([columns[m][0] for m in ids], dtype=np.float64),
        categories=np.array([columns[m][1] for m in ids], dtype=object),
        sources=np.array([columns[m][2] for m in ids], dtype=object),
        months=np.array([columns[m][3] for m in ids], dtype=np.int64),
        texts=text_corpus,
        exchanges=exchange_corpus,
    )


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


def _text(expression):
    """An indexing time as the database writes it as text (PostgreSQL: in the connection's time
    zone, UTC): compared, never parsed (parsing 20,000 datetimes took most of a catch-up's listing)."""
    return Cast(expression, CharField())


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

    return Stemmer.Stemmer(STEMMER)


# Snapshots: a user's index saved in the database (LexicalSnapshot), for processes without a copy.

_ESCAPE = 255  # a posting's step (see _postings_arrays) under 0 or from this is in `wide`


@functools.cache
def snapshot_layout() -> str:
    """What a snapshot holds besides the memories (its format and the tokenizer that made its
    terms): one of another layout is never read."""
    made_with = [
        SNAPSHOT_FORMAT,
        TOKEN.pattern,
        EXCHANGE_TURNS,
        sorted(SEARCH_STOP_WORDS),
        STEMMER,
        package_version("bm25s"),
        package_version("PyStemmer"),
    ]
    return hashlib.sha256(json.dumps(made_with).encode()).hexdigest()[:32]


def snapshot_encode(uid: str, index: LexicalIndex) -> bytes:
    """`index` as one blob (`np.savez_compressed`, no pickles): the memories' columns; each corpus
    compacted (one matrix by term, the slots in the order of their owners, as a build makes them,
    so that the scores of a snapshot are those of a build); the terms they use (a word only a
    removed memory had is left out)."""
    with _lock:  # the vocabulary may grow meanwhile
        words = list(index.texts.vocab)
    corpora = {
        name: _compact(c.base, c.pending, c.owners, c.lengths, c.alive, len(words))
        for name, c in (("texts", index.texts), ("exchanges", index.exchanges))
    }
    used = np.flatnonzero(np.logical_or(*[np.diff(c[0].indptr) > 0 for c in corpora.values()]))
    meta = {
        "format": SNAPSHOT_FORMAT,
        "uid": uid,
        "version": index.version,
        "indexed_at": [index.indexed_at[memory_id] for memory_id in index.memory_ids.tolist()],
        "vocab": [words[column] for column in used.tolist()],
        "categories": index.categories.tolist(),
        "sources": index.sources.tolist(),
    }
    arrays = {
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        "memory_ids": index.memory_ids,
        "created_at": index.created_at,
        "months": index.months.astype(np.uint8),
    }
    for name, (matrix, _, owners, lengths, _) in corpora.items():
        arrays.update(_postings_arrays(name, matrix[:, used], owners, lengths))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _postings_arrays(name: str, matrix, owners: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """A corpus's matrix (csc) as small arrays: each posting's document as its step from the one
    before (by term, then document: small and positive but where a term's postings start), a byte
    (_ESCAPE: the step is the next of `wide`), and its term frequency in the smallest unsigned type
    that holds them."""
    if not matrix.has_sorted_indices:
        matrix = matrix.sorted_indices()
    steps = np.diff(matrix.indices.astype(np.int64), prepend=0)
    wide = (steps < 0) | (steps >= _ESCAPE)
    return {
        f"{name}_steps": np.where(wide, _ESCAPE, steps).astype(np.uint8),
        f"{name}_wide": steps[wide].astype(np.int32),
        f"{name}_indptr": matrix.indptr.astype(np.int64),
        f"{name}_tf": matrix.data.astype(np.min_scalar_type(int(matrix.data.max(initial=0)))),
        f"{name}_owners": owners,
        f"{name}_lengths": lengths.astype(np.uint32),
    }


def snapshot_decode(uid: str, data, listed_at: datetime) -> LexicalIndex:
    """The index a blob of `snapshot_encode` holds (with the version it was saved at); ValueError (or
    another error) when the blob is not a whole snapshot of `uid` in this format."""
    with np.load(io.BytesIO(data), allow_pickle=False) as blob:
        arrays = {name: blob[name] for name in blob.files}
    meta = json.loads(arrays["meta"].tobytes())
    if meta["format"] != SNAPSHOT_FORMAT or meta["uid"] != uid:
        raise ValueError(f"a snapshot of {meta.get('uid')!r} in format {meta.get('format')}")
    memory_ids = arrays["memory_ids"].astype(np.int64)
    columns = (meta["indexed_at"], arrays["created_at"], arrays["months"], meta["categories"], meta["sources"])
    if any(len(column) != len(memory_ids) for column in columns) or (np.diff(memory_ids) <= 0).any():
        raise ValueError("the memories' columns do not match")
    vocab = {word: column for column, word in enumerate(meta["vocab"])}
    if len(vocab) != len(meta["vocab"]):
        raise ValueError("a word given twice")
    return LexicalIndex(
        version=tuple(meta["version"]),
        listed_at=listed_at,
        lag=0,
        memory_ids=memory_ids,
        indexed_at=dict(zip(memory_ids.tolist(), meta["indexed_at"])),
        created_at=arrays["created_at"].astype(np.float64),
        categories=np.array(meta["categories"], dtype=object),
        sources=np.array(meta["sources"], dtype=object),
        months=arrays["months"].astype(np.int64),
        texts=_corpus(vocab, arrays, "texts", memory_ids),
        exchanges=_corpus(vocab, arrays, "exchanges", memory_ids),
    )


def _corpus(vocab: dict, arrays: dict, name: str, memory_ids: np.ndarray) -> Bm25Corpus:
    """The corpus `_postings_arrays` wrote, checked so that it can score without an error."""
    steps, wide, indptr, tf = (arrays[f"{name}_{part}"] for part in ("steps", "wide", "indptr", "tf"))
    owners, lengths = arrays[f"{name}_owners"].astype(np.int64), arrays[f"{name}_lengths"]
    escaped = steps == _ESCAPE
    if (
        len(indptr) != len(vocab) + 1
        or indptr[0] != 0
        or (np.diff(indptr) < 0).any()
        or not indptr[-1] == len(steps) == len(tf)
        or np.count_nonzero(escaped) != len(wide)
        or len(owners) != len(lengths)
        or (np.diff(owners) < 0).any()
        or not np.isin(owners, memory_ids).all()
    ):
        raise ValueError(f"the {name} corpus does not hold together")
    indices = steps.astype(np.int32)
    indices[escaped] = wide
    indices = np.cumsum(indices, dtype=np.int32)
    if len(indices) and (indices.min() < 0 or indices.max() >= len(owners)):
        raise ValueError(f"the {name} corpus names documents it does not have")
    matrix = _sparse().csc_matrix((tf.astype(np.float32), indices, indptr), shape=(len(owners), len(vocab)))
    return Bm25Corpus(vocab, matrix, [], owners, lengths.astype(np.float64), np.ones(len(owners), dtype=bool))


def snapshot_read(uid: str) -> LexicalIndex | None:
    """The user's snapshot, when there is one of this layout that reads whole; else None (a bad one
    is logged, and replaced when the index built instead is saved)."""
    row = LexicalSnapshot.objects.filter(uid=uid, layout=snapshot_layout()).values_list("listed_at", "data").first()
    if row is None:
        return None
    try:
        return snapshot_decode(uid, row[1], row[0])
    except Exception:  # noqa: BLE001 - whatever is wrong with it, the memories are there to build from
        logger.warning("the BM25 snapshot of %s cannot be read: built from the memories", uid, exc_info=True)
        return None


def snapshot_write(*, uid: str, index: LexicalIndex) -> bool:
    """Save `index` as the user's snapshot, unless the row holds a later state of this layout
    (False). One UPDATE or INSERT: a reader sees the old snapshot or the new one, whole. Nothing is
    saved for a user with no searchable memory left (erased since)."""
    data = snapshot_encode(uid, index)
    if not _searchable(uid).exists():
        return False
    layout = snapshot_layout()
    fields = {
        "layout": layout,
        "listed_at": index.listed_at,
        "memories": len(index.memory_ids),
        "written_at": timezone.now(),
        "data": data,
    }
    older = LexicalSnapshot.objects.filter(Q(listed_at__lt=index.listed_at) | ~Q(layout=layout), uid=uid)
    if older.update(**fields):
        return True
    try:
        with transaction.atomic():
            LexicalSnapshot.objects.create(uid=uid, **fields)
        return True
    except IntegrityError:  # another process saved one meanwhile: ours replaces it only if later
        return bool(older.update(**fields))


def snapshots_forget(sender, memory_ids: list[int], **kwargs) -> None:
    """`memory_deleted`: a user left without a searchable memory (erased) keeps no snapshot either."""
    uids = set(Memory.objects.filter(id__in=memory_ids).values_list("uid", flat=True))
    gone = [uid for uid in uids if not _searchable(uid).exists()]
    LexicalSnapshot.objects.filter(uid__in=gone).delete()


class SnapshotWriter:
    """One thread per process that saves snapshots (started on first use, again after a fork): of
    each user, the latest index submitted, so a burst of changes costs one write."""

    def __init__(self):
        self._pending: dict[str, LexicalIndex] = {}
        self._busy = False
        self._pid = 0
        self._changed = threading.Condition()

    def submit(self, uid: str, index: LexicalIndex) -> None:
        with self._changed:
            if self._pid != os.getpid():
                self._pending, self._busy, self._pid = {}, False, os.getpid()
                threading.Thread(target=self._run, name="lexical-snapshots", daemon=True).start()
            self._pending[uid] = index
            self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Return once every snapshot submitted so far in this process is saved (or failed), or
        after `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending)
                uid, index = self._pending.popitem()
                self._busy = True
            try:
                _save(uid, index)
            finally:
                connection.close()  # idle: no connection held
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()


writer = SnapshotWriter()
atexit.register(writer.flush, EXIT_WAIT)  # a command that built a heavy user's index saves it before it ends


def snapshot_submit(uid: str, index: LexicalIndex) -> None:
    """Have `index` saved as the user's snapshot: by the process's writer thread, after the search
    (LEXICAL_SNAPSHOT_BACKGROUND, the default), or here."""
    if settings.LEXICAL_SNAPSHOT_BACKGROUND:
        writer.submit(uid, index)
    else:
        _save(uid, index)


def _save(uid: str, index: LexicalIndex) -> None:
    """`snapshot_write`, whose failure is only logged (a later save, SNAPSHOT_LAG changed memories
    on, makes up for it)."""
    try:
        snapshot_write(uid=uid, index=index)
    except Exception:  # noqa: BLE001 - a search or the writer thread must go on
        logger.exception("could not save the BM25 snapshot of %s", uid)
