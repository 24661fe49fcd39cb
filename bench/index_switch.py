"""An index version built and switched to while searches go on: failed searches and latency.

    .venv/bin/python bench/index_switch.py [--copies 5] [--dimensions 256] [--latency 0.05]
        [--threads 2] [--database-url URL]

The live version is the local model (MiniLM, 384 dims) over the local store, filled with the demo
conversations (`--copies` of each, told apart by a tag) through the pipeline. Then, while
`--threads` threads of this process search one demo user after another (hybrid, k=5, a pause of
`--pause` seconds between searches), another process runs `manage.py index_build --embedder openai
--dimensions N` against the fake OpenAI server (`--latency` seconds per request), a third runs
`index_activate` to it, and later `index_activate --previous` back: the searching process is never
restarted. It prints, per phase, the searches, how many failed or came back empty, and their
latency (p50, p95, max), and the build's time. Nothing here is a pass/fail test.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

from common import ROOT, database_label, machine, percentiles, setup_django
from ingest_remote import start_fake

QUERIES = [
    "what did the dentist say",
    "how far did we run",
    "the budget for next month",
    "when is the deploy",
    "birthday party plans",
    "what book should I read",
    "the trip itinerary",
    "doctor appointment",
]


def load_demo(copies: int) -> int:
    from memories.processing import memory_process_many
    from memories.services import memory_create_many

    rows = [json.loads(line) for line in (ROOT / "memories/demo/demo_memories.jsonl").read_text().splitlines()]
    items = [
        {"uid": row["uid"], "transcript": row["transcript"] + (f"\n(copy {copy})" if copy else "")}
        for copy in range(copies)
        for row in rows
    ]
    ids = [m.id for m in memory_create_many(items=items, enqueue=False)]
    for start in range(0, len(ids), 32):
        outcomes = memory_process_many(memory_ids=ids[start : start + 32])
        assert set(outcomes.values()) == {"indexed"}, outcomes
    return len(ids)


class Load:
    """Threads searching until stopped; every search noted with the phase it ran in."""

    def __init__(self, threads: int, pause: float, uids: list[str]):
        self.phase = "before"
        self.samples: list[tuple[str, float, float, str]] = []  # (phase, started, ms, outcome)
        self.versions: dict[str, int] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i, pause, uids)) for i in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, n: int, pause: float, uids: list[str]) -> None:
        from django.db import connection

        from search.models import SearchLog
        from search.services import search_memories

        i = n
        while not self._stop.is_set():
            uid, query = uids[i % len(uids)], QUERIES[i % len(QUERIES)]
            i += 1
            phase, started = self.phase, time.perf_counter()
            try:
                result = search_memories(uid=uid, queries=[query], k=5)
                took = (time.perf_counter() - started) * 1000
                outcome = "ok" if result.hits else "empty"
                version = SearchLog.objects.get(id=result.search_id).params["index_version"]
                self.versions[version] = self.versions.get(version, 0) + 1
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                took = (time.perf_counter() - started) * 1000
                outcome = f"failed: {type(exc).__name__}: {exc}"
            self.samples.append((phase, started, took, outcome))
            time.sleep(pause)
        connection.close()


def manage(*args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, env=os.environ.copy()
    )
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=5, help="copies of the 40 demo conversations")
    parser.add_argument("--dimensions", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the fake OpenAI adds to a request")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between one thread's searches")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds searched in each quiet phase")
    parser.add_argument("--database-url")
    args = parser.parse_args()

    openai_server, openai_url = start_fake("tests.support.fake_openai", args.latency)
    try:
        os.environ.update(
            {
                "EMBEDDER": "local",
                "VECTOR_STORE": "local",
                "OPENAI_API_KEY": "bench",
                "OPENAI_BASE_URL": f"{openai_url}/v1",
                "INDEX_VERSION_TTL": "1.0",
            }
        )
        database_url = setup_django(args.database_url)
        from django.conf import settings

        from memories.models import LocalVector, LocalVectorVersion, Memory, VectorIndex

        Memory.objects.all().delete()
        LocalVector.objects.all().delete()
        LocalVectorVersion.objects.all().delete()
        VectorIndex.objects.all().delete()
        loaded_at = time.perf_counter()
        n = load_demo(args.copies)
        loaded = time.perf_counter() - loaded_at
        uids = sorted(set(Memory.objects.values_list("uid", flat=True)))
        from search.services import search_memories

        for uid in uids:  # the model loaded and each user's vectors read once before anything is timed
            search_memories(uid=uid, queries=[QUERIES[0]], k=5, log=False)

        load = Load(args.threads, args.pause, uids)
        load.start()
        events = []
        try:
            time.sleep(args.settle)
            load.phase = "during the build"
            build_seconds, built = manage(
                "index_build", "--embedder", "openai", "--dimensions", str(args.dimensions),
                "--batch-size", str(args.batch_size),
            )  # fmt: skip
            version = built.split()[0]
            load.phase = "built, before the switch"
            time.sleep(args.settle)
            load.phase = "switch to the new version (+-2 s)"
            time.sleep(2)
            events.append(("activate", time.perf_counter()))
            manage("index_activate", version)
            time.sleep(2)
            load.phase = "on the new version"
            time.sleep(args.settle)
            load.phase = "rollback to the previous (+-2 s)"
            time.sleep(2)
            events.append(("previous", time.perf_counter()))
            manage("index_activate", "--previous")
            time.sleep(2)
            load.phase = "back on the first version"
            time.sleep(args.settle)
        finally:
            load.stop()
        rows = VectorIndex.objects.order_by("id")
        vectors = {r.name: LocalVector.objects.filter(namespace=r.namespace).count() for r in rows}
        new = rows.get(store__endswith=f"-{version}")
        building = (new.built_at - new.started_at).total_seconds()
    finally:
        os.killpg(openai_server.pid, signal.SIGTERM)

    print()
    print(
        f"machine: {machine()} (shared with other jobs: figures are indicative); database: "
        f"{database_label(database_url)}; {n} memories ({args.copies} x the demo), loaded in {loaded:.0f} s; "
        f"{args.threads} search threads, {args.pause * 1000:.0f} ms pause; fake OpenAI +{args.latency * 1000:.0f} ms "
        f"per request; INDEX_VERSION_TTL={settings.INDEX_VERSION_TTL}"
    )
    print(
        f"build of {version} (openai, {args.dimensions} dims, batches of {args.batch_size}) in another process: "
        f"{build_seconds:.1f} s with the command's start-up, {building:.1f} s building ({n / building:.1f} "
        f"memories/s); vectors per version: {vectors}"
    )
    print(f"{'phase':38} {'searches':>8} {'failed':>6} {'empty':>5} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    failures = []
    for phase in dict.fromkeys(sample[0] for sample in load.samples):
        samples = [s for s in load.samples if s[0] == phase]
        failed = [s[3] for s in samples if s[3].startswith("failed")]
        failures += failed
        empty = sum(1 for s in samples if s[3] == "empty")
        stats = percentiles([s[2] for s in samples])
        print(
            f"{phase:38} {len(samples):8d} {len(failed):6d} {empty:5d} {stats['p50']:7.1f} {stats['p95']:7.1f} "
            f"{max(s[2] for s in samples):7.1f}"
        )
    print(f"searches per version ('': the live index before index_build adopted it): {load.versions}")
    for failure in failures[:5]:
        print(failure)


if __name__ == "__main__":
    main()
