"""Search latency with many users: p50/p95 as a service call and through the HTTP API.

    .venv/bin/python bench/search.py [--n 100000] [--users 1000] [--queries 300] [--database-url URL]

Loads N synthetic memories over M users (memory rows, plus each memory's own vector and a few
transcript-window vectors, generated directly as random unit vectors: the scores mean nothing, the
work is the real work), then times searches for random users with distinct real queries, embedded
by the real model: "cold" when the query's embedding is not cached, "warm" when the same query was
just asked. A second run on the same database reuses the data (`--reload` to rebuild it).
"""

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta

import numpy as np

from common import ROOT, database_label, machine, percentiles, setup_django

CATEGORIES = ["work", "family", "health", "finance", "personal", "social", "travel", "education", "other"]
SOURCES = ["omi", "phone", "desktop", "friend", "openglass"]
QUESTIONS = ["what did we decide about", "when is the", "how much did we pay for", "who mentioned the",
             "remind me what was said about", "where are we meeting for", "what did the doctor say about",
             "what was the plan for", "did anyone follow up on", "what were the numbers for"]
TOPICS = ["the dentist appointment", "the kitchen renovation", "the quarterly budget", "the product launch",
          "my sister's wedding", "the car repair", "the flight to Lisbon", "the hiring interview",
          "the school recital", "the mortgage rate", "the book club novel", "the marathon training",
          "the tax deadline", "the birthday dinner", "the garden beds", "the team offsite",
          "the insurance claim", "the new apartment", "the client contract", "the sleep study",
          "the piano lessons", "the conference talk", "the daycare pickup", "the farmers market",
          "the camping trip", "the server outage", "the spanish class", "the knee injury",
          "the wine tasting", "the moving truck"]


def load(n: int, users: int, windows: float, seed: int) -> None:
    from django.db import transaction
    from django.utils import timezone
    from tqdm import tqdm

    from memories.models import Memory
    from search.models import LocalVector, MemoryVector

    rng = np.random.default_rng(seed)
    now = timezone.now()
    Memory.objects.filter(uid__startswith="synth-").delete()
    LocalVector.objects.filter(uid__startswith="synth-").delete()
    batch = 2000
    with tqdm(total=n, desc="loading synthetic memories", unit="memory") as bar:
        for start in range(0, n, batch):
            size = min(batch, n - start)
            with transaction.atomic():
                memories = Memory.objects.bulk_create(
                    Memory(
                        uid=f"synth-{(start + i) % users:05d}",
                        transcript=f"Speaker 0: synthetic conversation number {start + i}.",
                        title=f"Synthetic memory {start + i}",
                        overview="A synthetic memory for the search benchmark.",
                        category=CATEGORIES[(start + i) % len(CATEGORIES)],
                        source=SOURCES[(start + i) % len(SOURCES)],
                        created_at=now - timedelta(days=float(rng.uniform(0, 365))),
                        status=Memory.Status.INDEXED,
                        embedding_model="all-MiniLM-L6-v2",
                        embedding_dim=384,
                    )
                    for i in range(size)
                )
                counts = 1 + rng.poisson(windows, size=size)
                vectors = rng.standard_normal((int(counts.sum()), 384)).astype("<f4")
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                local, stored, row = [], [], 0
                for memory, count in zip(memories, counts):
                    meta = {"uid": memory.uid, "memory_id": str(memory.id),
                            "created_at": int(memory.created_at.timestamp()),
                            "category": memory.category, "source": memory.source}
                    for position in range(count):
                        vector_id = memory.vector_id + (f"-c{position - 1}" if position else "")
                        blob = vectors[row].tobytes()
                        row += 1
                        local.append(LocalVector(namespace="ns1", record_id=vector_id, uid=memory.uid,
                                                 memory_id=meta["memory_id"], created_at=meta["created_at"],
                                                 category=memory.category, source=memory.source, metadata=meta,
                                                 values=blob))
                        stored.append(MemoryVector(memory=memory, position=position, vector_id=vector_id,
                                                   text="Speaker 0: a window." if position else "",
                                                   model="all-MiniLM-L6-v2", dim=384, vector=blob))
                LocalVector.objects.bulk_create(local, batch_size=1000)
                MemoryVector.objects.bulk_create(stored, batch_size=1000)
            bar.update(size)


def queries(count: int, seed: int) -> list[str]:
    texts = [f"{q} {t}" for q in QUESTIONS for t in TOPICS]
    random.Random(seed).shuffle(texts)
    if count > len(texts):
        texts += [f"{text} ({i})" for i, text in enumerate(texts * (count // len(texts)))]
    return texts[:count]


def time_service(uids: list[str], texts: list[str], k: int) -> list[float]:
    from search.services import search_memories

    samples = []
    for uid, text in zip(uids, texts):
        started = time.perf_counter()
        search_memories(uid=uid, query=text, k=k)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def time_http(port: int, key: str, uids: list[str], texts: list[str], k: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for uid, text in zip(uids, texts):
        body = json.dumps({"uid": uid, "query": text, "k": k})
        started = time.perf_counter()
        connection.request("POST", "/api/v1/search", body, {"X-API-Key": key, "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status == 200, response.status
    connection.close()
    return samples


def start_server(port: int, database_url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "TORCH_THREADS": "1", "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "omi_memory.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--threads", "1", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/api/v1/openapi.json")
            return server
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the web server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="memories")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--windows", type=float, default=3.0, help="mean transcript windows per memory")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reload", action="store_true", help="rebuild the synthetic data")
    parser.add_argument("--database-url")
    args = parser.parse_args()

    database_url = setup_django(args.database_url)
    from memories.models import Memory
    from memories.services import api_key_create
    from search.embedders import get_embedder
    from search.models import LocalVector

    have = Memory.objects.filter(uid__startswith="synth-").count()
    if args.reload or have != args.n or not LocalVector.objects.filter(uid="synth-00000").exists():
        started = time.perf_counter()
        load(args.n, args.users, args.windows, args.seed)
        print(f"loaded in {time.perf_counter() - started:.0f} s")
    else:
        print(f"reusing {have} synthetic memories")
    vectors = LocalVector.objects.filter(uid__startswith="synth-").count()

    rng = random.Random(args.seed)
    uids = [f"synth-{rng.randrange(args.users):05d}" for _ in range(args.queries)]
    texts = queries(args.queries, args.seed)
    embedder = get_embedder()
    embedder.embed_query("warm up the model")
    time_service(uids[:5], ["warm up " + t for t in texts[:5]], args.k)

    results = {}
    embedder.clear_cache()
    results["service call, cold query cache"] = percentiles(time_service(uids, texts, args.k))
    results["service call, warm query cache"] = percentiles(time_service(uids, texts, args.k))

    key = api_key_create(name="search benchmark")[1]
    server = start_server(args.port, database_url)
    try:
        time_http(args.port, key, uids[:5], ["warm up " + t for t in texts[:5]], args.k)
        results["HTTP API, cold query cache"] = percentiles(time_http(args.port, key, uids, texts, args.k))
        results["HTTP API, warm query cache"] = percentiles(time_http(args.port, key, uids, texts, args.k))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    print()
    print(f"machine: {machine()}; database: {database_label(database_url)}; "
          f"{args.n} memories over {args.users} users, {vectors} vectors "
          f"({vectors / args.users:.0f} per user); k={args.k}; {args.queries} queries")
    print(f"{'search (semantic)':34} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    for name, p in results.items():
        print(f"{name:34} {p['p50']:8.1f} {p['p95']:8.1f} {p['mean']:8.1f}")


if __name__ == "__main__":
    main()
