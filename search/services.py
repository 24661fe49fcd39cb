"""Writes and searches over vectors: build a memory's vectors, store them, remove them, search."""

import hashlib
import re
import time
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from memories.models import Memory
from search.chunking import windows
from search.embedders import get_embedder
from search.models import MemoryVector
from search.vectorstores import SearchFilters, VectorRecord, get_vector_store

SNIPPET_CHARS = 300


@dataclass
class BuiltVectors:
    """A memory's vectors, ready to store: position 0 is the memory's own, then its windows."""

    text_hash: str
    model: str
    dim: int
    ids: list[str]
    texts: list[str]
    vectors: np.ndarray
    reused: bool = False


@dataclass
class SearchHit:
    memory: Memory
    score: float
    vector_id: str
    snippet: str = ""


@dataclass
class SearchResult:
    hits: list[SearchHit] = field(default_factory=list)
    took_ms: float = 0.0


def embedding_text(memory: Memory) -> str:
    """Omi's embedding text: the structured fields and the transcript. The summary comes first
    because a model reads only so many tokens: a long transcript's tail is what gets cut."""
    head = "\n".join(part for part in (memory.title, memory.overview, f"Category: {memory.category}") if part)
    return f"{head}\n{memory.transcript}"


def memory_vectors_build(*, memory: Memory) -> BuiltVectors:
    """Embed a memory (its structured fields must be set), unless its text is unchanged since it
    was last indexed: then its stored vectors are used again and nothing is embedded."""
    embedder = get_embedder()
    main = embedding_text(memory)
    parts = windows(memory.transcript, max_tokens=settings.CHUNK_TOKENS, count_tokens=embedder.count_tokens_batch)
    if len(parts) <= 1 and embedder.count_tokens(main) <= embedder.max_tokens:
        parts = []  # the memory's own vector already reads the whole transcript
    texts = [main, *parts]
    digest = hashlib.sha256(f"{embedder.model}|{embedder.dim}".encode())
    for text in texts:
        digest.update(b"\x1e" + text.encode())
    text_hash = digest.hexdigest()
    ids = [memory.vector_id] + [f"{memory.vector_id}-c{i}" for i in range(len(parts))]

    if memory.text_hash == text_hash:
        stored = list(MemoryVector.objects.filter(memory=memory).order_by("position"))
        if [v.vector_id for v in stored] == ids and all(
            v.model == embedder.model and v.dim == embedder.dim for v in stored
        ):
            vectors = np.stack([v.as_array() for v in stored])
            return BuiltVectors(text_hash, embedder.model, embedder.dim, ids, texts, vectors, reused=True)
    vectors = embedder.embed_documents(texts)
    return BuiltVectors(text_hash, embedder.model, embedder.dim, ids, texts, vectors)


def memory_vectors_upsert(*, memory: Memory, built: BuiltVectors) -> None:
    """Write a memory's vectors to the vector store and remove any it no longer has."""
    metadata = {
        "uid": memory.uid,
        "memory_id": str(memory.id),
        "created_at": int(memory.created_at.timestamp()),
        "category": memory.category,
        "source": memory.source,
    }
    store = get_vector_store()
    store.upsert([VectorRecord(id=i, values=v, metadata=dict(metadata)) for i, v in zip(built.ids, built.vectors)])
    stale = list(MemoryVector.objects.filter(memory=memory).exclude(vector_id__in=built.ids).values_list("vector_id", flat=True))
    if stale:
        store.delete(stale)


def memory_vectors_save(*, memory: Memory, built: BuiltVectors) -> None:
    """Keep the vectors in the database too (call inside the transaction that marks it indexed)."""
    MemoryVector.objects.filter(memory=memory).delete()
    MemoryVector.objects.bulk_create(
        MemoryVector(
            memory=memory,
            position=position,
            vector_id=vector_id,
            text=text if position else "",
            model=built.model,
            dim=built.dim,
            vector=np.asarray(vector, dtype="<f4").tobytes(),
        )
        for position, (vector_id, text, vector) in enumerate(zip(built.ids, built.texts, built.vectors))
    )


def memory_vectors_delete(*, memory: Memory, extra_ids: list[str] | None = None) -> None:
    """Remove a memory's vectors from the store and the database."""
    ids = set(MemoryVector.objects.filter(memory=memory).values_list("vector_id", flat=True))
    ids.update(extra_ids or [])
    ids.add(memory.vector_id)
    get_vector_store().delete(sorted(ids))
    MemoryVector.objects.filter(memory=memory).delete()


def search_memories(*, uid: str, query: str, k: int = 5, filters: SearchFilters | None = None) -> SearchResult:
    """The `k` indexed memories of `uid` closest in meaning to `query`, best first."""
    started = time.perf_counter()
    filters = filters or SearchFilters()
    vector = get_embedder().embed_query(query)
    matches = get_vector_store().query(vector, uid=uid, top_k=k, filters=filters)
    memories = Memory.objects.filter(
        uid=uid, id__in=[int(m.memory_id) for m in matches], status=Memory.Status.INDEXED
    ).in_bulk()
    windows_text = dict(
        MemoryVector.objects.filter(vector_id__in=[m.vector_id for m in matches], position__gt=0).values_list(
            "vector_id", "text"
        )
    )
    hits = []
    for match in matches:
        memory = memories.get(int(match.memory_id))
        if memory is None:
            continue
        window = windows_text.get(match.vector_id)
        snippet = _snippet(window, query) if window else memory.overview[:SNIPPET_CHARS]
        hits.append(SearchHit(memory, match.score, match.vector_id, snippet))
    return SearchResult(hits=hits, took_ms=(time.perf_counter() - started) * 1000)


def _snippet(text: str, query: str) -> str:
    """The part of a matching window to show: from the turn sharing most words with the query."""
    terms = {w for w in re.findall(r"\w+", query.lower()) if len(w) > 2}
    lines = text.splitlines()
    best = max(range(len(lines)), key=lambda i: (len(terms & set(re.findall(r"\w+", lines[i].lower()))), -i))
    snippet = "\n".join(lines[best:])
    return snippet if len(snippet) <= SNIPPET_CHARS else snippet[: SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"
