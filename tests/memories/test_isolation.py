"""A key scoped to one uid can neither read nor write another uid's memories, on any endpoint."""

import pytest

from memories.models import LocalVector, Memory
from tests.support.transcripts import BUDGET, DENTIST

pytestmark = pytest.mark.django_db


@pytest.fixture
def bobs_memory(remember):
    return remember("bob", DENTIST)


@pytest.fixture
def alice(api_for, remember):
    remember("alice", BUDGET)
    return api_for("alice")


def assert_untouched(memory):
    fresh = Memory.objects.get(id=memory.id)
    assert fresh.status == "indexed"
    assert fresh.indexed_at == memory.indexed_at
    assert LocalVector.objects.filter(memory_id=str(memory.id)).exists()


def test_another_users_memory_id_is_a_404_not_a_403(alice, bobs_memory):
    for response in (
        alice.get(f"/memories/{bobs_memory.id}"),
        alice.delete(f"/memories/{bobs_memory.id}"),
        alice.post(f"/memories/{bobs_memory.id}/reprocess"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert_untouched(bobs_memory)


def test_a_scoped_key_cannot_create_for_another_user(alice, bobs_memory):
    single = alice.post("/memories", {"uid": "bob", "transcript": BUDGET})
    batch = alice.post(
        "/memories/batch",
        {
            "memories": [
                {"uid": "alice", "transcript": BUDGET},
                {"uid": "bob", "transcript": BUDGET},
            ]
        },
    )

    assert single.status_code == 403 and batch.status_code == 403
    assert single.json()["error"]["code"] == "uid_forbidden"
    assert Memory.objects.filter(uid="bob").count() == 1
    assert Memory.objects.filter(uid="alice").count() == 1


def test_a_scoped_key_lists_only_its_own_users_memories(alice, bobs_memory):
    listed = alice.get("/memories").json()

    assert listed["count"] == 1
    assert {m["uid"] for m in listed["items"]} == {"alice"}
    assert alice.get("/memories", uid="bob").status_code == 403


def test_a_scoped_key_cannot_search_another_user(alice, bobs_memory):
    response = alice.post("/search", {"uid": "bob", "query": "dentist crown"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "uid_forbidden"


def test_a_scoped_key_works_for_its_own_user(alice):
    created = alice.post("/memories", {"uid": "alice", "transcript": DENTIST})
    assert created.status_code == 201
    memory_id = created.json()["id"]

    assert alice.get(f"/memories/{memory_id}").status_code == 200
    assert alice.post(f"/memories/{memory_id}/reprocess").status_code == 202
    hits = alice.post("/search", {"uid": "alice", "query": "dentist crown"}).json()["results"]
    assert hits[0]["memory"]["id"] == memory_id
    assert alice.delete(f"/memories/{memory_id}").status_code == 204


def test_search_never_returns_another_users_memory(api, remember):
    bobs = remember("bob", DENTIST)
    remember("alice", BUDGET)

    hits = api.post("/search", {"uid": "alice", "query": "cracked crown at the dentist", "k": 100}).json()["results"]

    assert hits and all(h["memory"]["uid"] == "alice" for h in hits)
    assert bobs.id not in [h["memory"]["id"] for h in hits]
