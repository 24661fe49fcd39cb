"""Duplicate detection for one user with 5,000 memories: the seed's pairwise loop against ours.

    .venv/bin/python bench/duplicates.py [--n 5000] [--database-url URL] [--reload]

Loads one user's memories with MiniLM-like unit vectors (384 dims: topic centres that share a
common direction, plus noise, so that memories of one topic have cosines of about 0.3 to 0.7),
with some planted near-duplicates (a memory's vector plus a little noise, cosine 0.96 to 0.995),
stored as the pipeline stores them (indexed `Memory` rows and their position-0 `MemoryVector`).
Then, in one run:

- the seed's rule: a Python double loop over every pair, cosine per pair with numpy, over the
  vectors read from the database (the read is not timed, only the loop);
- ours: `duplicate_scan(uid=...)` unchanged: it reads the user's vectors from the database, finds
  the pairs with block matrix products (`similar_pairs`) and writes the `DuplicatePair` rows; its
  `similar_pairs` step is also timed alone.

Both must find the same pairs; the times and the ratio are printed.
"""

import argparse
import time
from datetime import timedelta

import numpy as np
from common import database_label, machine, setup_django

UID = "dup-bench"
DIM = 384


def vectors(n: int, topics: int, planted: int, seed: int) -> tuple[np.ndarray, set[tuple[int, int]]]:
    """n unit vectors in `topics` topics; the last `planted` rows are near-copies of earlier ones."""
    rng = np.random.default_rng(seed)

    def unit(rows: np.ndarray) -> np.ndarray:
        return rows / np.linalg.norm(rows, axis=-1, keepdims=True)

    common = unit(rng.standard_normal(DIM))  # MiniLM's vectors are not centred: they share a direction
    centres = unit(0.5 * common + unit(rng.standard_normal((topics, DIM))))
    originals = n - planted
    spread = rng.uniform(0.8, 1.4, size=topics)  # some topics are tighter than others
    topic = rng.integers(0, topics, size=originals)
    noise = unit(rng.standard_normal((originals, DIM))) * spread[topic, None]
    matrix = unit(centres[topic] + noise)
    sources = rng.choice(originals, size=planted, replace=False)
    copies = unit(matrix[sources] + unit(rng.standard_normal((planted, DIM))) * rng.uniform(0.1, 0.28, (planted, 1)))
    return np.vstack([matrix, copies]).astype("<f4"), {(int(s), originals + i) for i, s in enumerate(sources)}


def load(n: int, topics: int, planted: int, seed: int, model: str) -> None:
    from django.db import transaction
    from django.utils import timezone

    from memories.models import Memory, MemoryVector
    from search.models import DuplicatePair

    matrix, _ = vectors(n, topics, planted, seed)
    now = timezone.now()
    with transaction.atomic():
        DuplicatePair.objects.filter(uid=UID).delete()
        Memory.objects.filter(uid=UID).delete()
        memories = Memory.objects.bulk_create(
            [
                Memory(
                    uid=UID,
                    transcript=f"Speaker 0: synthetic memory {i}.",
                    title=f"Synthetic memory {i}",
                    created_at=now - timedelta(minutes=n - i),
                    status=Memory.Status.INDEXED,
                    embedding_model=model,
                    embedding_dim=DIM,
                )
                for i in range(n)
            ],
            batch_size=1000,
        )
        MemoryVector.objects.bulk_create(
            [own_vector(memory, matrix[i], model) for i, memory in enumerate(memories)], batch_size=1000
        )


def own_vector(memory, vector: np.ndarray, model: str):
    """A memory's own vector (position 0) as the pipeline keeps it in the database."""
    from memories.models import MemoryVector

    return MemoryVector(
        memory=memory,
        position=0,
        kind="memory",
        vector_id=memory.vector_id,
        model=model,
        dim=DIM,
        vector=np.asarray(vector, dtype="<f4").tobytes(),
    )


def seed_pairs(ids: list[int], rows: list[np.ndarray], threshold: float) -> set[tuple[int, int]]:
    """The seed's rule: every pair, one cosine at a time."""
    found = set()
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            cosine = float(np.dot(rows[i], rows[j]) / (np.linalg.norm(rows[i]) * np.linalg.norm(rows[j])))
            if cosine >= threshold:
                found.add((ids[i], ids[j]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5_000, help="memories of the one user")
    parser.add_argument("--topics", type=int, default=60)
    parser.add_argument("--planted", type=int, default=60, help="near-duplicates planted")
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reload", action="store_true", help="rebuild the synthetic data")
    parser.add_argument("--database-url")
    args = parser.parse_args()

    database_url = setup_django(args.database_url)
    from memories.models import Memory, MemoryVector
    from memories.parts.embedders import get_embedder
    from memories.selectors import memory_vectors_matrix
    from search.analysis.duplicates import duplicate_scan, similar_pairs
    from search.models import DuplicatePair

    model = get_embedder().model
    have = MemoryVector.objects.filter(memory__uid=UID, position=0, model=model).count()
    if args.reload or have != args.n:
        started = time.perf_counter()
        load(args.n, args.topics, args.planted, args.seed, model)
        print(f"loaded {args.n} memories in {time.perf_counter() - started:.1f} s")
    else:
        print(f"reusing {have} synthetic memories of {UID}")

    # The seed's loop, over the stored vectors as they come from the database (not normalised).
    stored = list(
        MemoryVector.objects.filter(memory__uid=UID, memory__status=Memory.Status.INDEXED, position=0)
        .order_by("memory_id")
        .values_list("memory_id", "vector")
    )
    ids = [memory_id for memory_id, _ in stored]
    rows = [np.frombuffer(bytes(vector), dtype="<f4") for _, vector in stored]
    print(f"seed's loop over {len(rows) * (len(rows) - 1) // 2:,} pairs ...", flush=True)
    started = time.perf_counter()
    seed_found = seed_pairs(ids, rows, args.threshold)
    seed_seconds = time.perf_counter() - started

    # Ours, unchanged, from an empty review queue; then its matrix step alone.
    DuplicatePair.objects.filter(uid=UID).delete()
    started = time.perf_counter()
    counts = duplicate_scan(uid=UID, threshold=args.threshold)
    scan_seconds = time.perf_counter() - started
    ours = set(DuplicatePair.objects.filter(uid=UID).values_list("memory_a_id", "memory_b_id"))
    matrix_ids, matrix = memory_vectors_matrix(uid=UID)
    started = time.perf_counter()
    blocks = similar_pairs(matrix, args.threshold)
    blocks_seconds = time.perf_counter() - started

    assert ours == seed_found, f"different pairs: {len(ours ^ seed_found)} differ"
    assert {(matrix_ids[i], matrix_ids[j]) for i, j, _ in blocks} == seed_found
    similarities = sorted(s for _, _, s in blocks)

    print()
    print(
        f"machine: {machine()}; database: {database_label(database_url)}; one user, {len(ids)} memories, "
        f"{DIM} dims; threshold {args.threshold}"
    )
    print(
        f"pairs found: {len(seed_found)} by both (planted {args.planted}); "
        f"cosines {similarities[0]:.3f} to {similarities[-1]:.3f}"
        if similarities
        else "pairs found: 0"
    )
    print(f"seed's pairwise loop:              {seed_seconds:9.3f} s")
    print(f"duplicate_scan (read, blocks, write): {scan_seconds:6.3f} s   ratio {seed_seconds / scan_seconds:,.0f}x")
    print(f"similar_pairs alone:               {blocks_seconds:9.3f} s   ratio {seed_seconds / blocks_seconds:,.0f}x")
    print(f"scan counts: {counts}")


if __name__ == "__main__":
    main()
