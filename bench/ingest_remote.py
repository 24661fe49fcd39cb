"""Ingest on the production parts, batched against one-at-a-time, with network latency.

    .venv/bin/python bench/ingest_remote.py [--n 1000] [--latency 0.05] [--database-url URL]

Both fakes (OpenAI: chat completions and embeddings; Pinecone's data plane) run in processes of
their own and wait `--latency` seconds before every answer. The same memories go through:
- one at a time, as in Omi's document: per memory one extraction call, one embedding call (all
  its texts) and one upsert;
- batched, as the batch API and `import_memories` do: 100 memories at a time, extraction calls
  EXTRACT_CONCURRENCY at once, one embedding call for all their texts, upserts of 100 vectors.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from common import ROOT, database_label, machine, setup_django


def start_fake(module: str, latency: float, *extra: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--latency", str(latency), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        raise SystemExit(f"{module} did not start: {line!r}")
    return process, line.split()[-1]


def transcripts(n: int, tag: str) -> list[dict]:
    rows = [json.loads(line) for line in (ROOT / "memories/demo/demo_memories.jsonl").read_text().splitlines()]
    return [
        {
            "uid": f"remote-{i % 50}",
            "transcript": "\n".join(f"{line} ({tag}{i})" for line in rows[i % len(rows)]["transcript"].splitlines()),
        }
        for i in range(n)
    ]


def run(label: str, items: list[dict], batch: int) -> float:
    from tqdm import tqdm

    from memories.processing import memory_process_many
    from memories.services import memory_create_many

    memories = memory_create_many(items=items, enqueue=False)
    ids = [m.id for m in memories]
    started = time.perf_counter()
    with tqdm(total=len(ids), desc=label, unit="memory", mininterval=1) as bar:
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            outcomes = memory_process_many(memory_ids=chunk)
            assert set(outcomes.values()) == {"indexed"}, outcomes
            bar.update(len(chunk))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every request")
    parser.add_argument("--dimensions", type=int, default=256, help="embedding dimensions")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--database-url")
    args = parser.parse_args()

    openai_server, openai_url = start_fake("tests.support.fake_openai", args.latency)
    pinecone_server, pinecone_url = start_fake(
        "tests.support.fake_pinecone", args.latency, "--dimension", str(args.dimensions)
    )
    try:
        os.environ.update(
            {
                "EXTRACTOR": "openai",
                "EMBEDDER": "openai",
                "VECTOR_STORE": "pinecone",
                "OPENAI_API_KEY": "bench",
                "OPENAI_BASE_URL": f"{openai_url}/v1",
                "OPENAI_EMBEDDING_DIMENSIONS": str(args.dimensions),
                "PINECONE_API_KEY": "bench",
                "PINECONE_HOST": pinecone_url,
                "VECTOR_NAMESPACE": "bench",
            }
        )
        database_url = setup_django(args.database_url)
        from django.conf import settings

        from memories.models import Memory

        Memory.objects.filter(uid__startswith="remote-").delete()
        one = run("one at a time", transcripts(args.n, "a"), batch=1)
        batched = run(f"batched x{args.batch}", transcripts(args.n, "b"), batch=args.batch)
        Memory.objects.filter(uid__startswith="remote-").delete()
    finally:
        for process in (openai_server, pinecone_server):
            os.killpg(process.pid, signal.SIGTERM)

    print()
    print(
        f"machine: {machine()}; database: {database_label(database_url)}; {args.n} memories per path "
        f"{args.latency * 1000:.0f} ms added to every request; "
        f"{args.dimensions} dims; EXTRACT_CONCURRENCY={settings.EXTRACT_CONCURRENCY}"
    )
    print(f"{'path':34} {'memories/s':>10} {'seconds':>8}")
    print(f"{'one at a time (Omi document)':34} {args.n / one:10.1f} {one:8.1f}")
    print(f"{f'batched, {args.batch} per batch':34} {args.n / batched:10.1f} {batched:8.1f}")
    print(f"batched / one at a time: {one / batched:.1f}x")


if __name__ == "__main__":
    main()
