"""What the pinecone store sends: batch sizes, the filter syntax, the namespace."""

from datetime import UTC, datetime

import numpy as np
import pytest

from memories.parts.vectorstores import SearchFilters, UpsertIncomplete, VectorRecord
from memories.parts.vectorstores.pinecone import PineconeVectorStore
from omi_memory.errors import BackendError
from tests.conftest import DIMENSIONS

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(fake_pinecone, settings):
    settings.VECTOR_STORE = "pinecone"
    return PineconeVectorStore()


def records(n: int, uid: str = "u1") -> list[VectorRecord]:
    rng = np.random.default_rng(0)
    values = rng.standard_normal((n, DIMENSIONS)).astype(np.float32)
    return [
        VectorRecord(
            f"{uid}-{i // 3}-c{i % 3}",
            values[i],
            {
                "uid": uid,
                "memory_id": str(i // 3),
                "created_at": 1_700_000_000 + i,
                "category": "work",
                "source": "omi",
            },
        )
        for i in range(n)
    ]


def sent(server, path: str) -> list[dict]:
    return [r["json"] for r in server.requests if r["path"] == path]


def test_upserts_go_in_batches_of_100_into_the_namespace(store, fake_pinecone):
    store.upsert(records(250))

    bodies = sent(fake_pinecone, "/vectors/upsert")
    assert sorted(len(b["vectors"]) for b in bodies) == [50, 100, 100]
    assert {b["namespace"] for b in bodies} == {"ns1"}
    first = next(v for b in bodies for v in b["vectors"] if v["id"] == "u1-0-c0")
    assert set(first) == {"id", "values", "metadata"}
    assert first["metadata"] == {
        "uid": "u1",
        "memory_id": "0",
        "created_at": 1_700_000_000,
        "category": "work",
        "source": "omi",
    }
    assert len(fake_pinecone.vectors("ns1")) == 250


def test_deletes_go_in_batches_of_at_most_1000_ids(store, fake_pinecone):
    store.delete([f"u1-{i}" for i in range(2500)])

    assert [len(b["ids"]) for b in sent(fake_pinecone, "/vectors/delete")] == [1000, 1000, 500]


def test_queries_carry_the_filter_in_pinecones_syntax(store, fake_pinecone):
    filters = SearchFilters(
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        ends_at=datetime(2026, 2, 1, tzinfo=UTC),
        categories=["work", "health"],
        sources=["omi"],
    )
    store.query(np.ones(DIMENSIONS, dtype=np.float32) / 8, uid="alice", top_k=5, filters=filters)
    store.query(np.ones(DIMENSIONS, dtype=np.float32) / 8, uid="alice", top_k=5, filters=SearchFilters())

    with_filters, plain = sent(fake_pinecone, "/query")
    assert with_filters["filter"] == {
        "$and": [
            {"uid": {"$eq": "alice"}},
            {"created_at": {"$gte": 1767225600}},
            {"created_at": {"$lte": 1769904000}},
            {"category": {"$in": ["work", "health"]}},
            {"source": {"$in": ["omi"]}},
        ]
    }
    assert plain["filter"] == {"uid": {"$eq": "alice"}}
    assert with_filters["namespace"] == "ns1" and with_filters["includeMetadata"] is True
    assert with_filters["topK"] >= 5  # more vectors than memories: a memory has several


def test_a_failed_batch_is_reported_with_the_ids_that_were_acknowledged(store, fake_pinecone, settings):
    settings.PINECONE_UPSERT_CONCURRENCY = 1  # batches in order, so that the faults hit the first
    # The first batch of the second call fails every try the SDK makes (it retries 5xx 3 times).
    batches = records(250)
    store.upsert(batches[:100])
    fake_pinecone.fail("/vectors/upsert", "500", "500", "500", "500")

    with pytest.raises(UpsertIncomplete) as raised:
        store.upsert(batches[100:])

    assert raised.value.acknowledged == {r.id for r in batches[200:]}
    assert not raised.value.permanent
    assert set(fake_pinecone.vectors("ns1")) == {r.id for r in batches[:100] + batches[200:]}


def test_a_refused_key_is_a_permanent_error(fake_pinecone, settings):
    fake_pinecone.api_key = "the-right-key"
    try:
        with pytest.raises(BackendError) as raised:
            PineconeVectorStore().query(np.ones(DIMENSIONS) / 8, uid="u1", top_k=1, filters=SearchFilters())
    finally:
        fake_pinecone.api_key = None
    assert raised.value.permanent and "401" in str(raised.value)
