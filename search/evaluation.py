"""How well strategies find the right memory: on a labelled data set, and from analysts' judgments.

Metrics (binary relevance): recall@k = the share of queries with at least one relevant memory in
the top k; MRR over the whole ranking; nDCG@10. A data set is a folder shaped like LoCoMo's
(`memories.jsonl`, `queries.jsonl` with `relevant_memory_ids`); it is loaded through the real
pipeline into an isolated store (its own namespace and uids, in a transaction that is rolled back),
so nothing of it stays behind.
"""

import json
import math
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.test.utils import override_settings

from memories.index_versions import index_version_isolated_parts
from memories.parts.embedders import get_embedder
from memories.parts.versions import using_version
from memories.processing import memory_process_many
from memories.services import memory_create_many, parse_time
from memories.text import QUESTION_WORDS, TERM

from .models import EvalRun, RelevanceFeedback, SearchLog
from .services import search_memories

METRICS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")
EVAL_NAMESPACE = "eval"
EVAL_UID_PREFIX = "eval:"
LOAD_BATCH = 32


def query_metrics(ranking: list, relevant: set) -> dict[str, float]:
    hits = [item in relevant for item in ranking]
    first = next((i for i, hit in enumerate(hits) if hit), None)
    dcg = sum(1 / math.log2(i + 2) for i, hit in enumerate(hits[:10]) if hit)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return {
        "recall@1": float(first is not None and first < 1),
        "recall@5": float(first is not None and first < 5),
        "recall@10": float(first is not None and first < 10),
        "mrr": 1 / (first + 1) if first is not None else 0.0,
        "ndcg@10": dcg / ideal if ideal else 0.0,
    }


def aggregate(rows: list[tuple[str, dict[str, float]]]) -> dict:
    """Mean metrics overall and per category: rows are (category, per-query metrics)."""

    def mean(items: list[dict]) -> dict:
        return {
            "queries": len(items),
            **{m: round(sum(i[m] for i in items) / len(items), 4) if items else 0.0 for m in METRICS},
        }

    by_category: dict[str, list[dict]] = defaultdict(list)
    for category, values in rows:
        by_category[category].append(values)
    return {
        **mean([values for _, values in rows]),
        "by_category": {name: mean(items) for name, items in sorted(by_category.items())},
    }


def load_dataset(directory: Path, split: str) -> tuple[list[dict], list[dict]]:
    """The memories and the answerable questions (adversarial ones left out) of a split."""

    def lines(name: str) -> list[dict]:
        return [json.loads(line) for line in (directory / name).read_text().splitlines() if line.strip()]

    memories = [m for m in lines("memories.jsonl") if split == "all" or m.get("split") == split]
    questions = [
        q for q in lines("queries.jsonl") if (split == "all" or q.get("split") == split) and not q.get("adversarial")
    ]
    return memories, questions


def query_variants(question: str) -> list[str]:
    """For multi_query on a data set of single questions: the question, and its content words."""
    words = TERM.findall(question)
    keywords = " ".join(w for w in words if w.lower() not in QUESTION_WORDS)
    return [question, keywords] if keywords and keywords != question else [question]


@dataclass
class IndexedDataset:
    """A data set's split loaded into the isolated store: its questions, and each stored memory's id
    in the data set (its external id)."""

    questions: list[dict]
    external: dict[int, str]
    index_version: str = ""  # the index version whose embedder and chunking loaded it ("": the active's)


@contextmanager
def indexed_dataset(
    *, directory: Path, split: str, progress=None, index_version: str | None = None
) -> Iterator[IndexedDataset]:
    """Load the split through the pipeline into an isolated store (its own namespace and uids), for
    the body of the `with`; then roll it all back: the data set leaves nothing behind.
    `index_version` (e.g. "v2"): with that version's embedder and chunking (default: the active one's)."""
    progress = progress or (lambda iterable, **kwargs: iterable)
    memories, questions = load_dataset(directory, split)
    with (
        override_settings(VECTOR_STORE="local", VECTOR_NAMESPACE=EVAL_NAMESPACE),
        transaction.atomic(),
        using_version(index_version_isolated_parts(name=index_version, namespace=EVAL_NAMESPACE)) as parts,
    ):
        created = memory_create_many(
            items=[
                {
                    "uid": EVAL_UID_PREFIX + m["uid"],
                    "transcript": m["transcript"],
                    "external_id": m["memory_id"],
                    "source": "external_integration",
                    "created_at": parse_time(m.get("created_at")),
                }
                for m in memories
            ],
            enqueue=False,
        )
        ids = [m.id for m in created]
        for start in progress(range(0, len(ids), LOAD_BATCH), desc="indexing the data set", unit="batch"):
            outcomes = memory_process_many(memory_ids=ids[start : start + LOAD_BATCH])
            if set(outcomes.values()) != {"indexed"}:
                raise RuntimeError(f"the data set could not be indexed: {outcomes}")
        try:
            yield IndexedDataset(questions, {m.id: m.external_id for m in created}, parts.version or "")
        finally:
            transaction.set_rollback(True)


def evaluate_dataset(
    *,
    directory: Path,
    split: str,
    strategies: list[str],
    profile: str | bool = True,
    index_version: str = "",
    progress=None,
) -> dict[str, dict]:
    """Load the split through the pipeline into an isolated store, run every question against its
    own user with each strategy (its parameters: `profile` as search_memories takes it, by default
    its active profile), store an EvalRun per strategy (with the parameters and profile used) and
    return the metrics."""
    progress = progress or (lambda iterable, **kwargs: iterable)
    results: dict[str, dict] = {}
    timings: dict[str, float] = {}
    used: dict[str, tuple[dict, str]] = {}
    with indexed_dataset(directory=directory, split=split, progress=progress, index_version=index_version) as dataset:
        for strategy in strategies:
            started = time.perf_counter()
            rows = []
            for q in progress(dataset.questions, desc=strategy, unit="question"):
                queries = query_variants(q["question"]) if strategy == "multi_query" else [q["question"]]
                found = search_memories(
                    uid=EVAL_UID_PREFIX + q["uid"],
                    queries=queries,
                    k=100,
                    strategy=strategy,
                    profile=profile,
                    log=False,
                )
                used[strategy] = (found.params, found.profile)
                ranking = [dataset.external[h.memory.id] for h in found.hits]
                rows.append(
                    (
                        q.get("category_name") or str(q.get("category")),
                        query_metrics(ranking, set(q["relevant_memory_ids"])),
                    )
                )
            results[strategy] = aggregate(rows)
            timings[strategy] = time.perf_counter() - started
        model = get_embedder().model
    for strategy, metrics in results.items():
        params, profile_name = used.get(strategy, ({}, ""))
        EvalRun.objects.create(
            dataset=str(directory),
            split=split,
            strategy=strategy,
            params=params,
            profile=profile_name,
            index_version=dataset.index_version,
            metrics=metrics,
            embedding_model=model,
            seconds=round(timings[strategy], 2),
        )
    return results


def feedback_metrics() -> dict[str, dict]:
    """The same metrics from analysts' judgments, per strategy: each judged search counts, its
    results in their order, the memories judged relevant as the relevant ones."""
    judged: dict[int, set[int]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for search_id, memory_id, relevant, strategy in RelevanceFeedback.objects.values_list(
        "search_id", "memory_id", "relevant", "search__strategy"
    ):
        counts[strategy] += 1
        if relevant:
            judged[search_id].add(memory_id)
    rows: dict[str, list] = defaultdict(list)
    for search in SearchLog.objects.filter(id__in=list(judged)).only("strategy", "results"):
        ranking = [r["memory_id"] for r in search.results]
        rows[search.strategy].append(("judged", query_metrics(ranking, judged[search.id])))
    return {
        strategy: {
            **(
                {k: v for k, v in aggregate(rows[strategy]).items() if k != "by_category"}
                if rows.get(strategy)
                else {"queries": 0}
            ),
            "judgments": counts[strategy],
        }
        for strategy in sorted(set(counts) | set(rows))
    }
