"""A heavy user's BM25 index in a process that has no copy of it: the code before snapshots (`--old
REV`: built from the database) against this tree's (the user's snapshot loaded and brought up to
date), and query scoring old against new, side by side in one run.

    .venv/bin/python bench/lexical_snapshot.py --database-url postgres://.../omi_bench [--sizes 20000]
        [--old c9367c3] [--rounds 10] [--repeat 5]

Users as bench/heavy_indexing.py loads them (`heavy-{n}`: LoCoMo slices, 6 to 20 turns; loaded when
missing). Per size, in this process (scipy, bm25s and PyStemmer imported before the clock starts:
their import in a fresh process, the same for both codes, is printed apart), each "first use" is
`lexical_index` and the first query scored, after the process's copies are dropped:

- new, no snapshot: the whole build (what a process pays once when there is none), then the
  snapshot saved (`snapshot_write`, here rather than in the writer thread: its time and size);
- new, the snapshot loaded when (a) nothing changed since, (b) another process then added a memory,
  reprocessed one and deleted one, (c) 64 more memories were reprocessed (SNAPSHOT_LAG: the most a
  snapshot lags behind a process that applies changes before it saves one); each the median of
  `--repeat` times, as is the snapshot's read (fetch and decode); (c) again in a new Python process
  each time (Django set up, then the clock: the imports of scipy, bm25s and PyStemmer included);
- old: REV's `search/lexical.py` (read from git) builds the index from the database, at (c)'s state;
- query scoring p50/p95 of the 8 bench queries x `--rounds`, old against new over that same state;
- a change applied by a process that has a copy (a memory reprocessed; the first query after it),
  old against new (the median of `--repeat` changes).

Every new index must score as the old one or a build does (asserted, to the bit). The bench holds
the writer back (SNAPSHOT_LAG raised), so no save runs during a timing.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import time

import numpy as np
from common import ROOT, database_label, machine, percentiles, setup_django
from heavy_indexing import DIM, QUERIES, add_memory, load, transcripts


def old_module(rev: str):
    """REV's search/lexical.py as a module of its own (its `_cache` too), over this tree's models."""
    source = subprocess.run(
        ["git", "show", f"{rev}:search/lexical.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("bench_old_lexical", loader=None))
    exec(compile(source, f"{rev}:search/lexical.py", "exec"), module.__dict__)  # noqa: S102 - our own code
    return module


def first_use(module, uid: str, repeat: int = 1) -> tuple[float, object]:
    """Seconds for a process without a copy: the index, and one query scored with it (the median
    of `repeat` times, the process's copy dropped before each)."""
    from memories.parts.vectorstores import SearchFilters

    seconds = []
    for _ in range(repeat):
        module._cache.clear()
        started = time.perf_counter()
        index = module.lexical_index(uid)
        index.scores(QUERIES[0], SearchFilters())
        seconds.append(time.perf_counter() - started)
    return sorted(seconds)[len(seconds) // 2], index


def all_scores(index) -> list:
    from memories.parts.vectorstores import SearchFilters

    out = []
    for query in QUERIES:
        ids, signals = index.scores(query, SearchFilters())
        out.append((ids.tolist(), signals["lexical"].tolist(), signals["exchanges"].tolist()))
    return out


def scoring(old_index, new_index, rounds: int) -> tuple[dict, dict]:
    from memories.parts.vectorstores import SearchFilters

    old_ms, new_ms = [], []
    for _ in range(rounds):
        for query in QUERIES:
            for index, samples in ((old_index, old_ms), (new_index, new_ms)):
                started = time.perf_counter()
                index.scores(query, SearchFilters())
                samples.append((time.perf_counter() - started) * 1000)
    return percentiles(old_ms), percentiles(new_ms)


def change_applied(old, uid: str, memory_ids: list[int]) -> tuple[float, float]:
    """Seconds for a process that has a copy to apply another process's change (a memory
    reprocessed) and score the first query after it, old and new (medians, one memory each)."""
    from django.utils import timezone

    from memories.models import Memory
    from memories.parts.vectorstores import SearchFilters
    from search import lexical

    seconds: dict = {old: [], lexical: []}
    for memory_id in memory_ids:
        Memory.objects.filter(id=memory_id).update(indexed_at=timezone.now())
        for module, samples in seconds.items():
            started = time.perf_counter()
            module.lexical_index(uid).scores(QUERIES[0], SearchFilters())
            samples.append(time.perf_counter() - started)
    return tuple(sorted(samples)[len(samples) // 2] for samples in seconds.values())


def fresh_process_s(uid: str, database_url: str) -> float:
    """Seconds of the first use in a new Python process (Django set up first; the imports the index
    needs included)."""
    command = [sys.executable, __file__, "--first-use", uid, "--database-url", database_url]
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1])


def bench(uid: str, old, rounds: int, repeat: int, model: str, database_url: str) -> dict:
    from django.utils import timezone

    from memories.models import Memory
    from search import lexical
    from search.models import LexicalSnapshot

    figures = {}
    LexicalSnapshot.objects.filter(uid=uid).delete()
    figures["build_s"], built = first_use(lexical, uid)
    started = time.perf_counter()
    assert lexical.snapshot_write(uid=uid, index=built)
    figures["write_s"] = time.perf_counter() - started
    figures["snapshot_mb"] = len(LexicalSnapshot.objects.get(uid=uid).data) / 2**20
    figures["memories"], figures["exchanges"] = len(built.memory_ids), len(built.exchanges.owners)
    reads = []
    for _ in range(repeat):
        started = time.perf_counter()
        lexical.snapshot_read(uid)
        reads.append(time.perf_counter() - started)
    figures["read_s"] = sorted(reads)[repeat // 2]

    figures["unchanged_s"], loaded = first_use(lexical, uid, repeat)
    assert all_scores(loaded) == all_scores(built)
    # Another process: a memory added, one reprocessed with a new text, one deleted.
    ids = built.memory_ids.tolist()
    added = add_memory(uid, np.ones(DIM) / np.sqrt(DIM), transcripts(1, seed=99)[0], model)
    Memory.objects.filter(id=ids[1]).update(transcript=transcripts(1, seed=98)[0], indexed_at=timezone.now())
    Memory.objects.filter(id=ids[2]).update(searchable=False)
    try:
        figures["three_s"], _ = first_use(lexical, uid, repeat)
        Memory.objects.filter(id__in=ids[3 : 3 + 64]).update(indexed_at=timezone.now())  # reprocessed
        figures["lag_s"], caught_up = first_use(lexical, uid, repeat)
        figures["fresh_s"] = sorted(fresh_process_s(uid, database_url) for _ in range(repeat))[repeat // 2]
        figures["old_s"], old_index = first_use(old, uid)
        assert all_scores(caught_up) == all_scores(old_index)
        figures["query_old"], figures["query_new"] = scoring(old_index, caught_up, rounds)
        figures["change_old"], figures["change_new"] = change_applied(old, uid, ids[3 : 3 + repeat])
    finally:
        Memory.objects.filter(id=added.id).delete()
        Memory.objects.filter(id=ids[2]).update(searchable=True)
    return figures


def imports_s() -> float:
    """A fresh Python's import of what the index needs beyond Django and numpy, seconds."""
    code = "import time, numpy; t = time.perf_counter(); import scipy.sparse, bm25s, Stemmer; "
    code += "print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000")
    parser.add_argument("--old", default="c9367c3", help="the code before snapshots")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the 8 queries for the scoring figures")
    parser.add_argument("--repeat", type=int, default=5, help="times each new first use is measured (median)")
    parser.add_argument("--database-url")
    parser.add_argument("--first-use", help=argparse.SUPPRESS)  # a uid: its first use, in this new process
    args = parser.parse_args()
    database_url = setup_django(args.database_url)
    from memories.models import Memory
    from memories.parts.embedders import get_embedder
    from search import lexical

    if args.first_use:
        lexical.SNAPSHOT_LAG = 10**9  # no save by the writer thread
        print(first_use(lexical, args.first_use)[0])
        return

    model = get_embedder().model
    for n in [int(s) for s in args.sizes.split(",")]:
        if Memory.objects.filter(uid=f"heavy-{n}", searchable=True).count() != n:
            load(f"heavy-{n}", n, seed=n, model=model)
    lexical._sparse(), lexical._bm25s(), lexical._stemmer()  # imported before the clock starts
    lexical.SNAPSHOT_LAG = 10**9  # no save by the writer thread during a timing
    old = old_module(args.old)
    print(
        f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; database: {database_label(database_url)}; "
        f"old: {args.old}"
    )
    print(f"a fresh process's import of scipy.sparse, bm25s and PyStemmer: {imports_s():.2f} s (not in the figures)")
    print(
        f"\n{'memories':>9} {'exchanges':>10} | first use s: {'old build':>9} {'new build':>9} {'snapshot':>9} "
        f"{'+3 changed':>10} {'+67 changed':>11} {'+67, new process':>16} | {'read s':>6} {'write s':>7} {'MB':>5} | "
        f"query ms: {'old p50':>7} {'old p95':>7} {'new p50':>7} {'new p95':>7} | change s: {'old':>5} {'new':>5}"
    )
    for n in [int(s) for s in args.sizes.split(",")]:
        f = bench(f"heavy-{n}", old, args.rounds, args.repeat, model, database_url)
        print(
            f"{f['memories']:>9,} {f['exchanges']:>10,} | {'':13}{f['old_s']:>9.2f} {f['build_s']:>9.2f} "
            f"{f['unchanged_s']:>9.3f} {f['three_s']:>10.3f} {f['lag_s']:>11.3f} {f['fresh_s']:>16.3f} | "
            f"{f['read_s']:>6.3f} {f['write_s']:>7.2f} {f['snapshot_mb']:>5.1f} | {'':10}{f['query_old']['p50']:>7.2f} "
            f"{f['query_old']['p95']:>7.2f} {f['query_new']['p50']:>7.2f} {f['query_new']['p95']:>7.2f} | {'':10}"
            f"{f['change_old']:>5.3f} {f['change_new']:>5.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
