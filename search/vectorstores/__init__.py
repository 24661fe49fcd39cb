from search.registry import load

from .base import MemoryMatch, SearchFilters, VectorRecord, VectorStore

VECTOR_STORES = {
    "local": "search.vectorstores.local.LocalVectorStore",
}


def get_vector_store() -> VectorStore:
    return load("VECTOR_STORE", VECTOR_STORES)


__all__ = ["MemoryMatch", "SearchFilters", "VectorRecord", "VectorStore", "get_vector_store"]
