"""Fitting a strategy's parameters to what is known to be relevant (`manage.py tune`).

The queries: the analysts' judged searches (a search's first query, for its user and filters, with
the memories last judged relevant; searches of one query, user and filters count once), plus
optionally the questions of a labelled data set's dev split (loaded as `evaluate` loads it, into an
isolated store, rolled back). Every signal of every query is recorded once (hybrid_signals), and
the fusion is recomputed offline for each candidate set of parameters (hybrid_fuse, the code that
searches run), so trying a weight costs no search.

k-fold cross-validation: the queries are shuffled (a fixed seed) and dealt into k folds; for each
fold the parameters are fitted on the other folds (coordinate ascent over each parameter's grid, by
mean nDCG@10, from the parameters searches use now) and both are scored on the held-out fold. The
profile stored is fitted on every query; the held-out figures say what to expect of it.
"""

import json
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from memories.parts.vectorstores import SearchFilters
from memories.services import parse_time
from omi_memory.errors import ValidationFailed

from .evaluation import EVAL_UID_PREFIX, METRICS, aggregate, indexed_dataset, load_dataset, query_metrics
from .models import ParameterProfile, RelevanceFeedback
from .services import profile_create, profile_for
from .strategies import (
    HYBRID_SIGNALS,
    PARAMS,
    HybridSignals,
    SearchRequest,
    hybrid_contributions,
    hybrid_signals,
    resolve_params,
    weight_param,
)

TUNABLE = ("hybrid",)  # strategies whose signals can be recorded once and fused offline
LABELLED_SPLIT = "dev"  # a labelled set tunes on its dev split only: holdout stays for reporting
PASSES = 4  # coordinate ascent: rounds over every parameter, at most
SEED = 0
RANKED = 10  # nDCG@10: the fitting looks at the first ten


@dataclass
class Judged:
    """One query with what is known to be relevant to it: `relevant` memory ids."""

    uid: str
    query: str
    filters: SearchFilters
    relevant: set[int]
    source: str  # "judged" or "labelled"


@dataclass
class Recorded:
    judged: Judged
    signals: HybridSignals


@dataclass
class TuneReport:
    strategy: str
    fusion: str
    folds: int
    judged_queries: int
    judgments: int
    labelled_queries: int
    dataset: str
    before_params: dict
    before_profile: str
    params: dict  # fitted on every query: the profile's
    per_fold: list[dict] = field(default_factory=list)  # fold, train, held out, params, before, after
    before: dict = field(default_factory=dict)  # held-out metrics, every fold's queries together
    after: dict = field(default_factory=dict)
    seconds: float = 0.0
    profile: ParameterProfile | None = None

    def source(self) -> dict:
        """What the profile keeps of where it came from."""
        return {
            "kind": "tune",
            "fusion": self.fusion,
            "folds": self.folds,
            "judged_queries": self.judged_queries,
            "judgments": self.judgments,
            "labelled_queries": self.labelled_queries,
            "dataset": self.dataset,
            "before_params": self.before_params,
            "before_profile": self.before_profile,
            "before": self.before,
            "after": self.after,
            "per_fold": self.per_fold,
            "seconds": self.seconds,
        }


def judged_queries() -> tuple[list[Judged], int]:
    """The analysts' judged queries that have a memory judged relevant, and how many judgments
    there are. A search's first query counts, with its user and filters; the latest judgment of a
    memory for one (user, query, filters) wins."""
    latest: dict[tuple, dict[int, bool]] = defaultdict(dict)
    filters_of: dict[tuple, SearchFilters] = {}
    judgments = 0
    rows = RelevanceFeedback.objects.order_by("created_at", "id").values_list(
        "memory_id", "relevant", "search__uid", "search__queries", "search__params"
    )
    for memory_id, relevant, uid, queries, params in rows.iterator():
        if not queries:
            continue
        judgments += 1
        filters = (params or {}).get("filters") or {}
        key = (uid, queries[0], json.dumps(filters, sort_keys=True))
        latest[key][memory_id] = relevant
        filters_of[key] = _filters(filters)
    found = [
        Judged(uid, query, filters_of[key], {m for m, relevant in judged.items() if relevant}, "judged")
        for key, judged in latest.items()
        for uid, query, _ in [key]
        if any(judged.values())
    ]
    return found, judgments


def _filters(logged: dict) -> SearchFilters:
    return SearchFilters(
        starts_at=parse_time(logged.get("starts_at")),
        ends_at=parse_time(logged.get("ends_at")),
        categories=list(logged.get("categories") or []),
        sources=list(logged.get("sources") or []),
    )


def record(judged: Judged) -> Recorded:
    request = SearchRequest(uid=judged.uid, queries=[judged.query], filters=judged.filters, strategy="hybrid")
    return Recorded(judged, hybrid_signals(request))


class _Scorer:
    """Each query's ranking under given parameters, from its recorded signals; the signals'
    contributions are computed once per setting of the parameters that are not weights."""

    def __init__(self, recorded: list[Recorded], fusion: str):
        self.recorded, self.fusion = recorded, fusion
        self._columns: dict[tuple, list[np.ndarray]] = {}

    def metrics(self, params: dict, indices: list[int]) -> list[dict[str, float]]:
        key = (params["snippets_per_memory"], params["rrf_k"] if self.fusion == "rrf" else None)
        if key not in self._columns:
            self._columns[key] = [hybrid_contributions(r.signals, params, self.fusion) for r in self.recorded]
        weights = np.array([params[weight_param(signal)] for signal in HYBRID_SIGNALS])
        out = []
        for i in indices:
            recorded = self.recorded[i]
            candidates = recorded.signals.candidates
            if not candidates:
                out.append(query_metrics([], recorded.judged.relevant))
                continue
            order = np.argsort(-(self._columns[key][i] @ weights), kind="stable")
            out.append(query_metrics([candidates[j] for j in order], recorded.judged.relevant))
        return out

    def ndcg(self, params: dict, indices: list[int]) -> float:
        rows = self.metrics(params, indices)
        return sum(m["ndcg@10"] for m in rows) / len(rows) if rows else 0.0


def fit(scorer: _Scorer, indices: list[int], *, strategy: str, start: dict) -> dict:
    """Coordinate ascent: each parameter in turn set to the value of its grid that raises the mean
    nDCG@10 of the `indices` queries most (ties keep the current value), until a round changes
    nothing (or PASSES rounds)."""
    tunable = [p for p in PARAMS[strategy] if p.grid and (not p.fusion or p.fusion == scorer.fusion)]
    best, best_score = dict(start), scorer.ndcg(start, indices)
    for _ in range(PASSES):
        changed = False
        for param in tunable:
            for value in param.grid:
                if value == best[param.name]:
                    continue
                candidate = {**best, param.name: value}
                if not any(candidate[weight_param(s)] for s in HYBRID_SIGNALS):
                    continue
                score = scorer.ndcg(candidate, indices)
                if score > best_score + 1e-12:
                    best, best_score, changed = candidate, score, True
        if not changed:
            break
    return resolve_params(strategy, best)


def cross_validate(recorded: list[Recorded], *, strategy: str, fusion: str, folds: int, start: dict) -> tuple:
    """(per fold, held-out metrics before, after, the parameters fitted on every query)."""
    if not 2 <= folds <= len(recorded):
        raise ValidationFailed(
            f"folds must be 2 to the number of queries ({len(recorded)})", details={"field": "folds"}
        )
    scorer = _Scorer(recorded, fusion)
    order = list(range(len(recorded)))
    random.Random(SEED).shuffle(order)
    dealt = [order[f::folds] for f in range(folds)]
    per_fold, before_rows, after_rows = [], [], []
    for f, held_out in enumerate(dealt):
        train = [i for g, part in enumerate(dealt) if g != f for i in part]
        params = fit(scorer, train, strategy=strategy, start=start)
        before, after = scorer.metrics(start, held_out), scorer.metrics(params, held_out)
        sources = [recorded[i].judged.source for i in held_out]
        before_rows += list(zip(sources, before))
        after_rows += list(zip(sources, after))
        per_fold.append(
            {
                "fold": f + 1,
                "train": len(train),
                "held_out": len(held_out),
                "params": params,
                "before": _mean(before),
                "after": _mean(after),
            }
        )
    everything = fit(scorer, order, strategy=strategy, start=start)
    return per_fold, aggregate(before_rows), aggregate(after_rows), everything


def _mean(rows: list[dict]) -> dict:
    return {m: round(sum(r[m] for r in rows) / len(rows), 4) if rows else 0.0 for m in METRICS}


def tune(
    *,
    strategy: str,
    folds: int = 5,
    labelled: Path | None = None,
    fusion: str = "sum",
    name: str = "",
    progress=None,
) -> TuneReport:
    """Fit `strategy`'s parameters to the judged (and labelled) queries with `folds`-fold
    cross-validation and store them as a new, inactive profile named `name`. ValidationFailed under
    settings.TUNE_MIN_QUERIES queries, for a strategy that cannot be tuned, or a name in use."""
    progress = progress or (lambda iterable, **kwargs: iterable)
    started = time.perf_counter()
    if strategy not in TUNABLE:
        raise ValidationFailed(f"tune fits {', '.join(TUNABLE)}; {strategy} cannot be tuned yet")
    name = name or f"{strategy}-tuned-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    if ParameterProfile.objects.filter(name=name).exists():
        raise ValidationFailed(f"a profile named {name!r} exists already", details={"field": "name"})
    judged, judgments = judged_queries()
    questions = load_dataset(labelled, LABELLED_SPLIT)[1] if labelled else []
    total, minimum = len(judged) + len(questions), settings.TUNE_MIN_QUERIES
    if total < minimum:
        raise ValidationFailed(
            f"too few judged queries to tune {strategy}: {len(judged)} (searches with a result judged relevant)"
            + (f" and {len(questions)} labelled" if labelled else "")
            + f", at least {minimum} are needed (TUNE_MIN_QUERIES). Judge more results on the search page"
            + ("" if labelled else ", or add a labelled set with --labelled")
            + ".",
            code="too_few_judgments",
        )
    if not 2 <= folds <= total:
        raise ValidationFailed(f"folds must be 2 to the number of queries ({total})", details={"field": "folds"})
    current = profile_for(strategy=strategy, profile=True)
    start = resolve_params(strategy, current.params if current else None)
    recorded = [record(j) for j in progress(judged, desc="recording judged queries", unit="query")]
    if labelled:
        with indexed_dataset(directory=labelled, split=LABELLED_SPLIT, progress=progress) as dataset:
            internal = {external: memory_id for memory_id, external in dataset.external.items()}
            for q in progress(dataset.questions, desc="recording labelled questions", unit="question"):
                relevant = {internal[e] for e in q["relevant_memory_ids"] if e in internal}
                query = Judged(EVAL_UID_PREFIX + q["uid"], q["question"], SearchFilters(), relevant, "labelled")
                recorded.append(record(query))
    per_fold, before, after, params = cross_validate(
        recorded, strategy=strategy, fusion=fusion, folds=folds, start=start
    )
    report = TuneReport(
        strategy=strategy,
        fusion=fusion,
        folds=folds,
        judged_queries=len(judged),
        judgments=judgments,
        labelled_queries=len(questions),
        dataset=f"{labelled} ({LABELLED_SPLIT})" if labelled else "",
        before_params=start,
        before_profile=current.name if current else "",
        params=params,
        per_fold=per_fold,
        before=before,
        after=after,
    )
    report.seconds = round(time.perf_counter() - started, 2)
    report.profile = profile_create(name=name, strategy=strategy, params=params, source=report.source())
    return report
