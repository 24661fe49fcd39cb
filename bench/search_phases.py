"""Where a heavy user's search goes, phase by phase: p50/p95 per strategy, old code beside new.

    .venv/bin/python bench/search_phases.py --database-url URL [--uid grow-3-20000] [--queries 40]
        [--old REV] [--redis-url URL]

Runs searches as a service call (`search_memories`, logged, k=10), each a question not asked
before (cold query cache), for one user of the growth bench (`bench/search.py --sizes`), and
times, per search: the whole call; the query's embedding (the embedder's caches included); the
store's scoring (its own database reads included); BM25 (`lexical_index` and its scores: hybrid);
the other database statements, at the driver, and their count; the rest is Python. "outside" is
the whole call less the store and BM25: what search adds around them. `--old REV` measures REV's
code too, in a process of its own, on the same data, the two sides taking turns a few searches at a
time (so that both meet the same load on a shared machine), printed together.
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


class Searcher:
    """This tree's searches of one user, timed phase by phase (in a process of its own)."""

    def __init__(self, uid: str, k: int):
        from memories.parts.embedders import get_embedder
        from memories.parts.vectorstores.local import LocalVectorStore
        from search import strategies
        from search.services import search_memories

        self.uid, self.k, self.search_memories, self.phases, self.asked = uid, k, search_memories, Phases(), 0
        embedder = get_embedder()
        for name in ("embed_documents", "embed_query"):
            self.phases.wrap(type(embedder), name, "embed")
        for name in ("query_vectors", "query_many", "query"):
            self.phases.wrap(LocalVectorStore, name, "store")
        lexical_index, classes = strategies.lexical_index, set()

        def lexical_index_scored(*args, **kwargs):
            index = lexical_index(*args, **kwargs)  # its version check and any update count as BM25
            if type(index) not in classes:
                classes.add(type(index))
                self.phases.wrap(type(index), "scores", "bm25")
            return index

        strategies.lexical_index = lexical_index_scored
        self.phases.wrap(strategies, "lexical_index", "bm25")
        embedder.embed_query("warm up the model")
        for strategy in STRATEGY_NAMES:  # the store's copy of the user, the BM25 index: not what is measured
            search_memories(uid=uid, queries=[f"a first {strategy} question"], k=k, strategy=strategy)

    def run(self, strategy: str, count: int) -> list[dict]:
        """`count` searches with questions never asked before (cold query cache): each one's phases, ms."""
        from django.db import connection

        out = []
        for _ in range(count):
            self.asked += 1
            text = f"what did we say about the {strategy} plan number {self.asked} ({os.getpid()}, {time.time()})"
            texts = [text, text.split(" ", 3)[-1]] if strategy == "multi_query" else [text]
            self.phases.spent, self.phases.statements = {}, 0
            with connection.execute_wrapper(self.phases.statement):
                started = time.perf_counter()
                self.search_memories(uid=self.uid, queries=texts, k=self.k, strategy=strategy)
                total = (time.perf_counter() - started) * 1000
            spent = {phase: self.phases.spent.get(phase, 0.0) for phase in ("embed", "store", "bm25", "db")}
            spent["total"] = total
            spent["outside"] = total - spent["store"] - spent["bm25"]
            spent["rest"] = spent["outside"] - spent["embed"] - spent["db"]
            out.append({**spent, "statements": self.phases.statements})
        return out


def serve(uid: str, k: int) -> None:
    """One side: ready once warm, then a batch of searches per line read ("strategy count"), a line
    of JSON back for each."""
    searcher = Searcher(uid, k)
    print("ready", flush=True)
    for line in sys.stdin:
        strategy, count = line.split()
        print(json.dumps(searcher.run(strategy, int(count))), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", help="the embedding cache (REDIS_URL): a cold query pays for its miss")
    parser.add_argument("--uid", default="grow-3-20000")
    parser.add_argument("--queries", type=int, default=40, help="per strategy and side")
    parser.add_argument("--batch", type=int, default=5, help="searches a side runs before the other's turn")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--old", help="also measure the code of this revision")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # one side, in a process of its own
    args = parser.parse_args()
    if args.serve:
        setup_django(args.database_url, redis_url=args.redis_url, root=args.serve)
        serve(args.uid, args.k)
        return
    samples: dict[str, dict[str, list[dict]]] = {}
    sides: dict[str, subprocess.Popen] = {}
    with tempfile.TemporaryDirectory() as directory:
        trees = {"new": ROOT}
        if args.old:
            from test_suite import export_revision

            export_revision(args.old, Path(directory))
            trees = {"old": Path(directory), "new": ROOT}
        try:
            for label, tree in trees.items():  # one at a time: loading the user and its BM25 index is heavy
                command = [sys.executable, __file__, "--serve", str(tree), "--database-url", args.database_url]
                command += ["--uid", args.uid, "--k", str(args.k)]
                command += ["--redis-url", args.redis_url] if args.redis_url else []
                env = {**os.environ, "MODEL_CACHE_DIR": str(ROOT / "var" / "models")}
                sides[label] = subprocess.Popen(
                    command, cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
                )
                if sides[label].stdout.readline().strip() != "ready":
                    raise SystemExit(f"{label}: did not start")
                samples[label] = {strategy: [] for strategy in STRATEGY_NAMES}
            # the sides take turns, a batch at a time, so that both meet the same load on a shared machine
            for turn in range(-(-args.queries // args.batch)):
                for strategy in STRATEGY_NAMES:
                    for label in list(sides)[:: 1 if turn % 2 else -1]:
                        sides[label].stdin.write(f"{strategy} {args.batch}\n")
                        sides[label].stdin.flush()
                        samples[label][strategy] += json.loads(sides[label].stdout.readline())
        finally:
            for side in sides.values():
                side.stdin.close()
                side.wait()
    print(
        f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; database: {database_label(args.database_url)}; "
        f"embedding cache: {'Redis' if args.redis_url else 'process only'}; uid {args.uid}; k={args.k}; "
        f"{args.queries} cold searches per strategy and side, taking turns {args.batch} at a time; p50 / p95 ms"
    )
    labels = list(samples)
    print(f"{'strategy':14} {'phase':8} " + " ".join(f"{label:>16}" for label in labels))
    for strategy in STRATEGY_NAMES:
        for phase in PHASES:
            cells = [percentiles([row[phase] for row in samples[label][strategy]]) for label in labels]
            print(f"{strategy:14} {phase:8} " + " ".join(f"{c['p50']:7.1f} / {c['p95']:6.1f}" for c in cells))
        counts = [sorted(row["statements"] for row in samples[label][strategy]) for label in labels]
        print(f"{strategy:14} {'db stmts':8} " + " ".join(f"{c[len(c) // 2]:>16}" for c in counts))


if __name__ == "__main__":
    main()
