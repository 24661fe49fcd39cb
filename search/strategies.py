"""Search strategies: each turns a request into memory ids with scores, best first.

- `semantic`: the query's embedding against every vector of the user; a memory scores as its best.
- `time_weighted`: semantic x 0.5 ** (days older than the newest candidate / half-life), over a pool
  larger than k. (Counting from the newest candidate rather than from today ranks the same and keeps
  the scores of a user whose memories are all old readable.)
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

All take the same filters, and every one is scoped to one uid. Every score is on 0..1, 1 the best a
strategy can give: the cosine similarity (semantic; in practice 0..1), times the decay (time_weighted),
the mean over the queries (multi_query, sum) or the fused value over its maximum (the RRFs, hybrid).
`similarity` is the best cosine of the memory's vectors with the (first) query, whatever the strategy:
the absolute measure that a relevance floor compares (search/services.py).
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from memories.models import Memory
from memories.parts.embedders import get_embedder
from memories.parts.vectorstores import SearchFilters, VectorMatch, get_vector_store
from memories.vectors import snippet_plan

from .lexical import lexical_index

STRATEGIES = ("semantic", "time_weighted", "multi_query", "hybrid")
DEFAULT_STRATEGY = "hybrid"
FUSIONS = ("sum", "rrf")
DEFAULT_HALF_LIFE_DAYS = 30.0  # time_weighted: a memory a month older counts half
# A search's bounds (the API and the search page): results, queries and their length, time decay
# (as a half-life in days, or as the seed's rate per day: half-life = ln 2 / rate, 0 for none).
MAX_K = 100
MAX_QUERIES = 10
MAX_QUERY_CHARS = 2000
MAX_TIME_DECAY = 10.0
MIN_HALF_LIFE_DAYS, MAX_HALF_LIFE_DAYS = 0.01, 36500.0
RRF_K = 60
POOL = 50  # candidates re-ranked by time_weighted, per query fused by multi_query
# hybrid: the signals and their weights (the lexical half split between whole memories and exchanges).
HYBRID_WEIGHTS = {"lexical": 0.25, "exchanges": 0.25, "snippets": 0.3, "windows": 0.2, "month": 0.1}
# late chunking: windows and snippets pooled from the same reads, the windows signal counts for less
HYBRID_WEIGHTS_LATE = {**HYBRID_WEIGHTS, "windows": 0.1}
HYBRID_RRF_K = 10
HYBRID_MAX_VECTORS = 1000  # a store that cannot score every vector of a user returns this many


def half_life_from_rate(rate: float) -> float | None:
    """The half-life in days of the seed's decay rate per day (exp(-rate x days)); None for 0. A rate
    so small that its half-life is beyond MAX_HALF_LIFE_DAYS (even infinite: ln 2 / 5e-324) gets that."""
    return min(math.log(2) / rate, MAX_HALF_LIFE_DAYS) if rate else None


# What a score of each strategy (and fusion) is, on 0..1, for people reading it.
SCORE_SCALES = {
    ("semantic", "sum"): "the cosine similarity of the memory's closest passage with the query",
    ("time_weighted", "sum"): "the cosine similarity of the memory's closest passage, halved for every "
    "half-life it is older than the newest result",
    ("multi_query", "sum"): "the mean over the queries of the memory's cosine similarity",
    ("multi_query", "rrf"): "reciprocal rank fusion of the queries' rankings, 1 for the first of every one",
    ("hybrid", "sum"): "the weighted sum of keyword (BM25) and meaning signals, each scaled to 0..1 within this "
    "search: relative, so the first result is near 1 even for a poor query",
    ("hybrid", "rrf"): "weighted reciprocal rank fusion of keyword (BM25) and meaning rankings, 1 for the first of "
    "every one: relative to this search",
}
SCORE_SCALES |= {(name, "rrf"): SCORE_SCALES[name, "sum"] for name in ("semantic", "time_weighted")}


@dataclass
class SearchRequest:
    uid: str
    queries: list[str]
    k: int = 5
    filters: SearchFilters = field(default_factory=SearchFilters)
    strategy: str = DEFAULT_STRATEGY
    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS  # None: no decay
    fusion: str = "sum"


@dataclass
class Ranked:
    memory_id: int
    score: float
    vector_id: str = ""  # the vector that matched best, for the snippet shown
    similarity: float = 0.0  # that vector's cosine with the (first) query


def run(request: SearchRequest) -> list[Ranked]:
    strategy = {"semantic": semantic, "time_weighted": time_weighted, "multi_query": multi_query, "hybrid": hybrid}[
        request.strategy
    ]
    return strategy(request)


def _dense(request: SearchRequest, query_vector: np.ndarray, top_k: int) -> list[Ranked]:
    matches = get_vector_store().query(query_vector, uid=request.uid, top_k=top_k, filters=request.filters)
    return [Ranked(int(m.memory_id), m.score, m.vector_id, m.score) for m in matches]


def semantic(request: SearchRequest) -> list[Ranked]:
    return _dense(request, get_embedder().embed_query(request.queries[0]), request.k)


def time_weighted(request: SearchRequest) -> list[Ranked]:
    pool = _dense(request, get_embedder().embed_query(request.queries[0]), max(request.k * 5, POOL))
    created = dict(Memory.objects.filter(id__in=[r.memory_id for r in pool]).values_list("id", "created_at"))
    if request.half_life_days is None or not created:
        return pool[: request.k]
    newest = max(created.values())
    for ranked in pool:
        days = (newest - created[ranked.memory_id]).total_seconds() / 86400 if ranked.memory_id in created else 0
        ranked.score *= 0.5 ** (days / request.half_life_days)
    return sorted(pool, key=lambda r: -r.score)[: request.k]


def multi_query(request: SearchRequest) -> list[Ranked]:
    embedder = get_embedder()
    vectors = [embedder.embed_query(query) for query in request.queries]  # each cached on its own
    totals: dict[int, float] = defaultdict(float)
    best: dict[int, Ranked] = {}
    pool = max(request.k * 3, POOL)
    for matches in get_vector_store().query_many(vectors, uid=request.uid, top_k=pool, filters=request.filters):
        for rank, m in enumerate(matches):  # the queries scored together: the local store reads the vectors once
            ranked = Ranked(int(m.memory_id), m.score, m.vector_id, m.score)
            totals[ranked.memory_id] += ranked.score if request.fusion == "sum" else 1 / (RRF_K + rank + 1)
            if ranked.memory_id not in best or ranked.score > best[ranked.memory_id].score:
                best[ranked.memory_id] = ranked
    top = len(vectors) * (1.0 if request.fusion == "sum" else 1 / (RRF_K + 1))  # first for every query
    order = sorted(totals, key=lambda memory_id: -totals[memory_id])[: request.k]
    return [
        Ranked(memory_id, totals[memory_id] / top, best[memory_id].vector_id, best[memory_id].score)
        for memory_id in order
    ]


def hybrid_weights(embedder) -> dict[str, float]:
    """The hybrid signals' weights for how this embedder's windows and snippets are made."""
    return HYBRID_WEIGHTS_LATE if snippet_plan(embedder) == "late" else HYBRID_WEIGHTS


def hybrid(request: SearchRequest) -> list[Ranked]:
    query = request.queries[0]
    memory_ids, lexical = lexical_index(request.uid).scores(query, request.filters)
    signals = {name: dict(zip(memory_ids.tolist(), values.tolist())) for name, values in lexical.items()}
    windows: dict[int, float] = {}
    snippets: dict[int, list[float]] = defaultdict(list)
    best: dict[int, VectorMatch] = {}
    embedder = get_embedder()
    matches = get_vector_store().query_vectors(
        embedder.embed_query(query), uid=request.uid, top_k=HYBRID_MAX_VECTORS, filters=request.filters
    )
    for match in matches:  # best first
        memory_id = int(match.memory_id)
        best.setdefault(memory_id, match)
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
    weights = hybrid_weights(embedder)
    top = sum(weights.values()) * (1.0 if request.fusion == "sum" else 1 / (HYBRID_RRF_K + 1))
    for name, weight in weights.items():
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
    ranked = []
    for i in order:
        match = best.get(candidates[i])
        ranked.append(
            Ranked(
                candidates[i], float(total[i]) / top, match.vector_id if match else "", match.score if match else 0.0
            )
        )
    return ranked
