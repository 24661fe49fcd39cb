"""Search latency with many users, per strategy: p50/p95 as a service call and through the HTTP API.

    .venv/bin/python bench/search.py [--n 100000] [--users 1000] [--queries 300] [--database-url URL]
    .venv/bin/python bench/search.py --sizes 100,1000,5000,20000 [--old REV] [--queries 40] [--database-url URL]

`--sizes`: the growth curve, one user of each size (memories), side by side in one run: per strategy
p50/p95 as a service call with a cold query cache, the first search of each user in a fresh process
state (the store's copy of its vectors, then hybrid's BM25 index), recall@10 of the store against an
exact float32 search over the database's vectors (per memory and of the 1,000 vectors hybrid reads),
the process's resident size (RSS, and its peak) and what the store's cache holds. `--old REV` runs
the same for REV's code in a process of its own, on the same data, and prints both.

Loads N synthetic memories over M users (memory rows with a transcript of random words, each
memory's own vector, a few transcript-window vectors and snippet vectors), then times searches for
random users with distinct real queries, embedded by the real model. The vectors are made from real
ones: a bank of sentences about the queries' topics, embedded once by the local model (`bench/out/`);
a memory is about one topic, its windows average a few of that topic's sentences, its snippets are
one sentence each, with a little noise, so that they have the neighbourhoods of a real user's
vectors (random unit vectors have none: every one nearly orthogonal to every other, which no graph
index is made for). The queries are "cold" when the query's
embedding is not cached, "warm" when the same query was just asked. A second run on the same
database reuses the data (`--reload` to rebuild it).
"""

import argparse
import http.client
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from common import OUT, ROOT, TOPICS, database_label, machine, percentiles, queries, setup_django, start_web

STRATEGY_NAMES = ("semantic", "time_weighted", "multi_query", "hybrid")

CATEGORIES = ["work", "family", "health", "finance", "personal", "social", "travel", "education", "other"]
SOURCES = ["omi", "phone", "desktop", "friend", "openglass"]


def load(uids: list[str], windows: float, snippets: float, seed: int, prefix: str | None = "synth-") -> None:
    """Memory i (of len(uids)) for uids[i], with its vectors; every earlier user of these uids (or of
    `prefix`) removed first."""
    from django.db import transaction
    from django.utils import timezone
    from tqdm import tqdm

    from memories.models import LocalVector, Memory, MemoryVector

    rng = np.random.default_rng(seed)
    vocabulary = [
        f"{a}{b}"
        for a in ("ka", "lo", "mi", "ne", "pu", "ra", "si", "to", "vu", "ze")
        for b in (
            "bar",
            "cen",
            "dol",
            "fis",
            "gor",
            "hul",
            "jin",
            "kem",
            "lap",
            "mox",
            "nor",
            "pel",
            "quo",
            "rin",
            "sut",
            "tam",
            "vel",
            "wix",
            "yor",
            "zan",
        )
    ]
    words = np.array(vocabulary + [w.lower() for t in TOPICS for w in t.split()[1:]])
    now = timezone.now()
    for model in (Memory, LocalVector):
        model.objects.filter(uid__in=set(uids)).delete()
        if prefix:
            model.objects.filter(uid__startswith=prefix).delete()
    n = len(uids)
    batch = 2000
    bank = sentence_bank(seed)
    with tqdm(total=n, desc="loading synthetic memories", unit="memory") as bar:
        for start in range(0, n, batch):
            size = min(batch, n - start)
            with transaction.atomic():
                memories = Memory.objects.bulk_create(
                    Memory(
                        uid=uids[start + i],
                        transcript="Speaker 0: " + " ".join(rng.choice(words, size=300)),
                        title=f"Synthetic memory {start + i}",
                        overview="A synthetic memory for the search benchmark.",
                        category=CATEGORIES[(start + i) % len(CATEGORIES)],
                        source=SOURCES[(start + i) % len(SOURCES)],
                        created_at=(created := now - timedelta(days=float(rng.uniform(0, 365)))),
                        indexed_at=created,  # BM25 lists a user's memories by when they were indexed
                        status=Memory.Status.INDEXED,
                        searchable=True,  # as the pipeline leaves an indexed memory: found by search
                        embedding_model="all-MiniLM-L6-v2",
                        embedding_dim=384,
                    )
                    for i in range(size)
                )
                window_counts = rng.poisson(windows, size=size)
                snippet_counts = rng.poisson(snippets, size=size)
                vectors = synthetic_vectors(rng, bank, window_counts, snippet_counts)
                local, stored, row = [], [], 0
                for memory, n_windows, n_snippets in zip(memories, window_counts, snippet_counts):
                    meta = {
                        "uid": memory.uid,
                        "memory_id": str(memory.id),
                        "created_at": int(memory.created_at.timestamp()),
                        "category": memory.category,
                        "source": memory.source,
                    }
                    kinds = ["memory"] + ["window"] * n_windows + ["snippet"] * n_snippets
                    suffixes = [""] + [f"-c{i}" for i in range(n_windows)] + [f"-s{i}" for i in range(n_snippets)]
                    for position, (kind, suffix) in enumerate(zip(kinds, suffixes)):
                        vector_id = memory.vector_id + suffix
                        blob = vectors[row].tobytes()
                        row += 1
                        local.append(
                            LocalVector(
                                namespace="ns1",
                                record_id=vector_id,
                                uid=memory.uid,
                                memory_id=meta["memory_id"],
                                created_at=meta["created_at"],
                                category=memory.category,
                                source=memory.source,
                                kind=kind,
                                metadata={**meta, "kind": kind},
                                values=blob,
                            )
                        )
                        stored.append(
                            MemoryVector(
                                memory=memory,
                                position=position,
                                kind=kind,
                                vector_id=vector_id,
                                text="Speaker 0: a window." if position else "",
                                model="all-MiniLM-L6-v2",
                                dim=384,
                                vector=blob,
                            )
                        )
                LocalVector.objects.bulk_create(local, batch_size=1000)
                MemoryVector.objects.bulk_create(stored, batch_size=1000)
            bar.update(size)


SUBJECTS = ["I", "We", "My sister", "The manager", "Dad", "Alex", "The doctor", "Our neighbour", "Priya", "Mom"]
VERBS = [
    "talked about",
    "asked me about",
    "is worried about",
    "finally sorted out",
    "wants to postpone",
    "paid for",
    "forgot about",
    "is excited about",
    "complained about",
    "wrote down the details of",
    "changed the plan for",
    "needs help with",
]
DETAILS = [
    "next Tuesday",
    "after lunch",
    "because of the budget",
    "with the kids",
    "before the deadline",
    "over the phone",
    "at the office",
    "this weekend",
    "for the third time",
    "and it went well",
    "but nobody agreed",
    "so we should call them back",
]
CHATTER = [
    "Yeah, that sounds good to me.",
    "Hold on, let me check my calendar.",
    "Sorry, I missed what you said.",
    "Okay, talk to you later then.",
    "Ha, that is so funny.",
    "Can you hear me now?",
    "I think so, but I am not sure.",
    "Thanks, I really appreciate it.",
]
BANK_PER_TOPIC = 60


def sentence_bank(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sentences about each topic (BANK_PER_TOPIC each, in TOPICS' order) and some chatter, embedded
    by the local model once (kept in bench/out): the vectors' unit rows and the chatter's."""
    from memories.parts.embedders import get_embedder

    embedder = get_embedder()
    path = OUT / f"sentence-bank-{seed}-{embedder.model.replace('/', '_')}.npz"
    if path.exists():
        with np.load(path) as stored:
            return stored["topics"], stored["chatter"]
    pick = random.Random(seed).choice
    sentences = [
        f"Speaker {pick('01')}: {pick(SUBJECTS)} {pick(VERBS)} {topic} {pick(DETAILS)}."
        for topic in TOPICS
        for _ in range(BANK_PER_TOPIC)
    ]
    print(f"embedding a bank of {len(sentences) + len(CHATTER)} sentences once ({path.name})")
    topics = embedder.embed_documents(sentences)
    chatter = embedder.embed_documents([f"Speaker 1: {line}" for line in CHATTER])
    np.savez(path, topics=topics, chatter=chatter)
    return topics, chatter


def synthetic_vectors(
    rng: np.random.Generator, bank: tuple[np.ndarray, np.ndarray], windows: np.ndarray, snippets: np.ndarray
) -> np.ndarray:
    """Each memory's vectors (its own, its windows', its snippets'), in order: a memory is about a
    topic (and a little about a second); its own vector and windows average four of the topic's
    sentences and one of the second's, a snippet is one sentence (of the topic, the second, or
    chatter); every vector with a little noise, unit length."""
    topics, chatter = bank
    n = len(windows)
    first, second = rng.integers(0, len(TOPICS), n), rng.integers(0, len(TOPICS), n)
    averaged = 1 + windows  # the memory's own vector and its windows
    rows = []
    for count, kind in ((averaged, "average"), (snippets, "snippet")):
        topic, other = np.repeat(first, count), np.repeat(second, count)
        size = int(count.sum())

        def sentence(of):
            return topics[of * BANK_PER_TOPIC + rng.integers(0, BANK_PER_TOPIC, len(of))]

        if kind == "average":
            part = sum(sentence(topic) for _ in range(4)) / 4 + 0.25 * sentence(other)
        else:
            which = rng.random(size)
            part = np.where((which < 0.7)[:, None], sentence(topic), sentence(other))
            part = np.where((which >= 0.9)[:, None], chatter[rng.integers(0, len(chatter), size)], part)
        rows.append(np.split(part, np.cumsum(count)[:-1]))
    vectors = np.concatenate([block for pair in zip(*rows) for block in pair]).astype(np.float32)
    vectors += rng.normal(scale=0.02, size=vectors.shape).astype(np.float32)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype("<f4")


def queries_for(strategy: str, text: str) -> list[str]:
    return [text, text.split(" ", 3)[-1]] if strategy == "multi_query" else [text]


def time_service(strategy: str, uids: list[str], texts: list[str], k: int) -> list[float]:
    from search.services import search_memories

    samples = []
    for uid, text in zip(uids, texts):
        started = time.perf_counter()
        search_memories(uid=uid, queries=queries_for(strategy, text), k=k, strategy=strategy)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def time_http(port: int, key: str, strategy: str, uids: list[str], texts: list[str], k: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for uid, text in zip(uids, texts):
        body = json.dumps({"uid": uid, "queries": queries_for(strategy, text), "k": k, "strategy": strategy})
        started = time.perf_counter()
        connection.request("POST", "/api/v1/search", body, {"X-API-Key": key, "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status == 200, response.status
    connection.close()
    return samples


def start_server(port: int, database_url: str) -> subprocess.Popen:
    """The web server for the HTTP figures: one worker, one thread, tasks in-process (no Redis)."""
    env = {name: value for name, value in os.environ.items() if name != "REDIS_URL"}
    return start_web(port, threads=1, env={**env, "DATABASE_URL": database_url, "TORCH_THREADS": "1"})


GROWTH_PREFIX = "grow-"


def growth_uids(sizes: list[int]) -> list[str]:
    return [f"{GROWTH_PREFIX}{i}-{size:05d}" for i, size in enumerate(sizes)]


def settle() -> None:
    """On PostgreSQL, what autovacuum does after a load (a server's steady state): fresh statistics
    for the planner, and the visibility map, without which the index-only scans that check a user's
    memories (BM25's, before each search) visit the table too (about 4x slower at 20,000)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def resident_mb() -> tuple[float, float]:
    """This process's resident size and its peak, MB."""
    lines = Path("/proc/self/status").read_text().splitlines()
    status = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def exact_ranking(uid: str, vectors: list[np.ndarray], k: int, vectors_k: int) -> list[tuple[list[str], set[str]]]:
    """Ground truth from the database's float32 vectors, for each query vector: the k best memories
    by their best vector, and the ids of the `vectors_k` best vectors."""
    from memories.models import LocalVector

    rows = list(LocalVector.objects.filter(namespace="ns1", uid=uid).values_list("record_id", "memory_id", "values"))
    matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), -1)
    truth = []
    for vector in vectors:
        order = np.argsort(-(matrix @ vector), kind="stable")
        memories: list[str] = []
        for row in order:
            if rows[row][1] not in memories:
                memories.append(rows[row][1])
                if len(memories) == k:
                    break
        truth.append((memories, {rows[row][0] for row in order[:vectors_k]}))
    return truth


def measure_growth(sizes: list[int], queries_n: int, k: int, seed: int, recall: bool) -> dict:
    """One side of the growth run, in this process, with this tree's code (see --sizes)."""
    from django.conf import settings

    from memories.parts.embedders import get_embedder
    from memories.parts.vectorstores import SearchFilters, get_vector_store
    from memories.parts.vectorstores import local as local_store
    from search import lexical

    embedder = get_embedder()
    embedder.embed_query("warm up the model")
    store = get_vector_store()
    texts = queries(queries_n * (len(STRATEGY_NAMES) + 2), seed)
    out: dict = {"cache_mb": settings.LOCAL_STORE_CACHE_MB, "sizes": {}}
    for size, uid in zip(sizes, growth_uids(sizes)):
        row: dict = {"memories": size}
        local_store._cache = None  # a fresh process state for this user: vectors and BM25 index not read yet
        lexical._cache.clear()
        started = time.perf_counter()
        time_service("semantic", [uid], ["a first question about the dentist"], k)
        row["first semantic"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        time_service("hybrid", [uid], ["a first question about the garden"], k)
        row["first hybrid"] = (time.perf_counter() - started) * 1000
        if hasattr(lexical, "writer"):  # a BM25 snapshot that search saves is written before the timings
            lexical.writer.flush()
        for i, strategy in enumerate(STRATEGY_NAMES):  # cold: each text new to the embedder's cache
            chosen = [f"{t} ({size}, {strategy})" for t in texts[i * queries_n : (i + 1) * queries_n]]
            row[strategy] = percentiles(time_service(strategy, [uid] * queries_n, chosen, k))
        row["rss_mb"], row["peak_rss_mb"] = resident_mb()
        row["cache"] = {key[1]: round(data.nbytes / 2**20, 1) for key, data in local_store._cache.items()}
        out["sizes"][uid] = row
    # Every user again, twice in turn, the cache kept: what the process holds serving them all.
    started = time.perf_counter()
    for uid in growth_uids(sizes) * 2:
        time_service("semantic", [uid], [f"a question in turn for {uid}"], k)
    out["rotation"] = {
        "seconds": time.perf_counter() - started,
        "rss_mb": resident_mb()[0],
        "cache": {key[1]: round(data.nbytes / 2**20, 1) for key, data in local_store._cache.items()},
        "cache_total_mb": round(local_store._cache.currsize / 2**20, 1),
    }
    # Last: the ground truth reads each user's float32 vectors whole, which the process keeps (its
    # allocator does not give them back), so every resident size above is measured before it.
    for uid in growth_uids(sizes):
        row = out["sizes"][uid]
        row["recall@10"] = row["recall of 1,000 vectors"] = None
        if recall:
            vectors = [embedder.embed_query(text) for text in texts[-queries_n:]]
            memory_hits = vector_hits = 0
            for vector, (exact_memories, exact_vectors) in zip(vectors, exact_ranking(uid, vectors, k, 1000)):
                found = store.query(vector, uid=uid, top_k=k, filters=SearchFilters())
                memory_hits += len({m.memory_id for m in found} & set(exact_memories))
                found_vectors = store.query_vectors(vector, uid=uid, top_k=1000, filters=SearchFilters())
                vector_hits += len({m.vector_id for m in found_vectors} & exact_vectors)
            row["recall@10"] = memory_hits / (k * queries_n)
            row["recall of 1,000 vectors"] = vector_hits / (1000 * queries_n)
    return out


def print_growth(results: dict[str, dict], vectors: dict[str, int]) -> None:
    print(f"{'code':12} {'memories':>8} {'vectors':>8} {'strategy, service, cold':28} {'p50 ms':>8} {'p95 ms':>8}")
    for label, result in results.items():
        for uid, row in result["sizes"].items():
            for strategy in STRATEGY_NAMES:
                p = row[strategy]
                size = row["memories"]
                print(f"{label:12} {size:8} {vectors[uid]:8} {strategy:28} {p['p50']:8.1f} {p['p95']:8.1f}")
    print()
    print(
        f"{'code':12} {'memories':>8} {'first semantic ms':>17} {'first hybrid ms':>15} {'recall@10':>9} "
        f"{'recall 1000 vec':>15} {'RSS MB':>7} {'peak MB':>7}  cache (uid: MB)"
    )
    for label, result in results.items():
        for row in result["sizes"].values():
            size = row["memories"]
            recall = "" if row["recall@10"] is None else f"{row['recall@10']:9.3f}"
            recall_vectors = "" if row["recall@10"] is None else f"{row['recall of 1,000 vectors']:15.3f}"
            print(
                f"{label:12} {size:8} {row['first semantic']:17.0f} {row['first hybrid']:15.0f} "
                f"{recall:>9} {recall_vectors:>15} {row['rss_mb']:7.0f} {row['peak_rss_mb']:7.0f}  {row['cache']}"
            )
    print(
        f"LOCAL_STORE_CACHE_MB: {next(iter(results.values()))['cache_mb']}; RSS and peak MB: the process's resident "
        "size and its high-water mark after that user's timings (the recall, which reads float32 vectors, comes last)"
    )
    for label, result in results.items():
        turn = result["rotation"]
        print(
            f"{label}: every user searched again twice in turn ({turn['seconds']:.1f} s): RSS {turn['rss_mb']:.0f} MB, "
            f"cache {turn['cache_total_mb']} MB {turn['cache']}"
        )


def growth(args) -> None:
    sizes = [int(size) for size in args.sizes.split(",")]
    database_url = setup_django(args.database_url)
    from django.conf import settings
    from django.core.management import call_command

    from memories.models import LocalVector, Memory
    from memories.parts.embedders import get_embedder
    from memories.parts.vectorstores.local import LocalVectorStore

    uids = growth_uids(sizes)
    have = {uid: Memory.objects.filter(uid=uid).count() for uid in uids}
    missing = [(uid, size) for uid, size in zip(uids, sizes) if args.reload or have[uid] != size]
    if missing:
        started = time.perf_counter()
        load([uid for uid, size in missing for _ in range(size)], 3.0, 12.0, args.seed, prefix=None)
        print(f"loaded in {time.perf_counter() - started:.0f} s")
    settle()  # after a load, and after whatever wrote since (another bench, a test run)
    LocalVectorStore().touch(set(uids))
    embedder = get_embedder()
    LocalVectorStore().check_model(embedder.model, embedder.dim, record=True)
    started = time.perf_counter()  # what an operator runs after an import (searches make them otherwise)
    call_command("local_store_snapshots", rebuild=bool(missing), stdout=io.StringIO())
    print(
        f"snapshots on disk of the users with {settings.LOCAL_STORE_SNAPSHOT_ROWS:,} vectors or more: "
        f"{time.perf_counter() - started:.0f} s"
    )
    started = time.perf_counter()
    call_command("lexical_snapshots", rebuild=bool(missing), stdout=io.StringIO())
    print(f"BM25 snapshots of the users: {time.perf_counter() - started:.0f} s")
    vectors = {uid: LocalVector.objects.filter(uid=uid).count() for uid in uids}
    results = {}
    trees = {"this tree": ROOT}
    with tempfile.TemporaryDirectory() as directory:
        if args.old:
            from test_suite import export_revision

            trees = {
                "this tree": ROOT,
                args.old: Path(directory),
            }  # this tree first: the later side runs after the other's whole reads
            export_revision(args.old, trees[args.old])
        for label, tree in trees.items():
            queries_n = args.queries if label == "this tree" else args.old_queries
            command = [sys.executable, __file__, "--measure-growth", str(tree), "--sizes", args.sizes]
            command += ["--queries", str(queries_n), "--k", str(args.k), "--database-url", database_url]
            command += ["--recall"] if label == "this tree" else []
            env = {**os.environ, "MODEL_CACHE_DIR": str(ROOT / "var" / "models")}
            done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{label}: {done.stderr[-3000:]}")
            results[label] = json.loads(done.stdout.splitlines()[-1])
    print()
    print(
        f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; database: {database_label(database_url)}; "
        f"k={args.k}; cold queries per strategy and user: {args.queries} (this tree), {args.old_queries} (--old); "
        "one user per size"
    )
    print_growth(results, vectors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="memories")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--windows", type=float, default=3.0, help="mean transcript windows per memory")
    parser.add_argument("--snippets", type=float, default=12.0, help="mean snippets per memory")
    parser.add_argument("--strategies", default=",".join(STRATEGY_NAMES))
    parser.add_argument("--queries", type=int, help="default 300; with --sizes 40 per strategy and user")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reload", action="store_true", help="rebuild the synthetic data")
    parser.add_argument("--database-url")
    parser.add_argument(
        "--store-cache-mb",
        type=int,
        default=1024,
        help="LOCAL_STORE_CACHE_MB: enough for the users searched, so that repeat searches hit it",
    )
    parser.add_argument("--sizes", help="the growth curve: one user of each of these sizes (memories)")
    parser.add_argument("--old", help="with --sizes: also measure the code of this revision")
    parser.add_argument("--old-queries", type=int, default=10, help="with --old: queries for its code (slow)")
    parser.add_argument("--recall", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure-growth", type=Path, help=argparse.SUPPRESS)  # one side, in a process of its own
    args = parser.parse_args()
    args.queries = args.queries or (40 if args.sizes or args.measure_growth else 300)
    if args.measure_growth:
        setup_django(args.database_url, root=args.measure_growth)
        sizes = [int(size) for size in args.sizes.split(",")]
        print(json.dumps(measure_growth(sizes, args.queries, args.k, args.seed, args.recall)))
        return
    if args.sizes:  # the store's own cache size (LOCAL_STORE_CACHE_MB, default 512) unless set
        growth(args)
        return
    os.environ["LOCAL_STORE_CACHE_MB"] = str(args.store_cache_mb)

    database_url = setup_django(args.database_url)
    from memories.models import LocalVector, Memory
    from memories.parts.embedders import get_embedder
    from memories.parts.vectorstores.local import LocalVectorStore
    from memories.services import api_key_create
    from omi_memory.actors import Actor

    have = Memory.objects.filter(uid__startswith="synth-").count()
    if args.reload or have != args.n or not LocalVector.objects.filter(uid="synth-00000").exists():
        started = time.perf_counter()
        load([f"synth-{i % args.users:05d}" for i in range(args.n)], args.windows, args.snippets, args.seed)
        print(f"loaded in {time.perf_counter() - started:.0f} s")
        settle()
    else:
        print(f"reusing {have} synthetic memories")
    store = LocalVectorStore()
    store.touch({f"synth-{u:05d}" for u in range(args.users)})  # as the store's writes do
    embedder = get_embedder()
    store.check_model(embedder.model, embedder.dim, record=True)  # as the first real ingest does
    vectors = LocalVector.objects.filter(uid__startswith="synth-").count()

    rng = random.Random(args.seed)
    uids = [f"synth-{rng.randrange(args.users):05d}" for _ in range(args.queries)]
    texts = queries(args.queries, args.seed)
    embedder.embed_query("warm up the model")
    strategies = args.strategies.split(",")
    results = {}
    for strategy in strategies:  # the first search of a user in a process builds its lexical index
        first = time_service(strategy, uids, ["warm up " + t for t in texts], args.k)
        if strategy == "hybrid":
            results["hybrid, service, first search of a user"] = percentiles(first)
    for strategy in strategies:
        embedder.clear_cache()
        results[f"{strategy}, service, cold"] = percentiles(time_service(strategy, uids, texts, args.k))
        results[f"{strategy}, service, warm"] = percentiles(time_service(strategy, uids, texts, args.k))

    key = api_key_create(name="search benchmark", actor=Actor.command())[1]
    server = start_server(args.port, database_url)
    try:
        for strategy in strategies:
            time_http(args.port, key, strategy, uids, ["warm up " + t for t in texts], args.k)
        for strategy in strategies:
            cold_texts = [f"{t} ({strategy})" for t in texts]  # not in the server's cache yet
            results[f"{strategy}, HTTP, cold"] = percentiles(
                time_http(args.port, key, strategy, uids, cold_texts, args.k)
            )
            results[f"{strategy}, HTTP, warm"] = percentiles(
                time_http(args.port, key, strategy, uids, cold_texts, args.k)
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    print()
    print(
        f"machine: {machine()}; database: {database_label(database_url)}; "
        f"{args.n} memories over {args.users} users, {vectors} vectors "
        f"({vectors / args.users:.0f} per user); k={args.k}; {args.queries} queries"
    )
    print(f"{'strategy, path, query cache':34} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    for name, p in results.items():
        print(f"{name:34} {p['p50']:8.1f} {p['p95']:8.1f} {p['mean']:8.1f}")


if __name__ == "__main__":
    main()
