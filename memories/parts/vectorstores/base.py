import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from omi_memory.errors import BackendError


@dataclass
class VectorRecord:
    """One vector as stores keep it: Omi's id, the values, and the metadata
    (`uid`, `memory_id`, `created_at` in epoch seconds, `category`, `source`)."""

    id: str
    values: np.ndarray
    metadata: dict


@dataclass
class SearchFilters:
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    categories: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


@dataclass
class MemoryMatch:
    """A memory found by a query, scored by its best vector."""

    memory_id: str
    score: float
    vector_id: str


@dataclass(slots=True)
class VectorMatch:
    """One vector found by a query; `kind` says what it embeds (see memories.vectors.VECTOR_KINDS)."""

    vector_id: str
    memory_id: str
    score: float
    kind: str = ""


@dataclass
class StoreStats:
    """What a store says of itself: the dimension it holds (None: it has none yet), how many
    vectors each namespace holds, and of the store's own namespace how many of each kind (None:
    the store cannot count by metadata)."""

    dimension: int | None
    namespaces: dict[str, int]
    by_kind: dict[str, int] | None


class UpsertIncomplete(BackendError):
    """Some batches of an upsert were not acknowledged; `acknowledged` holds the ids that were."""

    def __init__(self, message: str, *, acknowledged: set[str], permanent: bool = False):
        super().__init__(message, permanent=permanent)
        self.acknowledged = acknowledged


class ModelMismatch(BackendError):
    """The store was built with another embedding model or dimension."""

    def __init__(self, message: str):
        super().__init__(message, permanent=True)


class VectorStore:
    """Keeps vectors with metadata in a namespace; every query is scoped to one uid.

    The store also knows which embedding model and dimension built it (`check_model`)."""

    name = "base"
    guard_ttl = 10.0  # seconds a process trusts its copy of the store's model record (or its absence)

    def __init__(self):
        self._guard: tuple[float, tuple[str, int] | None] = (-np.inf, None)

    @property
    def identity(self) -> str:
        """Names this store and namespace in the model record."""
        raise NotImplementedError

    def upsert(self, records: list[VectorRecord]) -> None:
        """Write records; raise UpsertIncomplete (with the acknowledged ids) if some were not."""
        raise NotImplementedError

    def delete(self, ids: list[str]) -> None:
        raise NotImplementedError

    def query_vectors(
        self, vector: np.ndarray, *, uid: str, top_k: int | None, filters: SearchFilters
    ) -> list[VectorMatch]:
        """The `top_k` nearest vectors of one user (None: all of them, where the store can), best first."""
        raise NotImplementedError

    # A memory has several vectors: ask for this many times more vectors than memories wanted
    # (None: a store that scores every vector of the user anyway takes them all, and is exact).
    overfetch: int | None = 5

    def query(self, vector: np.ndarray, *, uid: str, top_k: int, filters: SearchFilters) -> list[MemoryMatch]:
        """The `top_k` nearest memories of one user, each scored by its best vector."""
        pool = top_k * self.overfetch if self.overfetch else None
        matches: dict[str, MemoryMatch] = {}
        for match in self.query_vectors(vector, uid=uid, top_k=pool, filters=filters):
            if match.memory_id not in matches:
                matches[match.memory_id] = MemoryMatch(match.memory_id, match.score, match.vector_id)
                if len(matches) == top_k:
                    break
        return list(matches.values())

    def query_many(
        self, vectors: list[np.ndarray], *, uid: str, top_k: int, filters: SearchFilters
    ) -> list[list[MemoryMatch]]:
        """`query` for each of several vectors (a store may score them together)."""
        return [self.query(vector, uid=uid, top_k=top_k, filters=filters) for vector in vectors]

    def delete_uid(self, uid: str, *, known_ids: list[str]) -> int:
        """Remove every vector of one user (`known_ids`: the ones the database knows of);
        returns how many ids were deleted."""
        raise NotImplementedError

    def dimension(self) -> int | None:
        """The dimension the store itself enforces, if it has one."""
        return None

    def vector_ids_of(self, *, memories: dict[str, str]) -> list[str]:
        """The ids of every vector the store holds of these memories (memory id -> its uid), read
        from the metadata: another index version's vectors of a memory, whose ids the database
        does not keep."""
        raise NotImplementedError

    def clear(self) -> None:
        """Remove every vector of the namespace (an index version dropped)."""
        raise NotImplementedError

    # Reconciliation (`memories.reconcile`) and readiness

    def fetch_metadata(self, ids: list[str]) -> dict[str, dict]:
        """The metadata of the vectors among `ids` that the store holds (in its batches); an id
        it does not hold is left out. `created_at` as an int, `memory_id` as a str."""
        raise NotImplementedError

    def list_ids(self, *, uid: str | None = None) -> Iterator[list[str]]:
        """Pages of vector ids: one user's (a store may add other users' ids whose id starts
        alike: callers read the metadata), or, with `uid=None`, every id of the namespace."""
        raise NotImplementedError

    def ping(self) -> None:
        """Raise BackendError unless the store answers now."""
        raise NotImplementedError

    def stats(self) -> StoreStats:
        """Counts for the index view (read-only; BackendError when the store does not answer)."""
        raise NotImplementedError

    def check_model(self, model: str, dim: int, *, record: bool = False, chunking: str = "") -> None:
        """Refuse vectors of another model or dimension than the store's. `record=True` (a write)
        records this model (and `chunking`) when the store has none yet."""
        from memories.models import VectorIndex

        fetched_at, known = self._guard
        if time.monotonic() - fetched_at > self.guard_ttl or (known is None and record):
            row = VectorIndex.objects.filter(store=self.identity).values_list("model", "dim").first()
            known = tuple(row) if row else None
            self._guard = (time.monotonic(), known)
        if known is None:
            if not record:
                return
            enforced = self.dimension()
            if enforced is not None and enforced != dim:
                raise ModelMismatch(
                    f"the {self.name} index has dimension {enforced}; the embedder {model!r} makes {dim}: "
                    "use an index of that dimension"
                )
            VectorIndex.objects.get_or_create(
                store=self.identity, defaults={"model": model, "dim": dim, "chunking": chunking}
            )
            self._guard = (-np.inf, None)
            return self.check_model(model, dim)
        if known != (model, dim):
            raise ModelMismatch(
                f"the {self.name} store {self.identity!r} was built with {known[0]!r} ({known[1]} dims); "
                f"this embedder is {model!r} ({dim} dims): run `manage.py reindex` to move to it"
            )

    def set_model(self, model: str, dim: int, chunking: str = "") -> None:
        """Record that the store is (being re)built with this model and chunking: for `reindex`."""
        from memories.models import VectorIndex

        VectorIndex.objects.update_or_create(
            store=self.identity, defaults={"model": model, "dim": dim, "chunking": chunking}
        )
        self._guard = (-np.inf, None)
