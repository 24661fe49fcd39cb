"""Ingest on the production parts, batched against one-at-a-time, with network latency.

    .venv/bin/python bench/ingest_remote.py [--n 1000] [--latency 0.05] [--database-url URL]

Both fakes (OpenAI: chat completions and embeddings; Pinecone's data plane) run in processes of
their own and wait `--latency` seconds before every answer. The same memories go through:
- one at a time, as in Omi's document: per memory one extraction call, one embedding call (all
  its texts) and one upsert;
- batched, as the batch API and `import_memories` do: 100 memories at a time, extraction calls
  EXTRACT_CONCURRENCY at once, one embedding call for all their texts, upserts of 100 vectors.

It prints, per memory, the tokens sent to the embeddings API (the `usage` the server answers) and
the vectors stored, and what a million memories a month would cost at the list prices below
(SNIPPET_VECTORS decides the plan: `none`, windows only, is the default with a remote embedder;
`--snippet-vectors texts` embeds each snippet as a text of its own, as before late chunking).
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


# List prices used for the estimate (USD; OpenAI's and Pinecone's price pages, serverless standard plan).
EMBEDDING_PRICE_PER_MILLION_TOKENS = {"text-embedding-3-large": 0.13, "text-embedding-3-small": 0.02}
PINECONE_STORAGE_PER_GB_MONTH = 0.33
PINECONE_WRITE_UNITS_PER_MILLION = 4.0  # a write unit per kilobyte of each record upserted
METADATA_BYTES = 150  # a vector's id and metadata (uid, memory_id, created_at, category, source, kind)


def monthly_cost(tokens: float, vectors: float, dimensions: int, model: str) -> dict[str, float]:
    """Dollars for a million memories made in a month (embedded once, upserted once) and stored
    for that month, with `tokens` and `vectors` per memory."""
    record_kb = (dimensions * 4 + METADATA_BYTES) / 1024
    return {
        "embeddings": tokens * EMBEDDING_PRICE_PER_MILLION_TOKENS[model],
        "pinecone writes": vectors * max(1.0, record_kb) * PINECONE_WRITE_UNITS_PER_MILLION,
        "pinecone storage": vectors * 1e6 * record_kb * 1024 / 1e9 * PINECONE_STORAGE_PER_GB_MONTH,
    }


def count_tokens_sent() -> dict[str, int]:
    """Count the tokens the embeddings API reports (its `usage`) from here on."""
    from openai.resources.embeddings import Embeddings

    sent = {"tokens": 0}
    create = Embeddings.create

    def counted(self, *args, **kwargs):
        response = create(self, *args, **kwargs)
        sent["tokens"] += response.usage.prompt_tokens
        return response

    Embeddings.create = counted
    return sent


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
    parser.add_argument("--snippet-vectors", choices=["none", "texts"], default="none")
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
                "SNIPPET_VECTORS": args.snippet_vectors,
            }
        )
        database_url = setup_django(args.database_url)
        from django.conf import settings

        from memories.models import Memory, MemoryVector

        Memory.objects.filter(uid__startswith="remote-").delete()
        sent = count_tokens_sent()
        one = run("one at a time", transcripts(args.n, "a"), batch=1)
        tokens = sent["tokens"] / args.n
        vectors = MemoryVector.objects.filter(memory__uid__startswith="remote-").count() / args.n
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
    model = settings.OPENAI_EMBEDDING_MODEL
    print(
        f"SNIPPET_VECTORS={args.snippet_vectors}: per memory {tokens:.0f} tokens sent to the embeddings API, "
        f"{vectors:.1f} vectors stored"
    )
    costs = monthly_cost(tokens, vectors, args.dimensions, model)
    print(
        f"a million memories a month ({model} ${EMBEDDING_PRICE_PER_MILLION_TOKENS[model]}/M tokens; Pinecone "
        f"${PINECONE_WRITE_UNITS_PER_MILLION}/M write units, ${PINECONE_STORAGE_PER_GB_MONTH}/GB-month): "
        + ", ".join(f"{name} ${cost:,.0f}" for name, cost in costs.items())
        + f"; total ${sum(costs.values()):,.0f}"
    )


if __name__ == "__main__":
    main()
