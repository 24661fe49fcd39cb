import numpy as np
from django.conf import settings
from django.db import transaction

from omi_memory.errors import BackendError
from search.models import LocalVector

from .base import MemoryMatch, SearchFilters, VectorMatch, VectorRecord, VectorStore


class LocalVectorStore(VectorStore):
    """Exact cosine search over one uid's vectors, kept in the database (`LocalVector`).

    Vectors are unit length, so cosine is a dot product; the filters run in SQL, the scoring in
    NumPy, and a memory scores as its best vector (its own or one of its transcript windows).
    """

    name = "local"

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
            )

    def delete(self, ids: list[str]) -> None:
        for start in range(0, len(ids), 1000):
            LocalVector.objects.filter(namespace=self.namespace, record_id__in=ids[start:start + 1000]).delete()

    def delete_uid(self, uid: str, *, known_ids: list[str]) -> int:
        deleted, _ = LocalVector.objects.filter(namespace=self.namespace, uid=uid).delete()
        return deleted

    def clear(self) -> None:
        """Remove every vector of the namespace (a reindex to another dimension starts here)."""
        LocalVector.objects.filter(namespace=self.namespace).delete()

    def query_vectors(
        self, vector: np.ndarray, *, uid: str, top_k: int | None, filters: SearchFilters
    ) -> list[VectorMatch]:
        rows = LocalVector.objects.filter(namespace=self.namespace, uid=uid)
        if filters.starts_at:
            rows = rows.filter(created_at__gte=int(filters.starts_at.timestamp()))
        if filters.ends_at:
            rows = rows.filter(created_at__lte=int(filters.ends_at.timestamp()))
        if filters.categories:
            rows = rows.filter(category__in=filters.categories)
        if filters.sources:
            rows = rows.filter(source__in=filters.sources)
        found = list(rows.values_list("record_id", "memory_id", "kind", "values"))
        if not found:
            return []
        query = np.asarray(vector, dtype=np.float32)
        blob = b"".join(row[3] for row in found)
        if len(blob) != len(found) * query.size * 4:
            raise BackendError(
                f"stored vectors of uid {uid!r} do not all have the query's {query.size} dimensions",
                permanent=True,
            )
        scores = np.frombuffer(blob, dtype="<f4").reshape(len(found), query.size) @ query
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [VectorMatch(found[i][0], found[i][1], float(scores[i]), found[i][2]) for i in order]

    def query(self, vector: np.ndarray, *, uid: str, top_k: int, filters: SearchFilters) -> list[MemoryMatch]:
        """Exact: every vector of the user is scored, a memory takes its best."""
        matches: dict[str, MemoryMatch] = {}
        for match in self.query_vectors(vector, uid=uid, top_k=None, filters=filters):
            if match.memory_id not in matches:
                matches[match.memory_id] = MemoryMatch(match.memory_id, match.score, match.vector_id)
                if len(matches) == top_k:
                    break
        return list(matches.values())
