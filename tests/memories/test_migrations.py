"""The vector models moved from `search` to `memories`: a database made before the move migrates
in place, keeping every row, with no table created, copied or dropped."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

BEFORE_THE_MOVE = [("memories", "0004_memory_version_index"), ("search", "0007_clusters_duplicates")]
THE_MOVE = [("memories", "0005_vector_models"), ("search", "0008_vector_models_moved")]
MOVED = ("memoryvector", "localvector", "localvectorversion", "vectorindex")


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)  # a fresh loader sees what is applied now


# Real commits: the migration executor runs DDL and its own transactions (SQLite cannot alter a
# table inside one), and the test migrates the schema back and forth.
@pytest.mark.django_db(transaction=True)
def test_a_database_made_before_the_move_migrates_in_place_and_keeps_its_vectors():
    moved_type_ids = dict(ContentType.objects.filter(app_label="memories", model__in=MOVED).values_list("model", "id"))
    assert len(moved_type_ids) == len(MOVED)
    executor = _migrate(BEFORE_THE_MOVE)
    old = executor.loader.project_state(BEFORE_THE_MOVE).apps
    assert old.get_model("search", "MemoryVector")._meta.db_table == "search_memoryvector"
    # What a database at the old head holds: a memory, its vector, the local store's record and version.
    memory = old.get_model("memories", "Memory").objects.create(uid="alice", transcript="Alice: hi", status="indexed")
    old.get_model("search", "MemoryVector").objects.create(
        memory_id=memory.id,
        position=0,
        kind="memory",
        vector_id=f"alice-{memory.id}",
        model="m",
        dim=2,
        vector=b"\x00\x00\x80?\x00\x00\x00\x00",
    )
    old.get_model("search", "LocalVector").objects.create(
        namespace="ns1",
        record_id=f"alice-{memory.id}",
        uid="alice",
        memory_id=str(memory.id),
        created_at=1,
        values=b"\x00\x00\x80?\x00\x00\x00\x00",
    )
    old.get_model("search", "LocalVectorVersion").objects.create(namespace="ns1", uid="alice", version="v1")
    old.get_model("search", "VectorIndex").objects.create(store="local/ns1", model="m", dim=2)
    tables_before = set(connection.introspection.table_names())

    with CaptureQueriesContext(connection) as queries:
        _migrate(THE_MOVE)

    schema_changes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))]
    assert schema_changes == []
    assert set(connection.introspection.table_names()) == tables_before
    _migrate(executor.loader.graph.leaf_nodes())
    from memories.models import LocalVector, LocalVectorVersion, MemoryVector, VectorIndex

    vector = MemoryVector.objects.get(vector_id=f"alice-{memory.id}")
    assert vector.memory.uid == "alice" and vector.as_array().tolist() == [1.0, 0.0]
    assert LocalVector.objects.get(record_id=f"alice-{memory.id}").uid == "alice"
    assert LocalVectorVersion.objects.get(uid="alice").version == "v1"
    assert VectorIndex.objects.get(store="local/ns1").model == "m"
    # The content types (and the permissions attached to them) moved with the models.
    assert dict(ContentType.objects.filter(app_label="memories", model__in=MOVED).values_list("model", "id")) == (
        moved_type_ids
    )
    assert not ContentType.objects.filter(app_label="search", model__in=MOVED).exists()


@pytest.mark.django_db(transaction=True)
def test_keys_made_before_expiry_and_revocation_keep_working_and_an_inactive_one_is_revoked():
    from memories.models import ApiKey
    from memories.selectors import api_key_authenticate

    executor = _migrate(THE_MOVE)
    old = executor.loader.project_state(THE_MOVE).apps.get_model("memories", "ApiKey")
    old.objects.create(name="app", prefix="omk_old1", key_hash=ApiKey.hash("omk_old1-secret"), uid="alice")
    old.objects.create(
        name="retired", prefix="omk_old2", key_hash=ApiKey.hash("omk_old2-secret"), uid="", is_active=False
    )

    _migrate(executor.loader.graph.leaf_nodes())

    kept = api_key_authenticate(raw_key="omk_old1-secret")
    assert kept is not None and (kept.uid, kept.expires_at, kept.state) == ("alice", None, "active")
    assert api_key_authenticate(raw_key="omk_old2-secret") is None
    assert ApiKey.objects.get(name="retired").state == "revoked"


@pytest.mark.django_db(transaction=True)
def test_work_in_flight_before_leases_is_taken_up_by_the_first_sweep_and_indexed_memories_stay_searchable():
    from memories.models import Memory
    from memories.services import pipeline_sweep

    before = [("memories", "0006_api_key_lifecycle_audit_trail")]
    executor = _migrate(before)
    old = executor.loader.project_state(before).apps
    made = {
        status: old.get_model("memories", "Memory").objects.create(uid="alice", transcript="Alice: hi", status=status)
        for status in ("queued", "processing", "indexed", "failed", "deleted")
    }
    cleaned = old.get_model("memories", "Memory").objects.create(uid="alice", transcript="Alice: bye", status="deleted")
    old.get_model("memories", "MemoryVector").objects.create(
        memory_id=made["deleted"].id, position=0, vector_id=f"alice-{made['deleted'].id}", model="m", dim=1, vector=b""
    )

    _migrate(executor.loader.graph.leaf_nodes())

    memories = Memory.objects.in_bulk()
    assert [m.searchable for m in memories.values()].count(True) == 1 and memories[made["indexed"].id].searchable
    pending = {m.id for m in memories.values() if m.lease_until is not None}
    assert pending == {made["queued"].id, made["processing"].id, made["deleted"].id}  # not `cleaned`: no vectors left
    swept = pipeline_sweep()
    assert sorted(swept.queued) == [made["queued"].id, made["processing"].id] and swept.deleted == [made["deleted"].id]
    assert cleaned.id not in swept.deleted
