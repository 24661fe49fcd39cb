"""The whole service on its production parts (OpenAI extractor and embedder, Pinecone store), each
met by a local fake through the real SDK: ingest, search, delete, faults, batches, reindex."""

import json

import pytest
from django.core.management import call_command

from memories.models import Memory, MemoryVector
from memories.processing import RetryLater, memory_process_many
from memories.services import memory_create_many
from tests.support.transcripts import BUDGET, DENTIST, GARDEN, RECITAL, STANDUP, long_transcript

pytestmark = pytest.mark.django_db
TRANSCRIPTS = [DENTIST, BUDGET, STANDUP, RECITAL, GARDEN]


def stored_ids(pinecone) -> set[str]:
    return set(pinecone.vectors("ns1"))


def vector_ids(memory_id: int) -> set[str]:
    return set(MemoryVector.objects.filter(memory_id=memory_id).values_list("vector_id", flat=True))


def requests_to(server, path: str) -> list[dict]:
    return [r for r in server.requests if r["path"] == path]


def server_behind(path: str, fault: str, production_parts, settings):
    """The fake that serves `path`. For a timeout fault, the clients wait 0.25 s for the answer
    that does not come, instead of the fixtures' 1 s: how long they wait is configuration, what
    is tested is what follows."""
    fake_openai, fake_pinecone = production_parts
    if fault == "timeout":
        settings.OPENAI_TIMEOUT = settings.PINECONE_TIMEOUT = 0.25
    return fake_pinecone if path.startswith("/vectors") else fake_openai


def test_a_memory_goes_through_openai_and_pinecone_and_is_found_and_deleted(production_parts, api):
    fake_openai, fake_pinecone = production_parts

    created = api.post("/memories", {"uid": "alice", "transcript": long_transcript(30)}).json()
    created = api.get(f"/memories/{created['id']}").json()

    assert created["status"] == "indexed"
    assert created["embedding_model"] == "text-embedding-3-large" and created["embedding_dim"] == 64
    assert Memory.objects.get(id=created["id"]).extractor == "openai"
    ids = vector_ids(created["id"])
    assert len(ids) > 1 and ids <= stored_ids(fake_pinecone)
    _, metadata = fake_pinecone.vectors("ns1")[f"alice-{created['id']}"]
    assert metadata["uid"] == "alice" and metadata["memory_id"] == str(created["id"])

    hits = api.post("/search", {"uid": "alice", "query": "museum tickets in Lisbon"}).json()["results"]
    assert [h["memory"]["id"] for h in hits] == [created["id"]]

    assert api.delete(f"/memories/{created['id']}").status_code == 204
    assert not stored_ids(fake_pinecone) & ids


def test_a_batch_uses_one_embedding_request_and_batched_upserts(production_parts, api):
    fake_openai, fake_pinecone = production_parts

    response = api.post(
        "/memories/batch", {"memories": [{"uid": "alice", "transcript": long_transcript(12 + i)} for i in range(20)]}
    )

    ids = [m["id"] for m in response.json()["items"]]
    assert list(Memory.objects.filter(id__in=ids).values_list("status", flat=True)) == ["indexed"] * 20
    assert len(requests_to(fake_openai, "/v1/chat/completions")) == 20
    assert len(requests_to(fake_openai, "/v1/embeddings")) == 1
    upserts = requests_to(fake_pinecone, "/vectors/upsert")
    assert all(len(r["json"]["vectors"]) <= 100 for r in upserts)
    assert sum(len(r["json"]["vectors"]) for r in upserts) == MemoryVector.objects.count()
    assert len(upserts) == -(-MemoryVector.objects.count() // 100)


def test_import_memories_batches_and_is_idempotent(production_parts, tmp_path):
    fake_openai, fake_pinecone = production_parts
    lines = [
        {
            "uid": "locomo-1",
            "memory_id": f"s{i}",
            "created_at": f"2023-05-0{i + 1}T13:56:00",
            "source": "locomo",
            "transcript": t,
        }
        for i, t in enumerate(TRANSCRIPTS)
    ]
    lines.append({"uid": "locomo-1", "memory_id": "bad", "transcript": "   "})
    path = tmp_path / "memories.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")

    call_command("import_memories", str(path), "--batch-size", "3")
    call_command("import_memories", str(path))

    memories = Memory.objects.filter(uid="locomo-1").order_by("external_id")
    assert [m.external_id for m in memories] == ["s0", "s1", "s2", "s3", "s4"]
    assert {m.status for m in memories} == {"indexed"} and {m.source for m in memories} == {"external_integration"}
    assert memories[0].created_at.isoformat() == "2023-05-01T13:56:00+00:00"
    assert len(requests_to(fake_openai, "/v1/embeddings")) == 2  # one per batch of 3, none the second time


@pytest.mark.parametrize("fault", ["429", "500", "503", "timeout", "drop", "malformed"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/vectors/upsert"])
def test_a_passing_fault_ends_in_a_retry_that_succeeds(production_parts, settings, api, fault, path):
    fake_openai, fake_pinecone = production_parts
    server = server_behind(path, fault, production_parts, settings)
    server.fail(path, fault, fault)  # more than the SDK retries once: the task retries too

    created = api.post("/memories", {"uid": "alice", "transcript": STANDUP}).json()

    memory = Memory.objects.get(id=created["id"])
    assert memory.status == "indexed", memory.failure_reason
    assert vector_ids(memory.id) <= stored_ids(fake_pinecone)


@pytest.mark.parametrize("fault", ["429", "500", "timeout", "drop", "malformed"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/vectors/upsert"])
def test_a_lasting_fault_ends_failed_with_the_reason_and_no_vectors(
    production_parts, settings, api, pipeline_retries, fault, path
):
    fake_openai, fake_pinecone = production_parts
    pipeline_retries(1)
    server = server_behind(path, fault, production_parts, settings)
    server.fail_always(path, fault)

    created = api.post("/memories", {"uid": "alice", "transcript": STANDUP}).json()

    memory = Memory.objects.get(id=created["id"])
    assert memory.status == "failed" and memory.attempts == 2
    assert ("openai" if "v1" in path else "pinecone") in memory.failure_reason
    assert not stored_ids(fake_pinecone)
    server.clear_faults()
    assert api.post(f"/memories/{memory.id}/reprocess").status_code == 202
    assert Memory.objects.get(id=memory.id).status == "indexed"


def test_a_batch_failing_part_way_marks_indexed_only_memories_whose_vectors_were_acknowledged(
    production_parts, settings
):
    fake_openai, fake_pinecone = production_parts
    settings.PINECONE_UPSERT_CONCURRENCY = 1  # batches in order, so that the faults hit the first
    memories = memory_create_many(
        items=[{"uid": "alice", "transcript": long_transcript(40)} for _ in range(15)], enqueue=False
    )
    fake_pinecone.fail("/vectors/upsert", "500", "500", "500", "500")  # the first batch of 100, every SDK try

    with pytest.raises(RetryLater) as raised:
        memory_process_many(memory_ids=[m.id for m in memories], final_attempt=False)

    stored = stored_ids(fake_pinecone)
    statuses = dict(Memory.objects.filter(id__in=[m.id for m in memories]).values_list("id", "status"))
    assert set(statuses.values()) == {"indexed", "queued"}
    for memory_id, status in statuses.items():
        if status == "indexed":
            assert vector_ids(memory_id) and vector_ids(memory_id) <= stored
    assert set(raised.value.memory_ids) == {i for i, s in statuses.items() if s == "queued"}

    memory_process_many(memory_ids=raised.value.memory_ids)
    assert set(Memory.objects.values_list("status", flat=True)) == {"indexed"}
    assert all(vector_ids(m.id) <= stored_ids(fake_pinecone) for m in memories)


def test_search_when_the_store_is_down_is_a_503_in_the_error_shape(production_parts, api):
    _, fake_pinecone = production_parts
    api.post("/memories", {"uid": "alice", "transcript": BUDGET})
    fake_pinecone.fail_always("/query", "503")

    response = api.post("/search", {"uid": "alice", "query": "budget"})

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "backend_unavailable"


def test_erasing_a_user_removes_all_their_vectors(production_parts, api):
    _, fake_pinecone = production_parts
    for uid, transcript in [("alice", long_transcript(30)), ("alice", BUDGET), ("alice-2", DENTIST)]:
        api.post("/memories", {"uid": uid, "transcript": transcript})

    call_command("erase_user", "alice", "--yes")

    assert {meta["uid"] for _, meta in fake_pinecone.vectors("ns1").values()} == {"alice-2"}
    assert set(Memory.objects.filter(uid="alice").values_list("status", flat=True)) == {"deleted"}
    assert Memory.objects.get(uid="alice-2").status == "indexed"
