"""Memories per second through the local pipeline: in-process, and with Celery workers on Redis.

    .venv/bin/python bench/ingest.py [--n 200] [--workers 2] [--database-url URL] [--redis-url URL]
    .venv/bin/python bench/ingest.py --old REV [--rounds 2] [--n 40] [--database-url URL]

The transcripts are the demo conversations, cycled over many users. The model loads before the
clock starts (its load time is printed apart). The worker run needs Redis (default
redis://127.0.0.1:6379/14); without it, only the in-process figure is printed.

`--old REV` runs the in-process path for the code of REV and for this tree, side by side (each in
a process of its own, on a database of its own, alternately for `--rounds`), counting at the
runtime (ONNX Runtime's `run`) the tokens the model reads and its time, next to the model's own
time for reading each transcript token once (in windows of 254 tokens), and the load average.
"""

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, database_label, machine, setup_django


def transcripts(n: int) -> list[dict]:
    """`n` distinct transcripts (every turn marked with its memory's number, so that no text is
    embedded twice and no cache helps)."""
    rows = [json.loads(line) for line in (ROOT / "memories/demo/demo_memories.jsonl").read_text().splitlines()]
    items = []
    for i in range(n):
        row = rows[i % len(rows)]
        transcript = "\n".join(f"{line} ({i})" for line in row["transcript"].splitlines())
        items.append({"uid": f"bench-{i % 50}", "transcript": transcript, "source": row["source"]})
    return items


def words(items: list[dict]) -> int:
    return sum(len(item["transcript"].split()) for item in items)


def run_in_process(items: list[dict]) -> float:
    from tqdm import tqdm

    from memories.processing import memory_process
    from memories.services import memory_create_many

    memories = memory_create_many(items=items, enqueue=False)
    started = time.perf_counter()
    for memory in tqdm(memories, desc="in-process", unit="memory"):
        assert memory_process(memory_id=memory.id) == "indexed"
    return time.perf_counter() - started


def run_with_workers(items: list[dict], concurrency: int, database_url: str, redis_url: str) -> float:
    from tqdm import tqdm

    from memories.services import memory_create, memory_create_many

    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "TORCH_THREADS": "1"}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "omi_memory",
            "worker",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "warning",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        # Warm up: one memory per worker process, so every process has loaded the model.
        warm = [memory_create(uid="bench-warm", transcript=items[0]["transcript"]) for _ in range(concurrency * 2)]
        _wait([m.id for m in warm], None)
        started = time.perf_counter()
        memories = memory_create_many(items=items)
        _wait([m.id for m in memories], tqdm(total=len(memories), desc=f"worker x{concurrency}", unit="memory"))
        return time.perf_counter() - started
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)


def _wait(ids: list[int], bar) -> None:
    from memories.models import Memory

    done = 0
    while done < len(ids):
        time.sleep(0.1)
        statuses = list(Memory.objects.filter(id__in=ids).values_list("status", flat=True))
        if "failed" in statuses:
            raise SystemExit("a memory failed: see the worker's log")
        now_done = statuses.count("indexed")
        if bar is not None:
            bar.update(now_done - done)
        done = now_done
    if bar is not None:
        bar.close()


def _flush(redis_url: str) -> None:
    import redis

    with contextlib.suppress(redis.RedisError):  # no Redis: no embedding cache either
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).flushdb()


def clear() -> None:
    from memories.models import LocalVector, Memory

    Memory.objects.filter(uid__startswith="bench-").delete()
    LocalVector.objects.filter(uid__startswith="bench-").delete()


def measure(tree: Path, n: int, database_url: str | None) -> dict:
    """The in-process path with the code of `tree`: memories/s, and what the model read and took
    (every `InferenceSession.run`), then the same model reading each transcript token once."""
    setup_django(database_url, root=tree)
    import onnxruntime

    from memories.parts.embedders import get_embedder
    from memories.parts.embedders.local import _onnx_session, _tokenizer
    from memories.parts.extractors.local import LocalExtractor

    model = {"tokens": 0, "seconds": 0.0}
    run = onnxruntime.InferenceSession.run

    def counted(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return run(self, *args, **kwargs)
        finally:
            model["seconds"] += time.perf_counter() - started
            model["tokens"] += int(args[1]["input_ids"].size)

    onnxruntime.InferenceSession.run = counted
    clear()
    items = transcripts(n)
    LocalExtractor().categorize("Alice: warm up the model.")
    get_embedder().embed_query("warm up")
    get_embedder().clear_cache()
    model.update(tokens=0, seconds=0.0)
    seconds = run_in_process(items)
    pipeline = dict(model)
    clear()

    model.update(tokens=0, seconds=0.0)
    session, tokenizer = _onnx_session(), _tokenizer()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    transcript_tokens = 0
    for item in items:
        ids = tokenizer.encode(item["transcript"], add_special_tokens=False).ids
        transcript_tokens += len(ids)
        for start in range(0, len(ids), 254):
            session.run(None, {"input_ids": np.array([[cls, *ids[start : start + 254], sep]], dtype=np.int64)})
    return {
        "seconds": seconds,
        "model_tokens": pipeline["tokens"],
        "model_seconds": pipeline["seconds"],
        "transcript_tokens": transcript_tokens,
        "read_once_seconds": model["seconds"],
        "load": os.getloadavg()[0],
    }


def compare(old: str, rounds: int, n: int, database_url: str | None) -> None:
    """`measure` for REV's code and this tree's, alternately, each in a process (and database) of its own."""
    from test_suite import export_revision

    base = database_url or f"sqlite:///{ROOT / 'bench' / 'out' / 'bench.sqlite3'}"
    results: dict[str, list[dict]] = {old: [], "this tree": []}
    with tempfile.TemporaryDirectory() as directory:
        trees = {old: Path(directory), "this tree": ROOT}
        export_revision(old, trees[old])
        for _ in range(rounds):
            for label, tree in trees.items():
                suffix = "_old" if label == old else "_new"
                url = base.replace(".sqlite3", f"{suffix}.sqlite3") if base.endswith(".sqlite3") else base + suffix
                env = {**os.environ, "MODEL_CACHE_DIR": str(ROOT / "var" / "models")}
                command = [sys.executable, __file__, "--measure", str(tree), "--n", str(n), "--database-url", url]
                done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
                if done.returncode:
                    raise SystemExit(f"{label}: {done.stderr[-3000:]}")
                results[label].append(json.loads(done.stdout.splitlines()[-1]))
    print(f"machine: {machine()}; database: {database_label(base)}; {n} memories, in-process, {rounds} rounds")
    print(
        f"{'code':12} {'memories/s':>10} {'tokens/transcript':>17} {'model s/memory':>14} "
        f"{'read-once s/memory':>18} {'load avg':>8}"
    )
    for label, runs in results.items():
        for r in runs:
            print(
                f"{label:12} {n / r['seconds']:10.2f} {r['model_tokens'] / r['transcript_tokens']:17.2f} "
                f"{r['model_seconds'] / n:14.3f} {r['read_once_seconds'] / n:18.3f} {r['load']:8.1f}"
            )
    rate = {label: sum(n / r["seconds"] for r in runs) / len(runs) for label, runs in results.items()}
    print(f"this tree / {old}: {rate['this tree'] / rate[old]:.2f}x memories/s (mean of the rounds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="worker concurrency (processes)")
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--old", help="compare the in-process path with the code of this revision")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one side of --old, in a process of its own
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.n, args.database_url)))
        return
    if args.old:
        compare(args.old, args.rounds, args.n, args.database_url)
        return

    database_url = setup_django(args.database_url, args.redis_url)
    from memories.parts.embedders import get_embedder
    from memories.parts.extractors.local import LocalExtractor

    clear()
    items = transcripts(args.n)
    loaded = time.perf_counter()
    LocalExtractor().categorize("Alice: warm up the model.")
    get_embedder().embed_query("warm up")
    print(f"model load: {time.perf_counter() - loaded:.1f} s")

    results = {}
    get_embedder().clear_cache()
    _flush(args.redis_url)  # the embedding cache of an earlier run would make this one look fast
    seconds = run_in_process(items)
    results["in-process"] = seconds

    import redis

    try:
        redis.Redis.from_url(args.redis_url, socket_connect_timeout=2).ping()
        redis.Redis.from_url(args.redis_url).flushdb()
        clear()
        results[f"celery worker, concurrency {args.workers}"] = run_with_workers(
            items, args.workers, database_url, args.redis_url
        )
    except redis.RedisError as exc:
        print(f"worker run skipped: Redis unreachable at {args.redis_url} ({exc})")
    clear()

    print()
    print(
        f"machine: {machine()}; database: {database_label(database_url)}; "
        f"{args.n} memories, {words(items) / args.n:.0f} words each on average"
    )
    print(f"{'path':34} {'memories/s':>10} {'seconds':>8}")
    for path, seconds in results.items():
        print(f"{path:34} {args.n / seconds:10.2f} {seconds:8.1f}")


if __name__ == "__main__":
    main()
