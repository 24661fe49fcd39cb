"""Reads: memories, their vectors, API keys and the audit trail. `uid=None` means every user (a key
that is not scoped)."""

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from cachetools import LRUCache
from django.conf import settings
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import Substr
from django.utils import timezone

from omi_memory.errors import BackendError, NotFound

from .models import ApiKey, AuditEvent, Memory, MemoryVector, ReconcileRun, VectorIndex
from .parts.embedders import get_embedder
from .parts.vectorstores import SearchFilters, get_vector_store
from .parts.versions import parts_for


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


def pipeline_stats(*, uid: str | None = None, now: datetime | None = None, failed_limit: int = 50) -> dict:
    """What the pipeline page shows, of one user's memories (None: every user's): memories by
    status, what was indexed in the last hour (in 12 buckets of 5 minutes, oldest first) and the
    most recent failures with their reasons."""
    now = now or timezone.now()
    memories = Memory.objects.all() if uid is None else Memory.objects.filter(uid=uid)
    counts = {status: 0 for status in Memory.Status.values}
    for row in memories.values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    hour_ago = now - timedelta(hours=1)
    buckets = [0] * 12
    for indexed_at in memories.filter(indexed_at__gt=hour_ago).values_list("indexed_at", flat=True):
        buckets[min(11, int((indexed_at - hour_ago).total_seconds() // 300))] += 1
    failed = memories.filter(status=Memory.Status.FAILED).order_by("-updated_at")
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


def reconcile_run_get(*, run_id: int) -> ReconcileRun:
    run = ReconcileRun.objects.filter(id=run_id).first()
    if run is None:
        raise NotFound(f"reconciliation {run_id} not found")
    return run


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
    """One user's memory-level vectors as read: per row the memory id, the id of the vector's row in
    the database (a memory's rows are written anew whenever its vectors change, so a row id names
    one vector for good) and whether it is still the memory's vector (`live`); the unit rows
    (read-only: a view of `buffer`, which has room for rows to come); and `settled`: every vector
    row of a smaller id that will ever be committed was committed when these were read (0: unknown).
    Rows are by ascending memory id and all live, until rows written since are added at the end."""

    memory_ids: np.ndarray
    row_ids: np.ndarray
    live: np.ndarray
    buffer: np.ndarray
    settled: int

    @property
    def matrix(self) -> np.ndarray:
        view = self.buffer[: len(self.row_ids)]
        view.flags.writeable = False  # shared by every caller: none may change it
        return view

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes + 17 * len(self.memory_ids)


_matrices: LRUCache | None = None  # (uid, model) -> _UserMatrix
_matrices_lock = threading.Lock()
_update_lock = threading.Lock()  # one update of a kept matrix at a time (they add rows to its buffer)
SETTLE_SECONDS = 60.0  # a transaction that writes vectors commits within this time of taking its row ids
_checkpoints: list[tuple[float, int]] = []  # (monotonic time, greatest vector row id then), oldest first


def _matrix_cache() -> LRUCache:
    """At most MEMORY_MATRIX_CACHE_MB of users' matrices, least recently used out first (a new,
    empty cache if the setting changes). Call with the lock held."""
    global _matrices
    limit = settings.MEMORY_MATRIX_CACHE_MB * 2**20
    if _matrices is None or _matrices.maxsize != limit:
        _matrices = LRUCache(limit, getsizeof=lambda data: data.nbytes)
    return _matrices


def _kept(key: tuple[str, str], data: _UserMatrix | None = None) -> _UserMatrix | None:
    """The cache's matrix of (uid, model); with `data`, that one kept instead."""
    with _matrices_lock:
        cache = _matrix_cache()
        if data is None:
            return cache.get(key)
        cache.pop(key, None)
        if data.nbytes <= cache.maxsize:  # larger than the whole cache: not kept
            cache[key] = data
        return data


def _settled_row_id() -> int:
    """A vector row id under which every row that will ever be committed is committed now: the
    greatest id this process saw SETTLE_SECONDS ago or more (0 in a younger process)."""
    now = time.monotonic()
    with _matrices_lock:
        fresh = bool(_checkpoints) and now - _checkpoints[-1][0] < 1.0
    if not fresh:
        greatest = MemoryVector.objects.aggregate(greatest=Max("id"))["greatest"] or 0
        with _matrices_lock:
            _checkpoints.append((now, greatest))
    with _matrices_lock:
        settled = [i for i, (at, _) in enumerate(_checkpoints) if now - at >= SETTLE_SECONDS]
        if not settled:
            return 0
        del _checkpoints[: settled[-1]]  # older ones are of no more use
        return _checkpoints[0][1]


def _cached_matrix(uid: str, model: str, rows: QuerySet) -> tuple[list[int], np.ndarray]:
    """The user's matrix from the cache, after one query for the (memory id, row id) of every
    current vector: rows the cache has are kept, the others (new or reprocessed memories) read,
    memories gone dropped. The database stays the truth: no process answers from a stale matrix."""
    settled = _settled_row_id()
    listed = np.array(list(rows.order_by("memory_id").values_list("memory_id", "id")), dtype=np.int64)
    if not len(listed):
        return [], np.zeros((0, 0), dtype=np.float32)
    memory_ids, row_ids = listed[:, 0], listed[:, 1]
    cached = _kept((uid, model))
    if cached is not None and cached.live.all() and np.array_equal(cached.row_ids, row_ids):  # nothing copied
        data = _kept((uid, model), _UserMatrix(memory_ids, row_ids, cached.live, cached.buffer, settled))
        return memory_ids.tolist(), data.matrix
    where = np.full(len(row_ids), -1, dtype=np.int64)  # each row's place in the cached matrix
    if cached is not None and len(cached.row_ids):
        order = np.argsort(cached.row_ids)
        at = np.minimum(np.searchsorted(cached.row_ids, row_ids, sorter=order), len(order) - 1)
        hit = cached.row_ids[order[at]] == row_ids
        where[hit] = order[at[hit]]
    missing = np.flatnonzero(where < 0)
    fresh = _vectors(row_ids[missing]) if len(missing) else None
    dim = fresh.shape[1] if fresh is not None else cached.buffer.shape[1]
    if cached is not None and cached.buffer.shape[1] != dim:
        raise BackendError(f"memory vectors of uid {uid!r} changed dimension under model {model!r}", permanent=True)
    buffer = np.empty((len(row_ids) + _room(len(row_ids)), dim), dtype=np.float32)
    kept = np.flatnonzero(where >= 0)
    if len(kept):
        buffer[kept] = cached.buffer[where[kept]]
    if fresh is not None:
        buffer[missing] = fresh
    data = _kept((uid, model), _UserMatrix(memory_ids, row_ids, np.ones(len(row_ids), dtype=bool), buffer, settled))
    return memory_ids.tolist(), data.matrix


def _room(rows: int) -> int:
    return max(64, rows // 8)


def _vectors(row_ids: np.ndarray) -> np.ndarray:
    """The unit vectors of these vector rows, in their order."""
    read = dict(MemoryVector.objects.filter(id__in=row_ids.tolist()).values_list("id", "vector"))
    return _unit_rows([read[row_id] for row_id in row_ids.tolist()]).astype(np.float32)


def _updated(uid: str, model: str, cached: _UserMatrix) -> _UserMatrix:
    """The kept matrix with the vectors written since it was read (rows past its `settled` id, of
    any user: few, found by key, then this user's kept): the changed memories' old rows marked not
    live, their new rows added at the end of the buffer (copied to a larger one when it is full).
    Call with `_update_lock` held."""
    settled = _settled_row_id()
    recent = dict(
        MemoryVector.objects.filter(id__gt=cached.settled, position=0, model=model).values_list("memory_id", "id")
    )
    indexed = dict(
        Memory.objects.filter(id__in=list(recent), uid=uid).values_list("id", "status")
    )  # this user's changed memories
    if not indexed:
        return _kept((uid, model), _UserMatrix(cached.memory_ids, cached.row_ids, cached.live, cached.buffer, settled))
    changed = np.array(sorted(indexed), dtype=np.int64)
    live = cached.live & ~np.isin(cached.memory_ids, changed)
    added = [(m, recent[m]) for m in changed.tolist() if indexed[m] == Memory.Status.INDEXED]
    add_ids = np.array([m for m, _ in added], dtype=np.int64)
    add_rows = np.array([row for _, row in added], dtype=np.int64)
    fresh = _vectors(add_rows) if added else np.zeros((0, cached.buffer.shape[1]), dtype=np.float32)
    if fresh.shape[1] != cached.buffer.shape[1]:
        raise BackendError(f"memory vectors of uid {uid!r} changed dimension under model {model!r}", permanent=True)
    n, buffer = len(cached.row_ids), cached.buffer
    if n + len(added) > len(buffer):  # full: the live rows into a larger buffer
        keep = np.flatnonzero(live)
        buffer = np.empty((len(keep) + len(added) + _room(len(keep)), buffer.shape[1]), dtype=np.float32)
        buffer[: len(keep)] = cached.buffer[keep]
        cached = _UserMatrix(cached.memory_ids[keep], cached.row_ids[keep], live[keep], buffer, cached.settled)
        n, live = len(keep), live[keep]
    buffer[n : n + len(added)] = fresh  # past the end of every earlier view of this buffer
    data = _UserMatrix(
        np.concatenate([cached.memory_ids, add_ids]),
        np.concatenate([cached.row_ids, add_rows]),
        np.concatenate([live, np.ones(len(added), dtype=bool)]),
        buffer,
        settled,
    )
    return _kept((uid, model), data)


def memory_vectors_similar(*, uid: str, memory_ids: list[int], threshold: float) -> dict[tuple[int, int], float]:
    """Each pair (a < b: cosine) of one of `memory_ids` with another indexed memory of the user
    whose own vectors have a cosine of `threshold` or more (vectors of the current model).

    Over the user's matrix kept in this process (`memory_vectors_matrix`), brought up to date with
    only the vectors written since it was read (`_updated`); a memory found is checked to be still
    indexed with that vector (a deleted one is left out). Once the process has the matrix, no whole
    matrix is read or copied: it stays cheap for a user of many memories."""
    model = get_embedder().model
    with _update_lock:
        cached = _kept((uid, model))
        if cached is None or not cached.settled:
            memory_vectors_matrix(uid=uid)  # read whole by the exact path (and kept)
            cached = _kept((uid, model))
        else:
            cached = _updated(uid, model, cached)
    if cached is None or not len(cached.memory_ids):
        return {}
    checked = np.flatnonzero(np.isin(cached.memory_ids, memory_ids) & cached.live)
    scores = cached.matrix[checked] @ cached.matrix.T  # (checked memories) x (all of the user's rows)
    scores[:, ~cached.live] = -np.inf
    found, rows_of = {}, {}
    for r, c in zip(*np.nonzero(scores >= threshold)):
        a, b = int(cached.memory_ids[checked[r]]), int(cached.memory_ids[c])
        if a != b:
            found[(min(a, b), max(a, b))] = float(scores[r, c])
            rows_of[(min(a, b), max(a, b))] = {int(cached.row_ids[checked[r]]), int(cached.row_ids[c])}
    if found:  # only memories still indexed with these vectors (a deleted one's row is still here)
        named = set().union(*rows_of.values())
        current = set(
            MemoryVector.objects.filter(id__in=named, memory__status=Memory.Status.INDEXED).values_list("id", flat=True)
        )
        found = {key: similarity for key, similarity in found.items() if rows_of[key] <= current}
    return found


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
        "versions": index_versions_listed(),
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


def index_versions_listed() -> list[dict]:
    """The index versions (made or adopted by `index_build`), each with its state, the build's
    progress and how many vectors its namespace holds (None: its store did not answer)."""
    counted: dict[tuple, dict | None] = {}
    listed = []
    for version in VectorIndex.objects.exclude(embedder="").order_by("id"):
        key = (version.vector_store, version.host)
        if key not in counted:
            fields = {f: getattr(version, f) for f in ("id", "embedder", "dimensions", "vector_store", "host")}
            try:
                counted[key] = parts_for(**fields, namespace=version.namespace).store.stats().namespaces
            except BackendError:
                counted[key] = None
        namespaces = counted[key]
        listed.append(
            {"version": version, "vectors": None if namespaces is None else namespaces.get(version.namespace, 0)}
        )
    return listed


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
