import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from cachetools import LRUCache
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max
from django.db.models.functions import Length

from memories.models import LocalVector, LocalVectorDeletion, LocalVectorVersion
from omi_memory.errors import BackendError

from . import snapshots
from .base import MemoryMatch, SearchFilters, StoreStats, VectorMatch, VectorRecord, VectorStore

logger = logging.getLogger(__name__)

# A user whose float32 vectors take more bytes than this (64 MB: 43,690 vectors of 384 dimensions,
# about 2,700 memories) is scored on an int8 copy of them (1 byte a dimension instead of 4), with the
# float32 vectors of the few candidates that could rank read again from the database. Below it, the
# float32 matrix is small, and scoring it whole costs less than that read.
EXACT_MAX_BYTES = 64 * 2**20
READ_CHUNK = 8192  # rows read from the database at a time when a user's vectors are loaded
# A user with a snapshot on disk (LOCAL_STORE_SNAPSHOT_ROWS vectors or more; `snapshots.py`) is
# searched through its graph: the best CANDIDATES_PER_MEMORY x k rows (at least CANDIDATES_MIN),
# scored exactly, and every row written since the snapshot. A filter that keeps a share s of the
# rows asks the graph for 1/s times as many; every row it keeps is scored instead when they are
# EXACT_ROWS or fewer, or the graph would be asked for as many, or the candidates hold fewer than k
# memories. A snapshot is made again in the background when the rows written or deleted since pass
# REFRESH_SHARE of it.
CANDIDATES_MIN = 400
CANDIDATES_PER_MEMORY = 12
CANDIDATES_EXTRA = 400  # more than the k vectors asked for (query_vectors; at least CANDIDATES_MIN)
EXACT_ROWS = 32_768
REFRESH_SHARE = 0.05
CHECKED_ROWS = 32  # rows of a snapshot compared with the database before it is trusted
SNAPSHOT_RETRY_SECONDS = 600  # after a background snapshot failed, before this process tries again
# A user's rows as they are read to be kept (`_read`, a snapshot, a catch-up): the vector last.
ROW_COLUMNS = ("id", "record_id", "memory_id", "kind", "created_at", "category", "source", "values")


@dataclass(eq=False)
class _UserVectors:
    """One user's vectors as arrays, as read at one version (rows in the order written).

    Small users keep their float32 matrix (`matrix`). Larger ones keep an int8 copy for scoring
    (`packed`: numkong's packed layout, one matrix per READ_CHUNK rows, so that the whole int8 copy
    is never in memory twice; row i is about `scales[i] x codes[i]`), the norm of what that
    copy leaves out of each row (`errors`), and score a query exactly only on the rows whose bounds
    say they could rank (`LocalVectorStore._scores`). Metadata is kept as small integer codes, and
    the rows' order by memory (`order`, `starts`) lets a memory's best be taken with one reduceat."""

    version: str
    pks: np.ndarray  # int64, LocalVector.id, for the float32 re-score
    record_ids: np.ndarray  # bytes (UTF-8)
    memory_codes: np.ndarray  # int32 index into memory_ids
    memory_ids: np.ndarray  # object, one str per memory
    kind_codes: np.ndarray  # int8 index into kinds
    kinds: list[str]
    created_at: np.ndarray  # int64
    category_codes: np.ndarray  # int16 index into categories
    categories: list[str]
    source_codes: np.ndarray  # int16 index into sources
    sources: list[str]
    order: np.ndarray  # int32: rows grouped by memory
    starts: np.ndarray  # int64: where each memory's rows start in `order`
    dim: int
    matrix: np.ndarray | None = None  # float32, one row per vector (small users)
    packed: list | None = None  # numkong PackedMatrix of int8 rows, a chunk each (larger users)
    scales: np.ndarray | None = None  # float32 per row
    errors: np.ndarray | None = None  # float32 per row: |row - scale x codes|
    reach: float = 0.0  # the largest |scale x codes| of a row
    # Users with a snapshot: rows [0, len(snapshot)) are its rows, searched through its graph; the rest
    # were written since (`delta`, float32); `alive`: the rows not deleted since.
    snapshot: snapshots.Snapshot | None = None
    delta: np.ndarray | None = None
    alive: np.ndarray | None = None
    last_pk: int = 0  # the highest row id read
    deleted_seq: int = 0  # the last LocalVectorDeletion applied
    epoch: int = 0  # of LocalVectorVersion, when the snapshot was made

    @property
    def nbytes(self) -> int:
        arrays = (self.pks, self.record_ids, self.memory_codes, self.kind_codes, self.created_at)
        arrays += (self.category_codes, self.source_codes, self.order, self.starts)
        arrays += tuple(a for a in (self.matrix, self.scales, self.errors, self.delta, self.alive) if a is not None)
        names = 64 * len(self.memory_ids)  # the memory ids' str objects, about
        graph = self.snapshot.graph_bytes if self.snapshot is not None else 0
        return sum(a.nbytes for a in arrays) + names + graph + sum(part.nbytes for part in self.packed or ())

    @property
    def base(self) -> int:
        return len(self.snapshot) if self.snapshot is not None else 0

    def __len__(self) -> int:
        return len(self.pks)


def _codes(values: list[str], dtype) -> tuple[np.ndarray, list[str]]:
    """Each value as the index of its name in the (sorted) names."""
    names, codes = np.unique(np.array(values, dtype=str), return_inverse=True)
    return codes.astype(dtype), names.tolist()


def _quantize(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """int8 codes of float32 rows (each scaled by its largest component), the scales, the norm of each
    row's rounding error, and the largest norm of a coded row; a few rows at a time, so that the
    temporaries stay in the CPU's cache."""
    codes = np.empty(block.shape, dtype=np.int8)
    scales = np.empty(len(block), dtype=np.float32)
    errors = np.empty(len(block), dtype=np.float32)
    reach = 0.0
    for at in range(0, len(block), 512):
        rows = block[at : at + 512]
        scale = np.maximum(np.abs(rows).max(axis=1), np.float32(1e-30)) / np.float32(127)
        scaled = rows / scale[:, None]
        rounded = np.rint(scaled)
        codes[at : at + 512] = rounded
        reach = max(reach, float((np.sqrt(np.einsum("ij,ij->i", rounded, rounded)) * scale).max(initial=0)))
        scaled -= rounded
        errors[at : at + 512] = np.sqrt(np.einsum("ij,ij->i", scaled, scaled)) * scale
        scales[at : at + 512] = scale
    return codes, scales, errors, reach


def _query_codes(query: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The query as two int8 rows (the second codes what the first leaves out), their scales, and the
    norm of what both leave out: a dot product with a row of codes is then nearly exact."""
    rows, scales, rest = [], [], query.astype(np.float64)
    for _ in range(2):
        scale = max(float(np.abs(rest).max()), 1e-30) / 127
        row = np.rint(rest / scale)
        rows.append(row.astype(np.int8))
        scales.append(scale)
        rest = rest - row * scale
    return np.stack(rows), np.array(scales), float(np.linalg.norm(rest))


# The metadata the store keeps in columns of its own (what its searches filter on).
METADATA_COLUMNS = ("uid", "memory_id", "created_at", "category", "source", "kind")

_cache: LRUCache | None = None  # (namespace, uid) -> _UserVectors
_snapshotting: set[tuple[str, str]] = set()  # snapshots being made by this process
_snapshot_failed: dict[tuple[str, str], float] = {}  # when this process last failed to make one
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
            self.touch({row.uid for row in rows})  # first: one user's writes commit in the order of their ids
            # a changed vector is a new row (a new id): a process that holds a snapshot of the user's
            # rows sees what changed by their ids (`_caught_up`)
            ids = [row.record_id for row in rows]
            for start in range(0, len(ids), 1000):
                self._delete_rows(
                    LocalVector.objects.filter(namespace=self.namespace, record_id__in=ids[start : start + 1000])
                )
            LocalVector.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["namespace", "record_id"],
                update_fields=["uid", "memory_id", "created_at", "category", "source", "kind", "metadata", "values"],
                batch_size=1000,
            )

    def delete(self, ids: list[str]) -> None:
        with transaction.atomic():
            for start in range(0, len(ids), 1000):
                chosen = LocalVector.objects.filter(namespace=self.namespace, record_id__in=ids[start : start + 1000])
                self.touch(set(chosen.values_list("uid", flat=True)))
                self._delete_rows(chosen)

    def _delete_rows(self, chosen) -> None:
        """Delete these rows, noted in `LocalVectorDeletion` for the users with a snapshot (call with
        their users touched: their version rows locked, so a snapshot begun meanwhile waits)."""
        found = list(chosen.values_list("id", "uid"))
        if not found:
            return
        LocalVector.objects.filter(id__in=[row for row, _ in found]).delete()
        versions = LocalVectorVersion.objects.filter(namespace=self.namespace, uid__in={uid for _, uid in found})
        logged = set(versions.filter(deletions_logged=True).values_list("uid", flat=True))
        LocalVectorDeletion.objects.bulk_create(
            [LocalVectorDeletion(namespace=self.namespace, uid=uid, row=row) for row, uid in found if uid in logged],
            batch_size=1000,
        )

    def delete_uid(self, uid: str, *, known_ids: list[str]) -> int:
        with transaction.atomic():
            self.touch({uid}, epoch=True)  # no copy of the user's vectors catches up: they are all gone
            deleted, _ = LocalVector.objects.filter(namespace=self.namespace, uid=uid).delete()
            LocalVectorDeletion.objects.filter(namespace=self.namespace, uid=uid).delete()
        snapshots.remove(self.namespace, uid)
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
            LocalVectorDeletion.objects.filter(namespace=self.namespace).delete()
            versions = LocalVectorVersion.objects.filter(namespace=self.namespace)
            versions.update(version=uuid.uuid4().hex, epoch=F("epoch") + 1)  # no copy catches up
        snapshots.remove(self.namespace)

    def touch(self, uids: set[str], *, epoch: bool = False) -> None:
        """Give these users' vectors a new version: every process reads them again (what changed, or, with
        `epoch`, everything). In a transaction, their rows stay locked until it ends."""
        if uids:
            LocalVectorVersion.objects.bulk_create(
                [
                    LocalVectorVersion(namespace=self.namespace, uid=uid, version=uuid.uuid4().hex)
                    for uid in sorted(uids)  # one order of locks
                ],
                update_conflicts=True,
                unique_fields=["namespace", "uid"],
                update_fields=["version"],
            )
            if epoch:
                LocalVectorVersion.objects.filter(namespace=self.namespace, uid__in=uids).update(epoch=F("epoch") + 1)

    def query_vectors(
        self, vector: np.ndarray, *, uid: str, top_k: int | None, filters: SearchFilters
    ) -> list[VectorMatch]:
        data = self._vectors(uid) if top_k is None or top_k > 0 else None
        if data is None or not len(data):
            return []
        if data.snapshot is not None:
            count = None if top_k is None else max(CANDIDATES_MIN, top_k + CANDIDATES_EXTRA)
            rows, scores = self._from_graph(data, _query_matrix(data, [vector], uid)[0], filters, count)
        else:
            queries, approx, bound = self._score(data, [vector], uid=uid, filters=filters)
            approx, bound = approx[0], bound[0]
            if top_k is not None and top_k < np.isfinite(approx).sum():
                floor = np.partition(approx - bound, len(approx) - top_k)[len(approx) - top_k]  # top_k-th lower bound
                rows = np.flatnonzero(approx + bound >= floor)
            else:
                rows = np.flatnonzero(np.isfinite(approx))
            rows, scores = self._exact(data, rows, approx[None], queries)
            scores = scores[0]
        order = np.lexsort((rows, -scores))[:top_k]  # best first; a tie in the order written
        chosen = rows[order]
        columns = (  # a column at a time (hybrid asks for 1,000)
            [record_id.decode() for record_id in data.record_ids[chosen].tolist()],
            data.memory_ids[data.memory_codes[chosen]].tolist(),
            scores[order].tolist(),
            np.array(data.kinds, dtype=object)[data.kind_codes[chosen]].tolist(),
        )
        return [VectorMatch(*row) for row in zip(*columns, strict=True)]

    def query(self, vector: np.ndarray, *, uid: str, top_k: int, filters: SearchFilters) -> list[MemoryMatch]:
        return self.query_many([vector], uid=uid, top_k=top_k, filters=filters)[0]

    def query_many(
        self, vectors: list[np.ndarray], *, uid: str, top_k: int, filters: SearchFilters
    ) -> list[list[MemoryMatch]]:
        """The `top_k` memories by their best vector, for each query, scored together and grouped in
        NumPy: only the rows that could be a top memory's best are scored exactly and looked at one by one."""
        data = self._vectors(uid) if top_k > 0 else None
        if data is None or not len(data):
            return [[] for _ in vectors]
        if data.snapshot is not None:
            found_by_query = []
            for query in _query_matrix(data, vectors, uid):
                count = max(CANDIDATES_MIN, CANDIDATES_PER_MEMORY * top_k)
                rows, scores = self._from_graph(data, query, filters, count)
                matches = _best_per_memory(data, rows, scores, top_k)
                if len(matches) < top_k and len(rows) < len(data):  # the candidates were too few: every row
                    matches = _best_per_memory(data, *self._from_graph(data, query, filters, None), top_k)
                found_by_query.append(matches)
            return found_by_query
        queries, approx, bound = self._score(data, vectors, uid=uid, filters=filters)
        wanted = []
        for row_approx, row_bound in zip(approx, bound):
            lower = np.maximum.reduceat((row_approx - row_bound)[data.order], data.starts)  # a memory's best, at least
            if top_k < np.isfinite(lower).sum():
                floor = np.partition(lower, len(lower) - top_k)[len(lower) - top_k]
                wanted.append(np.flatnonzero(row_approx + row_bound >= floor))
            else:
                wanted.append(np.flatnonzero(np.isfinite(row_approx)))
        rows, scores = self._exact(data, np.unique(np.concatenate(wanted)), approx, queries)
        return [_best_per_memory(data, rows, row_scores, top_k) for row_scores in scores]

    def _from_graph(
        self, data: _UserVectors, query: np.ndarray, filters: SearchFilters, count: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows (ascending) and their exact scores: the `count` best candidates of the snapshot's graph
        (more in the share of rows a filter keeps) and every row written since; every row the filters
        keep when `count` is None or that share is small."""
        keep = _keep(data, filters)
        keep = data.alive if keep is None else keep & data.alive
        kept = int(np.count_nonzero(keep))
        wanted = None if count is None else -(-count * len(data) // max(kept, 1))
        if wanted is None or kept <= EXACT_ROWS or wanted >= data.base:
            rows = np.flatnonzero(keep)
        else:
            found = np.asarray(data.snapshot.index.search(query, count=wanted, threads=1).keys, dtype=np.int64)
            rows = np.union1d(found, np.arange(data.base, len(data)))
            rows = rows[keep[rows]]
        scores = self._float_scores(data, rows, query)
        data.snapshot.warm()  # once, after the first search's own reads
        return rows, scores

    def _float_scores(self, data: _UserVectors, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
        """The exact scores of these rows (ascending): a snapshot's read from its file a block at a
        time, later ones from memory."""
        scores = np.empty(len(rows), dtype=np.float64)
        split = int(np.searchsorted(rows, data.base))
        for at in range(0, split, READ_CHUNK):
            block = rows[at : min(split, at + READ_CHUNK)]
            scores[at : at + len(block)] = data.snapshot.rows(block) @ query
        if split < len(rows):
            scores[split:] = data.delta[rows[split:] - data.base] @ query
        return scores

    def _score(
        self, data: _UserVectors, vectors: list[np.ndarray], *, uid: str, filters: SearchFilters
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The queries (one row each) and each row's score for each query, within `bound` of the exact
        one (0 for a small user's float32 rows); rows the filters leave out score -inf."""
        queries = _query_matrix(data, vectors, uid)
        if data.matrix is not None:
            approx, bound = (queries @ data.matrix.T).astype(np.float64), np.zeros((len(queries), 1))
        else:
            import numkong

            coded = [_query_codes(query) for query in queries]
            both = np.concatenate([codes for codes, _, _ in coded])
            dots = np.concatenate([np.asarray(numkong.dots_packed(both, part)) for part in data.packed], axis=1)
            # in float32 (the dot products of codes are integers under 2^24, exact in it); its rounding
            # is far within the 1e-5 added to the bound
            approx = dots[0::2].astype(np.float32)
            approx *= np.array([scales[0] for _, scales, _ in coded], dtype=np.float32)[:, None]
            second = dots[1::2].astype(np.float32)
            second *= np.array([scales[1] for _, scales, _ in coded], dtype=np.float32)[:, None]
            approx += second
            approx *= data.scales
            # |row . query - approx| <= |error| |query| + |scale x codes| |what the query's codes leave out|
            bound = np.stack(
                [
                    data.errors * np.float32(np.linalg.norm(query)) + np.float32(data.reach * rest + 1e-5)
                    for query, (_, _, rest) in zip(queries, coded)
                ]
            )
        keep = _keep(data, filters)
        if keep is not None:
            approx[:, ~keep] = -np.inf
        return queries, approx, bound

    def _exact(
        self, data: _UserVectors, rows: np.ndarray, approx: np.ndarray, queries: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """These rows and their exact (float32) scores for each query: the small user's own, or, for the
        int8 copy, the rows' vectors read again from the database (a row deleted since is left out)."""
        if data.matrix is not None or not len(rows):
            return rows, approx[:, rows]
        values = _values(data.pks[rows].tolist())
        rows = np.array(
            [row for row in rows.tolist() if len(values.get(int(data.pks[row]), b"")) == 4 * data.dim], dtype=np.int64
        )
        matrix = np.frombuffer(b"".join(values[pk] for pk in data.pks[rows].tolist()), dtype="<f4")
        return rows, (queries @ matrix.reshape(len(rows), data.dim).T).astype(np.float64)

    def _vectors(self, uid: str) -> _UserVectors | None:
        """The user's vectors: from this process's cache when their version has not changed; else, for
        a user with a snapshot, this process's copy or the snapshot, with what changed since; else read
        whole from the database."""
        version, epoch = (
            LocalVectorVersion.objects.filter(namespace=self.namespace, uid=uid).values_list("version", "epoch").first()
        ) or (None, 0)
        key = (self.namespace, uid)
        with _cache_lock:
            cached = _user_cache().get(key)  # a hit becomes the most recently used
            if cached is not None and version is not None and cached.version == version:
                return cached
        data = None
        if version is not None and settings.LOCAL_STORE_SNAPSHOT_ROWS:
            if cached is not None and cached.snapshot is not None and cached.epoch == epoch:
                data = self._caught_up(cached, uid, version)
            elif (snapshot := snapshots.load(self.namespace, uid)) is not None and snapshot.info["epoch"] == epoch:
                data = self._caught_up(_from_snapshot(snapshot), uid, version)
        if data is None:
            data = self._read(uid, version or "")
        if data is not None and version is not None:  # without a version row (written by hand) nothing is cached
            with _cache_lock:
                cache = _user_cache()
                cache.pop(key, None)
                if data.nbytes <= cache.maxsize:  # larger than the whole cache: not kept
                    cache[key] = data  # least recently used users out until it fits
            rows = settings.LOCAL_STORE_SNAPSHOT_ROWS
            since = len(data) - data.base + (len(data.alive) - int(data.alive.sum()) if data.alive is not None else 0)
            if rows and len(data) >= rows and (data.snapshot is None or since > REFRESH_SHARE * len(data)):
                self._snapshot_in_background(uid)
        return data

    def _caught_up(self, data: _UserVectors, uid: str, version: str) -> _UserVectors | None:
        """`data` (a snapshot's rows and those read since) with the rows written since (of a higher id)
        and deleted since (`LocalVectorDeletion`), as of `version` (read before them: what commits
        meanwhile is read again next time, to the same effect); None when the user has no row left,
        or a snapshot does not match the database (made of another database of the same name, say),
        which is then removed."""
        gone = LocalVectorDeletion.objects.filter(namespace=self.namespace, uid=uid, id__gt=data.deleted_seq)
        gone = list(gone.order_by("id").values_list("id", "row"))
        rows = LocalVector.objects.filter(namespace=self.namespace, uid=uid, id__gt=data.last_pk).order_by("id")
        rows = [_bytes(row) for row in rows.values_list(*ROW_COLUMNS)]
        if len(rows) != len([row for row in rows if len(row[7]) == 4 * data.dim]):
            return None  # another dimension: read whole (and refused there)
        alive = data.alive if data.alive is not None else np.ones(len(data), dtype=bool)
        if gone:
            alive = alive & ~np.isin(data.pks, [row for _, row in gone])
        if data.alive is None and not self._matches(data, alive):  # a snapshot just loaded
            logger.warning("local store: the snapshot of %r does not match the database; read again", uid)
            snapshots.remove(self.namespace, uid)
            return None
        deleted_seq = gone[-1][0] if gone else data.deleted_seq
        if not rows:
            if not alive.any():
                return None
            return replace(data, version=version, alive=alive, deleted_seq=deleted_seq)
        pks, record_ids, memory_ids, kinds, created_at, categories, sources, values = zip(*rows, strict=True)
        added = np.frombuffer(b"".join(values), dtype="<f4").reshape(len(rows), data.dim)
        memory_codes, memory_names = _more_codes(data.memory_ids.tolist(), memory_ids)
        kind_codes, kind_names = _more_codes(data.kinds, kinds)
        category_codes, category_names = _more_codes(data.categories, categories)
        source_codes, source_names = _more_codes(data.sources, sources)
        pks = np.array(pks, dtype=np.int64)
        return replace(
            data,
            version=version,
            last_pk=int(pks[-1]),
            deleted_seq=deleted_seq,
            pks=np.concatenate([data.pks, pks]),
            record_ids=np.concatenate([data.record_ids, np.array([r.encode() for r in record_ids], dtype=bytes)]),
            memory_codes=np.concatenate([data.memory_codes, memory_codes.astype(np.int32)]),
            memory_ids=np.array(memory_names, dtype=str),
            kind_codes=np.concatenate([data.kind_codes, kind_codes.astype(np.int8)]),
            kinds=kind_names,
            created_at=np.concatenate([data.created_at, np.array(created_at, dtype=np.int64)]),
            category_codes=np.concatenate([data.category_codes, category_codes.astype(np.int16)]),
            categories=category_names,
            source_codes=np.concatenate([data.source_codes, source_codes.astype(np.int16)]),
            sources=source_names,
            delta=added if data.delta is None else np.concatenate([data.delta, added]),
            alive=np.concatenate([alive, ~np.isin(pks, [row for _, row in gone])]),
        )

    def _matches(self, data: _UserVectors, alive: np.ndarray) -> bool:
        """Whether some of a snapshot's rows still in the database (CHECKED_ROWS of them, at random)
        are those rows: the same record and vector."""
        still = np.flatnonzero(alive)
        if not len(still):
            return True
        sample = np.sort(np.random.default_rng().choice(still, size=min(CHECKED_ROWS, len(still)), replace=False))
        stored = {row[0]: row[1:] for row in _rows(data.pks[sample].tolist(), ("id", "record_id", "values"))}
        mine = data.snapshot.rows(sample)
        return all(
            stored.get(int(data.pks[row]), ("", b""))[0] == data.record_ids[row].decode()
            and stored[int(data.pks[row])][1] == mine[i].astype("<f4").tobytes()
            for i, row in enumerate(sample.tolist())
        )

    def count(self, uid: str) -> int:
        return LocalVector.objects.filter(namespace=self.namespace, uid=uid).count()

    def heavy_users(self, rows: int) -> dict[str, int]:
        """The users with `rows` vectors or more, and how many."""
        counted = LocalVector.objects.filter(namespace=self.namespace).values_list("uid").annotate(n=Count("id"))
        return dict(counted.filter(n__gte=rows).order_by("uid"))

    def snapshot(self, uid: str, progress=None) -> bool:
        """Make the user's snapshot on disk from the database (`snapshots.py`): False when there is no
        row, or another process is making it now. `progress(rows)` is called as rows are added.

        The deletions it has applied are then forgotten: the user's epoch moves on, so that a copy
        made before, which could need them, is made again from this snapshot."""
        versions = LocalVectorVersion.objects.filter(namespace=self.namespace, uid=uid)
        versions.update(deletions_logged=True)  # before the rows are read: any deleted since is logged
        version, epoch = versions.values_list("version", "epoch").first() or (None, 0)
        deletions = LocalVectorDeletion.objects.filter(namespace=self.namespace, uid=uid)
        deleted_seq = deletions.aggregate(last=Max("id"))["last"] or 0  # before the rows: applied again is no harm
        rows = LocalVector.objects.filter(namespace=self.namespace, uid=uid)
        last = rows.aggregate(last=Max("id"))["last"]
        size = rows.annotate(size=Length("values")).values_list("size", flat=True).first()
        if last is None or version is None or not size:
            return False
        names: dict[str, list] = {name: [] for name in ROW_COLUMNS[:-1]}
        dim = size // 4

        def blocks():
            for chunk in self._chunks(uid, last, ROW_COLUMNS):
                chunk = [row for row in chunk if len(row[-1]) == 4 * dim]
                for name, values in zip(ROW_COLUMNS[:-1], zip(*chunk, strict=True)):
                    names[name].extend(values)
                yield np.frombuffer(b"".join(row[-1] for row in chunk), dtype="<f4").reshape(len(chunk), dim)

        def meta() -> tuple[dict[str, np.ndarray], dict]:
            # names as str arrays, saved without pickle (`_from_snapshot` makes the lists again)
            arrays = {
                name: np.asarray(value, dtype=str) if isinstance(value, list) or value.dtype == object else value
                for name, value in _metadata(names).items()
            }
            return arrays, {"epoch": epoch + 1, "last_pk": max(names["id"]), "deleted_seq": deleted_seq}

        path = snapshots.write(
            self.namespace, uid, version=version, dim=dim, blocks=blocks(), meta=meta, progress=progress
        )
        if path is None:
            return False
        with transaction.atomic():
            moved = LocalVectorVersion.objects.filter(namespace=self.namespace, uid=uid, epoch=epoch)
            if not moved.update(epoch=epoch + 1):  # erased, or cleared, meanwhile
                snapshots.remove(self.namespace, uid)
                return False
            deletions.filter(id__lte=deleted_seq).delete()
        return True

    def _snapshot_in_background(self, uid: str) -> None:
        """Make the user's snapshot in a thread of this process (one at a time per user and process; one
        process at a time per user, by the snapshot's lock)."""
        key = (self.namespace, uid)
        with _cache_lock:
            if key in _snapshotting or time.monotonic() - _snapshot_failed.get(key, -1e9) < SNAPSHOT_RETRY_SECONDS:
                return
            _snapshotting.add(key)

        def make():
            try:
                self.snapshot(uid)
            except Exception:
                logger.exception(
                    "local store: the snapshot of %r failed; tried again in %d s", uid, SNAPSHOT_RETRY_SECONDS
                )
                _snapshot_failed[key] = time.monotonic()
            finally:
                connection.close()
                with _cache_lock:
                    _snapshotting.discard(key)

        threading.Thread(target=make, name=f"local-store-snapshot-{uid}", daemon=True).start()

    def _chunks(self, uid: str, last: int, columns: tuple[str, ...]) -> Iterator[list[tuple]]:
        """The user's rows up to id `last`, in the order written, READ_CHUNK at a time: on PostgreSQL from
        a server-side cursor in binary (vectors as raw bytes, not hex), elsewhere through the ORM."""
        rows = LocalVector.objects.filter(namespace=self.namespace, uid=uid, id__lte=last).order_by("id")
        if connection.vendor != "postgresql":
            chunk = []
            for row in rows.values_list(*columns).iterator(chunk_size=READ_CHUNK):
                chunk.append(row)
                if len(chunk) == READ_CHUNK:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
            return
        sql, params = rows.values_list(*columns).query.sql_with_params()
        with transaction.atomic():
            connection.ensure_connection()
            with connection.connection.cursor(name=f"local_store_{uuid.uuid4().hex}", binary=True) as cursor:
                cursor.execute(sql, params)
                while chunk := cursor.fetchmany(READ_CHUNK):
                    yield chunk

    def _read(self, uid: str, version: str) -> _UserVectors | None:
        """One user's vectors from the database, a chunk at a time (a heavy user's float32 matrix is
        never whole in memory: each chunk is turned into int8 codes as it comes)."""
        rows = LocalVector.objects.filter(namespace=self.namespace, uid=uid)
        found = rows.aggregate(count=Count("id"), last=Max("id"))
        count = found["count"]
        if not count:
            return None

        chunks: dict[str, list] = {name: [] for name in ROW_COLUMNS}
        dim = None
        matrix = scales = errors = packed = None
        at, reach = 0, 0.0
        for chunk in self._chunks(uid, found["last"], ROW_COLUMNS):  # a row written since: the next version reads it
            if dim is None:
                dim = len(chunk[0][7]) // 4
                if count * dim * 4 <= EXACT_MAX_BYTES:
                    matrix = np.empty((count, dim), dtype=np.float32)
                else:
                    import numkong

                    scales, errors, packed = np.empty(count, dtype=np.float32), np.empty(count, dtype=np.float32), []
            chunk = chunk[: count - at]  # rows of a transaction that committed late: the next version reads them
            blob = b"".join(row[7] for row in chunk)
            if not dim or len(blob) != 4 * dim * len(chunk):
                raise BackendError(f"stored vectors of uid {uid!r} do not all have one dimension", permanent=True)
            block = np.frombuffer(blob, dtype="<f4").reshape(len(chunk), dim)
            if matrix is not None:
                matrix[at : at + len(chunk)] = block
            else:
                codes, scales[at : at + len(chunk)], errors[at : at + len(chunk)], most = _quantize(block)
                packed.append(numkong.dots_pack(codes))
                reach = max(reach, most)
            for name, values in zip(ROW_COLUMNS[:-1], zip(*chunk, strict=True)):
                chunks[name].extend(values)
            at += len(chunk)
        if at < count:  # rows deleted while reading
            matrix = matrix[:at] if matrix is not None else None
            scales, errors = (a[:at] if a is not None else None for a in (scales, errors))
        metadata = _metadata(chunks)
        order = np.argsort(metadata["memory_codes"], kind="stable").astype(np.int32)
        starts = np.flatnonzero(np.r_[True, np.diff(metadata["memory_codes"][order]) != 0])
        return _UserVectors(
            version=version,
            **metadata,
            order=order,
            starts=starts,
            dim=dim,
            matrix=matrix,
            packed=packed,
            scales=scales,
            errors=errors,
            reach=reach,
        )


def _query_matrix(data: _UserVectors, vectors: list[np.ndarray], uid: str) -> np.ndarray:
    queries = np.stack([np.asarray(vector, dtype=np.float32).ravel() for vector in vectors])
    if data.dim != queries.shape[1]:
        raise BackendError(
            f"stored vectors of uid {uid!r} have {data.dim} dimensions, the query {queries.shape[1]}", permanent=True
        )
    return queries


def _keep(data: _UserVectors, filters: SearchFilters) -> np.ndarray | None:
    """The rows the filters keep (None: every row)."""
    keep = None
    if filters.starts_at:
        keep = data.created_at >= int(filters.starts_at.timestamp())
    if filters.ends_at:
        keep = _and(keep, data.created_at <= int(filters.ends_at.timestamp()))
    if filters.categories:
        keep = _and(keep, np.isin(data.category_codes, _known(data.categories, filters.categories)))
    if filters.sources:
        keep = _and(keep, np.isin(data.source_codes, _known(data.sources, filters.sources)))
    return keep


def _best_per_memory(data: _UserVectors, rows: np.ndarray, scores: np.ndarray, top_k: int) -> list[MemoryMatch]:
    """The `top_k` memories of these rows by their best row's score (a tie: the row written first)."""
    if len(rows) > 64 * top_k:  # only rows among the best 64 x k can be a top memory's best... or more are needed
        best = np.argpartition(-scores, 64 * top_k)[: 64 * top_k]
        if len(np.unique(data.memory_codes[rows[best]])) >= top_k:
            rows, scores = rows[best], scores[best]
    matches: list[MemoryMatch] = []
    seen: set[int] = set()
    best_first = np.lexsort((rows, -scores))
    for row, score in zip(rows[best_first].tolist(), scores[best_first].tolist()):
        code = int(data.memory_codes[row])
        if code not in seen:
            seen.add(code)
            matches.append(MemoryMatch(str(data.memory_ids[code]), score, data.record_ids[row].decode()))
            if len(matches) == top_k:
                break
    return matches


def _and(keep: np.ndarray | None, more: np.ndarray) -> np.ndarray:
    return more if keep is None else keep & more


def _known(names: list[str], wanted: list[str]) -> list[int]:
    """The codes of the wanted names that the user has (the others match no row)."""
    return [i for i, name in enumerate(names) if name in set(wanted)]


def _metadata(columns: dict[str, list]) -> dict:
    """Rows' columns (of ROW_COLUMNS, by name) as `_UserVectors` keeps them: arrays, the text ones as
    small integer codes into their sorted names."""
    memory_codes, memory_ids = _codes(columns["memory_id"], np.int32)
    kind_codes, kinds = _codes(columns["kind"], np.int8)
    category_codes, categories = _codes(columns["category"], np.int16)
    source_codes, sources = _codes(columns["source"], np.int16)
    return {
        "pks": np.array(columns["id"], dtype=np.int64),
        "record_ids": np.array([r.encode() for r in columns["record_id"]], dtype=bytes),
        "memory_codes": memory_codes,
        "memory_ids": np.array(memory_ids, dtype=object),
        "kind_codes": kind_codes,
        "kinds": kinds,
        "created_at": np.array(columns["created_at"], dtype=np.int64),
        "category_codes": category_codes,
        "categories": categories,
        "source_codes": source_codes,
        "sources": sources,
    }


def _from_snapshot(snapshot: snapshots.Snapshot) -> _UserVectors:
    names = {"kinds", "categories", "sources"}  # lists of names, saved as arrays
    metadata = {name: array.tolist() if name in names else array for name, array in snapshot.meta.items()}
    empty = np.zeros(0, dtype=np.int64)
    return _UserVectors(
        version=snapshot.version,
        **metadata,
        order=empty,
        starts=empty,
        dim=snapshot.dim,
        snapshot=snapshot,
        last_pk=snapshot.info["last_pk"],
        deleted_seq=snapshot.info["deleted_seq"],
        epoch=snapshot.info["epoch"],
    )


def _more_codes(names: list[str], values) -> tuple[np.ndarray, list[str]]:
    """The codes of `values` among `names`, new names added at the end."""
    at = {name: i for i, name in enumerate(names)}
    names = list(names)
    codes = []
    for value in values:
        if value not in at:
            at[value] = len(names)
            names.append(value)
        codes.append(at[value])
    return np.array(codes), names


def _bytes(row: tuple) -> tuple:
    return tuple(bytes(value) if isinstance(value, memoryview) else value for value in row)


def _values(pks: list[int]) -> dict[int, bytes]:
    """The stored float32 bytes of these rows."""
    return dict(_rows(pks, ("id", "values")))


def _rows(pks: list[int], columns: tuple[str, ...]) -> list[tuple]:
    """These columns of these rows (on PostgreSQL as one array literal: a query with thousands of
    placeholders, or a list adapted item by item, costs more to build than to answer)."""
    if connection.vendor != "postgresql":
        found = []
        for start in range(0, len(pks), 500):
            found += LocalVector.objects.filter(id__in=pks[start : start + 500]).values_list(*columns)
        return [_bytes(row) for row in found]
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:  # Django's client-side cursors cannot read binary
        array = "{" + ",".join(map(str, pks)) + "}"
        names = ", ".join(f'"{column}"' for column in columns)
        sql = f"SELECT {names} FROM {LocalVector._meta.db_table} WHERE id = ANY(%s::bigint[])"
        cursor.execute(sql, [array], binary=True)  # vectors as raw bytes, not hex
        return cursor.fetchall()
