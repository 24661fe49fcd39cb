"""Search strategies: each turns a request into memory ids with scores, best first.

- `semantic`: the query's embedding against every vector of the user; a memory scores as its best.
- `time_weighted`: semantic x exp(-time_decay x days since created_at), over a pool larger than k.
- `multi_query`: several queries; per memory, scores summed (`fusion=sum`) or reciprocal-rank fused.
- `hybrid`: BM25 over the user's memories, both whole and by their best exchange of two turns
  (search/lexical.py), fused with dense search at two granularities (windows and the memory's own
  text, by their best vector; snippets, by the mean of their best two), plus a nudge for memories
  created in a month the query names; by a weighted sum of scores scaled to [0, 1] per search
  (`fusion=sum`) or weighted reciprocal rank fusion (`fusion=rrf`). The weights were chosen on
  LoCoMo's dev split (docs/benchmarks.md). With late chunking (SNIPPET_VECTORS=late) a memory's
  windows and snippets are pooled from the same reads of its transcript, so a snippet's vector
  already carries its window's context: the windows signal mostly repeats the snippets' and weighs
  half as much.

All take the same filters, and every one is scoped to one uid.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.utils import timezone

from memories.models import Memory
from memories.parts.embedders import get_embedder
from memories.parts.vectorstores import SearchFilters, get_vector_store
from memories.vectors import snippet_plan

from .lexical import lexical_index

STRATEGIES = ("semantic", "time_weighted", "multi_query", "hybrid")
DEFAULT_STRATEGY = "hybrid"
FUSIONS = ("sum", "rrf")
DEFAULT_TIME_DECAY = 0.1
# A search's bounds (the API and the search page): results, queries and their length, time decay.
MAX_K = 100
MAX_QUERIES = 10
MAX_QUERY_CHARS = 2000
MAX_TIME_DECAY = 10.0
RRF_K = 60
POOL = 50  # candidates re-ranked by time_weighted, per query fused by multi_query
# hybrid: the signals and their weights (the lexical half split between whole memories and exchanges).
HYBRID_WEIGHTS = {"lexical": 0.25, "exchanges": 0.25, "snippets": 0.3, "windows": 0.2, "month": 0.1}
# late chunking: windows and snippets pooled from the same reads, the windows signal counts for less
HYBRID_WEIGHTS_LATE = {**HYBRID_WEIGHTS, "windows": 0.1}
HYBRID_RRF_K = 10
HYBRID_MAX_VECTORS = 1000  # a store that cannot score every vector of a user returns this many


@dataclass
class SearchRequest:
    uid: str
    queries: list[str]
    k: int = 5
    filters: SearchFilters = field(default_factory=SearchFilters)
    strategy: str = DEFAULT_STRATEGY
    time_decay: float = DEFAULT_TIME_DECAY
    fusion: str = "sum"


@dataclass
class Ranked:
    memory_id: int
    score: float
    vector_id: str = ""  # the vector that matched best, for the snippet shown


def run(request: SearchRequest) -> list[Ranked]:
    strategy = {"semantic": semantic, "time_weighted": time_weighted, "multi_query": multi_query, "hybrid": hybrid}[
        request.strategy
    ]
    return strategy(request)


def _dense(request: SearchRequest, query_vector: np.ndarray, top_k: int) -> list[Ranked]:
    matches = get_vector_store().query(query_vector, uid=request.uid, top_k=top_k, filters=request.filters)
    return [Ranked(int(m.memory_id), m.score, m.vector_id) for m in matches]


def semantic(request: SearchRequest) -> list[Ranked]:
    return _dense(request, get_embedder().embed_query(request.queries[0]), request.k)


def time_weighted(request: SearchRequest) -> list[Ranked]:
    pool = _dense(request, get_embedder().embed_query(request.queries[0]), max(request.k * 5, POOL))
    created = dict(Memory.objects.filter(id__in=[r.memory_id for r in pool]).values_list("id", "created_at"))
    now = timezone.now()
    for ranked in pool:
        days = max((now - created[ranked.memory_id]).total_seconds() / 86400, 0) if ranked.memory_id in created else 0
        ranked.score *= math.exp(-request.time_decay * days)
    return sorted(pool, key=lambda r: -r.score)[: request.k]


def multi_query(request: SearchRequest) -> list[Ranked]:
    embedder = get_embedder()
    vectors = [embedder.embed_query(query) for query in request.queries]  # each cached on its own
    totals: dict[int, float] = defaultdict(float)
    best: dict[int, Ranked] = {}
    for vector in vectors:
        for rank, ranked in enumerate(_dense(request, vector, max(request.k * 3, POOL))):
            totals[ranked.memory_id] += ranked.score if request.fusion == "sum" else 1 / (RRF_K + rank + 1)
            if ranked.memory_id not in best or ranked.score > best[ranked.memory_id].score:
                best[ranked.memory_id] = ranked
    order = sorted(totals, key=lambda memory_id: -totals[memory_id])[: request.k]
    return [Ranked(memory_id, totals[memory_id], best[memory_id].vector_id) for memory_id in order]


def hybrid_weights(embedder) -> dict[str, float]:
    """The hybrid signals' weights for how this embedder's windows and snippets are made."""
    return HYBRID_WEIGHTS_LATE if snippet_plan(embedder) == "late" else HYBRID_WEIGHTS


def hybrid(request: SearchRequest) -> list[Ranked]:
    query = request.queries[0]
    memory_ids, lexical = lexical_index(request.uid).scores(query, request.filters)
    signals = {name: dict(zip(memory_ids.tolist(), values.tolist())) for name, values in lexical.items()}
    windows: dict[int, float] = {}
    snippets: dict[int, list[float]] = defaultdict(list)
    best: dict[int, str] = {}
    embedder = get_embedder()
    matches = get_vector_store().query_vectors(
        embedder.embed_query(query), uid=request.uid, top_k=HYBRID_MAX_VECTORS, filters=request.filters
    )
    for match in matches:  # best first
        memory_id = int(match.memory_id)
        best.setdefault(memory_id, match.vector_id)
        if match.kind == "snippet":
            if len(snippets[memory_id]) < 2:
                snippets[memory_id].append(match.score)
        elif memory_id not in windows:
            windows[memory_id] = match.score
    signals["windows"] = windows
    signals["snippets"] = {memory_id: sum(scores) / len(scores) for memory_id, scores in snippets.items()}
    candidates = sorted(set().union(*signals.values()))
    if not candidates:
        return []
    total = np.zeros(len(candidates))
    for name, weight in hybrid_weights(embedder).items():
        values = signals[name]
        if not values:
            continue
        floor = min(values.values())  # a memory the signal did not find counts as its worst
        raw = np.array([values.get(memory_id, floor) for memory_id in candidates])
        low, high = raw.min(), raw.max()
        if high == low:
            continue  # the signal tells the candidates apart not at all
        if request.fusion == "rrf":
            ranks = len(raw) - np.searchsorted(np.sort(raw), raw, side="right")  # how many score higher
            total += weight / (HYBRID_RRF_K + ranks + 1)
        else:
            total += weight * (raw - low) / (high - low)
    order = np.argsort(-total, kind="stable")[: request.k]
    return [Ranked(candidates[i], float(total[i]), best.get(candidates[i], "")) for i in order]
