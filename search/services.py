"""Search: one user's memories that best answer a query, logged; judgments of the results."""

import re
import time
from dataclasses import dataclass, field

from memories.models import Memory, MemoryVector
from memories.parts.embedders import get_embedder
from memories.parts.vectorstores import ModelMismatch, SearchFilters, get_vector_store
from omi_memory.errors import Conflict, NotFound
from omi_memory.metrics import SEARCH_DURATION

from . import strategies
from .models import RelevanceFeedback, SearchLog
from .strategies import DEFAULT_STRATEGY, DEFAULT_TIME_DECAY, SearchRequest

SNIPPET_CHARS = 300


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
    """The `k` searchable memories of `uid` (indexed, or being reprocessed with their old vectors)
    that best answer `queries` by `strategy`, best first. Every search is logged (`SearchLog`)
    unless `log=False` (the evaluation's own runs)."""
    started = time.perf_counter()
    filters = filters or SearchFilters()
    embedder, store = get_embedder(), get_vector_store()
    try:
        store.check_model(embedder.model, embedder.dim)
    except ModelMismatch as exc:
        raise Conflict(str(exc), code="model_mismatch") from exc
    request = SearchRequest(
        uid=uid, queries=queries, k=k, filters=filters, strategy=strategy, time_decay=time_decay, fusion=fusion
    )
    ranked = strategies.run(request)
    memories = (
        Memory.objects.filter(uid=uid, id__in=[r.memory_id for r in ranked], searchable=True)
        .defer("transcript")
        .in_bulk()
    )
    texts = dict(
        MemoryVector.objects.filter(
            vector_id__in=[r.vector_id for r in ranked if r.vector_id], position__gt=0
        ).values_list("vector_id", "text")
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
    SEARCH_DURATION.labels(strategy).observe(result.took_ms / 1000)
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


def feedback_record(
    *, search: SearchLog, memory_id: int, relevant: bool, note: str = "", api_key=None, user=None
) -> RelevanceFeedback:
    """Record (or change) a judgment of one result of a search."""
    if memory_id not in [r["memory_id"] for r in search.results]:
        raise NotFound(f"memory {memory_id} is not a result of search {search.id}", code="not_a_result")
    feedback, _ = RelevanceFeedback.objects.update_or_create(
        search=search,
        memory_id=memory_id,
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
