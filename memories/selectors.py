"""Reads: memories, their vectors, API keys and the audit trail. `uid=None` means every user (a key
that is not scoped)."""

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from cachetools import LRUCache
from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import Substr
from django.utils import timezone

from omi_memory.errors import BackendError, NotFound

from .models import ApiKey, AuditEvent, Memory, MemoryVector, ReconcileRun, VectorIndex
from .parts.embedders import get_embedder
from .parts.vectorstores import SearchFilters, get_vector_store


def memory_list(
    *,
    uid: str | None = None,
    status: str | None = None,
    category: str | None = None,
    source: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    text: str = "",
) -> QuerySet[Memory]:
    """Memories, newest first; deleted ones only when asked for by status. `text`: contained in
    the title, overview or transcript (any case)."""
    memories = Memory.objects.all()
    if text:
        memories = memories.filter(
            Q(title__icontains=text) | Q(overview__icontains=text) | Q(transcript__icontains=text)
        )
    if uid is not None:
        memories = memories.filter(uid=uid)
    memories = memories.filter(status=status) if status else memories.exclude(status=Memory.Status.DELETED)
    if category:
        memories = memories.filter(category=category)
    if source:
        memories = memories.filter(source=source)
    if starts_at:
        memories = memories.filter(created_at__gte=starts_at)
    if ends_at:
        memories = memories.filter(created_at__lte=ends_at)
    return memories


def memory_get(*, memory_id: int, uid: str | None = None, include_deleted: bool = False) -> Memory:
    """One memory, or NotFound: also for another user's memory, so ids reveal nothing."""
    memories = Memory.objects.filter(id=memory_id)
    if uid is not None:
        memories = memories.filter(uid=uid)
    if not include_deleted:
        memories = memories.exclude(status=Memory.Status.DELETED)
    memory = memories.prefetch_related("action_items", "events").first()
    if memory is None:
        raise NotFound(f"memory {memory_id} not found")
    return memory


def memory_uids() -> list[tuple[str, int]]:
    """Every user that has memories (deleted ones aside), with how many: [(uid, count)] by uid."""
    rows = (
        Memory.objects.exclude(status=Memory.Status.DELETED).values_list("uid").annotate(n=Count("id")).order_by("uid")
    )
    return list(rows)


def memory_transcript_starts(*, memory_ids: list[int], chars: int) -> dict[int, str]:
    """The first `chars` characters of each memory's transcript (with "…" when cut), by id."""
    rows = Memory.objects.filter(id__in=memory_ids).annotate(start=Substr("transcript", 1, chars + 1))
    return {
        memory_id: start if len(start) <= chars else start[:chars].rstrip() + "…"
        for memory_id, start in rows.values_list("id", "start")
    }


def pipeline_stats(*, now: datetime | None = None, failed_limit: int = 50) -> dict:
    """What the pipeline page shows: memories by status, what was indexed in the last hour (in
    12 buckets of 5 minutes, oldest first) and the most recent failures with their reasons."""
    now = now or timezone.now()
    counts = {status: 0 for status in Memory.Status.values}
    for row in Memory.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    hour_ago = now - timedelta(hours=1)
    buckets = [0] * 12
    for indexed_at in Memory.objects.filter(indexed_at__gt=hour_ago).values_list("indexed_at", flat=True):
        buckets[min(11, int((indexed_at - hour_ago).total_seconds() // 300))] += 1
    failed = Memory.objects.filter(status=Memory.Status.FAILED).order_by("-updated_at")
    return {
        "counts": counts,
        "busy": counts["queued"] + counts["processing"],
        "indexed_last_hour": sum(buckets),
        "per_minute": round(sum(buckets) / 60, 2),
        "buckets": buckets,
        "failed": list(failed[:failed_limit]),
        "failed_total": counts["failed"],
    }


def reconcile_runs_latest() -> dict:
    """The pipeline page's reconciliation: the last finished run (`last`) and the one under way,
    if any (`current`: queued or running, with progress in the last ReconcileRun.STALE_AFTER)."""
    runs = ReconcileRun.objects.all()
    finished = runs.filter(status__in=[ReconcileRun.Status.DONE, ReconcileRun.Status.FAILED])
    under_way = runs.filter(
        status__in=[ReconcileRun.Status.QUEUED, ReconcileRun.Status.RUNNING],
        updated_at__gte=timezone.now() - ReconcileRun.STALE_AFTER,
    )
    return {"last": finished.first(), "current": under_way.first()}


def queue_state(*, now: datetime | None = None) -> dict:
    """Memories by status, and how long the oldest waiting one (queued or processing) has been in
    its status, in seconds (0 when none waits): what /metrics reads at each scrape."""
    now = now or timezone.now()
    counts = {status: 0 for status in Memory.Status.values}
    for status, n in Memory.objects.values_list("status").annotate(n=Count("id")).order_by():
        counts[status] = n
    waiting = Memory.objects.filter(status__in=[Memory.Status.QUEUED, Memory.Status.PROCESSING])
    oldest = waiting.aggregate(oldest=Min("updated_at"))["oldest"]
    return {"counts": counts, "oldest_waiting_seconds": max(0.0, (now - oldest).total_seconds()) if oldest else 0.0}


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The key, when it exists and is neither revoked nor expired, checked at every request (what
    is written at most once a minute is only `last_used_at`); else None."""
    if not raw_key:
        return None
    now = timezone.now()
    key = (
        ApiKey.objects.filter(key_hash=ApiKey.hash(raw_key), revoked_at=None)
        .filter(Q(expires_at=None) | Q(expires_at__gt=now))
        .first()
    )
    if key is not None and (key.last_used_at is None or key.last_used_at < now - timedelta(minutes=1)):
        ApiKey.objects.filter(id=key.id).update(last_used_at=now)  # this field alone: a revocation stays
    return key


def api_key_list() -> QuerySet[ApiKey]:
    """Every key, newest first (revoked and expired ones too: they say what was)."""
    return ApiKey.objects.order_by("-created_at", "-id")


def api_key_get(*, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(id=key_id).first()
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    return key


def api_key_find(*, id_or_prefix: str) -> ApiKey:
    """A key by its number or its prefix (as listed, with or without the trailing "…")."""
    text = id_or_prefix.strip().rstrip("…")
    if text.isdigit():
        return api_key_get(key_id=int(text))
    keys = list(ApiKey.objects.filter(prefix=text)[:2]) if text else []
    if not keys:
        raise NotFound(f"no API key has the number or prefix {text!r}")
    if len(keys) > 1:
        raise NotFound(f"several API keys have the prefix {text!r}; give the key's number")
    return keys[0]


def audit_event_list(
    *,
    action: str = "",
    actor: str = "",
    uid: str = "",
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The audit trail, newest first. `actor`: part of the actor's name (a username, a key's
    prefix or name, an OS user), or a kind ("user", "api_key", "command")."""
    events = AuditEvent.objects.all()
    if action:
        events = events.filter(action=action)
    if actor:
        events = events.filter(Q(actor_name__icontains=actor) | Q(actor_type=actor))
    if uid:
        events = events.filter(uid=uid)
    if starts_at:
        events = events.filter(created_at__gte=starts_at)
    if ends_at:
        events = events.filter(created_at__lte=ends_at)
    return events.order_by("-created_at", "-id")


def audit_actor_names(*, limit: int = 200) -> list[str]:
    """The names that appear as actors, for the filter's suggestions."""
    return list(AuditEvent.objects.order_by("actor_name").values_list("actor_name", flat=True).distinct()[:limit])


def memory_vectors_matrix(*, uid: str, memory_ids: list[int] | None = None) -> tuple[list[int], np.ndarray]:
    """The memory-level vector (position 0: structured fields + transcript) of each indexed memory
    of one user, as unit-length float32 rows, with their memory ids in the same order.

    Only vectors of the current embedding model count, so a matrix never mixes models. The whole
    matrix of a user (`memory_ids=None`) comes from this process's cache, brought up to date first
    (see `_UserMatrix`): only the vectors written since it was read come from the database. The
    matrix is read-only."""
    model = get_embedder().model
    rows = MemoryVector.objects.filter(memory__uid=uid, memory__status=Memory.Status.INDEXED, position=0, model=model)
    if memory_ids is None:
        return _cached_matrix(uid, model, rows)
    pairs = list(rows.filter(memory_id__in=memory_ids).order_by("memory_id").values_list("memory_id", "vector"))
    if not pairs:
        return [], np.zeros((0, 0), dtype=np.float32)
    return [memory_id for memory_id, _ in pairs], _unit_rows([vector for _, vector in pairs])


def _unit_rows(blobs: list) -> np.ndarray:
    matrix = np.vstack([np.frombuffer(bytes(blob), dtype="<f4") for blob in blobs])
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class _UserMatrix:
    """One user's memory-level vectors as read: memory ids (ascending), the id of each vector's row
    (a memory's rows are written anew whenever its vectors change, so a row id names one vector for
    good) and the unit rows."""

    memory_ids: np.ndarray
    row_ids: np.ndarray
    matrix: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes + 16 * len(self.memory_ids)


_matrices: LRUCache | None = None  # (uid, model) -> _UserMatrix
_matrices_lock = threading.Lock()


def _matrix_cache() -> LRUCache:
    """At most MEMORY_MATRIX_CACHE_MB of users' matrices, least recently used out first (a new,
    empty cache if the setting changes). Call with the lock held."""
    global _matrices
    limit = settings.MEMORY_MATRIX_CACHE_MB * 2**20
    if _matrices is None or _matrices.maxsize != limit:
        _matrices = LRUCache(limit, getsizeof=lambda data: data.nbytes)
    return _matrices


def _cached_matrix(uid: str, model: str, rows: QuerySet) -> tuple[list[int], np.ndarray]:
    """The user's matrix from the cache, after one query for the (memory id, row id) of every
    current vector: rows the cache has are kept, the others (new or reprocessed memories) read,
    memories gone dropped. The database stays the truth: no process can answer from a stale matrix."""
    listed = np.array(list(rows.order_by("memory_id").values_list("memory_id", "id")), dtype=np.int64)
    if not len(listed):
        return [], np.zeros((0, 0), dtype=np.float32)
    memory_ids, row_ids = listed[:, 0], listed[:, 1]
    key = (uid, model)
    with _matrices_lock:
        cached = _matrix_cache().get(key)
    where = np.full(len(row_ids), -1, dtype=np.int64)  # each current row's place in the cached matrix
    if cached is not None and len(cached.row_ids):
        order = np.argsort(cached.row_ids)
        at = np.minimum(np.searchsorted(cached.row_ids, row_ids, sorter=order), len(order) - 1)
        hit = cached.row_ids[order[at]] == row_ids
        where[hit] = order[at[hit]]
        if hit.all() and len(row_ids) == len(cached.row_ids):
            return cached.memory_ids.tolist(), cached.matrix
    missing = np.flatnonzero(where < 0)
    read = dict(MemoryVector.objects.filter(id__in=row_ids[missing].tolist()).values_list("id", "vector"))
    fresh = _unit_rows([read[row_id] for row_id in row_ids[missing].tolist()]).astype(np.float32)
    matrix = np.empty((len(row_ids), fresh.shape[1]), dtype=np.float32)
    if cached is not None and cached.matrix.shape[1:] != fresh.shape[1:]:
        raise BackendError(f"memory vectors of uid {uid!r} changed dimension under model {model!r}", permanent=True)
    kept = np.flatnonzero(where >= 0)
    if len(kept):
        matrix[kept] = cached.matrix[where[kept]]
    matrix[missing] = fresh
    matrix.flags.writeable = False  # shared by every caller: none may change it
    data = _UserMatrix(memory_ids, row_ids, matrix)
    with _matrices_lock:
        cache = _matrix_cache()
        cache.pop(key, None)
        if data.nbytes <= cache.maxsize:  # larger than the whole cache: not kept
            cache[key] = data
    return memory_ids.tolist(), matrix


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


def vector_index_overview() -> dict:
    """The index view: the configured store and namespace, its model record (model, dimension) and
    what it says of itself (`stats`, or the `error` it answered), the model records of every store
    and namespace, and from the database: the vectors by kind and the memories of each user."""
    store = get_vector_store()
    try:
        stats, error = store.stats(), ""
    except BackendError as exc:
        stats, error = None, str(exc)
    expected = dict(MemoryVector.objects.values_list("kind").annotate(n=Count("id")).order_by())
    kinds = sorted(set(expected) | set((stats.by_kind or {}) if stats else {}))
    users = (
        Memory.objects.exclude(status=Memory.Status.DELETED)
        .values("uid")
        .annotate(
            memories=Count("id", distinct=True),
            indexed=Count("id", filter=Q(status=Memory.Status.INDEXED), distinct=True),
            vectors=Count("vectors", distinct=True),
        )
        .order_by("uid")
    )
    return {
        "store": store,
        "record": VectorIndex.objects.filter(store=store.identity).first(),
        "records": list(VectorIndex.objects.order_by("store")),
        "stats": stats,
        "store_vectors": stats.namespaces.get(store.namespace, 0) if stats else None,
        "error": error,
        "kinds": [
            {"kind": kind, "database": expected.get(kind, 0), "store": stats.by_kind.get(kind, 0)}
            if stats and stats.by_kind is not None
            else {"kind": kind, "database": expected.get(kind, 0), "store": None}
            for kind in kinds
        ],
        "database_vectors": sum(expected.values()),
        "users": list(users),
    }


def memory_vector_lookup(*, memory: Memory, vector_id: str = "", k: int = 10) -> dict:
    """A memory's vectors as the database keeps them, each with the metadata the store holds for it
    (None: the store lacks it), and the `k` vectors of the same user nearest to one of them
    (`vector_id`, by default the memory's own), as the store finds them, with their memories."""
    store = get_vector_store()
    rows = list(MemoryVector.objects.filter(memory=memory).order_by("position"))
    chosen = next((row for row in rows if row.vector_id == vector_id), rows[0] if rows else None)
    held, neighbours, error = {}, [], ""
    try:
        held = store.fetch_metadata([row.vector_id for row in rows])
        if chosen is not None:
            neighbours = store.query_vectors(chosen.as_array(), uid=memory.uid, top_k=k, filters=SearchFilters())
    except BackendError as exc:
        error = str(exc)
    found = Memory.objects.in_bulk([int(n.memory_id) for n in neighbours if n.memory_id.isdigit()])
    return {
        "memory": memory,
        "vectors": [{"row": row, "metadata": held.get(row.vector_id)} for row in rows],
        "chosen": chosen,
        "neighbours": [
            {"match": n, "memory": found.get(int(n.memory_id)) if n.memory_id.isdigit() else None} for n in neighbours
        ],
        "error": error,
    }
