from datetime import timedelta
from uuid import uuid4

import numpy as np
import pytest
from django.utils import timezone

from memories.models import LocalVector, Memory, MemoryVector
from memories.parts.embedders import get_embedder
from memories.processing import memory_process
from memories.services import memory_reprocess
from memories.text import SPEAKER
from tests.support.actors import COMMAND
from tests.support.parts import CountingEmbedder, FlakyExtractor
from tests.support.transactions import committed
from tests.support.transcripts import BUDGET, DENTIST, RECITAL, STANDUP, long_transcript

pytestmark = pytest.mark.django_db


def test_a_transcript_becomes_an_indexed_memory_with_structured_data(remember):
    memory = remember("alice", DENTIST, started_at=timezone.now() - timedelta(days=1))

    assert memory.status == Memory.Status.INDEXED
    assert memory.attempts == 1
    assert memory.category == "health"
    assert memory.emoji and memory.title and "crown" in memory.overview.lower()
    assert memory.embedding_model == "all-MiniLM-L6-v2" and memory.embedding_dim == 384
    descriptions = [a.description.lower() for a in memory.action_items.all()]
    assert any("book a replacement" in d for d in descriptions)
    assert any("afternoon off" in d for d in descriptions)
    event = memory.events.get()
    assert event.start.weekday() == 1 and event.start.hour == 15  # next Tuesday at 3pm
    assert event.start > memory.started_at
    assert event.duration_minutes == 60


def test_vectors_follow_omis_ids_and_metadata(remember):
    memory = remember("alice", BUDGET, source="phone")

    record = LocalVector.objects.get(record_id=f"alice-{memory.id}")
    assert record.namespace == "ns1"
    assert record.metadata == {
        "uid": "alice",
        "memory_id": str(memory.id),
        "created_at": int(memory.created_at.timestamp()),
        "category": memory.category,
        "source": "phone",
        "kind": "memory",
    }
    vector = np.frombuffer(bytes(record.values), dtype="<f4")
    assert vector.shape == (384,) and abs(np.linalg.norm(vector) - 1) < 1e-4
    stored = MemoryVector.objects.get(memory=memory, position=0)
    assert np.allclose(stored.as_array(), vector)


def test_a_long_transcript_also_gets_vectors_for_windows_of_whole_turns(remember):
    embedder = get_embedder()
    memory = remember("alice", long_transcript())

    windows = list(MemoryVector.objects.filter(memory=memory, kind="window").order_by("position"))
    snippets = list(MemoryVector.objects.filter(memory=memory, kind="snippet").order_by("position"))
    assert len(windows) >= 5 and len(snippets) > len(windows)
    assert [w.vector_id for w in windows] == [f"alice-{memory.id}-c{i}" for i in range(len(windows))]
    assert [s.vector_id for s in snippets] == [f"alice-{memory.id}-s{i}" for i in range(len(snippets))]
    assert LocalVector.objects.filter(memory_id=str(memory.id)).count() == len(windows) + len(snippets) + 1
    # a snippet that starts inside a turn is shown with the turn's speaker (not pooled: not counted)
    assert all(embedder.count_tokens(SPEAKER.sub("", s.text, count=1)) <= 32 or "\n" not in s.text for s in snippets)
    turns = set(memory.transcript.splitlines())
    for window in windows:
        assert all(line in turns for line in window.text.splitlines())  # whole turns only
        assert embedder.count_tokens(window.text) <= 200
    joined = "\n".join(w.text for w in windows)
    assert joined == memory.transcript  # every turn, in order, once


def test_transient_failures_are_retried_then_the_memory_is_indexed(remember, settings, pipeline_retries):
    settings.EXTRACTOR = "tests.support.parts.FlakyExtractor"
    pipeline_retries(3)
    FlakyExtractor.reset(failures=2)

    memory = remember("alice", STANDUP)

    assert memory.status == Memory.Status.INDEXED
    assert memory.attempts == 3
    assert memory.failure_reason == ""


def test_after_the_last_retry_the_memory_is_failed_with_the_reason_and_a_retry_succeeds(
    api, settings, pipeline_retries
):
    settings.EXTRACTOR = "tests.support.parts.FlakyExtractor"
    pipeline_retries(2)
    FlakyExtractor.reset(failures=100)

    created = api.get(f"/memories/{api.post('/memories', {'uid': 'alice', 'transcript': RECITAL}).json()['id']}").json()

    assert created["status"] == "failed"
    assert created["attempts"] == 3  # the first try and two retries
    assert "extractor unavailable" in created["failure_reason"]
    assert not LocalVector.objects.filter(memory_id=str(created["id"])).exists()
    assert api.post("/search", {"uid": "alice", "query": "piano recital"}).json()["results"] == []

    FlakyExtractor.reset(failures=0)
    retried = api.post(f"/memories/{created['id']}/reprocess")

    assert retried.status_code == 202
    memory = api.get(f"/memories/{created['id']}").json()
    assert memory["status"] == "indexed" and memory["failure_reason"] == ""
    hits = api.post("/search", {"uid": "alice", "query": "piano recital"}).json()["results"]
    assert [h["memory"]["id"] for h in hits] == [created["id"]]


def test_a_permanent_failure_is_not_retried(remember, settings):
    settings.EXTRACTOR = "tests.support.parts.FlakyExtractor"
    FlakyExtractor.reset(failures=100, permanent=True)

    memory = remember("alice", STANDUP)

    assert memory.status == Memory.Status.FAILED
    assert memory.attempts == 1
    assert "extractor unavailable" in memory.failure_reason


def test_reprocessing_unchanged_text_does_not_re_embed(remember, settings):
    settings.EMBEDDER = "tests.support.parts.CountingEmbedder"
    memory = remember("alice", long_transcript(30))
    vectors_before = {v.record_id: bytes(v.values) for v in LocalVector.objects.filter(memory_id=str(memory.id))}
    assert CountingEmbedder.embedded > 0

    get_embedder().clear_cache()
    embedded_before = CountingEmbedder.embedded
    with committed():
        memory_reprocess(memory=memory, actor=COMMAND)
    memory.refresh_from_db()

    assert memory.status == Memory.Status.INDEXED
    assert CountingEmbedder.embedded == embedded_before
    vectors_after = {v.record_id: bytes(v.values) for v in LocalVector.objects.filter(memory_id=str(memory.id))}
    assert vectors_after == vectors_before


def test_reprocessing_changed_text_re_embeds_and_drops_windows_it_no_longer_has(remember, settings):
    settings.EMBEDDER = "tests.support.parts.CountingEmbedder"
    memory = remember("alice", long_transcript(30))
    assert LocalVector.objects.filter(memory_id=str(memory.id)).count() > 1
    embedded_before = CountingEmbedder.embedded

    Memory.objects.filter(id=memory.id).update(transcript=BUDGET)  # e.g. a corrected transcript
    with committed():
        memory_reprocess(memory=memory, actor=COMMAND)

    assert CountingEmbedder.embedded > embedded_before
    ids = set(LocalVector.objects.filter(memory_id=str(memory.id)).values_list("record_id", flat=True))
    assert ids == set(MemoryVector.objects.filter(memory=memory).values_list("vector_id", flat=True))
    assert f"alice-{memory.id}" in ids and not [i for i in ids if "-c" in i]  # the short text has no windows


def test_reprocessing_keeps_action_items_the_user_completed(remember):
    memory = remember("alice", DENTIST)
    item = memory.action_items.get(description__icontains="book a replacement")
    item.completed = True
    item.save()

    memory_reprocess(memory=memory, actor=COMMAND)

    assert memory.action_items.get(description__icontains="book a replacement").completed
    assert not memory.action_items.get(description__icontains="afternoon off").completed


def test_deleting_a_memory_removes_its_vectors(api):
    created = api.post("/memories", {"uid": "alice", "transcript": long_transcript(30)}).json()
    assert LocalVector.objects.filter(memory_id=str(created["id"])).count() > 1

    response = api.delete(f"/memories/{created['id']}")

    assert response.status_code == 204
    assert not LocalVector.objects.filter(memory_id=str(created["id"])).exists()
    assert not MemoryVector.objects.filter(memory_id=created["id"]).exists()
    assert Memory.objects.get(id=created["id"]).status == "deleted"  # the row is kept, soft-deleted
    assert api.get(f"/memories/{created['id']}").status_code == 404
    assert api.post("/search", {"uid": "alice", "query": "train to Porto"}).json()["results"] == []


def test_a_redelivered_task_does_no_harm(remember, settings):
    settings.EMBEDDER = "tests.support.parts.CountingEmbedder"
    memory = remember("alice", BUDGET)
    embedded = CountingEmbedder.embedded

    assert memory_process(memory_id=memory.id) == "skipped"  # already indexed: the claim fails
    memory.refresh_from_db()
    assert memory.status == Memory.Status.INDEXED and memory.attempts == 1
    assert CountingEmbedder.embedded == embedded


def test_a_memory_processing_under_a_live_lease_is_left_to_its_worker_and_claimed_once_the_lease_passed(remember):
    memory = remember("alice", BUDGET)
    held = Memory.objects.filter(id=memory.id)
    held.update(status="processing", lease_until=timezone.now() + timedelta(minutes=1), claim_token=uuid4())

    assert memory_process(memory_id=memory.id) == "skipped"  # its worker renews the lease: it is alive

    held.update(lease_until=timezone.now() - timedelta(seconds=1))  # no heartbeat: the worker is gone
    assert memory_process(memory_id=memory.id) == "indexed"


def test_a_memory_deleted_while_processing_leaves_no_vectors(remember, settings, monkeypatch):
    import memories.processing as processing

    memory = remember("alice", BUDGET)
    Memory.objects.filter(id=memory.id).update(status="queued")
    real_upsert = processing.memory_vectors_upsert_many

    def upsert_then_get_deleted(**kwargs):
        failed = real_upsert(**kwargs)
        Memory.objects.filter(id=memory.id).update(status="deleted")
        return failed

    monkeypatch.setattr(processing, "memory_vectors_upsert_many", upsert_then_get_deleted)

    assert memory_process(memory_id=memory.id) == "superseded"
    assert not LocalVector.objects.filter(memory_id=str(memory.id)).exists()
    assert Memory.objects.get(id=memory.id).status == "deleted"
