"""Search: one user's memories that best answer a query, logged; judgments of the results.

What a user is shown of each result, whatever the strategy: its score (0..1, see search/strategies.py),
whether it is weak (its best vector's cosine with the query under the relevance floor: nothing of
it resembles the query, as for "xyzzy qwerty"), the query's words in its snippet (as BM25 matches
them), and the near-duplicates collapsed under it (`also`: the ids of memories of an open or confirmed
duplicate pair with it, ranked below it).
"""

import time
from dataclasses import dataclass, field

from django.conf import settings

from memories.models import Memory, MemoryVector
from memories.parts.embedders import get_embedder
from memories.parts.vectorstores import ModelMismatch, SearchFilters, get_vector_store
from omi_memory.errors import Conflict, NotFound
from omi_memory.metrics import SEARCH_DURATION

from . import strategies
from .lexical import matched_spans, query_terms
from .models import RelevanceFeedback, SearchLog
from .search_log import search_log_write
from .selectors import near_duplicates
from .strategies import DEFAULT_HALF_LIFE_DAYS, DEFAULT_STRATEGY, SearchRequest

SNIPPET_CHARS = 300


@dataclass
class SearchHit:
    memory: Memory
    score: float
    vector_id: str
    snippet: str = ""
    similarity: float = 0.0
    weak: bool = False
    also: list[int] = field(default_factory=list)  # near-duplicates shown under this one
    terms: frozenset[str] = frozenset()  # the query's terms, to find in the snippet

    @property
    def highlights(self) -> list[tuple[int, int]]:
        """(start, end) of each word of the snippet that matches a word of the query."""
        return matched_spans(self.snippet, self.terms)

    @property
    def snippet_parts(self) -> list[tuple[str, bool]]:
        """The snippet cut into (text, matched) parts, for the page to mark the matched ones."""
        parts, at = [], 0
        for start, end in self.highlights:
            parts += [(self.snippet[at:start], False), (self.snippet[start:end], True)]
            at = end
        return [part for part in parts + [(self.snippet[at:], False)] if part[0]]


@dataclass
class SearchResult:
    hits: list[SearchHit] = field(default_factory=list)
    took_ms: float = 0.0
    search_id: int | None = None
    relevance_floor: float = 0.0


def search_memories(
    *,
    uid: str,
    queries: list[str],
    k: int = 5,
    filters: SearchFilters | None = None,
    strategy: str = DEFAULT_STRATEGY,
    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS,
    fusion: str = "sum",
    relevance_floor: float | None = None,
    api_key=None,
    user=None,
    log: bool = True,
) -> SearchResult:
    """The `k` searchable memories of `uid` (indexed, or being reprocessed with their old vectors)
    that best answer `queries` by `strategy`, best first, near-duplicates collapsed under the first
    (more are ranked so that k distinct ones are left); those under `relevance_floor` (None:
    `settings.SEARCH_RELEVANCE_FLOOR`) marked weak. Every search is logged (`SearchLog`, written
    after the answer: `search_log.py`; its id is the result's `search_id`) unless `log=False` (the
    evaluation's own runs)."""
    started = time.perf_counter()
    filters = filters or SearchFilters()
    floor = settings.SEARCH_RELEVANCE_FLOOR if relevance_floor is None else relevance_floor
    embedder, store = get_embedder(), get_vector_store()
    try:
        store.check_model(embedder.model, embedder.dim)
    except ModelMismatch as exc:
        raise Conflict(str(exc), code="model_mismatch") from exc
    request = SearchRequest(
        uid=uid,
        queries=queries,
        k=2 * k,  # room for the near-duplicates collapsed
        filters=filters,
        strategy=strategy,
        half_life_days=half_life_days,
        fusion=fusion,
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
    terms = query_terms(" ".join(queries))
    hits = []
    for r in ranked:
        memory = memories.get(r.memory_id)
        if memory is None:
            continue
        text = texts.get(r.vector_id)
        snippet = _snippet(text, terms) if text else memory.overview[:SNIPPET_CHARS]
        hits.append(SearchHit(memory, r.score, r.vector_id, snippet, r.similarity, r.similarity < floor, terms=terms))
    hits = _collapse_near_duplicates(hits)[:k]
    result = SearchResult(hits=hits, took_ms=(time.perf_counter() - started) * 1000, relevance_floor=floor)
    SEARCH_DURATION.labels(strategy).observe(result.took_ms / 1000)
    if log:
        result.search_id = search_log_write(
            SearchLog(
                api_key=api_key,
                user=user,
                uid=uid,
                queries=queries,
                strategy=strategy,
                params={
                    "k": k,
                    "half_life_days": half_life_days,
                    "fusion": fusion,
                    "relevance_floor": floor,
                    "filters": _filters_json(filters),
                },
                results=[{"memory_id": h.memory.id, "score": round(h.score, 6), "weak": h.weak} for h in hits],
                latency_ms=round(result.took_ms, 3),
            )
        )
    return result


def _collapse_near_duplicates(hits: list[SearchHit]) -> list[SearchHit]:
    """Each hit that is a near-duplicate of one ranked above it goes into the `also` of the first
    of them (of its group, through chains of pairs), and out of the list."""
    linked = near_duplicates(memory_ids=[hit.memory.id for hit in hits])
    kept: list[SearchHit] = []
    under: dict[int, int] = {}  # memory id -> the position in `kept` of the hit it is shown under (or is)
    for hit in hits:
        firsts = [under[other] for other in linked.get(hit.memory.id, ()) if other in under]
        if firsts:
            under[hit.memory.id] = min(firsts)
            kept[min(firsts)].also.append(hit.memory.id)
        else:
            under[hit.memory.id] = len(kept)
            kept.append(hit)
    return kept


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


def _snippet(text: str, terms: frozenset[str]) -> str:
    """The part of a matching window to show: from the turn with most words of the query."""
    lines = text.splitlines()
    best = max(range(len(lines)), key=lambda i: (len(matched_spans(lines[i], terms)), -i))
    snippet = "\n".join(lines[best:])
    return snippet if len(snippet) <= SNIPPET_CHARS else snippet[: SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"
