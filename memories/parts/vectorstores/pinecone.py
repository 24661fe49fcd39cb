"""The `pinecone` vector store: one Pinecone index, reached by its host, through the `pinecone` SDK.

Records follow Omi: id `{uid}-{memory_id}` (windows `-c{i}`), metadata `uid`, `memory_id`,
`created_at` (epoch seconds), `category`, `source`, in the namespace PINECONE_NAMESPACE. Upserts go
in batches of 100 (several in flight), deletes in batches of at most 1,000 ids; every query
carries the user filter.
The SDK retries 429/5xx/timeouts itself (honouring Retry-After); what still fails is raised as a
BackendError that says whether a later retry can help.
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from omi_memory.errors import BackendError

from .base import SearchFilters, StoreStats, UpsertIncomplete, VectorMatch, VectorRecord, VectorStore

UPSERT_BATCH = 100
DELETE_BATCH = 1000
FETCH_BATCH = 100
MAX_TOP_K = 1000


def pinecone_filter(uid: str, filters: SearchFilters) -> dict:
    """The query filter in Pinecone's syntax; the user condition is always there."""
    clauses: list[dict] = [{"uid": {"$eq": uid}}]
    if filters.starts_at:
        clauses.append({"created_at": {"$gte": int(filters.starts_at.timestamp())}})
    if filters.ends_at:
        clauses.append({"created_at": {"$lte": int(filters.ends_at.timestamp())}})
    if filters.categories:
        clauses.append({"category": {"$in": list(filters.categories)}})
    if filters.sources:
        clauses.append({"source": {"$in": list(filters.sources)}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class PineconeVectorStore(VectorStore):
    name = "pinecone"

    def __init__(self, namespace: str | None = None, host: str | None = None):
        super().__init__()
        if not settings.PINECONE_API_KEY or not (host or settings.PINECONE_HOST):
            raise ImproperlyConfigured("VECTOR_STORE=pinecone needs PINECONE_API_KEY and PINECONE_HOST")
        from pinecone import Index

        self.host = host or settings.PINECONE_HOST
        self.namespace = namespace or settings.VECTOR_NAMESPACE
        self.index = Index(host=self.host, api_key=settings.PINECONE_API_KEY, timeout=settings.PINECONE_TIMEOUT)

    @property
    def identity(self) -> str:
        return f"pinecone/{self.host}/{self.namespace}"

    def upsert(self, records: list[VectorRecord]) -> None:
        """Batches of 100, PINECONE_UPSERT_CONCURRENCY in flight; a batch that fails (after the
        SDK's retries) does not stop the others, and is reported with what was acknowledged."""
        batches = [records[start : start + UPSERT_BATCH] for start in range(0, len(records), UPSERT_BATCH)]

        def send(batch: list[VectorRecord]) -> BackendError | None:
            vectors = [
                {"id": r.id, "values": np.asarray(r.values, dtype=np.float32).tolist(), "metadata": r.metadata}
                for r in batch
            ]
            try:
                self._call("upsert", self.index.upsert, vectors=vectors, namespace=self.namespace)
            except BackendError as exc:
                return exc
            return None

        workers = max(1, min(settings.PINECONE_UPSERT_CONCURRENCY, len(batches)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(send, batches))
        acknowledged = {r.id for batch, error in zip(batches, results) if error is None for r in batch}
        failures = [error for error in results if error is not None]
        if failures:
            raise UpsertIncomplete(
                f"{len(records) - len(acknowledged)} of {len(records)} vectors not acknowledged: {failures[0]}",
                acknowledged=acknowledged,
                permanent=all(f.permanent for f in failures),
            )

    def delete(self, ids: list[str]) -> None:
        for start in range(0, len(ids), DELETE_BATCH):
            self._call(
                "delete", self.index.delete, ids=list(ids[start : start + DELETE_BATCH]), namespace=self.namespace
            )

    def query_vectors(
        self, vector: np.ndarray, *, uid: str, top_k: int | None, filters: SearchFilters
    ) -> list[VectorMatch]:
        response = self._call(
            "query",
            self.index.query,
            vector=np.asarray(vector, dtype=np.float32).tolist(),
            top_k=min(top_k or MAX_TOP_K, MAX_TOP_K),
            namespace=self.namespace,
            filter=pinecone_filter(uid, filters),
            include_metadata=True,
        )
        return [
            VectorMatch(match.id, str(metadata["memory_id"]), float(match.score), str(metadata.get("kind", "")))
            for match in response.matches  # best first
            # never another user's vector, whatever the index returns
            if (metadata := match.metadata or {}).get("uid") == uid and "memory_id" in metadata
        ]

    def delete_uid(self, uid: str, *, known_ids: list[str]) -> int:
        """The ids the database knows of, and any other `{uid}-` id whose metadata names this
        user (the prefix alone would also match a user called `{uid}-2`)."""
        ids = set(known_ids)
        pages = self._call(
            "list",
            lambda: [
                [item.id for item in page.vectors if item.id]
                for page in self.index.list(prefix=f"{uid}-", namespace=self.namespace)
            ],
        )
        listed = [vector_id for page in pages for vector_id in page if vector_id not in ids]
        for start in range(0, len(listed), FETCH_BATCH):
            fetched = self._call(
                "fetch", self.index.fetch, ids=listed[start : start + FETCH_BATCH], namespace=self.namespace
            )
            ids.update(i for i, v in fetched.vectors.items() if (v.metadata or {}).get("uid") == uid)
        self.delete(sorted(ids))
        return len(ids)

    def fetch_metadata(self, ids: list[str]) -> dict[str, dict]:
        """Fetched FETCH_BATCH ids at a time (values come along: Pinecone's fetch has no way to
        leave them out). Pinecone keeps numbers as floats: `created_at` comes back an int."""
        found = {}
        for start in range(0, len(ids), FETCH_BATCH):
            fetched = self._call(
                "fetch", self.index.fetch, ids=ids[start : start + FETCH_BATCH], namespace=self.namespace
            )
            for vector_id, vector in fetched.vectors.items():
                metadata = dict(vector.metadata or {})
                if isinstance(metadata.get("created_at"), float) and metadata["created_at"].is_integer():
                    metadata["created_at"] = int(metadata["created_at"])
                found[vector_id] = metadata
        return found

    def vector_ids_of(self, *, memories: dict[str, str]) -> list[str]:
        """Listed by each memory's prefix `{uid}-{memory_id}` (which also matches other memories
        whose id starts alike), kept by their metadata."""
        listed = []
        for memory_id, uid in memories.items():
            for page in self._call(
                "list", lambda p: list(self.index.list(prefix=p, namespace=self.namespace)), f"{uid}-{memory_id}"
            ):
                listed += [item.id for item in page.vectors if item.id]
        found = self.fetch_metadata(listed)
        return [i for i, meta in found.items() if memories.get(str(meta.get("memory_id"))) == meta.get("uid")]

    def clear(self) -> None:
        self._call("delete", self.index.delete, delete_all=True, namespace=self.namespace)

    def list_ids(self, *, uid: str | None = None) -> Iterator[list[str]]:
        """Pinecone's list, a page (at most 100 ids) at a time; one user's by the prefix `{uid}-`,
        which also matches users called `{uid}-...`."""
        pages = self.index.list(prefix=f"{uid}-" if uid is not None else None, namespace=self.namespace)
        while True:
            page = self._call("list", next, pages, None)
            if page is None:
                return
            yield [item.id for item in page.vectors if item.id]

    def ping(self) -> None:
        self._call("describe_index_stats", self.index.describe_index_stats)

    def stats(self) -> StoreStats:
        """From `describe_index_stats`: the index's dimension and each namespace's count (the
        default namespace as "__default__"). Pinecone refuses a filter there: no count by kind."""
        described = self._call("describe_index_stats", self.index.describe_index_stats)
        namespaces = {name: summary.vector_count for name, summary in described.namespaces.items()}
        return StoreStats(dimension=described.dimension, namespaces=namespaces, by_kind=None)

    def dimension(self) -> int | None:
        return self._call("describe_index_stats", self.index.describe_index_stats).dimension

    def _call(self, what: str, function, *args, **kwargs):
        from pinecone.errors import ApiError, PineconeError, PineconeTypeError, PineconeValueError

        try:
            return function(*args, **kwargs)
        except (PineconeValueError, PineconeTypeError) as exc:  # refused by the SDK before sending
            raise BackendError(f"pinecone {what}: {exc}", permanent=True) from exc
        except ApiError as exc:
            transient = exc.status_code in (408, 429) or exc.status_code >= 500
            raise BackendError(f"pinecone {what}: HTTP {exc.status_code}: {exc}", permanent=not transient) from exc
        except PineconeError as exc:  # timeouts, dropped connections, replies that do not parse
            raise BackendError(f"pinecone {what}: {type(exc).__name__}: {exc}") from exc
