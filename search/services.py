"""Writes and searches over vectors: build a memory's vectors, store them, remove them, search."""

import hashlib
import re
import time
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import transaction

from memories.models import Memory
from search.chunking import windows
from search.embedders import get_embedder
from omi_memory.errors import BackendError, Conflict, ValidationFailed
from search import strategies
from search.models import MemoryVector, RelevanceFeedback, SearchLog
from search.strategies import DEFAULT_STRATEGY, DEFAULT_TIME_DECAY, SearchRequest
from search.vectorstores import ModelMismatch, SearchFilters, UpsertIncomplete, VectorRecord, get_vector_store

SNIPPET_CHARS = 300


# What a vector embeds: the memory's own text (structured fields + transcript), a transcript window
# of about CHUNK_TOKENS, or a snippet of about SNIPPET_TOKENS (a turn or two: precise matches).
VECTOR_KINDS = {"memory": "", "window": "c", "snippet": "s"}  # kind -> id suffix letter


@dataclass
class BuiltVectors:
    """A memory's vectors, ready to store: position 0 is the memory's own, then windows, snippets."""

    text_hash: str
    model: str
    dim: int
    ids: list[str]
    texts: list[str]
    vectors: np.ndarray
    kinds: list[str]
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
    search_id: int | None = None


def embedding_text(memory: Memory) -> str:
    """Omi's embedding text: the structured fields and the transcript. The summary comes first
    because a model reads only so many tokens: a long transcript's tail is what gets cut."""
    head = "\n".join(part for part in (memory.title, memory.overview, f"Category: {memory.category}") if part)
    return f"{head}\n{memory.transcript}"


def _plan(memory: Memory, embedder) -> tuple[list[str], list[str], list[str]]:
    """What is embedded for a memory: (texts, vector ids, kinds)."""
    main = embedding_text(memory)
    parts = windows(memory.transcript, max_tokens=settings.CHUNK_TOKENS, count_tokens=embedder.count_tokens_batch)
    if len(parts) <= 1 and embedder.count_tokens(main) <= embedder.max_tokens:
        parts = []  # the memory's own vector already reads the whole transcript
    snippets = []
    if settings.SNIPPET_TOKENS:
        snippets = windows(memory.transcript, max_tokens=settings.SNIPPET_TOKENS, count_tokens=embedder.count_tokens_batch)
        snippets = snippets if len(snippets) > 1 else []
    texts = [main, *parts, *snippets]
    kinds = ["memory"] + ["window"] * len(parts) + ["snippet"] * len(snippets)
    ids = [memory.vector_id]
    ids += [f"{memory.vector_id}-c{i}" for i in range(len(parts))]
    ids += [f"{memory.vector_id}-s{i}" for i in range(len(snippets))]
    return texts, ids, kinds


def memory_vectors_build_many(*, memories: list[Memory], force: bool = False) -> dict[int, BuiltVectors]:
    """Embed memories (their structured fields set), all their texts in one embedder call. A
    memory whose text is unchanged since it was indexed gets its stored vectors again, and
    nothing of it is embedded (`force=True` embeds anyway)."""
    embedder = get_embedder()
    plans: dict[int, tuple[list[str], list[str], list[str], str]] = {}
    for memory in memories:
        texts, ids, kinds = _plan(memory, embedder)
        digest = hashlib.sha256(f"{embedder.model}|{embedder.dim}".encode())
        for text in texts:
            digest.update(b"\x1e" + text.encode())
        plans[memory.id] = (texts, ids, kinds, digest.hexdigest())

    built: dict[int, BuiltVectors] = {}
    unchanged = [m for m in memories if not force and m.text_hash == plans[m.id][3]]
    stored: dict[int, list[MemoryVector]] = {}
    for vector in MemoryVector.objects.filter(memory__in=unchanged).order_by("memory_id", "position"):
        stored.setdefault(vector.memory_id, []).append(vector)
    for memory in unchanged:
        texts, ids, kinds, text_hash = plans[memory.id]
        rows = stored.get(memory.id, [])
        if [v.vector_id for v in rows] == ids and all(v.model == embedder.model and v.dim == embedder.dim for v in rows):
            vectors = np.stack([v.as_array() for v in rows])
            built[memory.id] = BuiltVectors(text_hash, embedder.model, embedder.dim, ids, texts, vectors, kinds,
                                            reused=True)

    todo = [m for m in memories if m.id not in built]
    all_texts = [text for m in todo for text in plans[m.id][0]]
    vectors = embedder.embed_documents(all_texts) if all_texts else None
    offset = 0
    for memory in todo:
        texts, ids, kinds, text_hash = plans[memory.id]
        built[memory.id] = BuiltVectors(
            text_hash, embedder.model, embedder.dim, ids, texts, vectors[offset:offset + len(texts)], kinds
        )
        offset += len(texts)
    return built


def memory_vectors_upsert_many(*, memories: list[Memory], built: dict[int, BuiltVectors]) -> dict[int, BackendError]:
    """Write the memories' vectors to the store (in its batches) and remove the ones they no
    longer have. Returns the memories whose vectors were not all acknowledged, with the error."""
    store = get_vector_store()
    embedder = get_embedder()
    store.check_model(embedder.model, embedder.dim, record=True)
    records = []
    for memory in memories:
        metadata = {
            "uid": memory.uid,
            "memory_id": str(memory.id),
            "created_at": int(memory.created_at.timestamp()),
            "category": memory.category,
            "source": memory.source,
        }
        vectors = built[memory.id]
        records += [
            VectorRecord(id=i, values=v, metadata={**metadata, "kind": kind})
            for i, v, kind in zip(vectors.ids, vectors.vectors, vectors.kinds)
        ]
    failed: dict[int, BackendError] = {}
    try:
        store.upsert(records)
    except UpsertIncomplete as exc:
        failed = {m.id: exc for m in memories if not set(built[m.id].ids) <= exc.acknowledged}
    done = [m for m in memories if m.id not in failed]
    current = {i for m in done for i in built[m.id].ids}
    stale = list(
        MemoryVector.objects.filter(memory__in=done).exclude(vector_id__in=current).values_list("vector_id", flat=True)
    )
    if stale:
        try:
            store.delete(stale)
        except BackendError as exc:
            failed.update({m.id: exc for m in done})
    return failed


def memory_vectors_save(*, built: dict[int, BuiltVectors]) -> None:
    """Keep memories' vectors in the database too (`built`: memory id -> its vectors); call it in
    the transaction that marks them indexed."""
    MemoryVector.objects.filter(memory_id__in=list(built)).delete()
    MemoryVector.objects.bulk_create(
        (
            MemoryVector(
                memory_id=memory_id,
                position=position,
                kind=kind,
                vector_id=vector_id,
                text=text if position else "",
                model=vectors.model,
                dim=vectors.dim,
                vector=np.asarray(vector, dtype="<f4").tobytes(),
            )
            for memory_id, vectors in built.items()
            for position, (vector_id, text, vector, kind) in enumerate(
                zip(vectors.ids, vectors.texts, vectors.vectors, vectors.kinds)
            )
        ),
        batch_size=500,
    )


def memory_vectors_delete(*, memory: Memory, extra_ids: list[str] | None = None) -> None:
    """Remove a memory's vectors from the store and the database."""
    ids = set(MemoryVector.objects.filter(memory=memory).values_list("vector_id", flat=True))
    ids.update(extra_ids or [])
    ids.add(memory.vector_id)
    get_vector_store().delete(sorted(ids))
    MemoryVector.objects.filter(memory=memory).delete()


def memory_vectors_reindex(*, memories: list[Memory]) -> dict[int, BackendError]:
    """Embed memories again with the current embedder (no extraction), store their vectors and
    record the model on them. Returns the memories that could not be stored, with the error."""
    built = memory_vectors_build_many(memories=memories, force=True)
    failed = memory_vectors_upsert_many(memories=memories, built=built)
    stored = {memory.id: built[memory.id] for memory in memories if memory.id not in failed}
    with transaction.atomic():
        memory_vectors_save(built=stored)
        for memory_id, vectors in stored.items():
            Memory.objects.filter(id=memory_id).update(
                text_hash=vectors.text_hash, embedding_model=vectors.model, embedding_dim=vectors.dim
            )
    return failed


def user_vectors_erase(*, uid: str) -> int:
    """Remove every vector of one user from the store and the database; returns how many."""
    known = list(MemoryVector.objects.filter(memory__uid=uid).values_list("vector_id", flat=True))
    known += [f"{uid}-{memory_id}" for memory_id in Memory.objects.filter(uid=uid).values_list("id", flat=True)]
    deleted = get_vector_store().delete_uid(uid, known_ids=sorted(set(known)))
    MemoryVector.objects.filter(memory__uid=uid).delete()
    return deleted


def search_memories(
    *,
    uid: str,
    queries: list[str],
    k: int = 5,
    filters: SearchFilters | None = None,
    strategy: str = DEFAULT_STRATEGY,
    time_decay: float = DEFAULT_TIME_DECAY,
    fusion: str = "sum",
    api_key=None,
    user=None,
    log: bool = True,
) -> SearchResult:
    """The `k` indexed memories of `uid` that best answer `queries` by `strategy`, best first.
    Every search is logged (`SearchLog`) unless `log=False` (the evaluation's own runs)."""
    started = time.perf_counter()
    filters = filters or SearchFilters()
    embedder, store = get_embedder(), get_vector_store()
    try:
        store.check_model(embedder.model, embedder.dim)
    except ModelMismatch as exc:
        raise Conflict(str(exc), code="model_mismatch") from exc
    request = SearchRequest(uid=uid, queries=queries, k=k, filters=filters, strategy=strategy,
                            time_decay=time_decay, fusion=fusion)
    ranked = strategies.run(request)
    memories = Memory.objects.filter(
        uid=uid, id__in=[r.memory_id for r in ranked], status=Memory.Status.INDEXED
    ).defer("transcript").in_bulk()
    texts = dict(
        MemoryVector.objects.filter(vector_id__in=[r.vector_id for r in ranked if r.vector_id], position__gt=0)
        .values_list("vector_id", "text")
    )
    hits = []
    for r in ranked:
        memory = memories.get(r.memory_id)
        if memory is None:
            continue
        text = texts.get(r.vector_id)
        snippet = _snippet(text, " ".join(queries)) if text else memory.overview[:SNIPPET_CHARS]
        hits.append(SearchHit(memory, r.score, r.vector_id, snippet))
    result = SearchResult(hits=hits, took_ms=(time.perf_counter() - started) * 1000)
    if log:
        result.search_id = SearchLog.objects.create(

            api_key=api_key,
            user=user,
            uid=uid,
            queries=queries,
            strategy=strategy,
            params={"k": k, "time_decay": time_decay, "fusion": fusion, "filters": _filters_json(filters)},
            results=[{"memory_id": h.memory.id, "score": round(h.score, 6)} for h in hits],
            latency_ms=round(result.took_ms, 3),
        ).id
    return result


def _filters_json(filters: SearchFilters) -> dict:
    return {
        "starts_at": filters.starts_at.isoformat() if filters.starts_at else None,
        "ends_at": filters.ends_at.isoformat() if filters.ends_at else None,
        "categories": list(filters.categories),
        "sources": list(filters.sources),
    }


def feedback_record(*, search: SearchLog, memory_id: int, relevant: bool, note: str = "", api_key=None,
                    user=None) -> RelevanceFeedback:
    """Record (or change) a judgment of one result of a search."""
    if memory_id not in [r["memory_id"] for r in search.results]:
        raise ValidationFailed(f"memory {memory_id} is not a result of search {search.id}",
                               details={"field": "memory_id"})
    feedback, _ = RelevanceFeedback.objects.update_or_create(
        search=search, memory_id=memory_id,
        defaults={"relevant": relevant, "note": note, "api_key": api_key, "user": user},
    )
    return feedback


def _snippet(text: str, query: str) -> str:
    """The part of a matching window to show: from the turn sharing most words with the query."""
    terms = {w for w in re.findall(r"\w+", query.lower()) if len(w) > 2}
    lines = text.splitlines()
    best = max(range(len(lines)), key=lambda i: (len(terms & set(re.findall(r"\w+", lines[i].lower()))), -i))
    snippet = "\n".join(lines[best:])
    return snippet if len(snippet) <= SNIPPET_CHARS else snippet[: SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"
