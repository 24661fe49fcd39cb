"""A heavy user's snapshot on disk (memories/parts/vectorstores/snapshots.py): searched through its
graph, it finds what exact search finds; rows written and deleted since are seen; a snapshot that
does not match the database is not trusted; erasing a user removes it."""

from datetime import UTC, datetime

import numpy as np
import pytest

from memories.parts.vectorstores import SearchFilters, VectorRecord, snapshots
from memories.parts.vectorstores import local as local_module
from memories.parts.vectorstores.local import LocalVectorStore

pytestmark = pytest.mark.django_db


@pytest.fixture
def graph(settings, monkeypatch):
    """Snapshots on, the graph asked even for a few rows, and no thread (it would not see the test's
    transaction): a snapshot is made when the test says so."""
    settings.LOCAL_STORE_SNAPSHOT_ROWS = 1
    monkeypatch.setattr(local_module, "EXACT_ROWS", 0)
    monkeypatch.setattr(local_module, "_cache", None)
    monkeypatch.setattr(LocalVectorStore, "_snapshot_in_background", lambda self, uid: None)


def clustered(rng, memories: int, per: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectors with neighbours, as real ones have: each memory's `per` vectors around its own centre,
    the centres around 20 topics. Returns the unit vectors and each one's memory."""
    topics = rng.normal(size=(20, 384))
    centres = topics[rng.integers(0, 20, memories)] + 0.6 * rng.normal(size=(memories, 384))
    owner = np.repeat(np.arange(memories), per)
    vectors = (centres[owner] + 0.5 * rng.normal(size=(len(owner), 384))).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), owner


def records(vectors, owner, uid="u1", start=0):
    return [
        VectorRecord(
            id=f"{uid}-{memory}-{i}",
            values=vector,
            metadata={
                "uid": uid,
                "memory_id": str(memory),
                "created_at": 1_700_000_000 + int(memory),
                "category": ("work", "health")[int(memory) % 2],
                "source": "omi",
                "kind": "snippet",
            },
        )
        for i, (vector, memory) in enumerate(zip(vectors, owner), start=start)
    ]


def snapshotted(seed: int, memories: int, per: int):
    """A store holding u1's clustered vectors, with a snapshot of them: the store, vectors, owners and
    the generator (for queries)."""
    rng = np.random.default_rng(seed)
    vectors, owner = clustered(rng, memories, per)
    store = LocalVectorStore()
    store.upsert(records(vectors, owner))
    assert store.snapshot("u1")
    return store, vectors, owner, rng


def answers(store, queries, uid="u1"):
    health = SearchFilters(categories=["health"], starts_at=datetime.fromtimestamp(1_700_000_050, tz=UTC))
    found = []
    for query in queries:
        for filters in (SearchFilters(), health):
            found.append([m.memory_id for m in store.query(query, uid=uid, top_k=10, filters=filters)])
        found.append([m.vector_id for m in store.query_vectors(query, uid=uid, top_k=50, filters=SearchFilters())])
    for matches in store.query_many(queries[:3], uid=uid, top_k=10, filters=SearchFilters()):
        found.append([m.memory_id for m in matches])
    return found


def exact(settings, store, queries, uid="u1"):
    """What the store answers without a snapshot (every row scored), then with snapshots on again."""
    rows = settings.LOCAL_STORE_SNAPSHOT_ROWS
    settings.LOCAL_STORE_SNAPSHOT_ROWS = 0
    local_module._cache = None
    try:
        return answers(store, queries, uid)
    finally:
        settings.LOCAL_STORE_SNAPSHOT_ROWS = rows
        local_module._cache = None


def test_the_graph_finds_what_exact_search_finds(settings, graph):
    store, vectors, owner, rng = snapshotted(3, 300, 12)
    queries = [v + 0.3 * rng.normal(size=384).astype(np.float32) for v in vectors[rng.integers(0, len(vectors), 8)]]
    queries = [q / np.linalg.norm(q) for q in queries]
    want = exact(settings, store, queries)  # every row scored

    got = answers(store, queries)

    data = local_module._cache[("ns1", "u1")]
    assert data.snapshot is not None and data.matrix is None and data.packed is None  # the graph answered
    assert got == want
    by_id = {r.id: r.values for r in records(vectors, owner)}
    for match in store.query_vectors(queries[0], uid="u1", top_k=20, filters=SearchFilters()):  # exact scores
        assert match.score == pytest.approx(float(by_id[match.vector_id] @ queries[0]), abs=1e-6)


def test_a_process_reads_a_snapshots_files_through_once_after_its_first_search(settings, graph, monkeypatch):
    """So that the page cache holds them (docs/benchmarks.md: a cold cache made searches 3x slower)."""
    read = []
    monkeypatch.setattr(snapshots, "_read_through", lambda files: read.append([f.name for f in files]))
    monkeypatch.setattr(snapshots.threading, "Thread", _InPlace)
    store, vectors, _, _ = snapshotted(4, 60, 12)

    for _ in range(3):
        store.query(vectors[0], uid="u1", top_k=5, filters=SearchFilters())

    assert read == [["vectors.f32", "hnsw.usearch"]]
    local_module._cache = None  # another process opens it: reads it through too
    store.query(vectors[0], uid="u1", top_k=5, filters=SearchFilters())
    assert len(read) == 2


class _InPlace:
    """A thread that runs its target when started, here."""

    def __init__(self, target, args=(), **kwargs):
        self.target, self.args = target, args

    def start(self):
        self.target(*self.args)


def test_rows_written_and_deleted_since_the_snapshot_are_seen(settings, graph):
    store, vectors, owner, _ = snapshotted(4, 200, 10)
    query = vectors[0]
    assert store.query(query, uid="u1", top_k=1, filters=SearchFilters())[0].memory_id == "0"

    # Another process: memory 0 deleted, memory 7's first vector changed to the query, a new memory 500.
    store.delete([f"u1-0-{i}" for i in range(10)])
    store.upsert(records([query], [7], start=70))  # u1-7-70: memory 7's first vector, rewritten
    store.upsert(records([-query], [500], start=5000))

    found = store.query(query, uid="u1", top_k=3, filters=SearchFilters())
    assert found[0].memory_id == "7" and found[0].score == pytest.approx(1.0, abs=1e-6)
    assert "0" not in [m.memory_id for m in store.query(query, uid="u1", top_k=200, filters=SearchFilters())]
    assert store.query(-query, uid="u1", top_k=1, filters=SearchFilters())[0].memory_id == "500"
    assert answers(store, [query, -query]) == exact(settings, store, [query, -query])
    # a process that starts now: the snapshot, then the same changes read from the database
    local_module._cache = None
    assert store.query(query, uid="u1", top_k=1, filters=SearchFilters())[0].memory_id == "7"
    assert local_module._cache[("ns1", "u1")].snapshot is not None


def test_a_snapshot_that_does_not_match_the_database_is_not_trusted(settings, graph):
    from memories.models import LocalVector, LocalVectorVersion

    store, vectors, owner, _ = snapshotted(5, 100, 8)
    # Same ids, other vectors (a database made again under the same name): not what the snapshot holds.
    for row, vector in zip(LocalVector.objects.filter(uid="u1").order_by("id"), vectors[::-1]):
        LocalVector.objects.filter(id=row.id).update(values=vector.astype("<f4").tobytes())
    LocalVectorVersion.objects.filter(uid="u1").update(version="remade")
    local_module._cache = None

    found = store.query(vectors[0], uid="u1", top_k=1, filters=SearchFilters())

    assert found[0].vector_id == records(vectors, owner)[-1].id  # the row that now holds vectors[0]
    assert local_module._cache[("ns1", "u1")].snapshot is None
    assert snapshots.load("ns1", "u1") is None  # removed: made again later


def test_a_snapshot_never_answers_for_another_user_and_goes_with_the_user(settings, graph):
    rng = np.random.default_rng(6)
    vectors, owner = clustered(rng, 100, 8)
    store = LocalVectorStore()
    store.upsert(records(vectors, owner, uid="u1") + records(vectors[:8], owner[:8] + 1000, uid="u2"))
    assert store.snapshot("u1") and store.snapshot("u2")
    assert {m.memory_id for m in store.query(vectors[40], uid="u2", top_k=10, filters=SearchFilters())} == {"1000"}

    store.delete_uid("u1", known_ids=[])

    assert not snapshots.user_dir("ns1", "u1").exists()
    assert snapshots.user_dir("ns1", "u2").exists()
    local_module._cache = None
    assert store.query(vectors[0], uid="u1", top_k=10, filters=SearchFilters()) == []


def test_the_cache_counts_a_snapshot_users_graph_and_keeps_the_byte_limit(settings, graph):
    rng = np.random.default_rng(7)
    store = LocalVectorStore()
    for uid in ("a", "b", "c"):
        vectors, owner = clustered(rng, 120, 10)
        store.upsert(records(vectors, owner, uid=uid))
        assert store.snapshot(uid)
    query = np.eye(384, dtype=np.float32)[0]
    store.query(query, uid="a", top_k=1, filters=SearchFilters())
    one = local_module._cache.currsize
    assert one > snapshots.load("ns1", "a").graph_bytes  # the graph is counted
    settings.LOCAL_STORE_CACHE_MB = 2 * one / 2**20 + 0.01  # room for two users
    for uid in ("a", "b", "a", "c"):
        assert store.query(query, uid=uid, top_k=1, filters=SearchFilters())

    assert {uid for _, uid in local_module._cache} == {"a", "c"}
    assert local_module._cache.currsize <= settings.LOCAL_STORE_CACHE_MB * 2**20


def test_a_copy_made_before_a_new_snapshot_is_made_again_from_it(settings, graph):
    """A new snapshot forgets the deletions it holds: a process's copy made before it, which might
    still need them, is made again from the new snapshot at the next change."""
    from memories.models import LocalVectorDeletion

    store, vectors, owner, _ = snapshotted(8, 150, 8)
    assert store.query(vectors[0], uid="u1", top_k=1, filters=SearchFilters())[0].memory_id == "0"
    before = local_module._cache[("ns1", "u1")]

    store.delete([f"u1-0-{i}" for i in range(8)])  # memory 0 gone: a deletion noted
    assert LocalVectorDeletion.objects.filter(uid="u1").count() == 8
    assert store.snapshot("u1")  # made again elsewhere: the deletions forgotten
    assert not LocalVectorDeletion.objects.filter(uid="u1").exists()
    local_module._cache[("ns1", "u1")] = before  # this process still holds the copy from before
    store.upsert(records([-vectors[0]], [900], start=9000))

    found = store.query(vectors[0], uid="u1", top_k=200, filters=SearchFilters())

    assert "0" not in [m.memory_id for m in found]
    assert store.query(-vectors[0], uid="u1", top_k=1, filters=SearchFilters())[0].memory_id == "900"
    assert local_module._cache[("ns1", "u1")].snapshot.path != before.snapshot.path


def test_deleted_rows_are_logged_only_for_users_with_a_snapshot(settings, graph):
    """The log is what snapshots catch up from: a user without one (most users) leaves no rows in it
    as their memories are reprocessed and deleted."""
    from memories.models import LocalVectorDeletion

    store, vectors, owner, _ = snapshotted(10, 40, 4)
    store.upsert(records(vectors, owner, uid="u2"))

    store.delete([f"u1-0-{i}" for i in range(4)] + [f"u2-0-{i}" for i in range(4)])
    store.upsert(records(vectors[4:8], owner[4:8], start=4) + records(vectors[4:8], owner[4:8], uid="u2", start=4))

    assert sorted(LocalVectorDeletion.objects.values_list("uid", flat=True)) == ["u1"] * 8


@pytest.mark.django_db(transaction=True)
def test_a_search_that_finds_a_heavy_user_without_a_snapshot_has_one_made(settings, monkeypatch):
    import time

    settings.LOCAL_STORE_SNAPSHOT_ROWS = 100
    monkeypatch.setattr(local_module, "_cache", None)
    rng = np.random.default_rng(9)
    vectors, owner = clustered(rng, 30, 5)  # 150 rows
    store = LocalVectorStore()
    store.upsert(records(vectors, owner))

    first = store.query(vectors[0], uid="u1", top_k=3, filters=SearchFilters())  # answered from the database
    deadline = time.monotonic() + 60
    while local_module._snapshotting and time.monotonic() < deadline:  # made in a thread meanwhile
        time.sleep(0.05)
    store.upsert(records(vectors[:1], owner[:1], uid="u2"))  # (another user: u1's version unchanged)
    local_module._cache = None

    assert snapshots.load("ns1", "u1") is not None
    again = store.query(vectors[0], uid="u1", top_k=3, filters=SearchFilters())
    assert [(m.memory_id, m.vector_id) for m in again] == [(m.memory_id, m.vector_id) for m in first]
    assert [m.score for m in again] == pytest.approx([m.score for m in first], abs=1e-6)
    assert local_module._cache[("ns1", "u1")].snapshot is not None


@pytest.mark.parametrize("first, then", [("usearch.index", "onnxruntime"), ("onnxruntime", "usearch.index")])
def test_the_graph_library_and_the_models_runtime_load_in_either_order(first, then):
    """A worker may make a snapshot before it embeds anything: usearch 2.26 then crashed the process
    when onnxruntime was imported after it."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", f"import {first}; import {then}"], capture_output=True, timeout=120)

    assert done.returncode == 0, done.stderr.decode()[-2000:]
