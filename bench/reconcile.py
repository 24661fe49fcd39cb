"""Reconciliation of one user with 20,000 memories x 16 vectors in the local store.

    .venv/bin/python bench/reconcile.py [--memories 20000] [--vectors 16] [--database-url URL] [--reload]

Loads one user's indexed memories as the pipeline leaves them (`Memory`, `MemoryVector` and the
local store's `LocalVector`, 384-dim float32 vectors), then plants drift: vectors missing from the
store, orphans (vectors of a deleted memory and of no memory), metadata that differs. Then times
`reconcile(uid=...)` (finding), `reconcile(uid=..., repair=True)` and a last `reconcile` that must
find nothing; then plants the drift again and finds it once more under tracemalloc, for the peak of
Python memory a run takes (the work goes in batches: far below what the user's vectors would take).
The user is loaded once (`--reload` loads it again).
"""

import argparse
import time
import tracemalloc

import numpy as np
from common import database_label, machine, setup_django

UID = "reconcile-bench"
DIM = 384


def load(memories: int, per_memory: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from memories.models import LocalVector, LocalVectorVersion, Memory, MemoryVector
    from memories.vectors import vector_metadata

    rng = np.random.default_rng(0)
    blob = (rng.standard_normal(DIM).astype("<f4") / 20).tobytes()
    with transaction.atomic():
        LocalVector.objects.filter(uid=UID).delete()
        LocalVectorVersion.objects.filter(uid=UID).delete()
        Memory.objects.filter(uid=UID).delete()
    now = timezone.now()
    for start in range(0, memories, 1000):
        with transaction.atomic():
            rows = Memory.objects.bulk_create(
                Memory(uid=UID, transcript="-", status="indexed", indexed_at=now, category="work", created_at=now)
                for _ in range(min(1000, memories - start))
            )
            kinds = ["memory"] + ["window"] * 3 + ["snippet"] * (per_memory - 4)
            suffixes = [""] + [f"-c{i}" for i in range(3)] + [f"-s{i}" for i in range(per_memory - 4)]
            vectors, records = [], []
            for memory in rows:
                for position, (kind, suffix) in enumerate(zip(kinds, suffixes)):
                    vector_id = f"{memory.vector_id}{suffix}"
                    vectors.append(
                        MemoryVector(
                            memory=memory,
                            position=position,
                            kind=kind,
                            vector_id=vector_id,
                            model="m",
                            dim=DIM,
                            vector=blob,
                        )
                    )
                    metadata = vector_metadata(memory, kind)
                    records.append(
                        LocalVector(
                            namespace="ns1",
                            record_id=vector_id,
                            **{
                                name: metadata[name]
                                for name in ("uid", "memory_id", "created_at", "category", "source")
                            },
                            kind=kind,
                            metadata=metadata,
                            values=blob,
                        )
                    )
            MemoryVector.objects.bulk_create(vectors, batch_size=2000)
            LocalVector.objects.bulk_create(records, batch_size=2000)
        print(f"  loaded {start + len(rows)} memories", flush=True)
    from django.db import connection

    if connection.vendor == "postgresql":  # what autovacuum would do after such a load
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE memories_memory, search_memoryvector, search_localvector")


def plant() -> dict:
    from memories.models import LocalVector, Memory, MemoryVector

    ids = list(Memory.objects.filter(uid=UID, status="indexed").order_by("id").values_list("id", flat=True))
    lost = list(MemoryVector.objects.filter(memory_id__in=ids[100:150], position=1).values_list("vector_id", flat=True))
    LocalVector.objects.filter(record_id__in=lost).delete()
    Memory.objects.filter(id__in=ids[200:205]).update(status="deleted")
    LocalVector.objects.filter(memory_id__in=[str(i) for i in ids[300:320]], kind="memory").update(category="finance")
    template = LocalVector.objects.filter(uid=UID).first()
    LocalVector.objects.bulk_create(
        LocalVector(
            namespace="ns1",
            record_id=f"{UID}-{10**9 + i}",
            uid=UID,
            memory_id=str(10**9 + i),
            created_at=template.created_at,
            values=template.values,
        )
        for i in range(7)
    )
    deleted = MemoryVector.objects.filter(memory_id__in=ids[200:205]).count()
    return {"missing": len(lost), "orphan": deleted + 7, "metadata": 20}


def timed(label: str, *, trace: bool = False, **kwargs):
    from memories.reconcile import reconcile

    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    report = reconcile(uid=UID, **kwargs)
    seconds = time.perf_counter() - started
    peak = f"peak {tracemalloc.get_traced_memory()[1] / 2**20:5.1f} MiB" if trace else ""
    tracemalloc.stop()
    print(
        f"{label:<30} {seconds:6.1f} s {peak:>16}   {report.memories_checked} memories, "
        f"{report.vectors_checked} vectors; found {report.counts}; repaired {report.repaired}, removed {report.removed}"
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=20_000)
    parser.add_argument("--vectors", type=int, default=16)
    parser.add_argument("--database-url")
    parser.add_argument("--reload", action="store_true", help="load the user again")
    arguments = parser.parse_args()
    url = setup_django(arguments.database_url)

    from memories.models import Memory

    if arguments.reload or Memory.objects.filter(uid=UID).count() != arguments.memories:
        load(arguments.memories, arguments.vectors)
    planted = plant()
    total = arguments.memories * arguments.vectors
    print(f"{machine()}; {database_label(url)}; one user, {arguments.memories} memories x {arguments.vectors} vectors")
    print(f"planted: {planted}; the user's vectors alone would take {total * DIM * 4 / 2**20:.0f} MiB")
    found = timed("find")
    assert found.counts == planted, (found.counts, planted)
    timed("find and repair", repair=True)
    assert timed("find (after repair)").found == 0
    planted = plant()
    assert timed("find again, under tracemalloc", trace=True).counts == planted
    timed("repair", repair=True)


if __name__ == "__main__":
    main()
