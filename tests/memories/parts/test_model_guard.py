"""The store knows which model built it: another model is refused until `reindex` moves it."""

import io

import pytest
from django.core.management import CommandError, call_command

from memories.models import LocalVector, Memory, MemoryVector, VectorIndex
from tests.support.transcripts import BUDGET, DENTIST, STANDUP

pytestmark = pytest.mark.django_db


@pytest.fixture
def indexed_with_minilm(api):
    for transcript in (DENTIST, BUDGET, STANDUP):
        api.post("/memories", {"uid": "alice", "transcript": transcript})
    assert VectorIndex.objects.get(store="local/ns1").model == "all-MiniLM-L6-v2"
    return api


def test_a_search_with_another_model_is_refused_clearly(indexed_with_minilm, settings, fake_openai):
    settings.EMBEDDER = "openai"

    response = indexed_with_minilm.post("/search", {"uid": "alice", "query": "dentist"})

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "model_mismatch"
    assert "all-MiniLM-L6-v2" in error["message"] and "text-embedding-3-large" in error["message"]
    assert "reindex" in error["message"]


def test_an_upsert_with_another_model_fails_the_memory_and_mixes_nothing(indexed_with_minilm, settings, fake_openai):
    settings.EMBEDDER = "openai"

    created = indexed_with_minilm.post("/memories", {"uid": "alice", "transcript": "Alice: new memory, new model."})

    memory = Memory.objects.get(id=created.json()["id"])
    assert memory.status == "failed" and "reindex" in memory.failure_reason
    assert memory.attempts == 1  # permanent: not retried
    assert not LocalVector.objects.filter(memory_id=str(memory.id)).exists()


def test_reindex_moves_every_memory_to_the_new_model(indexed_with_minilm, settings, fake_openai):
    settings.EMBEDDER = "openai"

    call_command("reindex", "--batch-size", "2")

    assert VectorIndex.objects.get(store="local/ns1").model == "text-embedding-3-large"
    assert set(Memory.objects.values_list("embedding_model", "embedding_dim")) == {("text-embedding-3-large", 64)}
    assert set(MemoryVector.objects.values_list("dim", flat=True)) == {64}
    assert {len(bytes(v)) for v in LocalVector.objects.values_list("values", flat=True)} == {64 * 4}
    hits = indexed_with_minilm.post("/search", {"uid": "alice", "query": "dentist crown"}).json()["results"]
    assert hits and hits[0]["memory"]["category"] == "health"
    embedding_requests = [r for r in fake_openai.requests if r["path"] == "/v1/embeddings"]
    assert len(embedding_requests) == 3  # two batches of memories, then the query


def test_reindexing_one_user_cannot_change_the_model(indexed_with_minilm, settings, fake_openai):
    settings.EMBEDDER = "openai"

    with pytest.raises(CommandError, match="reindex every user"):
        call_command("reindex", "--uid", "alice")
    assert VectorIndex.objects.get(store="local/ns1").model == "all-MiniLM-L6-v2"


def test_vectors_of_the_plan_before_late_chunking_answer_searches_until_reindex_moves_them(api, settings):
    settings.SNIPPET_VECTORS = "texts"  # each snippet embedded as a text of its own, as before
    memory_id = api.post("/memories", {"uid": "alice", "transcript": DENTIST + "\n" + BUDGET}).json()["id"]
    VectorIndex.objects.update(chunking="")  # a store made before the index noted its chunking
    before = dict(MemoryVector.objects.filter(kind="snippet").values_list("vector_id", "vector"))
    settings.SNIPPET_VECTORS = "late"

    hits = api.post("/search", {"uid": "alice", "query": "how much is the crown"}).json()["results"]
    assert [h["memory"]["id"] for h in hits] == [memory_id] and hits[0]["snippet"]
    out = io.StringIO()
    call_command("reindex", stdout=out)

    late = "late: windows 200, snippets 32, reads 128, memory vector of fields + transcript"
    assert f"from chunking 'not noted' to '{late}'" in out.getvalue()
    assert VectorIndex.objects.get(store="local/ns1").chunking == late
    after = dict(MemoryVector.objects.filter(kind="snippet").values_list("vector_id", "vector"))
    common = set(after) & set(before)
    assert len(common) >= 4 and all(bytes(after[i]) != bytes(before[i]) for i in common)
    hits = api.post("/search", {"uid": "alice", "query": "how much is the crown"}).json()["results"]
    assert [h["memory"]["id"] for h in hits] == [memory_id] and hits[0]["snippet"]
