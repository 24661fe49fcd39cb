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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from memories.models import Memory
from memories.parts.embedders import get_embedder
from memories.parts.vectorstores import SearchFilters, VectorMatch, get_vector_store
from memories.vectors import snippet_plan
from omi_memory.errors import ValidationFailed

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
HYBRID_SNIPPETS_PER_MEMORY = 2  # a memory's snippets signal: the mean of its best this many
HYBRID_MAX_SNIPPETS = 5  # the most snippets per memory a search keeps (the parameter's bound)
HYBRID_MAX_VECTORS = 1000  # a store that cannot score every vector of a user returns this many
# hybrid's query embeddings, beside the searches' own threads (as many as a server's threads, about)
_EMBEDDING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="query-embedding")


def half_life_from_rate(rate: float) -> float | None:
    """The half-life in days of the seed's decay rate per day (exp(-rate x days)); None for 0. A rate
    so small that its half-life is beyond MAX_HALF_LIFE_DAYS (even infinite: ln 2 / 5e-324) gets that."""
    return min(math.log(2) / rate, MAX_HALF_LIFE_DAYS) if rate else None


# Strategy parameters: the numbers each strategy works with, their defaults and bounds. A search may
# override them (`params`), a parameter profile holds a set of them (search.models.ParameterProfile),
# and `manage.py tune` fits them to judgments, trying the values of each one's `grid`.


@dataclass(frozen=True)
class Param:
    name: str
    default: float
    low: float
    high: float
    description: str
    whole: bool = False  # an integer
    grid: tuple[float, ...] = ()  # the values `tune` tries; () : tune leaves it as it is
    fusion: str = ""  # it matters only under this fusion ("" : under every one)


WEIGHT_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0)
HYBRID_SIGNALS = tuple(HYBRID_WEIGHTS)  # lexical, exchanges, snippets, windows, month
SIGNAL_DESCRIPTIONS = {
    "lexical": "BM25 of the whole memory",
    "exchanges": "BM25 of the memory's best exchange of two turns",
    "snippets": "cosine of the memory's best snippets",
    "windows": "cosine of the memory's best window or own vector",
    "month": "the memory was created in a month the query names",
}


def weight_param(signal: str) -> str:
    return f"{signal}_weight"


PARAMS: dict[str, tuple[Param, ...]] = {
    "semantic": (),
    "time_weighted": (Param("pool", POOL, 1, 1000, "candidates re-ranked by the decay (at least 5 x k)", whole=True),),
    "multi_query": (
        Param("pool", POOL, 1, 1000, "candidates fused per query (at least 3 x k)", whole=True),
        Param("rrf_k", RRF_K, 1, 1000, "the k of reciprocal rank fusion: 1 / (k + rank)", whole=True, fusion="rrf"),
    ),
    "hybrid": (
        *(
            Param(weight_param(signal), weight, 0.0, 1.0, f"weight of {SIGNAL_DESCRIPTIONS[signal]}", grid=WEIGHT_GRID)
            for signal, weight in HYBRID_WEIGHTS.items()
        ),
        Param(
            "snippets_per_memory",
            HYBRID_SNIPPETS_PER_MEMORY,
            1,
            HYBRID_MAX_SNIPPETS,
            "a memory's snippets signal is the mean of its best this many",
            whole=True,
            grid=(1, 2, 3),
        ),
        Param(
            "rrf_k",
            HYBRID_RRF_K,
            1,
            1000,
            "the k of weighted reciprocal rank fusion: weight / (k + rank)",
            whole=True,
            grid=(2, 5, 10, 20, 60),
            fusion="rrf",
        ),
    ),
}


def strategy_defaults(strategy: str) -> dict[str, float]:
    """Every parameter of `strategy` at its default (hybrid's weights: for how the configured
    embedder's windows and snippets are made)."""
    values = {p.name: p.default for p in PARAMS[strategy]}
    if strategy == "hybrid":
        values |= {weight_param(signal): w for signal, w in hybrid_weights(get_embedder()).items()}
    return values


def resolve_params(strategy: str, *layers: dict | None) -> dict[str, float]:
    """Every parameter of `strategy`: its defaults, overridden by each of `layers` in turn (a
    profile's, then a search's). A name the strategy does not have, or a value that is not a
    number in its bounds, is a ValidationFailed (422) that names it."""
    known = {p.name: p for p in PARAMS[strategy]}
    values = strategy_defaults(strategy)
    for layer in layers:
        for name, value in (layer or {}).items():
            param = known.get(name)
            field_name = f"params.{name}"
            if param is None:
                have = ", ".join(known) or "none"
                raise ValidationFailed(
                    f"strategy {strategy} has no parameter {name!r} (its parameters: {have})",
                    details={"field": field_name},
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValidationFailed(f"parameter {name} must be a number", details={"field": field_name})
            if param.whole and value != int(value):
                raise ValidationFailed(f"parameter {name} must be a whole number", details={"field": field_name})
            if not param.low <= value <= param.high:
                raise ValidationFailed(
                    f"parameter {name} must be between {param.low:g} and {param.high:g} (got {value:g})",
                    details={"field": field_name},
                )
            values[name] = int(value) if param.whole else float(value)
    if strategy == "hybrid" and not any(values[weight_param(signal)] for signal in HYBRID_SIGNALS):
        raise ValidationFailed("hybrid needs at least one signal with a weight above 0", details={"field": "params"})
    return values


def params_in_order(strategy: str, params: dict) -> list[tuple[str, float]]:
    """(name, value) of the parameters in `params`, in the order the strategy states them (a JSON
    column of PostgreSQL keeps its own order)."""
    return [(p.name, params[p.name]) for p in PARAMS.get(strategy, ()) if p.name in params]


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
    params: dict[str, float] = field(default_factory=dict)  # the strategy's parameters (PARAMS); others: defaults


@dataclass
class Ranked:
    memory_id: int
    score: float
    vector_id: str = ""  # the vector that matched best, for the snippet shown
    similarity: float = 0.0  # that vector's cosine with the (first) query


def run(request: SearchRequest) -> list[Ranked]:
    request.params = resolve_params(request.strategy, request.params)
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
    pool = _dense(request, get_embedder().embed_query(request.queries[0]), max(request.k * 5, request.params["pool"]))
    created = dict(Memory.objects.filter(id__in=[r.memory_id for r in pool]).values_list("id", "created_at"))
    if request.half_life_days is None or not created:
        return pool[: request.k]
    newest = max(created.values())
    for ranked in pool:
        days = (newest - created[ranked.memory_id]).total_seconds() / 86400 if ranked.memory_id in created else 0
        ranked.score *= 0.5 ** (days / request.half_life_days)
    return sorted(pool, key=lambda r: -r.score)[: request.k]


def multi_query(request: SearchRequest) -> list[Ranked]:
    vectors = list(get_embedder().embed_documents(request.queries))  # each cached on its own, looked up together
    totals: dict[int, float] = defaultdict(float)
    best: dict[int, Ranked] = {}
    rrf_k = request.params["rrf_k"]
    pool = max(request.k * 3, request.params["pool"])
    for matches in get_vector_store().query_many(vectors, uid=request.uid, top_k=pool, filters=request.filters):
        for rank, m in enumerate(matches):  # the queries scored together: the local store reads the vectors once
            ranked = Ranked(int(m.memory_id), m.score, m.vector_id, m.score)
            totals[ranked.memory_id] += ranked.score if request.fusion == "sum" else 1 / (rrf_k + rank + 1)
            if ranked.memory_id not in best or ranked.score > best[ranked.memory_id].score:
                best[ranked.memory_id] = ranked
    top = len(vectors) * (1.0 if request.fusion == "sum" else 1 / (rrf_k + 1))  # first for every query
    order = sorted(totals, key=lambda memory_id: -totals[memory_id])[: request.k]
    return [
        Ranked(memory_id, totals[memory_id] / top, best[memory_id].vector_id, best[memory_id].score)
        for memory_id in order
    ]


def hybrid_weights(embedder) -> dict[str, float]:
    """The hybrid signals' weights for how this embedder's windows and snippets are made."""
    return HYBRID_WEIGHTS_LATE if snippet_plan(embedder) == "late" else HYBRID_WEIGHTS


@dataclass
class HybridSignals:
    """What hybrid's fusion reads for one query: the candidates (memory ids, ascending), each
    signal's raw score per candidate (an array in the candidates' order, NaN where the signal did
    not find it; `snippets`: a row per candidate of its best snippets' scores, best first, NaN
    after the last, HYBRID_MAX_SNIPPETS columns), and the vector that matched each candidate best.
    Recorded once, fused for any parameters (`hybrid_contributions`): how `tune` tries weights
    without searching again. Arrays, not a dict per signal: a heavy user's every memory is a
    candidate (BM25 scores them all), 20,000 of them."""

    candidates: list[int]
    signals: dict[str, np.ndarray]
    snippets: np.ndarray
    best: dict[int, VectorMatch]


def hybrid_signals(request: SearchRequest) -> HybridSignals:
    query = request.queries[0]
    # The query is embedded (the model's runtime lets go of the GIL) while BM25 checks the user's
    # memories in the database and scores them: for a heavy user, each takes about 5 ms.
    embedding = _EMBEDDING.submit(get_embedder().embed_query, query)  # the version's embedder, chosen here
    memory_ids, lexical = lexical_index(request.uid).scores(query, request.filters)
    matches = get_vector_store().query_vectors(
        embedding.result(), uid=request.uid, top_k=HYBRID_MAX_VECTORS, filters=request.filters
    )  # best first
    found = np.array([int(match.memory_id) for match in matches], dtype=np.int64)
    scores = np.array([match.score for match in matches], dtype=np.float64)
    snippet = np.array([match.kind == "snippet" for match in matches], dtype=bool)
    candidates = _union(memory_ids, found)
    at = np.searchsorted(candidates, found)  # each match's candidate
    signals = {}
    for name, values in lexical.items():
        if candidates is memory_ids:
            signals[name] = np.array(values, dtype=np.float64)
        else:
            signals[name] = np.full(len(candidates), np.nan)
            signals[name][np.searchsorted(candidates, memory_ids)] = values
    # windows (and the memory's own vector): each candidate's best; snippets: its best few, best first
    signals["windows"] = np.full(len(candidates), np.nan)
    rows = np.flatnonzero(~snippet)
    firsts = rows[np.unique(at[rows], return_index=True)[1]]
    signals["windows"][at[firsts]] = scores[firsts]
    rows = np.flatnonzero(snippet)
    rows = rows[np.argsort(at[rows], kind="stable")]  # by candidate, best first within each
    starts = np.flatnonzero(np.r_[True, np.diff(at[rows]) != 0])
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    kept = rank < HYBRID_MAX_SNIPPETS
    snippets = np.full((len(candidates), HYBRID_MAX_SNIPPETS), np.nan)
    snippets[at[rows[kept]], rank[kept]] = scores[rows[kept]]
    best = {int(found[i]): matches[i] for i in np.unique(found, return_index=True)[1].tolist()}
    return HybridSignals(candidates.tolist(), signals, snippets, best)


def _union(ascending: np.ndarray, more: np.ndarray) -> np.ndarray:
    """The ids of both, ascending, unique: `ascending` itself when it is so and holds all of `more`
    (BM25 scores every memory dense search can find, and sorting 20,000 ids again costs 2 ms)."""
    if len(ascending) and (ascending[1:] > ascending[:-1]).all():
        at = np.minimum(np.searchsorted(ascending, more), len(ascending) - 1)
        if (ascending[at] == more).all():
            return ascending
    return np.union1d(ascending, more)


def hybrid_contributions(recorded: HybridSignals, params: dict[str, float], fusion: str) -> np.ndarray:
    """A column per signal (HYBRID_SIGNALS' order), a row per candidate: what the signal adds to a
    candidate's fused score per unit of its weight. `sum`: its score scaled to 0..1 over the
    candidates; `rrf`: 1 / (rrf_k + rank + 1). A memory a signal did not find counts as its worst; a
    signal that tells the candidates apart not at all adds nothing."""
    best = recorded.snippets[:, : int(params["snippets_per_memory"])]
    taken = (~np.isnan(best)).sum(axis=1)
    with np.errstate(invalid="ignore"):  # no snippet: 0 / 0, NaN, not found
        signals = {**recorded.signals, "snippets": np.nansum(best, axis=1) / taken}
    columns = np.zeros((len(recorded.candidates), len(HYBRID_SIGNALS)))
    for j, name in enumerate(HYBRID_SIGNALS):
        values = signals.get(name)
        if values is None or np.isnan(values).all():
            continue
        raw = np.where(np.isnan(values), np.nanmin(values), values)
        low, high = raw.min(), raw.max()
        if high == low:
            continue
        if fusion == "rrf":
            ranks = len(raw) - np.searchsorted(np.sort(raw), raw, side="right")  # how many score higher
            columns[:, j] = 1 / (params["rrf_k"] + ranks + 1)
        else:
            columns[:, j] = (raw - low) / (high - low)
    return columns


def hybrid_fuse(
    recorded: HybridSignals, params: dict[str, float], fusion: str, top: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The candidates' fused scores on 0..1 (over the most any candidate could get) and their
    order, best first (ties: the smaller memory id first); the first `top` of it only, if given."""
    weights = np.array([params[weight_param(signal)] for signal in HYBRID_SIGNALS])
    total = hybrid_contributions(recorded, params, fusion) @ weights
    top_score = weights.sum() * (1.0 if fusion == "sum" else 1 / (params["rrf_k"] + 1))
    chosen = np.arange(len(total))
    if top is not None and top < len(total):  # only the rows that can be among the first `top` are sorted
        chosen = np.flatnonzero(total >= np.partition(total, len(total) - top)[len(total) - top])
    return total / top_score, chosen[np.argsort(-total[chosen], kind="stable")][:top]


def hybrid(request: SearchRequest) -> list[Ranked]:
    recorded = hybrid_signals(request)
    if not recorded.candidates:
        return []
    scores, order = hybrid_fuse(recorded, request.params, request.fusion, top=request.k)
    ranked = []
    for i in order.tolist():
        memory_id = recorded.candidates[i]
        match = recorded.best.get(memory_id)
        ranked.append(
            Ranked(memory_id, float(scores[i]), match.vector_id if match else "", match.score if match else 0.0)
        )
    return ranked
