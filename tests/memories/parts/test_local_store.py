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


@pytest.fixture(params=["float32", "int8"])
def layout(request, monkeypatch):
    """The two ways the process keeps a user's vectors: small users their float32 matrix, larger
    ones an int8 copy scored with an exact re-score (here every user, whatever their size)."""
    from memories.parts.vectorstores import local

    monkeypatch.setattr(local, "_cache", None)
    if request.param == "int8":
        monkeypatch.setattr(local, "EXACT_MAX_BYTES", 0)
    return request.param


def cached_copy(uid: str):
    from memories.parts.vectorstores import local

    return local._cache[("ns1", uid)]


def test_a_users_vectors_are_read_again_when_another_process_changes_them(layout):
    from memories.models import LocalVector, LocalVectorVersion

    store = LocalVectorStore()
    store.upsert([record("u1-1", unit(1))])
    assert store.query(unit(1), uid="u1", top_k=1, filters=SearchFilters())[0].score == pytest.approx(1)

    # Another process rewrites the vector and, as every write does, the user's version.
    LocalVector.objects.filter(record_id="u1-1").update(values=unit(0, 1).astype("<f4").tobytes())
    LocalVectorVersion.objects.filter(uid="u1").update(version="changed-elsewhere")

    assert store.query(unit(1), uid="u1", top_k=1, filters=SearchFilters())[0].score == pytest.approx(0, abs=1e-6)


def test_the_process_keeps_the_most_recently_searched_users_within_the_byte_limit(settings, layout):
    from memories.parts.vectorstores import local

    settings.LOCAL_STORE_CACHE_MB = 1
    store = LocalVectorStore()
    rng = np.random.default_rng(0)
    # 384 dimensions: about 0.4 MB a user (float32 256 vectors, int8 800), "huge" 1.1 MB
    sizes = (
        {"a": 256, "b": 256, "c": 256, "huge": 700}
        if layout == "float32"
        else {"a": 800, "b": 800, "c": 800, "huge": 2200}
    )
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
    assert (cached_copy("b").matrix is None) == (layout == "int8")


def test_the_int8_copy_finds_what_exact_search_finds(monkeypatch):
    """Random unit vectors (their scores all close together, the int8 copy's rounding enough to
    reorder them): the int8 copy with its re-score gives exact search's memories, vectors and scores."""
    from memories.parts.vectorstores import local

    rng = np.random.default_rng(17)
    vectors = rng.normal(size=(2400, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = LocalVectorStore()
    store.upsert(
        [
            record(f"u1-{i}", v, memory_id=str(i // 8), category=("work", "health")[i % 2], created_at=i)
            for i, v in enumerate(vectors)
        ]
    )
    queries = [vectors[5] + rng.normal(scale=0.5, size=384).astype(np.float32) for _ in range(5)]
    queries += [rng.normal(size=384).astype(np.float32) for _ in range(5)]
    queries = [q / np.linalg.norm(q) for q in queries]
    health = SearchFilters(categories=["health"], starts_at=datetime.fromtimestamp(600, tz=UTC))

    def answers():
        monkeypatch.setattr(local, "_cache", None)
        found = []
        for query in queries:
            for filters in (SearchFilters(), health):
                found.append(
                    [
                        (m.memory_id, m.vector_id, m.score)
                        for m in store.query(query, uid="u1", top_k=10, filters=filters)
                    ]
                )
                found.append(
                    [(m.vector_id, m.score) for m in store.query_vectors(query, uid="u1", top_k=100, filters=filters)]
                )
        for filters in (SearchFilters(), health):  # several queries scored together: each as if alone
            for matches in store.query_many(queries, uid="u1", top_k=10, filters=filters):
                found.append([(m.memory_id, m.vector_id, m.score) for m in matches])
        return found

    exact = answers()
    monkeypatch.setattr(local, "EXACT_MAX_BYTES", 0)
    monkeypatch.setattr(local, "READ_CHUNK", 700)  # read, coded and packed 700 rows at a time
    int8 = answers()

    assert cached_copy("u1").matrix is None and len(cached_copy("u1").packed) == 4
    assert cached_copy("u1").nbytes < 0.35 * vectors.nbytes
    assert len(exact) == len(int8) == 60
    for together, alone in zip(exact[40:50], exact[0:40:4]):  # query_many answers each query as query does
        assert [row[:-1] for row in together] == [row[:-1] for row in alone]
    for want, got in zip(exact, int8):
        assert [row[:-1] for row in got] == [row[:-1] for row in want]
        assert [row[-1] for row in got] == pytest.approx([row[-1] for row in want], abs=1e-6)
    # without the re-score the int8 copy's order would not be exact search's
    codes, scales, _, _ = local._quantize(vectors)
    rough = (codes.astype(np.float32) * scales[:, None]) @ queries[-1]
    assert np.argsort(-rough)[:100].tolist() != np.argsort(-(vectors @ queries[-1]))[:100].tolist()
