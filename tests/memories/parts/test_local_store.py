from datetime import UTC, datetime

import numpy as np
import pytest

from memories.parts.vectorstores import SearchFilters, VectorRecord
from memories.parts.vectorstores.local import LocalVectorStore

pytestmark = pytest.mark.django_db


def unit(*values) -> np.ndarray:
    v = np.array(values + (0.0,) * (4 - len(values)), dtype=np.float32)
    return v / np.linalg.norm(v)


def record(id_, vector, uid="u1", memory_id="1", created_at=1_700_000_000, category="work", source="omi"):
    meta = {"uid": uid, "memory_id": memory_id, "created_at": created_at, "category": category, "source": source}
    return VectorRecord(id=id_, values=vector, metadata=meta)


def test_a_memory_scores_as_its_best_vector_and_appears_once():
    store = LocalVectorStore()
    store.upsert(
        [
            record("u1-1", unit(1, 1)),
            record("u1-1-c0", unit(1)),
            record("u1-2", unit(0, 1), memory_id="2"),
        ]
    )

    matches = store.query(unit(1), uid="u1", top_k=5, filters=SearchFilters())

    assert [(m.memory_id, m.vector_id) for m in matches] == [("1", "u1-1-c0"), ("2", "u1-2")]
    assert matches[0].score == pytest.approx(1.0)


def test_queries_never_cross_uids_or_namespaces():
    LocalVectorStore().upsert([record("u1-1", unit(1)), record("u2-2", unit(1), uid="u2", memory_id="2")])
    LocalVectorStore(namespace="other").upsert([record("u1-3", unit(1), memory_id="3")])

    matches = LocalVectorStore().query(unit(1), uid="u1", top_k=10, filters=SearchFilters())

    assert [m.memory_id for m in matches] == ["1"]


def test_filters_on_time_category_and_source():
    day = 86_400
    LocalVectorStore().upsert(
        [
            record("u1-1", unit(1), memory_id="1", created_at=10 * day, category="work", source="omi"),
            record("u1-2", unit(1), memory_id="2", created_at=20 * day, category="health", source="phone"),
            record("u1-3", unit(1), memory_id="3", created_at=30 * day, category="work", source="phone"),
        ]
    )

    def found(**filters):
        matches = LocalVectorStore().query(unit(1), uid="u1", top_k=10, filters=SearchFilters(**filters))
        return sorted(m.memory_id for m in matches)

    epoch = lambda days: datetime.fromtimestamp(days * day, tz=UTC)  # noqa: E731
    assert found(starts_at=epoch(15)) == ["2", "3"]
    assert found(ends_at=epoch(20)) == ["1", "2"]
    assert found(categories=["work"]) == ["1", "3"]
    assert found(sources=["phone"], categories=["work"]) == ["3"]


def test_upsert_replaces_and_delete_removes():
    store = LocalVectorStore()
    store.upsert([record("u1-1", unit(1))])
    store.upsert([record("u1-1", unit(0, 1), category="health")])

    assert store.query(unit(0, 1), uid="u1", top_k=1, filters=SearchFilters(categories=["health"]))[
        0
    ].score == pytest.approx(1)
    store.delete(["u1-1", "never-existed"])
    assert store.query(unit(0, 1), uid="u1", top_k=1, filters=SearchFilters()) == []


def test_a_users_vectors_are_read_again_when_another_process_changes_them():
    from memories.models import LocalVector, LocalVectorVersion

    store = LocalVectorStore()
    store.upsert([record("u1-1", unit(1))])
    assert store.query(unit(1), uid="u1", top_k=1, filters=SearchFilters())[0].score == pytest.approx(1)

    # Another process rewrites the vector and, as every write does, the user's version.
    LocalVector.objects.filter(record_id="u1-1").update(values=unit(0, 1).astype("<f4").tobytes())
    LocalVectorVersion.objects.filter(uid="u1").update(version="changed-elsewhere")

    assert store.query(unit(1), uid="u1", top_k=1, filters=SearchFilters())[0].score == pytest.approx(0, abs=1e-6)


def test_the_process_keeps_the_most_recently_searched_users_within_the_byte_limit(settings, monkeypatch):
    from memories.parts.vectorstores import local

    settings.LOCAL_STORE_CACHE_MB = 1
    monkeypatch.setattr(local, "_cache", None)
    store = LocalVectorStore()
    rng = np.random.default_rng(0)
    sizes = {"a": 256, "b": 256, "c": 256, "huge": 700}  # 384 dimensions: 0.4 MB a user, "huge" 1.1 MB
    for uid, n in sizes.items():
        vectors = rng.normal(size=(n, 384)).astype(np.float32)
        store.upsert([record(f"{uid}-{i}", v, uid=uid, memory_id=str(i)) for i, v in enumerate(vectors)])

    def cached() -> set[str]:
        return {uid for _, uid in local._cache}

    query = np.eye(384, dtype=np.float32)[0]

    def search(uid):
        assert store.query(query, uid=uid, top_k=1, filters=SearchFilters())  # found, cached or not

    for uid in ("a", "b", "a", "c"):  # a, then b, then a again: b is the least recently used
        search(uid)  # c: only two fit, b goes
    assert cached() == {"a", "c"}
    search("huge")  # larger than the whole cache: answered, not kept, nobody evicted for it
    assert cached() == {"a", "c"}
    search("b")
    assert cached() == {"c", "b"}
    assert local._cache.currsize == sum(data.nbytes for data in local._cache.values()) <= 2**20
