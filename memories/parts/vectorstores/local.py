import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache
from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.db.models.functions import Length

from memories.models import LocalVector, LocalVectorVersion
from omi_memory.errors import BackendError

from .base import SearchFilters, StoreStats, VectorMatch, VectorRecord, VectorStore


@dataclass
class _UserVectors:
    """One user's vectors as arrays, as read at one version."""

    version: str
    record_ids: np.ndarray
    memory_ids: np.ndarray
    kinds: np.ndarray
    created_at: np.ndarray
    categories: np.ndarray
    sources: np.ndarray
    matrix: np.ndarray  # float32, one row per vector

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes + 64 * len(self.record_ids)


# The metadata the store keeps in columns of its own (what its searches filter on).
METADATA_COLUMNS = ("uid", "memory_id", "created_at", "category", "source", "kind")

_cache: LRUCache | None = None  # (namespace, uid) -> _UserVectors
_cache_lock = threading.Lock()


def _user_cache() -> LRUCache:
    """The users' vectors kept in this process: at most LOCAL_STORE_CACHE_MB of them, least
    recently used out first (a new, empty cache if the setting changes). Call with the lock held."""
    global _cache
    limit = settings.LOCAL_STORE_CACHE_MB * 2**20
    if _cache is None or _cache.maxsize != limit:
        _cache = LRUCache(limit, getsizeof=lambda data: data.nbytes)
    return _cache


class LocalVectorStore(VectorStore):
    """Exact cosine search over one uid's vectors, kept in the database (`LocalVector`).

    Vectors are unit length, so cosine is a dot product, scored in NumPy; a memory scores as its
    best vector. A user's vectors are kept in the process (LOCAL_STORE_CACHE_MB, least recently
    used out first) and checked against a version row that every write to that user changes, so
    no process ever answers from vectors another process has replaced.
    """

    name = "local"
    overfetch = None  # every vector of the user is scored: exact

    def __init__(self, namespace: str | None = None):
        super().__init__()
        self.namespace = namespace or settings.VECTOR_NAMESPACE

    @property
    def identity(self) -> str:
        return f"local/{self.namespace}"

    def upsert(self, records: list[VectorRecord]) -> None:
        rows = [
            LocalVector(
                namespace=self.namespace,
                record_id=record.id,
                uid=record.metadata["uid"],
                memory_id=str(record.metadata["memory_id"]),
                created_at=int(record.metadata["created_at"]),
                category=record.metadata.get("category", ""),
                source=record.metadata.get("source", ""),
                kind=record.metadata.get("kind", ""),
                metadata=record.metadata,
                values=np.asarray(record.values, dtype="<f4").tobytes(),
            )
            for record in records
        ]
        with transaction.atomic():
            LocalVector.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["namespace", "record_id"],
                update_fields=["uid", "memory_id", "created_at", "category", "source", "kind", "metadata", "values"],
                batch_size=1000,
            )
            self.touch({row.uid for row in rows})

    def delete(self, ids: list[str]) -> None:
        with transaction.atomic():
            for start in range(0, len(ids), 1000):
                chosen = LocalVector.objects.filter(namespace=self.namespace, record_id__in=ids[start : start + 1000])
                self.touch(set(chosen.values_list("uid", flat=True)))
                chosen.delete()

    def delete_uid(self, uid: str, *, known_ids: list[str]) -> int:
        with transaction.atomic():
            deleted, _ = LocalVector.objects.filter(namespace=self.namespace, uid=uid).delete()
            self.touch({uid})
        return deleted

    def fetch_metadata(self, ids: list[str]) -> dict[str, dict]:
        found = {}
        for start in range(0, len(ids), 1000):
            rows = LocalVector.objects.filter(
                namespace=self.namespace, record_id__in=ids[start : start + 1000]
            ).values_list("record_id", *METADATA_COLUMNS)
            found.update({row[0]: dict(zip(METADATA_COLUMNS, row[1:])) for row in rows})
        return found

    def vector_ids_of(self, *, memories: dict[str, str]) -> list[str]:
        rows = LocalVector.objects.filter(namespace=self.namespace, memory_id__in=list(memories))
        return [
            record_id
            for record_id, memory_id, uid in rows.values_list("record_id", "memory_id", "uid")
            if memories.get(memory_id) == uid
        ]

    def list_ids(self, *, uid: str | None = None) -> Iterator[list[str]]:
        """Pages of 1,000 ids in the order they were written (by their row's key, so each page is
        one index range); one user's by the `uid` column."""
        rows = LocalVector.objects.filter(namespace=self.namespace)
        if uid is not None:
            rows = rows.filter(uid=uid)
        last = 0
        while page := list(rows.filter(id__gt=last).order_by("id").values_list("id", "record_id")[:1000]):
            last = page[-1][0]
            yield [record_id for _, record_id in page]

    def ping(self) -> None:
        from django.db import DatabaseError

        try:
            LocalVector.objects.filter(namespace=self.namespace).values_list("id").first()
        except DatabaseError as exc:
            raise BackendError(f"local store: {type(exc).__name__}: {exc}") from exc

    def stats(self) -> StoreStats:
        """Counted in the database; the dimension read from one of the namespace's vectors."""
        namespaces = dict(LocalVector.objects.values_list("namespace").annotate(n=Count("id")).order_by())
        mine = LocalVector.objects.filter(namespace=self.namespace)
        size = mine.annotate(size=Length("values")).values_list("size", flat=True).first()
        by_kind = dict(mine.values_list("kind").annotate(n=Count("id")).order_by())
        return StoreStats(dimension=size // 4 if size else None, namespaces=namespaces, by_kind=by_kind)

    def clear(self) -> None:
        """Remove every vector of the namespace (a reindex to another dimension starts here)."""
        with transaction.atomic():
            LocalVector.objects.filter(namespace=self.namespace).delete()
            LocalVectorVersion.objects.filter(namespace=self.namespace).delete()

    def touch(self, uids: set[str]) -> None:
        """Give these users' vectors a new version: every process reads them again."""
        if uids:
            LocalVectorVersion.objects.bulk_create(
                [LocalVectorVersion(namespace=self.namespace, uid=uid, version=uuid.uuid4().hex) for uid in uids],
                update_conflicts=True,
                unique_fields=["namespace", "uid"],
                update_fields=["version"],
            )

    def query_vectors(
        self, vector: np.ndarray, *, uid: str, top_k: int | None, filters: SearchFilters
    ) -> list[VectorMatch]:
        data = self._vectors(uid)
        if data is None or not len(data.record_ids):
            return []
        query = np.asarray(vector, dtype=np.float32)
        if data.matrix.shape[1] != query.size:
            raise BackendError(
                f"stored vectors of uid {uid!r} have {data.matrix.shape[1]} dimensions, the query {query.size}",
                permanent=True,
            )
        keep = np.ones(len(data.record_ids), dtype=bool)
        if filters.starts_at:
            keep &= data.created_at >= int(filters.starts_at.timestamp())
        if filters.ends_at:
            keep &= data.created_at <= int(filters.ends_at.timestamp())
        if filters.categories:
            keep &= np.isin(data.categories, filters.categories)
        if filters.sources:
            keep &= np.isin(data.sources, filters.sources)
        rows = np.flatnonzero(keep)
        scores = (data.matrix[rows] if len(rows) < len(keep) else data.matrix) @ query
        order = np.argsort(-scores, kind="stable")[:top_k]
        record_ids, memory_ids, kinds = data.record_ids, data.memory_ids, data.kinds  # object arrays of str
        return [
            VectorMatch(record_ids[row], memory_ids[row], score, kinds[row])
            for row, score in zip(rows[order].tolist(), scores[order].tolist())
        ]

    def _vectors(self, uid: str) -> _UserVectors | None:
        """The user's vectors: from this process's cache when their version has not changed."""
        version = (
            LocalVectorVersion.objects.filter(namespace=self.namespace, uid=uid)
            .values_list("version", flat=True)
            .first()
        )
        key = (self.namespace, uid)
        with _cache_lock:
            cached = _user_cache().get(key)  # a hit becomes the most recently used
            if cached is not None and version is not None and cached.version == version:
                return cached
        rows = list(
            LocalVector.objects.filter(namespace=self.namespace, uid=uid)
            .order_by("id")
            .values_list("record_id", "memory_id", "kind", "created_at", "category", "source", "values")
        )
        if not rows:
            return None
        blob = b"".join(row[6] for row in rows)
        if len(blob) % (4 * len(rows)):
            raise BackendError(f"stored vectors of uid {uid!r} do not all have one dimension", permanent=True)
        data = _UserVectors(
            version=version or "",
            record_ids=np.array([r[0] for r in rows], dtype=object),
            memory_ids=np.array([r[1] for r in rows], dtype=object),
            kinds=np.array([r[2] for r in rows], dtype=object),
            created_at=np.array([r[3] for r in rows], dtype=np.int64),
            categories=np.array([r[4] for r in rows], dtype=object),
            sources=np.array([r[5] for r in rows], dtype=object),
            matrix=np.frombuffer(blob, dtype="<f4").reshape(len(rows), -1),
        )
        if version is not None:  # without a version row (written by hand) nothing is cached
            with _cache_lock:
                cache = _user_cache()
                cache.pop(key, None)
                if data.nbytes <= cache.maxsize:  # larger than the whole cache: not kept
                    cache[key] = data  # least recently used users out until it fits
        return data
