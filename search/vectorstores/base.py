from dataclasses import dataclass, field
from datetime import datetime

import numpy as np


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


class VectorStore:
    """Keeps vectors with metadata in a namespace; every query is scoped to one uid."""

    name = "base"

    def upsert(self, records: list[VectorRecord]) -> None:
        raise NotImplementedError

    def delete(self, ids: list[str]) -> None:
        raise NotImplementedError

    def query(self, vector: np.ndarray, *, uid: str, top_k: int, filters: SearchFilters) -> list[MemoryMatch]:
        raise NotImplementedError
