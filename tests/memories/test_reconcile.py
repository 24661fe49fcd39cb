"""Reconciliation: what the database expects against what the vector store holds, found and put
right from the stored vectors (memories/reconcile.py, `manage.py reconcile`, the periodic task)."""

import uuid

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from memories.models import AuditEvent, LocalVector, Memory, MemoryVector, ReconcileRun
from memories.parts.vectorstores import VectorRecord, get_vector_store
from memories.reconcile import reconcile
from memories.services import memory_create, memory_delete
from memories.tasks import reconcile_vectors
from memories.vectors import vector_metadata
from tests.support.actors import COMMAND
from tests.support.parts import CountingEmbedder
from tests.support.reconcile import assert_reconciled
from tests.support.transactions import committed
from tests.support.transcripts import BUDGET, DENTIST, GARDEN, RECITAL, STANDUP, long_transcript

pytestmark = pytest.mark.django_db


def ids_of(memory: Memory) -> list[str]:
    return list(MemoryVector.objects.filter(memory=memory).values_list("vector_id", flat=True))


def found(report) -> set[tuple[str, str]]:
    return {(finding.kind, finding.vector_id) for finding in report.findings}


def orphan_record(vector_id: str, *, uid: str, memory_id: str, category: str = "other") -> VectorRecord:
    values = np.random.default_rng(7).standard_normal(384).astype(np.float32)
    metadata = {"uid": uid, "memory_id": memory_id, "created_at": 1_700_000_000, "category": category}
    return VectorRecord(vector_id, values / np.linalg.norm(values), {**metadata, "source": "omi", "kind": "memory"})


@pytest.fixture
def counting(settings):
    settings.EMBEDDER = "tests.support.parts.CountingEmbedder"
    CountingEmbedder.embedded = 0
    return CountingEmbedder


def test_a_store_that_holds_what_the_database_expects_has_no_findings(remember):
    alice = remember("alice", long_transcript(20))
    remember("bob", DENTIST)
    gone = remember("alice", BUDGET)
    with committed():
        memory_delete(memory=gone, actor=COMMAND)

    report = reconcile()

    assert report.found == 0, report.findings
    assert report.memories_checked == 2
    assert report.vectors_checked == MemoryVector.objects.filter(memory__status="indexed").count() > len(ids_of(alice))
    assert_reconciled()


def test_a_vector_missing_from_the_store_is_found_and_upserted_again_without_embedding(counting, remember):
    memory = remember("alice", long_transcript(20))
    window = MemoryVector.objects.get(memory=memory, kind="window", position=1)
    LocalVector.objects.filter(record_id=window.vector_id).delete()
    embedded = counting.embedded

    report = reconcile()
    assert found(report) == {("missing", window.vector_id)}
    assert report.findings[0].memory_id == memory.id and report.findings[0].uid == "alice"

    repaired = reconcile(repair=True)
    assert repaired.repaired == 1 and counting.embedded == embedded  # from the stored vector, nothing embedded
    restored = LocalVector.objects.get(record_id=window.vector_id)
    assert np.array_equal(np.frombuffer(bytes(restored.values), dtype="<f4"), window.as_array())
    assert restored.metadata == {
        "uid": "alice",
        "memory_id": str(memory.id),
        "created_at": int(memory.created_at.timestamp()),
        "category": memory.category,
        "source": memory.source,
        "kind": "window",
    }
    assert_reconciled()


def test_vectors_left_behind_by_a_deleted_memory_are_orphans_that_repair_removes(remember):
    memory = remember("alice", DENTIST)
    Memory.objects.filter(id=memory.id).update(status=Memory.Status.DELETED)  # its delete task never ran
    vectors = ids_of(memory)

    report = reconcile()
    assert found(report) == {("orphan", vector_id) for vector_id in vectors}
    assert all(finding.detail == f"memory {memory.id} is deleted" for finding in report.findings)

    assert reconcile(repair=True).removed == len(vectors)
    assert not LocalVector.objects.filter(record_id__in=vectors).exists()
    assert_reconciled()


def test_a_vector_of_no_memory_and_an_old_vector_of_an_indexed_one_are_orphans(remember):
    memory = remember("alice", DENTIST)
    store = get_vector_store()
    store.upsert(
        [
            orphan_record("alice-999999", uid="alice", memory_id="999999"),
            orphan_record(f"alice-{memory.id}-c42", uid="alice", memory_id=str(memory.id)),
        ]
    )

    report = reconcile()

    details = {finding.vector_id: finding.detail for finding in report.findings}
    assert details == {
        "alice-999999": "no memory 999999",
        f"alice-{memory.id}-c42": f"not one of the vectors of memory {memory.id} (indexed)",
    }
    reconcile(repair=True)
    assert_reconciled()
    assert len(ids_of(memory)) == LocalVector.objects.count()  # the memory's own vectors stay


def test_metadata_that_differs_is_found_and_put_right(remember):
    memory = remember("alice", DENTIST, source="phone")
    LocalVector.objects.filter(record_id=memory.vector_id).update(category="finance", created_at=0)

    report = reconcile()
    (finding,) = report.findings
    assert (finding.kind, finding.vector_id) == ("metadata", memory.vector_id)
    assert "category: store 'finance', database 'health'" in finding.detail
    assert f"created_at: store 0, database {int(memory.created_at.timestamp())}" in finding.detail

    assert reconcile(repair=True).repaired == 1
    assert LocalVector.objects.get(record_id=memory.vector_id).category == "health"
    assert_reconciled()


def test_memories_in_flight_are_left_alone(remember):
    store = get_vector_store()
    queued = Memory.objects.create(uid="alice", transcript=DENTIST)  # not committed: nothing processes it
    store.upsert([orphan_record(queued.vector_id, uid="alice", memory_id=str(queued.id))])
    reprocessing = remember("alice", BUDGET)
    Memory.objects.filter(id=reprocessing.id).update(claim_token=uuid.uuid4())
    LocalVector.objects.filter(record_id=reprocessing.vector_id).delete()

    assert reconcile().found == 0


def test_an_indexed_memory_whose_vectors_the_database_lost_is_reported_and_its_store_vectors_kept(remember):
    memory = remember("alice", DENTIST)
    MemoryVector.objects.filter(memory=memory).delete()

    report = reconcile(repair=True)

    (finding,) = report.findings
    assert finding.kind == "missing" and "reprocess it" in finding.detail
    assert LocalVector.objects.filter(memory_id=str(memory.id)).exists()  # still searchable meanwhile


def test_one_users_reconciliation_reports_that_user_only(remember):
    alice, bob = remember("alice", DENTIST), remember("bob", BUDGET)
    LocalVector.objects.filter(record_id__in=[alice.vector_id, bob.vector_id]).delete()

    assert found(reconcile(uid="alice")) == {("missing", alice.vector_id)}
    reconcile(uid="alice", repair=True)
    assert found(reconcile()) == {("missing", bob.vector_id)}


def test_the_work_goes_in_batches_never_every_vector_at_once(remember, monkeypatch):
    memories = [remember("alice", transcript) for transcript in (DENTIST, BUDGET, STANDUP, RECITAL, GARDEN)]
    LocalVector.objects.filter(record_id=memories[3].vector_id).delete()
    store = type(get_vector_store())
    asked, fetch = [], store.fetch_metadata
    monkeypatch.setattr(store, "fetch_metadata", lambda self, ids: asked.append(len(ids)) or fetch(self, ids))
    most = max(len(ids_of(memory)) for memory in memories)

    report = reconcile(batch=2)

    assert found(report) == {("missing", memories[3].vector_id)} and report.memories_checked == 5
    assert len(asked) >= 3 and max(asked) <= 2 * most


def test_vectors_of_another_model_are_not_upserted_again(remember):
    memory = remember("alice", DENTIST)
    MemoryVector.objects.filter(memory=memory).update(model="another-model")
    LocalVector.objects.filter(record_id=memory.vector_id).delete()

    report = reconcile(repair=True)

    assert report.repaired == 0 and "reindex" in report.problems[0]
    assert not LocalVector.objects.filter(record_id=memory.vector_id).exists()


# The Pinecone store (a local fake, through the real SDK)


def test_on_pinecone_each_kind_is_found_by_fetch_and_list_and_repaired_without_embedding(production_parts, settings):
    fake_openai, fake_pinecone = production_parts
    settings.SNIPPET_VECTORS = "texts"  # snippets too (a remote embedder stores windows only): pages of ids
    with committed():
        made = [memory_create(uid="alice", transcript=long_transcript(10 + i)) for i in range(6)]
        other = memory_create(uid="alice-2", transcript=DENTIST)  # a user whose ids start with "alice-"
    kept, lost, changed, deleted = made[0], made[1], made[2], made[3]
    store = get_vector_store()
    store.delete([lost.vector_id])
    changed.refresh_from_db()
    values, metadata = (
        MemoryVector.objects.get(vector_id=changed.vector_id).as_array(),
        vector_metadata(changed, "memory"),
    )
    store.upsert(
        [
            VectorRecord(changed.vector_id, values, {**metadata, "source": "bee"}),
            VectorRecord("alice-424242", values, {**metadata, "memory_id": "424242"}),
        ]
    )
    Memory.objects.filter(id=deleted.id).update(status=Memory.Status.DELETED)
    embeddings = len([r for r in fake_openai.requests if r["path"] == "/v1/embeddings"])
    assert sum(len(ids_of(m)) for m in made) > 100  # more than one page of Pinecone's list

    report = reconcile(uid="alice", batch=2)

    assert {kind for kind, _ in found(report)} == {"missing", "metadata", "orphan"}
    assert ("missing", lost.vector_id) in found(report) and ("metadata", changed.vector_id) in found(report)
    orphans = {vector_id for kind, vector_id in found(report) if kind == "orphan"}  # the first 20 are kept
    assert report.counts == {"missing": 1, "metadata": 1, "orphan": 1 + len(ids_of(deleted))}
    assert orphans <= {"alice-424242", *ids_of(deleted)} and len(orphans) == 20
    assert not any(vector_id.startswith(f"alice-2-{other.id}") for _, vector_id in found(report))

    reconcile(uid="alice", repair=True)
    assert len([r for r in fake_openai.requests if r["path"] == "/v1/embeddings"]) == embeddings
    assert fake_pinecone.vectors("ns1")[changed.vector_id][1]["source"] == changed.source
    assert kept.vector_id in fake_pinecone.vectors("ns1")
    assert_reconciled()


# The command and the periodic task


def test_the_command_exits_1_with_what_it_found_and_repairs_with_repair(remember, capsys):
    memory = remember("alice", DENTIST)
    LocalVector.objects.filter(record_id=memory.vector_id).delete()

    with pytest.raises(CommandError, match="1 finding"):
        call_command("reconcile")
    out = capsys.readouterr().out
    assert f"missing  {memory.vector_id}  (alice) not in the store, a vector of memory {memory.id} (indexed)" in out
    assert "1 missing, 0 orphaned, 0 with other metadata" in out

    call_command("reconcile", "--uid", "alice", "--repair")
    assert "repaired: 1 upserted again, 0 orphans removed" in capsys.readouterr().out
    call_command("reconcile")  # exits 0: nothing found
    runs = list(ReconcileRun.objects.order_by("id"))
    assert [(run.trigger, run.uid, run.repair, run.missing, run.repaired) for run in runs] == [
        ("command", "", False, 1, 0),
        ("command", "alice", True, 1, 1),
        ("command", "", False, 0, 0),
    ]
    audits = AuditEvent.objects.filter(action="vectors.reconcile").order_by("id")
    assert [(a.actor_type, a.origin, a.details["repair"]) for a in audits] == [
        ("command", "command line", False),
        ("command", "command line", True),
        ("command", "command line", False),
    ]


def test_the_periodic_task_runs_one_at_a_time_and_gives_up_a_run_whose_worker_died(remember, settings):
    from omi_memory.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["reconcile-vectors"]
    assert entry["task"] == reconcile_vectors.name and entry["task"] in app.tasks
    remember("alice", DENTIST)
    busy = ReconcileRun.objects.create(trigger="dashboard", status="running")

    assert reconcile_vectors() == "skipped"

    ReconcileRun.objects.filter(id=busy.id).update(updated_at=timezone.now() - ReconcileRun.STALE_AFTER * 2)
    assert reconcile_vectors() == "done"
    busy.refresh_from_db()
    assert busy.status == "failed" and "its worker stopped" in busy.error
    run = ReconcileRun.objects.filter(trigger="schedule").get()
    assert (run.status, run.memories_checked, run.found, run.started_by) == ("done", 1, 0, "")
    assert not AuditEvent.objects.filter(action="vectors.reconcile").exists()  # nobody started it


def test_a_repair_the_store_refuses_is_kept_on_the_run_and_the_command_exits_1(production_parts):
    fake_openai, fake_pinecone = production_parts
    with committed():
        memory = memory_create(uid="alice", transcript=DENTIST)
    get_vector_store().delete([memory.vector_id])
    fake_pinecone.fail_always("/vectors/upsert", "503")

    with pytest.raises(CommandError, match="could not be repaired"):
        call_command("reconcile", "--repair")

    run = ReconcileRun.objects.get()
    assert (run.status, run.missing, run.repaired) == ("done", 1, 0)
    assert run.error.startswith("1 vectors not upserted again") and "pinecone upsert: HTTP 503" in run.error


def test_a_store_that_cannot_be_listed_fails_the_run_with_the_reason(production_parts):
    fake_openai, fake_pinecone = production_parts
    fake_pinecone.fail_always("/vectors/list", "503")

    with pytest.raises(CommandError, match="failed: BackendError: pinecone list: HTTP 503"):
        call_command("reconcile")

    assert ReconcileRun.objects.get().status == "failed"
