"""One contract for every vector store: the same tests run on `local` and on `pinecone` (against
a local fake of Pinecone's data plane, through the real SDK)."""

from datetime import UTC, datetime

import numpy as np
import pytest

from memories.parts.vectorstores import SearchFilters, VectorRecord
from tests.conftest import DIMENSIONS

pytestmark = pytest.mark.django_db
DAY = 86_400


@pytest.fixture(params=["local", "pinecone"])
def store(request, settings):
    settings.VECTOR_STORE = request.param
    if request.param == "pinecone":
        request.getfixturevalue("fake_pinecone")
    from memories.parts.vectorstores import get_vector_store

    return get_vector_store()


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIMENSIONS).astype(np.float32)
    return vector / np.linalg.norm(vector)


def near(vector: np.ndarray, seed: int, amount: float) -> np.ndarray:
    moved = vector + amount * unit(seed)
    return moved / np.linalg.norm(moved)


def record(vector_id: str, values, *, uid="u1", memory_id="1", created_at=100 * DAY, category="work", source="omi"):
    return VectorRecord(
        vector_id,
        values,
        {"uid": uid, "memory_id": memory_id, "created_at": created_at, "category": category, "source": source},
    )


def found(store, vector, uid="u1", k=10, **filters) -> list[str]:
    return [m.memory_id for m in store.query(vector, uid=uid, top_k=k, filters=SearchFilters(**filters))]


def test_nearest_first_with_cosine_scores(store):
    q = unit(1)
    store.upsert(
        [
            record("u1-1", near(q, 2, 0.1), memory_id="1"),
            record("u1-2", near(q, 3, 1.0), memory_id="2"),
            record("u1-3", unit(4), memory_id="3"),
        ]
    )

    matches = store.query(q, uid="u1", top_k=3, filters=SearchFilters())

    assert [m.memory_id for m in matches] == ["1", "2", "3"]
    assert matches[0].score == pytest.approx(float(near(q, 2, 0.1) @ q), abs=1e-4)
    assert matches[0].score > matches[1].score > matches[2].score


def test_a_memory_appears_once_scored_by_its_best_vector(store):
    q = unit(1)
    store.upsert(
        [
            record("u1-7", unit(9), memory_id="7"),
            record("u1-7-c0", near(q, 2, 0.05), memory_id="7"),
            record("u1-7-c1", near(q, 3, 0.3), memory_id="7"),
            record("u1-8", near(q, 4, 0.2), memory_id="8"),
        ]
    )

    matches = store.query(q, uid="u1", top_k=5, filters=SearchFilters())

    assert [(m.memory_id, m.vector_id) for m in matches] == [("7", "u1-7-c0"), ("8", "u1-8")]


def test_top_k_limits_memories_not_vectors(store):
    q = unit(1)
    store.upsert(
        [record(f"u1-{i}-c{j}", near(q, 10 * i + j, 0.1 * i), memory_id=str(i)) for i in range(1, 6) for j in range(3)]
    )

    assert found(store, q, k=3) == ["1", "2", "3"]


def test_a_query_never_returns_another_users_vectors(store):
    q = unit(1)
    store.upsert(
        [
            record("u2-5", q, uid="u2", memory_id="5"),
            record("u1-1", unit(2), memory_id="1"),
            record("u1-2-5", q, uid="u1-2", memory_id="6"),
        ]
    )

    assert found(store, q, uid="u1") == ["1"]
    assert found(store, q, uid="u2") == ["5"]
    assert found(store, q, uid="nobody") == []


def test_filters_on_dates_categories_and_sources(store):
    q = unit(1)
    store.upsert(
        [
            record("u1-1", q, memory_id="1", created_at=10 * DAY, category="work", source="omi"),
            record("u1-2", q, memory_id="2", created_at=20 * DAY, category="health", source="phone"),
            record("u1-3", q, memory_id="3", created_at=30 * DAY, category="work", source="phone"),
        ]
    )
    day = lambda n: datetime.fromtimestamp(n * DAY, tz=UTC)  # noqa: E731

    assert sorted(found(store, q, starts_at=day(20))) == ["2", "3"]
    assert sorted(found(store, q, ends_at=day(20))) == ["1", "2"]
    assert sorted(found(store, q, starts_at=day(15), ends_at=day(25))) == ["2"]
    assert sorted(found(store, q, categories=["work"])) == ["1", "3"]
    assert sorted(found(store, q, sources=["phone", "desktop"])) == ["2", "3"]
    assert found(store, q, categories=["work"], sources=["phone"], starts_at=day(5)) == ["3"]
    assert found(store, q, categories=["family"]) == []


def test_upsert_overwrites_values_and_metadata(store):
    store.upsert([record("u1-1", unit(1), category="work")])
    store.upsert([record("u1-1", unit(2), category="health")])

    matches = store.query(unit(2), uid="u1", top_k=1, filters=SearchFilters(categories=["health"]))

    assert matches[0].score == pytest.approx(1.0, abs=1e-4)
    assert found(store, unit(2), categories=["work"]) == []


def test_delete_removes_only_the_given_ids(store):
    store.upsert(
        [
            record("u1-1", unit(1), memory_id="1"),
            record("u1-1-c0", unit(2), memory_id="1"),
            record("u1-2", unit(3), memory_id="2"),
        ]
    )

    store.delete(["u1-1", "u1-1-c0", "never-stored"])

    assert found(store, unit(1)) == ["2"]


def test_erasing_a_user_removes_all_their_vectors_and_no_one_elses(store):
    store.upsert(
        [record(f"alice-{i}", unit(i), uid="alice", memory_id=str(i)) for i in range(1, 130)]
        + [record("alice-2-9", unit(9), uid="alice-2", memory_id="9")]
    )

    store.delete_uid("alice", known_ids=["alice-1"])

    assert found(store, unit(5), uid="alice", k=100) == []
    assert found(store, unit(9), uid="alice-2") == ["9"]


def test_namespaces_are_kept_apart(store, settings):
    from memories.parts.vectorstores import get_vector_store

    store.upsert([record("u1-1", unit(1), memory_id="1")])
    settings.VECTOR_NAMESPACE = "other"
    other = get_vector_store()
    other.upsert([record("u1-2", unit(1), memory_id="2")])

    assert found(other, unit(1)) == ["2"]
    assert found(store, unit(1)) == ["1"]


def test_fetch_metadata_returns_what_is_held_and_leaves_out_the_rest(store):
    store.upsert([record("u1-1", unit(1), memory_id="1", created_at=123 * DAY), record("u1-1-c0", unit(2))])

    held = store.fetch_metadata(["u1-1", "u1-9", "u1-1-c0"])

    assert set(held) == {"u1-1", "u1-1-c0"}
    assert held["u1-1"]["created_at"] == 123 * DAY and isinstance(held["u1-1"]["created_at"], int)
    assert (held["u1-1"]["uid"], held["u1-1"]["memory_id"], held["u1-1"]["category"]) == ("u1", "1", "work")


def test_fetch_metadata_takes_more_ids_than_one_request_holds(store):
    store.upsert([record(f"u1-{i}", unit(i), memory_id=str(i)) for i in range(250)])

    held = store.fetch_metadata([f"u1-{i}" for i in range(300)])

    assert set(held) == {f"u1-{i}" for i in range(250)}


def test_list_ids_pages_through_one_users_ids_or_the_whole_namespace(store):
    store.upsert([record(f"u1-{i}", unit(i), memory_id=str(i)) for i in range(130)])
    store.upsert([record("u2-1", unit(500), uid="u2")])

    users_pages = list(store.list_ids(uid="u1"))
    every_id = [vector_id for page in store.list_ids() for vector_id in page]

    assert all(len(page) <= 1000 for page in users_pages)  # pages, never every id at once
    assert sorted(i for page in users_pages for i in page) == sorted(f"u1-{i}" for i in range(130))
    assert sorted(every_id) == sorted([*(f"u1-{i}" for i in range(130)), "u2-1"])


def test_ping_answers_when_the_store_does(store):
    store.ping()


def test_stats_count_the_namespaces_vectors_and_say_the_dimension(store, settings):
    assert store.stats().namespaces.get(settings.VECTOR_NAMESPACE, 0) == 0
    store.upsert([record(f"u1-{i}", unit(i), memory_id=str(i)) for i in range(3)] + [record("u2-9", unit(9), uid="u2")])
    store.delete(["u1-0"])

    stats = store.stats()

    assert stats.namespaces[settings.VECTOR_NAMESPACE] == 3 and stats.dimension == DIMENSIONS
    if store.name == "local":  # Pinecone's statistics take no filter: it cannot count by kind
        assert stats.by_kind == {"": 3}
