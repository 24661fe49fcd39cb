"""Indexing a heavy user's new memory: the duplicate check, the BM25 index and the search log,
each as it was (old) against as it is (new), for users of 1,000, 5,000 and 20,000 memories.

    .venv/bin/python bench/heavy_indexing.py --database-url postgres://.../omi_bench [--sizes 1000,5000,20000]
        [--parts duplicates,lexical,logging] [--checks 20] [--logs 300] [--reload]

Loads one user per size (`heavy-{n}`): indexed, searchable memories whose transcripts are slices of
the LoCoMo conversations (../shared/data/locomo/memories.jsonl, 6 to 20 turns each) and whose own
vectors are bench/duplicates.py's synthetic unit vectors (384 dims, topics, planted near-copies).
A second run reuses them (`--reload` to rebuild). Then, per size:

- duplicate check of one new memory (`duplicate_check_memory`, pairs written included): old, the
  user's whole matrix read from the database each time; new, the process's kept matrix brought up
  to date with the rows written since (`memory_vectors_similar`); "cold" is its first check in a
  process (a whole read). Each of `--checks` rounds adds one memory (every
  other one a near-copy of an existing memory) and times both on it; both must find the same pairs.
- BM25: old, the index built from the database (read, tokenize, bm25s) as every process did after
  any change of the user; new, the first build in a process, then one change applied (a memory
  added, one reprocessed, one deleted: rows changed by "another process"), and query scoring
  old (bm25s, precomputed) against new (at query time), both indexes over the same memories.
- search log (PostgreSQL): the cost a search pays to log itself, old (`SearchLog.objects.create`)
  against new (an id from the sequence, the row queued for the background writer), p50/p95 over
  `--logs` logs; then the queue is flushed and every row is checked to be there.
"""

import argparse
import json
import random
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from common import ROOT, database_label, machine, percentiles, setup_django
from duplicates import DIM, own_vector, vectors

LOCOMO = ROOT.parent / "shared" / "data" / "locomo" / "memories.jsonl"
QUERIES = [
    "when did caroline go to the support group",
    "what did melanie paint",
    "adoption agency interview",
    "camping trip with the kids",
    "charity race for mental health",
    "pottery class",
    "what books does she read",
    "new job and the promotion",
]


def transcripts(n: int, seed: int) -> list[str]:
    path = LOCOMO if LOCOMO.exists() else Path("/work/shared/data/locomo/memories.jsonl")
    conversations = [json.loads(line)["transcript"].splitlines() for line in path.open()]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        turns = rng.choice(conversations)
        start = rng.randrange(max(1, len(turns) - 20))
        out.append("\n".join(turns[start : start + rng.randint(6, 20)]))
    return out


def load(uid: str, n: int, seed: int, model: str) -> None:
    from django.db import transaction
    from django.utils import timezone

    from memories.models import Memory, MemoryVector

    matrix, _ = vectors(n, topics=60, planted=max(n // 100, 1), seed=seed)
    texts = transcripts(n, seed)
    now = timezone.now()
    Memory.objects.filter(uid=uid).delete()
    for start in range(0, n, 2000):
        with transaction.atomic():
            memories = Memory.objects.bulk_create(
                Memory(
                    uid=uid,
                    transcript=texts[i],
                    title=f"Conversation {i}",
                    overview=texts[i].splitlines()[0][:200],
                    created_at=now - timedelta(hours=n - i),
                    status=Memory.Status.INDEXED,
                    searchable=True,
                    indexed_at=now,
                    embedding_model=model,
                    embedding_dim=DIM,
                )
                for i in range(start, min(n, start + 2000))
            )
            MemoryVector.objects.bulk_create(own_vector(m, matrix[start + i], model) for i, m in enumerate(memories))


def add_memory(uid: str, vector: np.ndarray, text: str, model: str):
    from django.utils import timezone

    from memories.models import Memory

    memory = Memory.objects.create(
        uid=uid,
        transcript=text,
        title="A new conversation",
        status=Memory.Status.INDEXED,
        searchable=True,
        indexed_at=timezone.now(),
        embedding_model=model,
        embedding_dim=DIM,
    )
    own_vector(memory, vector, model).save()
    return memory


def old_matrix(*, uid: str, memory_ids=None):
    """The duplicate check's read before issue 17: the user's whole matrix from the database."""
    from memories.models import Memory, MemoryVector
    from memories.parts.embedders import get_embedder

    rows = MemoryVector.objects.filter(
        memory__uid=uid, memory__status=Memory.Status.INDEXED, position=0, model=get_embedder().model
    )
    pairs = list(rows.order_by("memory_id").values_list("memory_id", "vector"))
    matrix = np.vstack([np.frombuffer(bytes(vector), dtype="<f4") for _, vector in pairs])
    return [m for m, _ in pairs], matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def old_check(memory_id: int, threshold: float) -> set[tuple[int, int]]:
    """The duplicate check before issue 17: the whole matrix read, one product, pairs saved."""
    from memories.models import Memory
    from search.analysis.duplicates import _save_pairs

    uid = Memory.objects.get(id=memory_id).uid
    ids, matrix = old_matrix(uid=uid)
    row = ids.index(memory_id)
    scores = matrix[row] @ matrix.T
    found = {
        (min(memory_id, ids[c]), max(memory_id, ids[c])): float(scores[c]) for c in np.flatnonzero(scores >= threshold)
    }
    found.pop((memory_id, memory_id), None)
    _save_pairs(uid, found)
    return set(found)


def bench_duplicates(uid: str, checks: int, model: str) -> dict:
    from django.conf import settings

    from memories import selectors
    from memories.models import Memory
    from search.analysis.duplicates import duplicate_check_memory
    from search.models import DuplicatePair

    ids, matrix = selectors.memory_vectors_matrix(uid=uid, memory_ids=None)
    rng = np.random.default_rng(11)
    cold_memory = add_memory(uid, matrix[0], "Speaker 0: a new one.", model)
    selectors._matrices = None  # a process that never read this user
    started = time.perf_counter()
    duplicate_check_memory(memory_id=cold_memory.id)
    cold = (time.perf_counter() - started) * 1000
    old, new, added = [], [], [cold_memory.id]
    for round_ in range(checks):
        base = matrix[int(rng.integers(len(ids)))]
        noise = rng.standard_normal(DIM) * (0.015 if round_ % 2 else 1.0)
        memory = add_memory(uid, (base + noise) / np.linalg.norm(base + noise), "Speaker 0: a new one.", model)
        added.append(memory.id)
        started = time.perf_counter()
        old_found = old_check(memory.id, settings.DUPLICATE_THRESHOLD)
        old.append((time.perf_counter() - started) * 1000)
        DuplicatePair.objects.filter(memory_b_id=memory.id).delete()
        started = time.perf_counter()
        duplicate_check_memory(memory_id=memory.id)
        new.append((time.perf_counter() - started) * 1000)
        new_found = set(DuplicatePair.objects.filter(memory_b_id=memory.id).values_list("memory_a_id", "memory_b_id"))
        assert old_found == new_found, (old_found, new_found)
    pairs = DuplicatePair.objects.filter(memory_b_id__in=added).count()
    Memory.objects.filter(id__in=added).delete()
    return {"old": percentiles(old), "new": percentiles(new), "cold_ms": cold, "pairs": pairs}


def old_lexical_build(uid: str) -> float:
    """The BM25 rebuild before issue 17: read, tokenize and two bm25s indexes. Seconds."""
    from memories.models import Memory
    from search import lexical

    started = time.perf_counter()
    rows = list(
        Memory.objects.filter(uid=uid, searchable=True)
        .order_by("id")
        .values_list("id", "created_at", "category", "source", "title", "overview", "transcript")
    )
    bm25s = lexical._bm25s()
    for texts in (
        [f"{r[4]}\n{r[5]}\n{r[6]}" for r in rows],
        [piece for r in rows for piece in lexical._exchanges(r[6])],
    ):
        index = bm25s.BM25()
        index.index(lexical._tokenize(texts), show_progress=False)
    return time.perf_counter() - started


def bench_lexical(uid: str, model: str) -> dict:
    from django.utils import timezone

    from memories.models import Memory
    from search import lexical
    from search.models import LexicalSnapshot

    figures = {"old_rebuild_s": old_lexical_build(uid)}
    LexicalSnapshot.objects.filter(uid=uid).delete()  # a first build (bench/lexical_snapshot.py: the snapshot's load)
    lexical.SNAPSHOT_LAG = 10**9  # no save by the writer thread during the timings
    lexical._cache.clear()
    started = time.perf_counter()
    before = lexical.lexical_index(uid)
    figures["new_first_build_s"] = time.perf_counter() - started
    figures["memories"] = len(before.memory_ids)
    figures["exchanges"] = len(before.exchanges.owners)
    # Another process's changes: one memory added, one reprocessed (new text), one deleted.
    text = transcripts(1, seed=99)[0]
    added = add_memory(uid, np.ones(DIM) / np.sqrt(DIM), text, model)
    ids = before.memory_ids.tolist()
    Memory.objects.filter(id=ids[1]).update(transcript=text, indexed_at=timezone.now())
    Memory.objects.filter(id=ids[2]).update(searchable=False)
    started = time.perf_counter()
    after = lexical.lexical_index(uid)
    figures["new_change_ms"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    lexical.lexical_index(uid)
    figures["new_unchanged_ms"] = (time.perf_counter() - started) * 1000
    # Query scoring: bm25s (precomputed) over the same memories against ours (at query time).
    rows = list(
        Memory.objects.filter(id__in=after.memory_ids.tolist())
        .order_by("id")
        .values_list("title", "overview", "transcript")
    )
    bm25s = lexical._bm25s()
    old_texts = bm25s.BM25()
    old_texts.index(lexical._tokenize([f"{t}\n{o}\n{x}" for t, o, x in rows]), show_progress=False)
    old_exchanges = bm25s.BM25()
    pieces = [lexical._exchanges(x) for _, _, x in rows]
    starts = np.cumsum([0] + [len(p) for p in pieces[:-1]])
    old_exchanges.index(lexical._tokenize([p for ps in pieces for p in ps]), show_progress=False)
    from memories.parts.vectorstores import SearchFilters

    old_ms, new_ms = [], []
    for _ in range(5):
        for query in QUERIES:
            tokens = lexical._tokenize([query])[0]
            started = time.perf_counter()
            lexical_scores = np.asarray(old_texts.get_scores(tokens))
            exchange_scores = np.maximum.reduceat(np.asarray(old_exchanges.get_scores(tokens)), starts)
            old_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            _, signals = after.scores(query, SearchFilters())
            new_ms.append((time.perf_counter() - started) * 1000)
            assert np.allclose(signals["lexical"], lexical_scores, rtol=1e-4, atol=1e-5)
            assert np.allclose(signals["exchanges"], exchange_scores, rtol=1e-4, atol=1e-5)
    figures["query_old"] = percentiles(old_ms)
    figures["query_new"] = percentiles(new_ms)
    Memory.objects.filter(id=added.id).delete()
    Memory.objects.filter(id=ids[2]).update(searchable=True)
    return figures


def bench_logging(count: int) -> dict:
    from django.conf import settings

    from search import search_log
    from search.models import SearchLog

    def entry(i: int) -> SearchLog:
        results = [{"memory_id": 1000 + j, "score": 0.5, "weak": False} for j in range(5)]
        params = {"k": 5, "half_life_days": 30.0, "fusion": "sum", "relevance_floor": 0.35, "filters": {}}
        return SearchLog(
            uid="heavy-log", queries=[f"query {i}"], strategy="hybrid", params=params, results=results, latency_ms=9.0
        )

    settings.SEARCH_LOG_BACKGROUND = False
    old, new, ids = [], [], []
    for i in range(count):
        started = time.perf_counter()
        search_log.search_log_write(entry(i))
        old.append((time.perf_counter() - started) * 1000)
    settings.SEARCH_LOG_BACKGROUND = True
    for i in range(count):
        started = time.perf_counter()
        ids.append(search_log.search_log_write(entry(i)))
        new.append((time.perf_counter() - started) * 1000)
        time.sleep(0.002)  # searches arrive one after another, not all at once
    search_log.writer.flush()
    written = SearchLog.objects.filter(id__in=ids).count()
    SearchLog.objects.filter(uid="heavy-log").delete()
    return {"old": percentiles(old), "new": percentiles(new), "written": written, "queued": len(ids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--checks", type=int, default=20, help="duplicate checks per size")
    parser.add_argument("--logs", type=int, default=300)
    parser.add_argument("--parts", default="duplicates,lexical,logging", help="which of them to run")
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    database_url = setup_django(args.database_url)
    from memories import selectors
    from memories.models import Memory
    from memories.parts.embedders import get_embedder

    # This process is the only writer: every row it reads is settled at once (a process past its
    # first SETTLE_SECONDS, with no transaction of another process in flight).
    selectors.SETTLE_SECONDS = 0.0
    model = get_embedder().model
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        uid = f"heavy-{n}"
        if args.reload or Memory.objects.filter(uid=uid, searchable=True).count() != n:
            started = time.perf_counter()
            load(uid, n, seed=n, model=model)
            print(f"loaded {n} memories of {uid} in {time.perf_counter() - started:.1f} s", flush=True)
    print(f"machine: {machine()}; database: {database_label(database_url)}")
    if "duplicates" in parts:
        print("\nduplicate check of one new memory (ms; pairs written included)")
        print(
            f"{'memories':>9} {'old p50':>9} {'old p95':>9} {'new p50':>9} {'new p95':>9} "
            f"{'new, cold':>10} {'pairs':>6}"
        )
    for n in sizes if "duplicates" in parts else []:
        d = bench_duplicates(f"heavy-{n}", args.checks, model)
        print(
            f"{n:>9,} {d['old']['p50']:>9.1f} {d['old']['p95']:>9.1f} {d['new']['p50']:>9.1f} "
            f"{d['new']['p95']:>9.1f} {d['cold_ms']:>10.1f} {d['pairs']:>6}",
            flush=True,
        )
    if "lexical" in parts:
        print("\nBM25 index of one user: rebuild (old) against first build and one change applied (new)")
        print(
            f"{'memories':>9} {'exchanges':>10} {'old rebuild s':>14} {'new first s':>12} {'change ms':>10} "
            f"{'same ms':>8} {'query old p50':>14} {'query new p50':>14}"
        )
        for n in sizes:
            f = bench_lexical(f"heavy-{n}", model)
            print(
                f"{f['memories']:>9,} {f['exchanges']:>10,} {f['old_rebuild_s']:>14.2f} "
                f"{f['new_first_build_s']:>12.2f} {f['new_change_ms']:>10.1f} {f['new_unchanged_ms']:>8.1f} "
                f"{f['query_old']['p50']:>14.2f} {f['query_new']['p50']:>14.2f}",
                flush=True,
            )
    if "logging" in parts and database_url.startswith("postgres"):
        g = bench_logging(args.logs)
        print(f"\nlogging one search (ms), {args.logs} logs each")
        print(f"old, insert in the search:   p50 {g['old']['p50']:.3f}  p95 {g['old']['p95']:.3f}")
        print(f"new, id + queue:             p50 {g['new']['p50']:.3f}  p95 {g['new']['p95']:.3f}")
        print(f"written by the background writer: {g['written']} of {g['queued']}")


if __name__ == "__main__":
    main()
