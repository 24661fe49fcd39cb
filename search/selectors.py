"""Reads about searches. `uid=None` means every user (a key that is not scoped)."""

import numpy as np
from django.db.models import Count, Max

from memories.models import Memory
from omi_memory.errors import NotFound

from .models import EvalRun, MemoryVector, SearchLog


def search_log_get(*, search_id: int, uid: str | None = None) -> SearchLog:
    """One logged search, or NotFound: also for another user's search, so ids reveal nothing."""
    searches = SearchLog.objects.filter(id=search_id)
    if uid is not None:
        searches = searches.filter(uid=uid)
    search = searches.first()
    if search is None:
        raise NotFound(f"search {search_id} not found")
    return search


def judged_search_counts() -> dict[str, int]:
    """How many searches of each strategy have at least one judgment: {strategy: count}."""
    rows = (SearchLog.objects.filter(feedback__isnull=False).order_by().values_list("strategy")
            .annotate(n=Count("id", distinct=True)))
    return dict(rows)


def eval_runs_latest() -> list[EvalRun]:
    """The newest evaluation run of each (strategy, split), by split then strategy."""
    newest = EvalRun.objects.order_by().values("strategy", "split").annotate(last=Max("id")).values_list("last", flat=True)
    return list(EvalRun.objects.filter(id__in=list(newest)).order_by("split", "strategy"))


def memory_vectors_matrix(*, uid: str, memory_ids: list[int] | None = None) -> tuple[list[int], np.ndarray]:
    """The memory-level vector (position 0: structured fields + transcript) of each indexed memory
    of one user, as unit-length float32 rows, with their memory ids in the same order.

    Only vectors of the current embedding model count, so a matrix never mixes models."""
    from .embedders import get_embedder

    rows = MemoryVector.objects.filter(
        memory__uid=uid, memory__status=Memory.Status.INDEXED, position=0, model=get_embedder().model
    )
    if memory_ids is not None:
        rows = rows.filter(memory_id__in=memory_ids)
    pairs = list(rows.order_by("memory_id").values_list("memory_id", "vector"))
    if not pairs:
        return [], np.zeros((0, 0), dtype=np.float32)
    matrix = np.vstack([np.frombuffer(bytes(vector), dtype="<f4") for _, vector in pairs])
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return [memory_id for memory_id, _ in pairs], matrix / np.maximum(norms, 1e-12)


def memory_neighbours(*, memory, k: int = 5) -> list[tuple[Memory, float]]:
    """The k indexed memories of the same user most similar to this one, with their cosine, best
    first; none for a memory that is not indexed."""
    ids, matrix = memory_vectors_matrix(uid=memory.uid)
    if memory.id not in ids:
        return []
    similarities = matrix @ matrix[ids.index(memory.id)]
    order = [i for i in np.argsort(-similarities) if ids[i] != memory.id][:k]
    found = Memory.objects.in_bulk([ids[i] for i in order])
    return [(found[ids[i]], float(similarities[i])) for i in order if ids[i] in found]


def memory_vector_summary(*, memory) -> list[dict]:
    """The vectors a memory has, by kind: how many, and of which model and dimension."""
    rows = MemoryVector.objects.filter(memory=memory).values("kind", "model", "dim").annotate(count=Count("id"))
    return list(rows.order_by("kind", "model"))
