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
    """The store of the index version in use (memories/parts/versions.py)."""
    from memories.parts.versions import current_parts

    return current_parts().store


def configured_vector_store() -> VectorStore:
    """The store the settings name (VECTOR_STORE, VECTOR_NAMESPACE): the index's until a version
    is activated."""
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
    "configured_vector_store",
    "get_vector_store",
]
