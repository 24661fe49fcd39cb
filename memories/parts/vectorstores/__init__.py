from memories.parts.registry import load

from .base import (
    MemoryMatch,
    ModelMismatch,
    SearchFilters,
    StoreStats,
    UpsertIncomplete,
    VectorMatch,
    VectorRecord,
    VectorStore,
)

VECTOR_STORES = {
    "local": "memories.parts.vectorstores.local.LocalVectorStore",
    "pinecone": "memories.parts.vectorstores.pinecone.PineconeVectorStore",
}


def get_vector_store() -> VectorStore:
    return load("VECTOR_STORE", VECTOR_STORES)


__all__ = [
    "MemoryMatch",
    "ModelMismatch",
    "SearchFilters",
    "StoreStats",
    "UpsertIncomplete",
    "VectorMatch",
    "VectorRecord",
    "VectorStore",
    "get_vector_store",
]
