"""Where a heavy user's search goes, phase by phase: p50/p95 per strategy, old code beside new.

    .venv/bin/python bench/search_phases.py --database-url URL [--uid grow-3-20000] [--queries 40]
        [--old REV] [--redis-url URL]

Runs searches as a service call (`search_memories`, logged, k=10), each a question not asked
before (cold query cache), for one user of the growth bench (`bench/search.py --sizes`), and
times, per search: the whole call; the query's embedding (the embedder's caches included); the
store's scoring (its own database reads included); BM25 (`lexical_index` and its scores: hybrid);
the other database statements, at the driver, and their count; the rest is Python. "outside" is
the whole call less the store and BM25: what search adds around them. `--old REV` measures REV's
code too, in a process of its own, on the same data, the two sides printed together.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, database_label, machine, percentiles, setup_django

STRATEGY_NAMES = ("semantic", "time_weighted", "multi_query", "hybrid")
PHASES = ("total", "outside", "embed", "store", "bm25", "db", "rest")


class Phases:
    """Time spent inside the wrapped calls, by phase; statements outside them counted as `db`."""

    def __init__(self):
        self.spent: dict[str, float] = {}
        self.statements = 0
        self.inside: str | None = None

    def wrap(self, owner, name: str, phase: str) -> None:
        function = getattr(owner, name)

        def timed(*args, **kwargs):
            if self.inside is not None:  # nested (query calls query_many): counted once
                return function(*args, **kwargs)
            self.inside = phase
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(phase, started)
                self.inside = None

        setattr(owner, name, timed)

    def add(self, phase: str, started: float) -> None:
        self.spent[phase] = self.spent.get(phase, 0.0) + (time.perf_counter() - started) * 1000

    def statement(self, execute, sql, params, many, context):
        if self.inside is not None:
            return execute(sql, params, many, context)
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.add("db", started)
            self.statements += 1


def measure(uid: str, queries_n: int, k: int) -> dict:
    """This tree's phases for `queries_n` cold searches of `uid` per strategy (run in its own process)."""
    from django.db import connection

    from memories.parts.embedders import get_embedder
    from memories.parts.vectorstores.local import LocalVectorStore
    from search import strategies
    from search.services import search_memories

    phases = Phases()
    embedder = get_embedder()
    for name in ("embed_documents", "embed_query"):
        phases.wrap(type(embedder), name, "embed")
    for name in ("query_vectors", "query_many", "query"):
        phases.wrap(LocalVectorStore, name, "store")
    lexical_index, classes = strategies.lexical_index, set()

    def lexical_index_scored(*args, **kwargs):
        index = lexical_index(*args, **kwargs)  # its version check and any update count as BM25
        if type(index) not in classes:
            classes.add(type(index))
            phases.wrap(type(index), "scores", "bm25")
        return index

    strategies.lexical_index = lexical_index_scored
    phases.wrap(strategies, "lexical_index", "bm25")
    embedder.embed_query("warm up the model")
    for strategy in STRATEGY_NAMES:  # the store's copy of the user, the BM25 index: not what is measured
        search_memories(uid=uid, queries=[f"a first {strategy} question"], k=k, strategy=strategy)
    out: dict = {}
    for strategy in STRATEGY_NAMES:
        samples: dict[str, list[float]] = {phase: [] for phase in PHASES}
        statements = []
        for i in range(queries_n):
            text = f"what did we say about the {strategy} plan number {i} ({os.getpid()}, {time.time()})"
            texts = [text, text.split(" ", 3)[-1]] if strategy == "multi_query" else [text]
            phases.spent, phases.statements = {}, 0
            with connection.execute_wrapper(phases.statement):
                started = time.perf_counter()
                search_memories(uid=uid, queries=texts, k=k, strategy=strategy)
                total = (time.perf_counter() - started) * 1000
            spent = {phase: phases.spent.get(phase, 0.0) for phase in ("embed", "store", "bm25", "db")}
            spent["total"] = total
            spent["outside"] = total - spent["store"] - spent["bm25"]
            spent["rest"] = spent["outside"] - spent["embed"] - spent["db"]
            for phase in PHASES:
                samples[phase].append(spent[phase])
            statements.append(phases.statements)
        out[strategy] = {phase: percentiles(values) for phase, values in samples.items()}
        out[strategy]["statements"] = sorted(statements)[len(statements) // 2]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", help="the embedding cache (REDIS_URL): a cold query pays for its miss")
    parser.add_argument("--uid", default="grow-3-20000")
    parser.add_argument("--queries", type=int, default=40, help="per strategy and side")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--old", help="also measure the code of this revision")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one side, in a process of its own
    args = parser.parse_args()
    if args.measure:
        setup_django(args.database_url, redis_url=args.redis_url, root=args.measure)
        print(json.dumps(measure(args.uid, args.queries, args.k)))
        return
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        trees = {"new": ROOT}
        if args.old:
            from test_suite import export_revision

            export_revision(args.old, Path(directory))
            trees = {"old": Path(directory), "new": ROOT}
        for label, tree in trees.items():
            command = [sys.executable, __file__, "--measure", str(tree), "--database-url", args.database_url]
            command += ["--uid", args.uid, "--queries", str(args.queries), "--k", str(args.k)]
            command += ["--redis-url", args.redis_url] if args.redis_url else []
            env = {**os.environ, "MODEL_CACHE_DIR": str(ROOT / "var" / "models")}
            done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{label}: {done.stderr[-3000:]}")
            results[label] = json.loads(done.stdout.splitlines()[-1])
    print(
        f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; database: {database_label(args.database_url)}; "
        f"embedding cache: {'Redis' if args.redis_url else 'process only'}; uid {args.uid}; k={args.k}; "
        f"{args.queries} cold searches per strategy and side; p50 / p95 ms"
    )
    labels = list(results)
    print(f"{'strategy':14} {'phase':8} " + " ".join(f"{label:>16}" for label in labels))
    for strategy in STRATEGY_NAMES:
        for phase in PHASES:
            cells = [results[label][strategy][phase] for label in labels]
            print(f"{strategy:14} {phase:8} " + " ".join(f"{c['p50']:7.1f} / {c['p95']:6.1f}" for c in cells))
        counts = " ".join(f"{results[label][strategy]['statements']:>16}" for label in labels)
        print(f"{strategy:14} {'db stmts':8} {counts}")


if __name__ == "__main__":
    main()
